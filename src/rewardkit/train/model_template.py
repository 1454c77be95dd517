"""The chat template a stage trains with when the config gives none: the model's own, checked before training.

A received model folder carries its template as data (`chat_template.jinja`, `tokenizer_config.json`'s
`chat_template`, `additional_chat_templates/*.jinja`). transformers renders it only when training or generation
reaches it: a hostile one is a jinja SecurityError traceback, a broken one a TypeError, `'a' * 300000000` an
unbounded allocation. Here the tokenizer is loaded the way the trainer loads it and each of its templates is
rendered once in the bounded sandbox (rewardkit.core.chat_templates): a failure is one line naming the file.
"""

from __future__ import annotations

from pathlib import Path

from rewardkit.core.chat_templates import check_chat_template
from rewardkit.core.validation import stage_ref
from rewardkit.train.config import StageConfig
from rewardkit.train.preflight import loading


def template_source(source: str, name: str) -> str:
    """Where the tokenizer `source` (a folder or a hub id) keeps its chat template `name`, in words."""
    folder = Path(source).expanduser()
    if not folder.is_dir():
        return f"{source}'s chat template" + ("" if name == "default" else f" {name!r}")
    candidates = [folder / "chat_template.jinja"] if name == "default" else []
    candidates.append(folder / "additional_chat_templates" / f"{name}.jinja")
    for path in candidates:
        if path.is_file():
            return str(path)
    suffix = "" if name == "default" else f" {name!r}"
    return f"{folder / 'tokenizer_config.json'}: chat_template{suffix}"


def check_model_template(stage: StageConfig, where: str) -> None:
    """Render every chat template of the stage's tokenizer (the model's own, or `tokenizer:`'s) once in the
    bounded sandbox; ConfigError in one line naming its file. Skipped when the config gives a template (checked
    when the config is read) and for `@stage` models (the earlier stage's tokenizer was checked)."""
    source = stage.tokenizer or stage.model
    if stage.chat_template is not None or stage_ref(source) is not None:
        return
    from transformers import AutoTokenizer

    with loading(where, stage, stage.model, stage.tokenizer):
        try:
            tokenizer = AutoTokenizer.from_pretrained(source)
        except (ValueError, TypeError, KeyError, ImportError):  # no usable tokenizer here: the trainer's own load
            return  # reports it as before (a processor may still load); there is no template to check
    templates = getattr(tokenizer, "chat_template", None)
    if isinstance(templates, str):
        templates = {"default": templates}
    if not isinstance(templates, dict):
        return  # no template: a base model; prompts that need one are refused where they are rendered
    for name, template in templates.items():
        if isinstance(template, str):
            check_chat_template(
                template,
                f"{where}: stage {stage.label!r}: {template_source(source, str(name))}",
                hint="replace that template with one you trust, or give the stage one in its config "
                "(`chat_template: my_template.jinja`), which is used instead of the model's.",
            )
