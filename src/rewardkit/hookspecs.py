"""Hook specifications. Each hook receives a `Register`: `register(name, factory, *, params=None, summary=None)`."""

from __future__ import annotations

from typing import Any, Protocol

from pluggy import HookimplMarker, HookspecMarker

hookspec = HookspecMarker("rewardkit")
hookimpl = HookimplMarker("rewardkit")


class Register(Protocol):
    """What each hook is given: registers one name of the hook's kind."""

    def __call__(self, name: str, factory: Any, *, params: Any = None, summary: str | None = None) -> None:
        """`factory(**params)` builds the object; `params` is a pydantic model (default: `factory.Params`)."""


@hookspec
def register_rewards(register: Register) -> None:
    """Register rewards: Reward subclasses, or plain TRL-style functions (wrapped on use)."""


@hookspec
def register_callbacks(register: Register) -> None:
    """Register trainer-callback factories (a class, or a lazy 'module:attr' string with `params=`)."""


@hookspec
def register_views(register: Register) -> None:
    """Register view factories: factory(**params) -> callable(text) -> str | None."""


@hookspec
def register_tokenizers(register: Register) -> None:
    """Register tokenizer factories: factory(**params) -> object with .tokenize(text) -> list[str]."""


@hookspec
def register_presets(register: Register) -> None:
    """Register compose specs by name: register(name, dict_or_path)."""


@hookspec
def register_generators(register: Register) -> None:
    """Register dataset generators: factory(**params) -> callable(n, seed) -> list[dict]."""
