"""The built-in dataset generators (`rewardkit.train.generators`)."""

from __future__ import annotations

from rewardkit.core.hookspecs import Register, hookimpl
from rewardkit.train.generators import Arithmetic


@hookimpl
def register_generators(register: Register) -> None:
    register.generator(Arithmetic.name, Arithmetic)
