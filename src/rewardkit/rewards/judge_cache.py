"""The judge's reply cache: one SQLite file (WAL mode, so several training processes on one machine share it).

A key is the SHA-256 of the request that matters (endpoint, model, rendered messages, sampling parameters, parser);
the value is the reply as JSON (its text, the token log-probabilities when asked for, the token usage). The file
is data: nothing in it is executed or unpickled. A counters table keeps hits, requests and tokens for
`rewardkit judge-cache stats`. Each scoring call opens its own connection (a connection is never shared
between threads); writers wait for one another through SQLite's busy timeout.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rewardkit.core.errors import ConfigError, DataError

APPLICATION_ID = 0x726B6A63  # "rkjc" in the SQLite header: this file is a rewardkit judge cache
BUSY_TIMEOUT_MS = 60_000  # how long a writer waits for another process's transaction
COUNTERS = ("hits", "requests", "prompt_tokens", "completion_tokens")
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS replies (key TEXT PRIMARY KEY, model TEXT NOT NULL, reply TEXT NOT NULL, "
    "created REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
)


def default_cache_path() -> Path:
    """`$REWARDKIT_CACHE/judge.sqlite`, else `$XDG_CACHE_HOME/rewardkit/judge.sqlite`, else under ~/.cache."""
    if os.environ.get("REWARDKIT_CACHE"):
        return Path(os.environ["REWARDKIT_CACHE"]).expanduser() / "judge.sqlite"
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()
    return base / "rewardkit" / "judge.sqlite"


def cache_key(request: dict[str, Any]) -> str:
    """The SHA-256 of a request's canonical JSON (sorted keys, no spaces).

    >>> cache_key({"model": "m", "messages": []}) == cache_key({"messages": [], "model": "m"})
    True
    """
    text = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _not_a_cache(path: Path, why: str) -> ConfigError:
    return ConfigError(
        f"judge cache {str(path)!r}: {why}.",
        hint="point cache_path at a judge cache file (or a new file name), or set cache: false.",
    )


def _use_wal(conn: sqlite3.Connection) -> None:
    """Switch the file to WAL; the switch needs the file to itself and SQLite answers "locked" at once (no busy
    wait) while another connection opens it, so it is retried within the busy timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        try:
            conn.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def connect(path: Path, create: bool = True) -> sqlite3.Connection:
    """An open connection to the cache at `path` in WAL mode, created (with its folder) when missing."""
    if not create and not path.is_file():
        raise DataError(f"no judge cache at {str(path)!r}.", hint="give the cache_path the judge used.")
    if path.is_dir():
        raise _not_a_cache(path, "is a folder")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=True)
    except sqlite3.Error as exc:
        raise _not_a_cache(path, f"cannot be opened ({exc})") from exc
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        # Check and create in one write transaction: two processes opening a new cache at once would otherwise
        # read the id before the other's commit and its tables after it, and take a fresh cache for a foreign file.
        conn.execute("BEGIN IMMEDIATE")
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if app_id != APPLICATION_ID and (app_id != 0 or tables):
            conn.execute("ROLLBACK")
            raise _not_a_cache(path, "is another SQLite database, not a rewardkit judge cache")
        if app_id == 0:
            for statement in _SCHEMA:
                conn.execute(statement)
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute("COMMIT")
        _use_wal(conn)  # only once the file is known to be ours
        conn.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: durable across crashes of the process
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise _not_a_cache(path, f"is not a SQLite database ({exc})") from exc
    except BaseException:
        conn.close()
        raise
    return conn


def lookup(conn: sqlite3.Connection, keys: Iterable[str]) -> dict[str, dict]:
    """{key: reply} for the keys the cache holds."""
    wanted = list(dict.fromkeys(keys))
    found: dict[str, dict] = {}
    for start in range(0, len(wanted), 500):  # SQLite's bound-parameter limit
        chunk = wanted[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for key, reply in conn.execute(f"SELECT key, reply FROM replies WHERE key IN ({marks})", chunk):
            try:
                found[key] = json.loads(reply)
            except ValueError:
                continue  # a damaged entry is a miss: the request is sent again and the entry replaced
    return found


def store(conn: sqlite3.Connection, key: str, model: str, reply: dict) -> None:
    """Keep one reply (replacing an older one with the same key)."""
    text = json.dumps(reply, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    conn.execute("INSERT OR REPLACE INTO replies VALUES (?, ?, ?, ?)", (key, model, text, time.time()))


def add_counts(conn: sqlite3.Connection, counts: dict[str, int]) -> None:
    """Add a call's hits, requests and tokens to the file's totals."""
    rows = [(name, int(counts.get(name, 0))) for name in COUNTERS if counts.get(name)]
    if rows:
        conn.executemany(
            "INSERT INTO counters VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + excluded.value", rows
        )


def stats(path: Path) -> dict[str, Any]:
    """Entries, bytes on disk, the totals (hits, requests, tokens) and entries per model of the cache at `path`."""
    conn = connect(path, create=False)
    try:
        totals = dict(conn.execute("SELECT name, value FROM counters").fetchall())
        entries, oldest, newest = conn.execute("SELECT COUNT(*), MIN(created), MAX(created) FROM replies").fetchone()
        models = dict(conn.execute("SELECT model, COUNT(*) FROM replies GROUP BY model ORDER BY model").fetchall())
    finally:
        conn.close()
    size = sum(p.stat().st_size for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.is_file())
    return {
        "path": str(path),
        "entries": entries,
        "bytes": size,
        **{name: int(totals.get(name, 0)) for name in COUNTERS},
        "models": models,
        "oldest": oldest,
        "newest": newest,
    }


def clear(path: Path) -> int:
    """Remove every entry and reset the totals of the cache at `path` (the file stays); returns the entries removed."""
    conn = connect(path, create=False)
    try:
        conn.execute("BEGIN IMMEDIATE")
        removed = conn.execute("DELETE FROM replies").rowcount
        conn.execute("DELETE FROM counters")
        conn.execute("COMMIT")
        conn.execute("VACUUM")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return int(removed)
