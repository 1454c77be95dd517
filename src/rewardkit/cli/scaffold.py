"""`rewardkit plugin new NAME`: a new plugin folder, built the way `plugins/rewardkit-korean` is.

The skeleton is `rewardkit-NAME/` with a pyproject.toml whose entry point (group "rewardkit") names the
hook module, the hook module (one reward, one view), a `Reward` subclass with a `Params` model, a view,
tests that prove discovery through the installed entry point, and a README. The templates are package data
(`rewardkit/cli/templates/plugin/*.tmpl`, `{{placeholder}}` fields). An existing non-empty folder is refused:
nothing is ever overwritten.

>>> plugin_names("my-metric")["module"]
'rewardkit_my_metric'
>>> plugin_names("my_metric")["dist"]  # one plugin, however NAME spells its separators
'rewardkit-my-metric'
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from rewardkit.core.errors import ConfigError
from rewardkit.core.fileio import atomic_write_text, ensure_dir

NAME_PATTERN = re.compile(r"[a-z](?:[a-z0-9_-]*[a-z0-9])?")
MAX_NAME = 50
MAX_DESCRIPTION = 200
# target path (relative to rewardkit-NAME/, `{module}` filled in) <- template file
FILES = {
    "pyproject.toml": "pyproject.toml.tmpl",
    "README.md": "README.md.tmpl",
    "src/{module}/__init__.py": "__init__.py.tmpl",
    "src/{module}/plugin.py": "plugin.py.tmpl",
    "src/{module}/rewards.py": "rewards.py.tmpl",
    "src/{module}/views.py": "views.py.tmpl",
    "tests/test_plugin.py": "test_plugin.py.tmpl",
}
_FIELD = re.compile(r"\{\{(\w+)\}\}")


@dataclass
class NewPlugin:
    """What `new_plugin` made: the folder, the names it registers and the files it wrote."""

    root: Path
    dist: str
    module: str
    reward: str
    view: str
    files: list[Path] = field(default_factory=list)


def check_name(name: object) -> str:
    """`name` when it is a valid plugin name (lowercase letter first, then letters, digits, - or _)."""
    hint = "e.g. `rewardkit plugin new my-metric` makes rewardkit-my-metric (module rewardkit_my_metric)."
    if not isinstance(name, str) or not name:
        raise ConfigError(f"plugin new: NAME must be a non-empty string, got {name!r}.", hint=hint)
    for prefix in ("rewardkit-", "rewardkit_"):
        if name.startswith(prefix) and len(name) > len(prefix):
            raise ConfigError(
                f"plugin new: NAME {name!r} already starts with {prefix!r}; the folder and the "
                f"distribution get that prefix. Did you mean {name[len(prefix) :]!r}?"
            )
    if name == "rewardkit":
        raise ConfigError("plugin new: NAME cannot be 'rewardkit' (the core's own name).", hint=hint)
    if len(name) > MAX_NAME:
        raise ConfigError(f"plugin new: NAME has {len(name)} characters; at most {MAX_NAME}.", hint=hint)
    if NAME_PATTERN.fullmatch(name) is None:
        raise ConfigError(
            f"plugin new: invalid NAME {name!r}: use lowercase letters, digits, '-' and '_', "
            f"starting with a letter and ending with a letter or digit.",
            hint=hint,
        )
    return name


def check_description(description: object) -> str:
    """A one-line printable description (it goes into pyproject.toml, a docstring and the README)."""
    if not isinstance(description, str) or not description.strip():
        raise ConfigError(f"plugin new: --description must be non-empty text, got {description!r}.")
    text = description.strip()
    if any("\udc80" <= c <= "\udcff" for c in text):  # undecodable argv bytes, escaped by Python (PEP 383)
        locale_vars = ", ".join(f"{k}={os.environ[k]}" for k in ("LC_ALL", "LC_CTYPE", "LANG") if os.environ.get(k))
        raise ConfigError(
            "plugin new: --description holds bytes that the locale's encoding "
            f"({sys.getfilesystemencoding()}) cannot decode: the command runs under a non-UTF-8 locale "
            f"({locale_vars or 'no LC_ALL, LC_CTYPE or LANG set'}), so non-ASCII text arrives as escapes.",
            hint="run it under a UTF-8 locale (LC_ALL=C.UTF-8) or with PYTHONUTF8=1.",
        )
    if not text.isprintable() or len(text) > MAX_DESCRIPTION:
        raise ConfigError(
            "plugin new: --description must be one line of printable text of at most "
            f"{MAX_DESCRIPTION} characters (got {len(text)} characters: {text!r:.60}).",
            hint="write the longer story in the README.",
        )
    return text


def normalized_name(name: str) -> str:
    """NAME as pip sees it (PEP 503: runs of '-' and '_' are one '-'): `x_y`, `x-y` and `x--y` are one plugin."""
    return re.sub(r"[-_]+", "-", name)


def plugin_names(name: str) -> dict[str, str]:
    """Every name derived from NAME (normalized): distribution and folder, module, registered reward and view."""
    name = normalized_name(check_name(name))
    prefix = name.replace("-", "_")
    return {
        "name": name,
        "dist": f"rewardkit-{name}",
        "module": f"rewardkit_{prefix}",
        "reward": f"{prefix}_word_overlap",
        "view": f"{prefix}_first_line",
    }


def _escaped(text: str) -> str:
    """`text` inside a TOML basic string or a Python \"\"\" docstring (printable text: only \\ and \" matter)."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _fill(template: str, values: dict[str, str], where: str) -> str:
    def one(match: re.Match) -> str:
        if match.group(1) not in values:  # a template bug, caught by the tests
            raise KeyError(f"{where}: unknown template field {match.group(0)}")
        return values[match.group(1)]

    return _FIELD.sub(one, template)


def render(name: str, description: str | None = None) -> dict[str, str]:
    """{relative path: text} of the skeleton for NAME, nothing written."""
    values = plugin_names(name)
    text = (
        check_description(description)
        if description is not None
        else f"rewardkit plugin {values['dist']}: rewards and views for rewardkit."
    )
    values.update(description=text, description_escaped=_escaped(text))
    folder = resources.files("rewardkit.cli") / "templates" / "plugin"
    return {
        target.format(module=values["module"]): _fill((folder / source).read_text(encoding="utf-8"), values, source)
        for target, source in FILES.items()
    }


def _refuse_existing(root: Path) -> None:
    try:  # the same plugin under another spelling (rewardkit-x_y made by hand or by an older rewardkit)
        twin = next(
            (
                p
                for p in root.parent.iterdir()
                if p.name != root.name and p.name.startswith("rewardkit") and normalized_name(p.name) == root.name
            ),
            None,
        )
    except OSError:
        twin = None  # an unreadable or missing --dir: ensure_dir names the problem
    if twin is not None:
        raise ConfigError(
            f"plugin new: {twin} is the same plugin as {root.name} (pip treats '-' and '_' alike, "
            "and both give one module).",
            hint="choose another NAME, or move that folder away.",
        )
    if not os.path.lexists(root):
        return
    if not root.is_dir():
        raise ConfigError(f"plugin new: {root} exists and is not a folder.", hint="choose another NAME or --dir.")
    try:
        empty = next(root.iterdir(), None) is None
    except OSError as exc:
        raise ConfigError(
            f"plugin new: {root} exists and cannot be read ({exc.strerror}).", hint="choose another NAME or --dir."
        ) from None
    if not empty:
        raise ConfigError(
            f"plugin new: {root} already exists and is not empty; rewardkit never overwrites it.",
            hint="choose another NAME or --dir, or move that folder away.",
        )


def new_plugin(name: str, directory: str | Path = ".", description: str | None = None) -> NewPlugin:
    """Write the skeleton of plugin NAME to DIRECTORY/rewardkit-NAME (a new or empty folder).

    Files are written atomically; if writing fails, the files (and folders) made so far are removed.
    """
    files = render(name, description)  # every check before the first write
    names = plugin_names(name)
    root = Path(directory) / names["dist"]
    _refuse_existing(root)
    made_root = not os.path.lexists(root)
    ensure_dir(root)
    written: list[Path] = []
    try:
        for relative, text in files.items():
            path = root / relative
            if os.path.lexists(path):  # something else wrote there since the check: still never overwrite
                raise ConfigError(f"plugin new: {path} appeared while writing the plugin; not overwritten.")
            written.append(atomic_write_text(path, text))
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        stop = root.parent if made_root else root  # a folder that existed before stays
        # every target's folder, written or not: the one whose file failed was created too
        for folder in sorted({(root / relative).parent for relative in files} | {root}, reverse=True):
            while folder != stop and folder.is_dir() and next(folder.iterdir(), None) is None:
                folder.rmdir()
                folder = folder.parent
        raise
    return NewPlugin(root, names["dist"], names["module"], names["reward"], names["view"], written)
