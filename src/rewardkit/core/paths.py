"""Path rules for folders and files a user names relative to a root (a run's output_dir, an inference folder).

Two rules, one check: `safe_child` takes plain names only (relative, never climbing out with `..`), for
things rewardkit replaces or deletes wholesale (`best/`, the sidecar, a checkpoint file name); `run_path`
also accepts an explicit absolute path, for folders a user may want on another disk (lora_save's adapters).
"""

from __future__ import annotations

import os
from pathlib import Path

from rewardkit.core.errors import ConfigError


def _climbs_out(norm: str) -> bool:
    """Whether a normalized relative path leaves its root (`..` or `../x`), or is the root itself (`.`)."""
    return norm in (".", os.pardir) or norm.startswith(os.pardir + os.sep)


def _escape_error(what: str, name: str, root: str | Path, hint: str) -> ConfigError:
    return ConfigError(f"{what} {name!r} escapes {root} (it climbs out with '..'); refusing to use it.", hint=hint)


def safe_child(root: str | Path, name: str, what: str) -> Path:
    """`root/name`, refusing absolute names and names that climb out of `root` (`..`)."""
    if not isinstance(name, str) or not name.strip() or os.path.isabs(name):
        raise ConfigError(f"{what} {name!r} must be a relative name inside {root}.", hint="e.g. 'best'.")
    norm = os.path.normpath(name)
    if _climbs_out(norm):
        raise _escape_error(what, name, root, "use a plain folder or file name without '..'.")
    return Path(root) / norm


def run_path(root: str | Path, value: str, what: str) -> Path:
    """An explicit absolute path as given, else `root/value` kept inside `root`.

    A relative `../../x` is refused: a config copied between runs must not write (or prune) outside the run
    by accident. Whoever really wants a folder elsewhere says so with an absolute path.
    """
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{what} {value!r} must be a folder name or an absolute path.", hint="e.g. 'adapters'.")
    if os.path.isabs(value):
        return Path(value)
    norm = os.path.normpath(value)
    if _climbs_out(norm):
        raise _escape_error(
            what, value, root, "use a folder inside the run (e.g. 'adapters') or an explicit absolute path."
        )
    return Path(root) / norm
