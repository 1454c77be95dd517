"""Hostile inputs and faults (issue 11, sections 4 and 5, plus YAML/JSON/TOML spec files): one table, one test.

Each row of ROWS is a worst-case input a user (or a plugin) can give, and what rewardkit must answer: a clear
rewardkit error (one line, naming the field, component, reward or plugin), or a documented value (`None` for
"not applicable"). Every row failed on the behaviour the issue describes (checked against the code before the
fixes). `test_guards_do_not_overreach` holds what the checks must leave alone (NaN is None, numpy numbers are
numbers, Ctrl-C still ends the program). docs/reliability.md points at these ids.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
import textwrap
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

import rewardkit
from rewardkit import (
    ConfigError,
    DataError,
    ExpressionError,
    Reward,
    RewardError,
    RewardkitError,
    RewardParams,
    UnknownNameError,
    compose,
    get_reward,
    get_view,
    hookimpl,
)
from rewardkit.composition import expr
from rewardkit.composition.composed import Composed
from rewardkit.core import plugins
from rewardkit.core.specs import load_file, parse_yaml
from rewardkit.rewards.function_rewards import FunctionReward

NAN = float("nan")
INF = float("inf")


# --- module-level rewards and plugins (a timeout worker process imports them by name) ----------------------------
def dies(completions, **kwargs):
    """Ends its process like a segfault or the OOM killer would."""
    os._exit(7)


def exits(completions, **kwargs):
    sys.exit(3)


def _returns(value_for: Callable[[int], Any]) -> Callable:
    def reward(completions, **kwargs):
        return value_for(len(completions))

    return reward


# A plugin's rewards returning what TRL would choke on (or, worse, silently accept).
BAD_OUTPUTS = {
    "hk_short": lambda n: [1.0] * (n - 1),
    "hk_long": lambda n: [1.0] * (n + 1),
    "hk_str": lambda n: ["1.0"] * n,
    "hk_bool": lambda n: [True] * n,
    "hk_inf": lambda n: [INF] * n,
    "hk_neg_inf": lambda n: [-INF] * n,
    "hk_np_str": lambda n: [np.str_("1.0")] * n,
    "hk_np_bool": lambda n: [np.True_] * n,
    "hk_complex": lambda n: [np.complex128(1 + 2j)] * n,
    "hk_huge_int": lambda n: [10**400] * n,
    "hk_not_a_list": lambda n: None,
    "hk_dict": lambda n: {i: 1.0 for i in range(n)},
    "hk_nan": lambda n: [NAN] * n,  # documented: NaN is None ("not applicable")
    "hk_np_float": lambda n: [np.float32(0.5)] * n,  # numpy numbers are numbers
}


class RawOutput(Reward):
    """A plugin reward that overrides __call__ (no base-class checks): only compose stands between it and TRL."""

    name = "hk_raw"

    class Params(RewardParams):
        output: str

    def __call__(self, completions=None, **kwargs):
        return BAD_OUTPUTS[self.params.output](len(completions))


class OutputsPlugin:
    @hookimpl
    def register_rewards(self, register):
        register("hk_raw", RawOutput)
        for name, value_for in BAD_OUTPUTS.items():  # the same outputs from plain TRL-style functions
            func = _returns(value_for)
            func.__name__ = name
            register(name, func)


class HookPlugin:
    """A plugin whose register_rewards hook runs `action(register)`; its views hook always works."""

    def __init__(self, action: Callable) -> None:
        self.action = action

    @hookimpl
    def register_rewards(self, register):
        self.action(register)

    @hookimpl
    def register_views(self, register):
        register("hk_upper", lambda: str.upper)


class ViewFactoryPlugin:
    @hookimpl
    def register_views(self, register):
        register("hk_builds_5", lambda: 5)
        register("hk_exits_on_build", lambda: sys.exit(2))
        register("hk_lazy_exits", "hk_lazy_exit_mod:View")


class Boom(BaseException):
    """Not an Exception: a plugin raising it must still be one failing plugin, not the end of the program."""


def _raise(exc: BaseException) -> Callable:
    def action(register):
        raise exc

    return action


class NotAModel:
    Params = 5

    def __call__(self, **kwargs):
        return [1.0]


# --- the table's machinery --------------------------------------------------------------------------------------
@dataclass
class Ctx:
    tmp: Path
    monkeypatch: pytest.MonkeyPatch
    capsys: pytest.CaptureFixture
    cleanups: list

    def write(self, name: str, text: str) -> Path:
        path = self.tmp / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    def write_bytes(self, name: str, data: bytes) -> Path:
        path = self.tmp / name
        path.write_bytes(data)
        return path

    def mkdir(self, name: str) -> Path:
        path = self.tmp / name
        path.mkdir()
        return path

    def plugins(self, entry_points: Any = None) -> plugins.Plugins:
        """This row's own plugin manager (built-ins and the given entry points), active until the row ends."""
        own = plugins.Plugins(entry_points=entry_points)
        context = plugins.using(own)
        context.__enter__()
        self.cleanups.append(lambda: context.__exit__(None, None, None))
        return own

    def plugin(self, obj: Any, name: str) -> None:
        own = plugins.active()
        if own is plugins.DEFAULT:
            own = self.plugins()
        if not own.pm.has_plugin(name):
            own.register(obj, name=name, source=name)

    def entry_points(self, modules: dict[str, str]) -> None:
        """Plugins found through entry points: {distribution: module source}; a fresh plugin manager."""
        eps = []
        for dist, source in modules.items():
            module = dist.replace("-", "_")
            self.write(f"{module}.py", source)
            self.cleanups.append(lambda m=module: sys.modules.pop(m, None))
            eps.append(
                SimpleNamespace(
                    name=module,
                    module=module,
                    dist=SimpleNamespace(name=dist),
                    load=lambda m=module: importlib.import_module(m),
                )
            )
        self.monkeypatch.syspath_prepend(str(self.tmp))
        self.plugins(entry_points=lambda: eps)


@dataclass(frozen=True)
class Row:
    id: str
    run: Callable[[Ctx], Any]
    expect: Callable[[Callable[[], Any]], None]


def raises(exc: type[BaseException], match: str) -> Callable:
    def check(call):
        with pytest.raises(exc, match=match) as info:
            call()
        if isinstance(info.value, RewardkitError):  # the CLI prints it as one line
            assert "\n" not in str(info.value), str(info.value)

    return check


def returns(expected: Any) -> Callable:
    def check(call):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a documented value comes without a warning
            assert call() == expected

    return check


def warns(match: str, expected: Any) -> Callable:
    def check(call):
        with pytest.warns(RuntimeWarning, match=match):
            assert call() == expected

    return check


def fast(seconds: float, inner: Callable) -> Callable:
    def check(call):
        start = time.perf_counter()
        inner(call)
        assert time.perf_counter() - start < seconds

    return check


def em(**columns) -> Callable[[Ctx], Any]:
    return lambda c: get_reward("exact_match")(**columns)


def spec(rewards: dict, **top) -> dict:
    return {"rewards": rewards, **top}


BREVITY = {"use": "brevity", "max_length": 10}


def use_output(name: str, n: int = 2, raw: bool = True) -> Callable[[Ctx], Any]:
    """Compose a plugin reward returning BAD_OUTPUTS[name] (raw: a Reward overriding __call__; else a function)."""

    def run(c):
        c.plugin(OutputsPlugin(), "hk-outputs")
        component = {"use": "hk_raw", "output": name} if raw else {"use": name}
        composed = compose(spec({"p": component, "em": "exact_match"}))
        return composed(completions=["a"] * n, answer=["a"] * n)

    return run


def hook(action: Callable, check: Callable[[Any], Any] | None = None) -> Callable[[Ctx], Any]:
    """Register a plugin whose hook runs `action`; return (failed plugin errors, stderr), after `check(registry)`."""

    def run(c):
        c.plugin(HookPlugin(action), "hk-plugin")
        names = {r["name"] for r in rewardkit.list_rewards()}
        assert {"exact_match", "brevity"} <= names  # the built-ins (and every other plugin) still work
        assert get_reward("exact_match")(completions=["a"], answer=["a"]) == [1.0]
        assert get_view("hk_upper")("a") == "A"  # the same plugin's other hook still registered
        if check is not None:
            check(plugins.get_registry())
        failed = [f.error for f in plugins.get_registry().failed if f.name == "hk-plugin"]
        return failed, c.capsys.readouterr().err

    return run


def failed_with(pattern: str) -> Callable:
    def check(call):
        failed, err = call()
        assert len(failed) == 1 and re.search(pattern, failed[0]), failed
        assert re.search(rf"plugin hk-plugin .*failed in register_rewards: .*{pattern}", err), err

    return check


def entry_point_plugins(modules: dict[str, str]) -> Callable[[Ctx], Any]:
    def run(c):
        c.entry_points(modules)
        names = {r["name"] for r in rewardkit.list_rewards()}
        failed = {f.name: f.error for f in plugins.get_registry().failed}
        return names, failed, c.capsys.readouterr().err

    return run


GOOD_PLUGIN = """
from rewardkit import hookimpl

def hk_good(completions, **kwargs):
    return [1.0] * len(completions)

@hookimpl
def register_rewards(register):
    register("hk_good", hk_good)
"""


def good_and_failed(dist: str, pattern: str) -> Callable:
    def check(call):
        names, failed, err = call()
        assert {"hk_good", "exact_match", "brevity"} <= names, names
        assert dist in failed and re.search(pattern, failed[dist]), failed
        assert re.search(rf"plugin {dist} .*failed to load: .*{pattern}", err), err

    return check


def bomb(levels: int, width: int = 9, small: bool = False) -> str:
    """The issue's alias bomb: `width ** levels` views from a few hundred bytes, all inside `completion_view`."""
    view = "&a0 [" + ", ".join(["boxed"] * width) + "]"
    for i in range(1, levels):  # each level: its first item defines the anchor the others repeat
        view = f"&a{i} [{view}, " + ", ".join([f"*a{i - 1}"] * (width - 1)) + "]"
    text = f"rewards:\n  em: {{use: exact_match, completion_view: {view}}}\n"
    assert not small or len(text) < 600, len(text)  # the was 369 bytes
    return text


def nested_views(depth: int) -> Any:
    value: Any = "boxed"
    for _ in range(depth):
        value = [value]
    return value


def timeout_reward(func: Callable, **params) -> Callable[[Ctx], Any]:
    return lambda c: FunctionReward(func, timeout=30, **params)(completions=["a", "b"])


# --- the table ----------------------------------------------------------------------------------------------------
ROWS = [
    # 4. A NaN / missing reference is None in every reward, never the text "nan".
    Row("nan-reference-exact_match", em(completions=["nan", "nan"], answer=[NAN, None]), returns([None, None])),
    Row("nan-reference-numpy-float32", em(completions=["nan"], answer=[np.float32("nan")]), returns([None])),
    Row("nan-reference-in-a-list", em(completions=["nan"], answer=[[NAN, None]]), returns([None])),
    Row("nan-reference-rouge1", lambda c: get_reward("rouge1")(completions=["nan"], answer=[NAN]), returns([None])),
    Row(
        "nan-reference-plugin-reward",
        lambda c: (
            pytest.importorskip("rewardkit_korean"),
            get_reward("korean_qa_exact_match")(completions=["nan"], answer=[NAN]),
        )[1],
        returns([None]),
    ),
    Row("numpy-integer-reference-is-a-number", em(completions=["5"], answer=[np.int64(5)]), returns([1.0])),
    Row(
        "infinite-reference-is-an-error",
        em(completions=["inf"], answer=[INF]),
        raises(DataError, r"column 'answer', row 0: the number inf cannot be a reference"),
    ),
    Row(
        "huge-integer-reference-is-an-error",
        em(completions=["1"], answer=[10**5000]),
        raises(DataError, r"row 0: the number with \d+ bits cannot be a reference"),
    ),
    # 4. Every component's output is checked in compose: list, length, float-or-None, finite; errors name it.
    Row(
        "component-returns-n-1-scores",
        use_output("hk_short"),
        raises(RewardError, r"Component 'p' returned 1 scores for 2 completions"),
    ),
    Row("component-returns-n+1-scores", use_output("hk_long"), raises(RewardError, r"'p' returned 3 scores for 2")),
    Row("component-returns-string", use_output("hk_str"), raises(RewardError, r"'p' returned '1.0' \(str\)")),
    Row("component-returns-bool", use_output("hk_bool"), raises(RewardError, r"'p' returned True \(bool\)")),
    Row("component-returns-inf", use_output("hk_inf"), raises(RewardError, r"'p' returned inf .*must be finite")),
    Row("component-returns-minus-inf", use_output("hk_neg_inf"), raises(RewardError, r"'p' returned -inf")),
    Row("component-returns-numpy-string", use_output("hk_np_str"), raises(RewardError, r"'p' returned .*\(str_\)")),
    Row("component-returns-numpy-bool", use_output("hk_np_bool"), raises(RewardError, r"'p' returned .*\(bool_?\)")),
    Row("component-returns-complex", use_output("hk_complex"), raises(RewardError, r"'p' returned .*complex128")),
    Row(
        "component-returns-int-beyond-float",
        use_output("hk_huge_int"),
        raises(RewardError, r"'p' returned an integer too large"),
    ),
    Row(
        "component-returns-none-not-a-list",
        use_output("hk_not_a_list"),
        raises(RewardError, r"Component 'p' returned NoneType, not a list"),
    ),
    Row("component-returns-dict", use_output("hk_dict"), raises(RewardError, r"Component 'p' returned dict")),
    Row(
        "function-reward-returns-numpy-string",
        use_output("hk_np_str", raw=False),
        raises(RewardError, r"Reward 'p' returned .*\(str_\)"),
    ),
    Row(
        "function-reward-returns-int-beyond-float",
        use_output("hk_huge_int", raw=False),
        raises(RewardError, r"Reward 'p' returned an integer too large"),
    ),
    Row(
        "raw-callable-component-short-list",
        lambda c: Composed({"raw": lambda **kw: [1.0]}, expr.parse("raw", {"raw"}))(completions=["a", "b"]),
        raises(RewardError, r"Component 'raw' returned 1 scores for 2 completions"),
    ),
    # 4. Overflow in combine is an error (row scores are finite); a constant that overflows is refused up front.
    Row(
        "combine-overflow-linear",
        lambda c: compose(spec({"a": BREVITY, "b": "exact_match"}, combine="1e308*a + 1e308*b"))(
            completions=["a"], answer=["a"]
        ),
        raises(RewardError, r"combine '1e308\*a \+ 1e308\*b' overflowed"),
    ),
    Row(
        "combine-overflow-nonlinear-inf-minus-inf",
        lambda c: compose(
            spec({"a": BREVITY, "b": "exact_match"}, combine="max(1e308*a + 1e308*b - (1e308*a + 1e308*b), 0)")
        )(completions=["a"], answer=["a"]),
        raises(RewardError, r"overflowed"),
    ),
    Row(
        "combine-overflow-in-min-max-clip",
        lambda c: compose(spec({"a": BREVITY, "b": "exact_match"}, combine="clip(1e308*a * 10*b, 0, 1)"))(
            completions=["a"], answer=["a"]
        ),
        raises(RewardError, r"overflowed"),
    ),
    Row(
        "combine-constant-overflows",
        lambda c: compose(spec({"a": BREVITY}, combine="1e200*1e200*a")),
        raises(ExpressionError, r"constant part that overflows"),
    ),
    Row(
        "combine-weight-multiplies-out-to-inf",
        lambda c: compose(spec({"a": BREVITY}, combine="1e200*(1e200*a)")),
        raises(ExpressionError, r"weight that is not a finite number"),
    ),
    Row(
        "combine-integer-literal-beyond-float",
        lambda c: compose(spec({"a": BREVITY}, combine="1" * 400 + "*a")),
        raises(ExpressionError, r"number too large for a float"),
    ),
    # 4. Parameters accepted too loosely: each is a clear error at construction.
    Row(
        "completions-a-string",
        em(completions="abc", answer=["a"] * 3),
        raises(
            DataError,
            r"completions must be a "
            "list .*got str",
        ),
    ),
    Row("completions-bytes", em(completions=b"abc", answer=["a"] * 3), raises(DataError, r"got bytes")),
    Row(
        "completions-a-generator",
        em(completions=(x for x in "ab"), answer=["a"] * 2),
        raises(DataError, r"got generator"),
    ),
    Row(
        "max_length-true",
        lambda c: get_reward("brevity", max_length=True),
        raises(ConfigError, r"reward 'brevity': max_length: .*valid integer \(got True\)"),
    ),
    Row(
        "max_length-string",
        lambda c: get_reward("brevity", max_length="5"),
        raises(ConfigError, r"max_length: .*valid integer \(got '5'\)"),
    ),
    Row(
        "max_length-float",
        lambda c: get_reward("brevity", max_length=5.0),
        raises(ConfigError, r"max_length: .*valid integer \(got 5.0\)"),
    ),
    Row(
        "weight-null",
        lambda c: compose(spec({"a": {**BREVITY, "weight": None}})),
        raises(ConfigError, r"rewards\.a\.weight: None is not a finite number"),
    ),
    *[
        Row(
            f"format_regex-regex_timeout-{v}",
            lambda c, v=v: get_reward("format_regex", pattern="a", regex_timeout=v),
            raises(ConfigError, r"reward 'format_regex': regex_timeout: "),
        )
        for v in (INF, 1e308, 0, -1, NAN, True)
    ],
    *[
        Row(
            f"regex-view-regex_timeout-{v}",
            lambda c, v=v: get_view("regex", pattern="(a)", regex_timeout=v),
            raises(ConfigError, r"view 'regex': regex_timeout: "),
        )
        for v in (-1, NAN, 0, INF, 1e308)
    ],
    Row(
        "regex-view-timeout-in-a-reward-spec",
        lambda c: compose(
            spec(
                {
                    "e": {
                        "use": "exact_match",
                        "completion_view": {"view": "regex", "pattern": "(a)", "regex_timeout": -1},
                    }
                }
            )
        ),
        raises(ConfigError, r"rewards\.e \(reward 'exact_match'\)\.completion_view \(view 'regex'\): regex_timeout"),
    ),
    *[
        Row(
            f"reward-timeout-{v}",
            lambda c, v=v: get_reward("brevity", max_length=5, timeout=v),
            raises(ConfigError, r"reward 'brevity': timeout: "),
        )
        for v in (INF, 1e308, 0, -1, NAN, True)
    ],
    Row(
        "combine-a/0",
        lambda c: compose(spec({"a": BREVITY}, combine="a/0")),
        raises(ExpressionError, r"divides by a constant zero"),
    ),
    Row(
        "combine-a/(1-1)",
        lambda c: compose(spec({"a": BREVITY}, combine="a/(1-1)")),
        raises(ExpressionError, r"divides by a constant zero"),
    ),
    Row(
        "combine-constant-0/0-inside-max",
        lambda c: compose(spec({"a": BREVITY}, combine="max(a, 0/0)")),
        raises(ExpressionError, r"divides by a constant zero"),
    ),
    Row(
        "combine-5",
        lambda c: compose(spec({"a": BREVITY}, combine=5)),
        raises(ExpressionError, r"must be an expression string, got int"),
    ),
    Row(
        "combine-a-list",
        lambda c: compose(spec({"a": BREVITY}, combine=["a"])),
        raises(ExpressionError, r"must be an expression string, got list"),
    ),
    Row(
        "regex-view-named-group-missing",
        lambda c: get_view("regex", pattern="(?P<x>a)", group="y"),
        raises(ConfigError, r"group: 'y' is not a named group .*named: x"),
    ),
    Row(
        "regex-view-group-number-missing",
        lambda c: get_view("regex", pattern="(a)", group=2),
        raises(ConfigError, r"group: 2 does not exist .*1 groups"),
    ),
    Row("regex-view-group-true", lambda c: get_view("regex", pattern="(a)", group=True), raises(ConfigError, "group")),
    Row(
        "completion_ids-wrong-length",
        lambda c: get_reward("brevity", max_length=5, unit="tokens")(completions=["a", "b"], completion_ids=[[1]]),
        raises(DataError, r"completion_ids has 1 items for 2 completions"),
    ),
    Row(
        "completion_ids-wrong-length-hidden-by-a-view",  # one row without a view match must not hide it
        lambda c: get_reward("brevity", max_length=5, unit="tokens", completion_view="boxed")(
            completions=["x", r"\boxed{a}"], completion_ids=[[1]]
        ),
        raises(DataError, r"completion_ids has 1 items for 2 completions"),
    ),
    Row(
        "completion_ids-not-a-list",
        lambda c: get_reward("brevity", max_length=5, unit="tokens")(completions=["a"], completion_ids=3),
        raises(DataError, r"completion_ids is int, not a list"),
    ),
    Row(
        "view-chain-with-none",
        lambda c: get_view(["boxed", None]),
        raises(
            ConfigError,
            r"view\[1\]: expected a "
            "view name",
        ),
    ),
    Row(
        "view-chain-nested-3000-deep",
        lambda c: get_view(nested_views(3000)),
        raises(ConfigError, r"nested more than 8 deep"),
    ),
    # 4. A timeout worker that dies or cannot start: a RewardError naming the reward; on_error none/zero apply.
    Row(
        "worker-dies-on_error-raise",
        timeout_reward(dies),
        raises(RewardError, r"Reward 'dies': the worker process died \(exit code 7\)"),
    ),
    Row(
        "worker-dies-on_error-none",
        timeout_reward(dies, on_error="none"),
        warns(r"worker process died \(exit code 7\).*score None", [None, None]),
    ),
    Row(
        "worker-dies-on_error-zero",
        timeout_reward(dies, on_error="zero"),
        warns(r"worker process died \(exit code 7\).*score 0.0", [0.0, 0.0]),
    ),
    Row(
        "worker-dies-twice-each-call-starts-a-fresh-worker",
        lambda c: [
            (reward := FunctionReward(dies, timeout=30, on_error="none"))(completions=["a"]),
            reward(completions=["b"]),
            reward.error_count,
        ],
        warns(r"worker process died", [[None], [None], 2]),
    ),
    Row("reward-calls-sys-exit-in-worker-on_error-none", timeout_reward(exits, on_error="none"), returns([None, None])),
    Row(
        "worker-reward-not-picklable",
        lambda c: FunctionReward(lambda completions, **kw: [1.0], timeout=30)(completions=["a"]),
        raises(RewardError, r"cannot be sent to its worker process.*module level"),
    ),
    Row(
        "reward-calls-sys-exit-on_error-raise",
        lambda c: FunctionReward(exits)(completions=["a"]),
        raises(RewardError, r"Reward 'exits' failed on completion 0 .*SystemExit"),
    ),
    Row(
        "reward-calls-sys-exit-on_error-none",
        lambda c: FunctionReward(exits, on_error="none")(completions=["a"]),
        returns([None]),
    ),
    Row(
        "reward-calls-sys-exit-in-worker",
        timeout_reward(exits),
        raises(RewardError, r"Reward 'exits' failed in its worker process: SystemExit"),
    ),
    # 5. YAML alias bombs and deep documents: refused early, in well under a second.
    Row(
        "yaml-alias-bomb-9-deep-in-completion_view",
        lambda c: compose(str(c.write("bomb.yaml", bomb(9, small=True)))),
        fast(5, raises(ConfigError, r"bomb\.yaml: the document expands to more than 200000 values")),
    ),
    Row(
        "yaml-alias-bomb-through-mappings-and-merge-keys",
        lambda c: parse_yaml(
            "b0: &b0 {k0: 1, k1: 1, k2: 1, k3: 1, k4: 1, k5: 1, k6: 1, k7: 1, k8: 1, k9: 1}\n"
            + "".join(
                f"b{i}: &b{i} {{<<: *b{i - 1}, " + ", ".join(f"k{j}: *b{i - 1}" for j in range(10)) + "}\n"
                for i in range(1, 9)
            ),
            "w",
        ),
        fast(5, raises(ConfigError, r"expands to more than")),
    ),
    Row("yaml-recursive-alias", lambda c: parse_yaml("a: &a [*a]\n", "w"), raises(ConfigError, r"refers to itself")),
    Row(
        "yaml-nested-150-deep",
        lambda c: parse_yaml("a: " + "[" * 150 + "]" * 150, "w"),
        raises(ConfigError, r"nested deeper than 100"),
    ),
    Row(
        "yaml-nested-100k-deep",
        lambda c: parse_yaml("[" * 100_000 + "]" * 100_000, "w"),  # was minutes
        fast(1, raises(ConfigError, r"w: line 1: the document is nested deeper than 100 levels")),
    ),
    Row(
        "yaml-block-nested-150-deep",
        lambda c: parse_yaml("a:\n" + "".join("  " * i + "- \n" for i in range(1, 150)), "w"),
        raises(ConfigError, r"nested deeper than 100"),
    ),
    # 5. Duplicate keys are refused, naming the key and the line.
    Row(
        "yaml-duplicate-top-level-key",
        lambda c: load_file(c.write("d.yaml", "rewards:\n  em: exact_match\ncombine: em\ncombine: 2*em\n")),
        raises(ConfigError, r"d\.yaml: line 4: duplicate key 'combine' \(first at line 3\)"),
    ),
    Row(
        "yaml-duplicate-nested-key",
        lambda c: compose(str(c.write("d.yaml", "rewards:\n  em: {use: exact_match}\n  em: {use: brevity}\n"))),
        raises(ConfigError, r"line 3: duplicate key 'em' \(first at line 2\)"),
    ),
    Row(
        "yaml-duplicate-key-in-flow-mapping",
        lambda c: parse_yaml("a: {use: x, use: y}", "w"),
        raises(ConfigError, r"duplicate key 'use'"),
    ),
    Row(
        "yaml-duplicate-key-spelled-differently",
        lambda c: parse_yaml("1: a\n0x1: b\n", "w"),
        raises(ConfigError, r"line 2: duplicate key 1"),
    ),
    Row(
        "json-duplicate-key",
        lambda c: load_file(c.write("d.json", '{\n  "rewards": {"em": "exact_match"},\n  "rewards": {}\n}')),
        raises(ConfigError, r"d\.json: line 3: duplicate key 'rewards' \(first at line 2\)"),
    ),
    # 5 (YAML/JSON/TOML files): every hostile file is one ConfigError naming it; valid JSON is read as JSON.
    Row(
        "yaml-integer-over-4300-digits",
        lambda c: parse_yaml("max_length: " + "9" * 5000, "w"),
        raises(ConfigError, r"w: line 1: the integer 9+\.\.\. has 5000 digits"),
    ),
    Row(
        "toml-integer-over-4300-digits",
        lambda c: load_file(c.write("big.toml", "a = " + "9" * 5000)),
        raises(ConfigError, r"big\.toml: invalid TOML value"),
    ),
    Row(
        "json-integer-over-4300-digits",
        lambda c: load_file(c.write("big.json", '{"a": ' + "9" * 5000 + "}")),
        raises(ConfigError, r"big\.json: invalid JSON value"),
    ),
    Row(
        "yaml-nul-character",
        lambda c: parse_yaml('a: 1\nb: "x\x00"', "w"),
        raises(ConfigError, r"w:2: character U\+0000 is not allowed"),
    ),
    Row(
        "yaml-unhashable-key",
        lambda c: parse_yaml("? [a, b]\n: 1\n", "w"),
        raises(ConfigError, r"a mapping key must be a plain value"),
    ),
    Row(
        "yaml-not-utf8",
        lambda c: load_file(c.write_bytes("b.yaml", b"a: \xff")),
        raises(ConfigError, r"b\.yaml:1: not valid UTF-8"),
    ),
    Row("spec-path-is-a-directory", lambda c: load_file(c.mkdir("dir.yaml")), raises(ConfigError, r"is a directory")),
    Row(
        "yaml-exponent-without-dot-is-a-number",
        lambda c: parse_yaml("a: 1e-5\nb: 2.5E3\nc: 1.2.3\n", "w"),
        returns({"a": 1e-5, "b": 2500.0, "c": "1.2.3"}),
    ),
    Row(
        "json-exponent-is-a-number",
        lambda c: load_file(c.write("x.json", '{"weight": 1e-3, "n": 2E2}')),
        returns({"weight": 0.001, "n": 200.0}),
    ),
    Row(
        "json-indented-with-tabs",
        lambda c: load_file(c.write("t.json", '{\n\t"rewards": {\n\t\t"em": "x"\n\t}\n}')),
        returns({"rewards": {"em": "x"}}),
    ),
    Row(
        "json-surrogate-pair-escape",
        lambda c: load_file(c.write("s.json", '{"name": "\\ud83d\\ude00"}')),
        returns({"name": "\U0001f600"}),
    ),
    Row(
        "json-nan-token",
        lambda c: load_file(c.write("n.json", '{"weight": NaN}')),
        raises(ConfigError, r"n\.json: invalid JSON value \(NaN is not JSON"),
    ),
    Row(
        "json-syntax-error-names-line",
        lambda c: load_file(c.write("j.json", '{\n  "a": 1,\n}')),
        raises(ConfigError, r"j\.json:\d+:\d+: JSON syntax error"),
    ),
    Row(
        "json-nested-100k-deep",
        lambda c: load_file(c.write("deep.json", "[" * 100_000 + "]" * 100_000)),
        raises(ConfigError, r"deep\.json: the document is nested too deeply"),
    ),
    Row(
        "json-nested-150-deep",
        lambda c: load_file(c.write("d150.json", '{"a": ' + "[" * 150 + "]" * 150 + "}")),
        raises(ConfigError, r"nested deeper than 100"),
    ),
    Row(
        "toml-nested-100k-deep",
        lambda c: load_file(c.write("deep.toml", "a = " + "[" * 100_000 + "]" * 100_000)),
        raises(ConfigError, r"deep\.toml: the document is nested too deeply"),
    ),
    # 5. A plugin calling sys.exit() (or raising any non-Exception) at import or in a hook is one failed plugin.
    Row(
        "plugin-sys-exit-at-import",
        entry_point_plugins({"hk-exit": "import sys\nsys.exit(3)\n", "hk-good": GOOD_PLUGIN}),
        good_and_failed("hk-exit", r"SystemExit: the plugin called sys\.exit\(3\)"),
    ),
    Row(
        "plugin-sys-exit-no-code-at-import",
        entry_point_plugins({"hk-exit0": "import sys\nsys.exit()\n", "hk-good": GOOD_PLUGIN}),
        good_and_failed("hk-exit0", r"sys\.exit\(None\)"),
    ),
    Row(
        "plugin-base-exception-at-import",
        entry_point_plugins(
            {"hk-boom": "class Boom(BaseException):\n    pass\nraise Boom('bang')\n", "hk-good": GOOD_PLUGIN}
        ),
        good_and_failed("hk-boom", r"Boom: bang"),
    ),
    Row(
        "plugin-sys-exit-in-hook",
        hook(lambda register: sys.exit(4)),
        failed_with(r"SystemExit: the plugin called sys\.exit\(4\)"),
    ),
    Row("plugin-base-exception-in-hook", hook(_raise(Boom("bang"))), failed_with(r"Boom: bang")),
    # 5. A plugin registering a non-callable (or a bad name or params model) is refused at registration.
    Row(
        "plugin-registers-5",
        hook(
            lambda register: register("hk_five", 5),
            lambda reg: pytest.raises(UnknownNameError, reg.get, "rewards", "hk_five"),
        ),
        failed_with(r"plugin hk-plugin registered reward 'hk_five' as 5, which is not a class, a function"),
    ),
    Row(
        "plugin-registers-None",
        hook(lambda register: register("hk_none", None)),
        failed_with(r"registered reward 'hk_none' as None, which is not"),
    ),
    Row(
        "plugin-registers-a-string-without-colon",
        hook(lambda register: register("hk_str", "not_a_path")),
        failed_with(r"registered reward 'hk_str' as 'not_a_path', which is not"),
    ),
    Row(
        "plugin-registers-params-not-a-model",
        hook(lambda register: register("hk_p", dies, params=5)),
        failed_with(r"registered reward 'hk_p' with params 5, which is not a pydantic model"),
    ),
    Row(
        "plugin-registers-class-with-bad-Params",
        hook(lambda register: register("hk_np", NotAModel)),
        failed_with(r"registered reward 'hk_np' with params 5"),
    ),
    Row(
        "plugin-factory-builds-non-callable",
        lambda c: (c.plugin(ViewFactoryPlugin(), "hk-views"), get_view("hk_builds_5"))[1],
        raises(ConfigError, r"view 'hk-views:hk_builds_5' built 5, which is not a callable.*fix the plugin hk-views"),
    ),
    Row(
        "plugin-factory-calls-sys-exit",
        lambda c: (c.plugin(ViewFactoryPlugin(), "hk-views"), get_view("hk_exits_on_build"))[1],
        raises(ConfigError, r"view 'hk_exits_on_build' from hk-views could not be built: SystemExit"),
    ),
    Row(
        "plugin-lazy-module-calls-sys-exit",
        lambda c: (
            c.write("hk_lazy_exit_mod.py", "import sys\nsys.exit(5)\n"),
            c.monkeypatch.syspath_prepend(str(c.tmp)),
            c.plugin(ViewFactoryPlugin(), "hk-views"),
            get_view("hk_lazy_exits"),
        )[-1],
        raises(ConfigError, r"view 'hk-views:hk_lazy_exits': cannot import 'hk_lazy_exit_mod:View' \(SystemExit"),
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_hostile(row: Row, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    ctx = Ctx(tmp_path, monkeypatch, capsys, [])
    try:
        row.expect(lambda: row.run(ctx))
    finally:
        for cleanup in reversed(ctx.cleanups):
            cleanup()


def test_ids_are_unique() -> None:
    ids = [row.id for row in ROWS]
    assert len(ids) == len(set(ids))


def test_guards_do_not_overreach(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """What the checks above must leave alone: documented values, numpy numbers, Ctrl-C, strict plugin mode."""
    ctx = Ctx(tmp_path, monkeypatch, capsys, [])
    try:
        assert use_output("hk_nan")(ctx) == [1.0, 1.0]  # NaN from a reward is None ("not applicable")
        assert use_output("hk_np_float")(ctx) == [1.5, 1.5]  # numpy numbers are numbers
        assert use_output("hk_np_float", raw=False)(ctx) == [1.5, 1.5]
        by_zero = compose(spec({"a": "exact_match", "b": "exact_match"}, combine="a / b"))
        assert by_zero(completions=["x", "y"], answer=["x", "x"]) == [1.0, None]  # a row dividing by 0 is None
        with pytest.raises(DataError, match="got no completion_ids"):
            get_reward("brevity", max_length=5, unit="tokens")(completions=["a"])
        with pytest.raises(KeyboardInterrupt):  # Ctrl-C in a plugin ends the program (the CLI exits 130)
            hook(_raise(KeyboardInterrupt()))(ctx)
        with pytest.raises(KeyboardInterrupt):
            entry_point_plugins({"hk-ctrlc": "raise KeyboardInterrupt\n", "hk-good": GOOD_PLUGIN})(ctx)
        monkeypatch.setenv("REWARDKIT_STRICT_PLUGINS", "1")  # strict mode re-raises a plugin's SystemExit
        with pytest.raises(SystemExit, match="3"):
            entry_point_plugins({"hk-exit": "import sys\nsys.exit(3)\n"})(ctx)
    finally:
        for cleanup in reversed(ctx.cleanups):
            cleanup()
