"""Hook specifications. Each hook receives `register(name, factory, *, params=None, summary=None)`."""

from __future__ import annotations

from pluggy import HookimplMarker, HookspecMarker

hookspec = HookspecMarker("rewardkit")
hookimpl = HookimplMarker("rewardkit")


@hookspec
def register_rewards(register):
    """Register reward classes (subclasses of rewardkit.Reward)."""


@hookspec
def register_callbacks(register):
    """Register trainer-callback factories."""


@hookspec
def register_views(register):
    """Register view factories: factory(**params) -> callable(text) -> str | None."""


@hookspec
def register_tokenizers(register):
    """Register tokenizer factories: factory(**params) -> object with .tokenize(text) -> list[str]."""


@hookspec
def register_presets(register):
    """Register compose specs by name: register(name, dict_or_path)."""
