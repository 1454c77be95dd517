"""Config errors come first: checked without the model and before torch/transformers/trl/datasets are imported,
with messages that name what the user wrote."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rewardkit.core.errors import ConfigError
from rewardkit.train.config import load_stages
from rewardkit.train.precheck import GRPO_DEFAULTS, check_grpo_batches

HEAVY = ("torch", "transformers", "trl", "datasets", "peft", "bert_score", "matplotlib")


def _grpo(tmp_path, **extra) -> dict:
    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        "".join(json.dumps({"id": i, "input": {"q": f"{i}+1"}, "gold": str(i + 1)}) + "\n" for i in range(30))
    )
    cfg = {
        "stage": "grpo",
        "model": str(tmp_path),
        "output_dir": str(tmp_path / "out"),
        "dataset": {"path": str(rows), "columns": {"input.q": "prompt"}},
        "rewards": {"rewards": {"em": {"use": "exact_match", "reference": "gold"}}},
        "trainer": {"num_generations": 4, "per_device_train_batch_size": 4},
    }
    (tmp_path / "config.json").write_text("{}")  # a local model folder passes the preflight
    for key, value in extra.items():
        cfg[key] = {**cfg[key], **value} if isinstance(cfg.get(key), dict) else value
    if cfg["dataset"]["path"].endswith(".csv"):  # a file that exists, of a type the loader does not read
        (tmp_path / cfg["dataset"]["path"]).write_text("q,gold\n1+1,2\n")
    return cfg


@pytest.mark.parametrize(
    "change, message",
    [
        ({"rewards": {"rewards": {"em": {"use": "exact_mach"}}}}, "Unknown reward 'exact_mach'"),
        ({"rewards": {"rewards": {"em": {"use": "exact_match", "reference": "answer"}}}}, "missing ['answer']"),
        ({"dataset": {"columns": {"input.question": "prompt"}}}, "dataset.columns: ['input.question'] not found"),
        ({"dataset": {"path": "rows.csv"}}, "rows.csv': unsupported type '.csv'. Hint: use .json, .jsonl, .parquet"),
        (
            {"trainer": {"num_generations": 4, "per_device_train_batch_size": 6}},
            "GRPO generates 6 completions per batch",
        ),
        (
            {
                "rewards": {
                    "combine": "max(em, short)",
                    "rewards": {
                        "em": {"use": "exact_match", "reference": "gold"},
                        "short": {"use": "brevity", "max_length": 8},
                    },
                },
                "trainer": {"multi_objective_aggregation": "normalize_then_sum"},
            },
            "normalize_then_sum normalises each reward function within its group, but rewards combine 'max(em, short)'",
        ),
    ],
)
def test_config_errors_come_before_any_heavy_import(light_errors, request, change, message):
    _assert_light_error(light_errors, request.node, message)


def _official(tmp_path: Path) -> dict:
    """The competition's selection preset (BERTScore inside), its model a local folder: bert-score loads nothing."""
    return {"preset": "official", "set": {"bertscore.model_type": str(tmp_path), "bertscore.num_layers": 2}}


@pytest.mark.parametrize(
    "change, message",
    [
        ({"trainer": {"learning_rat": 1e-5}}, "trainer.learning_rat is not an argument of GRPOConfig. Did you mean"),
        ({"dataset": {"columns": {"input.questio": "prompt"}}}, "dataset.columns: ['input.questio'] not found"),
        ({"dataset": {"path": "rows.jsnl"}}, "dataset.path 'rows.jsnl' does not exist. Did you mean 'rows.jsonl'?"),
        ({"trainer": {"per_device_train_batch_size": 3}}, "GRPO generates 3 completions per batch"),
        ({"trainer": {"output_dir": "x"}}, "trainer.output_dir is set by rewardkit"),
        (
            {"trainer": {"eval_strategy": "steps", "per_device_eval_batch_size": 3}},
            "the global eval batch (per_device_eval_batch_size 3 x 1 process(es)) is not a whole number of groups "
            "of num_generations_eval=4",
        ),
        ({"trainer": {"learning_rate": "abc"}}, "trainer.learning_rate: Input should be a valid number"),
    ],
    ids=["trainer-key", "column", "dataset-path", "batch", "owned-key", "eval-batch", "trainer-value"],
)
def test_bertscore_configs_fail_before_torch_is_imported(light_errors, request, change, message):
    """Both competition presets use bertscore, whose package imports torch, transformers and matplotlib: its
    tables are read from source, so a config error still comes before any of them (issue 29, 2 s goal)."""
    pytest.importorskip("rewardkit_korean")
    _assert_light_error(light_errors, request.node, message)


def _bertscore_config(tmp_path: Path, change: dict) -> dict:
    cfg = _grpo(tmp_path, **change)
    cfg["rewards"] = _official(tmp_path)
    cfg["dataset"]["columns"] = {**cfg["dataset"]["columns"], "gold": "answer"}  # the presets read `answer`
    cfg["callbacks"] = [{"name": "best_checkpoint", "spec": _official(tmp_path)}]
    return cfg


# Every case above runs in one fresh interpreter, one after the other, each in its own folder: the heavy modules
# it holds after a case include every one that case would import alone (sys.modules only grows), so "none" after
# each case says what one process per case says, for one interpreter start instead of 12.
_LIGHT_ERRORS = """
import json, os, sys
from rewardkit.core.errors import ConfigError
from rewardkit.train import run
for cwd, cfg in json.loads(sys.argv[1]):
    os.chdir(cwd)
    try:
        run(cfg)
        said = "no error"
    except ConfigError as exc:
        said = str(exc)
    except Exception as exc:  # noqa: BLE001  (reported, not hidden: the case fails with it)
        said = f"{type(exc).__name__}: {exc}"
    print("CASE", json.dumps([said, [m for m in sys.argv[2].split(",") if m in sys.modules]]), flush=True)
"""


def _bertscore_case(item: pytest.Item) -> bool:
    return getattr(item, "originalname", "") == "test_bertscore_configs_fail_before_torch_is_imported"


@pytest.fixture(scope="module")
def light_errors(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """{test id: (the error, the heavy modules imported by then)} for this module's cases in this run."""
    cases = [
        item
        for item in request.session.items
        if isinstance(item, pytest.Function) and item.module is request.module and "light_errors" in item.fixturenames
    ]
    jobs = []
    for item in cases:
        folder, change = tmp_path_factory.mktemp("precheck"), item.callspec.params["change"]
        cfg = _bertscore_config(folder, change) if _bertscore_case(item) else _grpo(folder, **change)
        jobs.append((item.nodeid, str(folder), cfg))
    proc = subprocess.run(
        [sys.executable, "-c", _LIGHT_ERRORS, json.dumps([job[1:] for job in jobs]), ",".join(HEAVY)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    said = [line.removeprefix("CASE ") for line in proc.stdout.splitlines() if line.startswith("CASE ")]
    assert len(said) == len(jobs), proc.stdout[-2000:] + proc.stderr[-3000:]
    return {key: json.loads(line) for (key, _, _), line in zip(jobs, said)}


def _assert_light_error(results: dict, item: pytest.Item, message: str) -> None:
    error, heavy = results[item.nodeid]
    assert message in error and heavy == [], (error, heavy)


def test_generation_batch_message_names_the_keys_set_and_the_nearest_valid_values(tmp_path):
    [stage], _, _ = load_stages(_grpo(tmp_path, trainer={"num_generations": 4, "per_device_train_batch_size": 6}))
    with pytest.raises(ConfigError) as info:
        check_grpo_batches(stage, "c.yaml")
    msg = str(info.value)
    assert "(you set per_device_train_batch_size=6, num_generations=4; the rest are TRL's defaults)" in msg
    assert "completions per prompt" in msg and "set per_device_train_batch_size to 4 or 8" in msg
    assert "num_generations to one of [2, 3, 6]" in msg
    [stage], _, _ = load_stages(
        _grpo(tmp_path, trainer={"num_generations": 4, "generation_batch_size": 10, "per_device_train_batch_size": 2})
    )
    with pytest.raises(ConfigError, match="set generation_batch_size to 8 or 12"):
        check_grpo_batches(stage, "c.yaml")
    [stage], _, _ = load_stages(_grpo(tmp_path, trainer={"num_generations": 4, "per_device_train_batch_size": 8}))
    check_grpo_batches(stage, "c.yaml")  # whole groups: fine


def test_grpo_defaults_are_trls():
    import dataclasses

    from trl import GRPOConfig

    defaults = {f.name: f.default for f in dataclasses.fields(GRPOConfig)}
    assert {k: defaults[k] for k in GRPO_DEFAULTS} == {**GRPO_DEFAULTS, "eval_strategy": defaults["eval_strategy"]}
    assert str(defaults["eval_strategy"]) in ("no", "IntervalStrategy.NO")


def test_an_unquoted_yaml_on_is_explained(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(
        "stage: sft\nmodel: m\ndataset: {generator: arithmetic}\n"
        "callbacks:\n  - {name: checkpoint_inference, on: save}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_stages(config)
    assert str(info.value) == (
        f"{config}: callbacks.0: key True is not text: YAML 1.1 reads unquoted on, yes, true, "
        'y as True. Hint: quote it, e.g. "on": ...'
    )


@pytest.mark.parametrize(
    "key, value, kind",
    [
        ("save_only_model", "false", "boolean"),  # TRL took the text as true: checkpoints without optimizer state
        ("learning_rate", "0.05", "number"),  # a traceback in the optimizer, mid-run
        ("weight_decay", "nan", "number"),  # passed the finite check as text, then a traceback
        ("max_steps", 6.0, "integer"),
    ],
)
def test_a_trainer_bool_or_number_given_as_text_is_refused(tmp_path, key, value, kind):
    from rewardkit.train.precheck import check_trainer_value_types
    from rewardkit.train.stages import check_trainer_values

    [stage], _, _ = load_stages(_grpo(tmp_path, trainer={"num_generations": 4, key: value}))
    for check in (check_trainer_value_types, check_trainer_values):  # before TRL is imported, and after
        with pytest.raises(ConfigError, match=rf"trainer\.{key}: Input should be a valid {kind}"):
            check(stage, "c.yaml")
    [stage], _, _ = load_stages(
        _grpo(tmp_path, trainer={"num_generations": 4, "save_only_model": False, "learning_rate": 1, "max_steps": 6})
    )
    check_trainer_value_types(stage, "c.yaml")  # values of their types (an int for a float) still pass
    check_trainer_values(stage, "c.yaml")


_INFERENCE = {"name": "checkpoint_inference", "dataset": "@eval", "reference_columns": ["gold"]}


@pytest.mark.parametrize(
    "callbacks, named",
    [
        ([_INFERENCE, {"name": "best_checkpoint", "spec": "@rewards", "best_dir": "final"}], "best_dir 'final'"),
        ([_INFERENCE, {"name": "best_checkpoint", "spec": "@rewards", "best_dir": "checkpoint-2"}], "'checkpoint-2'"),
        ([{"name": "lora_save", "output_dir": "merged/adapters"}], "output_dir 'merged/adapters'"),
        ([{**_INFERENCE, "sidecar": "runs"}], "sidecar 'runs'"),
        ([{"name": "lora_save", "output_dir": "{out}/incomplete"}], "/incomplete'"),  # absolute, inside the run
    ],
    ids=["best-final", "best-checkpoint", "lora-merged", "sidecar-runs", "absolute-incomplete"],
)
def test_a_callback_folder_on_the_runs_own_folders_is_refused(tmp_path, callbacks, named):
    """best_dir: final was overwritten by the final adapter while the record named it the best step's model;
    best_dir: checkpoint-2 replaced that checkpoint's resume state; lora_save in merged/ was deleted by the merge."""
    from rewardkit.train.callback_folders import check_callback_folders

    cfg = _grpo(tmp_path, dataset={"eval_size": 2})
    cfg["callbacks"] = json.loads(json.dumps(callbacks).replace("{out}", cfg["output_dir"]))
    [stage], _, _ = load_stages(cfg)
    with pytest.raises(ConfigError, match=rf"callbacks\[\d\] \(\w+\): .*{named} is inside the run's own"):
        check_callback_folders(stage, "c.yaml")
    cfg["callbacks"] = [_INFERENCE, {"name": "best_checkpoint", "spec": "@rewards", "best_dir": "my_best"}]
    [stage], _, _ = load_stages(cfg)
    check_callback_folders(stage, "c.yaml")  # a name of its own is fine


def test_best_dir_final_is_refused_before_anything_loads(tmp_path):
    cfg = _grpo(tmp_path, dataset={"eval_size": 2})
    cfg["callbacks"] = [_INFERENCE, {"name": "best_checkpoint", "spec": "@rewards", "best_dir": "final"}]
    from rewardkit.train import run

    with pytest.raises(ConfigError, match="best_dir 'final' is inside the run's own 'final'"):
        run(cfg)  # from the precheck: before any model loads
    assert not (tmp_path / "out").exists()
