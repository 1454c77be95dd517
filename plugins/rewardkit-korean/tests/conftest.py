"""Shared fixtures for the rewardkit-korean tests."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

PLUGIN_ROOT = Path(__file__).resolve().parents[1]

# The pure-logic tests must run before `pip install ./plugins/rewardkit-korean`; the discovery tests check
# the installed distribution through its entry point, so this fallback cannot make them pass by accident.
if importlib.util.find_spec("rewardkit_korean") is None:
    sys.path.insert(0, str(PLUGIN_ROOT / "src"))

SAMPLE = PLUGIN_ROOT / "src" / "rewardkit_korean" / "data" / "sample.jsonl"


def load_sample() -> list[dict]:
    """The shipped sample items, in competition format."""
    return [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture
def sample_items() -> list[dict]:
    return load_sample()


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    """A tiny random BERT saved locally (rewardkit.tiny), for BERTScore without network."""
    tiny = pytest.importorskip("rewardkit.tiny")
    path = tmp_path_factory.mktemp("tiny-bert")
    tiny.save_tiny_bert(path)
    return path
