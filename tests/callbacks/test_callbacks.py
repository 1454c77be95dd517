"""lora_save, checkpoint_inference and best_checkpoint on real TRL trainers (tiny model, CPU, a few steps)."""

from __future__ import annotations

import json
import shutil
import statistics
import warnings

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
STEPS = 4
# Components that tell the random tiny model's checkpoints apart (its greedy outputs change at lr 0.1).
SPEC = {
    "rewards": {
        "em": {"use": "exact_match"},
        "digit": {"use": "format_regex", "pattern": "[0-9]"},
        "e": {"use": "format_regex", "pattern": "e"},
        "short": {"use": "brevity", "max_length": 8},
    },
    "combine": "(em + digit + e + short) / 4",
}
VAL = [
    {"id": f"q{i}", "prompt": [{"role": "user", "content": f"What is {i}+{i}?"}], "answer": str(2 * i), "level": i % 2}
    for i in range(6)
]
TRAIN = [
    {"messages": [{"role": "user", "content": f"What is {i}+{i}?"}, {"role": "assistant", "content": str(2 * i)}]}
    for i in range(8)
]


def _lora():
    from peft import LoraConfig

    return LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=LORA_TARGETS, task_type="CAUSAL_LM")


def _probe_class():
    from transformers import TrainerCallback

    class Probe(TrainerCallback):
        """Snapshot of what checkpoint_inference must leave untouched, taken at each evaluate/save."""

        def __init__(self):
            self.seen = []

        def _snap(self, event, state, model, processing_class):
            lora = next(p for n, p in model.named_parameters() if "lora_A" in n)
            flags = tuple(
                m.gradient_checkpointing
                for m in model.modules()
                if isinstance(getattr(m, "gradient_checkpointing", None), bool)
            )
            modes = tuple(m.training for m in model.modules())
            self.seen.append(
                (
                    event,
                    state.global_step,
                    model.training,
                    modes,
                    flags,
                    processing_class.padding_side,
                    lora.data_ptr(),
                    id(model),
                )
            )

        def on_evaluate(self, args, state, control, model=None, processing_class=None, **kwargs):
            self._snap("evaluate", state, model, processing_class)

        def on_save(self, args, state, control, model=None, processing_class=None, **kwargs):
            self._snap("save", state, model, processing_class)

    return Probe


def _sft(model_dir, out, trainer_defaults, callbacks, **overrides):
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    kwargs = dict(trainer_defaults, save_strategy="steps", save_steps=1, eval_strategy="steps", eval_steps=1)
    kwargs.update(overrides)
    args = SFTConfig(
        output_dir=str(out),
        max_steps=STEPS,
        per_device_train_batch_size=2,
        learning_rate=0.1,
        max_length=64,
        metric_for_best_model="eval_score",
        **kwargs,
    )
    return SFTTrainer(
        model=str(model_dir),
        args=args,
        train_dataset=Dataset.from_list(TRAIN),
        eval_dataset=Dataset.from_list(TRAIN[:2]),
        peft_config=_lora(),
        callbacks=callbacks,
    )


def _sft_callbacks():
    import rewardkit

    return [
        rewardkit.get_callback("lora_save"),
        rewardkit.get_callback(
            "checkpoint_inference",
            dataset=VAL,
            reference_columns=["answer"],
            extra_columns=["level"],
            max_new_tokens=8,
            batch_size=4,
        ),
        rewardkit.get_callback("best_checkpoint", spec=SPEC),
    ]


@pytest.fixture(scope="module")
def sft_run(tiny_lm_dir, trainer_defaults, tmp_path_factory):
    """One uninterrupted SFT run: LoRA, save + evaluate every step, the three callbacks, probes around inference.

    best_checkpoint comes before checkpoint_inference and is linked to it: the records are handed over in-process
    (the resume test below runs the other way: unlinked, inference first, scored from the files)."""
    from rewardkit.callbacks import link_callbacks

    out = tmp_path_factory.mktemp("sft") / "run"
    Probe = _probe_class()
    lora, inference, best = _sft_callbacks()
    before, after = Probe(), Probe()
    trainer = _sft(tiny_lm_dir, out, trainer_defaults, link_callbacks([lora, best, before, inference, after]))
    assert best.partner is inference
    trainer.train()
    return {"trainer": trainer, "out": out, "inference": inference, "before": before, "after": after}


def _recompute(sidecar):
    """Scores straight from the JSON files with compose(), not through rewardkit.selection.checkpoints."""
    import rewardkit

    composed = rewardkit.compose(SPEC)
    scores = {}
    for path in sorted(sidecar.glob("step_*.json")):
        records = json.loads(path.read_text())["records"]
        parts = composed.score_components(
            prompts=[r["prompt"] for r in records],
            completions=[r["output"] for r in records],
            answer=[r["answer"] for r in records],
        )
        means = {a: statistics.fmean(v for v in vals if v is not None) for a, vals in parts.items()}
        scores[int(path.stem.split("_")[1])] = composed.combine_row(means)
    return scores


def _best_step(scores):
    return max(sorted(scores), key=lambda s: scores[s])  # max keeps the first (earliest) of equal scores


def test_adapters_are_saved_outside_checkpoints(sft_run):
    adapters = sft_run["out"] / "adapters"
    assert sorted(p.name for p in adapters.iterdir()) == [f"step_{i}" for i in range(1, STEPS + 1)]
    for folder in adapters.iterdir():
        names = {p.name for p in folder.iterdir()}
        assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer_config.json"} <= names
        assert not names & {
            "model.safetensors",
            "optimizer.pt",
            "scheduler.pt",
            "trainer_state.json",
            "training_args.bin",
        }
        assert [n for n in names if n.startswith(".")] == [".rewardkit-adapter"]  # the marker, no temp leftovers
        assert json.loads((folder / ".rewardkit-adapter").read_text())["step"] == int(folder.name.split("_")[1])


def test_inference_files_have_the_records(sft_run):
    sidecar = sft_run["out"] / "inference"
    assert sorted(p.name for p in sidecar.glob("step_*.json")) == sorted(f"step_{i}.json" for i in range(1, 5))
    for step in range(1, STEPS + 1):
        data = json.loads((sidecar / f"step_{step}.json").read_text())
        assert data["step"] == step and data["epoch"] == pytest.approx(step / 4)
        assert [r["id"] for r in data["records"]] == [v["id"] for v in VAL]
        for record, row in zip(data["records"], VAL):
            assert set(record) == {"id", "prompt", "output", "answer", "level"}
            assert record["prompt"] == row["prompt"] and record["answer"] == row["answer"]
            assert isinstance(record["output"], str) and "<|im_start|>" not in record["output"]


def test_scores_and_best_agree_with_independent_recompute_and_trainer(sft_run):
    out, trainer = sft_run["out"], sft_run["trainer"]
    expected = _recompute(out / "inference")
    record = json.loads((out / "inference" / "scores.json").read_text())
    assert [c["step"] for c in record["checkpoints"]] == list(range(1, STEPS + 1))
    for entry in record["checkpoints"]:
        assert entry["score"] == pytest.approx(expected[entry["step"]])
    best = _best_step(expected)
    assert record["best"]["step"] == best
    assert record["best_dir"]["step"] == best
    assert (out / "best" / "adapter_model.safetensors").read_bytes() == (
        out / "adapters" / f"step_{best}" / "adapter_model.safetensors"
    ).read_bytes()
    # metric_for_best_model="eval_score" makes the Trainer pick the same checkpoint.
    assert trainer.state.best_model_checkpoint.endswith(f"checkpoint-{best}")
    assert trainer.state.best_metric == pytest.approx(expected[best])
    logged = {e["step"]: e["eval_score"] for e in trainer.state.log_history if "eval_score" in e}
    assert logged == pytest.approx(expected)
    assert all("eval_loss" in e for e in trainer.state.log_history if "eval_score" in e)  # same log entry


def test_live_model_used_and_state_restored(sft_run):
    trainer, before, after = sft_run["trainer"], sft_run["before"], sft_run["after"]
    assert sft_run["inference"].last_model is trainer.model  # generated with the trainer's model, no copy
    assert before.seen == after.seen and len(before.seen) == 2 * STEPS  # mode, flags, padding, data_ptr, id
    assert {s[5] for s in after.seen} == {"right"}  # SFT's tokenizer pads right; inference padded left
    assert trainer.processing_class.padding_side == "right"


def test_resume_keeps_the_record_consistent(sft_run, tiny_lm_dir, trainer_defaults, tmp_path):
    """Crash after step 3 (its inference written, its checkpoint lost), resume from checkpoint-2."""
    out = tmp_path / "run"
    shutil.copytree(sft_run["out"], out)
    for name in ("checkpoint-3", "checkpoint-4", "adapters/step_4", "best"):
        shutil.rmtree(out / name)
    (out / "inference" / "step_4.json").unlink()  # step_3.json stays: output of the abandoned run
    trainer = _sft(tiny_lm_dir, out, trainer_defaults, _sft_callbacks())
    trainer.train(resume_from_checkpoint=str(out / "checkpoint-2"))

    resumed = json.loads((out / "inference" / "scores.json").read_text())
    original = json.loads((sft_run["out"] / "inference" / "scores.json").read_text())
    assert [c["step"] for c in resumed["checkpoints"]] == list(range(1, STEPS + 1))  # none lost, none twice
    assert [c["score"] for c in resumed["checkpoints"]] == pytest.approx([c["score"] for c in original["checkpoints"]])
    assert resumed["best"]["step"] == original["best"]["step"] == resumed["best_dir"]["step"]
    assert (out / "inference" / "stale" / "step_3.json").is_file()  # set aside, then regenerated
    assert (out / "inference" / "step_3.json").is_file()


def test_grpo_inference_on_save_restores_train_mode_and_keeps_top_k(tiny_lm_dir, trainer_defaults, tmp_path):
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    import rewardkit

    Probe = _probe_class()
    before, after = Probe(), Probe()
    val = [{"prompt": f"Count to {i}:", "answer": str(i)} for i in range(6)]  # no ids: row index
    inference = rewardkit.get_callback(
        "checkpoint_inference", dataset=val, reference_columns=["answer"], on="save", max_new_tokens=8
    )
    callbacks = [
        before,
        inference,
        after,
        rewardkit.get_callback("best_checkpoint", spec=SPEC, aggregate="item", top_k=1),
        rewardkit.get_callback("lora_save"),
    ]  # after best_checkpoint on purpose: order must not matter
    kwargs = dict(trainer_defaults, save_strategy="steps", save_steps=1, activation_checkpointing=True)
    args = GRPOConfig(
        output_dir=str(tmp_path),
        max_steps=2,
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=8,
        learning_rate=0.1,
        **kwargs,
    )
    trainer = GRPOTrainer(
        model=str(tiny_lm_dir),
        reward_funcs=rewardkit.get_reward("brevity", max_length=8),
        args=args,
        train_dataset=Dataset.from_list(val),
        peft_config=_lora(),
        callbacks=callbacks,
    )
    side = trainer.processing_class.padding_side
    trainer.train()

    assert inference.last_model is trainer.model
    assert before.seen == after.seen and len(after.seen) == 2
    assert all(s[2] is True for s in after.seen)  # still in train mode at on_save
    assert all(any(s[4]) for s in after.seen)  # activation checkpointing still on
    assert trainer.processing_class.padding_side == side
    data = json.loads((tmp_path / "inference" / "step_2.json").read_text())
    assert [r["id"] for r in data["records"]] == list(range(6))
    assert [r["prompt"] for r in data["records"]] == [v["prompt"] for v in val]
    record = json.loads((tmp_path / "inference" / "scores.json").read_text())
    # Only this trainer's steps: callbacks of the earlier trainers in this process must not write here.
    assert [c["step"] for c in record["checkpoints"]] == [1, 2]
    composed = rewardkit.compose(SPEC)
    for entry in record["checkpoints"]:  # aggregate="item": mean of the per-row combined scores
        recs = json.loads((tmp_path / "inference" / entry["file"]).read_text())["records"]
        rows = composed(completions=[r["output"] for r in recs], answer=[r["answer"] for r in recs])
        assert entry["score"] == pytest.approx(statistics.fmean(rows))
    best = record["best"]["step"]
    assert [p.name for p in (tmp_path / "adapters").iterdir()] == [f"step_{best}"]  # top_k=1
    best_files = {p.name for p in (tmp_path / "best").iterdir()}
    assert "adapter_model.safetensors" in best_files  # lora_save ran after best: copied from checkpoint-N
    assert not best_files & {"optimizer.pt", "scheduler.pt", "trainer_state.json", "training_args.bin"}
    assert not any(n.startswith("rng_state") for n in best_files)


def test_reward_trainer_is_refused_with_a_hint(tiny_lm_dir, trainer_defaults, tmp_path):
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    import rewardkit

    model = AutoModelForSequenceClassification.from_pretrained(tiny_lm_dir, num_labels=1)
    rows = [{"chosen": f"The answer is {i}.", "rejected": f"no idea {i}"} for i in range(4)]
    args = RewardConfig(
        output_dir=str(tmp_path), max_steps=1, per_device_train_batch_size=2, max_length=32, **trainer_defaults
    )
    cb = rewardkit.get_callback("checkpoint_inference", dataset=VAL)
    trainer = RewardTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=AutoTokenizer.from_pretrained(tiny_lm_dir),
        callbacks=[cb],
    )
    with pytest.raises(rewardkit.ConfigError, match="cannot generate.*Hint: remove checkpoint_inference"):
        trainer.train()


# --- the pieces on their own (real model and Trainer state objects, no trainer loop) -----------------------
@pytest.fixture(scope="module")
def tiny(tiny_lm_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(tiny_lm_dir), AutoTokenizer.from_pretrained(tiny_lm_dir)


def test_batched_left_padded_generation_equals_one_by_one(tiny):
    from rewardkit.callbacks.inference import generate_texts

    model, tok = tiny
    prompts = [[{"role": "user", "content": "hi" * n}] for n in (1, 5, 2, 9, 3)]  # different lengths
    one = [generate_texts(model, tok, [p], max_new_tokens=6)[0] for p in prompts]
    assert generate_texts(model, tok, prompts, batch_size=5, max_new_tokens=6) == one
    assert tok.padding_side == "right"


def test_shared_prompt_prefix_is_encoded_once_and_changes_no_output(tiny):
    from rewardkit.callbacks.inference import generate_texts
    from rewardkit.engines.hf import MIN_SHARED_PREFIX, shared_prefix_length

    model, tok = tiny
    system = {"role": "system", "content": "You answer arithmetic questions with one number only."}
    prompts = [[system, {"role": "user", "content": f"{a}+{b}" + "?" * (a % 3)}] for a in range(7) for b in (1, 5)]
    texts = [tok.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p in prompts]
    shared = shared_prefix_length(tok(texts, add_special_tokens=False)["input_ids"])
    assert shared >= MIN_SHARED_PREFIX
    seen = []  # tokens each forward pass gets: the prefix must go through once, not once per row
    hook = model.register_forward_pre_hook(lambda m, args, kw: seen.append(kw["input_ids"].numel()), with_kwargs=True)
    try:
        plain = generate_texts(model, tok, prompts, batch_size=4, max_new_tokens=6, share_prefix=False)
        plain_tokens, seen[:] = sum(seen), []
        reused = generate_texts(model, tok, prompts, batch_size=4, max_new_tokens=6)
        reused_tokens = sum(seen)
    finally:
        hook.remove()
    assert reused == plain
    assert plain_tokens - reused_tokens == shared * (len(prompts) - 1)
    one = [generate_texts(model, tok, [p], max_new_tokens=6)[0] for p in prompts[:3]]
    assert reused[:3] == one


def test_generation_restores_modes_flags_and_pad_token(tiny):
    from rewardkit.callbacks.inference import generate_texts

    model, tok = tiny
    model.train()
    model.model.layers[0].gradient_checkpointing = True
    model.model.layers[1].eval()  # mixed modes must come back exactly, not as one model.train()
    pad = tok.pad_token
    tok.pad_token = None
    try:
        generate_texts(model, tok, ["abc", "de"], max_new_tokens=3)
        assert model.training and not model.model.layers[1].training
        assert model.model.layers[0].gradient_checkpointing is True
        assert tok.pad_token is None and tok.padding_side == "right"
    finally:
        tok.pad_token = pad
        model.model.layers[0].gradient_checkpointing = False
        model.eval()


def test_string_prompts_stay_raw_unless_asked(tiny):
    from rewardkit.callbacks.inference import render_prompts

    _, tok = tiny
    assert render_prompts(tok, ["a b"], None) == (["a b"], False)
    texts, templated = render_prompts(tok, ["a b"], True)
    assert templated and texts[0].startswith("<|im_start|>user\na b")
    with pytest.raises(Exception, match="mix strings and chat messages"):
        render_prompts(tok, ["a", [{"role": "user", "content": "b"}]], None)


def _args_state(tmp_path, **kw):
    from transformers import TrainerState, TrainingArguments

    args = TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True, **kw)
    state = TrainerState(global_step=3, epoch=0.9999999)
    return args, state


def test_lora_save_without_adapter_saves_the_full_model_once_warned(tiny, tmp_path):
    import rewardkit

    model, tok = tiny
    cb = rewardkit.get_callback("lora_save", layout="epoch")
    args, state = _args_state(tmp_path, save_strategy="epoch")
    with pytest.warns(UserWarning, match="FULL model"):
        cb.on_save(args, state, None, model=model, processing_class=tok)
    state.global_step, state.epoch = 4, 1.0000001
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once only
        cb.on_save(args, state, None, model=model, processing_class=tok)
    assert [p.name for p in (tmp_path / "adapters").iterdir()] == ["epoch_1"]
    assert (tmp_path / "adapters" / "epoch_1" / "model.safetensors").is_file()
    refuse = rewardkit.get_callback("lora_save", no_adapter="error")
    with pytest.raises(rewardkit.ConfigError, match="no PEFT adapter"):
        refuse.on_train_begin(args, state, None, model=model)


def test_epoch_index_ignores_float_noise():
    from rewardkit.callbacks.common import epoch_index

    assert [epoch_index(e) for e in (None, 0.0, 0.25, 0.9999999, 1.0, 1.0000001, 1.5, 2.0)] == [1, 1, 1, 1, 1, 1, 2, 2]


def test_params_are_validated_and_paths_kept_inside(tmp_path):
    import rewardkit

    with pytest.raises(rewardkit.ConfigError, match="max_tokens: unknown key.*max_new_tokens"):
        rewardkit.get_callback("checkpoint_inference", dataset=VAL, max_tokens=3)
    with pytest.raises(rewardkit.ConfigError, match="escapes"):
        rewardkit.get_callback("best_checkpoint", spec=SPEC, best_dir="../elsewhere")
    with pytest.raises(rewardkit.ConfigError, match="escapes"):
        rewardkit.get_callback("checkpoint_inference", dataset=VAL, sidecar="a/../../b")
    with pytest.raises(rewardkit.DataError, match=r"row 0: missing columns \['answer'\]"):
        rewardkit.get_callback("checkpoint_inference", dataset=[{"prompt": "x"}], reference_columns=["answer"])
    with pytest.raises(rewardkit.DataError, match="duplicate ids"):
        rewardkit.get_callback("checkpoint_inference", dataset=[{"id": 1, "prompt": "x"}, {"id": 1, "prompt": "y"}])


_DDP_SCRIPT = """
import json, os, sys
sys.path.insert(0, {root!r})
from tests.conftest import TRAINER_DEFAULTS
from tests.callbacks.test_callbacks import SPEC, VAL, TRAIN, _lora
import rewardkit
from rewardkit.callbacks import link_callbacks
from datasets import Dataset
from trl import SFTConfig, SFTTrainer
kw = dict(TRAINER_DEFAULTS, save_strategy="steps", save_steps=1, eval_strategy="steps", eval_steps=1)
args = SFTConfig(output_dir={out!r}, max_steps=2, per_device_train_batch_size=2, learning_rate=0.1, max_length=64,
                 metric_for_best_model="eval_score", **kw)
val = VAL + [dict(VAL[0], id="extra")]  # 7 rows: uneven shards
cbs = link_callbacks([rewardkit.get_callback("best_checkpoint", spec=SPEC),  # before inference on purpose
                      rewardkit.get_callback("checkpoint_inference", dataset=val, reference_columns=["answer"],
                                             max_new_tokens=4)])
trainer = SFTTrainer(model={model!r}, args=args, train_dataset=Dataset.from_list(TRAIN),
                     eval_dataset=Dataset.from_list(TRAIN[:2]), peft_config=_lora(), callbacks=cbs)
trainer.train()
logged = [(e["step"], e["eval_score"]) for e in trainer.state.log_history if "eval_score" in e]
with open(os.path.join({tmp!r}, f"result_{{args.process_index}}.json"), "w") as f:  # ranks share stdout
    json.dump({{"rank": args.process_index, "logged": logged, "best": trainer.state.best_model_checkpoint}}, f)
"""


@pytest.mark.multiprocess
def test_two_processes_shard_gather_and_agree(tiny_lm_dir, tmp_path):
    import os
    import subprocess
    import sys

    script = tmp_path / "ddp.py"
    out = tmp_path / "run"
    script.write_text(_DDP_SCRIPT.format(root=str(ROOT), out=str(out), model=str(tiny_lm_dir), tmp=str(tmp_path)))
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("result_*.json"))]
    assert sorted(r["rank"] for r in results) == [0, 1]
    assert results[0]["logged"] == results[1]["logged"] and len(results[0]["logged"]) == 2  # broadcast metric
    assert results[0]["best"] == results[1]["best"]
    for step in (1, 2):
        records = json.loads((out / "inference" / f"step_{step}.json").read_text())["records"]
        assert [r["id"] for r in records] == [v["id"] for v in VAL] + ["extra"]  # gathered in dataset order
    record = json.loads((out / "inference" / "scores.json").read_text())
    assert [(c["step"], c["count"]) for c in record["checkpoints"]] == [(1, 7), (2, 7)]
    assert not list((out / "inference").glob(".*"))  # only rank 0 wrote, atomically
