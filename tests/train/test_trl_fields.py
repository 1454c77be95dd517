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


PROBES = [1, 0, -3, 1.5, 2.0, "abc", "1e-5", "", True, None, [1], ["a"], {"a": 1}, {"a": "b"}]


@pytest.mark.parametrize("stage", sorted(CONFIG_CLASSES))
def test_light_types_accept_and_refuse_what_the_imported_hints_do(stage):
    """The types read from source (builtins and typing only) judge every probe value as the imported class's hints
    do, in the same lax mode; fields typed with TRL's or transformers' own classes are left to the later check."""
    import typing

    import trl
    from pydantic import TypeAdapter, ValidationError

    from rewardkit.train.trl_fields import light_types

    hints = typing.get_type_hints(getattr(trl, CONFIG_CLASSES[stage][1]))
    light = light_types(stage)
    assert light and len(light) > 100
    for name, light_type in light.items():
        for value in PROBES:
            verdicts = []
            for kind in (light_type, hints[name]):
                try:
                    TypeAdapter(kind).validate_python(value)
                    verdicts.append(True)
                except ValidationError:
                    verdicts.append(False)
            assert verdicts[0] == verdicts[1], (name, value, light_type, hints[name])
