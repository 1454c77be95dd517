"""Running one stage or a pipeline of stages: check everything first, then train each stage in order."""

from __future__ import annotations

import json
import os
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from rewardkit.api import load_compose_spec
from rewardkit.composition.composed import Composed
from rewardkit.composition.scoring import reward_usage
from rewardkit.composition.spec import callable_path
from rewardkit.core.distributed import is_main_process
from rewardkit.core.errors import ConfigError
from rewardkit.core.fileio import atomic_write_json, atomic_write_jsonl, nulls_for_nonfinite
from rewardkit.core.output_dirs import marker_owner
from rewardkit.core.validation import stage_ref
from rewardkit.core.write_errors import writing
from rewardkit.train import eval_plan
from rewardkit.train.callback_folders import check_callback_folders
from rewardkit.train.config import StageConfig, load_stages
from rewardkit.train.config_change import settings as run_settings
from rewardkit.train.data import load_stage_data, reference_columns
from rewardkit.train.model_template import check_model_template
from rewardkit.train.precheck import (
    check_aggregation,
    check_columns,
    check_dataset_files,
    check_grpo_batches,
    check_trainer_keys,
    check_trainer_value_types,
)
from rewardkit.train.preflight import check_models, check_stage_judges, check_vllm, loading, stand_in_warnings
from rewardkit.train.record import absolute_if_local, revision_of, write_stage_record
from rewardkit.train.resume import STARTED, check_checkpoint_files
from rewardkit.train.run_folder import pipeline_names, refuse_foreign, refuse_links
from rewardkit.train.run_lock import locked_all
from rewardkit.train.run_plan import StagePlan, plan_stages
from rewardkit.train.smoke import smoke_mode, smoke_setup
from rewardkit.train.stage_rewards import compose_rewards, handoff_dir, reward_spec
from rewardkit.train.stages import (
    build_args,
    build_callbacks,
    build_trainer,
    check_quantization,
    check_trainer_values,
    merge_adapter,
    on_terminal,
)
from rewardkit.train.summary import StageResult, best_of
from rewardkit.train.trainer_guards import finish_without_training, guard_model_card, steps_left


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
    eval_rows: bool = False  # '@eval' given: the stage leaves its eval rows in eval_rows.jsonl when it starts


def precheck(stages: list[StageConfig], where: str, skip: frozenset[str] = frozenset()) -> dict[str, tuple]:
    """The checks that need no model and no heavy import, for every stage before any is prepared: rewards
    built, columns in the first rows, GRPO's batch arithmetic (train/precheck.py). Returns {label: (spec,
    composed rewards)}."""
    for stage in stages:  # what a typo breaks, named before any model is looked up (milliseconds)
        if stage.label not in skip:
            check_trainer_keys(stage, where)
            check_trainer_value_types(stage, where)
            check_dataset_files(stage, where)
            check_callback_folders(stage, where)  # best_dir: final would be overwritten by the final adapter
    check_models([s for s in stages if s.label not in skip], where)  # every model and tokenizer resolves
    check_vllm(
        [s for s in stages if s.label not in skip], where
    )  # trainer.use_vllm: vllm importable, a version TRL supports
    out = {}
    for i, stage in enumerate(stages):
        if stage.label in skip:
            continue
        spec = reward_spec(stage, stages[:i], where)  # `model: "@rm"` in a reward -> that stage's model
        rewards = compose_rewards(stage, where, spec)
        check_columns(stage, reference_columns(rewards) if rewards is not None else {}, where)
        check_grpo_batches(stage, where)
        eval_plan.check_plan(stage, where)
        check_aggregation(stage, rewards, where)
        check_stage_judges(stage, rewards, where)  # one GET per judge server: before any model loads
        out[stage.label] = (spec, rewards)
    return out


def prepare(
    stages: list[StageConfig],
    where: str,
    skip: frozenset[str] = frozenset(),
    light: dict[str, tuple] | None = None,
    say: Callable[[str], object] = print,
) -> list[_Prepared]:
    """Validate every stage and load its data before any training starts (stages named in `skip` finished
    before and are not prepared again; `light`: precheck's result when it ran already). Writes nothing; the
    eval plan's warnings (rows generated twice, one prompt per generate call) go to `say`."""
    if light is None:
        light = precheck(stages, where, skip)  # seconds, before torch/transformers/trl are imported
    prepared = []
    for stage in stages:
        if stage.label in skip:
            continue
        check_trainer_values(stage, where)
        check_quantization(stage, where)
        spec, rewards = light[stage.label]
        train, eval_ds = load_stage_data(stage, reference_columns(rewards) if rewards is not None else {})
        check_model_template(stage, where)  # the model's own chat template, before any stage trains
        # The TRL config's own checks (strategies, batch divisibility...) run now rather than after stage 1.
        build_args(stage, where, {"reward_weights": rewards.to_trl()[1]} if rewards is not None else None)
        strategy = str(stage.trainer.get("eval_strategy", "no"))
        if strategy != "no" and eval_ds is None:
            raise ConfigError(
                f"{where}: stage {stage.label!r}: trainer.eval_strategy={strategy!r} needs an eval set.",
                hint="set dataset.eval_size (e.g. 0.1), eval_file or eval_split.",
            )
        p = _Prepared(stage, train, eval_ds, rewards, [])
        # Built here, not when the stage starts: a bad callback name in stage 3 must fail before stage 1 trains.
        # '@eval': the mapped eval rows themselves (checkpoint_inference takes a Dataset), so no rank waits for a
        # file; the main process also leaves them in <output_dir>/eval_rows.jsonl for the user to inspect, when the
        # stage starts (a folder is written only once its run has claimed it: run_stage).
        wants_eval = any(v == "@eval" for cb in stage.callbacks for v in cb.values())
        p.eval_rows = wants_eval and eval_ds is not None
        p.callbacks = build_callbacks(stage, where, {"@eval": eval_ds if wants_eval else None, "@rewards": spec})
        if eval_ds is not None and is_main_process():
            for line in eval_plan.warnings(stage, len(eval_ds), len(train)):
                say(f"warning: {line}")
        prepared.append(p)
    return prepared


def run_stage(
    p: _Prepared,
    model: str,
    where: str,
    checkpoint: Path | None = None,
    say: Callable[[str], object] | None = None,
    settings: dict | None = None,
) -> StageResult:
    """Train one prepared stage from `model` (continuing from `checkpoint`, a complete checkpoint-N, when given)
    and save final/ (and merged/ when it trained an adapter). `settings`: what the STARTED marker records, for
    a later resume to compare with. A checkpoint at max_steps (killed after its last save) is finished without
    training past it."""
    from rewardkit.train.events import EventLines, ForwardEvalMetrics
    from rewardkit.train.log_records import LogRecords
    from rewardkit.train.save_record import record_saves, saving

    stage = p.stage
    out = stage.folder
    trainer = build_trainer(stage, model, p.train, p.eval, p.callbacks, where, rewards=p.rewards)
    guard_model_card(trainer, out)
    trainer.add_callback(ForwardEvalMetrics(trainer))  # after the user's: sees what they added to the metrics
    trainer.add_callback(LogRecords(out))  # every record, in <output_dir>/log_history.jsonl
    record_saves(trainer, out)  # what the Trainer saves is recorded as the run's (train/save_record.py)
    if say is not None and not on_terminal():
        from transformers import PrinterCallback, ProgressCallback

        lines = EventLines(stage.label, say)
        # Both print the raw dict of every log (ProgressCallback also draws bars, which nobody sees off a
        # terminal): EventLines prints the short form.
        trainer.remove_callback(PrinterCallback)
        trainer.remove_callback(ProgressCallback)
        trainer.add_callback(lines)
        for callback in p.callbacks:
            if callable(getattr(callback, "watch", None)):  # checkpoint_inference: start, progress and end lines
                callback.watch(lines.inference)
    if trainer.accelerator.is_main_process:
        atomic_write_json(out / STARTED, {"stage": stage.label, "config": where, "settings": settings}, inside=out)
        if p.eval_rows:
            atomic_write_jsonl(out / "eval_rows.jsonl", p.eval.to_list(), inside=out)
    start = time.perf_counter()
    final = out / "final"
    with writing(out, f"stage {stage.label!r}"):  # TRL's checkpoint saves: a full disk, a read-only folder
        if checkpoint is not None and steps_left(trainer, checkpoint) <= 0:
            if say is not None and trainer.accelerator.is_main_process:
                say(f"resume: stage {stage.label!r}: {checkpoint} is the last step; finishing without training.")
            output = finish_without_training(trainer, checkpoint)
        else:
            # Passed explicitly: TrainingArguments.resume_from_checkpoint alone is ignored by Trainer.train().
            output = trainer.train(resume_from_checkpoint=None if checkpoint is None else str(checkpoint))
        runtime = time.perf_counter() - start
        if trainer.accelerator.is_main_process:  # the whole log history beside log_history.jsonl (checkpoints: theirs)
            atomic_write_json(out / "trainer_state.json", nulls_for_nonfinite(asdict(trainer.state)), inside=out)
        with saving(out, final, trainer.accelerator.is_main_process):
            trainer.save_model(str(final))  # an adapter only, when LoRA was trained
    handoff = handoff_dir(stage)  # what `@name` resolves to (rewards resolved it in prepare already)
    if stage.peft is not None:
        if trainer.accelerator.is_main_process:
            with loading(where, stage, model, stage.tokenizer):
                merge_adapter(stage, model, str(final), handoff)
        trainer.accelerator.wait_for_everyone()
    metrics = {k: v for k, v in (output.metrics or {}).items() if isinstance(v, (int, float))}
    loss = output.training_loss
    result = StageResult(
        stage.label,
        stage.stage,
        str(out),
        handoff,
        trainer.state.global_step,
        None if loss is None else float(loss),
        round(runtime, 2),
        metrics,
        resumed_from=None if checkpoint is None else str(checkpoint),
        reward_usage=_spent(p),
        **best_of(trainer.state, trainer.args, p.callbacks),
    )
    if trainer.accelerator.is_main_process:
        # base_model: what `model: "@stage"` resolved to (`rewardkit generate --from-run` applies the adapter to it).
        write_stage_record(
            out,
            asdict(result),
            model,
            json.loads(json.dumps(_portable(stage.model_dump()), default=str)),
            revision_of(trainer.model),
        )
    del trainer  # free the model before the next stage loads its own
    return result


def _settings(stage: StageConfig, light: tuple | None) -> dict:
    """What the stage records to compare on resume: its config and its reward spec as loaded."""
    spec = light[0] if light is not None else None
    rewards = load_compose_spec(spec).to_dict(portable=True) if spec is not None else None
    return run_settings(_portable(stage.model_dump()), rewards)


def _spent(p: _Prepared) -> dict[str, dict[str, int]]:
    """What the training reward's components and the callbacks' own compositions (best_checkpoint scoring with a
    judge) spent in this process, by alias; a callback's entries are named `<alias> (<callback class>)`."""
    spent = {} if p.rewards is None else reward_usage(p.rewards)
    for callback in p.callbacks:
        if isinstance(composed := getattr(callback, "composed", None), Composed):
            spent.update({f"{a} ({type(callback).__name__})": u for a, u in reward_usage(composed).items()})
    return spent


def _portable(value: Any) -> Any:
    """The value with inline reward callables written as `module:name` (the stage record is JSON)."""
    if isinstance(value, dict):
        return {k: _portable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_portable(v) for v in value]
    return callable_path(value) if callable(value) else value


def run(
    config: str | Path | dict,
    overrides: list[str] | None = None,
    smoke: bool = False,
    say: Callable[[str], object] | None = None,
    resume: str | None = None,
    overwrite: bool = False,
    output: str | Path | None = None,
    accept_config_change: bool = False,
) -> list[StageResult]:
    """Run a stage or pipeline config (file path or dict) with `key=value` overrides; returns one result per stage.

    A stage folder that holds a run is refused unless `resume` ("latest", or a checkpoint-N path: finished
    stages are reused, the interrupted one continues) or `overwrite` (the earlier run is deleted) is given.

    `smoke=True` runs the same config offline on tiny local models, a few rows and 2 steps per stage, into
    runs/smoke/<config name> (train/smoke.py); each swap is reported through `say` (default: print).
    `output`: the output folder (a stage's or the pipeline's `output_dir`; with `smoke`, the smoke folder).
    `accept_config_change`: with `resume`, continue although the config changed what is trained.

    Example:
    >>> from rewardkit.train import run
    >>> results = run("examples/tutorial/sft.yaml", ["model=/tmp/tiny", "trainer.max_steps=2"])  # doctest: +SKIP
    >>> results = run("examples/tutorial/sft.yaml", smoke=True)  # doctest: +SKIP
    """
    if output is not None and not smoke:
        overrides = [*(overrides or []), f"output_dir={json.dumps(str(output))}"]  # JSON text is YAML: quoted
    stages, root, where = load_stages(config, overrides)
    say = say or print
    if smoke:
        if resume is not None:
            raise ConfigError("--smoke starts over in its own folder every time.", hint="drop --resume (or --smoke).")
        with smoke_mode():
            stages, root = smoke_setup(stages, root, where, say, output)
            return run_stages(stages, root, where, say=say)
    for line in stand_in_warnings(stages) if is_main_process() else []:
        say(line)
    return run_stages(
        stages, root, where, resume=resume, overwrite=overwrite, say=say, accept_config_change=accept_config_change
    )


def run_stages(
    stages: list[StageConfig],
    root: str,
    where: str,
    resume: str | None = None,
    overwrite: bool = False,
    say: Callable[[str], object] = print,
    accept_config_change: bool = False,
) -> list[StageResult]:
    """Check every stage (prepare), then train them in order; `@name` models resolve to earlier stages' outputs.

    The stage folders are locked for the run (train/run_lock.py); finished stages of a resumed run are reused. A
    folder is written only when it is new or holds a run (train/run_folder.py), and only once its stage starts
    (the STARTED marker first): a config error or a kill in an earlier stage leaves it as it was.
    """
    main = is_main_process()
    if len(stages) > 1 and main:  # a stage folder linked elsewhere (a received archive): refused before its lock
        refuse_links(Path(root), pipeline_names(stages, Path(root)), where)
    with locked_all([s.folder for s in stages], say) if main else nullcontext():
        light = precheck(stages, where)  # a config error comes before anything is resumed, deleted or loaded
        # A folder a rewardkit command claimed (`demo`, `--smoke`: its marker) holds that command's other entries.
        if len(stages) > 1 and resume is None and main and marker_owner(root) is None:
            refuse_foreign(
                Path(root),
                pipeline_names(stages, Path(root)),
                where,
                "the pipeline would write into",
                "give the pipeline a new or empty output_dir (or move that entry out of the folder).",
            )
        recorded = {s.label: _settings(s, light.get(s.label)) for s in stages}
        plans = plan_stages(
            stages, where, resume, overwrite, say if main else (lambda line: None), main, recorded, accept_config_change
        )
        for stage in stages:
            checkpoint = plans[stage.label].checkpoint
            if checkpoint is not None:
                check_checkpoint_files(checkpoint, where, stage.label)
        prepared = {
            p.stage.label: p
            for p in prepare(
                stages,
                where,
                frozenset(s.label for s in stages if plans[s.label].record is not None),
                light,
                say if main else (lambda line: None),
            )
        }
        results: list[StageResult] = []
        done: dict[str, str] = {}
        for stage in stages:
            plan: StagePlan = plans[stage.label]
            if plan.record is not None:
                result = StageResult.from_record(plan.record)
            else:
                model = stage.model
                ref = stage_ref(model)
                if ref is not None:
                    model = done[ref]
                result = run_stage(
                    prepared[stage.label], model, where, plan.checkpoint, say if main else None, recorded[stage.label]
                )
            done[result.name] = result.model
            results.append(result)
        if len(stages) > 1 and main:
            # Absolute, like the stage records: `generate --from-run` may read the run from another directory.
            atomic_write_json(
                Path(root) / "summary.json",
                [
                    {**asdict(r), "output_dir": os.path.abspath(r.output_dir), "model": absolute_if_local(r.model)}
                    for r in results
                ],
                inside=root,
            )
    return results
