"""Running one stage or a pipeline of stages: check everything first, then train each stage in order."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..api import compose, load_spec
from ..composition import nested_spec, spec_rewards
from ..distributed import is_main_process
from ..errors import ConfigError, closest
from ..fileio import atomic_write_json, atomic_write_jsonl
from .config import REF_PREFIX, StageConfig, load_stages
from .data import load_stage_data, reference_columns
from .preflight import check_models, check_vllm, loading
from .smoke import smoke_mode, smoke_setup
from .stages import (
    build_args,
    build_callbacks,
    build_trainer,
    check_quantization,
    check_trainer_keys,
    check_trainer_values,
    merge_adapter,
)


@dataclass
class StageResult:
    """What one stage produced."""

    name: str
    stage: str
    output_dir: str
    model: str  # what a later `@name` loads: the merged model, or the full fine-tuned one
    steps: int
    train_loss: float | None
    runtime_s: float
    metrics: dict[str, Any] = field(default_factory=dict)


def finish_distributed() -> None:
    """Wait for every rank, then destroy the process group (a no-op in a single process).

    Exiting with a live gloo group can abort the process (SIGABRT) during interpreter shutdown while gloo's
    worker threads still hold tensors, which fails the launch although training finished.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


@dataclass
class _Prepared:
    stage: StageConfig
    train: Any
    eval: Any
    rewards: Any
    callbacks: list


def handoff_dir(stage: StageConfig) -> str:
    """What a later `@name` loads: merged/ when the stage trains an adapter, else final/ (run_stage writes it)."""
    return str(Path(stage.output_dir) / ("merged" if stage.peft is not None else "final"))


def reward_spec(stage: StageConfig, earlier: list[StageConfig], where: str) -> Any:
    """The stage's `rewards:` with each reward's `model: "@name"` replaced by that earlier rm stage's model.

    Resolved before any stage trains (the path is known from the config), so an unknown, later or non-rm
    stage is a ConfigError in the preflight, and callbacks given `@rewards` get the resolved spec too.
    """
    if stage.stage != "grpo" or stage.rewards is None:
        return stage.rewards
    import copy

    try:
        data, _ = load_spec(stage.rewards)
    except ConfigError:
        return stage.rewards  # compose reports it with the stage's name
    if not isinstance(data, dict) or not isinstance(spec_rewards(data), dict):
        return stage.rewards  # compose reports the shape
    entries = spec_rewards(data)
    stages = {s.label: s for s in earlier}
    resolved: dict | None = None
    for alias, entry in entries.items():
        ref = entry.get("model") if isinstance(entry, dict) else None
        if not (isinstance(ref, str) and ref.startswith(REF_PREFIX)):
            continue
        target = stages.get(ref[len(REF_PREFIX):])
        if target is None:
            raise ConfigError(f"{where}: stage {stage.label!r}: rewards.{alias}.model {ref!r} does not name an "
                              f"earlier stage.{closest(ref[len(REF_PREFIX):], list(stages))} Hint: earlier stages "
                              f"are {list(stages) or 'none'}; a reward model comes from an earlier `stage: rm`.")
        if target.stage != "rm":
            raise ConfigError(f"{where}: stage {stage.label!r}: rewards.{alias}.model {ref!r} is a {target.stage} "
                              "stage, not a reward model. Hint: name a `stage: rm` (its merged sequence "
                              "classifier).")
        if resolved is None:
            resolved = nested_spec(copy.deepcopy(data))
        resolved["rewards"][alias] = {**entry, "model": handoff_dir(target)}
    return stage.rewards if resolved is None else resolved


def _compose_rewards(stage: StageConfig, where: str, spec: Any = None) -> Any:
    if stage.stage != "grpo":
        return None
    try:
        return compose(stage.rewards if spec is None else spec, name="reward")
    except ConfigError as exc:
        raise ConfigError(f"{where}: stage {stage.label!r}: rewards: {exc}") from None


def prepare(stages: list[StageConfig], where: str) -> list[_Prepared]:
    """Validate every stage and load its data before any training starts."""
    check_models(stages, where)  # every model and tokenizer resolves; before the heavy imports, so it fails fast
    check_vllm(stages, where)  # trainer.use_vllm: vllm importable, a version TRL supports
    prepared = []
    for i, stage in enumerate(stages):
        check_trainer_keys(stage, where)
        check_trainer_values(stage, where)
        check_quantization(stage, where)
        spec = reward_spec(stage, stages[:i], where)  # `model: "@rm"` in a reward -> that stage's model
        rewards = _compose_rewards(stage, where, spec)
        train, eval_ds = load_stage_data(stage, reference_columns(rewards) if rewards is not None else {})
        # The TRL config's own checks (strategies, batch divisibility...) run now rather than after stage 1.
        build_args(stage, where, {"reward_weights": rewards.to_trl()[1]} if rewards is not None else None)
        strategy = str(stage.trainer.get("eval_strategy", "no"))
        if strategy != "no" and eval_ds is None:
            raise ConfigError(f"{where}: stage {stage.label!r}: trainer.eval_strategy={strategy!r} needs an eval "
                              "set. Hint: set dataset.eval_size (e.g. 0.1), eval_file or eval_split.")
        p = _Prepared(stage, train, eval_ds, rewards, [])
        # Built here, not when the stage starts: a bad callback name in stage 3 must fail before stage 1 trains.
        wants_eval = any(v == "@eval" for cb in stage.callbacks for v in cb.values())
        # '@eval': the mapped eval rows themselves (checkpoint_inference takes a Dataset), so no rank waits for a
        # file; the main process also leaves them in <output_dir>/eval_rows.jsonl for the user to inspect.
        if wants_eval and eval_ds is not None and is_main_process():
            atomic_write_jsonl(Path(stage.output_dir) / "eval_rows.jsonl", eval_ds.to_list())
        p.callbacks = build_callbacks(stage, where, {"@eval": eval_ds if wants_eval else None, "@rewards": spec})
        prepared.append(p)
    return prepared


def run_stage(p: _Prepared, model: str, where: str) -> StageResult:
    """Train one prepared stage from `model` and save final/ (and merged/ when it trained an adapter)."""
    stage = p.stage
    out = Path(stage.output_dir)
    trainer = build_trainer(stage, model, p.train, p.eval, p.callbacks, where, rewards=p.rewards)
    start = time.perf_counter()
    output = trainer.train()
    runtime = time.perf_counter() - start
    final = out / "final"
    trainer.save_model(str(final))  # an adapter only, when LoRA was trained
    handoff = handoff_dir(stage)  # what `@name` resolves to (rewards resolved it in prepare already)
    if stage.peft is not None:
        if trainer.accelerator.is_main_process:
            with loading(where, stage, model, stage.tokenizer):
                merge_adapter(stage, model, str(final), handoff)
        trainer.accelerator.wait_for_everyone()
    metrics = {k: v for k, v in (output.metrics or {}).items() if isinstance(v, (int, float))}
    loss = output.training_loss
    result = StageResult(stage.label, stage.stage, str(out), handoff, trainer.state.global_step,
                         None if loss is None else float(loss), round(runtime, 2), metrics)
    if trainer.accelerator.is_main_process:
        # base_model: what `model: "@stage"` resolved to (`rewardkit generate --from-run` applies the adapter to it).
        atomic_write_json(out / "rewardkit_stage.json", {**asdict(result), "base_model": model,
                                                         "config": stage.model_dump()})
    del trainer  # free the model before the next stage loads its own
    return result


def run(config: str | Path | dict, overrides: list[str] | None = None, smoke: bool = False,
        say: Callable[[str], Any] | None = None) -> list[StageResult]:
    """Run a stage or pipeline config (file path or dict) with `key=value` overrides; returns one result per stage.

    `smoke=True` runs the same config offline on tiny local models, a few rows and 2 steps per stage, into
    runs/smoke/<config name> (train/smoke.py); each swap is reported through `say` (default: print).

    Example:
    >>> from rewardkit.train import run
    >>> results = run("examples/tutorial/sft.yaml", ["model=/tmp/tiny", "trainer.max_steps=2"])  # doctest: +SKIP
    >>> results = run("examples/tutorial/sft.yaml", smoke=True)  # doctest: +SKIP
    """
    stages, root, where = load_stages(config, overrides)
    if smoke:
        with smoke_mode():
            stages, root = smoke_setup(stages, root, where, say or print)
            return run_stages(stages, root, where)
    return run_stages(stages, root, where)


def run_stages(stages: list[StageConfig], root: str, where: str) -> list[StageResult]:
    """Check every stage (prepare), then train them in order; `@name` models resolve to earlier stages' outputs."""
    prepared = prepare(stages, where)
    results: list[StageResult] = []
    done: dict[str, str] = {}
    for p in prepared:
        model = p.stage.model
        if model.startswith(REF_PREFIX):
            model = done[model[len(REF_PREFIX):]]
        result = run_stage(p, model, where)
        done[result.name] = result.model
        results.append(result)
    if len(stages) > 1 and is_main_process():
        atomic_write_json(Path(root) / "summary.json", [asdict(r) for r in results])
    return results
