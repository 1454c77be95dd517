"""`rewardkit plugin new`: names, the generated files, refusal to overwrite, and a real install that
`rewardkit list` finds through the entry point (then the generated plugin's own tests)."""

from __future__ import annotations

import ast
import doctest
import importlib
import json
import os
import pickle
import re
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import pytest
import yaml

import rewardkit
from rewardkit.cli.scaffold import FILES, check_name, new_plugin, plugin_names, render
from rewardkit.core.plugins import register_plugin, unregister_plugin
from tests.conftest import run_cli

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

HOSTILE = 'says "hi" \\ ends with a quote"'


@pytest.mark.parametrize("name", ["a", "demo", "my-metric", "my_metric", "qa2", "a-b_c-9"])
def test_valid_names(name: str) -> None:
    names = plugin_names(name)
    assert names["dist"] == f"rewardkit-{name.replace('_', '-')}"  # pip's normalized name (issue 21)
    assert names["module"] == "rewardkit_" + name.replace("-", "_") and names["module"].isidentifier()


@pytest.mark.parametrize(
    "name, match",
    [
        ("", "non-empty"),
        ("Demo", "invalid NAME"),
        ("2fa", "invalid NAME"),
        ("-x", "invalid NAME"),
        ("x-", "invalid NAME"),
        ("my.metric", "invalid NAME"),
        ("my metric", "invalid NAME"),
        ("ünï", "invalid NAME"),
        ("a/b", "invalid NAME"),
        ("rewardkit", "core's own name"),
        ("rewardkit-korean", "Did you mean 'korean'"),
        ("x" * 51, "at most 50"),
    ],
)
def test_invalid_names(name: str, match: str) -> None:
    with pytest.raises(rewardkit.ConfigError, match=match):
        check_name(name)


def test_render_fills_every_file(tmp_path: Path) -> None:
    files = render("my-metric", description=HOSTILE)
    assert set(files) == {t.format(module="rewardkit_my_metric") for t in FILES}
    assert not [p for p, text in files.items() if re.search(r"\{\{\w+\}\}", text)]
    project = tomllib.loads(files["pyproject.toml"])
    assert project["project"]["name"] == "rewardkit-my-metric"
    assert project["project"]["dependencies"] == ["rewardkit"]
    assert project["project"]["description"] == HOSTILE
    assert project["project"]["entry-points"]["rewardkit"] == {"my-metric": "rewardkit_my_metric.plugin"}
    assert project["tool"]["setuptools"]["packages"]["find"]["where"] == ["src"]
    for path, text in files.items():
        if path.endswith(".py"):
            ast.parse(text, path)
    init = ast.get_docstring(ast.parse(files["src/rewardkit_my_metric/__init__.py"]))
    assert init.startswith(HOSTILE + "\n")
    assert HOSTILE in files["README.md"]
    assert 'name = "my_metric_word_overlap"' in files["src/rewardkit_my_metric/rewards.py"]


@pytest.mark.parametrize("bad", ["", "  ", "two\nlines", "tab\there", "x" * 201])
def test_bad_descriptions(bad: str) -> None:
    with pytest.raises(rewardkit.ConfigError, match="--description"):
        render("demo", description=bad)


def test_never_overwrites(tmp_path: Path) -> None:
    made = new_plugin("demo", tmp_path)
    assert made.root == tmp_path / "rewardkit-demo" and len(made.files) == len(FILES)
    before = {p: p.read_bytes() for p in made.files}
    made.files[0].write_text("edited by hand")
    before[made.files[0]] = b"edited by hand"
    with pytest.raises(rewardkit.ConfigError, match="already exists and is not empty"):
        new_plugin("demo", tmp_path)
    assert {p: p.read_bytes() for p in made.files} == before
    (tmp_path / "rewardkit-file").write_text("x")
    with pytest.raises(rewardkit.ConfigError, match="is not a folder"):
        new_plugin("file", tmp_path)
    (tmp_path / "rewardkit-empty").mkdir()  # an empty folder (e.g. a fresh git clone target) is fine
    assert len(new_plugin("empty", tmp_path).files) == len(FILES)
    assert len(new_plugin("nested", tmp_path / "a" / "b").files) == len(FILES)  # --dir is created


def test_failed_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rewardkit.cli import scaffold

    real, written = scaffold.atomic_write_text, []

    def fails_on_the_fourth(path, text):
        if len(written) == 3:
            raise rewardkit.DataError("disk full")
        written.append(path)
        return real(path, text)

    monkeypatch.setattr(scaffold, "atomic_write_text", fails_on_the_fourth)
    with pytest.raises(rewardkit.DataError, match="disk full"):
        new_plugin("demo", tmp_path)
    assert len(written) == 3 and list(tmp_path.iterdir()) == []
    (tmp_path / "rewardkit-demo").mkdir()  # a folder that existed before stays
    written.clear()
    with pytest.raises(rewardkit.DataError, match="disk full"):
        new_plugin("demo", tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["rewardkit-demo"]
    assert not any((tmp_path / "rewardkit-demo").iterdir())


def test_generated_plugin_works_in_process(tmp_path: Path) -> None:
    """Fast check of the templates without pip: register the generated hook module by hand."""

    made = new_plugin("scaffold-inproc", tmp_path)
    sys.path.insert(0, str(made.root / "src"))
    try:
        plugin = importlib.import_module(f"{made.module}.plugin")
        register_plugin(plugin, name="scaffold-inproc-test", source=made.dist)
        try:
            listed = {r["name"]: r for r in rewardkit.list_rewards() if r["source"] == made.dist}
            assert made.reward in listed and listed[made.reward]["summary"].startswith("Fraction of the reference")
            assert made.view in {v["name"] for v in rewardkit.list_views() if v["source"] == made.dist}
            reward = rewardkit.get_reward(made.reward, completion_view=made.view)
            args = {"completions": ["Paris\nis the capital", "Lyon"], "answer": ["The capital is Paris"] * 2}
            assert reward(**args) == pickle.loads(pickle.dumps(reward))(**args) == [0.25, 0.0]
            with pytest.raises(rewardkit.ConfigError, match="min_word_length"):
                rewardkit.get_reward(made.reward, min_word_length=0)
            spec = yaml.safe_load(re.search(r"```yaml\n(.*?)```", (made.root / "README.md").read_text(), re.DOTALL)[1])
            composed = rewardkit.compose(spec)  # the README's compose spec
            assert composed(completions=["Paris\nis it", "Paris"], answer=["The capital is Paris", "Paris"]) == [
                pytest.approx(0.5 / 3),
                1.0,
            ]  # min_word_length: 3 drops "is"
            for name in ("rewards", "views"):
                result = doctest.testmod(importlib.import_module(f"{made.module}.{name}"))
                assert result.attempted > 0 and result.failed == 0
        finally:
            unregister_plugin("scaffold-inproc-test")
    finally:
        sys.path.remove(str(made.root / "src"))
        for module in [m for m in sys.modules if m == made.module or m.startswith(made.module + ".")]:
            del sys.modules[module]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REWARDKIT_LOAD_PLUGINS", "REWARDKIT_STRICT_PLUGINS")}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", PIP_NO_INDEX="1", PYTHONDONTWRITEBYTECODE="1")
    return env


def _run(args: list[str], cwd: Path | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=_env(), check=False, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_cli_plugin_new(tmp_path: Path) -> None:
    done = _run(
        [
            sys.executable,
            "-m",
            "rewardkit",
            "plugin",
            "new",
            "demo",
            "--dir",
            str(tmp_path),
            "--description",
            "Demo rewards.",
        ]
    )
    assert done.returncode == 0, done.stderr
    assert "rewardkit-demo" in done.stdout and "pip install -e ." in done.stdout
    assert (
        tomllib.loads((tmp_path / "rewardkit-demo" / "pyproject.toml").read_text())["project"]["description"]
        == "Demo rewards."
    )
    for args in (["demo", "--dir", str(tmp_path)], ["Bad_Name"]):
        done = _run([sys.executable, "-m", "rewardkit", "plugin", "new", *args], cwd=tmp_path)
        assert done.returncode == 2 and done.stdout == ""
        assert len(done.stderr.strip().splitlines()) == 1 and done.stderr.startswith("Error: plugin new:")


PROBE = "scaffoldprobe"  # a fixed name: a run killed before its teardown is cleaned up by the next one


def _uninstall() -> None:
    _run([sys.executable, "-m", "pip", "uninstall", "-y", "-q", f"rewardkit-{PROBE}"])


@pytest.fixture
def installed_probe(tmp_path: Path):
    """Scaffold rewardkit-scaffoldprobe and pip install it; always uninstalled afterwards (other tests list
    plugins and must not see it). Yields (plugin, seconds from scaffold to `rewardkit list` finding it)."""
    _uninstall()
    start = time.perf_counter()
    try:
        made = new_plugin(PROBE, tmp_path, description="Scaffold probe (tests/cli/test_scaffold.py).")
        done = _run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "-q", str(made.root)])
        assert done.returncode == 0, done.stdout + done.stderr
        listed = _run([sys.executable, "-m", "rewardkit", "list", "--json"], timeout=120)
        assert listed.returncode == 0, listed.stderr
        data = json.loads(listed.stdout)
        seconds = time.perf_counter() - start
        yield made, data, seconds
    finally:
        _uninstall()


@pytest.mark.slow
def test_scaffold_install_list_and_own_tests(installed_probe, record_property) -> None:
    made, data, seconds = installed_probe
    record_property("scaffold_to_listed_seconds", round(seconds, 2))
    print(f"\nscaffold + pip install + `rewardkit list` found it: {seconds:.2f} s")
    rewards = {r["name"]: r for r in data["rewards"] if r["name"] == made.reward}
    assert rewards, f"{made.reward} not listed; failed plugins: {data['failed_plugins']}"
    assert rewards[made.reward]["source"] == made.dist == f"rewardkit-{PROBE}"
    assert rewards[made.reward]["version"] == metadata.version(made.dist) == "0.1.0"
    assert [v["source"] for v in data["views"] if v["name"] == made.view] == [made.dist]
    assert not [f for f in data["failed_plugins"] if f["name"] == made.dist]
    own = _run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(made.root / "tests")], cwd=made.root
    )
    assert own.returncode == 0, own.stdout[-3000:] + own.stderr[-2000:]
    assert re.search(r"^6 passed", own.stdout, re.MULTILINE), own.stdout


@pytest.mark.parametrize("first, second", [("x-y", "x_y"), ("x_y", "x--y"), ("x-y", "x-_y")])
def test_plugin_names_that_pip_normalizes_alike_are_one_plugin(tmp_path, first, second):
    from rewardkit.cli.scaffold import new_plugin
    from rewardkit.core.errors import ConfigError

    made = new_plugin(first, tmp_path)
    assert made.root.name == "rewardkit-x-y" and made.module == "rewardkit_x_y"
    with pytest.raises(ConfigError, match="rewardkit-x-y already exists and is not empty"):
        new_plugin(second, tmp_path)
    made.root.rename(tmp_path / "rewardkit-x_y")  # a folder spelled the other way (by hand, an older rewardkit)
    with pytest.raises(ConfigError, match="rewardkit-x_y is the same plugin as rewardkit-x-y"):
        new_plugin(second, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rewardkit-x_y"]


def test_description_under_a_c_locale_names_the_locale(tmp_path):
    env = {"LC_ALL": "C", "LANG": "C", "PYTHONCOERCECLOCALE": "0", "PYTHONUTF8": "0", "PYTHONIOENCODING": ""}
    proc = run_cli("plugin", "new", "demo", "--dir", tmp_path, "--description", "한국어 설명", env=env)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "the command runs under a non-UTF-8 locale (LC_ALL=C" in proc.stderr and "PYTHONUTF8=1" in proc.stderr
    assert list(tmp_path.iterdir()) == []
    proc = run_cli("plugin", "new", "demo", "--dir", tmp_path, "--description", "한국어 설명")  # a UTF-8 locale
    assert proc.returncode == 0 and "한국어 설명" in (tmp_path / "rewardkit-demo" / "pyproject.toml").read_text()


def test_failed_scaffold_leaves_no_folder_behind(tmp_path, monkeypatch):
    from rewardkit.cli import scaffold
    from rewardkit.core.fileio import atomic_write_text

    calls = []

    def third_write_fails(path, text):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return atomic_write_text(path, text)

    monkeypatch.setattr(scaffold, "atomic_write_text", third_write_fails)
    with pytest.raises(OSError):
        scaffold.new_plugin("edgeprobe", tmp_path)
    assert list(tmp_path.iterdir()) == []  # a retry is not refused as "already exists"
