"""Chat templates are rendered once in a bounded sandbox before use: hostile, broken or huge ones are one line."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from rewardkit.core.errors import ConfigError
from rewardkit.core.specs import read_chat_template
from tests.conftest import Row, raises, row_ids, run_cli, run_row

BAD_INPUTS = [
    Row(
        "template-reaches-python-internals",
        lambda c: read_chat_template("{{ ''.__class__.__mro__[1].__subclasses__() }}", "t"),
        raises(ConfigError, r"^t: the chat template does something unsafe: access to attribute '__class__'"),
    ),
    Row(
        "template-type-error",
        lambda c: read_chat_template("{{ messages[0].content + 1 }}", "t"),
        raises(ConfigError, r"fails on one short message: TypeError: can only concatenate str"),
    ),
    Row(
        "template-syntax-error",
        lambda c: read_chat_template("{% for m in messages %}{{ m }}", "t"),
        raises(ConfigError, r"fails on one short message: TemplateSyntaxError"),
    ),
    Row(
        "template-string-times-300M",
        lambda c: read_chat_template("{{ 'a' * 300000000 }}", "t"),
        raises(ConfigError, r"builds a text or list of 1 x 300000000 items .*limit 1000000"),
    ),
    Row(
        "template-center-width-400M",
        lambda c: read_chat_template("{{ 'x'|center(400000000) }}", "t"),
        raises(ConfigError, r"builds a width of 400000000"),
    ),
    Row(
        "template-format-width-400M",
        lambda c: read_chat_template("{{ '%400000000s'|format('a') }}{{ '{:400000000}'.format(1) }}", "t"),
        raises(ConfigError, r"builds a format width of 400000000"),
    ),
    Row(
        "template-tojson-indent-400M",
        lambda c: read_chat_template("{{ messages | tojson(indent=400000000) }}", "t"),
        raises(ConfigError, r"builds a width of 400000000"),
    ),
    Row(
        "template-file-names-its-path",
        lambda c: read_chat_template(str(c.write("bad.jinja", "{{ messages.pop() }}")), "tokenizer.chat_template"),
        raises(ConfigError, r"tokenizer.chat_template: .*bad.jinja: the chat template does something unsafe"),
    ),
]


@pytest.mark.parametrize("row", BAD_INPUTS, ids=row_ids(BAD_INPUTS))
def test_bad_input(row: Row, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    start = time.perf_counter()
    run_row(row, tmp_path, monkeypatch, capsys)
    assert time.perf_counter() - start < 5  # refused before anything large is built


def test_every_chat_template_trl_ships_passes():
    """No false alarms: TRL's 70-odd model templates (Qwen, Llama, Gemma, DeepSeek, gpt-oss...) render in the
    bounded sandbox, `{% generation %}` and raise_exception included."""
    import trl

    folder = Path(trl.__file__).parent / "chat_templates"
    files = sorted(folder.glob("*.jinja"))
    assert len(files) > 10
    for path in files:
        read_chat_template(str(path), path.name)


def test_transformers_tojson_arguments_pass():
    """transformers' `tojson` takes ensure_ascii/indent/separators/sort_keys (Jinja's own only indent): a model
    template using them is not refused."""
    text = "{{ messages | tojson(ensure_ascii=False, indent=2, sort_keys=True) }}"
    assert read_chat_template(text, "t") == text


def test_a_hostile_template_in_a_config_is_one_cli_line(tmp_path):
    (tmp_path / "c.yaml").write_text(
        "stage: sft\nmodel: no/such-model\ndataset: {path: rows.jsonl}\n"
        "tokenizer: {chat_template: \"{{ 'a' * 300000000 }}\"}\n"
    )
    result = run_cli("train", "c.yaml", cwd=tmp_path, env={"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and "chat template builds" in result.stderr, result.stderr
