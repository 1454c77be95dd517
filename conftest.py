"""Root conftest: with --doctest-modules, the test folders' conftest.py files must not be collected as doctest
modules (the plugin's and this one are both named `conftest` and would clash; tests/ is a package, its conftest
files hold no doctests); pytest still loads them as conftests. tests/scripts/
holds scripts that tests run in subprocesses (or, make_bleurt_fixture.py, in a venv of their own), not modules."""

collect_ignore_glob = ["tests/conftest.py", "tests/*/conftest.py", "plugins/*/tests/conftest.py", "tests/scripts/*.py"]
