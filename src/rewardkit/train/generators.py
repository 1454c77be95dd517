"""Built-in dataset generators (`dataset: {generator: arithmetic, n: 500, seed: 0, params: {...}}`)."""

from __future__ import annotations

import random
from typing import Any, Callable

from pydantic import Field, model_validator

from rewardkit.core.errors import ConfigError
from rewardkit.core.validation import Configured
from rewardkit.core.validation import Params as BaseParams

_OPS: dict[str, Callable[[int, int], int]] = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}


class Arithmetic(Configured):
    """`n` distinct arithmetic problems `{"id", "prompt", "completion", "answer"}`.

    >>> Arithmetic(a_range=[1, 1], b_range=[2, 2])(1, seed=0)[0]["prompt"]
    '1+2='
    """

    class Params(BaseParams):
        a_range: tuple[int, int] = Field((0, 99), strict=False, description="Inclusive range of the first operand.")
        b_range: tuple[int, int] = Field((0, 99), strict=False, description="Inclusive range of the second operand.")
        ops: list[str] = Field(default_factory=lambda: ["+"], description="Operators drawn from: + - *.")
        template: str = Field("{a}{op}{b}=", description="Prompt text; {a}, {op}, {b} are replaced.")
        completion: str = Field("{answer}", description="Completion text (SFT); {answer} is replaced.")

        @model_validator(mode="after")
        def _check(self) -> "Arithmetic.Params":
            for name in ("a_range", "b_range"):
                low, high = getattr(self, name)
                if low > high:
                    raise ValueError(f"{name} [{low}, {high}] is empty: the first bound must be <= the second")
            bad = [op for op in self.ops if op not in _OPS]
            if bad or not self.ops:
                raise ValueError(f"ops {self.ops} must be a non-empty list of {sorted(_OPS)}")
            return self

    name = "arithmetic"

    @classmethod
    def owner(cls) -> str:
        return f"dataset.params of generator {cls.name!r}"

    def __call__(self, n: int, seed: int = 0) -> list[dict]:
        p = self.params
        (a0, a1), (b0, b1) = p.a_range, p.b_range
        space = (a1 - a0 + 1) * (b1 - b0 + 1) * len(p.ops)
        if n > space:
            raise ConfigError(
                f"dataset.n={n} but the ranges hold only {space} distinct problems.",
                hint="lower n or widen a_range / b_range.",
            )
        rng = random.Random(seed)
        seen: set[tuple] = set()
        rows: list[dict] = []
        while len(rows) < n:
            a, b, op = rng.randint(a0, a1), rng.randint(b0, b1), rng.choice(p.ops)
            if (a, op, b) in seen:
                continue
            seen.add((a, op, b))
            answer = str(_OPS[op](a, b))
            rows.append(
                {
                    "id": str(len(rows)),
                    "prompt": _fill(p.template, {"a": a, "op": op, "b": b}),
                    "completion": _fill(p.completion, {"answer": answer}),
                    "answer": answer,
                }
            )
        return rows


def _fill(template: str, values: dict[str, Any]) -> str:
    # Plain replacement, not str.format: a config must not reach attributes through "{a.__class__}".
    for key, value in values.items():
        template = template.replace("{" + key + "}", str(value))
    return template
