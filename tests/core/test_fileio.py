"""Atomic writes: a writer killed at any moment leaves the old file or the new one, never a part."""

import errno
import json
import os
import re
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from rewardkit import DataError
from rewardkit.core import fileio
from rewardkit.core.fileio import (
    atomic_replace_dir,
    atomic_write_json,
    atomic_write_text,
    dumps_strict,
    ensure_dir,
    make_temp_dir,
    read_json,
    read_jsonl,
    read_records,
)

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


@pytest.fixture
def umask():
    """Set the process umask for one test and restore it afterwards."""
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob(".*.tmp"))


def _no_raw_oserror(msg: str) -> None:
    assert "Hint:" in msg and "Errno" not in msg, msg


def test_symlink_is_kept_and_its_target_replaced(tmp_path):
    real, link = tmp_path / "real.json", tmp_path / "link.json"
    real.write_text("old")
    link.symlink_to(real.name)
    assert atomic_write_json(link, {"a": 1}) == link
    assert os.path.islink(link) and read_json(real) == {"a": 1}
    assert _temps(tmp_path) == []


def test_symlink_chain_and_target_in_another_folder(tmp_path):
    (tmp_path / "data").mkdir()
    real = tmp_path / "data" / "real.txt"
    real.write_text("old")
    (tmp_path / "b").symlink_to(real)
    (tmp_path / "a").symlink_to("b")
    atomic_write_text(tmp_path / "a", "new")
    assert os.path.islink(tmp_path / "a") and os.path.islink(tmp_path / "b")
    assert real.read_text() == "new"
    assert _temps(tmp_path) == [] and _temps(tmp_path / "data") == []


def test_dangling_symlink_creates_its_target(tmp_path):
    link = tmp_path / "out.txt"
    link.symlink_to(tmp_path / "sub" / "made.txt")
    atomic_write_text(link, "hi")
    assert os.path.islink(link) and (tmp_path / "sub" / "made.txt").read_text() == "hi"


def test_symlink_loop_is_refused(tmp_path):
    (tmp_path / "x").symlink_to("y")
    (tmp_path / "y").symlink_to("x")
    with pytest.raises(DataError, match="Hint:"):
        atomic_write_text(tmp_path / "x", "hi")
    assert os.path.islink(tmp_path / "x") and os.path.islink(tmp_path / "y")


def _returns_quickly(fn, seconds=5.0):
    """Run fn in a thread; a write that opens a FIFO would block forever, so fail instead of hanging."""
    box = {}

    def run():
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            box["exc"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), "the write blocked"
    return box.get("exc")


def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    exc = _returns_quickly(lambda: atomic_write_text(fifo, "x"))
    assert isinstance(exc, DataError) and "pipe" in str(exc) and "FIFO" in str(exc), exc
    assert "never replaces a FIFO or device" in str(exc)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and _temps(tmp_path) == []


def test_fifo_through_symlink_is_refused(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "out").symlink_to("pipe")
    exc = _returns_quickly(lambda: atomic_write_text(tmp_path / "out", "x"))
    assert isinstance(exc, DataError) and "FIFO" in str(exc), exc
    assert os.path.islink(tmp_path / "out")


@pytest.mark.parametrize("device", ["/dev/null", "/dev/full"])
def test_char_device_is_refused(tmp_path, device):
    if not stat.S_ISCHR(os.stat(device).st_mode):
        pytest.skip(f"{device} is not a character device here")
    # Through a link, so code that wrongly replaces the node breaks the link in tmp_path, not the system's device.
    link = tmp_path / "out.json"
    link.symlink_to(device)
    with pytest.raises(DataError, match="character device") as info:
        atomic_write_json(link, {"a": 1})
    assert device in str(info.value)
    assert os.path.islink(link) and stat.S_ISCHR(os.stat(device).st_mode)


def test_device_node_is_refused(tmp_path):
    node = tmp_path / "null"
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except (PermissionError, AttributeError, OSError):
        pytest.skip("cannot create a device node here")
    with pytest.raises(DataError, match="character device"):
        atomic_write_text(node, "x")
    assert stat.S_ISCHR(os.lstat(node).st_mode)


def test_directory_is_refused(tmp_path):
    (tmp_path / "out").mkdir()
    with pytest.raises(DataError, match=r"out: is a directory, not a regular file.*Hint:"):
        atomic_write_text(tmp_path / "out", "x")
    assert (tmp_path / "out").is_dir() and _temps(tmp_path) == []


def test_parent_path_is_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(DataError, match=r"f: exists and is not a folder") as info:
        atomic_write_text(tmp_path / "f" / "sub" / "out.json", "x")
    _no_raw_oserror(str(info.value))


@pytest.mark.parametrize("mask,expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_new_file_follows_umask(tmp_path, umask, mask, expected):
    umask(mask)
    atomic_write_text(tmp_path / "a.txt", "x")
    assert _mode(tmp_path / "a.txt") == expected


def test_overwrite_keeps_the_old_mode(tmp_path, umask):
    umask(0o022)
    path = tmp_path / "a.json"
    path.write_text("{}")
    os.chmod(path, 0o640)
    atomic_write_json(path, {"a": 1})
    assert _mode(path) == 0o640 and read_json(path) == {"a": 1}


def test_umask_is_read_without_changing_it(umask):
    umask(0o027)
    assert fileio.current_umask() == 0o027
    assert os.umask(0o027) == 0o027


def test_new_dirs_follow_umask(tmp_path, umask):
    umask(0o027)
    atomic_write_text(tmp_path / "p" / "q" / "a.txt", "x")
    assert _mode(tmp_path / "p") == 0o750 and _mode(tmp_path / "p" / "q") == 0o750
    made = make_temp_dir(tmp_path, ".adapter.")
    assert _mode(made) == 0o750 and made.name.startswith(".adapter.") and made.name.endswith(".tmp")
    # A mkdtemp dir (0700) moved into place follows the umask too.
    raw = Path(tempfile.mkdtemp(prefix=".final.", suffix=".tmp", dir=tmp_path))
    (raw / "w.bin").write_bytes(b"1")
    atomic_replace_dir(raw, tmp_path / "final")
    assert _mode(tmp_path / "final") == 0o750 and (tmp_path / "final" / "w.bin").read_bytes() == b"1"


def test_replace_dir_keeps_the_old_mode_and_symlink(tmp_path, umask):
    umask(0o022)
    real = tmp_path / "store" / "best"
    real.mkdir(parents=True)
    (real / "old.bin").write_bytes(b"0")
    os.chmod(real, 0o750)
    (tmp_path / "best").symlink_to(real)
    new = make_temp_dir(tmp_path, ".best.")
    (new / "new.bin").write_bytes(b"1")
    atomic_replace_dir(new, tmp_path / "best")
    assert os.path.islink(tmp_path / "best") and _mode(real) == 0o750
    assert sorted(os.listdir(real)) == ["new.bin"]
    assert _temps(tmp_path) == [] and _temps(tmp_path / "store") == []
    assert [p.name for p in (tmp_path / "store").iterdir()] == ["best"]


def test_replace_dir_refuses_a_file(tmp_path):
    (tmp_path / "final").write_text("x")
    new = make_temp_dir(tmp_path, ".final.")
    with pytest.raises(DataError, match="final: is a file, not a folder"):
        atomic_replace_dir(new, tmp_path / "final")
    assert (tmp_path / "final").read_text() == "x"


def test_ensure_dir(tmp_path, umask):
    umask(0o022)
    assert ensure_dir(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    assert _mode(tmp_path / "a") == 0o755
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="exists and is not a folder"):
        ensure_dir(tmp_path / "file")


@pytest.mark.parametrize("code", [errno.EACCES, errno.EROFS])
def test_unwritable_folder_is_a_data_error(tmp_path, monkeypatch, code):
    path = tmp_path / "out.json"
    path.write_text('{"old": 1}')

    def refuse(*a, **k):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(DataError, match=r"out.json: cannot write the file") as info:
        atomic_write_json(path, {"a": 1})
    _no_raw_oserror(str(info.value))
    assert read_json(path) == {"old": 1}


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_folder_really(tmp_path):
    os.chmod(tmp_path, 0o500)
    try:
        with pytest.raises(DataError, match="not writable"):
            atomic_write_text(tmp_path / "out.txt", "x")
    finally:
        os.chmod(tmp_path, 0o700)


@pytest.mark.parametrize("where", ["write", "fsync"])
def test_disk_full_is_a_data_error_and_keeps_the_old_file(tmp_path, monkeypatch, where):
    path = tmp_path / "scores.json"
    atomic_write_json(path, {"old": 1})

    def full(*a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, where, full)
    with pytest.raises(DataError, match="disk is full") as info:
        atomic_write_json(path, {"new": 1})
    _no_raw_oserror(str(info.value))
    monkeypatch.undo()
    assert read_json(path) == {"old": 1} and _temps(tmp_path) == []


@pytest.mark.parametrize("where", ["write", "fsync", "replace"])
def test_keyboard_interrupt_leaves_no_temp_file(tmp_path, monkeypatch, where):
    path = tmp_path / "scores.json"
    atomic_write_json(path, {"old": 1})

    def interrupt(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, where, interrupt)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_json(path, {"new": 1})
    monkeypatch.undo()
    assert read_json(path) == {"old": 1} and _temps(tmp_path) == []
    assert sorted(os.listdir(tmp_path)) == ["scores.json"]


def test_long_file_name_fits_the_temp_name(tmp_path):
    name = "x" * 250 + ".json"
    atomic_write_json(tmp_path / name, [1])
    assert read_json(tmp_path / name) == [1]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_is_refused_with_its_key_path(tmp_path, bad):
    path = tmp_path / "scores.json"
    with pytest.raises(DataError, match=r"scores.json: .*\$\.records\.1\.score .*NaN or Infinity"):
        atomic_write_json(path, {"records": [{"score": 1.0}, {"score": bad}]})
    assert not path.exists() and _temps(tmp_path) == []
    with pytest.raises(DataError, match="Hint:"):
        dumps_strict([bad])


def test_dumps_strict_output_is_strict():
    text = dumps_strict({"a": [1.5, "é"]}, indent=None)
    assert json.loads(text, parse_constant=lambda c: pytest.fail(c)) == {"a": [1.5, "é"]}
    assert "é" in text


def test_lone_surrogate_round_trips(tmp_path):
    path = tmp_path / "rows.json"
    atomic_write_json(path, {"t": "a\ud800b"})
    assert read_json(path) == {"t": "a\ud800b"}
    with pytest.raises(DataError, match="surrogate"):
        atomic_write_text(tmp_path / "t.txt", "a\ud800")


def test_invalid_utf8_names_file_and_line(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": "\xff"}\n')
    with pytest.raises(DataError, match=r"rows.jsonl:2: not valid UTF-8.*Hint:"):
        read_jsonl(path)
    with pytest.raises(DataError, match=r"rows.jsonl:2: not valid UTF-8"):
        read_json(path)


def test_deep_nesting_is_a_data_error(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(DataError, match="deep.json: .*nested too deeply"):
        read_json(path)
    path = tmp_path / "deep.jsonl"
    path.write_text('{"a": 1}\n' + '{"a": ' * 100_000 + "1" + "}" * 100_000 + "\n")
    with pytest.raises(DataError, match="deep.jsonl:2: .*nested too deeply"):
        read_jsonl(path)


@pytest.mark.parametrize("reader", [read_json, read_jsonl, read_records])
def test_directory_as_input(tmp_path, reader):
    (tmp_path / "in.json").mkdir()
    with pytest.raises(DataError, match="in.json: is a directory") as info:
        reader(tmp_path / "in.json")
    assert "does not exist" not in str(info.value)
    _no_raw_oserror(str(info.value))


@pytest.mark.parametrize("reader", [read_json, read_jsonl])
def test_missing_file(tmp_path, reader):
    with pytest.raises(DataError, match="nope.json: the file does not exist") as info:
        reader(tmp_path / "nope.json")
    _no_raw_oserror(str(info.value))


def test_unreadable_file(tmp_path, monkeypatch):
    path = tmp_path / "secret.json"
    path.write_text("{}")

    real_open = os.open

    def deny(file, *a, **k):  # root reads any file: the refusal is simulated at the open
        if str(file) == str(path):
            raise PermissionError(errno.EACCES, "Permission denied", str(file))
        return real_open(file, *a, **k)

    monkeypatch.setattr(os, "open", deny)
    with pytest.raises(DataError, match="secret.json: permission denied") as info:
        read_json(path)
    _no_raw_oserror(str(info.value))


@pytest.mark.parametrize("content", ["", "  \n", '{"records": [1, 2'])
def test_empty_or_cut_off_message(tmp_path, content):
    path = tmp_path / "scores.json"
    path.write_text(content)
    with pytest.raises(
        DataError,
        match=r"scores.json.*cut off \(written partially\?\).*Hint: regenerate it or "
        "delete it",
    ) as info:
        read_json(path)
    assert "inference" not in str(info.value)


def test_jsonl_cut_off_last_line_and_u2028(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps({"t": "a\u2028b\x0cc"}, ensure_ascii=False) + "\r\n" + '{"t": "x')
    with pytest.raises(DataError, match=r"rows.jsonl:2: invalid JSON .*cut off"):
        read_jsonl(path)
    path.write_text(json.dumps({"t": "a\u2028b\x0cc"}, ensure_ascii=False) + "\n")
    assert read_jsonl(path) == [{"t": "a\u2028b\x0cc"}]


def test_huge_integer_and_bom(tmp_path):
    path = tmp_path / "n.json"
    path.write_text("[" + "9" * 5000 + "]")
    with pytest.raises(DataError, match="n.json: invalid JSON"):
        read_json(path)
    path.write_bytes(b'\xef\xbb\xbf{"a": 1}')
    assert read_json(path) == {"a": 1}


def test_nan_tokens_are_readable(tmp_path):
    path = tmp_path / "n.json"
    path.write_text('{"a": NaN, "b": Infinity}')
    data = read_json(path)
    assert data["a"] != data["a"] and data["b"] == float("inf")


def test_read_records(tmp_path):
    (tmp_path / "a.json").write_text('[{"x": 1}, {"x": 2}]')
    (tmp_path / "a.JSONL").write_text('{"x": 1}\n')
    assert read_records(tmp_path / "a.json") == [{"x": 1}, {"x": 2}]
    assert read_records(tmp_path / "a.JSONL") == [{"x": 1}]
    (tmp_path / "b.json").write_text('{"records": []}')
    with pytest.raises(DataError, match="b.json: expected a JSON list of objects, got dict"):
        read_records(tmp_path / "b.json")
    (tmp_path / "c.json").write_text('[{"x": 1}, 3]')
    with pytest.raises(DataError, match="c.json: expected a JSON list of objects, got item 1 is int"):
        read_records(tmp_path / "c.json")
    (tmp_path / "d.csv").write_text("x\n1\n")
    with pytest.raises(DataError, match=r"d.csv: unknown file type '.csv'.*\.json.*\.jsonl"):
        read_records(tmp_path / "d.csv")


def test_not_writable_folder_is_named(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "access", lambda *a, **k: False)
    with pytest.raises(DataError, match=r"a.txt: cannot be written: its folder .*out is not writable \(.*\)\. Hint:"):
        atomic_write_text(tmp_path / "out" / "a.txt", "x")


def test_interrupted_dir_swap_puts_the_old_folder_back(tmp_path, monkeypatch):
    final = tmp_path / "final"
    final.mkdir()
    (final / "old.bin").write_bytes(b"0")
    new = make_temp_dir(tmp_path, ".final.")
    real_replace, calls = os.replace, []

    def flaky(src, dst):
        calls.append(src)
        if len(calls) == 2:  # the second rename puts the new folder in place
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", flaky)
    with pytest.raises(KeyboardInterrupt):
        atomic_replace_dir(new, final)
    monkeypatch.undo()
    assert sorted(os.listdir(final)) == ["old.bin"]


def test_replace_dir_from_another_folder_leaves_no_temp(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    new = make_temp_dir(tmp_path / "elsewhere", ".x.")
    (new / "w.bin").write_bytes(b"1")
    atomic_replace_dir(new, tmp_path / "out" / "final")
    assert (tmp_path / "out" / "final" / "w.bin").read_bytes() == b"1"
    assert not new.exists() and _temps(tmp_path / "out") == []


def test_append_jsonl_from_8_threads_keeps_every_line_whole(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from rewardkit.core.fileio import append_jsonl

    path = tmp_path / "log.jsonl"
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: append_jsonl(path, {"i": i, "text": "x" * (i % 50) * 100}), range(400)))
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert sorted(r["i"] for r in rows) == list(range(400))


def test_append_jsonl_refuses_a_symlink_and_a_fifo(tmp_path):
    from rewardkit.core.fileio import append_jsonl

    outside = tmp_path / "outside.jsonl"
    outside.write_text("")
    (tmp_path / "link.jsonl").symlink_to(outside)
    with pytest.raises(DataError, match="is a symlink"):
        append_jsonl(tmp_path / "link.jsonl", {"a": 1})
    assert outside.read_text() == ""
    os.mkfifo(tmp_path / "fifo.jsonl")
    with pytest.raises(DataError, match="not a regular file"):
        append_jsonl(tmp_path / "fifo.jsonl", {"a": 1})


def test_temp_folder_names_hold_no_model_family_letters(tmp_path):
    """Models are loaded from a temp folder before its rename; bert_score reads any path with "t5" as T5."""
    from rewardkit.core.fileio import make_temp_dir

    names = [make_temp_dir(tmp_path, ".bert-").name for _ in range(300)]
    assert len(set(names)) == 300
    assert all(re.fullmatch(r"\.bert-[0-9a-f]{16}\.tmp", n) for n in names), names[:3]
