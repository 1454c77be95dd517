"""Reading a score out of a judge's reply: a number in a range, one of named choices, a JSON field, or the expected
score over the top log-probabilities of the score token (G-Eval). A reply that cannot be read gives None."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from rewardkit.core.errors import ConfigError

# A plain decimal number, ASCII digits only; "1-5" reads as 1 and 5 (a '-' right after a digit is not a sign).
# A number read whole, with thousands commas and an exponent: "1,000" is 1000 (out of range), not 0, "1e1" is 10.
_NUMBER = re.compile(
    r"(?<![0-9.])(?!(?<=[0-9],)[0-9]{3}(?![0-9]))-?[0-9]+(?:,[0-9]{3})*(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?(?![0-9])"
)
# A number right after "/" or "out of" is the scale, not the score ("8/10", "7 out of 10").
_DENOMINATOR = re.compile(r"(?:/|\bout of)\s*$")
_FENCE = re.compile(r"^\s*```(?:json)?\s*|\s*```\s*$")


@dataclass(frozen=True)
class ReplyParser:
    """How a reply becomes a score in [0, 1] (score range) or a choice's value.

    Args:
        score_range (`tuple[float, float]`, *optional*): (min, max): the last number of the reply within it,
            scaled to [0, 1].
        choices (`dict[str, float]`, *optional*): label -> score; the last label standing alone in the reply
            (case-sensitive) wins.
        json_field (`str`, *optional*): read the reply as a JSON object and take this field (a number for a
            score range, a label for choices).
        logprobs (`bool`, defaults to False): take the expected score over the top log-probabilities of the
            first generated token that is a label (a choice, or a single-digit score), instead of the reply text.

    >>> ReplyParser(score_range=(0, 10)).parse("Step 1 is fine. Score: 8/10")
    0.8
    >>> ReplyParser(choices={"A": 1.0, "B": 0.0}).parse("A is longer, but B is right. Verdict: B")
    0.0
    >>> ReplyParser(score_range=(1, 5), logprobs=True).expected([[("4", math.log(0.75)), ("2", math.log(0.25))]])
    0.625
    """

    score_range: tuple[float, float] | None = None
    choices: dict[str, float] | None = None
    json_field: str | None = None
    logprobs: bool = False

    def __post_init__(self) -> None:
        if (self.score_range is None) == (self.choices is None):
            raise ConfigError("judge: give exactly one of score or choices.", hint="score: {min: 0, max: 10}.")
        if self.score_range is not None and not self.score_range[0] < self.score_range[1]:
            raise ConfigError(
                f"judge: score: min {self.score_range[0]} must be below max {self.score_range[1]}.",
                hint="score: {min: 0, max: 10}.",
            )
        if self.choices is not None and not self.choices:
            raise ConfigError("judge: choices: is empty.", hint='choices: {"A": 1.0, "B": 0.0}.')
        if self.choices is not None and any(not k.strip() or k != k.strip() for k in self.choices):
            raise ConfigError(
                "judge: choices: labels must be non-empty without surrounding spaces.", hint='choices: {"A": 1.0}.'
            )
        if self.logprobs and self.json_field is not None:
            raise ConfigError(
                "judge: logprobs and json_field cannot be combined (the score token inside JSON is not located).",
                hint="drop json_field, or set logprobs: false.",
            )
        if self.logprobs and self.score_range is not None:
            low, high = self.score_range
            if low != int(low) or high != int(high) or low < 0 or high > 9:
                raise ConfigError(
                    f"judge: logprobs with score {{min: {low}, max: {high}}}: the score must be one token, so "
                    "whole numbers within 0-9.",
                    hint="score: {min: 1, max: 5} (G-Eval's range), or choices for other labels.",
                )

    def describe(self) -> dict[str, Any]:
        """What the cache key holds of the parser."""
        return {
            "score": list(self.score_range) if self.score_range else None,
            "choices": self.choices,
            "json_field": self.json_field,
            "logprobs": self.logprobs,
        }

    def labels(self) -> dict[str, float]:
        """label -> score in the reward's scale, for log-probability mode."""
        if self.choices is not None:
            return dict(self.choices)
        assert self.score_range is not None
        low, high = int(self.score_range[0]), int(self.score_range[1])
        return {str(v): self._scaled(float(v)) for v in range(low, high + 1)}

    def _scaled(self, value: float) -> float:
        assert self.score_range is not None
        low, high = self.score_range
        return (value - low) / (high - low)

    def parse(self, text: str) -> float | None:
        """The score of a reply's text, or None when it holds none."""
        if self.json_field is not None:
            return self._from_json(text)
        if self.choices is not None:
            return self._choice(text)
        assert self.score_range is not None
        for match in reversed(list(_NUMBER.finditer(text))):
            if _DENOMINATOR.search(text[: match.start()]):
                continue
            value = float(match.group(0).replace(",", ""))
            if self.score_range[0] <= value <= self.score_range[1]:
                return self._scaled(value)
        return None

    def _choice(self, text: str) -> float | None:
        assert self.choices is not None
        best: tuple[int, float] | None = None
        for label, value in self.choices.items():
            for m in re.finditer(rf"(?<!\w){re.escape(label)}(?!\w)", text):
                if best is None or m.start() > best[0]:
                    best = (m.start(), value)
        return None if best is None else best[1]

    def _from_json(self, text: str) -> float | None:
        body = _FENCE.sub("", text)
        try:
            data = json.loads(body, parse_constant=_no_constant)
        except ValueError:
            start, end = body.find("{"), body.rfind("}")
            if start < 0 or end <= start:
                return None
            try:
                data = json.loads(body[start : end + 1], parse_constant=_no_constant)
            except ValueError:
                return None
        if not isinstance(data, dict) or self.json_field not in data:
            return None
        value = data[self.json_field]
        if self.choices is not None:
            return self.choices.get(value) if isinstance(value, str) else None
        assert self.score_range is not None
        if isinstance(value, str):
            try:
                value = float(value.strip())
            except ValueError:
                return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return None
        return self._scaled(float(value)) if self.score_range[0] <= value <= self.score_range[1] else None

    def expected(self, positions: list[list[tuple[str, float]]]) -> float | None:
        """G-Eval: at the first generated token that is a label, sum p(label) * score over the labels among its top
        alternatives (the sampled token included), divided by the probability mass of those labels.

        `positions` holds, per generated token, the sampled token first, then the top alternatives, as
        (token text, log-probability). None when no generated token is a label.
        """
        labels = self.labels()
        for alternatives in positions:
            if not alternatives or alternatives[0][0].strip() not in labels:
                continue
            first: dict[str, float] = {}  # most servers list the sampled token again among the alternatives
            for token, logprob in alternatives:
                first.setdefault(token, logprob)
            mass: dict[str, float] = {}
            for token, logprob in first.items():
                label = token.strip()
                if label in labels and math.isfinite(logprob):
                    mass[label] = mass.get(label, 0.0) + math.exp(logprob)
            total = math.fsum(mass.values())
            if total <= 0:
                return None
            return math.fsum(p * labels[label] for label, p in mass.items()) / total
        return None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")
