"""The judge reward's throughput against a chat-completions server with a fixed latency, measured side by side.

256 completions (distinct, so every one is a request) against tests/rewards/chat_server.py running in a process
of its own with 100 ms per reply:
1. one request at a time (max_concurrency 1, no cache);
2. max_concurrency 32 (no cache): goal >= 16x faster than 1;
3. the same batch twice with the cache on: cold (fills it), then warm: goal 0 requests (counted by the reward
   and by the server).

Run: python benchmarks/bench_judge.py [--quick] [--rows N] [--latency S]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL_SPEEDUP = 16.0


def start_server(latency: float) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.rewards.chat_server", "--latency", str(latency)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def server_seen(url: str) -> dict:
    return json.loads(urllib.request.urlopen(url, timeout=10).read())


def timed(judge, batch: dict) -> tuple[float, list]:
    start = time.perf_counter()
    out = judge(**batch)
    return time.perf_counter() - start, out


def load() -> str:
    """The machine's load: the concurrent run is bound by the client's CPU once the cores are shared."""
    try:
        return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    except OSError:
        return f"{os.cpu_count()} cores"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="64 rows instead of 256")
    parser.add_argument("--rows", type=int, default=256)
    parser.add_argument("--latency", type=float, default=0.1)
    options = parser.parse_args()
    n = 64 if options.quick else options.rows

    from rewardkit import get_reward

    proc, url = start_server(options.latency)
    try:
        batch = {
            "prompts": [f"What is {i} * 3?" for i in range(n)],
            "completions": [f"It is {3 * i}." for i in range(n)],
            "answer": [str(3 * i) for i in range(n)],
        }
        common = dict(
            base_url=url,
            model="bench",
            user_template="Q: {prompt}\nA: {completion}\nGold: {reference}\nScore 0-10:",
            reference="answer",
            score={"min": 0, "max": 10},
        )
        warm_up = get_reward("judge", cache=False, **common)
        warm_up(completions=["x"], prompts=["y"], answer=["z"])  # imports and the first connection, untimed
        print(f"judge against a server with {options.latency * 1000:.0f} ms latency, {n} distinct completions")

        one = get_reward("judge", cache=False, max_concurrency=1, **common)
        t1, out1 = timed(one, batch)
        print(f"  max_concurrency 1:  {t1:7.2f} s  {n / t1:7.1f} rows/s  ({one.usage['requests']} requests)")

        many = get_reward("judge", cache=False, max_concurrency=32, **common)
        before = server_seen(url)["requests"]
        cpu = time.process_time()
        t32, out32 = timed(many, batch)
        cpu = time.process_time() - cpu
        seen = server_seen(url)
        print(
            f"  max_concurrency 32: {t32:7.2f} s  {n / t32:7.1f} rows/s  ({seen['requests'] - before} requests, "
            f"at most {seen['max_in_flight']} in flight on the server)"
        )
        print(
            f"    client CPU {cpu / n * 1000:.1f} ms per request (the openai client), {load()}; the latency alone "
            f"allows {n * options.latency / 32:.2f} s"
        )
        assert out1 == out32, "the scores differ between the two runs"

        with tempfile.TemporaryDirectory() as tmp:
            cached = dict(common, cache_path=str(Path(tmp) / "judge.sqlite"), max_concurrency=32)
            cold_judge = get_reward("judge", **cached)
            t_cold, _ = timed(cold_judge, batch)
            warm_judge = get_reward("judge", **cached)
            before = server_seen(url)["requests"]
            t_warm, out_warm = timed(warm_judge, batch)
            sent = server_seen(url)["requests"] - before
        print(f"  cache cold (fills): {t_cold:7.2f} s  ({cold_judge.usage['requests']} requests)")
        print(
            f"  cache warm:         {t_warm:7.2f} s  ({warm_judge.usage['requests']} requests by the reward, "
            f"{sent} seen by the server, {warm_judge.usage['cache_hits']} cache hits)"
        )
        assert out_warm == out32
        speedup = t1 / t32
        print(
            f"concurrency speed-up: {speedup:.1f}x (goal >= {GOAL_SPEEDUP:.0f}x: "
            f"{'met' if speedup >= GOAL_SPEEDUP else 'NOT met'}); warm cache: {sent} requests (goal 0: "
            f"{'met' if sent == 0 and warm_judge.usage['requests'] == 0 else 'NOT met'}); "
            f"warm cache vs max_concurrency 32: {t32 / t_warm:.1f}x"
        )
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(30)


if __name__ == "__main__":
    main()
