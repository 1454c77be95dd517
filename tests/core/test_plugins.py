"""Plugins that fail: sys.exit or a non-Exception at import or in a hook is one failed plugin; bad registrations."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import rewardkit
from rewardkit import (
    ConfigError,
    UnknownNameError,
    get_reward,
    get_view,
    hookimpl,
)
from rewardkit.core import plugins
from tests.conftest import Ctx, Row, raises, row_context, row_ids, run_row


def dies(completions, **kwargs):
    """Ends its process like a segfault or the OOM killer would."""
    os._exit(7)


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


class ScaledLength:
    """A TRL-style reward factory class (no Params, not a Reward): the hookspec builds it as factory(**params)."""

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = scale

    def __call__(self, completions, **kwargs):
        return [self.scale * len(c) for c in completions]


class TakesNoKwargs:
    def __call__(self, completions):
        return [1.0] * len(completions)


class FactoryClassPlugin:
    @hookimpl
    def register_rewards(self, register):
        register("hk_scaled", ScaledLength)
        register("hk_no_kwargs", TakesNoKwargs)


def factory_class(spec: dict) -> Callable[[Ctx], Any]:
    return lambda c: (c.plugin(FactoryClassPlugin(), "hk-factories"), rewardkit.compose({"rewards": spec}))[1]


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


BAD_INPUTS = [
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
    # 6. A factory class whose instances are TRL-style callables is built as factory(**params) (issue 25); what
    # goes wrong names the alias and the plugin.
    Row(
        "plugin-factory-class-unknown-keyword",
        factory_class({"s": {"use": "hk_scaled", "sacle": 2}}),
        raises(ConfigError, r"rewards.s \(reward 'hk_scaled'\) from hk-factories could not be built: TypeError.*sacle"),
    ),
    Row(
        "plugin-factory-class-instance-without-kwargs",
        factory_class({"n": "hk_no_kwargs"}),
        raises(ConfigError, r"rewards.n \(reward 'hk_no_kwargs'\) from hk-factories: .*does not accept \*\*kwargs"),
    ),
]


@pytest.mark.parametrize("row", BAD_INPUTS, ids=row_ids(BAD_INPUTS))
def test_bad_input(row: Row, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    run_row(row, tmp_path, monkeypatch, capsys)


def test_a_plugin_factory_class_is_built_with_its_keywords(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    with row_context(tmp_path, monkeypatch, capsys) as ctx:
        reward = factory_class({"s": {"use": "hk_scaled", "scale": 2.0, "completion_view": "boxed"}})(ctx)
        assert reward(completions=["x \\boxed{abc}", "none"]) == [6.0, 0.0]


def test_plugin_checks_do_not_overreach(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """What the plugin checks must leave alone: Ctrl-C, and strict plugin mode."""
    with row_context(tmp_path, monkeypatch, capsys) as ctx:
        with pytest.raises(KeyboardInterrupt):  # Ctrl-C in a plugin ends the program (the CLI exits 130)
            hook(_raise(KeyboardInterrupt()))(ctx)
        with pytest.raises(KeyboardInterrupt):
            entry_point_plugins({"hk-ctrlc": "raise KeyboardInterrupt\n", "hk-good": GOOD_PLUGIN})(ctx)
        monkeypatch.setenv("REWARDKIT_STRICT_PLUGINS", "1")  # strict mode re-raises a plugin's SystemExit
        with pytest.raises(SystemExit, match="3"):
            entry_point_plugins({"hk-exit": "import sys\nsys.exit(3)\n"})(ctx)
