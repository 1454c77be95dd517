"""docs/reliability.md points at tests by id: every id it cites names a test that exists (tests move; ids must not rot)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT

FULL = re.compile(r"^((?:[\w.-]+/)*test_\w+\.py)::(\w+)(\[.+\])?$")


def cited_ids(text: str) -> list[str]:
    """The ids in the doc's backticks: `file::test[row]` in full, `[row]` and `-suffix` continue the last one.

    Paths are under tests/ unless they start with plugins/; `-suffix` replaces the value after the last row id's
    last `-` (`format_regex-regex_timeout-inf` and `-1e+308` cite `format_regex-regex_timeout-1e+308`; after
    `x--1`, a negative value, `-nan` cites `x-nan`).
    """
    ids = []
    for line in text.splitlines():
        last = None
        for token in re.findall(r"`([^`]+)`", line):
            full = FULL.match(token)
            if full:
                path, test, row = full.groups()
                path = path if path.startswith("plugins/") else f"tests/{path}"
                last = (f"{path}::{test}", row)
                ids.append(last[0] + (row or ""))
            elif last and re.fullmatch(r"\[[^\]]+\]", token) and token != "[...]":
                last = (last[0], token)
                ids.append(last[0] + token)
            elif last and last[1] and re.fullmatch(r"-\S+", token):
                stem = last[1][: last[1].rindex("-")]
                stem = stem[:-1] if stem.endswith("-") else stem  # the value was negative: `x--1`
                ids.append(f"{last[0]}{stem}{token}]")
    return ids


def _missing(cited: list[str], collected: set[str]) -> list[str]:
    functions = {re.sub(r"\[.*\]$", "", nodeid) for nodeid in collected}
    return [i for i in cited if i not in collected and i not in functions]


def test_every_test_id_in_reliability_md_exists(request: pytest.FixtureRequest) -> None:
    cited = cited_ids((ROOT / "docs" / "reliability.md").read_text(encoding="utf-8"))
    assert len(cited) > 100, "the parser found too few ids: has the doc's format changed?"
    # The whole suite's run has collected every test already: found there, nothing to collect again (a second
    # collection of the suite costs 10-20 s). A run of fewer tests, or an id not found, asks a fresh collection.
    if not _missing(cited, {item.nodeid for item in request.session.items}):
        return
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "tests", "plugins"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    missing = _missing(cited, {line for line in done.stdout.splitlines() if "::" in line})
    assert not missing, f"docs/reliability.md cites tests that do not exist: {missing}"
