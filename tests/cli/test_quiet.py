"""Third-party warnings and log noise: hidden unless --verbose or REWARDKIT_VERBOSE."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import run_cli

WARN_SCRIPT = textwrap.dedent("""
    import logging, sys, types
    from rewardkit.cli.console import quiet_third_party
    if sys.argv[1] == "quiet":
        quiet_third_party()

    def module(name, source):
        mod = types.ModuleType(name)
        exec(compile(source, name, "exec"), mod.__dict__)
        return mod

    own = module("rewardkit_fakeplugin", "import warnings\\n"
                 "def warn():\\n    warnings.warn('OWN-WARNING', RuntimeWarning, stacklevel=3)\\n")
    lib = module("fakelib", "import sys, warnings\\n"
                 "def noisy():\\n    warnings.warn('THIRD-PARTY-WARNING', FutureWarning)\\n"
                 "def prints():\\n    print('THIRD-PARTY-PRINT', file=sys.stderr)\\n"
                 "def calls(f):\\n    f()\\n")
    lib.noisy()
    lib.prints()  # a package writing to stderr itself: no logger to quiet
    logging.getLogger("kernels._internals.hf_hub").warning("KERNELS-LOG")  # a logger nobody listed
    logging.getLogger("fakelib").error("THIRD-PARTY-ERROR")  # errors stay visible
    lib.calls(own.warn)  # stacklevel blames fakelib's caller; the warning is still rewardkit's
    logging.getLogger("bitsandbytes.backends.cpu.ops").warning("BNB-LOG")
    logging.getLogger("trl.trainer").warning("TRL-LOG")
    logging.getLogger("rewardkit.callbacks").warning("OWN-LOG")
""")


@pytest.mark.parametrize("mode", ["quiet", "verbose"])
def test_third_party_warnings_hidden_unless_verbose(mode):
    proc = subprocess.run(
        [sys.executable, "-c", WARN_SCRIPT, mode],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "OWN-WARNING" in proc.stderr and "OWN-LOG" in proc.stderr and "THIRD-PARTY-ERROR" in proc.stderr
    for noise in ("THIRD-PARTY-WARNING", "BNB-LOG", "TRL-LOG", "KERNELS-LOG", "THIRD-PARTY-PRINT"):
        assert (noise in proc.stderr) == (mode == "verbose"), proc.stderr


def test_verbose_option_and_env():
    assert run_cli("--verbose", "list", "--json").returncode == 0
    assert run_cli("list", "--json", env={"REWARDKIT_VERBOSE": "1"}).returncode == 0
