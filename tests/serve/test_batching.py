"""MicroBatcher: concurrent calls merge into one, each caller gets its own rows, a bad call fails alone."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from rewardkit.serve.batching import MicroBatcher


class Recorder:
    """A call that scores len(text) and records the size of every call it gets."""

    def __init__(self, delay: float = 0.0) -> None:
        self.sizes: list[int] = []
        self.lock = threading.Lock()
        self.delay = delay

    def __call__(self, kwargs: dict) -> tuple[list, list]:
        texts = kwargs["completions"]
        if any(t == "bad" for t in texts):
            raise ValueError("a bad row")
        with self.lock:
            self.sizes.append(len(texts))
        time.sleep(self.delay)
        return [float(len(t)) for t in texts], [None] * len(texts)


def test_eight_threads_at_once_share_calls_and_get_their_own_rows():
    record = Recorder()
    batcher = MicroBatcher(record, max_wait=0.2, max_rows=64)
    requests = [[f"{'x' * (i + 1)}", "yy"] for i in range(8)]
    try:
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda texts: batcher.submit({"completions": texts, "prompts": None}), requests))
    finally:
        batcher.close()
    assert [scores for scores, _ in results] == [[float(i + 1), 2.0] for i in range(8)]
    assert sum(record.sizes) == 16 and len(record.sizes) < 8  # merged: fewer calls than requests
    assert batcher.merged >= 2


def test_max_rows_caps_a_merged_call():
    record = Recorder()
    batcher = MicroBatcher(record, max_wait=0.2, max_rows=4)
    try:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda _: batcher.submit({"completions": ["a", "b", "c"]}), range(8)))
    finally:
        batcher.close()
    assert max(record.sizes) <= 4 and sum(record.sizes) == 24


def test_a_bad_request_fails_alone():
    record = Recorder()
    batcher = MicroBatcher(record, max_wait=0.2)
    outcomes: dict = {}

    def send(name: str, texts: list[str]) -> None:
        try:
            outcomes[name] = batcher.submit({"completions": texts})
        except ValueError as exc:
            outcomes[name] = exc

    threads = [threading.Thread(target=send, args=(n, t)) for n, t in [("a", ["ok"]), ("b", ["bad"]), ("c", ["fine"])]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    batcher.close()
    assert outcomes["a"] == ([2.0], [None]) and outcomes["c"] == ([4.0], [None])
    assert isinstance(outcomes["b"], ValueError)


def test_different_columns_do_not_merge():
    record = Recorder()
    batcher = MicroBatcher(record, max_wait=0.2)
    with ThreadPoolExecutor(2) as pool:
        a = pool.submit(batcher.submit, {"completions": ["a"], "answer": ["x"]})
        b = pool.submit(batcher.submit, {"completions": ["bb"], "gold": ["y"]})
        assert a.result()[0] == [1.0] and b.result()[0] == [2.0]
    batcher.close()
    assert sorted(record.sizes) == [1, 1]


def test_closed_batcher_refuses():
    batcher = MicroBatcher(Recorder())
    batcher.close()
    with pytest.raises(RuntimeError, match="closed"):
        batcher.submit({"completions": ["a"]})
