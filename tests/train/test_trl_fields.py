"""The TRL config fields read from source (no import) are exactly the imported dataclasses' constructor arguments."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest

from rewardkit.train.trl_fields import CONFIG_CLASSES, read_fields


@pytest.mark.parametrize("stage", sorted(CONFIG_CLASSES))
def test_fields_read_from_source_equal_the_imported_class(stage):
    import trl

    _, name = CONFIG_CLASSES[stage]
    imported = [f.name for f in dataclasses.fields(getattr(trl, name)) if f.init]
    read = read_fields(stage)
    assert read is not None and sorted(read) == sorted(imported)


def test_reading_the_fields_imports_nothing_heavy():
    script = (
        "import json, sys\n"
        "from rewardkit.train.trl_fields import config_fields\n"
        "name, fields = config_fields('grpo')\n"
        "print(json.dumps([name, 'learning_rate' in fields, 'num_generations' in fields,"
        " [m for m in ('torch', 'transformers', 'trl') if m in sys.modules]]))"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert json.loads(proc.stdout) == ["GRPOConfig", True, True, []], proc.stderr[-2000:]


def test_an_unreadable_source_falls_back_to_the_import(monkeypatch):
    from rewardkit.train import trl_fields

    monkeypatch.setitem(trl_fields.CONFIG_CLASSES, "grpo", ("trl.trainer.no_such_module", "GRPOConfig"))
    name, fields = trl_fields.config_fields("grpo")
    assert name == "GRPOConfig" and "num_generations" in fields
