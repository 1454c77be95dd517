"""The callbacks' public link, their folders (kept inside the run) and pruning that touches only marked folders.

Real Trainer argument/state objects and callbacks, no training loop.
"""

from __future__ import annotations

import json
import os
import warnings

import pytest

import rewardkit
from rewardkit import ConfigError, DataError
from rewardkit.core.paths import run_path, safe_child
from rewardkit.selection.inference_files import make_record

SPEC = {"rewards": {"em": {"use": "exact_match"}}}
VAL = [{"id": f"q{i}", "prompt": f"{i}+{i}=", "answer": str(2 * i)} for i in range(3)]


def _args_state(tmp_path, step=3, **kw):
    from transformers import TrainerState, TrainingArguments

    args = TrainingArguments(output_dir=str(tmp_path / "run"), report_to="none", use_cpu=True, **kw)
    return args, TrainerState(global_step=step, epoch=1.0)


def _step_file(folder, step, outputs):
    folder.mkdir(parents=True, exist_ok=True)
    records = [{"id": f"q{i}", "prompt": "p", "output": o, "answer": str(2 * i)} for i, o in enumerate(outputs)]
    (folder / f"step_{step}.json").write_text(json.dumps({"step": step, "epoch": step / 10, "records": records}))


# --- paths -----------------------------------------------------------------------------------------------------
def test_run_paths_stay_inside_unless_absolute(tmp_path):
    assert run_path(tmp_path, "adapters", "x") == tmp_path / "adapters"
    assert run_path(tmp_path, "a/../b", "x") == tmp_path / "b"
    assert run_path(tmp_path, "/elsewhere/adapters", "x") == run_path("/other", "/elsewhere/adapters", "x")
    for bad in ("../../victim", "..", "a/../../b"):
        with pytest.raises(ConfigError, match="escapes.*Hint: .*absolute path"):
            run_path(tmp_path, bad, "x")
    with pytest.raises(ConfigError, match="relative name"):
        safe_child(tmp_path, "/abs", "best_dir")


@pytest.mark.parametrize(
    "name, params",
    [
        ("lora_save", {"output_dir": "../../victim"}),
        ("best_checkpoint", {"spec": SPEC, "adapters_dir": "../x"}),
    ],
)
def test_callback_folders_that_climb_out_are_refused_naming_the_parameter(name, params):
    key = next(k for k in params if k != "spec")
    with pytest.raises(ConfigError, match=rf"callback '{name}': {key} '\.\./.*escapes.*Hint:"):
        rewardkit.get_callback(name, **params)


def test_absolute_and_relative_folders_resolve_against_the_run(tmp_path):
    from rewardkit.callbacks.common import resolve_dir

    args, _ = _args_state(tmp_path)
    rewardkit.get_callback("lora_save", output_dir=str(tmp_path / "disk2"))  # accepted
    assert resolve_dir(args, str(tmp_path / "disk2"), "adapters", "o") == tmp_path / "disk2"
    assert resolve_dir(args, "mine", "adapters", "o") == tmp_path / "run" / "mine"
    assert resolve_dir(args, None, "adapters", "o") == tmp_path / "run" / "adapters"


def test_dataset_folder_and_completion_column_are_refused_clearly(tmp_path):
    with pytest.raises(DataError, match="is a directory, not a file"):
        rewardkit.get_callback("checkpoint_inference", dataset=str(tmp_path))
    rows = [dict(v, completion="gold") for v in VAL]
    with pytest.raises(ConfigError, match="'completion' would be read as the generated text"):
        rewardkit.get_callback("checkpoint_inference", dataset=rows, reference_columns=["completion"])


# --- the link -------------------------------------------------------------------------------------------------
def test_link_callbacks_pairs_by_sidecar_in_any_order():
    from rewardkit.callbacks import link_callbacks

    other = object()
    best = rewardkit.get_callback("best_checkpoint", spec=SPEC)
    inference = rewardkit.get_callback("checkpoint_inference", dataset=VAL)
    lone = rewardkit.get_callback("best_checkpoint", spec=SPEC, sidecar="elsewhere")
    assert link_callbacks((best, other, lone, inference)) == [best, other, lone, inference]
    assert best.partner is inference and inference.listeners == [best] and lone.partner is None
    link_callbacks([inference, best])  # again: nothing doubles
    assert inference.listeners == [best]
    with pytest.raises(ConfigError, match="cannot link.*same sidecar"):
        lone.attach(inference)
    twin = rewardkit.get_callback("checkpoint_inference", dataset=VAL, sidecar="./inference")
    with pytest.raises(ConfigError, match="two checkpoint_inference callbacks use sidecar"):
        link_callbacks([inference, twin])


def test_linked_partner_feeds_the_metric_whichever_runs_first(tmp_path):
    """best_checkpoint before its partner at evaluate: it waits, then inserts the metric from the hand-over."""
    from rewardkit.callbacks import link_callbacks

    best, inference = link_callbacks(
        [
            rewardkit.get_callback("best_checkpoint", spec=SPEC),
            rewardkit.get_callback("checkpoint_inference", dataset=VAL, reference_columns=["answer"]),
        ]
    )
    args, state = _args_state(tmp_path, metric_for_best_model="eval_score", eval_strategy="steps")
    best.on_train_begin(args, state, None)
    metrics = {"eval_loss": 1.0}
    best.on_evaluate(args, state, None, metrics=metrics)
    assert "eval_score" not in metrics  # the partner has not generated yet: nothing scored from stale files
    records = [make_record(v["id"], v["prompt"], out, {"answer": v["answer"]}) for v, out in zip(VAL, "0x4")]
    _step_file(tmp_path / "run" / "inference", 3, "0x4")  # what the partner writes before handing over
    best.inference_ready(args, state, tmp_path / "run" / "inference" / "step_3.json", records, metrics)
    assert metrics["eval_score"] == pytest.approx(2 / 3)
    assert state.log_history[-1]["eval_score"] == metrics["eval_score"]  # logged too


def test_metric_for_best_model_needs_a_generating_partner(tmp_path):
    args, state = _args_state(tmp_path, metric_for_best_model="eval_score", eval_strategy="steps")
    lone = rewardkit.get_callback("best_checkpoint", spec=SPEC)
    lone.on_train_begin(args, state, None)
    lone.on_step_begin(args, state, None)  # unlinked: a partner listed first may still write the file
    with pytest.raises(ConfigError, match=r"no step_3.json.*Hint: list checkpoint_inference.*link_callbacks"):
        lone.on_evaluate(args, state, None, metrics={"eval_loss": 1.0})
    best = rewardkit.get_callback("best_checkpoint", spec=SPEC)
    best.attach(rewardkit.get_callback("checkpoint_inference", dataset=VAL, on="save"))
    best.on_train_begin(args, state, None)
    with pytest.raises(ConfigError, match="on='save'. Hint: on='evaluate' or 'both'"):
        best.on_step_begin(args, state, None)


# --- rows -----------------------------------------------------------------------------------------------------
def test_rescan_scores_files_of_different_rows_on_the_shared_ones(tmp_path):
    sidecar = tmp_path / "run" / "inference"
    _step_file(sidecar, 1, ["0", "2", "x"])
    _step_file(sidecar, 2, ["0", "x"])  # a shorter validation set after a resume
    args, state = _args_state(tmp_path, step=2)
    best = rewardkit.get_callback("best_checkpoint", spec=SPEC)
    damaged = {
        "expression": best.composed.expression,
        "spec": best.spec,
        "completion_key": None,
        "checkpoints": [{"step": 1, "file": "step_1.json", "count": 2, "dropped": 1}, "junk"],
    }
    (sidecar / "scores.json").write_text(json.dumps(damaged))  # same config, a damaged entry: rescored
    with pytest.warns(UserWarning, match="different rows.*2 rows all of them share"):
        best.on_train_begin(args, state, None)
    record = json.loads((sidecar / "scores.json").read_text())
    assert [(c["step"], c["count"], c["dropped"], c["score"]) for c in record["checkpoints"]] == [
        (1, 2, 1, 1.0),
        (2, 2, 0, 0.5),
    ]


# --- adapters: the marker -----------------------------------------------------------------------------------------
class _Saveable:
    """Stands in for a PEFT model: save_pretrained writes an adapter file."""

    _hf_peft_config_loaded = True

    def save_pretrained(self, folder):
        (folder / "adapter_model.safetensors").write_bytes(b"w")


def test_pruning_deletes_only_folders_lora_save_marked(tmp_path):
    from rewardkit.selection.checkpoints import CheckpointScore

    args, state = _args_state(tmp_path)
    lora = rewardkit.get_callback("lora_save", save_tokenizer=False)
    for step in (1, 2):
        state.global_step = step
        lora.on_save(args, state, None, model=_Saveable())
    adapters = tmp_path / "run" / "adapters"
    assert json.loads((adapters / "step_1" / ".rewardkit-adapter").read_text())["step"] == 1
    (adapters / "step_3").mkdir()  # the user's own folder that happens to share the name
    (adapters / "step_3" / "notes.txt").write_text("mine")
    best = rewardkit.get_callback("best_checkpoint", spec=SPEC, top_k=1)
    best.checkpoints = {
        s: CheckpointScore(f"step_{s}", f"step_{s}.json", s, None, 3, {}, v, v)
        for s, v in ((1, 0.1), (2, 0.9), (3, 0.2))
    }
    with pytest.warns(UserWarning, match="step_3 alone: it has no .rewardkit-adapter marker"):
        best._prune(args)
    assert sorted(p.name for p in adapters.iterdir()) == ["step_2", "step_3"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once
        best._prune(args)
    state.global_step = 3
    with pytest.raises(DataError, match="step_3 exists and was not written by rewardkit"):
        lora.on_save(args, state, None, model=_Saveable())
    assert (adapters / "step_3" / "notes.txt").read_text() == "mine"
    assert not [p for p in adapters.iterdir() if p.name.startswith(".")]  # no temp folder left behind
    assert sorted(os.listdir(adapters / "step_2")) == [".rewardkit-adapter", "adapter_model.safetensors"]


def test_best_dir_may_not_be_the_sidecar_or_the_adapters_folder():
    spec = {"rewards": {"em": {"use": "exact_match"}}}
    for clash in ("inference", "adapters", "./inference"):
        with pytest.raises(ConfigError, match="best_dir: .* which copying the best adapter would replace"):
            rewardkit.get_callback("best_checkpoint", spec=spec, best_dir=clash)
