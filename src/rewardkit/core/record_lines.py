"""A run's record file read back (core/written.py writes it): the lines parsed into each path's latest kind and
recorded sizes, and the rule that says whether an entry on disk is one the run wrote. Parsed incrementally: only the
lines added since this process last read the same file. Light module: the standard library only."""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import threading
from dataclasses import dataclass
from pathlib import Path

RECORD = ".rewardkit-written.jsonl"
KINDS = frozenset({"file", "dir", "appended", "pending", "saved", "scratch", "gone"})
_FOLDER_KINDS = frozenset({"dir", "pending", "saved", "scratch"})
# What the Trainer (and peft, TRL, DeepSpeed, FSDP) write into a checkpoint-N/ or final/ folder it saves: accepted
# by name inside a "pending" folder only, i.e. one a kill interrupted before its files were recorded. A file recorded
# there after the folder's latest "pending" line is known by its record alone: a user's edit of final/README.md or
# checkpoint-N/trainer_state.json is not the run's file because of its name.
_TRAINER_FILE = re.compile(
    r"((model|pytorch_model|adapter_model)(-\d+-of-\d+)?\.(safetensors|bin)(\.index\.json)?"
    r"|(config|generation_config|adapter_config|preprocessor_config|processor_config|tokenizer_config|tokenizer"
    r"|special_tokens_map|added_tokens|vocab|chat_template)\.json"
    r"|tokenizer\.model|spiece\.model|vocab\.txt|merges\.txt|chat_template\.jinja|README\.md|training_args\.bin"
    r"|trainer_state\.json|optimizer\.pt|scheduler\.pt|scaler\.pt|rng_state(_\d+)?\.pth|latest|zero_to_fp32\.py)"
)
_TRAINER_DIR = re.compile(r"global_step\d+|pytorch_model_fsdp_\d+|optimizer_\d+")
# Once the main process recorded a save's files the folder is "saved": what it did not record is the run's only if
# another rank writes it (its RNG state, its DeepSpeed/FSDP shards), which may land after the main process recorded.
# A user's config.json or README.md added to a finished final/ is then not the run's by its name.
_RANK_FILE = re.compile(r"rng_state_\d+\.pth")
# A record line is only as good as the folder it was received in: a forged "scratch" or "pending" line on a folder a
# user keeps notes in would hand all of them to --overwrite. So these kinds count only on the names rewardkit gives
# such folders: a temporary `.<name>.<hex>.tmp` / `.<name>.old`, and the folders a save goes into.
# fileio's atomic writes: tempfile.mkstemp(prefix=".<name>.", suffix=".tmp"), whose random part is 8 of [a-z0-9_]
# (a user's `.<name>.mine.tmp` is not one).
_ATOMIC_TMP = re.compile(r"\.(.+)\.[a-z0-9_]{8}\.tmp")
_SCRATCH_NAME = re.compile(r"\..+\.([0-9a-f]{16}\.tmp|old)")  # make_temp_dir's, and a replaced folder's
_PENDING_NAME = re.compile(r"checkpoint-\d+(-\d+)?|final|base|\.vllm-adapter")  # -T: set aside by a resume
_lock = threading.Lock()
# A file up to this size is known by its content too ("h": a digest), not its size alone: a user's edit that keeps the
# byte count (README.md, a config, scores.json) is then not taken for the run's file. Weights are known by size.
DIGEST_MAX = 1 << 20


def digest(data: bytes) -> str:
    """The content digest a record keeps for a small file."""
    return hashlib.sha256(data).hexdigest()[:32]


def file_digest(path: str | Path, size: int) -> str | None:
    """The digest of the regular file at `path` when it is small enough to be known by content, else None."""
    if size > DIGEST_MAX:
        return None
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                return None
            data = handle.read(DIGEST_MAX + 1)
    except OSError:
        return None
    return digest(data) if len(data) <= DIGEST_MAX else None


def clean_relative(rel: object) -> str | None:
    """A relative path that stays inside its folder, else None (`..`, absolute, empty or `.` parts, NUL)."""
    if not isinstance(rel, str) or not rel or "\0" in rel or rel.startswith("/"):
        return None
    return None if any(part in ("", ".", "..") for part in rel.split("/")) else rel


@dataclass(frozen=True)
class _Entry:
    kind: str
    sizes: frozenset[int] = frozenset()
    digests: frozenset[tuple[int, str]] = frozenset()  # (size, digest) of the small files recorded at this path
    seq: int = 0  # the number of its latest line in the record


class _Lines:
    """A record file parsed up to `offset` (its last whole line): each path's entry (entries are replaced, never
    changed, so a view handed out stays as it was) and how many entries lie below each folder."""

    def __init__(self, identity: tuple[int, int]) -> None:
        self.identity = identity
        self.offset = 0
        self.seq = 0  # lines parsed
        self.entries: dict[str, _Entry] = {}
        self.by_top: dict[str, set[str]] = {}  # first path part -> the entries under it (a "gone" looks only there)
        self.below: dict[str, int] = {}  # folder -> number of entries below it

    def _count(self, rel: str, step: int) -> None:
        parts = rel.split("/")
        for i in range(1, len(parts)):
            key = "/".join(parts[:i])
            self.below[key] = self.below.get(key, 0) + step
            if self.below[key] <= 0:
                del self.below[key]

    def _forget(self, rel: str) -> None:
        bucket = self.by_top.get(rel.split("/", 1)[0], set())
        for key in [k for k in bucket if k == rel or k.startswith(rel + "/")]:
            bucket.discard(key)
            del self.entries[key]
            self._count(key, -1)

    def add(self, data: bytes) -> None:
        """Parse the whole lines of `data` (read from `offset`); a cut last line waits for its end."""
        end = data.rfind(b"\n") + 1
        self.offset += end
        for raw in data[:end].decode("utf-8", errors="surrogateescape").splitlines():
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            rel = clean_relative(line.get("p")) if isinstance(line, dict) else None
            kind, size = (line.get("k"), line.get("s")) if isinstance(line, dict) else (None, None)
            known = line.get("h") if isinstance(line, dict) else None
            if rel is None or not isinstance(kind, str) or kind not in KINDS:  # a list/dict kind is unhashable
                continue
            self.seq += 1
            if kind == "gone":
                self._forget(rel)
                continue
            old = self.entries.get(rel)
            if old is None:
                self.by_top.setdefault(rel.split("/", 1)[0], set()).add(rel)
                self._count(rel, 1)
            # sizes accumulate while it stays a file (a folder or scratch before: none)
            still = old is not None and old.kind in ("file", "appended")
            sizes = old.sizes if still and old is not None else frozenset()
            digests = old.digests if still and old is not None else frozenset()
            if kind == "file" and isinstance(size, int) and not isinstance(size, bool) and size >= 0:
                sizes = sizes | {size}
                if isinstance(known, str) and len(known) == 32:
                    digests = digests | {(size, known)}
            if kind in ("file", "appended"):
                self.entries[rel] = _Entry(kind, sizes, digests, self.seq)
            else:
                self.entries[rel] = _Entry(kind, seq=self.seq)


_parsed: dict[str, _Lines] = {}  # record file -> what this process parsed of it


def forget_parsed(path: Path) -> None:
    """Drop what this process parsed of the record file `path` (deleted: a new one may reuse its inode number)."""
    with _lock:
        _parsed.pop(str(path.absolute()), None)


@dataclass
class Record:
    """One folder's record, read: the latest kind and the recorded sizes of each path."""

    folder: Path
    entries: dict[str, _Entry]
    below: dict[str, int]  # folder -> how many recorded paths lie below it

    @classmethod
    def read(cls, folder: str | Path) -> Record | None:
        """The record of `folder` (None: it has none); lines that do not parse or leave the folder are skipped.
        Only the lines added since this process last read the same file are parsed (a long run reads it often)."""
        path = Path(folder) / RECORD
        try:
            st = os.lstat(path)
            if not stat.S_ISREG(st.st_mode):
                return None
            with _lock:
                lines = _parsed.get(str(path.absolute()))
                if lines is None or lines.identity != (st.st_dev, st.st_ino) or st.st_size < lines.offset:
                    lines = _Lines((st.st_dev, st.st_ino))
                fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
                with os.fdopen(fd, "rb") as handle:
                    handle.seek(lines.offset)
                    lines.add(handle.read())
                _parsed[str(path.absolute())] = lines
                entries, below = dict(lines.entries), dict(lines.below)
        except OSError:
            return None
        return cls(Path(folder), entries, below)

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
                return self.same_content(rel, st, entry)
        parts = rel.split("/")
        for i in range(1, len(parts)):
            above = self.entries.get("/".join(parts[:i]))
            if above is None:
                continue
            name = parts[i - 1]
            if above.kind == "scratch" and (is_dir or is_file) and _SCRATCH_NAME.fullmatch(name):
                return True
            if (
                above.kind == "pending"
                and (entry is None or entry.kind != "file" or above.seq > entry.seq)
                and _PENDING_NAME.fullmatch(name)
                and _trainer_writes(parts[i:], is_dir, is_file)
            ):
                return True
            if above.kind == "saved" and entry is None and _PENDING_NAME.fullmatch(name):
                if _rank_writes(parts[i:], is_dir, is_file):
                    return True
        if is_dir and rel in self.below:
            return True
        name = parts[-1]
        leftover = _ATOMIC_TMP.fullmatch(name) if is_file else None  # what a killed atomic write leaves
        if leftover is not None:
            sibling = self.entries.get("/".join([*parts[:-1], leftover.group(1)]))
            return sibling is not None and sibling.kind in ("file", "appended")
        return False

    def same_content(self, rel: str, st: os.stat_result, entry: _Entry) -> bool:
        """Whether the file at `rel` has a content recorded for its size (True: none recorded, a large file)."""
        known = {d for size, d in entry.digests if size == st.st_size}
        return not known or file_digest(self.folder / rel, st.st_size) in known

    def sizes(self, rel: str) -> set[int]:
        """The sizes recorded for the file at `rel`."""
        entry = self.entries.get(rel)
        return set(entry.sizes) if entry is not None else set()


def _rank_writes(parts: list[str], is_dir: bool, is_file: bool) -> bool:
    """Whether `parts` (below a saved folder) is a file or folder a rank other than the main process writes there."""
    if _TRAINER_DIR.fullmatch(parts[0]):
        return is_dir or is_file
    return len(parts) == 1 and is_file and _RANK_FILE.fullmatch(parts[0]) is not None


def _trainer_writes(parts: list[str], is_dir: bool, is_file: bool) -> bool:
    """Whether `parts` (below a pending save folder) is a file or folder the Trainer writes there."""
    if _TRAINER_DIR.fullmatch(parts[0]):
        return is_dir or is_file
    return len(parts) == 1 and is_file and _TRAINER_FILE.fullmatch(parts[0]) is not None
