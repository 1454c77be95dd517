"""`rewardkit tiny DIR`: a small model that loads offline, covering the characters of the user's data."""

import json
import subprocess
import sys

import pytest

from rewardkit.cli.tiny_command import make
from rewardkit.core.errors import ConfigError


def test_tiny_lm_covers_the_data_and_loads_offline(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    data = tmp_path / "train.jsonl"
    data.write_text(
        json.dumps({"input": {"question": "왠지 오늘은"}, "output": {"answer": "가 옳다"}}, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )
    made = make(tmp_path / "lm", [data], arch="llama", hidden=32, layers=1)
    tok = AutoTokenizer.from_pretrained(made.path)
    ids = tok("왠지 옳다")["input_ids"]
    assert len(ids) == 5  # one token per character: the data's Hangul is in the vocabulary
    model = AutoModelForCausalLM.from_pretrained(made.path)
    assert model.config.model_type == "llama" and model.config.hidden_size == 32
    assert (
        made.parameters == sum(p.numel() for p in model.parameters()) and made.data_chars == 8
    )  # 왠 지 오 늘 은 가 옳 다
    assert "Use it: model: " in made.report()


def test_tiny_bert_and_classifier(tmp_path):
    from rewardkit import get_reward

    bert = make(tmp_path / "bert", [], bert=True, hidden=32, layers=2)
    r = get_reward("bertscore", model_type=bert.path, num_layers=2)
    assert r(completions=["the cat sat"], answer=["the cat sat"])[0] == pytest.approx(1.0, abs=1e-5)
    rm = make(tmp_path / "rm", [], classifier=True, hidden=32)
    scores = get_reward("reward_model", model=rm.path)(prompts=["a"], completions=["b"])
    assert len(scores) == 1 and isinstance(scores[0], float)


@pytest.mark.parametrize(
    "args, message",
    [
        (dict(bert=True, classifier=True), "exclude each other"),
        (dict(arch="gpt2"), "--arch 'gpt2' is not supported"),
    ],
)
def test_bad_options_are_one_error(tmp_path, args, message):
    with pytest.raises(ConfigError, match=message):
        make(tmp_path / "m", [], **args)


def test_cli_refuses_a_non_empty_folder_and_missing_data(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    for args, text in (
        (["full"], "exists and is not an empty folder"),
        (["new", "--from", "nope.jsonl"], "--from nope.jsonl: no such file"),
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "rewardkit", "tiny", *args],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=120,
        )
        assert proc.returncode == 2 and text in proc.stderr and proc.stderr.count("\n") == 1
    assert not (tmp_path / "new").exists()


def test_from_data_is_read_bounded_and_devices_are_refused(tmp_path, monkeypatch):
    """--from goes through rewardkit's input reader: over REWARDKIT_MAX_INPUT_BYTES is one error naming the limit,
    and a device (a /dev/zero linked as data) is refused before any read."""
    data = tmp_path / "train.jsonl"
    data.write_text(json.dumps({"q": "가나다라마바사아자차카타파하"}) + "\n", encoding="utf-8")
    monkeypatch.setenv("REWARDKIT_MAX_INPUT_BYTES", "10")
    with pytest.raises(ConfigError, match="over the input limit of 10 bytes"):
        make(tmp_path / "m", [data])
    monkeypatch.delenv("REWARDKIT_MAX_INPUT_BYTES")
    (tmp_path / "zero.jsonl").symlink_to("/dev/zero")
    with pytest.raises(ConfigError, match="zero.jsonl: not a regular file"):
        make(tmp_path / "m2", [tmp_path / "zero.jsonl"])
