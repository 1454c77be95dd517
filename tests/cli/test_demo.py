"""`rewardkit demo --quick`: every stage runs, every file exists, the numbers are printed (not their size)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_cli_here

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    """One `rewardkit demo --quick` for the module, in-process, its output captured (not a terminal, as piped)."""
    out = tmp_path_factory.mktemp("quick_demo") / "demo"
    return out, run_cli_here("demo", "--quick", "--output", out)


def test_quick_demo(quick_demo):
    out, proc = quick_demo
    assert proc.returncode == 0, proc.stderr[-3000:]
    printed = proc.stdout

    result = json.loads((out / "demo_result.json").read_text())
    assert [s["name"] for s in result["stages"]] == ["sft", "grpo"]
    assert [s["steps"] for s in result["stages"]] == [10, 4]
    for name in (
        "base/model.safetensors",
        "sft/final/model.safetensors",
        "data/test.jsonl",
        "data/val.jsonl",
        "grpo/inference/step_0.json",
        "grpo/inference/step_4.json",
        "scores.png",
        "train.log",
    ):
        assert (out / name).is_file(), name
    scores = json.loads((out / "grpo/inference/scores.json").read_text())
    assert [c["step"] for c in scores["checkpoints"]] == [0, 2, 4]  # the SFT start is scored too (eval_on_start)
    assert (out / "scores.png").read_bytes()[:4] == b"\x89PNG"
    for key in ("sft_val_em", "sft_test_em", "best_val_em", "best_test_em"):
        assert 0.0 <= result[key] <= 1.0
    best = result["best_path"]
    assert best.endswith("grpo/best") or best.endswith("sft/final")
    assert re.search(r"SFT start\s+\d+\.\d%", printed) and re.search(r"best GRPO \(step \d+\)\s+\d+\.\d%", printed)
    assert "best checkpoint:" in printed and "scores.png" in printed and "seed 0" in printed

    # The data splits are disjoint: nothing the model trains on is in the validation or test set.
    def prompts(name):
        return {json.loads(line)["prompt"] for line in (out / "data" / name).read_text().splitlines()}

    train = prompts("sft.jsonl")
    assert not train & prompts("val.jsonl") and not train & prompts("test.jsonl")
    assert prompts("grpo.jsonl") == train


def test_demo_refuses_a_foreign_output_folder(tmp_path):
    from rewardkit.cli.demo import prepare_output
    from rewardkit.core.errors import ConfigError
    from rewardkit.core.fileio import atomic_write_text
    from rewardkit.train.run_lock import locked

    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not a demo folder"):
        prepare_output(tmp_path)
    run_dir = prepare_output(tmp_path / "demo")
    step_file = run_dir / "grpo" / "inference" / "step_900.json"
    with locked(run_dir / "grpo", print):  # as the earlier run's stage made its folder and wrote it (recorded)
        atomic_write_text(step_file, "{}", inside=run_dir / "grpo")
    prepare_output(run_dir)  # an earlier demo run: its stage folders are emptied
    assert not (run_dir / "grpo").exists()


@pytest.mark.parametrize("entry", ["symlink", "file"])
def test_demo_output_with_a_linked_stage_folder_is_refused(tmp_path, entry):
    from rewardkit.cli.demo import prepare_output
    from rewardkit.core.errors import ConfigError
    from rewardkit.core.fileio import atomic_write_text
    from rewardkit.core.output_dirs import OUTPUT_MARKER as MARKER
    from rewardkit.train.run_lock import locked

    out, elsewhere = tmp_path / "demo", tmp_path / "precious"
    (elsewhere / "keep").mkdir(parents=True)
    prepare_output(out)  # the marker and the record of a demo folder
    with locked(out / "grpo", print):  # an earlier run's stage
        atomic_write_text(out / "grpo" / "eval_rows.jsonl", "{}\n", inside=out / "grpo")
    if entry == "symlink":
        (out / "sft").symlink_to(elsewhere, target_is_directory=True)
    else:
        (out / "sft").write_text("not a folder")
    expected = f"is a symlink to {elsewhere}" if entry == "symlink" else "is not a folder"
    with pytest.raises(ConfigError, match=f"sft {expected}, which the demo did not write"):
        prepare_output(out)
    assert (elsewhere / "keep").is_dir() and (out / "grpo").is_dir()  # nothing emptied
    (out / "sft").unlink()
    prepare_output(out)
    assert not (out / "grpo").exists() and (out / MARKER).is_file()


def test_piped_demo_prints_each_phase(quick_demo):
    """Issue 29: piped, the demo was silent for about 100 s between two phases; each stage now says what it does."""
    demo, proc = quick_demo
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout.splitlines()
    between = out[
        out.index("[2/4] SFT 10 steps, then [3/4] GRPO 4 steps") + 1 : out.index(
            "[4/4] test set: SFT start vs selected GRPO checkpoint"
        )
    ]
    assert between[0] == f"stage sft: training 10 steps -> {demo / 'sft'}"
    assert any(re.fullmatch(r"stage sft: step \d+/10 loss=\S+ \d+\.\d\d s/step", line) for line in between)
    assert "stage grpo: step 0/4 checkpoint_inference started: 16 rows" in between
    assert between[-1] == "stage grpo: finished at step 4"
    assert "{'loss'" not in (demo / "train.log").read_text()  # the raw dicts are gone there too
