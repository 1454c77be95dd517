"""`rewardkit select` and rewardkit.selection.checkpoints on hand-made inference files."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys

import pytest

from rewardkit import ConfigError, DataError, compose
from rewardkit.selection.checkpoints import select
from rewardkit.selection.inference_files import load_inference

SPEC = {
    "rewards": {
        "em": {"use": "exact_match"},
        "num": {"use": "math_exact_match", "reference": "gold_number"},
        "short": {"use": "brevity", "max_length": 20},
    },
    "combine": "(2*em + num + short) / 4",
}
REFS = {"a": ("Paris", "12"), "b": ("Rome", "no number"), "c": ("Oslo", "3")}
OUTPUTS = {  # step -> outputs by id; step 20 and 30 tie, step 10 is worse
    10: {"a": "London", "b": "Rome", "c": "3 Oslo"},
    20: {"a": "Paris", "b": "Rome", "c": "about 3"},
    30: {"a": "Paris", "b": "Rome", "c": "about 3"},
}


def _write(path, data):
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _rewardkit_files(folder):
    folder.mkdir(exist_ok=True)
    for step, outputs in OUTPUTS.items():
        records = [
            {"id": i, "prompt": f"q {i}", "output": outputs[i], "answer": REFS[i][0], "gold_number": REFS[i][1]}
            for i in REFS
        ]
        _write(folder / f"step_{step}.json", {"step": step, "epoch": step / 10, "records": records})
    return folder


def _spec_file(tmp_path):
    return _write(tmp_path / "spec.json", SPEC)


def cli(monkeypatch, capsys, *args):
    from rewardkit.cli.main import main

    monkeypatch.setattr(sys, "argv", ["rewardkit", *args])
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def _independent(folder, step):
    """corpus score straight from the file: the expression on component means, None left out per component."""
    composed = compose(SPEC)
    recs = json.loads((folder / f"step_{step}.json").read_text())["records"]
    parts = composed.score_components(
        completions=[r["output"] for r in recs],
        answer=[r["answer"] for r in recs],
        gold_number=[r["gold_number"] for r in recs],
    )
    means = {a: statistics.fmean(v for v in vals if v is not None) for a, vals in parts.items()}
    return composed.combine_row(means), statistics.fmean(composed.combine(parts))


def test_scores_match_an_independent_recompute_and_ties_go_to_the_earlier_step(tmp_path, monkeypatch, capsys):
    folder = _rewardkit_files(tmp_path / "inference")
    code, out, err = cli(monkeypatch, capsys, "select", str(folder), "--spec", str(_spec_file(tmp_path)), "--json")
    assert code == 0, err
    data = json.loads(out)
    assert [c["step"] for c in data["checkpoints"]] == [10, 20, 30]
    for c in data["checkpoints"]:
        corpus, item = _independent(folder, c["step"])
        assert c["score"] == pytest.approx(corpus) and c["item"] == pytest.approx(item)
        assert c["components"]["num"] is not None  # "no number" gold is None and left out of the mean
    assert data["best"]["step"] == 20  # 20 and 30 tie
    assert corpus != item  # the None gold makes the two aggregates differ


def test_table_names_the_best(tmp_path, monkeypatch, capsys):
    folder = _rewardkit_files(tmp_path / "inference")
    code, out, _ = cli(monkeypatch, capsys, "select", str(folder), "--spec", str(_spec_file(tmp_path)))
    assert code == 0
    assert "step_20 *" in out and "Best: step_20 (step_20.json" in out
    assert all(col in out for col in ("em", "num", "short", "score"))


def test_seed_naming_competition_format_with_labels(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "seed"
    folder.mkdir()
    answers = {"1": '"왠지 좋다."가 옳다. 이유', "2": '"금세 끝난다."가 옳다. 이유'}
    preds = {
        1: {"1": '"웬지 좋다."가 옳다.', "2": '"금세 끝난다."가 옳다. 이유'},
        2: {"1": answers["1"], "2": answers["2"]},
        3: {"1": "모름", "2": "모름"},
    }
    for epoch, outputs in preds.items():
        _write(
            folder / f"inference_epoch{epoch}.json",
            [
                {"id": i, "input": {"question_type": "선택형", "question": f"q{i}"}, "output": {"answer": o}}
                for i, o in outputs.items()
            ],
        )
    labels = _write(
        tmp_path / "labels.json",
        [
            {"id": i, "input": {"question_type": "선택형", "question": f"q{i}"}, "output": {"answer": a}}
            for i, a in answers.items()
        ],
    )
    spec = _write(tmp_path / "em.json", {"rewards": {"em": {"use": "exact_match", "remove_quotes": True}}})
    code, out, err = cli(
        monkeypatch, capsys, "select", str(folder), "--labels", str(labels), "--spec", str(spec), "--json"
    )
    assert code == 0, err
    data = json.loads(out)
    assert [(c["epoch"], c["score"]) for c in data["checkpoints"]] == [(1.0, 0.5), (2.0, 1.0), (3.0, 0.0)]
    assert data["best"]["name"] == "inference_epoch2"
    rows = load_inference(folder / "inference_epoch1.json").rows
    assert rows[0]["question_type"] == "선택형" and rows[0]["output"].startswith('"웬지')  # input flattened


@pytest.mark.parametrize(
    "labels, message",
    [
        ([{"id": "a", "answer": "x"}, {"id": "b", "answer": "y"}], r"ids \['c'\] are not in the labels"),
        ([{"id": i, "answer": "x"} for i in ("a", "b", "c", "zz")], r"label ids \['zz'\] have no record"),
    ],
)
def test_labels_join_errors_name_the_ids(tmp_path, labels, message):
    folder = _rewardkit_files(tmp_path / "inference")
    path = _write(tmp_path / "labels.json", labels)
    with pytest.raises(DataError, match=message) as info:
        select(folder, SPEC, path)
    assert "step_10.json" in str(info.value) and "Hint:" in str(info.value)


def test_labels_override_file_references(tmp_path):
    folder = _rewardkit_files(tmp_path / "inference")
    labels = _write(tmp_path / "labels.jsonl", None)
    labels.write_text("\n".join(json.dumps({"id": i, "answer": "London", "gold_number": "1"}) for i in REFS))
    result = select(folder, {"rewards": {"em": {"use": "exact_match"}}}, labels)
    assert [c.corpus for c in result.checkpoints] == pytest.approx([1 / 3, 0.0, 0.0])


@pytest.mark.parametrize("content", ['{"step": 5, "records": [{"id": 1, "out', "", "   \n", "[]", '{"a": 1}'])
def test_corrupt_truncated_or_empty_file_is_named(tmp_path, content):
    folder = _rewardkit_files(tmp_path / "inference")
    (folder / "step_40.json").write_text(content)
    with pytest.raises(DataError, match="step_40.json"):
        select(folder, SPEC)


@pytest.mark.parametrize("kind", ["fifo", "folder", "dangling-link"])
def test_an_inference_file_that_is_not_a_regular_file_is_named_not_left_out(tmp_path, kind):
    """A FIFO, folder or dangling link named step_N.json was left out: select ranked the other checkpoints and
    named another best without a word."""
    import os

    from rewardkit.selection.inference_files import step_files

    folder = _rewardkit_files(tmp_path / "inference")
    odd = sorted(folder.glob("step_*.json"))[0]
    odd.unlink()
    {"fifo": os.mkfifo, "folder": os.mkdir, "dangling-link": lambda p: p.symlink_to(tmp_path / "gone.json")}[kind](odd)
    for call in (lambda: select(folder, SPEC), lambda: step_files(folder)):
        with pytest.raises(DataError, match=rf"{odd.name}: is named like an inference file but is"):
            call()


def test_corrupt_file_cli_exit_code_and_message(tmp_path):
    folder = _rewardkit_files(tmp_path / "inference")
    (folder / "step_40.json").write_text('{"step": 40, "records": [')
    proc = subprocess.run(
        [sys.executable, "-m", "rewardkit", "select", str(folder), "--spec", str(_spec_file(tmp_path))],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "step_40.json" in proc.stderr and "invalid JSON" in proc.stderr


@pytest.mark.parametrize("name", ["../outside", "../inference/step_10", "/etc/passwd", "a/../../b"])
def test_checkpoint_names_cannot_escape_the_folder(tmp_path, monkeypatch, capsys, name):
    folder = _rewardkit_files(tmp_path / "inference")
    _write(tmp_path / "outside.json", {"step": 1, "records": [{"id": 1, "output": "x"}]})
    code, _, err = cli(
        monkeypatch, capsys, "select", str(folder), "--spec", str(_spec_file(tmp_path)), "--checkpoint", name
    )
    assert code == 2 and ("escapes" in err or "relative name" in err)


def test_named_checkpoints_only(tmp_path):
    folder = _rewardkit_files(tmp_path / "inference")
    result = select(folder, SPEC, names=["step_30", "step_10.json"])
    assert [c.step for c in result.checkpoints] == [10, 30] and result.best.step == 30


def test_plot_is_a_png(tmp_path, monkeypatch, capsys):
    folder = _rewardkit_files(tmp_path / "inference")
    png = tmp_path / "plots" / "scores.png"
    code, out, err = cli(
        monkeypatch, capsys, "select", str(folder), "--spec", str(_spec_file(tmp_path)), "--plot", str(png)
    )
    assert code == 0, err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in png.parent.iterdir() if p.name != "scores.png"]  # no temp file left


def test_spec_defaults_to_the_callback_record(tmp_path):
    folder = _rewardkit_files(tmp_path / "inference")
    with pytest.raises(ConfigError, match="no spec given.*Hint: pass --spec"):
        select(folder)
    _write(folder / "scores.json", {"spec": SPEC, "checkpoints": []})
    assert select(folder).best.step == 20


def test_empty_folder_and_missing_completion_field(tmp_path):
    with pytest.raises(DataError, match="no inference files"):
        select(tmp_path, SPEC)
    _write(tmp_path / "step_1.json", {"step": 1, "records": [{"id": 1, "text": "x"}]})
    with pytest.raises(DataError, match=r"step_1.json: record 0 has no 'output' field.*--completion-key"):
        select(tmp_path, SPEC)


def test_lower_is_better(tmp_path):
    folder = _rewardkit_files(tmp_path / "inference")
    assert select(folder, SPEC, greater_is_better=False).best.step == 10


EM = {"rewards": {"em": {"use": "exact_match"}}}


def test_checkpoints_scored_on_different_rows_are_refused_unless_intersected(tmp_path):
    folder = tmp_path / "inference"
    folder.mkdir()
    five = [{"id": i, "output": "Paris", "answer": "Paris" if i == 0 else "Rome"} for i in range(5)]
    _write(folder / "step_10.json", {"step": 10, "records": five})
    _write(folder / "step_20.json", {"step": 20, "records": five[:1]})  # only the row every step gets right
    with pytest.raises(DataError) as info:
        select(folder, EM)
    message = str(info.value)
    assert "step_10.json has 5 rows" in message and "step_20.json has 1 (4 of those missing" in message
    assert "Hint:" in message and "intersection=True" in message and "--intersect" in message
    result = select(folder, EM, intersection=True)
    assert [(c.step, c.count, c.dropped, c.corpus) for c in result.checkpoints] == [(10, 1, 4, 1.0), (20, 1, 0, 1.0)]
    data = result.to_dict()
    assert data["intersection"] is True and [c["dropped"] for c in data["checkpoints"]] == [4, 0]
    assert result.best.step == 10  # equal on the shared row: the earlier step, not the one with fewer rows


def test_intersection_also_covers_the_labels(tmp_path):
    folder = tmp_path / "inference"
    folder.mkdir()
    _write(folder / "step_1.json", {"step": 1, "records": [{"id": i, "output": "a"} for i in ("x", "y", "z")]})
    _write(folder / "step_2.json", {"step": 2, "records": [{"id": i, "output": "a"} for i in ("x", "y")]})
    labels = _write(tmp_path / "labels.json", [{"id": "y", "answer": "a"}, {"id": "w", "answer": "a"}])
    result = select(folder, EM, labels, intersection=True)
    assert [(c.count, c.dropped, c.corpus) for c in result.checkpoints] == [(1, 2, 1.0), (1, 1, 1.0)]


def test_completion_field_is_completion_when_present_else_output(tmp_path):
    folder = tmp_path / "inference"
    folder.mkdir()
    _write(
        folder / "step_1.json",
        {"step": 1, "records": [{"id": 1, "completion": "Paris", "output": "London", "answer": "Paris"}]},
    )
    _write(folder / "step_2.json", [{"id": 1, "output": "Paris", "answer": "Paris"}])
    assert [c.corpus for c in select(folder, EM).checkpoints] == [1.0, 1.0]
    assert [c.corpus for c in select(folder, EM, completion_key="output").checkpoints] == [0.0, 1.0]
    assert load_inference(folder / "step_1.json").completion_key == "completion"
    assert load_inference(folder / "step_2.json").completion_key == "output"


@pytest.mark.parametrize("content", ["{", "[1, 2]"])
def test_a_bad_scores_record_is_named_without_a_misleading_hint(tmp_path, content):
    folder = _rewardkit_files(tmp_path / "inference")
    (folder / "scores.json").write_text(content)
    with pytest.raises((DataError, ConfigError)) as info:
        select(folder)
    message = str(info.value)
    assert "re-run" not in message and "inference" in message
    assert ("scores.json" in message and "regenerate it or delete it" in message) or "pass --spec" in message


def test_plot_draws_each_distinct_series_once_and_labels_rows(tmp_path):
    from rewardkit.selection.checkpoints import CheckpointScore, Selection
    from rewardkit.selection.plot import plot_series, write_plot

    def cp(step, em, short):
        return CheckpointScore(
            name=f"step_{step}",
            file=f"step_{step}.json",
            step=step,
            epoch=None,
            count=5,
            components={"em": em, "short": short},
            corpus=em,
            item=em,
        )

    one = Selection([cp(1, 0.2, 0.5), cp(2, 0.4, 0.6)], None, "em", ["em"], "corpus", True)
    one.checkpoints = [
        CheckpointScore(**{**c.__dict__, "components": {"em": c.components["em"]}}) for c in one.checkpoints
    ]
    assert list(plot_series(one)) == ["score = em"]  # the score is the component: one line, named as such
    two = Selection([cp(1, 0.2, 0.5), cp(2, 0.4, 0.6)], None, "em + 0*short", ["em", "short"], "corpus", True)
    assert list(plot_series(two)) == ["short", "score"]  # em equals the score here: drawn once, as the score
    two.best = two.checkpoints[1]
    out = write_plot(two, tmp_path / "p.png", rows="validation", extra={"test EM": (2, 0.5)})
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
