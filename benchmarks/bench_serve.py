"""Rewards at scale, side by side in one run: async components, `rewardkit serve` throughput, shared model memory.

    python benchmarks/bench_serve.py            # the three measurements
    python benchmarks/bench_serve.py --quick    # smaller sizes, one repeat

(a) async: k = 1, 2, 4 async reward functions of a fixed latency composed linearly (`a + b + ...`) and
    non-linearly (`max(...)`): the composed reward called from sync code, the functions `to_trl()` hands TRL
    gathered as GRPOTrainer gathers async rewards, and the non-linear composition; "one latency" is the floor
    (all components at once), k latencies what running them one after the other costs.
(b) throughput: ROUGE-1 on long texts (a CPU-bound spec) in process vs through 1 `rewardkit serve` vs 2 servers
    (the `remote` reward splitting each batch across them) vs 1 server with `--workers 2` (the component's batches
    split over 2 worker processes). Rows per second, best of the repeats.
(c) memory: two training-like processes (torch + transformers imported, a batch scored) each loading a
    BERT-base-sized bertscore model, vs the same two processes using `remote` and one server that holds it.
    RSS summed over every process involved (psutil), measured while all are alive.

Every server binds 127.0.0.1 on a free port and is stopped at the end. On a shared machine wall-clock numbers
move with the neighbours' load: compare the rows of one run, not runs on different days.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_NUM_THREADS", "1")

WORDS = (
    "the a of to and in is that it for on with as was by this be are from at an not or have which one had all "
    "model answer reason because therefore sentence correct wrong value number result step first then next "
    "finally compute total equals multiply divide subtract probability distribution gradient optimization"
).split()


def text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


# --- (a) async components -----------------------------------------------------------------------------------------
LATENCY = 0.2


async def _wait(completions: list, **kwargs: Any) -> list[float]:
    await asyncio.sleep(LATENCY)
    return [1.0] * len(completions)


def async_functions(k: int) -> dict[str, Any]:
    """k distinct async reward functions (each sleeps LATENCY once per call)."""
    funcs = {}
    for i in range(k):

        async def reward(completions: list, **kwargs: Any) -> list[float]:
            return await _wait(completions, **kwargs)

        reward.__name__ = f"wait{i}"
        funcs[f"wait{i}"] = reward
    return funcs


def best(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def trl_gather(funcs: list, kwargs: dict) -> None:
    """What GRPOTrainer does with its reward functions: sync ones one by one, then the async ones gathered."""
    import inspect

    def is_async(f: Any) -> bool:
        return inspect.iscoroutinefunction(f) or inspect.iscoroutinefunction(getattr(f, "__call__", None))  # noqa: B004

    for f in funcs:
        if not is_async(f):
            f(**kwargs)

    async def gather() -> None:
        await asyncio.gather(*(f(**kwargs) for f in funcs if is_async(f)))

    asyncio.run(gather())


def bench_async(repeats: int) -> None:
    from rewardkit import compose

    print(f"(a) async components of {LATENCY * 1000:.0f} ms each, 8 completions; seconds per call (best of {repeats})")
    print(
        f"    {'k':>2} {'one by one':>11} {'composed a+b+..':>16} {'TRL gather':>11} {'max(a, b, ..)':>14} "
        f"{'one latency':>12}"
    )
    kwargs = {"completions": ["x"] * 8, "prompts": ["p"] * 8}
    for k in (1, 2, 4):
        funcs = async_functions(k)
        linear = compose({"rewards": dict(funcs), "combine": " + ".join(funcs)})
        nonlinear = compose({"rewards": dict(funcs), "combine": f"max({', '.join(funcs)})" if k > 1 else "wait0"})
        one_by_one = best(lambda f=linear: [c(**kwargs) for c in f.components.values()], repeats)  # before #26
        sequential = best(lambda f=linear: f(**kwargs), repeats)
        gathered = best(lambda f=linear: trl_gather(f.to_trl()[0], kwargs), repeats)
        combined = best(lambda f=nonlinear: f(**kwargs), repeats)
        print(
            f"    {k:>2} {one_by_one:>11.3f} {sequential:>16.3f} {gathered:>11.3f} {combined:>14.3f} {LATENCY:>12.3f}"
        )


# --- servers ---------------------------------------------------------------------------------------------------------
@contextmanager
def server(spec: Path, *args: str, log: Path) -> Iterator[tuple[str, int]]:
    """A `rewardkit serve` process on 127.0.0.1 (a free port): (url, pid), stopped with SIGTERM at the end."""
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "rewardkit", "serve", str(spec), "--port", "0", *args], stdout=out, stderr=out
        )
    try:
        deadline = time.monotonic() + 300
        url = ""
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SystemExit(f"rewardkit serve exited: {log.read_text()[-2000:]}")
            found = [w for w in log.read_text().split() if w.startswith("http://127.0.0.1:")]
            if found:
                url = found[0]
                try:
                    with urllib.request.urlopen(url + "/health", timeout=5):
                        break
                except OSError:
                    pass
            time.sleep(0.2)
        yield url, process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()


# --- (b) throughput --------------------------------------------------------------------------------------------------
def bench_throughput(tmp: Path, rows: int, words: int, repeats: int) -> None:
    from rewardkit import compose, get_reward

    rng = random.Random(0)
    completions = [text(rng, words) for _ in range(rows)]
    answers = [text(rng, words) for _ in range(rows)]
    spec = {"rewards": {"r1": {"use": "rouge1"}}}
    (tmp / "rouge.json").write_text(json.dumps(spec))
    local = compose(spec)
    expected = local(completions=completions, answer=answers)  # also warms the scorer up
    print(f"\n(b) ROUGE-1, {rows} rows of {words} words each (a CPU-bound spec); best of {repeats}")
    results: dict[str, tuple[float, list]] = {}
    results["in process"] = (best(lambda: local(completions=completions, answer=answers), repeats), [])
    with ExitStack() as stack:
        a, _ = stack.enter_context(server(tmp / "rouge.json", log=tmp / "a.log"))
        b, _ = stack.enter_context(server(tmp / "rouge.json", log=tmp / "b.log"))
        w, _ = stack.enter_context(server(tmp / "rouge.json", "--workers", "2", log=tmp / "w.log"))
        for name, urls in (("1 server", [a]), ("2 servers", [a, b]), ("1 server, --workers 2", [w])):
            remote = get_reward("remote", url=urls, timeout=600, max_rows=rows)
            assert remote(completions=completions, answer=answers) == expected  # bit for bit, and warmed up
            results[name] = (best(lambda r=remote: r(completions=completions, answer=answers), repeats), [])
    base = results["in process"][0]
    for name, (seconds, _) in results.items():
        print(f"    {name:<22} {seconds:7.3f} s  {rows / seconds:8.0f} rows/s  {base / seconds:5.2f}x in process")


# --- (c) memory ------------------------------------------------------------------------------------------------------
TRAINER = textwrap.dedent(
    """
    import json, sys, torch, transformers
    from rewardkit import get_reward
    reward = get_reward(*json.loads(sys.argv[1])[:1], **json.loads(sys.argv[1])[1])
    rows = json.loads(sys.argv[2])
    scores = reward(completions=rows["completions"], answer=rows["answer"])
    print("ready", sum(s or 0 for s in scores), flush=True)
    sys.stdin.readline()
    """
)


def rss(pids: list[int]) -> float:
    import psutil

    return sum(psutil.Process(p).memory_info().rss for p in pids) / 2**20


def trainers(reward: list, rows: dict, count: int = 2) -> list[subprocess.Popen]:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", TRAINER, json.dumps(reward), json.dumps(rows)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for _ in range(count)
    ]
    for p in procs:
        line = p.stdout.readline() if p.stdout else ""
        if not line.startswith("ready"):
            raise SystemExit(f"a trainer process failed (exit {p.wait()})")
    return procs


def stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.stdin:
            p.stdin.write("\n")
            p.stdin.flush()
        p.wait(60)


def bench_memory(tmp: Path, hidden: int, layers: int) -> None:
    import transformers

    from rewardkit.core.tiny import save_tiny_bert

    transformers.utils.logging.disable_progress_bar()

    model = tmp / "bert"
    save_tiny_bert(model, num_layers=layers, hidden_size=hidden)
    params = sum(p.numel() for p in transformers.AutoModel.from_pretrained(model).parameters())
    bert = {"model_type": str(model), "num_layers": layers}
    rng = random.Random(1)
    rows = {"completions": [text(rng, 30) for _ in range(32)], "answer": [text(rng, 30) for _ in range(32)]}
    print(f"\n(c) two training-like processes, bertscore on a random BERT (hidden {hidden}, {layers} layers, ")
    print(f"    {params / 1e6:.0f}M parameters = {params * 4 / 2**20:.0f} MiB fp32); RSS summed over every process")
    procs = trainers(["bertscore", bert], rows)
    local = rss([p.pid for p in procs])
    stop(procs)
    (tmp / "bert.json").write_text(json.dumps({"rewards": {"bs": {"use": "bertscore", **bert}}}))
    with server(tmp / "bert.json", log=tmp / "bert.log") as (url, pid):
        procs = trainers(["remote", {"url": [url], "timeout": 600}], rows)
        served_trainers = rss([p.pid for p in procs])
        served_total = served_trainers + rss([pid])
        stop(procs)
    print(f"    each loads the model:        {local:7.0f} MiB (2 processes)")
    print(
        f"    one rewardkit serve holds it: {served_total:7.0f} MiB (2 processes {served_trainers:.0f} + server "
        f"{served_total - served_trainers:.0f}); {local / served_total:.2f}x less"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, one repeat")
    parser.add_argument("--only", choices=["async", "throughput", "memory"], help="one of the three")
    args = parser.parse_args()
    repeats = 1 if args.quick else 3
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        if args.only in (None, "async"):
            bench_async(repeats)
        if args.only in (None, "throughput"):
            bench_throughput(tmp, rows=64 if args.quick else 256, words=200 if args.quick else 400, repeats=repeats)
        if args.only in (None, "memory"):
            bench_memory(tmp, hidden=256 if args.quick else 768, layers=4 if args.quick else 12)


if __name__ == "__main__":
    main()
