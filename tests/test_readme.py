"""The README's two set-up commands stay true: CI runs exactly the test command, the first runs the demo."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def setup_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```(?:bash|sh)\n(.+?)\n```", section)


def test_two_setup_commands():
    commands = setup_commands()
    assert len(commands) == 2, commands
    assert "rewardkit demo" in commands[0] and "torch==2.13.0" in commands[0]
    assert "pytest" in commands[1]


def test_ci_runs_the_readme_test_command():
    ci = [line for line in (ROOT / ".ci/run").read_text().splitlines() if line and not line.startswith("#")]
    assert setup_commands()[1] in ci
    after = ci[ci.index(setup_commands()[1]) + 1 :]  # only extra checks of .ci/ may follow the README's command
    assert all(line.startswith(".ci/") and (ROOT / line.split()[0]).is_file() for line in after), after


def test_readme_python_examples_run_as_written():
    import doctest

    result = doctest.testfile(str(ROOT / "README.md"), module_relative=False, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 5 and result.failed == 0, result
