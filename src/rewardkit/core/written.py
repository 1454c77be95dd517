"""The record of what a rewardkit run wrote in its folder, so that it deletes or replaces only that.

`<folder>/.rewardkit-written.jsonl` holds one JSON line per write, appended with one O_APPEND write by the process
that writes (the main process of a launch), before the write: `{"p": path relative to the folder, "k": kind,
"s": size, "h": digest}`. Kinds: "file" (written whole; "s" its size in bytes, "h" a content digest when it is at most
DIGEST_MAX bytes), "dir", "appended" (it grows: any size while this
is its latest line), "pending" (a folder the Trainer saves into: until its files are recorded, files with the names
the Trainer writes there are accepted), "saved" (such a folder once its files were recorded: only what another
rank writes there late, its RNG state or shards, is accepted unrecorded), "scratch" (a temporary folder the run made under a random name: all below
it is the run's), "gone" (moved away or deleted: the path and all below it are forgotten).

A file is the run's when it is a regular file and its size (and for a small file its content) is one recorded for it
since it was last forgotten (a kill between the record and the write leaves the earlier file, recorded then) or its latest line
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
import logging
import os
import secrets
import shutil
import stat
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from rewardkit.core.errors import DataError
from rewardkit.core.record_lines import DIGEST_MAX as DIGEST_MAX
from rewardkit.core.record_lines import KINDS as KINDS
from rewardkit.core.record_lines import RECORD as RECORD
from rewardkit.core.record_lines import Record as Record
from rewardkit.core.record_lines import clean_relative, digest, file_digest, forget_parsed

_lock = threading.Lock()
_latest: dict[tuple[str, str], str] = {}  # (record file, path) -> the kind this process last recorded for it


_append_lock = threading.Lock()


def own_inode(path: Path) -> None:
    """Give the file at `path` an inode of its own when it has other hard links (a `cp -al` backup, a link made to a
    file outside the run), so that an append changes the run's file only, never the other names of it."""
    st = os.lstat(path) if os.path.lexists(path) else None
    if st is None or not stat.S_ISREG(st.st_mode) or st.st_nlink <= 1:
        return
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")  # a killed atomic write's name: the run's
    try:
        shutil.copy2(path, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def relative(root: str | Path, path: str | Path) -> str | None:
    """`path` relative to the folder `root` ("/"-separated), or None when it is `root` itself or outside it."""
    rel = os.path.relpath(os.path.abspath(path), os.path.abspath(root))
    return clean_relative(rel.replace(os.sep, "/"))


Line = tuple[str | Path, str, int | None, str | None]  # path, kind, size, content digest (a small file's)


def note_many(root: str | Path, items: Iterable[Line | tuple[str | Path, str, int | None]]) -> None:
    """Append `(path, kind, size[, digest])` lines to `root`'s record in one write (paths outside `root` are not
    recorded)."""
    lines, keys = [], []
    record = Path(root) / RECORD
    for item in items:
        path, kind, size = item[0], item[1], item[2]
        known = item[3] if len(item) > 3 else None
        rel = relative(root, path)
        if rel is None or kind not in KINDS:
            continue
        line: dict[str, object] = {"p": rel, "k": kind}
        if size is not None:
            line["s"] = int(size)
        if known is not None:
            line["h"] = known
        lines.append(json.dumps(line, ensure_ascii=False))
        keys.append(((str(record), rel), kind))
    if not lines:
        return
    data = ("\n".join(lines) + "\n").encode("utf-8", errors="surrogateescape")
    flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        os.makedirs(root, exist_ok=True)
        with _append_lock:  # no line appended to the old inode while own_inode copies it
            own_inode(record)
            fd = os.open(record, flags, 0o666)  # the umask applies
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise OSError(errno.EINVAL, "not a regular file")
            if st.st_size and os.pread(fd, 1, st.st_size - 1) != b"\n":
                data = b"\n" + data  # a line cut short (a crash) stays one bad line instead of swallowing this one
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
    except OSError as exc:
        # Named by the write it precedes: a folder turned read-only (or a full disk) shows as that write failing.
        first = Path(root) / json.loads(lines[0])["p"]
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            reason, hint = f"the run folder {root} is not writable", f"make {root} writable again, then --resume."
        elif exc.errno in (errno.ENOSPC, errno.EDQUOT):
            reason, hint = "the disk is full or over quota", f"free space on {root}, then --resume."
        else:
            reason = "its record is a symlink" if exc.errno == errno.ELOOP else (exc.strerror or str(exc))
            hint = f"the run's record {record} must be a regular file in a writable run folder."
        raise DataError(
            f"{first}: cannot be written: the run's record of its files cannot grow ({reason}).", hint=hint
        ) from None
    with _lock:
        for key, kind in keys:
            _latest[key] = kind


def note(root: str | Path, path: str | Path, kind: str, size: int | None = None, known: str | None = None) -> None:
    """Record one path `root`'s run writes (see the module docstring for the kinds; `known`: a small file's digest)."""
    note_many(root, [(path, kind, size, known)])


def data_digest(data: bytes) -> str | None:
    """The digest a record keeps for `data` written whole (None: too large to be known by content)."""
    return digest(data) if len(data) <= DIGEST_MAX else None


def note_file(root: str | Path, path: str | Path) -> None:
    """Record the file now at `path` as written by `root`'s run: its size, and its digest when it is small."""
    size = os.stat(path).st_size
    note(root, path, "file", size, file_digest(path, size))


def grows(root: str | Path, path: str | Path) -> bool:
    """Whether this process last recorded `path` as a file that grows (append-only writers record it once)."""
    rel = relative(root, path)
    with _lock:
        return _latest.get((str(Path(root) / RECORD), rel or "")) == "appended"


def tree_lines(top: Path, at: Path, exclude: frozenset[Path] = frozenset()) -> list[Line]:
    """Record lines for the folder `top` and everything in it as if it were at `at` (links skipped, `exclude`d
    files of `top` left out)."""
    lines: list[Line] = [(at, "dir", None, None)]
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
                lines.append((base / name, "dir", None, None))
            elif stat.S_ISREG(st.st_mode):
                lines.append((base / name, "file", st.st_size, file_digest(path, st.st_size)))
    return lines


def note_tree(root: str | Path, top: Path, exclude: frozenset[Path] = frozenset()) -> None:
    """Record the folder `top` (in `root`) and every file and folder in it as `root`'s run's, but `exclude`."""
    if Path(top).is_dir() and not Path(top).is_symlink():
        note_many(root, tree_lines(Path(top), Path(top), exclude))


def move_recorded(root: str | Path, src: Path, dst: Path) -> None:
    """Move `src` to `dst` (both in `root`) and its record with it: what was recorded under `src` is under `dst`."""
    record = Record.read(root)
    old, new = relative(root, src), relative(root, dst)
    items: list[Line] = []
    if record is not None and old is not None and new is not None:
        for rel, entry in sorted(record.entries.items(), key=lambda item: item[1].seq):  # lines keep their order
            if rel == old or rel.startswith(old + "/"):
                moved = Path(root) / (new + rel[len(old) :])
                hashed = {size for size, _ in entry.digests}
                items += [(moved, "file", size, None) for size in sorted(entry.sizes - hashed)]
                items += [(moved, "file", size, known) for size, known in sorted(entry.digests)]
                if entry.kind != "file" or not entry.sizes:
                    items.append((moved, entry.kind, None, None))
    note_many(root, items)  # before the move, and `src` forgotten after: a kill between leaves both recorded
    os.replace(src, dst)
    note(root, src, "gone")


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
    """Judges entries below `root` by the records above them: `root`'s own, and a record inside it only when its
    folder is one those records hold (a stage folder a demo/--smoke run made; a copy of another run that the user
    put inside is not). `transient`: file names that are the run's anywhere (its lock, left by a kill)."""

    def __init__(self, root: Path, transient: frozenset[str]) -> None:
        self.root = root
        self.transient = transient
        self.records: dict[Path, Record | None] = {}
        self.trusted: dict[Path, list[Record]] = {}

    def record(self, folder: Path) -> Record | None:
        if folder not in self.records:
            self.records[folder] = Record.read(folder)
        return self.records[folder]

    def records_for(self, folder: Path) -> list[Record]:
        """The records that speak for entries of `folder`, outermost first."""
        if folder not in self.trusted:
            if folder == self.root or self.root not in folder.parents:
                own = self.record(self.root)
                self.trusted[folder] = [own] if own is not None else []
            else:
                outer = self.records_for(folder.parent)
                own = self.record(folder)
                held = own is not None and any(
                    r.covers(folder.relative_to(r.folder).as_posix(), os.lstat(folder)) for r in outer
                )
                self.trusted[folder] = [*outer, own] if held and own is not None else outer
        return self.trusted[folder]

    def judge(self, path: Path, st: os.stat_result) -> Found:
        is_dir = stat.S_ISDIR(st.st_mode)
        if stat.S_ISLNK(st.st_mode):
            return Found(path, False, False, f"a symlink to {os.path.realpath(path)}")
        records = self.records_for(path.parent)
        if stat.S_ISREG(st.st_mode) and path.name == RECORD and any(r.folder == path.parent for r in records):
            return Found(path, False, True)
        if stat.S_ISREG(st.st_mode) and path.name in self.transient:
            return Found(path, False, True)
        sizes: set[int] = set()
        for record in records:
            rel = path.relative_to(record.folder).as_posix()
            if record.covers(rel, st):
                return Found(path, is_dir, True)
            sizes |= record.sizes(rel)
        if sizes and stat.S_ISREG(st.st_mode):
            was = "other content of the same size" if st.st_size in sizes else f"{st.st_size} bytes, not {max(sizes)}"
            return Found(path, False, False, f"changed since the run wrote it: {was}")
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


def keep_unrecorded(inside: str | Path, final: Path, new: Path) -> list[Path]:
    """Copy what the run did not write in the folder `final` (a user's note) into `new`, the folder replacing it,
    at the same place (beside, as `<name>.kept`, when the new folder has a file of that name): rewardkit replaces
    only what it wrote. Returns the copies, which the record leaves out."""
    copies = []
    for found in judged(inside, [final]):
        if found.ours or found.path == final:
            continue
        rel = found.path.relative_to(final)
        copy = new / rel
        if os.path.lexists(copy) and not (found.is_dir and copy.is_dir()):
            copy = copy.with_name(copy.name + ".kept")
        if found.is_dir:
            os.makedirs(copy, exist_ok=True)
        else:
            os.makedirs(copy.parent, exist_ok=True)
            shutil.copy2(found.path, copy, follow_symlinks=False)
            logging.getLogger("rewardkit").warning(
                "%s was not written by this run; it is kept (as %s) in the folder that replaces %s.",
                found.path,
                final / copy.relative_to(new),
                final,
            )
        copies.append(copy)
    return copies


def set_aside_unrecorded(inside: str | Path, path: str | Path) -> Path | None:
    """Move a file at `path` the run did not write (a user's, a run file the user replaced, an older rewardkit's)
    to `<name>.kept` before the run writes its own there; return where it went (None: nothing to keep)."""
    path = Path(path)
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return None  # missing, or a folder/link the write refuses itself
    except OSError:
        return None
    found = judged(inside, [path])
    if not found or found[-1].ours:
        return None
    kept = path.with_name(path.name + ".kept")
    number = 1
    while os.path.lexists(kept):
        number += 1
        kept = path.with_name(f"{path.name}.kept{number}")
    os.replace(path, kept)
    logging.getLogger("rewardkit").warning(
        "%s was %s; it is kept as %s, and the run writes its own %s.", path, found[-1].why, kept.name, path.name
    )
    return kept


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
            forget_parsed(found.path)  # a new record may get the same inode number
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
