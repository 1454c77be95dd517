"""Checking a chat template before it is used: rendered once in a bounded Jinja sandbox, problems in one line.

A template is code from a model folder or a config. transformers renders it in Jinja's immutable sandbox,
where a template reaching for Python internals raises `SecurityError` and a broken one `TypeError` or
`TemplateError` - as tracebacks, after the model has loaded. And the sandbox bounds `range()` only: `'a' *
300000000` allocates 300 MB. This module renders the template on a small conversation in the same kind of
sandbox, with sizes bounded (`*`, `+`, `**`, widths of `center`/`indent`/`format`, the output), so every such
template is one error line naming where it came from, before anything heavy runs.

What it cannot see: a template that misbehaves only on other messages, or doubles a string with `~` in a
loop; those meet transformers' renderer as they are.
"""

from __future__ import annotations

from typing import Any

from rewardkit.core.errors import ConfigError

MAX_TEMPLATE_TEXT = 1_000_000  # characters: any string, list or output the check's render may build
SAMPLE = [{"role": "user", "content": "What is 2 + 2?"}]


class TemplateBound(Exception):
    """The template built something over MAX_TEMPLATE_TEXT while rendering the sample."""


class _Refused(Exception):
    """The template's own raise_exception(): it refuses this conversation, which is its right, not an error."""


def _size(value: Any) -> int | None:
    return len(value) if isinstance(value, (str, list, tuple)) else None


def _bounded_environment() -> Any:
    """transformers' template environment (immutable sandbox, trim_blocks, loop controls, the generation tag),
    with sizes bounded."""
    from jinja2 import nodes
    from jinja2.ext import Extension, loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class GenerationTag(Extension):
        """`{% generation %}...{% endgeneration %}` (transformers' assistant-mask tag): renders its body."""

        tags = {"generation"}

        def parse(self, parser: Any) -> Any:
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return nodes.Scope(body).set_lineno(lineno)

    class Bounded(ImmutableSandboxedEnvironment):
        intercepted_binops = frozenset({"*", "+", "**"})

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            if operator == "**" and isinstance(right, (int, float)) and abs(right) > 64:
                raise TemplateBound(f"a power with exponent {right}")
            if operator == "*":
                for seq, times in ((left, right), (right, left)):
                    n = _size(seq)
                    if n is not None and isinstance(times, int) and n * times > MAX_TEMPLATE_TEXT:
                        raise TemplateBound(f"a text or list of {n} x {times} items")
            if operator == "+":
                a, b = _size(left), _size(right)
                if a is not None and b is not None and a + b > MAX_TEMPLATE_TEXT:
                    raise TemplateBound(f"a text or list of {a + b} items")
            return super().call_binop(context, operator, left, right)

        def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 (Jinja's)
            _check_widths(args, kwargs)
            return super().call(__context, __obj, *args, **kwargs)

        def wrap_str_format(self, value: Any) -> Any:
            owner = getattr(value, "__self__", None)
            if isinstance(owner, str) and getattr(value, "__name__", "") in ("format", "format_map"):
                _check_format(owner)  # '{:400000000}'.format(x): the width is inside the text
            return super().wrap_str_format(value)

    env = Bounded(trim_blocks=True, lstrip_blocks=True, extensions=[GenerationTag, loopcontrols])
    for name in ("center", "indent", "format", "wordwrap", "truncate"):
        env.filters[name] = _width_checked(env.filters[name])

    def raise_exception(message: str) -> None:
        raise _Refused(message)

    env.globals["raise_exception"] = raise_exception
    env.filters["tojson"] = _tojson  # transformers' own (ensure_ascii=..., indent=...): real templates use it
    env.globals["strftime_now"] = lambda fmt: "1 Jan 2026"
    return env


def _tojson(
    value: Any, ensure_ascii: bool = False, indent: int | None = None, separators: Any = None, sort_keys: bool = False
) -> str:
    import json

    _check_widths((indent,), {})
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _check_widths(args: tuple, kwargs: dict) -> None:
    for value in (*args, *kwargs.values()):
        if isinstance(value, int) and not isinstance(value, bool) and value > MAX_TEMPLATE_TEXT:
            raise TemplateBound(f"a width of {value}")


def _check_format(text: object) -> None:
    import re

    found = re.search(r"\d{7,}", text) if isinstance(text, str) else None
    if found:
        raise TemplateBound(f"a format width of {found.group()}")


def _width_checked(filter_func: Any) -> Any:
    def checked(*args: Any, **kwargs: Any) -> Any:
        _check_widths(args[1:], kwargs)
        for value in args[:2]:  # '%400000000s'|format(x): the width is inside the format text
            _check_format(value)
        return filter_func(*args, **kwargs)

    for attr in ("jinja_pass_arg",):  # pass_environment/pass_eval_context markers travel with the filter
        if hasattr(filter_func, attr):
            setattr(checked, attr, getattr(filter_func, attr))
    return checked


def check_chat_template(template: str, where: str, hint: str | None = None) -> None:
    """Render `template` on a one-message conversation in a bounded sandbox; ConfigError (one line) when it is
    unsafe, broken, or builds more than MAX_TEMPLATE_TEXT characters (`hint`: the fix, where it came from)."""
    from jinja2.exceptions import SecurityError, TemplateError

    if hint is None:
        hint = "fix the template (or use the model's own), e.g. a ChatML template from the model card."
    try:
        env = _bounded_environment()
        out = env.from_string(template).render(
            messages=SAMPLE, add_generation_prompt=True, bos_token="<s>", eos_token="</s>", tools=None
        )
    except _Refused:
        return
    except TemplateBound as exc:
        raise ConfigError(
            f"{where}: the chat template builds {exc} while rendering one short message (limit "
            f"{MAX_TEMPLATE_TEXT} characters).",
            hint=hint,
        ) from None
    except SecurityError as exc:
        raise ConfigError(f"{where}: the chat template does something unsafe: {_line(exc)}.", hint=hint) from None
    except (TemplateError, TypeError, ValueError, AttributeError, KeyError, IndexError, ArithmeticError) as exc:
        raise ConfigError(
            f"{where}: the chat template fails on one short message: {type(exc).__name__}: {_line(exc)}.", hint=hint
        ) from None
    except (RecursionError, MemoryError):
        raise ConfigError(f"{where}: the chat template recurses or allocates without bound.", hint=hint) from None
    if len(out) > MAX_TEMPLATE_TEXT:
        raise ConfigError(f"{where}: the chat template renders {len(out)} characters for one short message.", hint=hint)


def _line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200].rstrip(".")
