"""The judge's prompt templates: named fields filled in one pass, so a value is never read as a template.

A field is `{name}` with `name` an identifier (`{prompt}`, `{completion}`, `{reference}` or any dataset column);
`{{` and `}}` give literal braces; any other brace (a JSON example in the rubric) stays as written. Values are
inserted as they are: a completion holding `{reference}` or `{{7*7}}` reaches the judge literally, unlike
`str.format` applied twice or a Jinja template.
"""

from __future__ import annotations

import json
import re
from typing import Any

from rewardkit.core.errors import ConfigError, DataError

_TOKEN = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")
FIXED_FIELDS = ("prompt", "completion", "reference")


def template_fields(template: str) -> list[str]:
    """The field names a template uses, in order of first use.

    >>> template_fields("Q: {prompt} A: {completion} {{not_a_field}} {prompt} {\\"json\\": 1}")
    ['prompt', 'completion']
    """
    return list(dict.fromkeys(m.group(1) for m in _TOKEN.finditer(template) if m.group(1)))


def render(template: str, values: dict[str, str]) -> str:
    """The template with each field replaced by its value, in a single pass (values are never re-read).

    >>> render("A: {completion} / gold: {reference} {{x}}", {"completion": "{reference} {{7*7}}", "reference": "4"})
    'A: {reference} {{7*7}} / gold: 4 {x}'
    """

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return match.group(0)[0]  # `{{` -> `{`, `}}` -> `}`
        return values[name]

    return _TOKEN.sub(one, template)


def check_fields(owner: str, templates: dict[str, str], has_reference: bool, columns: set[str] | None) -> None:
    """Refuse a template field that can never be filled: `{reference}` without a reference column, or (when the
    call's dataset columns are known) a name that is neither a fixed field nor a column."""
    for which, template in templates.items():
        for name in template_fields(template):
            if name == "reference" and not has_reference:
                raise ConfigError(
                    f"{owner}: {which}: uses {{reference}} but no reference column is set.",
                    hint="set reference: <column> (the dataset column holding the gold text), or remove {reference}.",
                )
            if columns is not None and name not in FIXED_FIELDS and name not in columns:
                known = ", ".join(sorted(set(FIXED_FIELDS) | columns))
                raise ConfigError(
                    f"{owner}: {which}: uses the field {{{name}}}, which is neither prompt, completion, "
                    f"reference nor a dataset column (fields: {known}).",
                    hint="fix the name, add the column to the dataset, or write {{ and }} for literal braces.",
                )


def field_text(value: Any, name: str, owner: str) -> str:
    """A value as the judge sees it: text as is; chat messages as their last user turn; other values as JSON.

    >>> field_text([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}], "prompt", "j")
    '2+2?'
    >>> field_text(["Paris", "Paname"], "reference", "j"), field_text(3, "n", "j")
    ('Paris\\nPaname', '3')
    """
    if isinstance(value, str):
        return value
    if value is None:
        raise DataError(
            f"{owner}: the field {{{name}}} is missing (None) in a row.",
            hint=f"give every row a {name!r} value, or remove {{{name}}} from the templates.",
        )
    if isinstance(value, list) and value and all(isinstance(m, dict) and "role" in m for m in value):
        users = [m for m in value if m.get("role") == "user"]
        return str((users or value)[-1].get("content", ""))
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "\n".join(value)  # a reference with alternatives: each on its own line
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        return str(value)
