"""The run lock: taken atomically, so two processes never both hold it, even when they race to take over the
stale lock of a killed run; a live holder is reported, whatever PID the stale file names."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rewardkit.core.errors import ConfigError
from tests.conftest import holding_lock, stale_lock

pytestmark = pytest.mark.slow
PROCESSES = 8
TRIALS = 25


def _contend(folder: str, barrier, results) -> None:  # noqa: ANN001  (multiprocessing objects)
    from rewardkit.train.run_lock import locked

    barrier.wait()
    try:
        with locked(Path(folder), lambda line: None):
            try:  # the file only a holder of the lock makes: a second one at the same time finds it there
                fd = os.open(os.path.join(folder, "holder"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                results.put("both")
                return
            time.sleep(0.05)
            os.close(fd)
            os.unlink(os.path.join(folder, "holder"))
            results.put("held")
    except ConfigError:
        results.put("refused")


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_processes_racing_for_a_stale_lock_never_both_hold_it(tmp_path):
    # Forked from a small server process that imported this module only: a fork of the test process itself,
    # which holds torch and TRL by now, costs about 3 times as much, 200 times over.
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([__name__])
    outcomes = []
    for trial in range(TRIALS):
        folder = tmp_path / f"t{trial}"
        stale_lock(folder, _dead_pid())
        barrier, results = ctx.Barrier(PROCESSES), ctx.Queue()
        procs = [ctx.Process(target=_contend, args=(str(folder), barrier, results)) for _ in range(PROCESSES)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
        outcomes.append(sorted(results.get(timeout=10) for _ in procs))
    assert not [o for o in outcomes if "both" in o], outcomes  # never two holders at once
    assert all("held" in o for o in outcomes), outcomes  # and the stale lock is always taken over


def test_a_held_lock_is_refused_and_released_when_its_holder_dies(tmp_path):
    from rewardkit.train.run_lock import live_owner, locked

    with holding_lock(tmp_path) as holder:
        owner = live_owner(tmp_path)
        assert owner is not None and owner["pid"] == holder.pid and owner["process_start"] is not None
        with pytest.raises(ConfigError, match=rf"in use by a running `rewardkit train` \(pid {holder.pid} "):
            with locked(tmp_path, print):
                pass
    # SIGKILLed: the kernel dropped its lock, the file names a PID no one holds the lock with
    assert live_owner(tmp_path) is None
    said: list[str] = []
    with locked(tmp_path, said.append):
        assert live_owner(tmp_path)["pid"] == os.getpid()
    assert said == [f"{tmp_path}: removed the stale lock of a run that is no longer running (pid {holder.pid})."]
