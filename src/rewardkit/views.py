"""Views: the part of a text a reward scores (the boxed answer, the last number, the text after a marker...).

A view is a picklable callable `view(text) -> str | None`; None means the part is absent.
Specs: a name ("boxed"), a dict ({"view": "after", "marker": "Answer:"}), or a list applied left to right.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from . import safe_regex
from .errors import ConfigError

NUMBER_PATTERN = r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?:/\d+)?"


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Full:
    """The whole text."""

    class Params(_Params):
        pass

    def __call__(self, text: str) -> str | None:
        return text


def last_boxed(text: str) -> str | None:
    """Content of the last balanced \\boxed{...} (nested braces allowed), or None."""
    # One pass pairing braces keeps hostile input ("\\boxed{" * 50_000) linear.
    close_of: dict[int, int] = {}
    stack: list[int] = []
    for i, ch in enumerate(text):
        if ch == "{":
            stack.append(i)
        elif ch == "}" and stack:
            close_of[stack.pop()] = i
    start = text.rfind("\\boxed")
    while start != -1:
        i = start + len("\\boxed")
        while i < len(text) and text[i] == " ":
            i += 1
        if i in close_of and text[i] == "{":
            return text[i + 1:close_of[i]]
        start = text.rfind("\\boxed", 0, start)
    return None


class Boxed:
    """Content of the last \\boxed{...}."""

    class Params(_Params):
        pass

    def __call__(self, text: str) -> str | None:
        return last_boxed(text)


class LastNumber:
    """The last number in the text (1,234 / -3.5 / 7/8 / .5)."""

    class Params(_Params):
        pass

    def __call__(self, text: str) -> str | None:
        from .numbers import last_number_text

        return last_number_text(text)


class Regex:
    """A group of the first (or last) match of a pattern."""

    class Params(_Params):
        pattern: str
        group: int | str = 1
        occurrence: Literal["first", "last"] = "first"
        flags: list[str] = Field(default_factory=list)
        timeout: float = 1.0

    def __init__(self, **params: Any) -> None:
        self.params = self.Params(**params)
        self._compiled = safe_regex.compile_pattern(self.params.pattern, self.params.flags, "view 'regex'")
        if isinstance(self.params.group, int) and self.params.group > self._compiled.groups:
            raise ConfigError(f"View 'regex': group {self.params.group} does not exist in "
                              f"{self.params.pattern!r} ({self._compiled.groups} groups). Hint: use group 0 "
                              "for the whole match or add a capturing group.")

    def __getstate__(self) -> dict:
        return {"params": self.params}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state["params"].model_dump())

    def __call__(self, text: str) -> str | None:
        p = self.params
        method = "search" if p.occurrence == "first" else "last"
        match = safe_regex.run(self._compiled, method, text, p.timeout, "view 'regex'")
        if match is None:
            return None
        try:
            return match.group(p.group)
        except IndexError:
            return None


class _MarkerParams(_Params):
    marker: str = Field(min_length=1)
    occurrence: Literal["first", "last"] = "first"
    strip: bool = True


class After:
    """The text after a marker (first or last occurrence), stripped."""

    Params = _MarkerParams

    def __init__(self, **params: Any) -> None:
        self.params = self.Params(**params)

    def _split(self, text: str) -> tuple[str, str] | None:
        p = self.params
        i = text.find(p.marker) if p.occurrence == "first" else text.rfind(p.marker)
        return None if i < 0 else (text[:i], text[i + len(p.marker):])

    def _pick(self, before: str, after: str) -> str:
        return after

    def __call__(self, text: str) -> str | None:
        parts = self._split(text)
        if parts is None:
            return None
        out = self._pick(*parts)
        return out.strip() if self.params.strip else out


class Before(After):
    """The text before a marker (first or last occurrence), stripped."""

    def _pick(self, before: str, after: str) -> str:
        return before


class AfterThink(After):
    """The text after the last </think> (the answer of a reasoning model)."""

    class Params(_MarkerParams):
        marker: str = "</think>"
        occurrence: Literal["first", "last"] = "last"
        strip: bool = True


class Chain:
    """Several views applied left to right; None as soon as one finds nothing."""

    def __init__(self, views: list) -> None:
        self.views = views

    def __call__(self, text: str) -> str | None:
        for view in self.views:
            if text is None:
                return None
            text = view(text)
        return text


def resolve_view(spec: Any, field: str = "view") -> Any:
    """Build a view from a spec (name, dict with 'view', or list); None means the whole text."""
    from .plugins import get_registry

    if spec is None:
        return None
    if isinstance(spec, list):
        return Chain([resolve_view(s, field) for s in spec])
    if isinstance(spec, str):
        name, params = spec, {}
    elif isinstance(spec, dict):
        params = dict(spec)
        name = params.pop("view", None)
        if name is None:
            raise ConfigError(f"{field}: a view given as a mapping needs a 'view' key, got {spec!r}. "
                              "Hint: {view: after, marker: 'Answer:'}.")
    else:
        raise ConfigError(f"{field}: expected a view name, a mapping or a list, got {spec!r}.")
    entry = get_registry().get("views", name)
    factory = entry.load()
    try:
        return factory(**params)
    except ConfigError:
        raise
    except Exception as exc:  # pydantic ValidationError or TypeError from a plugin's factory
        raise ConfigError(f"{field}: bad parameters for view {name!r}: {exc}") from exc
