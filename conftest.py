"""Root conftest: with --doctest-modules, the two test folders' conftest.py files must not be collected as
doctest modules (both are named `conftest` and would clash); pytest still loads them as conftests."""

collect_ignore_glob = ["tests/conftest.py", "plugins/*/tests/conftest.py"]
