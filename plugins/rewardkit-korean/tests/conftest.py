"""Shared fixtures for the rewardkit-korean tests."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

PLUGIN_ROOT = Path(__file__).resolve().parents[1]

# The pure-logic tests must run before `pip install ./plugins/rewardkit-korean`; the discovery tests check
# the installed distribution through its entry point, so this fallback cannot make them pass by accident.
if importlib.util.find_spec("rewardkit_korean") is None:
    sys.path.insert(0, str(PLUGIN_ROOT / "src"))


@pytest.fixture
def sample_items() -> list[dict]:
    from korean_testdata import load_sample

    return load_sample()


@pytest.fixture(scope="session")
def tiny_korean_bert(tmp_path_factory) -> Path:
    """A tiny random BERT (rewardkit.core.tiny) whose vocabulary holds the sample's Hangul syllables; no network."""
    tiny = pytest.importorskip("rewardkit.core.tiny")
    from korean_testdata import load_sample

    chars = sorted({ch for item in load_sample() for ch in item["output"]["answer"] if "가" <= ch <= "힣"})
    return tiny.save_tiny_bert(tmp_path_factory.mktemp("tiny_korean_bert"), words=chars)
