"""Hook specifications. Each hook receives a `Register` (see `plugins.Registrar`).

`register(name, factory, *, params=None, summary=None)` registers a name of the hook's own kind; the typed
registrars `register.reward(...)`, `.view`, `.tokenizer`, `.callback`, `.generator` and `.preset(name, spec)`
name the kind themselves (`registry.KIND_TABLE` lists the kinds, their base types and result checks).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Protocol, Union

from pluggy import HookimplMarker, HookspecMarker

hookspec = HookspecMarker("rewardkit")
hookimpl = HookimplMarker("rewardkit")

# A class, a function, or a lazy 'module:attr' string imported on first use.
Factory = Union[type, Callable[..., Any], str]


class Register(Protocol):
    """What each hook is given: registers one name of the hook's kind, or of the kind a typed method names."""

    def __call__(self, name: str, factory: object, *, params: type | None = None, summary: str | None = None) -> None:
        """`factory(**params)` builds the object; `params` is a pydantic model (default: `factory.Params`)."""

    def reward(self, name: str, factory: Factory, *, params: type | None = None, summary: str | None = None) -> None:
        """A Reward subclass, a plain TRL-style reward function, or 'module:attr'."""

    def view(self, name: str, factory: Factory, *, params: type | None = None, summary: str | None = None) -> None:
        """A View subclass (or any factory of `callable(text) -> str | None`)."""

    def tokenizer(self, name: str, factory: Factory, *, params: type | None = None, summary: str | None = None) -> None:
        """A Tokenizer subclass (or any factory of an object with `.tokenize(text)`)."""

    def callback(self, name: str, factory: Factory, *, params: type | None = None, summary: str | None = None) -> None:
        """A trainer-callback factory."""

    def generator(self, name: str, factory: Factory, *, params: type | None = None, summary: str | None = None) -> None:
        """A dataset-generator factory: factory(**params) -> callable(n, seed) -> list[dict]."""

    def preset(self, name: str, spec: dict | str | Path, *, summary: str | None = None) -> None:
        """A compose spec: a dict, or the path of a YAML/TOML/JSON file."""


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
