"""The record of what a rewardkit run wrote in its folder, so that it deletes or replaces only that.

`<folder>/.rewardkit-written.jsonl` holds one JSON line per write, appended with one O_APPEND write by the process
that writes (the main process of a launch), before the write: `{"p": path relative to the folder, "k": kind,
"s": size}`. Kinds: "file" (written whole; "s" its size in bytes), "dir", "appended" (it grows: any size while this
is its latest line), "pending" (a folder the Trainer saves into: until its files are recorded, files with the names
the Trainer writes there are accepted), "scratch" (a temporary folder the run made under a random name: all below
it is the run's), "gone" (moved away or deleted: the path and all below it are forgotten).

A file is the run's when it is a regular file and its size is one recorded for it since it was last forgotten (a
kill between the record and the write leaves the earlier file, whose size was recorded then) or its latest line
says it grows; also the `.<name>.<random>.tmp` file a killed atomic write of a recorded file left. A folder is the
run's when recorded, when a recorded path lies below it, or when it holds a record of its own. A symlink never is
(rewardkit makes none). Paths are relative, so a moved or copied run keeps its record; a line naming a path outside
the folder (`..`, absolute, empty parts) is ignored, and deleting walks the folder itself (never a path read from
the record, never into a link), so a forged record in a received archive cannot reach outside. A cut last line is
skipped. Light module: the standard library only.
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from rewardkit.core.errors import DataError

RECORD = ".rewardkit-written.jsonl"
KINDS = frozenset({"file", "dir", "appended", "pending", "scratch", "gone"})
_FOLDER_KINDS = frozenset({"dir", "pending", "scratch"})
# What the Trainer (and peft, TRL, DeepSpeed, FSDP) write into a checkpoint-N/ or final/ folder it saves: accepted
# by name inside a "pending" folder only, i.e. one a kill interrupted before its files were recorded.
_TRAINER_FILE = re.compile(
    r"((model|pytorch_model|adapter_model)(-\d+-of-\d+)?\.(safetensors|bin)(\.index\.json)?"
    r"|(config|generation_config|adapter_config|preprocessor_config|processor_config|tokenizer_config|tokenizer"
    r"|special_tokens_map|added_tokens|vocab|chat_template)\.json"
    r"|tokenizer\.model|spiece\.model|vocab\.txt|merges\.txt|chat_template\.jinja|README\.md|training_args\.bin"
    r"|trainer_state\.json|optimizer\.pt|scheduler\.pt|scaler\.pt|rng_state(_\d+)?\.pth|latest|zero_to_fp32\.py)"
)
_TRAINER_DIR = re.compile(r"global_step\d+|pytorch_model_fsdp_\d+|optimizer_\d+")
_lock = threading.Lock()
_latest: dict[tuple[str, str], str] = {}  # (record file, path) -> the kind this process last recorded for it


def relative(root: str | Path, path: str | Path) -> str | None:
    """`path` relative to the folder `root` ("/"-separated), or None when it is `root` itself or outside it."""
    rel = os.path.relpath(os.path.abspath(path), os.path.abspath(root))
    return _clean(rel.replace(os.sep, "/"))


def _clean(rel: object) -> str | None:
    """A relative path that stays inside its folder, else None (`..`, absolute, empty or `.` parts, NUL)."""
    if not isinstance(rel, str) or not rel or "\0" in rel or rel.startswith("/"):
        return None
    return None if any(part in ("", ".", "..") for part in rel.split("/")) else rel


def note_many(root: str | Path, items: Iterable[tuple[str | Path, str, int | None]]) -> None:
    """Append `(path, kind, size)` lines to `root`'s record in one write (paths outside `root` are not recorded)."""
    lines, keys = [], []
    record = Path(root) / RECORD
    for path, kind, size in items:
        rel = relative(root, path)
        if rel is None or kind not in KINDS:
            continue
        line: dict[str, object] = {"p": rel, "k": kind}
        if size is not None:
            line["s"] = int(size)
        lines.append(json.dumps(line, ensure_ascii=False))
        keys.append(((str(record), rel), kind))
    if not lines:
        return
    data = ("\n".join(lines) + "\n").encode("utf-8", errors="surrogateescape")
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    try:
        os.makedirs(root, exist_ok=True)
        fd = os.open(record, flags, 0o666)  # the umask applies
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise OSError(errno.EINVAL, "not a regular file")
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
    except OSError as exc:
        reason = "it is a symlink" if exc.errno == errno.ELOOP else (exc.strerror or str(exc))
        raise DataError(
            f"{record}: cannot record what the run writes ({reason}).",
            hint="the run's record of its files must be a regular file in a writable run folder.",
        ) from None
    with _lock:
        for key, kind in keys:
            _latest[key] = kind


def note(root: str | Path, path: str | Path, kind: str, size: int | None = None) -> None:
    """Record one path `root`'s run writes (see the module docstring for the kinds)."""
    note_many(root, [(path, kind, size)])


def grows(root: str | Path, path: str | Path) -> bool:
    """Whether this process last recorded `path` as a file that grows (append-only writers record it once)."""
    rel = relative(root, path)
    with _lock:
        return _latest.get((str(Path(root) / RECORD), rel or "")) == "appended"


def tree_lines(top: Path, at: Path, exclude: frozenset[Path] = frozenset()) -> list[tuple[str | Path, str, int | None]]:
    """Record lines for the folder `top` and everything in it as if it were at `at` (links skipped, `exclude`d
    files of `top` left out)."""
    lines: list[tuple[str | Path, str, int | None]] = [(at, "dir", None)]
    for folder, dirs, files in os.walk(top):  # followlinks=False: a linked folder is listed, not entered
        base = at / os.path.relpath(folder, top)
        for name in sorted(dirs + files):
            path = Path(folder) / name
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if path in exclude or stat.S_ISLNK(st.st_mode):
                continue
            if stat.S_ISDIR(st.st_mode):
                lines.append((base / name, "dir", None))
            elif stat.S_ISREG(st.st_mode):
                lines.append((base / name, "file", st.st_size))
    return lines


def note_tree(root: str | Path, top: Path, exclude: frozenset[Path] = frozenset()) -> None:
    """Record the folder `top` (in `root`) and every file and folder in it as `root`'s run's, but `exclude`."""
    if Path(top).is_dir() and not Path(top).is_symlink():
        note_many(root, tree_lines(Path(top), Path(top), exclude))


def move_recorded(root: str | Path, src: Path, dst: Path) -> None:
    """Move `src` to `dst` (both in `root`) and its record with it: what was recorded under `src` is under `dst`."""
    record = Record.read(root)
    old, new = relative(root, src), relative(root, dst)
    items: list[tuple[str | Path, str, int | None]] = []
    if record is not None and old is not None and new is not None:
        for rel, entry in record.entries.items():
            if rel == old or rel.startswith(old + "/"):
                moved = Path(root) / (new + rel[len(old) :])
                items += [(moved, "file", size) for size in sorted(entry.sizes)]
                if entry.kind != "file" or not entry.sizes:
                    items.append((moved, entry.kind, None))
    note_many(root, items)  # before the move, and `src` forgotten after: a kill between leaves both recorded
    os.replace(src, dst)
    note(root, src, "gone")


@dataclass
class _Entry:
    kind: str
    sizes: set[int] = field(default_factory=set)


@dataclass
class Record:
    """One folder's record, read: the latest kind and the recorded sizes of each path."""

    folder: Path
    entries: dict[str, _Entry]
    parents: set[str]

    @classmethod
    def read(cls, folder: str | Path) -> Record | None:
        """The record of `folder` (None: it has none); lines that do not parse or leave the folder are skipped."""
        path = Path(folder) / RECORD
        try:
            if not stat.S_ISREG(os.lstat(path).st_mode):
                return None
            text = path.read_bytes().decode("utf-8", errors="surrogateescape")
        except OSError:
            return None
        entries: dict[str, _Entry] = {}
        for raw in text.splitlines():
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            rel = _clean(line.get("p")) if isinstance(line, dict) else None
            kind, size = (line.get("k"), line.get("s")) if isinstance(line, dict) else (None, None)
            if rel is None or kind not in KINDS:
                continue
            if kind == "gone":
                for key in [k for k in entries if k == rel or k.startswith(rel + "/")]:
                    del entries[key]
                continue
            entry = entries.setdefault(rel, _Entry(kind))
            if kind == "file" and entry.kind not in ("file", "appended"):
                entry.sizes.clear()  # a folder (or scratch) before, a file now
            entry.kind = kind
            if kind == "file" and isinstance(size, int) and not isinstance(size, bool) and size >= 0:
                entry.sizes.add(size)
        parents = {"/".join(rel.split("/")[:i]) for rel in entries for i in range(1, rel.count("/") + 1)}
        return cls(Path(folder), entries, parents)

    def covers(self, rel: str, st: os.stat_result) -> bool:
        """Whether the entry at `rel` (its lstat `st`) is one this run wrote."""
        if stat.S_ISLNK(st.st_mode):
            return False
        is_dir, is_file = stat.S_ISDIR(st.st_mode), stat.S_ISREG(st.st_mode)
        entry = self.entries.get(rel)
        if entry is not None:
            if entry.kind in _FOLDER_KINDS and is_dir:
                return True
            if entry.kind == "appended" and is_file:
                return True
            if entry.kind == "file" and is_file and st.st_size in entry.sizes:
                return True
        parts = rel.split("/")
        for i in range(1, len(parts)):
            above = self.entries.get("/".join(parts[:i]))
            if above is None:
                continue
            if above.kind == "scratch" and (is_dir or is_file):
                return True
            if above.kind == "pending" and _trainer_writes(parts[i:], is_dir, is_file):
                return True
        if is_dir and rel in self.parents:
            return True
        name = parts[-1]
        if is_file and name.startswith(".") and name.endswith(".tmp") and name.count(".") >= 3:
            sibling = self.entries.get("/".join([*parts[:-1], name[1:-4].rsplit(".", 1)[0]]))
            return sibling is not None and sibling.kind in ("file", "appended")
        return False

    def sizes(self, rel: str) -> set[int]:
        """The sizes recorded for the file at `rel`."""
        entry = self.entries.get(rel)
        return set(entry.sizes) if entry is not None else set()


def _trainer_writes(parts: list[str], is_dir: bool, is_file: bool) -> bool:
    """Whether `parts` (below a pending save folder) is a file or folder the Trainer writes there."""
    if _TRAINER_DIR.fullmatch(parts[0]):
        return is_dir or is_file
    return len(parts) == 1 and is_file and _TRAINER_FILE.fullmatch(parts[0]) is not None


def has_record(folder: str | Path) -> bool:
    """Whether `folder` holds a record of what a run wrote there (a regular file)."""
    try:
        return stat.S_ISREG(os.lstat(Path(folder) / RECORD).st_mode)
    except OSError:
        return False


@dataclass(frozen=True)
class Found:
    """One entry below a run folder, judged: `ours` (the run wrote it) and, when not, `why` in a few words."""

    path: Path
    is_dir: bool
    ours: bool
    why: str = ""


class _Judge:
    """Judges entries below `root` by the nearest records above them (a stage folder inside a demo folder has
    its own); `transient`: file names accepted next to a record (a lock the run takes and drops)."""

    def __init__(self, root: Path, transient: frozenset[str]) -> None:
        self.root = root
        self.transient = transient
        self.records: dict[Path, Record | None] = {}

    def record(self, folder: Path) -> Record | None:
        if folder not in self.records:
            self.records[folder] = Record.read(folder)
        return self.records[folder]

    def judge(self, path: Path, st: os.stat_result) -> Found:
        is_dir = stat.S_ISDIR(st.st_mode)
        if stat.S_ISLNK(st.st_mode):
            return Found(path, False, False, f"a symlink to {os.path.realpath(path)}")
        if is_dir and has_record(path):
            return Found(path, True, True)
        folder = path.parent
        if stat.S_ISREG(st.st_mode) and path.name in (RECORD, *self.transient) and self.record(folder) is not None:
            return Found(path, False, True)
        sizes: set[int] = set()
        while True:
            record = self.record(folder)
            if record is not None:
                rel = path.relative_to(folder).as_posix()
                if record.covers(rel, st):
                    return Found(path, is_dir, True)
                sizes |= record.sizes(rel)
            if folder == self.root or folder == folder.parent:
                break
            folder = folder.parent
        if sizes and stat.S_ISREG(st.st_mode):
            return Found(path, False, False, f"changed since the run wrote it: {st.st_size} bytes, not {max(sizes)}")
        return Found(path, is_dir, False, "not written by the run")

    def walk(self, targets: Iterable[Path]) -> Iterator[Found]:
        """Every entry of `targets` and below them, folders after their contents; never into a link."""
        for target in targets:
            try:
                st = os.lstat(target)
            except FileNotFoundError:
                continue
            if stat.S_ISDIR(st.st_mode):
                for folder, dirs, files in os.walk(target, topdown=False):
                    for name in sorted(files + dirs):
                        path = Path(folder) / name
                        try:
                            yield self.judge(path, os.lstat(path))
                        except FileNotFoundError:
                            continue
            yield self.judge(target, st)


def judged(root: str | Path, targets: Iterable[Path], transient: frozenset[str] = frozenset()) -> list[Found]:
    """Every entry of `targets` (in `root`) and below them, judged by the records, folders after their contents."""
    return list(_Judge(Path(root), transient).walk(targets))


def first_unrecorded(
    root: str | Path, targets: Iterable[Path] | None = None, transient: frozenset[str] = frozenset()
) -> Found | None:
    """The first entry in `targets` (default: all of `root`) or below them that no rewardkit run wrote, else None."""
    root = Path(root)
    judge = _Judge(root, transient)
    chosen = sorted(root.iterdir()) if targets is None and root.is_dir() else list(targets or [])
    return next((found for found in judge.walk(chosen) if not found.ours), None)


def remove_recorded(
    root: str | Path, targets: Iterable[Path] | None = None, transient: frozenset[str] = frozenset()
) -> list[Found]:
    """Delete what the run wrote in `targets` (default: all of `root`): its files, then the folders left empty,
    its records last (a kill midway leaves a record of what is left); return what was kept (not the run's).
    Entries of `root`'s own record that are gone are forgotten."""
    root = Path(root)
    chosen = sorted(root.iterdir()) if targets is None and root.is_dir() else list(targets or [])
    judged = list(_Judge(root, transient).walk(chosen))
    kept = [found for found in judged if not found.ours and not found.is_dir]
    files = [f.path for f in judged if f.ours and not f.is_dir and f.path.name != RECORD]
    for path in files:
        _unlink(path)
    folders = [f.path for f in judged if f.ours and f.is_dir]
    for path in folders:  # contents first (walk order): a folder holding something kept stays
        _rmdir(path)
    for found in judged:
        if found.ours and found.path.name == RECORD:
            _unlink(found.path)
            if found.path.parent in folders:
                _rmdir(found.path.parent)
    if has_record(root):  # the root's record forgets what is gone (a run removing an old adapter folder)
        gone = [path for path in [*files, *folders] if not os.path.lexists(path)]
        note_many(root, [(path, "gone", None) for path in gone])
    return kept


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise DataError(
            f"{path}: cannot delete ({exc.strerror or exc}).", hint="check its folder's permissions."
        ) from None


def _rmdir(path: Path) -> None:
    try:
        os.rmdir(path)
    except (FileNotFoundError, OSError) as exc:
        if isinstance(exc, FileNotFoundError) or exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
            return
        raise DataError(
            f"{path}: cannot delete ({exc.strerror or exc}).", hint="check its folder's permissions."
        ) from None
