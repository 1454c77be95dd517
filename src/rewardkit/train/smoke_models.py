"""The tiny local models of `rewardkit train --smoke`, built once per alphabet and kept in a cache, and the reward
specs with their models (and judges) swapped for them.

Cache: `$REWARDKIT_CACHE/smoke`, else `$XDG_CACHE_HOME/rewardkit/smoke`, else `~/.cache/rewardkit/smoke`; one
folder per model kind and alphabet (`lm-<hash>`, `bert-<hash>`, `rm-<hash>`), built in a temporary folder and
renamed into place, so concurrent runs and interrupted builds never leave a half-written model behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable

from rewardkit.core.fileio import atomic_write_json, ensure_dir, make_temp_dir
from rewardkit.core.tiny import make_tiny
from rewardkit.core.tiny_bert import save_tiny_bleurt
from rewardkit.models import spec_models, spec_servers
from rewardkit.train.preflight import load_spec_quietly

TINY_LM: dict[str, Any] = {"hidden_size": 32, "num_layers": 2, "num_heads": 4}
TINY_BERT = {"hidden_size": 32, "num_layers": 2}
CACHE_FORMAT = 1  # bump when the tiny models change: old cache entries are then simply not used
DONE = "rewardkit-smoke.json"


def cache_dir() -> Path:
    """Where the tiny smoke models are kept."""
    if os.environ.get("REWARDKIT_CACHE"):
        return Path(os.environ["REWARDKIT_CACHE"]).expanduser() / "smoke"
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()
    return base / "rewardkit" / "smoke"


# --- tiny models, built once per alphabet -----------------------------------------------------------------------
def _key(kind: str, chars: str, sizes: dict) -> str:
    raw = json.dumps({"format": CACHE_FORMAT, "kind": kind, "chars": chars, **sizes}, sort_keys=True)
    return f"{kind}-{hashlib.sha256(raw.encode('utf-8')).hexdigest()[:12]}"


def _cached(name: str, build: Callable[[Path], Any]) -> Path:
    """`<cache>/<name>`, built by `build(folder)` into a temporary folder and renamed into place (atomic)."""
    root = cache_dir()
    final = root / name
    if (final / DONE).is_file():
        return final
    ensure_dir(root)
    tmp = make_temp_dir(root, f".{name}-")
    try:
        build(tmp)
        atomic_write_json(tmp / DONE, {"name": name, "format": CACHE_FORMAT})
        try:
            os.rename(tmp, final)
        except OSError:  # another process finished first, or a broken leftover is in the way
            if not (final / DONE).is_file():
                shutil.rmtree(final, ignore_errors=True)
                os.rename(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def tiny_lm(chars: str) -> Path:
    """A tiny Qwen2 causal LM whose tokenizer has one token per character of `chars` (beyond ASCII)."""
    return _cached(_key("lm", chars, TINY_LM), lambda p: make_tiny(p, "lm", chars, **TINY_LM))


def tiny_bert(chars: str) -> Path:
    """A tiny BERT for BERTScore whose vocabulary also holds the letters of `chars`."""
    letters = "".join(c for c in chars if c.isalnum())
    return _cached(
        _key("bert", letters, TINY_BERT),
        lambda p: make_tiny(
            p, "bert", letters, hidden_size=TINY_BERT["hidden_size"], num_layers=TINY_BERT["num_layers"]
        ),
    )


def tiny_bleurt(chars: str) -> Path:
    """A tiny BLEURT checkpoint (bleurt-pytorch format) whose SentencePiece vocabulary has the letters of `chars`."""
    letters = "".join(c for c in chars if c.isalnum())
    return _cached(
        _key("bleurt", letters, TINY_BERT),
        lambda p: save_tiny_bleurt(
            p, text=" ".join(letters), hidden_size=TINY_BERT["hidden_size"], num_layers=TINY_BERT["num_layers"]
        ),
    )


def tiny_reward_model(chars: str) -> Path:
    """A tiny Qwen2 sequence classifier (one logit) with the tiny LM's tokenizer."""

    return _cached(_key("rm", chars, TINY_LM), lambda p: make_tiny(p, "classifier", chars, **TINY_LM))


TINY_NAMES = {"lm": "causal LM", "bert": "BERT", "bleurt": "BLEURT", "rm": "reward model", "classifier": "reward model"}


class Tiny:
    """The tiny models of one smoke run, built on first use."""

    def __init__(self, chars: str) -> None:
        self.chars = chars
        self._paths: dict[str, Path] = {}

    def get(self, kind: str) -> str:
        if kind not in self._paths:
            self._paths[kind] = {
                "lm": tiny_lm,
                "bert": tiny_bert,
                "bleurt": tiny_bleurt,
                "rm": tiny_reward_model,
                "classifier": tiny_reward_model,
            }[kind](self.chars)
        return str(self._paths[kind])


# --- reward specs -----------------------------------------------------------------------------------------------------
def swap_spec(spec: Any, key: str, label: str, tiny: Tiny, notes: list[str]) -> Any:
    """The compose spec with hub-only reward models replaced by tiny local ones (the spec itself if none).

    Every parameter marked `ModelRef` is swapped the way its marker says (`tiny`: the stand-in, `smoke`: the
    parameters set with it); `@stage` references and local folders stay. A reward that calls a server and can
    stand in offline (`judge`) gets `offline_stand_in: true`.
    """
    parsed = load_spec_quietly(spec)
    if parsed is None:
        return spec
    changed = False
    for m in spec_models(parsed):
        if m.stage is not None or Path(m.value).expanduser().is_dir():
            continue
        entry = parsed.rewards[m.alias]
        if m.ref.tiny is None:
            entry.pop(m.field, None)
            notes.append(f"stage {label}: {key}.{m.alias}.{m.field} {m.value} -> the tiny stand-in's own")
        else:
            entry[m.field] = tiny.get(m.ref.tiny)
            notes.append(
                f"stage {label}: {key}.{m.alias}.{m.field} {m.value} -> tiny local {TINY_NAMES[m.ref.tiny]} "
                f"({entry[m.field]})"
            )
        for param, value in m.ref.smoke:
            if value is None:
                entry.pop(param, None)
            else:
                entry[param] = value
        changed = True
    for alias, url in spec_servers(parsed):  # a judge: no server in a smoke run
        parsed.rewards[alias]["offline_stand_in"] = changed = True
        notes.append(
            f"stage {label}: {key}.{alias} judge at {url} -> offline stand-in (replies from a hash of each request)"
        )
    return parsed.to_dict() if changed else spec
