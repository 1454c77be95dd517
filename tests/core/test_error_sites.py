"""Error sites build their errors from parts: no rewardkit error is constructed with a hand-written ' Hint: '.

`python tests/core/test_error_sites.py` prints the counts (error sites with a 'Hint:' literal, sites passing
hint=, and other 'Hint:' strings: warnings, log lines, plain Python exceptions, constants).
"""

from __future__ import annotations

import ast
import sys
from collections import Counter
from pathlib import Path

import pytest

import rewardkit
from rewardkit import ConfigError, DataError, UnknownNameError
from rewardkit.core.errors import Where

ROOT = Path(__file__).resolve().parents[2]
SOURCES = (ROOT / "src" / "rewardkit", ROOT / "plugins" / "rewardkit-korean" / "src")
ERRORS = frozenset(
    {
        "RewardkitError",
        "ConfigError",
        "DataError",
        "RewardError",
        "ExpressionError",
        "UnknownNameError",
        "AmbiguousNameError",
        "WorkerDied",
    }
)


def _called_name(call: ast.Call) -> str | None:
    func = call.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def _literal_texts(node: ast.AST) -> list[str]:
    """The literal text pieces of a message expression (strings, f-string text, `+` and `%` operands)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr):
        return [t for v in node.values for t in _literal_texts(v)]
    if isinstance(node, ast.BinOp):
        return _literal_texts(node.left) + _literal_texts(node.right)
    return []


def _files() -> list[Path]:
    return sorted(p for source in SOURCES for p in source.rglob("*.py"))


def scan() -> tuple[list[str], list[str], Counter[str]]:
    """(error sites whose message literal holds 'Hint:', error sites passing hint=, other 'Hint:' strings by kind)."""
    literal_sites: list[str] = []
    hint_sites: list[str] = []
    others: Counter[str] = Counter()
    for path in _files():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        where = path.relative_to(ROOT)
        in_error_message: set[int] = set()
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and _called_name(node) in ERRORS):
                continue
            if any(k.arg == "hint" for k in node.keywords):
                hint_sites.append(f"{where}:{node.lineno}")
            if node.args and any("Hint:" in t for t in _literal_texts(node.args[0])):
                literal_sites.append(f"{where}:{node.lineno}")
                in_error_message.update(id(n) for n in ast.walk(node.args[0]))
        docstrings = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr)}
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
        owner_of = {id(sub): call for call in calls for arg in call.args for sub in ast.walk(arg)}
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str) and "Hint:" in node.value):
                continue
            if id(node) in in_error_message or id(node) in docstrings:
                continue
            call = owner_of.get(id(node))
            others[_called_name(call) or "?" if call is not None else "constant or other expression"] += 1
    return literal_sites, hint_sites, others


def test_no_rewardkit_error_is_built_from_a_hand_written_hint() -> None:
    literal_sites, _, _ = scan()
    assert not literal_sites, (
        "build these errors from parts: ConfigError('problem.', hint='the fix') — render() writes ' Hint: ': "
        + ", ".join(literal_sites)
    )


def test_the_scan_finds_a_hand_written_hint(tmp_path, monkeypatch):
    bad = tmp_path / "bad.py"
    bad.write_text('raise ConfigError(f"x {y}. "\n    "Hint: z.")\nConfigError("ok.", hint="z.")\n', encoding="utf-8")
    monkeypatch.setattr(sys.modules[__name__], "_files", lambda: [bad])
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    literal_sites, hint_sites, _ = scan()
    assert literal_sites == ["bad.py:1"] and hint_sites == ["bad.py:3"]


# --- parts of real errors, raised through public paths: tests read fields, not message text -----------------


def test_a_bad_parameter_names_its_owner_and_field():
    with pytest.raises(ConfigError) as info:
        rewardkit.get_reward("exact_match", nope=1)
    exc = info.value
    assert exc.where == Where(owner="reward 'exact_match'", path="nope")
    assert exc.problem.startswith("unknown key. Valid keys: ") and "casefold" in exc.problem
    assert exc.hint == "`rewardkit list --json` shows every parameter with its type and default."


def test_an_unknown_name_carries_the_kinds_install_hint():
    with pytest.raises(UnknownNameError) as info:
        rewardkit.get_reward("exact_matc")
    exc = info.value
    assert exc.problem.startswith("Unknown reward 'exact_matc'. Did you mean 'exact_match'? Available: ")
    assert exc.hint == "Install a plugin that provides it (pip install <plugin>) or check `rewardkit list`."


def test_compose_a_bad_weight_is_located_at_its_field():
    with pytest.raises(ConfigError) as info:
        rewardkit.compose({"rewards": {"a": {"use": "exact_match", "weight": -1}}})
    exc = info.value
    assert exc.where == Where(owner="spec", path="rewards.a.weight")
    assert exc.problem == "-1 is not a finite number >= 0." and exc.hint.startswith("for a penalty write it")
    with pytest.raises(ConfigError) as none:
        rewardkit.compose({"rewards": {"a": {"use": "exact_match"}}, "none": "zer"})
    assert none.value.where.path == "none" and none.value.problem == "'zer' is not valid. Did you mean 'zero'?"
    assert none.value.hint == "none: zero | propagate."


def test_compose_adds_the_alias_as_context_to_a_callables_error():
    def two(a, b):  # no **kwargs: TRL passes more
        return [1.0]

    with pytest.raises(ConfigError) as info:
        rewardkit.compose({"rewards": {"a": {"use": two}}})
    exc = info.value
    assert exc.context == ("spec: rewards.a",) and exc.where == Where()
    assert exc.problem.startswith("reward 'two': does not accept **kwargs")
    assert exc.hint is not None and exc.hint.startswith("def my_reward(completions, **kwargs)")


def test_train_config_errors_carry_owner_path_and_hint():
    from rewardkit.train.config import CONFIG_HINT, load_stages

    with pytest.raises(ConfigError) as info:
        load_stages({"stage": "sft", "model": "x", "dataset": {"path": "d.jsonl"}, "lr": 1})
    exc = info.value
    assert exc.where == Where(owner="config", path="lr") and exc.hint == CONFIG_HINT
    assert exc.problem.startswith("unknown key. Valid keys: stage, name, model")
    with pytest.raises(ConfigError) as key:
        load_stages({True: 1})  # YAML 1.1 read an unquoted `on:` as True
    assert key.value.context == ("config",) and key.value.hint == 'quote it, e.g. "on": ...'
    assert key.value.problem.startswith("the config: key True is not text")
    with pytest.raises(ConfigError) as ref:
        load_stages({"pipeline": [{"stage": "sft", "model": "@nope", "dataset": {"path": "d.jsonl"}}]})
    assert ref.value.problem == "config: pipeline.0.model '@nope' does not name an earlier stage."
    assert ref.value.hint == "earlier stages are none."


def test_a_failed_write_adds_the_path_as_context(tmp_path):
    from rewardkit.core.fileio import atomic_write_json

    with pytest.raises(DataError) as info:
        atomic_write_json(tmp_path / "x.json", {"a": float("nan")})
    exc = info.value
    assert exc.context == (f"{tmp_path / 'x.json'}: cannot write",)
    assert exc.problem == "the value at $.a is NaN or Infinity, which strict JSON cannot hold."
    assert exc.hint == "replace it with None or a finite number."
    with pytest.raises(DataError) as folder:
        rewardkit.read_text(tmp_path)
    assert folder.value.problem == f"{tmp_path}: is a directory, not a file."
    assert folder.value.hint == "pass a readable JSON/JSONL file (check the path)."


if __name__ == "__main__":
    literal, with_hint, other = scan()
    print(f"rewardkit error sites with a 'Hint:' literal: {len(literal)}")
    print(f"rewardkit error sites passing hint=: {len(with_hint)}")
    print(f"other 'Hint:' strings: {sum(other.values())} {dict(other.most_common())}")
    if "-v" in sys.argv:
        print("\n".join(literal))
