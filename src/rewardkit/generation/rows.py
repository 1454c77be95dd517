"""Rows of `rewardkit generate`: reading them, the training stage's prompt mapping per row, the `--into` path
and the atomic write of the output (.json list or .jsonl)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from rewardkit.core.errors import ConfigError, DataError
from rewardkit.core.fileio import atomic_write_json, atomic_write_jsonl, read_input_bytes
from rewardkit.selection.inference_files import (
    read_rows as read_rows,  # one reader: generate's input, checkpoint_inference's rows
)
from rewardkit.train.data import chat_prompt

DEFAULT_INTO = "completion"
_MISSING = object()


def parse_columns(items: list[str] | None = None, json_text: str | None = None) -> dict[str, str]:
    """`--column SRC=DST` items and/or a `--columns-json` object (JSON text or a .json file) as {src: dst}."""
    columns: dict[str, str] = {}
    if json_text:
        text = json_text
        if not json_text.lstrip().startswith("{") and Path(json_text).is_file():
            text = read_input_bytes(json_text).decode("utf-8-sig")  # bounded; FIFOs and devices refused
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"--columns-json: not valid JSON ({exc.msg}).",
                hint='e.g. \'{"input.question": "prompt"}\', or the path of a .json file.',
            ) from None
        if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
            raise ConfigError(
                "--columns-json: expected an object of strings {name in the file: name used}.",
                hint='e.g. \'{"input.question": "prompt"}\'.',
            )
        columns.update(data)
    for item in items or []:
        src, sep, dst = item.partition("=")
        if not sep or not src.strip() or not dst.strip():
            raise ConfigError(f"--column {item!r}: expected SRC=DST.", hint="--column input.question=prompt.")
        columns[src.strip()] = dst.strip()
    return columns


def get_field(row: dict, name: str) -> Any:
    """`row[name]`, else the dotted path `a.b.c` through nested objects; `_MISSING` when absent.

    The per-row form of `rewardkit.train.data.map_columns` (which flattens a `datasets.Dataset`): a literal key
    wins over a dotted path, and paths only go through objects.
    """
    if name in row:
        return row[name]
    node: Any = row
    for part in name.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def map_row(row: dict, columns: dict[str, str]) -> dict:
    """The row as a training stage sees it after `dataset.columns` (sources renamed to their targets)."""
    if not columns:
        return row
    mapped = {k: v for k, v in row.items() if k not in columns}
    for src, dst in columns.items():
        value = get_field(row, src)
        if value is not _MISSING:
            mapped[dst] = value
    return mapped


def _row_name(row: dict, i: int) -> str:
    return f"row {i}" + (f" (id {row['id']!r})" if isinstance(row.get("id"), (str, int)) else "")


def build_prompts(
    rows: list[dict],
    columns: dict[str, str],
    prompt_column: str = "prompt",
    chat: bool = False,
    system_prompt: str | None = None,
    where: str = "input",
) -> list:
    """One prompt per row: columns mapped, then wrapped as chat messages when asked (as in training)."""
    prompts = []
    for i, row in enumerate(rows):
        value = map_row(row, columns).get(prompt_column, _MISSING)
        if value is _MISSING:
            mapping = f" after mapping columns {columns}" if columns else ""
            raise DataError(
                f"{where}: {_row_name(row, i)} has no {prompt_column!r}{mapping}; its keys are {sorted(row)}.",
                hint=f"map the prompt with --column SRC={prompt_column} (dotted names "
                f"reach into objects, e.g. input.question={prompt_column}) or set --prompt-column.",
            )
        messages = (
            isinstance(value, list)
            and bool(value)
            and all(isinstance(m, dict) and "role" in m and "content" in m for m in value)
        )
        if not (isinstance(value, str) or messages):
            raise DataError(
                f"{where}: {_row_name(row, i)}: the prompt is {type(value).__name__} "
                f"({json.dumps(value, ensure_ascii=False)[:60]}).",
                hint="a string or a list of "
                "{'role', 'content'} messages; for nested objects map the text field "
                "(e.g. --column input.question=prompt).",
            )
        if isinstance(value, str) and not value.strip() and not (chat or system_prompt):
            raise DataError(f"{where}: {_row_name(row, i)}: the prompt is empty.", hint="fix the row, or use --chat.")
        prompts.append(chat_prompt(value, chat, system_prompt))
    kinds = {isinstance(p, str) for p in prompts}
    if len(kinds) > 1:
        first = next(i for i, p in enumerate(prompts) if isinstance(p, str) != isinstance(prompts[0], str))
        raise DataError(
            f"{where}: the prompts mix strings and chat messages (row 0 vs {_row_name(rows[first], first)}).",
            hint="use one kind, or --chat to turn the strings into user turns.",
        )
    return prompts


def parse_into(into: str) -> list[str]:
    """A dotted path such as `output.answer` as its parts; keys with spaces around them are refused (a typo
    would write a new key ' answer' beside 'answer')."""
    parts = into.split(".") if isinstance(into, str) else []
    if not parts or any(not p.strip() for p in parts):
        raise ConfigError(
            f"--into {into!r}: expected a dotted key such as 'output.answer' or 'completion'.",
            hint="no empty parts, no leading or trailing dot.",
        )
    spaced = next((p for p in parts if p != p.strip()), None)
    if spaced is not None:
        raise ConfigError(
            f"--into {into!r}: the key {spaced!r} has spaces around it.",
            hint=f"write --into {'.'.join(p.strip() for p in parts)!r}.",
        )
    return parts


def check_into_keeps_identity(
    parts: list[str], columns: dict[str, str], prompt_column: str, overwrite: bool = False
) -> None:
    """Refuse an `--into` path that would replace a row's identity: its `id`, or the field the prompt is read
    from (`input` holding `input.question`), unless `overwrite` (`--into-overwrite`)."""
    if overwrite:
        return
    sources = [src for src, dst in columns.items() if dst == prompt_column] or [prompt_column]
    for key in ("id", *sources):
        key_parts = key.split(".")
        shared = min(len(parts), len(key_parts))
        if parts[:shared] == key_parts[:shared]:  # one path holds the other: writing replaces the key's value
            what = "the row's id" if key == "id" else f"the prompt's source field {key!r}"
            raise ConfigError(
                f"--into {'.'.join(parts)!r} would overwrite {what}.",
                hint="choose another key "
                "(e.g. the default 'completion', or output.answer), or pass --into-overwrite if "
                "replacing it is meant.",
            )


def check_into(rows: list[dict], parts: list[str], where: str = "input") -> None:
    """Refuse rows where an intermediate of the `--into` path exists and is not an object (null counts as absent)."""
    for i, row in enumerate(rows):
        node: Any = row
        for depth, part in enumerate(parts[:-1]):
            node = node.get(part) if isinstance(node, dict) else None
            if node is None:
                break
            if not isinstance(node, dict):
                head = ".".join(parts[: depth + 1])
                raise DataError(
                    f"{where}: {_row_name(row, i)}: --into {'.'.join(parts)!r} needs {head!r} to be an "
                    f"object, but it is {type(node).__name__} "
                    f"({json.dumps(node, ensure_ascii=False)[:60]}).",
                    hint="choose another --into path, e.g. the default 'completion'.",
                )


def set_field(row: dict, parts: list[str], value: object) -> dict:
    """A deep copy of `row` with `value` at the dotted path (intermediate objects created; null replaced)."""
    out = copy.deepcopy(row)
    node = out
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):  # absent or null (check_into refused every other value)
            node[part] = {}
        node = node[part]
    node[parts[-1]] = value
    return out


def output_format(path: str | Path) -> str:
    """'json' or 'jsonl' from the output file's suffix."""
    suffix = Path(path).suffix.lower()
    if suffix not in (".json", ".jsonl"):
        raise ConfigError(
            f"--output {str(path)!r}: unknown file type {suffix or '(no suffix)'!r}.",
            hint=".json writes a JSON list (the competition's submission format), .jsonl one object per line.",
        )
    return suffix[1:]


def write_rows(path: str | Path, rows: list[dict]) -> Path:
    """Atomically write `rows` as a JSON list or JSONL (by suffix)."""
    if output_format(path) == "json":
        return atomic_write_json(path, rows)
    return atomic_write_jsonl(path, rows)
