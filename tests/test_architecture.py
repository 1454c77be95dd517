"""The architecture contract: layers and no cycles (import-linter), module size, light imports."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [ROOT / "src" / "rewardkit", ROOT / "plugins" / "rewardkit-korean" / "src"]


def test_import_contracts_hold() -> None:
    exe = shutil.which("lint-imports")
    if exe is None:
        pytest.fail("lint-imports is missing: pip install -e '.[test]' installs import-linter")
    done = subprocess.run([exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    contracts = (ROOT / "pyproject.toml").read_text(encoding="utf-8").count("[[tool.importlinter.contracts]]")
    assert f"{contracts} kept, 0 broken" in done.stdout


@pytest.mark.parametrize(
    "path", sorted(p for src in SOURCES for p in src.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT))
)
def test_module_under_400_lines(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= 400, f"{path.relative_to(ROOT)} has {lines} lines; split it by what it holds"


def test_no_module_shadows_stdlib_or_installed_packages() -> None:
    names = {p.stem for p in (ROOT / "src" / "rewardkit").rglob("*.py")} - {"__init__", "__main__"}
    shadowed = sorted(n for n in names if n in sys.stdlib_module_names or n in {"tokenizers", "datasets", "torch"})
    assert not shadowed, f"modules named like stdlib/installed packages: {shadowed}"


def test_public_names_are_not_shadowed_by_submodules() -> None:
    """Importing a submodule sets a package attribute of its name: `rewardkit.compose` once was the module."""
    import importlib
    import pkgutil
    import types

    import rewardkit

    for info in pkgutil.walk_packages(rewardkit.__path__, "rewardkit."):
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)
    shadowed = [name for name in rewardkit.__all__ if isinstance(getattr(rewardkit, name), types.ModuleType)]
    assert not shadowed, f"public names that resolve to a submodule: {shadowed}"


def test_plugins_and_the_scaffold_use_only_the_public_api() -> None:
    """Modules under rewardkit.* are internal (they moved when the package was regrouped by layer); a plugin
    that imports `rewardkit.<module>` breaks on the next regroup, so ours and the template import `rewardkit`."""
    import re

    sources = [*(ROOT / "plugins").rglob("src/**/*.py"), *(ROOT / "src/rewardkit/cli/templates").rglob("*.tmpl")]
    deep = re.compile(r"^\s*(?:from|import)\s+rewardkit\.\w", re.M)
    offenders = [
        f"{p.relative_to(ROOT)}:{text.count(chr(10), 0, m.start()) + 1}"
        for p in sources
        for text in [p.read_text(encoding="utf-8")]
        for m in deep.finditer(text)
    ]
    assert len(sources) > 10 and not offenders, offenders
