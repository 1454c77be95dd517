"""`rewardkit select --plot`: the format follows the file suffix; an unknown suffix is refused before scoring."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.selection.conftest import SPEC_DICT, write_step_file


def _two_checkpoints(folder: Path) -> Path:
    for step, output in ((1, "0"), (2, "1")):
        write_step_file(folder, f"step_{step}.json", step=step)
        data = json.loads((folder / f"step_{step}.json").read_text())
        data["records"][0]["output"] = output
        (folder / f"step_{step}.json").write_text(json.dumps(data))
    return folder


@pytest.mark.parametrize("name, magic", [("p.svg", b"<?xml"), ("p.pdf", b"%PDF"), ("p.PNG", b"\x89PNG")])
def test_select_plot_follows_the_suffix(tmp_path, name, magic):
    from rewardkit.selection import checkpoints as selection
    from rewardkit.selection.plot import write_plot

    result = selection.select(_two_checkpoints(tmp_path / "inf"), SPEC_DICT)
    write_plot(result, tmp_path / name)
    assert (tmp_path / name).read_bytes().startswith(magic)


@pytest.mark.parametrize("name", ["p.txt", "p", "p.json"])
def test_select_plot_with_an_unknown_suffix_is_refused_before_scoring(scoring, name):
    _two_checkpoints(scoring / "inf")
    proc = run_cli("select", "inf", "--spec", "spec.yaml", "--plot", name, cwd=scoring)
    assert proc.returncode == 2 and "names no image format written here. Hint: end the name with .png" in proc.stderr
    assert proc.stdout == "" and not (scoring / name).exists()
