"""The model's own chat template (its folder's chat_template.jinja or tokenizer_config.json) is rendered once in
the bounded sandbox right after its tokenizer loads, before anything trains: hostile or broken is one line."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

HOSTILE = "{{ ''.__class__.__mro__ }}{% for m in messages %}{{ m['content'] }}{% endfor %}"
HUGE = "{{ 'a' * 3000000 }}{% for m in messages %}{{ m['content'] }}{% endfor %}"  # 3 MB per row, unbounded
BROKEN = "{% for m in messages %}{{ m['content'] + 1 }}{% endfor %}"  # str + int: TypeError


def _model_with(tiny_lm_dir: Path, tmp_path: Path, template: str, in_config: bool) -> tuple[Path, Path]:
    """A copy of the tiny model whose own template is `template` (chat_template.jinja, or tokenizer_config.json's
    `chat_template`); returns the folder and the file that holds the template."""
    model = tmp_path / "received-model"
    shutil.copytree(tiny_lm_dir, model)
    (model / "chat_template.jinja").unlink()
    if in_config:
        config = json.loads((model / "tokenizer_config.json").read_text())
        config["chat_template"] = template
        (model / "tokenizer_config.json").write_text(json.dumps(config))
        return model, model / "tokenizer_config.json"
    (model / "chat_template.jinja").write_text(template)
    return model, model / "chat_template.jinja"


@pytest.mark.parametrize(
    ("template", "in_config", "said"),
    [
        (HOSTILE, False, "does something unsafe"),
        (HUGE, False, "builds a text or list of 1 x 3000000 items"),
        (BROKEN, True, "fails on one short message: TypeError"),
    ],
    ids=["hostile-jinja-file", "huge-jinja-file", "broken-tokenizer-config"],
)
def test_a_models_own_bad_template_is_one_line_before_training(
    tiny_lm_dir, tmp_path, capsys, monkeypatch, template, in_config, said
):
    from rewardkit.cli import main as cli

    model, holder = _model_with(tiny_lm_dir, tmp_path, template, in_config)
    rows = tmp_path / "messages.jsonl"
    chat = [{"role": "user", "content": "1+1?"}, {"role": "assistant", "content": "2"}]
    rows.write_text("".join(json.dumps({"messages": chat}) + "\n" for _ in range(4)))
    config = tmp_path / "c.yaml"
    out = tmp_path / "run"
    config.write_text(
        f"stage: sft\nmodel: {model}\noutput_dir: {out}\ndataset: {{path: {rows}}}\n"
        "trainer: {max_steps: 1, per_device_train_batch_size: 2, use_cpu: true, report_to: none, "
        "save_strategy: 'no', max_length: 16}\n"
    )
    monkeypatch.setattr(sys, "argv", ["rewardkit", "train", str(config)])
    with pytest.raises(SystemExit) as info:
        cli.main()
    err = capsys.readouterr().err
    assert info.value.code == 2, err
    assert "Traceback" not in err and said in err and str(holder) in err, err
    assert "chat_template:" in err  # the fix: a template the stage gives itself
    assert not (out / "final").exists() and not list(out.glob("checkpoint-*"))


def test_a_models_good_own_template_passes_the_check(tiny_lm_dir):
    from rewardkit.train.config import load_stages
    from rewardkit.train.model_template import check_model_template

    [stage] = load_stages({"stage": "sft", "model": str(tiny_lm_dir), "dataset": {"generator": "arithmetic"}})[0]
    check_model_template(stage, "config")  # the tiny model's ChatML-like template renders
