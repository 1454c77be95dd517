"""A GPU check anyone can run: QLoRA GRPO, BERTScore on CUDA, shared-prefix generation with SDPA.

    python benchmarks/gpu_check.py                       # every item on cuda:0
    python benchmarks/gpu_check.py --device cuda:1 --items qlora,generation --keep /tmp/gpu_check
    python benchmarks/gpu_check.py --allow-cpu           # dry run of the same code paths on CPU

No test of the suite touches CUDA; this script does, with tiny random models built offline into a temp dir
(`rewardkit.core.tiny`), so a GPU machine without internet runs it too. Items:

- qlora: a GRPO stage through `rewardkit.train.run` with 4-bit nf4 quantization (double quant, bf16 compute),
  LoRA, 2 steps, eval + save at step 2 so that lora_save, checkpoint_inference and best_checkpoint all fire;
  checks adapters/step_2, inference/step_2.json and best/. The prompts share a system prompt, so the
  callback's prefix-shared generation runs on the 4-bit model too.
- bertscore: the `bertscore` reward on a tiny local BERT on the device vs the same on CPU, max |diff| < 1e-4.
- generation: `generate_texts` with and without the shared prompt prefix, SDPA attention, greedy; fp32 outputs
  must be identical (TF32 off), bf16 reports the equality rate (a near-tie may flip a token) without failing.

- fsdp: checkpoint_inference, lora_save and best_checkpoint on a torch FSDP2 (fully_shard) LoRA model under
  `torchrun --nproc_per_node 2` (NCCL on GPUs, gloo with --allow-cpu) vs one unsharded process: the step file and
  the gathered adapter must be equal (tests/scripts/fsdp_callbacks_run.py). One GPU: both ranks on it, gloo
  (NCCL wants a GPU per rank).
- vllm: `rewardkit generate`'s `engine='vllm'` vs `engine='hf'` on 64 rows (fp32, head_dim 64), identical
  greedy share >= 90 %; SKIP where vllm is not installed.

Each item prints PASS / FAIL with its wall time and peak GPU memory (torch.cuda.max_memory_allocated, reset
per item); a total line follows. Library output goes to stderr, the report to stdout. Takes well under 5
minutes on one GPU.

--allow-cpu runs every item on CPU: the 4-bit quantization is reported as "SKIP (needs CUDA)" (the stage
trains LoRA on unquantized weights with bf16 autocast), BERTScore compares CPU with CPU, and bf16 runs on CPU.

Exit codes: 0 every item passed, or no CUDA (prints the single line "no CUDA: skipped"); 1 an item failed;
2 bad arguments. On a machine with several GPUs the script re-executes itself with CUDA_VISIBLE_DEVICES set
to the chosen one, so that the Trainer (which always takes cuda:0 and would otherwise wrap the model in
DataParallel) and bitsandbytes run on that device alone.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import inspect
import json
import math
import os
import re
import shutil
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

# Tiny local models only: never wait for a hub (a GPU machine may have no internet either).
for _key, _value in {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "WANDB_DISABLED": "true",
    "WANDB_MODE": "disabled",
    "DISABLE_MLFLOW_INTEGRATION": "TRUE",
    "HF_HUB_DISABLE_TELEMETRY": "1",
}.items():
    os.environ.setdefault(_key, _value)

ITEMS = ("qlora", "bertscore", "generation", "fsdp", "vllm")
PINNED_ENV = "REWARDKIT_GPU_CHECK_PINNED"  # set when re-executed with CUDA_VISIBLE_DEVICES = the chosen GPU
# initializer_range 0.2 (default 0.02): a default random tiny model greedily repeats one token ("\n" x 32)
# for every prompt, and equal outputs would then prove nothing; this one answers each prompt differently.
TINY = dict(hidden_size=64, num_layers=2, num_heads=4, initializer_range=0.2)
BERT_LAYERS, BERT_HIDDEN = 2, 64
BERTSCORE_TOLERANCE = 1e-4
STEPS = 2
SYSTEM_PROMPT = (
    "You are a careful assistant. Read the question, think about it step by step, and answer "
    "with one short sentence that states the result plainly and nothing else."
)


# --- results ---------------------------------------------------------------------------------------------------
@dataclass
class Outcome:
    """What one item found: PASS/FAIL plus detail lines (sub-checks prefixed ok / FAIL / SKIP / info)."""

    status: str = "PASS"
    lines: list[str] = field(default_factory=list)

    def ok(self, text: str) -> None:
        self.lines.append(f"ok    {text}")

    def info(self, text: str) -> None:
        self.lines.append(f"info  {text}")

    def skip(self, text: str) -> None:
        self.lines.append(f"SKIP (needs CUDA)  {text}")

    def fail(self, text: str) -> None:
        self.status = "FAIL"
        self.lines.append(f"FAIL  {text}")

    def check(self, condition: bool, text: str, why: str = "") -> bool:
        if condition:
            self.ok(text)
        else:
            self.fail(f"{text}{': ' + why if why else ''}")
        return bool(condition)


@dataclass
class Context:
    """Shared state of one run: the device, the work dir and the tiny models built on first use."""

    device: str  # "cuda:0" or "cpu"
    workdir: Path
    cuda: bool
    _lm: Path | None = None
    _bert: Path | None = None
    _extra_dirs: list[Path] = field(default_factory=list)

    def tiny_lm(self) -> Path:
        """A saved tiny Qwen2 causal LM + char tokenizer (hidden 64, 2 layers)."""
        if self._lm is None:
            from rewardkit.core.tiny import save_tiny_causal_lm

            self._lm = save_tiny_causal_lm(self.workdir / "models" / "tiny_lm", **TINY)
        return self._lm

    def tiny_bert(self) -> Path:
        """A saved tiny BERT; bert_score misreads paths containing 't5', so such a path gets a fresh temp dir."""
        if self._bert is None:
            from rewardkit.core.tiny_bert import save_tiny_bert

            path = self.workdir / "models" / "tiny_bert"
            while "t5" in str(path) or str(path).startswith("scibert"):
                extra = Path(tempfile.mkdtemp(prefix="gpu_check_bert_"))
                self._extra_dirs.append(extra)
                path = extra / "tiny_bert"
            self._bert = save_tiny_bert(path, num_layers=BERT_LAYERS, hidden_size=BERT_HIDDEN)
        return self._bert

    def cleanup(self) -> None:
        for extra in self._extra_dirs:
            shutil.rmtree(extra, ignore_errors=True)


# --- item (a): QLoRA GRPO stage ----------------------------------------------------------------------------------
def grpo_config(model: Path, output_dir: Path, quantize: bool) -> dict:
    """The stage config: 4-bit nf4 QLoRA (when `quantize`), bf16, eval + save at the last step, three callbacks."""
    return {
        "stage": "grpo",
        "model": str(model),
        "output_dir": str(output_dir),
        "dataset": {"generator": "arithmetic", "n": 16, "seed": 0, "eval_size": 4, "system_prompt": SYSTEM_PROMPT},
        "peft": {"r": 8, "alpha": 16, "dropout": 0.05, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]},
        "quantization": (
            {"bits": 4, "quant_type": "nf4", "double_quant": True, "compute_dtype": "bfloat16"} if quantize else None
        ),
        "rewards": {
            "rewards": {
                "correct": {"use": "math_exact_match", "weight": 1.0},
                "short": {"use": "brevity", "max_length": 8, "weight": 0.2},
            }
        },
        "trainer": {
            "max_steps": STEPS,
            "learning_rate": 1e-4,
            "bf16": True,
            "seed": 0,
            "logging_steps": 1,
            "per_device_train_batch_size": 4,
            "num_generations": 4,
            "max_completion_length": 8,
            "eval_strategy": "steps",
            "eval_steps": STEPS,
            "per_device_eval_batch_size": 2,
            "num_generations_eval": 2,
            "save_strategy": "steps",
            "save_steps": STEPS,
            "metric_for_best_model": "eval_score",
            "greater_is_better": True,
        },
        "callbacks": [
            {"name": "lora_save", "layout": "step"},
            {
                "name": "checkpoint_inference",
                "dataset": "@eval",
                "reference_columns": ["answer"],
                "on": "evaluate",
                "max_new_tokens": 8,
            },
            {"name": "best_checkpoint", "spec": "@rewards"},
        ],
    }


def check_qlora(ctx: Context) -> Outcome:
    from rewardkit.train import run

    out = Outcome()
    if ctx.cuda:
        try:
            import bitsandbytes  # noqa: F401  (checked here for a clear message instead of a deep traceback)
        except Exception as exc:  # ImportError, or a broken CUDA build raising at import
            out.fail(f"bitsandbytes cannot be imported ({type(exc).__name__}: {exc}). Hint: pip install bitsandbytes")
            return out
    else:
        out.skip("4-bit nf4 quantization (bitsandbytes): trained LoRA on unquantized weights instead")
    stage_dir = ctx.workdir / "qlora"
    [result] = run(grpo_config(ctx.tiny_lm(), stage_dir, quantize=ctx.cuda))
    what = "QLoRA 4-bit nf4 + LoRA" if ctx.cuda else "LoRA"
    loss = "n/a" if result.train_loss is None else f"{result.train_loss:.4g}"
    out.check(
        result.steps == STEPS,
        f"GRPO {what}, bf16: {result.steps} steps, train_loss {loss}, {result.runtime_s:.1f} s",
        f"expected {STEPS} steps",
    )

    adapter = stage_dir / "adapters" / f"step_{STEPS}"
    files = sorted(p.name for p in adapter.iterdir()) if adapter.is_dir() else []
    out.check(
        "adapter_config.json" in files and any(f.startswith("adapter_model") for f in files),
        f"lora_save: adapters/step_{STEPS}/ holds adapter_config.json + adapter weights",
        f"found {files or 'no folder'}",
    )
    weights = adapter / "adapter_model.safetensors"
    if weights.is_file():
        from safetensors.torch import load_file

        lora_b = [t.abs().max().item() for k, t in load_file(str(weights)).items() if "lora_B" in k]
        # LoRA B starts at zero: non-zero means gradients flowed through the (quantized) base layers. Zero is
        # possible without a bug when every group's rewards were equal (zero advantage), so only reported.
        out.info(f"adapter trained: max |lora_B| {max(lora_b, default=0.0):.2e} over {len(lora_b)} tensors")

    inference = stage_dir / "inference" / f"step_{STEPS}.json"
    records = json.loads(inference.read_text(encoding="utf-8"))["records"] if inference.is_file() else []
    out.check(
        len(records) == 4 and all(isinstance(r.get("output"), str) for r in records),
        f"checkpoint_inference: inference/step_{STEPS}.json with {len(records)} records",
        "expected 4 records with an 'output'" if inference.is_file() else "file missing",
    )

    best = stage_dir / "best"
    scores_file = stage_dir / "inference" / "scores.json"
    scores = json.loads(scores_file.read_text(encoding="utf-8")) if scores_file.is_file() else {}
    best_entry = scores.get("best") or {}
    best_files = sorted(p.name for p in best.iterdir()) if best.is_dir() else []
    out.check(
        "adapter_config.json" in best_files and best_entry.get("step") == STEPS,
        f"best_checkpoint: best/ holds the step-{STEPS} adapter, eval_score {best_entry.get('score')}",
        f"best/ has {best_files or 'nothing'}, scores.json best = {best_entry or None}",
    )
    return out


# --- item (b): BERTScore on the device vs CPU --------------------------------------------------------------------
def _bertscore_pairs() -> tuple[list[str], list[str]]:
    """Completions and references of varied lengths from the tiny BERT's vocabulary (several batches)."""
    refs = [
        "the cat sat on the mat",
        "the quick brown fox jumps over the lazy dog",
        "this answer is correct because the reason is true",
        "hello there",
        "the model will train on the new data and show a good result in the test",
        "people say the house is old but the room is large and the door is open",
    ]
    hyps = [
        "a cat sat on a mat",
        "the quick fox jumped over a lazy dog",
        "this answer is wrong",
        "hello",
        "the model trained on old data and showed a bad result",
        "the house is new and small",
        "",
        "dogs and cats",
        "thanks for the correct answer",
        "the lazy dog sat",
    ]
    completions = [hyps[i % len(hyps)] for i in range(24)]
    references = [refs[(i * 5) % len(refs)] for i in range(24)]
    return completions, references


def check_bertscore(ctx: Context) -> Outcome:
    from rewardkit import get_reward

    out = Outcome()
    bert = str(ctx.tiny_bert())
    completions, references = _bertscore_pairs()
    scores = []
    for device in (ctx.device, "cpu"):
        reward = get_reward(
            "bertscore", reference="answer", model_type=bert, num_layers=BERT_LAYERS, device=device, batch_size=8
        )
        first = reward(completions=completions, answer=references)  # loads the model
        start = time.perf_counter()
        scores.append(reward(completions=completions, answer=references))
        out.info(f"{device}: {len(completions)} pairs in {time.perf_counter() - start:.3f} s (second call)")
        if first != scores[-1]:
            out.fail(f"{device}: two calls on the same inputs gave different scores")
    dev, cpu = scores
    if not out.check(
        len(dev) == len(cpu) == len(completions) and all(isinstance(v, float) and math.isfinite(v) for v in dev + cpu),
        "one finite score per pair on both devices",
        f"device {dev!r}, cpu {cpu!r}",
    ):
        return out
    out.check(
        len(set(round(v, 6) for v in cpu)) > 2,
        f"scores vary ({min(cpu):.4f} .. {max(cpu):.4f})",
        "all scores (nearly) equal: the check would not see a wrong model",
    )
    diff = max(abs(a - b) for a, b in zip(dev, cpu))
    label = f"{ctx.device} vs cpu" if ctx.cuda else "cpu vs cpu (dry run)"
    out.check(diff < BERTSCORE_TOLERANCE, f"{label}: max |diff| {diff:.2e} < {BERTSCORE_TOLERANCE:g}")
    return out


# --- item (c): shared vs unshared prompt prefix, SDPA, bf16 and fp32 -----------------------------------------------
def _generation_prompts(n: int = 24) -> list:
    """Chat prompts sharing a long system prompt, with user turns of very different lengths (left padding)."""
    topics = [
        "7 + 5",
        "the capital of France",
        "why the sky is blue",
        "12 * 12",
        "a haiku about rain",
        "the boiling point of water",
        "how many legs a spider has",
        "sorting a list in Python",
    ]
    return [
        [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": f"Question {i}: {topics[i % len(topics)]}?" + " Explain briefly." * (i % 5)},
        ]
        for i in range(n)
    ]


def _share_kwarg(generate_texts: Callable) -> str:
    """The name of generate_texts' prefix-sharing switch (share_prompt_prefix, or share_prefix in older code)."""
    params = inspect.signature(generate_texts).parameters
    for name in ("share_prompt_prefix", "share_prefix"):
        if name in params:
            return name
    raise TypeError(f"generate_texts has no share_prompt_prefix / share_prefix parameter: {list(params)}")


@contextlib.contextmanager
def _count_prefix_caches(model: Any) -> Any:
    """Count generate() calls, and those given a prefix cache (a past_key_values= or cache= that already holds
    tokens: every batch now decodes into a cache object, empty when no prefix is shared)."""
    counts = {"calls": 0, "cached": 0}
    original = model.generate

    def generate(*args: Any, **kwargs: Any) -> Any:
        counts["calls"] += 1
        cache = kwargs.get("cache", kwargs.get("past_key_values"))
        if cache is not None and cache.get_seq_length() > 0:
            counts["cached"] += 1
        return original(*args, **kwargs)

    model.generate = generate  # instance attribute: generate_texts calls model.generate(...)
    try:
        yield counts
    finally:
        del model.generate


@contextlib.contextmanager
def _exact_fp32(torch: Any) -> Any:
    """No TF32 in fp32 matmuls (it would make 'fp32 must be equal' a test of TF32 rounding)."""
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(before)


def check_generation(ctx: Context) -> Outcome:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rewardkit.engines.hf import generate_texts

    out = Outcome()
    share = _share_kwarg(generate_texts)
    path = ctx.tiny_lm()
    prompts = _generation_prompts()
    tokenizer = AutoTokenizer.from_pretrained(path)
    for dtype_name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, attn_implementation="sdpa").to(ctx.device)
        attn = getattr(model.config, "_attn_implementation", None)
        if not out.check(attn == "sdpa", f"{dtype_name}: model loaded with SDPA attention", f"got {attn!r}"):
            continue
        results, timing, counts = {}, {}, {}
        with _exact_fp32(torch) if dtype is torch.float32 else contextlib.nullcontext():
            for shared in (True, False):
                with _count_prefix_caches(model) as counted:
                    start = time.perf_counter()
                    results[shared] = generate_texts(
                        model, tokenizer, prompts, batch_size=8, max_new_tokens=32, **{share: shared}
                    )
                    if ctx.cuda:
                        torch.cuda.synchronize()
                    timing[shared] = time.perf_counter() - start
                counts[shared] = dict(counted)
        on, off = counts[True], counts[False]
        if not out.check(
            on["cached"] == on["calls"] > 0 and off["cached"] == 0,
            f"{dtype_name}: a prefix cache went to {on['cached']}/{on['calls']} generate() calls shared, "
            f"{off['cached']}/{off['calls']} unshared",
            "expected all shared, none unshared",
        ):
            continue
        equal = sum(a == b for a, b in zip(results[True], results[False]))
        rate = (
            f"{equal}/{len(prompts)} outputs equal ({100 * equal / len(prompts):.0f} %), shared "
            f"{timing[True]:.2f} s vs unshared {timing[False]:.2f} s"
        )
        distinct = len(set(results[False]))
        if not out.check(
            distinct >= len(prompts) // 2,
            f"{dtype_name}: {distinct}/{len(prompts)} distinct completions",
            "the model answers (nearly) every prompt alike, so equal outputs prove nothing",
        ):
            continue
        if dtype is torch.float32:
            first_diff = next((i for i, (a, b) in enumerate(zip(results[True], results[False])) if a != b), None)
            why = (
                ""
                if first_diff is None
                else f"prompt {first_diff}: shared {results[True][first_diff]!r} vs unshared {results[False][first_diff]!r}"
            )
            out.check(equal == len(prompts), f"fp32 (TF32 off): {rate}", why)
        else:
            out.info(f"bf16 (not a failure when < 100 %: near-ties may flip a greedy token): {rate}")
        del model
        gc.collect()
    return out


# --- item (d): FSDP2 callbacks -------------------------------------------------------------------------------------
FSDP_SCRIPT = Path(__file__).resolve().parents[1] / "tests" / "scripts" / "fsdp_callbacks_run.py"


def check_fsdp(ctx: Context) -> Outcome:
    """checkpoint_inference + lora_save + best_checkpoint on an FSDP2 LoRA model, 2 ranks vs 1 unsharded process."""
    import subprocess

    from safetensors.torch import load_file

    from rewardkit.core.tiny import save_tiny_causal_lm

    out = Outcome()
    model = save_tiny_causal_lm(ctx.workdir / "models" / "fsdp_lm", initializer_range=0.1)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "REWARDKIT_FSDP_DEVICE": "cuda" if ctx.cuda else "cpu"}
    runs = {
        "single": [sys.executable, str(FSDP_SCRIPT)],
        "fsdp": [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_port",
            "29541",
            str(FSDP_SCRIPT),
        ],
    }
    for name, cmd in runs.items():
        start = time.perf_counter()
        done = subprocess.run(
            [*cmd, str(model), str(ctx.workdir / name)], capture_output=True, text=True, timeout=600, env=env
        )
        if not out.check(
            done.returncode == 0, f"{name}: exit 0 in {time.perf_counter() - start:.1f} s", done.stderr[-800:]
        ):
            return out
    ref, got = (
        json.loads((ctx.workdir / n / "inference" / "step_2.json").read_text())["records"] for n in ("single", "fsdp")
    )
    out.check(
        got == ref,
        f"step_2.json of 2 FSDP ranks equals the unsharded one ({len(got)} records, "
        f"{len({r['output'] for r in got})} distinct outputs)",
    )
    for folder in ("adapters/step_2", "best"):
        a, b = (load_file(ctx.workdir / n / folder / "adapter_model.safetensors") for n in ("single", "fsdp"))
        out.check(
            a.keys() == b.keys() and all((a[k].cpu() == b[k].cpu()).all() for k in a),
            f"{folder}: gathered adapter equals the unsharded save ({len(a)} tensors)",
        )
    return out


# --- item (e): vLLM engine vs hf -----------------------------------------------------------------------------------
VLLM_MIN_IDENTICAL = 0.9


def check_vllm(ctx: Context) -> Outcome:
    """`generate_file(engine='vllm')` vs `engine='hf'` on the same rows (fp32, head_dim 64): identical share."""
    import importlib.util

    out = Outcome()
    if importlib.util.find_spec("vllm") is None:
        out.lines.append(
            "SKIP (vllm not installed)  run this item in a venv with vllm (.ci/vllm_check.sh builds one for CPU)"
        )
        return out
    from rewardkit.core.tiny import save_tiny_causal_lm
    from rewardkit.generation import generate_file

    model = save_tiny_causal_lm(
        ctx.workdir / "models" / "vllm_lm", hidden_size=128, num_heads=2, num_layers=2, initializer_range=0.1
    )
    rows = ctx.workdir / "vllm_rows.jsonl"
    rows.write_text("".join(json.dumps({"id": i, "prompt": f"What is {i} + {i * 7 % 13}?"}) + "\n" for i in range(64)))
    texts = {}
    for engine in ("hf", "vllm"):
        result = generate_file(
            str(model),
            rows,
            ctx.workdir / f"{engine}.jsonl",
            system_prompt=SYSTEM_PROMPT,
            max_new_tokens=32,
            dtype="float32",
            engine=engine,
            progress=False,
            device="cuda" if ctx.cuda else "cpu",
        )
        out.info(
            f"{engine}: load {result.load_seconds:.1f} s (vLLM: engine start-up), generate "
            f"{result.generate_seconds:.2f} s"
        )
        texts[engine] = [json.loads(line)["completion"] for line in (ctx.workdir / f"{engine}.jsonl").open()]
    share = sum(a == b for a, b in zip(texts["hf"], texts["vllm"])) / len(texts["hf"])
    out.check(share >= VLLM_MIN_IDENTICAL, f"identical greedy outputs {share:.0%} (>= {VLLM_MIN_IDENTICAL:.0%})")
    return out


CHECKS: dict[str, Callable[[Context], Outcome]] = {
    "qlora": check_qlora,
    "bertscore": check_bertscore,
    "generation": check_generation,
    "fsdp": check_fsdp,
    "vllm": check_vllm,
}


# --- running ---------------------------------------------------------------------------------------------------
def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def run_item(name: str, ctx: Context) -> str:
    """Run one item with stdout sent to stderr (trainer logs), then print its report; returns its status."""
    import torch

    gc.collect()
    if ctx.cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(ctx.device)
    start = time.perf_counter()
    try:
        with contextlib.redirect_stdout(sys.stderr):
            outcome = CHECKS[name](ctx)
    except Exception as exc:  # an item that crashes is a FAIL with its traceback on stderr; the others still run
        traceback.print_exc(file=sys.stderr)
        outcome = Outcome()
        outcome.fail(f"{type(exc).__name__}: {' '.join(str(exc).split())[:500]} (traceback on stderr)")
    wall = time.perf_counter() - start
    if ctx.cuda:
        try:
            torch.cuda.synchronize(ctx.device)
            peak = _mib(torch.cuda.max_memory_allocated(ctx.device))
        except Exception as exc:  # e.g. a device-side assert of the item poisons the CUDA context
            peak = f"unknown ({type(exc).__name__})"
    else:
        peak = "n/a (cpu)"
    print(f"{outcome.status} {name:<11} wall {wall:6.1f} s  peak GPU mem {peak}", flush=True)
    for line in outcome.lines:
        print(f"     {line}", flush=True)
    return outcome.status


def parse_items(text: str) -> list[str]:
    names = [x.strip() for x in text.split(",") if x.strip()]
    if names == ["all"]:
        return list(ITEMS)
    unknown = [x for x in names if x not in ITEMS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown item(s) {unknown or [text]}; choose from {', '.join(ITEMS)} (comma-separated) or 'all'"
        )
    return sorted(set(names), key=ITEMS.index)


def parse_device(text: str) -> int:
    """The CUDA index of 'cuda' / 'cuda:N'."""
    m = re.fullmatch(r"cuda(?::(\d+))?", text.strip())
    if not m:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a CUDA device; use cuda or cuda:N (for a CPU dry run: --allow-cpu)"
        )
    return int(m.group(1) or 0)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Exit codes: 0 passed (or no CUDA: skipped), 1 an item failed, 2 bad arguments.",
    )
    parser.add_argument("--device", default="cuda:0", help="CUDA device to check (default cuda:0)")
    parser.add_argument(
        "--keep",
        metavar="DIR",
        help="build models and run outputs in DIR (new or empty) and keep them; default a temp dir removed at the end",
    )
    parser.add_argument(
        "--items",
        type=parse_items,
        default=list(ITEMS),
        help=f"comma-separated subset of {','.join(ITEMS)} (default all)",
    )
    parser.add_argument(
        "--allow-cpu",
        action="store_true",
        help="dry run: every item on CPU (4-bit quantization "
        "is skipped, bf16 runs on CPU); also what runs when no GPU is present",
    )
    return parser


def _pin_device(index: int, count: int, argv: list[str]) -> None:
    """Re-execute with only GPU `index` visible (the Trainer takes cuda:0 and would use DataParallel on several)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = [x.strip() for x in visible.split(",")] if visible else [str(i) for i in range(count)]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ids[index], PINNED_ENV: f"cuda:{index}"}
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, os.path.abspath(__file__), *argv], env)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    device_given = any(a == "--device" or a.startswith("--device=") for a in argv)
    if args.allow_cpu and device_given:
        parser.error("--allow-cpu runs every item on CPU: drop --device")
    index = None
    if not args.allow_cpu:
        try:
            index = parse_device(args.device)
        except argparse.ArgumentTypeError as exc:
            parser.error(f"argument --device: {exc}")
    workdir = Path(args.keep).resolve() if args.keep else None
    if workdir is not None and workdir.exists() and (not workdir.is_dir() or any(workdir.iterdir())):
        parser.error(f"argument --keep: {workdir} must be a new or empty directory")

    import torch

    if args.allow_cpu:
        device, cuda = "cpu", False
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))  # tiny models: threads only add contention
        label = "cpu (--allow-cpu dry run: 4-bit quantization skipped, bf16 on CPU)"
    else:
        if not torch.cuda.is_available():
            print("no CUDA: skipped")
            return 0
        count = torch.cuda.device_count()
        pinned = os.environ.get(PINNED_ENV)
        if pinned is None:
            if index >= count:
                parser.error(f"argument --device: {args.device} does not exist ({count} CUDA device(s) visible)")
            if count > 1:
                _pin_device(index, count, argv)  # does not return
        device, cuda = "cuda:0", True
        torch.cuda.set_device(0)
        shown = pinned or args.device
        label = f"{shown} ({torch.cuda.get_device_name(0)}" + (
            f", CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')})" if pinned else ")"
        )

    import importlib.metadata as md

    def version(name: str) -> str:
        try:
            return md.version(name)
        except md.PackageNotFoundError:
            return "missing"

    print(f"gpu_check: device {label}", flush=True)
    print(
        "versions: "
        + ", ".join(
            f"{n} {version(n)}" for n in ("torch", "transformers", "trl", "peft", "bitsandbytes", "bert-score")
        ),
        flush=True,
    )
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
    else:
        workdir = Path(tempfile.mkdtemp(prefix="gpu_check_"))
    print(
        f"work dir: {workdir}" + (" (kept)" if args.keep else " (removed at the end; --keep DIR keeps it)"), flush=True
    )
    ctx = Context(device=device, workdir=workdir, cuda=cuda)
    start = time.perf_counter()
    statuses: dict[str, str] = {}
    try:
        for name in args.items:
            statuses[name] = run_item(name, ctx)
    finally:
        ctx.cleanup()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    failed = [n for n, s in statuses.items() if s != "PASS"]
    total = time.perf_counter() - start
    print(
        f"total: {len(statuses) - len(failed)} passed, {len(failed)} failed"
        + (f" ({', '.join(failed)})" if failed else "")
        + f" in {total:.1f} s",
        flush=True,
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
