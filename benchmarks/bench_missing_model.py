"""How long until a spec naming a missing model fails: rewardkit's check vs bert-score's own loader.

`rewardkit score` / `select` check every model a spec names (`rewardkit.models.compose_checked`) before scoring;
before that check, `select --spec official` on a machine without bert-base-multilingual-cased failed inside
bert-score's loader. Both are timed here, in this process, with the hub as this machine sees it (unreachable,
or HF_HUB_OFFLINE=1). Run: python benchmarks/bench_missing_model.py [--model ID] [--skip-loader]
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="bert-base-multilingual-cased", help="a hub id that is not cached")
    parser.add_argument("--skip-loader", action="store_true", help="do not time bert-score's loader (slow)")
    args = parser.parse_args()
    from rewardkit.core.errors import ConfigError
    from rewardkit.models import compose_checked

    spec = {"b": {"use": "bertscore", "model_type": args.model, "num_layers": 9}}
    start = time.perf_counter()
    try:
        compose_checked(spec)
        print("rewardkit check: the model resolves; nothing to time")
        return
    except ConfigError as exc:
        ours = time.perf_counter() - start
        print(f"rewardkit check: {ours:.2f} s -> {str(exc)[:140]}...")
    if args.skip_loader:
        return
    from rewardkit.api import compose

    reward = compose(spec)  # builds without loading; the first call loads the model
    start = time.perf_counter()
    try:
        reward(completions=["a"], answer=["a"])
    except Exception as exc:  # noqa: BLE001 - whatever the loader raises is what the user saw
        theirs = time.perf_counter() - start
        print(f"bert-score loader: {theirs:.2f} s -> {type(exc).__name__}")
        print(f"ratio: the check fails {theirs / ours:.0f}x sooner")


if __name__ == "__main__":
    main()
