"""`use:` imports touch nothing outside the user's code: private module names, sys.path as it was, refusals first."""

from __future__ import annotations

import pickle
import sys
import sysconfig
from pathlib import Path

import pytest

from rewardkit import compose
from rewardkit.core.errors import ConfigError

REWARD = "def f(completions, **kwargs):\n    return [float(len(c)) for c in completions]\n"


def test_a_file_named_like_a_standard_module_does_not_replace_it(tmp_path, monkeypatch):
    import code  # the standard library's

    (tmp_path / "code.py").write_text(REWARD)
    monkeypatch.chdir(tmp_path)
    r = compose({"x": {"use": "code.py:f"}})
    assert r(completions=["abc"]) == [3.0]
    assert sys.modules["code"] is code and hasattr(sys.modules["code"], "InteractiveConsole")
    # the module form names the standard library's module: refused, with the file form as the fix
    with pytest.raises(ConfigError, match=r"'code' is part of Python.*give its path"):
        compose({"x": {"use": "code:f"}})


def test_sys_path_is_left_as_it_was(tmp_path, monkeypatch):
    (tmp_path / "my_rewards_mod.py").write_text(REWARD)
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "other_rewards.py").write_text("from sibling_helper import VALUE\n" + REWARD)
    (sub / "sibling_helper.py").write_text("VALUE = 1\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "my_rewards_mod", raising=False)
    monkeypatch.delitem(sys.modules, "sibling_helper", raising=False)
    before = list(sys.path)
    by_module = compose({"x": {"use": "my_rewards_mod:f"}})
    by_file = compose({"y": {"use": "sub/other_rewards.py:f"}})  # its sibling import works while it loads
    assert sys.path == before
    assert by_module(completions=["ab"]) == [2.0] and by_file(completions=["a"]) == [1.0]


@pytest.mark.parametrize("name", ["this.py", "subprocess.py"])
def test_standard_library_files_are_refused_before_they_run(name, capsys):
    path = Path(sysconfig.get_paths()["stdlib"]) / name
    with pytest.raises(ConfigError, match=r"is part of Python or of an installed package.*was not run"):
        compose({"x": {"use": f"{path}:run"}})
    assert capsys.readouterr().out == ""  # this.py prints the Zen of Python when it runs


def test_installed_package_files_are_refused_in_both_forms():
    import yaml

    for use in (f"{yaml.__file__}:safe_load", "yaml:safe_load", "yaml.constructor:f"):
        with pytest.raises(ConfigError, match="part of Python or of an installed package"):
            compose({"x": {"use": use}})


def test_a_file_reward_travels_to_its_timeout_worker(tmp_path):
    (tmp_path / "rw.py").write_text(REWARD)
    r = compose({"x": {"use": f"{tmp_path}/rw.py:f", "timeout": 30}})
    assert r(completions=["abcd"]) == [4.0]  # scored in a spawned process: the private module is imported there
    assert pickle.loads(pickle.dumps(r))(completions=["ab"]) == [2.0]


def test_eight_threads_composing_at_once_run_each_file_once_and_keep_sys_path(tmp_path, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    runs = tmp_path / "runs.txt"
    body = f"import time\ntime.sleep(0.05)\nwith open({str(runs)!r}, 'a') as f:\n    f.write('x')\n" + REWARD
    (tmp_path / "counted.py").write_text(body)
    (tmp_path / "counted_mod.py").write_text(body)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "counted_mod", raising=False)
    before = list(sys.path)

    def build(i: int):
        use = "counted.py:f" if i % 2 else "counted_mod:f"
        return compose({"x": {"use": use}})(completions=["abc"])

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(build, range(32))) == [[3.0]] * 32
    assert sys.path == before
    assert runs.read_text() == "xx"  # the file once, the module once
