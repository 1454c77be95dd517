"""`rewardkit tiny DIR`: a small model that loads offline, covering the characters of the user's data."""

import json
import subprocess
import sys
from pathlib import Path

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


SAMPLE = Path(__file__).resolve().parents[2] / "plugins" / "rewardkit-korean" / "src" / "rewardkit_korean" / "data"


def _greedy_answers(path: str, prompts: list) -> list[str]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rewardkit.engines.hf import generate_texts

    model, tok = AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)
    return generate_texts(model, tok, prompts, max_new_tokens=16)


def test_default_init_gives_different_greedy_answers_per_row_and_seed_fixes_the_weights(tmp_path):
    """Issue 29: at transformers' 0.02 every row got the same greedy answer; the default spread differs per row."""
    data = SAMPLE / "sample.jsonl"
    rows = [json.loads(line) for line in data.read_text(encoding="utf-8").splitlines() if line.strip()]
    system = '당신은 한국어 어문 규범 전문가입니다. "…"가 옳다. 형식으로 쓰고, 이어서 그 이유를 설명하세요.'
    prompts = [
        [{"role": "system", "content": system}, {"role": "user", "content": r["input"]["question"]}] for r in rows
    ]
    default = _greedy_answers(make(tmp_path / "default", [data]).path, prompts)
    narrow = _greedy_answers(make(tmp_path / "narrow", [data], init_range=0.02).path, prompts)
    assert len(set(narrow)) <= 2 < len(rows) - 2 <= len(set(default))
    again = _greedy_answers(make(tmp_path / "again", [data]).path, prompts)
    other = _greedy_answers(make(tmp_path / "other", [data], seed=1).path, prompts)
    assert again == default and other != default


@pytest.mark.parametrize(
    "args, message",
    [
        (dict(init_range=0.0), "--init-range 0.0 is not in"),
        (dict(init_range=float("nan")), "--init-range nan is not in"),
        (dict(init_range=float("inf")), "--init-range inf is not in"),
        (dict(seed=-1), "--seed -1 is not an integer"),
        (dict(bleurt=True, bert=True), "--bert and --bleurt exclude each other"),
        (dict(hidden=9), "--hidden 9 is odd"),  # was a StopIteration traceback
        (dict(hidden=4096, layers=48), "--hidden 4096 --layers 48 makes about"),  # was killed for memory
    ],
)
def test_bad_init_and_seed_are_one_error(tmp_path, args, message):
    with pytest.raises(ConfigError, match=message):
        make(tmp_path / "m", [], **args)
    assert not (tmp_path / "m").exists()


def test_tiny_bleurt_on_korean_data_loads_in_the_bleurt_reward(tmp_path):
    pytest.importorskip("sentencepiece")
    from rewardkit import get_reward

    made = make(tmp_path / "bl", [SAMPLE / "sample.jsonl"], bleurt=True, hidden=32, layers=2, init_range=0.5)
    assert made.kind == "bleurt" and made.parameters > 0 and "--set bleurt.model=" in made.report()
    reward = get_reward("bleurt", model=made.path)
    tokenizer, _ = reward.model()
    assert tokenizer.spm.unk_id() not in tokenizer.encode("왠지 오늘은")  # the data's Hangul is in the vocabulary
    scores = reward(completions=["왠지 오늘은 기분이 좋다", "the cat"], answer=["왠지 오늘은 기분이 좋다"] * 2)
    assert len(set(scores)) == 2  # init_range 0.5: scores differ from pair to pair
