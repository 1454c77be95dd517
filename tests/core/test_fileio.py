"""Atomic writes: a writer killed at any moment leaves the old file or the new one, never a part."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from rewardkit import DataError
from rewardkit.core.fileio import atomic_write_json, atomic_write_text, read_json, read_jsonl

WRITER = """
import sys
from rewardkit.core.fileio import atomic_write_json
path = sys.argv[1]
i = 0
while True:
    i += 1
    atomic_write_json(path, {"version": i, "records": ["x" * 100] * 20000})
    print(i, flush=True)
"""


def test_killed_writer_never_leaves_a_partial_file(tmp_path):
    target = tmp_path / "step_1.json"
    for delay in (0.3, 0.55, 0.8):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE, text=True)
        proc.stdout.readline()  # at least one complete write happened
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        data = read_json(target)  # raises DataError on a partial file
        assert len(data["records"]) == 20000
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "step_1.json"]
    assert all(name.startswith(".step_1.json.") and name.endswith(".tmp") for name in leftovers)


def test_failed_serialization_keeps_the_old_file(tmp_path):
    target = tmp_path / "scores.json"
    atomic_write_json(target, {"ok": 1})
    with pytest.raises(TypeError):
        atomic_write_json(target, {"bad": object()})
    assert read_json(target) == {"ok": 1}
    assert sorted(os.listdir(tmp_path)) == ["scores.json"]


@pytest.mark.parametrize(
    "content,match",
    [
        ("", "the file is empty"),
        ('{"records": [1, 2', "invalid JSON"),
        ("not json", "invalid JSON"),
    ],
)
def test_read_json_names_the_file(tmp_path, content, match):
    path = tmp_path / "step_3.json"
    path.write_text(content)
    with pytest.raises(DataError, match=f"step_3.json.*{match}"):
        read_json(path)


def test_read_jsonl(tmp_path):
    path = tmp_path / "rows.jsonl"
    atomic_write_text(path, json.dumps({"a": 1}) + "\n\n" + json.dumps({"a": 2}) + "\n")
    assert read_jsonl(path) == [{"a": 1}, {"a": 2}]
    path.write_text('{"a": 1}\n[1]\n')
    with pytest.raises(DataError, match="rows.jsonl:2: each line must be a JSON object"):
        read_jsonl(path)
