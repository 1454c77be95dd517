"""Output folders a command owns (`demo`, `--smoke`: a marker names the command) and the one check before a
command writes into or empties an existing folder; what an earlier run wrote there is known from its record
(core/written.py)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from rewardkit.core import written
from rewardkit.core.errors import ConfigError
from rewardkit.core.fileio import atomic_write_text, ensure_dir

OUTPUT_MARKER = ".rewardkit-output"  # in a folder a command owns and empties on its next run; names the command


def marker_owner(root: str | Path) -> str | None:
    """The command whose output folder `root` is (its marker names it, e.g. "rewardkit demo"), else None."""
    marker = Path(root) / OUTPUT_MARKER
    return _marker_owner(marker) if marker.is_file() and not marker.is_symlink() else None


def _marker_owner(marker: Path) -> str | None:
    try:
        first = marker.read_text(encoding="utf-8").split("\n", 1)[0]
    except (OSError, UnicodeDecodeError):
        return None
    _, _, rest = first.partition("`")
    return rest.partition("`")[0] or None


def foreign_entry(root: str | Path, owns: Callable[[Path], bool]) -> Path | None:
    """The first entry of the folder `root` that its command did not write (`owns` says which it did), else None:
    the one check before a command writes into or empties an existing folder (`train`, `--smoke`, `demo`,
    `tiny`). A missing folder has none."""
    root = Path(root)
    if not root.is_dir():
        return None
    return next((entry for entry in sorted(root.iterdir()) if not owns(entry)), None)


def claim_output_dir(
    root: Path,
    owner: str,
    refuse: ConfigError,
    *,
    clear: tuple[str, ...] | None = None,
    delete: bool = True,
    write_marker: bool = True,
    transient: frozenset[str] = frozenset(),
) -> Path:
    """Make `root` the output folder of `owner` (e.g. "rewardkit demo") and return it.

    A non-empty folder `owner` did not write (no marker naming it) is refused with the error `refuse`.
    One it wrote is emptied of an earlier run (all of it, or only the `clear` entries; `delete=False` keeps
    everything, for the ranks of a launch that are not the main process): what the earlier run recorded it wrote
    (core/written.py) is deleted; anything else there (a user's note inside) is refused in one line first, and
    nothing is deleted. `transient`: names of files a run takes and drops (its lock). The marker is written unless
    `write_marker=False` (again: not the main process).
    """
    root = Path(root)
    ours = _marker_owner(root / OUTPUT_MARKER) == owner  # a folder the command wrote is all its own
    if foreign_entry(root, lambda entry: ours) is not None:
        raise refuse
    if delete and root.is_dir():
        names = sorted(os.listdir(root)) if clear is None else clear
        targets = [root / name for name in names if os.path.lexists(root / name)]
        if targets and not written.has_record(root):
            raise ConfigError(
                f"{root}: an earlier `{owner}` (an older rewardkit) kept no record of what it wrote there, so its "
                "next run does not empty it.",
                hint="delete the folder yourself (after moving out anything you keep), or choose another folder.",
            )
        found = written.first_unrecorded(root, targets, transient)
        if found is not None:
            raise ConfigError(
                f"{root}: `{owner}` empties this folder, but {found.path} is {found.why}.",
                hint="nothing was deleted; move it out of the folder, then run again.",
            )
        written.remove_recorded(root, targets, transient)
    ensure_dir(root)
    if write_marker:
        atomic_write_text(
            root / OUTPUT_MARKER, f"written by `{owner}`; its next run empties this folder\n", inside=root
        )
    return root
