"""Outputs that do not mislead: empty completions counted, the chat template settable, None rows explained."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rewardkit.core.errors import ConfigError


@pytest.fixture(scope="module")
def silent_lm(tmp_path_factory) -> Path:
    """A tiny model whose generation config forces end-of-turn at once: every completion is empty."""
    from transformers import AutoModelForCausalLM

    from rewardkit.core.tiny import make_tiny

    path = make_tiny(tmp_path_factory.mktemp("silent"), "lm", hidden_size=32)
    model = AutoModelForCausalLM.from_pretrained(path)
    model.generation_config.forced_eos_token_id = model.generation_config.eos_token_id
    model.generation_config.save_pretrained(path)
    return path


def _rows(path: Path, n: int = 3) -> Path:
    path.write_text("".join(json.dumps({"id": str(i), "prompt": f"{i}+1="}) + "\n" for i in range(n)))
    return path


def test_generate_warns_on_empty_completions(silent_lm, tmp_path):
    rows = _rows(tmp_path / "in.jsonl")
    base = [sys.executable, "-m", "rewardkit", "generate", str(silent_lm), "-i", str(rows), "--max-new-tokens", "1"]
    proc = subprocess.run(
        [*base, "-o", str(tmp_path / "out.jsonl"), "--json"], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["empty"] == 3
    assert "warning: 3 of 3 completions are empty or whitespace only" in proc.stderr
    proc = subprocess.run(
        [*base, "-o", str(tmp_path / "out2.jsonl"), "--fail-on-empty"], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 1 and "3 of 3 completions are empty" in proc.stderr
    assert len((tmp_path / "out2.jsonl").read_text().splitlines()) == 3  # still written, for inspection


def test_chat_template_in_config_and_for_generate(silent_lm, tmp_path):
    from rewardkit.generation import generate_file
    from rewardkit.train.config import load_stages

    template = tmp_path / "plain.jinja"
    template.write_text("{% for m in messages %}{{ m['content'] }}\n{% endfor %}")
    rows = tmp_path / "in.jsonl"
    rows.write_text(json.dumps({"prompt": [{"role": "user", "content": "hi"}]}) + "\n")
    result = generate_file(
        str(silent_lm), rows, tmp_path / "o.jsonl", chat_template=str(template), max_new_tokens=1, progress=False
    )
    assert result.rows == 1
    with pytest.raises(ConfigError, match="--chat-template: 'nope.jinja' is neither a file nor a template"):
        generate_file(str(silent_lm), rows, tmp_path / "o.jsonl", chat_template="nope.jinja")
    base = {"stage": "sft", "model": str(silent_lm), "dataset": {"generator": "arithmetic"}}
    [stage], _, _ = load_stages({**base, "tokenizer": {"chat_template": str(template)}})
    assert stage.chat_template == str(template) and stage.tokenizer is None
    with pytest.raises(ConfigError, match=r"tokenizer.chat_template: 'missing.jinja' is neither a file"):
        load_stages({**base, "tokenizer": {"chat_template": "missing.jinja"}})


def test_score_prints_none_rows_and_why(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "rewards:\n  em: {use: exact_match, reference: answer}\n"
        "  boxed: {use: exact_match, reference: answer, completion_view: boxed, missing: none}\n"
    )
    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        "".join(
            json.dumps(r) + "\n"
            for r in [
                {"completion": r"\boxed{1}", "answer": "1"},
                {"completion": "1", "answer": "1"},
                {"completion": "2", "answer": None},
            ]
        )
    )
    proc = subprocess.run(
        [sys.executable, "-m", "rewardkit", "score", str(spec), "-i", str(rows)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**__import__("os").environ, "COLUMNS": "200"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "None rows: em: None for 1 of 3 rows (no reference: 1)" in proc.stdout
    assert "None rows: boxed: None for 2 of 3 rows (no reference: 1, view missed: 1)" in proc.stdout
    proc = subprocess.run(
        [sys.executable, "-m", "rewardkit", "score", str(spec), "-i", str(rows), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    summary = {s["name"]: s for s in json.loads(proc.stdout)["summary"]}
    assert summary["boxed"]["none_reasons"] == {"no reference": 1, "view missed": 1}
