"""Reading YAML/TOML spec files with errors that name the file and line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from .errors import ConfigError


def load_file(path: str | Path) -> dict:
    """Parse a .yaml/.yml/.toml/.json file into a dict."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such file. Hint: check the path (relative paths start at the current "
                          "directory).")
    text = path.read_text(encoding="utf-8")
    suffix = path.suffix.lower()
    if suffix == ".toml":
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover
            import tomli as tomllib
        try:
            data: Any = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: TOML syntax error: {exc}") from None
    elif suffix in (".yaml", ".yml", ".json"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or str(exc)
            raise ConfigError(f"{path}{where}: YAML syntax error: {problem}") from None
    else:
        raise ConfigError(f"{path}: unknown spec format {suffix!r}. Hint: use .yaml, .yml, .toml or .json.")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping, got {type(data).__name__}.")
    return data
