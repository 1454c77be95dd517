"""A real CPU GRPO run whose bertscore runs behind `rewardkit serve` logs the rewards of the same run scored locally."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from rewardkit import compose, get_reward
from tests.conftest import Served, rewardkit_serve

pytestmark = pytest.mark.slow

PROMPTS = [{"prompt": f"{a}+{b}=", "answer": f"{a} plus {b} is {a + b}"} for a, b in [(1, 2), (3, 4), (2, 2), (5, 1)]]


def run_grpo(tiny_lm_dir, tmp_path, trainer_defaults, funcs) -> list[dict]:
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    args = GRPOConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=8,
        **{**trainer_defaults, "max_steps": 2, "learning_rate": 1e-3},
    )
    trainer = GRPOTrainer(
        model=str(tiny_lm_dir), reward_funcs=funcs, args=args, train_dataset=Dataset.from_list(PROMPTS)
    )
    trainer.train()
    return [h for h in trainer.state.log_history if "reward" in h]


def bertscore_spec(tiny_bert_dir) -> dict:
    return {"rewards": {"bs": {"use": "bertscore", "model_type": str(tiny_bert_dir), "num_layers": 2}}}


@pytest.fixture(scope="module")
def served(tiny_bert_dir, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """bertscore behind `rewardkit serve`, its micro-batcher set by flags: requests wait up to 1.5 s for others
    (the default is 10 ms) and merge into calls of at most 3 rows (the default is 256). A GRPO step sends 4 rows:
    alone, at once."""
    folder = tmp_path_factory.mktemp("grpo_remote")
    (folder / "spec.json").write_text(json.dumps(bertscore_spec(tiny_bert_dir)))
    flags = ("--batch-wait-ms", "1500", "--max-batch-rows", "3")
    with rewardkit_serve(folder / "spec.json", *flags, log=folder / "server.log") as server:
        yield server


def test_served_bertscore_logs_the_local_rewards(served, tiny_lm_dir, tiny_bert_dir, tmp_path, trainer_defaults):
    spec = bertscore_spec(tiny_bert_dir)
    local = run_grpo(tiny_lm_dir, tmp_path / "local", trainer_defaults, compose(spec).to_trl()[0])
    remote = get_reward("remote", url=[served.url], name="bs", timeout=120)
    logged = run_grpo(tiny_lm_dir, tmp_path / "served", trainer_defaults, [remote])
    keys = ("reward", "reward_std", "rewards/bs/mean", "rewards/bs/std")
    assert len(local) == len(logged) == 2
    assert [[h[k] for k in keys] for h in logged] == [[h[k] for k in keys] for h in local]
    assert any(h["reward_std"] > 0 for h in local)  # the completions differ: a real signal, not a constant


def batched(server: Served) -> dict:
    body = httpx.get(f"{server.url}/health", timeout=60).json()
    return {**body["batched"]["bs"], **body["batching"]}


def post_together(server: Served, rows: list[list[str]], gap: float) -> None:
    """Each list of rows as its own /score request, `gap` seconds apart, all in flight at once."""

    def one(i: int) -> int:
        time.sleep(i * gap)
        texts = rows[i]
        body = {"completions": texts, "columns": {"answer": [f"gold {t}" for t in texts]}}
        return httpx.post(f"{server.url}/score", json=body, timeout=120).status_code

    with ThreadPoolExecutor(len(rows)) as pool:
        assert list(pool.map(one, range(len(rows)))) == [200] * len(rows)


def test_the_batching_flags_take_effect(served):
    before = batched(served)
    assert (before["wait_ms"], before["max_rows"]) == (1500.0, 3)
    post_together(served, [["one row"], ["another row"]], gap=0.3)  # 0.3 s apart: merged within the 1.5 s wait
    merged = batched(served)
    assert merged["calls"] - before["calls"] == 1 and merged["merged_requests"] - before["merged_requests"] == 2
    post_together(served, [["a", "b"], ["c", "d"]], gap=0.3)  # 2 + 2 rows > --max-batch-rows 3: never merged
    apart = batched(served)
    assert apart["calls"] - merged["calls"] == 2 and apart["merged_requests"] == merged["merged_requests"]
