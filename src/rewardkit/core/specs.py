"""Reading YAML/TOML/JSON spec files: errors name the file and line; hostile files are refused early.

YAML is read with a safe loader that refuses duplicate keys (the last one would silently win) and bounds
what a document may expand to: aliases can make a 400-byte file stand for billions of nodes.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from rewardkit.core.errors import ConfigError
from rewardkit.core.fileio import read_text

SPEC_SUFFIXES = (".yaml", ".yml", ".toml", ".json")
MAX_NODES = 200_000  # expanded size (every alias counted at each use)
MAX_DEPTH = 100
MAX_BYTES = 20_000_000
# YAML 1.1 reads `1e-5` and `1.5e3` (an exponent without a dot or sign) as text; JSON and YAML 1.2 read numbers.
_EXPONENT_FLOAT = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)[eE][-+]?[0-9]+$")


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys and over-long integers, and reads `1e-5` as a number."""

    # PyYAML's scanner slows down quadratically with nesting ([[[[... : 2 s at 2,000 levels): refuse at the
    # first level past the bound, while scanning, before any of that work.
    def fetch_flow_collection_start(self, TokenClass: Any) -> None:
        self._check_depth(self.flow_level + 1)
        super().fetch_flow_collection_start(TokenClass)

    def add_indent(self, column: int) -> bool:
        added = super().add_indent(column)
        self._check_depth(len(self.indents))
        return added

    def _check_depth(self, depth: int) -> None:
        if depth > MAX_DEPTH + 1:  # the exact bound (on nodes) is _measure's; this one only stops the scan early
            raise ConfigError(
                f"line {self.line + 1}: the document is nested deeper than {MAX_DEPTH} levels.", hint="flatten it."
            )

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ConfigError, yaml.YAMLError, RecursionError):
            raise
        except Exception as exc:  # `!!float y`, `!!int x`, `!!binary ?`: the constructor's ValueError/TypeError
            value = node.value if isinstance(node, yaml.ScalarNode) else f"a {node.id}"
            raise ConfigError(
                f"line {node.start_mark.line + 1}: cannot read {value!r:.40} as {node.tag.rsplit(':', 1)[-1]} "
                f"({type(exc).__name__}: {exc}).",
                hint="fix or remove the tag.",
            ) from None

    def construct_long_int(self, node: yaml.ScalarNode) -> int:
        try:
            return self.construct_yaml_int(node)
        except ValueError:
            if len(node.value) < 4300:
                raise  # `!!int x`: construct_object names the line
            raise ConfigError(
                f"line {node.start_mark.line + 1}: the integer {node.value[:20]}... has "
                f"{len(node.value)} digits, more than Python reads.",
                hint="quote it if it is text.",
            ) from None

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        if not isinstance(node, yaml.MappingNode):  # `!!set [1]`, `!!map [1]`
            raise ConfigError(
                f"line {node.start_mark.line + 1}: {node.tag.rsplit(':', 1)[-1]} needs a mapping, got a {node.id}.",
                hint="fix or remove the tag.",
            )
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)
            except TypeError:
                raise ConfigError(
                    f"line {line}: a mapping key must be a plain value, got {type(key).__name__}.",
                    hint="quote the key.",
                ) from None
            if first is not None:
                raise ConfigError(
                    f"line {line}: duplicate key {key!r} (first at line {first}); YAML would keep only the last.",
                    hint="remove one of them.",
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_long_int)
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _EXPONENT_FLOAT, list("-+0123456789."))


def _measure(node: yaml.Node, sizes: dict[int, int], open_: set[int], depth: int) -> int:
    """Expanded node count of `node` (memoised per node, so aliases cost nothing to count)."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in open_:
        raise ConfigError("a YAML alias refers to itself (a recursive structure).", hint="remove the anchor loop.")
    if depth > MAX_DEPTH:
        raise ConfigError(f"the document is nested deeper than {MAX_DEPTH} levels.", hint="flatten it.")
    open_.add(key)
    if isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_measure(child, sizes, open_, depth + 1) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size = 1 + sum(
            _measure(k, sizes, open_, depth + 1) + _measure(v, sizes, open_, depth + 1) for k, v in node.value
        )
    else:
        size = 1
    open_.discard(key)
    if size > MAX_NODES:
        raise ConfigError(
            f"the document expands to more than {MAX_NODES} values (YAML aliases repeat their anchor at each use).",
            hint="write the values out; specs are small.",
        )
    sizes[key] = size
    return size


def parse_yaml(text: str, where: str) -> Any:
    """Parse YAML text safely (duplicate keys refused, expansion bounded); errors start with `where`."""
    loader = None
    try:
        loader = _Loader(text)  # the reader refuses control characters (NUL...) right here
        node = loader.get_single_node()
        if node is None:
            return None
        _measure(node, {}, set(), 0)
        return loader.construct_document(node)
    except ConfigError as exc:
        raise exc.within(where) from None
    except yaml.reader.ReaderError as exc:  # a control character (NUL, ...) anywhere in the text
        line = str(text.count("\n", 0, exc.position) + 1)  # text, like the YAMLError branch's ":line:column"
        raise ConfigError(
            f"{where}:{line}: character U+{exc.character:04X} is not allowed in a spec (control "
            "characters cannot appear in YAML).",
            hint="remove it, or write it as an escape in a double-quoted string.",
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(
            f"{where}{line}: YAML syntax error: {problem}.", hint="check indentation and quoting."
        ) from None
    except RecursionError:
        raise ConfigError(f"{where}: the document is nested too deeply.", hint="flatten it.") from None
    except (ValueError, TypeError, AttributeError, KeyError, IndexError, OverflowError) as exc:  # a constructor's
        raise ConfigError(
            f"{where}: cannot read the document ({type(exc).__name__}: {exc}).",
            hint="check the tags (!!...) and values.",
        ) from None
    finally:
        if loader is not None:
            loader.dispose()


class _Duplicate(Exception):
    pass


def _json_pairs(pairs: list) -> dict:
    seen: set = set()
    for key, _ in pairs:
        if key in seen:
            raise _Duplicate(key)
        seen.add(key)
    return dict(pairs)


def _json_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON (strict JSON has no NaN or Infinity)")


def parse_json(text: str, where: str) -> Any:
    """Parse strict JSON (duplicate keys, NaN/Infinity refused; bounded like YAML); errors start with `where`."""
    try:
        data = json.loads(text, object_pairs_hook=_json_pairs, parse_constant=_json_constant)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{where}:{exc.lineno}:{exc.colno}: JSON syntax error: {exc.msg}.",
            hint="check commas, quotes and brackets.",
        ) from None
    except _Duplicate as exc:
        try:  # the YAML reader names the line (valid JSON is YAML once tabs, only legal as spacing, are spaces)
            parse_yaml(text.replace("\t", " "), where)
        except ConfigError as located:
            if "duplicate key" in str(located):
                raise located from None
        raise ConfigError(
            f"{where}: duplicate key {exc.args[0]!r}; JSON readers would keep only the last.",
            hint="remove one of them.",
        ) from None
    except RecursionError:
        raise ConfigError(f"{where}: the document is nested too deeply.", hint="flatten it.") from None
    except ValueError as exc:  # NaN/Infinity, an integer over 4300 digits
        raise ConfigError(
            f"{where}: invalid JSON value ({exc}).", hint="write finite numbers; quote long ones."
        ) from None
    check_shape(data, where)
    return data


def parse_assignment(item: str, where: str = "--set") -> tuple[str, Any]:
    """Split 'a.b=value' into ('a.b', YAML-parsed value); `@name` stays text (YAML cannot start with '@')."""
    key, sep, raw = item.partition("=") if isinstance(item, str) else ("", "", "")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(
            f"{where} {item!r}: expected key=value with a dotted key.", hint=f"{where} bertscore.model_type=./my-bert."
        )
    if raw.strip().startswith("@"):
        return key, raw.strip()
    return key, parse_yaml(raw, f"{where} {item!r}") if raw.strip() else ""


MAX_TEMPLATE_BYTES = 1_000_000


def read_chat_template(value: str, where: str = "chat_template") -> str:
    """A chat template given as a file (.jinja, .txt, or a tokenizer_config.json's `chat_template`) or as text."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(
            f"{where}: expected a file or a Jinja template string, got {value!r:.40}.",
            hint="chat_template: templates/chatml.jinja.",
        )
    if "{{" in value or "{%" in value:
        return _checked_template(value, where)
    path = Path(value).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"{where}: {value!r:.80} is neither a file nor a template (a template contains '{{{{' or '{{%').",
            hint="check the path (relative paths start at the current directory).",
        )
    text = read_text(
        path,
        error=ConfigError,
        pipes=False,
        max_bytes=MAX_TEMPLATE_BYTES,
        hint="name a readable template file (.jinja, .txt or tokenizer_config.json).",
    )
    if path.suffix.lower() == ".json":  # a tokenizer_config.json: its chat_template entry
        data = parse_json(text, str(path))
        template = data.get("chat_template") if isinstance(data, dict) else None
        if not isinstance(template, str):
            raise ConfigError(f"{where}: {path} has no string `chat_template`.", hint="name a .jinja file instead.")
        text = template
    if "{{" not in text and "{%" not in text:
        raise ConfigError(f"{where}: {path} holds no Jinja template (no '{{{{' or '{{%').", hint="check the file.")
    return _checked_template(text, f"{where}: {path}")


def _checked_template(text: str, where: str) -> str:
    from rewardkit.core.chat_templates import check_chat_template  # jinja2 only when a template is given

    check_chat_template(text, where)
    return text


def check_shape(data: object, where: str) -> None:
    """Refuse a parsed document deeper than MAX_DEPTH or with more than MAX_NODES values (without recursion)."""
    stack = [(data, 0)]
    count = 0
    while stack:
        value, depth = stack.pop()
        count += 1
        if depth > MAX_DEPTH:
            raise ConfigError(f"{where}: the document is nested deeper than {MAX_DEPTH} levels.", hint="flatten it.")
        if count > MAX_NODES:
            raise ConfigError(
                f"{where}: the document has more than {MAX_NODES} values.",
                hint="specs are small; put data in a dataset file.",
            )
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)


def load_file(path: str | Path) -> dict:
    """Parse a .yaml/.yml/.toml/.json file into a dict."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SPEC_SUFFIXES:
        raise ConfigError(f"{path}: unknown spec format {suffix!r}.", hint="use .yaml, .yml, .toml or .json.")
    text = read_text(
        path,
        error=ConfigError,
        pipes=False,
        max_bytes=MAX_BYTES,
        hint="check the path (relative paths start at the current directory); a spec is one .yaml/.toml/.json file.",
    )
    if suffix == ".toml":
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover
            import tomli as tomllib
        try:
            data: Any = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: TOML syntax error: {exc}.", hint="check quoting and tables.") from None
        except RecursionError:
            raise ConfigError(f"{path}: the document is nested too deeply.", hint="flatten it.") from None
        except ValueError as exc:  # an integer over 4300 digits
            raise ConfigError(f"{path}: invalid TOML value ({exc}).", hint="quote it if it is text.") from None
        check_shape(data, str(path))
    elif suffix == ".json":  # strict JSON: tabs, exponents and \uD83D\uDE00 pairs as every JSON reader reads them
        data = parse_json(text, str(path))
    else:
        data = parse_yaml(text, str(path))
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: the top level must be a mapping, got {type(data).__name__}.",
            hint="start with `rewards:` (a compose spec) or `stage:` / `pipeline:` (a run).",
        )
    return data
