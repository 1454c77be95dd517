"""Dependency drift: install the newest releases in a temporary venv, run the tests, compare with constraints.txt.

Not part of the default CI: it is how to learn that a new release breaks rewardkit before users do.

    python scripts/drift_check.py                      # the whole suite
    python scripts/drift_check.py tests/train/test_train.py  # arguments after the options go to pytest
    python scripts/drift_check.py --freeze             # print the resolved set of THIS environment (constraints.txt)

It prints the packages whose version differs from constraints.txt (and those added or gone), then pytest's
outcome line, and exits with pytest's code. torch stays pinned (2.13.0, the CPU wheel): its newest build is a
multi-GB CUDA download, and its drift is checked separately.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONSTRAINTS = ROOT / "constraints.txt"
TORCH = "torch==2.13.0"
OWN = ("rewardkit", "rewardkit-korean")  # installed editable from this repository: never pinned


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def resolved_set() -> dict[str, str]:
    """Name -> version of every installed distribution that rewardkit[test,lint] and its plugins need, transitively."""
    import importlib.metadata as md

    from packaging.requirements import Requirement

    dists = {canonical(d.metadata["Name"]): d for d in md.distributions()}
    wanted: dict[str, set[str]] = {canonical(n): ({"test", "lint"} if n == "rewardkit" else set()) for n in OWN}
    seen: dict[str, set[str]] = {}
    while wanted:
        name, extras = wanted.popitem()
        if name in seen and extras <= seen[name]:
            continue
        seen[name] = seen.get(name, set()) | extras
        dist = dists.get(name)
        if dist is None:
            continue
        for raw in dist.requires or []:
            req = Requirement(raw)
            if req.marker and not any(req.marker.evaluate({"extra": e}) for e in (seen[name] or {""})):
                continue  # another extra's, or another platform's
            child = canonical(req.name)
            wanted[child] = wanted.get(child, set()) | set(req.extras)
    out = {}
    for name in seen:
        if name in {canonical(n) for n in OWN} or name not in dists:
            continue
        version = dists[name].version
        out[dists[name].metadata["Name"]] = version.split("+")[0] if name == "torch" else version
    return dict(sorted(out.items(), key=lambda kv: kv[0].lower()))


def read_constraints(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[canonical(name)] = version.strip()
    return pins


def diff(old: dict[str, str], new: dict[str, str]) -> list[str]:
    """Lines 'name: old -> new' for changed, added ('-' old) and gone ('-' new) packages."""
    new = {canonical(k): v for k, v in new.items()}
    lines = []
    for name in sorted(set(old) | set(new)):
        a, b = old.get(name, "-"), new.get(name, "-")
        if a != b:
            lines.append(f"  {name}: {a} -> {b}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--freeze", action="store_true", help="print this environment's resolved set and exit")
    parser.add_argument("--venv", type=Path, help="use (and keep) this venv folder instead of a temporary one")
    parser.add_argument("pytest_args", nargs="*", help="passed to pytest (default: the whole suite)")
    args = parser.parse_args()
    if args.freeze:
        for name, version in resolved_set().items():
            print(f"{name}=={version}")
        return 0
    with tempfile.TemporaryDirectory(prefix="rewardkit-drift-") as tmp:
        where = args.venv or Path(tmp) / "venv"
        if not (where / "bin" / "python").exists():
            venv.create(where, with_pip=True)
        py = str(where / "bin" / "python")
        pip = [py, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        subprocess.run([*pip, TORCH], check=True)
        # --upgrade-strategy eager: every dependency at its newest release that the requirements allow.
        subprocess.run(
            [
                *pip,
                "--upgrade",
                "--upgrade-strategy",
                "eager",
                "-e",
                f"{ROOT}[test]",
                "-e",
                str(ROOT / "plugins" / "rewardkit-korean"),
                TORCH,
            ],
            check=True,
        )
        newest = subprocess.run(
            [py, str(Path(__file__).resolve()), "--freeze"], check=True, capture_output=True, text=True
        ).stdout
        new = dict(line.split("==", 1) for line in newest.splitlines() if "==" in line)
        changes = diff(read_constraints(CONSTRAINTS), new)
        print(f"newest releases vs {CONSTRAINTS.name}: {len(changes)} differ")
        print("\n".join(changes) if changes else "  (none)")
        tests = subprocess.run(
            [py, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args.pytest_args],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        tail = [line for line in tests.stdout.splitlines() if line.strip()][-15:]
        print("pytest:", *tail, sep="\n  ")
        print("drift check:", "PASSED" if tests.returncode == 0 else f"FAILED (pytest exit {tests.returncode})")
        return tests.returncode


if __name__ == "__main__":
    sys.exit(main())
