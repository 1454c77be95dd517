"""The process pool: deadlines per item, kills past them, replaces workers, safe from 8 threads and in a spawned process."""

from __future__ import annotations

import multiprocessing as mp
import pickle
import threading
import time

import pytest

from rewardkit.core.pool import Outcome, ProcessPool, shared_pool
from tests.core.pool_tasks import dies, fails, nested, pid, sleepy, spin, square


@pytest.fixture
def pool():
    p = ProcessPool(2, name="test")
    yield p
    p.close()


def test_map_returns_values_in_order(pool):
    assert pool.map(square, [1, 2, 3, 4.5], timeout=5.0) == [Outcome("ok", v) for v in (1, 4, 9, 20.25)]
    assert pool.map(square, [], timeout=5.0) == []


def test_a_task_past_its_deadline_is_killed_and_the_others_complete(pool):
    pool.map(square, [0, 0], timeout=None)  # start both workers: the timing below excludes start-up
    before = set(o.value for o in pool.map(pid, [0, 0, 0, 0], timeout=5.0))
    start = time.monotonic()
    outcomes = pool.map(spin, [0.1, 60.0, 0.2, 0.3, 0.1], timeout=1.0)
    elapsed = time.monotonic() - start
    assert [o.status for o in outcomes] == ["ok", "timeout", "ok", "ok", "ok"]
    assert [o.value for o in outcomes if o.ok] == [0.1, 0.2, 0.3, 0.1]
    assert elapsed < 10  # not 60: the spinning worker was killed at its deadline
    time.sleep(0.2)
    assert pool.alive() <= 2  # the killed worker is gone, nothing burns a core in the background
    after = set(o.value for o in pool.map(pid, [0, 0, 0, 0], timeout=5.0))
    assert after and after != before  # a fresh worker replaced the killed one
    assert all(o.ok for o in pool.map(square, [1, 2], timeout=5.0))


def test_items_run_in_parallel_over_the_workers(pool):
    pool.map(square, [0, 0], timeout=None)
    start = time.monotonic()
    assert all(o.ok for o in pool.map(sleepy, [0.5, 0.5], timeout=5.0))
    assert time.monotonic() - start < 0.95  # two workers: 0.5 s, not 1.0 s


def test_errors_and_deaths_are_outcomes(pool):
    outcomes = pool.map(fails, ["x"], timeout=5.0)
    assert outcomes == [Outcome("error", error="ValueError: bad x")]
    died = pool.map(dies, [7], timeout=5.0)[0]
    assert died.status == "error" and died.died and "exit code 7" in died.error
    unpicklable = pool.map(square, [lambda: 1], timeout=5.0)[0]
    assert unpicklable.status == "error" and "cannot send the task" in unpicklable.error
    assert pool.map(square, [3], timeout=5.0) == [Outcome("ok", 9)]  # the pool recovered


def test_eight_threads_each_get_their_own_results():
    shared = shared_pool("test-threads", 3)
    assert shared is shared_pool("test-threads", 3)
    wrong: list = []

    def caller(t: int) -> None:
        for k in range(15):
            items = [t * 1000 + k * 10 + j for j in range(1 + (t + k) % 4)]
            got = shared.map(square, items, timeout=5.0)
            if got != [Outcome("ok", x * x) for x in items]:
                wrong.append((t, k, got))

    threads = [threading.Thread(target=caller, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert not wrong
    assert not any(th.is_alive() for th in threads)


def test_eight_threads_with_deadlines_mixed_in():
    p = ProcessPool(3, name="test-mixed")
    results: dict[int, list] = {}

    def caller(t: int) -> None:
        items = [0.05, 30.0 if t % 4 == 0 else 0.05, 0.05]
        results[t] = [o.status for o in p.map(sleepy, items, timeout=1.5)]

    threads = [threading.Thread(target=caller, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    p.close()
    for t, statuses in results.items():
        assert statuses == ["ok", "timeout" if t % 4 == 0 else "ok", "ok"], (t, statuses)
    assert len(results) == 8


def _in_child(queue) -> None:
    queue.put(nested([1, 2, 3]))


def test_works_in_a_spawned_process_and_inside_a_pool_worker(pool):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_in_child, args=(queue,))
    proc.start()
    assert queue.get(timeout=120) == [1, 4, 9]
    proc.join(30)
    assert proc.exitcode == 0
    assert pool.map(nested, [[2, 3]], timeout=60.0) == [Outcome("ok", [4, 9])]  # a pool inside a pool worker


def test_a_pool_is_never_pickled_and_bad_arguments_are_refused(pool):
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(pool)
    with pytest.raises(ValueError, match="workers must be an integer"):
        ProcessPool(0, name="x")
    with pytest.raises(ValueError, match="timeout must be > 0"):
        pool.map(square, [1], timeout=0)
    pool.close()
    with pytest.raises(RuntimeError, match="closed"):
        pool.map(square, [1], timeout=1.0)


def test_ctrl_c_stops_the_workers_without_their_tracebacks(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    from tests.conftest import ROOT, default_sigint

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.core.pool_tasks"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=default_sigint,  # under a background shell SIGINT would arrive ignored
    )
    assert proc.stdout is not None
    workers = [int(p) for p in proc.stdout.readline().split()]
    time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole process group
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in out
    assert "Traceback" not in err, err
    time.sleep(0.5)
    for worker in workers:
        with pytest.raises(ProcessLookupError):
            os.kill(worker, 0)
