"""Views: the part of a text a reward scores (the boxed answer, the last number, the text after a marker...).

A view is a picklable callable `view(text) -> str | None`; None means the part is absent.
Specs: a name ("boxed"), a dict ({"view": "after", "marker": "Answer:"}), or a list applied left to right;
`rewardkit.get_view(spec)` builds one (the registry's builder is the only place specs become views).
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal, Union

from pydantic import Field

from rewardkit.core.errors import ConfigError
from rewardkit.core.validation import Configured, Params, RegexSeconds
from rewardkit.text import safe_regex
from rewardkit.text.numeric import last_boxed, last_number_text


class _Params(Params):
    pass


class View(Configured):
    """Base of views: `view(text) -> str | None`; parameters validated once, pickled as its parameters.

    Subclass it in a plugin, set `name` and a `Params` model (extending rewardkit.Params), implement
    `__call__`; a subclass overriding `__init__` keeps `(self, params=None, /, **kwargs)`.
    """

    Params: ClassVar[type[Params]] = _Params
    name: ClassVar[str] = "view"
    kind: ClassVar[str] = "view"

    def __call__(self, text: str) -> str | None:
        raise NotImplementedError(f"{type(self).__name__} must implement __call__(text)")

    def __getstate__(self) -> dict:
        return {"params": self.params.model_dump()}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state["params"])  # type: ignore[misc]  # rebuilt (compiled patterns) from its parameters

    def __repr__(self) -> str:
        changed = self.params.model_dump(exclude_defaults=True)
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in changed.items())})"


_View = View  # the name this base had before it was public


class Full(View):
    """The whole text."""

    name = "full"

    def __call__(self, text: str) -> str | None:
        return text


class Boxed(View):
    """Content of the last \\boxed{...}."""

    name = "boxed"

    def __call__(self, text: str) -> str | None:
        return last_boxed(text)


class LastNumber(View):
    """The last number in the text (1,234 / -3.5 / 7/8 / .5)."""

    name = "last_number"

    def __call__(self, text: str) -> str | None:
        return last_number_text(text)


class Regex(View):
    """A group of the first (or last) match of a pattern."""

    name = "regex"

    class Params(_Params):
        pattern: str
        group: Union[Annotated[int, Field(ge=0)], Annotated[str, Field(min_length=1)]] = 1
        occurrence: Literal["first", "last"] = "first"
        flags: list[str] = Field(default_factory=list)
        regex_timeout: RegexSeconds = 1.0

    def __init__(self, params: Params | None = None, /, **kwargs: object) -> None:
        super().__init__(params, **kwargs)
        p = self.params
        self._compiled = safe_regex.compile_pattern(p.pattern, p.flags, "view 'regex'")
        groups = self._compiled.groups
        if isinstance(p.group, int) and p.group > groups:
            raise ConfigError(
                f"{p.group} does not exist in {p.pattern!r} ({groups} groups).",
                owner="view 'regex'",
                path="group",
                hint="use group 0 for the whole match or add a capturing group.",
            )
        if isinstance(p.group, str) and p.group not in self._compiled.groupindex:
            named = ", ".join(self._compiled.groupindex) or "(none)"
            raise ConfigError(
                f"{p.group!r} is not a named group of {p.pattern!r} (named: {named}).",
                owner="view 'regex'",
                path="group",
                hint=f"(?P<{p.group}>...) names a group.",
            )

    def __call__(self, text: str) -> str | None:
        p = self.params
        method = "search" if p.occurrence == "first" else "last"
        match = safe_regex.run(self._compiled, method, text, p.regex_timeout, "view 'regex'")
        return None if match is None else match.group(p.group)


class _MarkerParams(_Params):
    marker: str = Field(min_length=1)
    occurrence: Literal["first", "last"] = "first"
    strip: bool = True


class After(View):
    """The text after a marker (first or last occurrence), stripped."""

    name = "after"
    Params = _MarkerParams

    def _split(self, text: str) -> tuple[str, str] | None:
        p = self.params
        i = text.find(p.marker) if p.occurrence == "first" else text.rfind(p.marker)
        return None if i < 0 else (text[:i], text[i + len(p.marker) :])

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

    name = "before"

    def _pick(self, before: str, after: str) -> str:
        return before


class AfterThink(After):
    """The text after the last </think> (the answer of a reasoning model)."""

    name = "after_think"

    class Params(_MarkerParams):
        marker: str = Field("</think>", min_length=1)
        occurrence: Literal["first", "last"] = "last"
        strip: bool = True
