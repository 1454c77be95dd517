"""Reference corpus scorer with the official rules of the 2025 Korean grammar-QA competition.

Rules implemented (see `official_scores`):

- Every text is split with the official rule (`split_answer_reason`).
- EM (`exact_match`, official mode) on the answer parts, averaged over ALL items.
- ROUGE-1 (Mecab morphemes after the official preprocessing, clipped unigram overlap, F = 2PR/(P+R)),
  BERTScore and BLEURT on the reasons, each averaged ONLY over items where both the gold and the
  prediction reason are non-empty. A non-empty reason with no scorable token gets ROUGE-1 F = 0 and counts.
- Final = (EM + mean of the reason metrics) / 2. The official mean has three reason metrics
  (ROUGE-1, BERTScore, BLEURT); here it is the mean of those you supply (ROUGE-1 always; pass `bertscore=`
  (`BERTScoreF1`) and `bleurt=` (`BLEURTScores`) for the others). `reason_metrics` in the result lists what
  went in; the command line always says on stderr which were used and which were left out.
- No item with both reasons: the reason metrics are None and contribute 0 to Final (the official rule
  leaves this case undefined; a submission without reasons earns no descriptive credit).

Files are competition JSON (a list of items) or JSON Lines: ``{"id", "input": {...}, "output": {"answer"}}``.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, Union, cast

from rewardkit import read_text
from rewardkit_korean.exact_match import exact_match
from rewardkit_korean.split import split_answer_reason
from rewardkit_korean.tokenizer import KoreanMorphemeTokenizer

PairScorer = Callable[[list[str], list[str]], Sequence[float]]  # (candidates, references) -> one score each
Items = Union[str, Path, Sequence[Mapping[str, Any]]]

_TOKENIZER = KoreanMorphemeTokenizer()


def rouge1_f(prediction: str, reference: str) -> float:
    """Official per-item ROUGE-1 F between two reasons (clipped unigram overlap of Mecab morphemes).

    >>> round(rouge1_f("'돼요'로 적는다.", "'돼요'로 쓴다."), 4)  # 돼요/로/적/는다 vs 돼요/로/쓴다: 2 shared
    0.5714
    """
    pred = _TOKENIZER.tokenize(prediction)
    ref = _TOKENIZER.tokenize(reference)
    if not pred or not ref:
        return 0.0
    overlap = sum((Counter(pred) & Counter(ref)).values())
    if overlap == 0:
        return 0.0
    precision, recall = overlap / len(pred), overlap / len(ref)
    return 2 * precision * recall / (precision + recall)


def load_items(source: Items, role: str = "items") -> list[Mapping[str, Any]]:
    """Read competition items from a JSON/JSONL file, or check an in-memory list; `role` names them in errors."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"{role}: no file at {path}. Hint: pass a competition .json or .jsonl file.")
        text = read_text(path)  # bounded (REWARDKIT_MAX_INPUT_BYTES) and strict UTF-8: a DataError names the file
        try:
            items: object
            if path.suffix == ".jsonl":
                items = [json.loads(line) for line in text.splitlines() if line.strip()]
            else:
                items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"{role}: {path} is not valid JSON ({exc}). "
                "Hint: .json files hold one list of items, .jsonl files one item per line."
            ) from exc
        where = str(path)
    else:
        items, where = source, role
    if not isinstance(items, list):
        raise ValueError(f"{role}: {where} must hold a list of items, got {type(items).__name__}.")
    for index, item in enumerate(items):
        if not isinstance(item, Mapping) or "id" not in item:
            raise ValueError(
                f"{role}: item {index} of {where} has no 'id'. "
                'Hint: items look like {"id": ..., "input": {...}, "output": {"answer": "..."}}.'
            )
        output = item.get("output")
        if not isinstance(output, Mapping) or not isinstance(output.get("answer"), str):
            raise ValueError(
                f"{role}: item id={item['id']!r} of {where} has no string 'output.answer'. "
                'Hint: put the text in {"output": {"answer": "\\"…\\"가 옳다. 이유"}}.'
            )
    return items


def _by_id(items: list[Mapping[str, Any]], role: str) -> dict[str, str]:
    # Ids are matched as strings so 7 and "7" agree; two items that collide this way are duplicates.
    out: dict[str, str] = {}
    for item in items:
        key = str(item["id"])
        if key in out:
            raise ValueError(f"{role}: duplicate id {key!r}. Hint: every item needs a unique id.")
        out[key] = item["output"]["answer"]
    return out


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _run_pair_scorer(name: str, scorer: PairScorer, candidates: list[str], references: list[str]) -> list[float]:
    scores = [float(s) for s in scorer(candidates, references)]
    if len(scores) != len(candidates):
        raise ValueError(
            f"{name} returned {len(scores)} scores for {len(candidates)} pairs. "
            "Hint: the callable must return one score per (candidate, reference) pair."
        )
    return scores


def official_scores(
    predictions: Items, labels: Items, bertscore: PairScorer | None = None, bleurt: PairScorer | None = None
) -> dict[str, Any]:
    """Score a submission against the gold with the official corpus rules.

    Args:
        predictions: the submission (path to .json/.jsonl, or a list of items).
        labels: the gold items, same format; every id must appear exactly once in both.
        bertscore: optional `(candidates, references) -> F1 list`, e.g. `BERTScoreF1()`.
        bleurt: optional callable with the same signature returning BLEURT scores.

    Returns a dict with exact_match, rouge1, bertscore, bleurt, descriptive_avg, final, reason_metrics,
    n_items, n_reason_items and per_item (id, exact_match, rouge1, bertscore, bleurt; None where skipped).
    """
    pred = _by_id(load_items(predictions, "predictions"), "predictions")
    gold = _by_id(load_items(labels, "labels"), "labels")
    missing, extra = sorted(gold.keys() - pred.keys()), sorted(pred.keys() - gold.keys())
    if missing or extra:
        raise ValueError(
            f"predictions and labels have different ids: missing from predictions {missing}, "
            f"extra in predictions {extra}. Hint: submit exactly one item per gold id."
        )
    if not gold:
        raise ValueError("labels: no items. Hint: pass the gold file of the split you predicted.")
    per_item: list[dict[str, Any]] = []
    pairs: list[tuple[int, str, str]] = []  # (per_item index, prediction reason, gold reason)
    for key, gold_text in gold.items():
        g_answer, g_reason = split_answer_reason(gold_text)
        p_answer, p_reason = split_answer_reason(pred[key])
        row: dict[str, Any] = {
            "id": key,
            "exact_match": exact_match(p_answer, g_answer),
            "rouge1": None,
            "bertscore": None,
            "bleurt": None,
        }
        if g_reason and p_reason:
            row["rouge1"] = rouge1_f(p_reason, g_reason)
            pairs.append((len(per_item), p_reason, g_reason))
        per_item.append(row)
    reason_metrics = ["rouge1"]
    for name, scorer in (("bertscore", bertscore), ("bleurt", bleurt)):
        if scorer is None:
            continue
        reason_metrics.append(name)
        if pairs:
            scores = _run_pair_scorer(name, scorer, [p for _, p, _ in pairs], [g for _, _, g in pairs])
            for (index, _, _), score in zip(pairs, scores):
                per_item[index][name] = score
    result: dict[str, Any] = {"exact_match": _mean([r["exact_match"] for r in per_item])}
    for name in ("rouge1", "bertscore", "bleurt"):
        result[name] = _mean([r[name] for r in per_item if r[name] is not None])
    available = [result[name] for name in reason_metrics if result[name] is not None]
    result["descriptive_avg"] = sum(available) / len(reason_metrics) if available else 0.0
    result["final"] = (result["exact_match"] + result["descriptive_avg"]) / 2
    result.update(reason_metrics=reason_metrics, n_items=len(per_item), n_reason_items=len(pairs), per_item=per_item)
    return result


# bert-score sums float32 cosines: identical texts give F1 = 1.0000000335867443 and the like. Within this distance of
# a bound the excess is rounding, not signal; anything farther out is left as computed.
FLOAT_ERROR = 1e-5


def unit_score(value: float) -> float:
    """A score that should lie in [0, 1], with float error past a bound clamped to it.

    >>> unit_score(1.0000000335867443), unit_score(-2e-8), unit_score(0.73)
    (1.0, 0.0, 0.73)
    """
    if 1.0 < value <= 1.0 + FLOAT_ERROR:
        return 1.0
    if -FLOAT_ERROR <= value < 0.0:
        return 0.0
    return value


class BERTScoreF1:
    """BERTScore F1 as the competition computes it (idf off, no baseline rescale); the model loads on first call.

    Args:
        model_type: a Hugging Face model name or a local directory.
        num_layers: the layer whose embeddings are compared (9 for bert-base-multilingual-cased).
        batch_size: pairs per forward pass.
    """

    def __init__(
        self,
        model_type: str = "bert-base-multilingual-cased",
        num_layers: int = 9,
        batch_size: int = 32,
        device: str | None = None,
    ) -> None:
        self.model_type, self.num_layers, self.batch_size, self.device = model_type, num_layers, batch_size, device
        self._scorer: Any = None

    def __call__(self, candidates: list[str], references: list[str]) -> list[float]:
        if self._scorer is None:
            from bert_score import BERTScorer  # lazy: torch/transformers are heavy

            self._scorer = BERTScorer(
                model_type=self.model_type,
                num_layers=self.num_layers,
                idf=False,
                rescale_with_baseline=False,
                batch_size=self.batch_size,
                device=self.device,
            )
        _, _, f1 = self._scorer.score(candidates, references)
        return [unit_score(float(x)) for x in f1]

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_scorer": None}


class _PairScorer(Protocol):
    """What BLEURTScores needs of the `bleurt` reward: scores of (reference, candidate) pairs."""

    def pair_scores(self, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], float]: ...


class BLEURTScores:
    """BLEURT of each (candidate, reference) pair through rewardkit's `bleurt` reward; loads on first call.

    Args:
        model: a bleurt-pytorch checkpoint, hub id (the competition's is lucadiliello/BLEURT-20) or local folder.
        batch_size: pairs per forward pass.
    """

    def __init__(self, model: str = "lucadiliello/BLEURT-20", batch_size: int = 32, device: str | None = None) -> None:
        from rewardkit import get_reward

        # get_reward is typed as the Reward base; the registered "bleurt" reward also scores pairs directly
        self.reward = cast(_PairScorer, get_reward("bleurt", model=model, batch_size=batch_size, device=device))

    def __call__(self, candidates: list[str], references: list[str]) -> list[float]:
        pairs = list(zip(references, candidates))
        scores = self.reward.pair_scores(pairs)
        return [scores[pair] for pair in pairs]


OFFICIAL_REASON_METRICS = ("rouge1", "bertscore", "bleurt")


def reason_metrics_note(used: Sequence[str]) -> str:
    """One line saying which reason metrics went into Final and which were left out (and how to add them).

    >>> reason_metrics_note(["rouge1"])
    'reason metrics used: rouge1; left out: bertscore (--bertscore-model), bleurt (--bleurt-model): final = (EM + mean of 1 reason metric) / 2, NOT the official score (n = 3)'
    """
    flags = {"bertscore": "--bertscore-model", "bleurt": "--bleurt-model"}
    left = [m for m in OFFICIAL_REASON_METRICS if m not in used]
    if not left:
        return f"reason metrics used: {', '.join(used)}; left out: none: final is the official score (n = 3)"
    n = len(used)
    return (
        f"reason metrics used: {', '.join(used)}; left out: {', '.join(f'{m} ({flags[m]})' for m in left)}: "
        f"final = (EM + mean of {n} reason metric{'s' if n > 1 else ''}) / 2, NOT the official score (n = 3)"
    )


@contextlib.contextmanager
def _fd1_to_stderr() -> Iterator[None]:
    """File descriptor 1 is a copy of stderr inside the block (put back after it, however it ends)."""
    import sys

    try:
        sys.stdout.flush()
        kept = os.dup(1)
    except (OSError, ValueError, AttributeError):  # no fd 1 (a closed stdout): nothing to keep clean
        yield
        return
    try:
        os.dup2(2, 1)
    except OSError:  # no fd 2: leave fd 1 as it is
        os.close(kept)
        yield
        return
    try:
        yield
    finally:
        os.dup2(kept, 1)
        os.close(kept)


def main(argv: list[str] | None = None) -> int:
    """Command line: print the official scores of PREDICTIONS against LABELS as JSON (stderr: the metrics used)."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="rewardkit-korean-score", description=main.__doc__)
    parser.add_argument("predictions", help="submission .json/.jsonl")
    parser.add_argument("labels", help="gold .json/.jsonl")
    parser.add_argument("--bertscore-model", help="model name or local dir for BERTScore (layer --bertscore-layer)")
    parser.add_argument("--bertscore-layer", type=int, default=9)
    parser.add_argument(
        "--bleurt-model",
        help="bleurt-pytorch checkpoint for BLEURT: hub id (the official one is "
        "lucadiliello/BLEURT-20) or local dir; needs pip install 'rewardkit[bleurt]'",
    )
    parser.add_argument("--per-item", action="store_true", help="include per-item scores")
    args = parser.parse_args(argv)
    # Loading a model prints transformers' and the hub's progress bars to stderr, which carries this command's
    # one line about the metrics: off (read when transformers is imported, which happens below).
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    bert = BERTScoreF1(args.bertscore_model, args.bertscore_layer) if args.bertscore_model else None
    try:
        # stdout is the JSON alone: what the scorers' libraries print (bert_score's warnings) goes to stderr, and so
        # does what C code (Mecab) or a child process writes to file descriptor 1
        with contextlib.redirect_stdout(sys.stderr), _fd1_to_stderr():
            bleurt = BLEURTScores(args.bleurt_model) if args.bleurt_model else None
            result = official_scores(args.predictions, args.labels, bertscore=bert, bleurt=bleurt)
    except (ValueError, FileNotFoundError) as exc:  # rewardkit's ConfigError is a ValueError too
        print(f"rewardkit-korean-score: error: {exc}", file=sys.stderr)
        return 2
    print(f"rewardkit-korean-score: {reason_metrics_note(result['reason_metrics'])}", file=sys.stderr)
    if not args.per_item:
        result.pop("per_item")
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
