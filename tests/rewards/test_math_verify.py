"""math_verify: parity with TRL's accuracy_reward, gold forms, None reasons, deadlines in any thread or process."""

import json
import multiprocessing as mp
import re
import subprocess
import sys
import threading
import time
import warnings

import pytest

from rewardkit import ConfigError, compose, get_reward
from rewardkit.composition.scoring import score_rows
from rewardkit.rewards import math_verify_rewards
from rewardkit.rewards.math_answers import gold_latex
from tests.conftest import TESTS

PAIRS = [json.loads(line) for line in (TESTS / "fixtures" / "math_parity.jsonl").read_text().splitlines()]
GOLDS = [p["gold"] for p in PAIRS]
COMPLETIONS = [p["completion"] for p in PAIRS]
SLOW = r"\boxed{2^{2^{2^{2^{2^{2}}}}} - 2^{2^{2^{2^{2^{2}}}}}}"  # math-verify spends its whole budget on it


def chat(texts):
    return [[{"role": "assistant", "content": t}] for t in texts]


def test_parity_with_trl_accuracy_reward():
    from math_verify import parse
    from trl.rewards import accuracy_reward

    theirs = accuracy_reward(chat(COMPLETIONS), GOLDS)
    ours = get_reward("math_verify", reference="solution")(completions=COMPLETIONS, solution=GOLDS)
    parsable = [i for i, t in enumerate(theirs) if t is not None]
    differ = [i for i in parsable if ours[i] != theirs[i]]
    print(f"math_verify vs TRL accuracy_reward: {len(parsable) - len(differ)} of {len(parsable)} pairs agree")
    assert len(parsable) >= 200
    # Every difference is one improvement: a gold in bare LaTeX, which TRL's parse reads a number out of
    # (2\sqrt{3} -> 2, x^2 - 1 -> 1, (-\infty, 3) -> 3), read whole here; the equivalent answer then scores 1.0.
    # And a plain gold in scientific notation, which TRL's parse reads as its mantissa (1e5 -> 1), read whole here.
    for i in differ:
        gold = GOLDS[i]
        if re.fullmatch(r"\d+e\d+", gold):
            assert str(parse(gold)) != str(parse(gold_latex(gold))), gold
        else:
            assert gold_latex(gold) == f"${gold.strip()}$", gold
            assert str(parse(gold)) != str(parse(f"${gold}$")), gold
        assert (theirs[i], ours[i]) == (0.0, 1.0), (gold, COMPLETIONS[i])
    assert len(differ) == 15, [GOLDS[i] for i in differ]
    # Golds TRL cannot parse at all (\sqrt{2}, [0,1), \pi, \mathbb{R} bare) are read here: their right answers count.
    unparsed = {GOLDS[i] for i, t in enumerate(theirs) if t is None}
    right = {GOLDS[i] for i in range(0, len(PAIRS), 4) if GOLDS[i] in unparsed and ours[i] == 1.0}
    assert len(right) >= len(unparsed) - 1, unparsed - right  # e^{i\pi} = -1 is beyond math-verify


def test_after_think_is_trls_reasoning_accuracy_reward():
    from trl.rewards import reasoning_accuracy_reward

    same = [i for i, g in enumerate(GOLDS) if gold_latex(g) == g.strip()]  # golds both read alike
    completions = [*(COMPLETIONS[i] for i in same), "<think>hm</think> so \\boxed{1}", "<think> \\boxed{1} no end"]
    golds = [*(GOLDS[i] for i in same), "1", "1"]
    theirs = reasoning_accuracy_reward(chat(completions), golds)
    reward = get_reward("math_verify", reference="solution", completion_view="after_think")
    assert reward(completions=completions, solution=golds) == theirs
    assert len(same) >= 100 and theirs[-2:] == [1.0, 0.0] and theirs.count(1.0) >= 30


def test_gold_forms():
    reward = get_reward("math_verify")
    golds = [r"\frac{1}{2}", "$0.5$", r"\boxed{\tfrac12}", "#### 0.5", "0.5", 0.5, ["7", r"\frac{1}{2}"], "#### 1,000"]
    completions = [r"The answer is $\boxed{\frac{2}{4}}$."] * 7 + [r"\boxed{1000}"]
    assert reward(completions=completions, answer=golds) == [1.0] * 8
    assert gold_latex("The answer is 42") == "The answer is 42"  # prose is not wrapped into a product of letters


def test_unparsable_gold_is_none_with_its_reason():
    composed = compose({"rewards": {"acc": {"use": "math_verify"}}})
    rows = [
        {"completion": r"\boxed{1}", "answer": "hello"},
        {"completion": r"\boxed{1}", "answer": "1"},
        {"completion": r"\boxed{1}", "answer": None},
    ]
    scores = score_rows(composed, rows)
    assert scores.components["acc"] == [None, 1.0, None]
    assert scores.none_reasons["acc"] == {"no reference": 1, "unparsable gold": 1}
    assert scores.none_lines() == ["acc: None for 2 of 3 rows (no reference: 1, unparsable gold: 1)"]


def test_each_distinct_gold_is_parsed_once_per_call(monkeypatch):
    calls = []
    real = math_verify_rewards.run_items

    def recording(fn, items, timeout, workers):
        calls.append((fn.__name__, list(items)))
        return real(fn, items, timeout, workers)

    monkeypatch.setattr(math_verify_rewards, "run_items", recording)
    golds = [g for g in ("1", "2", "3") for _ in range(8)]  # GRPO: each gold repeated num_generations times
    scores = get_reward("math_verify")(completions=[r"\boxed{2}"] * 24, answer=golds)
    assert scores == [0.0] * 8 + [1.0] * 8 + [0.0] * 8
    assert calls[0][0] == "parse_gold" and [gold for gold, _ in calls[0][1]] == ["1", "2", "3"]
    assert calls[1][0] == "check_answer" and len(calls[1][1]) == 3  # one per distinct (gold, completion)


def test_missing_extra_is_one_line_naming_it():
    code = (
        "import sys; sys.modules['math_verify'] = None\n"
        "from rewardkit.cli.main import main\n"
        "sys.argv = ['rewardkit', 'score', sys.argv[2], '--input', sys.argv[1]]\n"
        "main()"
    )
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        rows, spec = Path(tmp, "rows.jsonl"), Path(tmp, "spec.yaml")
        rows.write_text(json.dumps({"completion": r"\boxed{1}", "answer": "1"}) + "\n")
        spec.write_text("rewards:\n  acc: {use: math_verify}\n")
        proc = subprocess.run(
            [sys.executable, "-c", code, str(rows), str(spec)], capture_output=True, text=True, timeout=120
        )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'rewardkit[math]'" in lines[0] and "math_verify" in lines[0], lines


def test_missing_extra_from_python():
    code = "import sys; sys.modules['math_verify'] = None\nimport rewardkit\nrewardkit.get_reward('math_verify')"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "ConfigError" in proc.stderr and "rewardkit[math]" in proc.stderr


def test_bad_params_are_config_errors():
    with pytest.raises(ConfigError, match="workers"):
        get_reward("math_verify", workers=0)
    with pytest.raises(ConfigError, match="timeout"):
        get_reward("math_verify", timeout=float("inf"))


def _score_in_child(queue):
    """Runs in a spawned process: the same reward, the same rows."""
    reward = get_reward("math_verify", reference="solution")
    queue.put(reward(completions=COMPLETIONS[:64], solution=GOLDS[:64]))


def test_same_numbers_from_the_main_thread_8_threads_and_a_spawned_process():
    reward = get_reward("math_verify", reference="solution")
    expected = reward(completions=COMPLETIONS[:64], solution=GOLDS[:64])
    assert expected.count(1.0) >= 10 and expected.count(0.0) >= 10
    results: list = [None] * 8

    def work(k):
        results[k] = reward(completions=COMPLETIONS[:64], solution=GOLDS[:64])

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert results == [expected] * 8
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=_score_in_child, args=(queue,))
    child.start()
    try:
        assert queue.get(timeout=300) == expected
    finally:
        child.join(60)


def test_a_pathological_item_is_bounded_by_its_deadline_in_a_thread():
    reward = get_reward("math_verify", timeout=2.0)
    completions = [SLOW, r"\boxed{1}", SLOW, r"\boxed{2}"]
    result: dict = {}

    def work():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            start = time.monotonic()
            result["scores"] = reward(completions=completions, answer=["0", "1", "0", "2"])
            result["seconds"] = time.monotonic() - start
        result["warnings"] = [str(w.message) for w in caught]

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(120)  # unbounded, math-verify in a thread holds the interpreter far longer than this
    assert result["scores"] == [0.0, 1.0, 0.0, 1.0]
    # Two 2 s deadlines run side by side on the two workers; the rest is start-up slack on a loaded machine.
    assert result["seconds"] < 12.0, result
    assert reward.timeout_count == 2
    assert any("2 of 4 completions ran past their 2.0s deadline" in w for w in result["warnings"])


def test_on_timeout_none_counts_the_reason():
    composed = compose({"rewards": {"acc": {"use": "math_verify", "timeout": 1.0, "on_timeout": "none"}}})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores = score_rows(
            composed, [{"completion": SLOW, "answer": "0"}, {"completion": r"\boxed{3}", "answer": "3"}]
        )
    assert scores.components["acc"] == [None, 1.0]
    assert scores.none_reasons["acc"] == {"timeout": 1}


def test_a_script_without_a_main_block_gets_the_fix(tmp_path):
    script = tmp_path / "score.py"
    script.write_text(
        "from rewardkit import get_reward\nprint(get_reward('math_verify')(completions=['1'], answer=['1']))\n"
    )
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "ConfigError" in proc.stderr and "if __name__ == '__main__':" in proc.stderr.strip().splitlines()[-1]


def test_select_reports_unparsable_golds(tmp_path):
    from rewardkit.selection.checkpoints import none_lines, select

    for step in (1, 2):
        records = [
            {"id": "a", "output": r"\boxed{\frac{1}{2}}", "answer": "0.5"},
            {"id": "b", "output": r"\boxed{1}", "answer": "hello"},
            {"id": "c", "output": r"\boxed{3}" if step == 2 else "no", "answer": r"(x+1)^2 - x^2 - 2x + 2"},
        ]
        (tmp_path / f"step_{step}.json").write_text(json.dumps({"step": step, "epoch": step, "records": records}))
    result = select(tmp_path, {"rewards": {"acc": {"use": "math_verify"}}}, bootstrap=0)
    assert result.best.step == 2
    assert none_lines(result) == ["acc: None for 2 of 6 rows over 2 checkpoints (unparsable gold: 2)"]


@pytest.mark.slow
def test_in_trls_real_grpo_trainer(tiny_lm_dir, tmp_path, trainer_defaults):
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    composed = compose({"rewards": {"acc": {"use": "math_verify"}, "fmt": "think_format"}, "combine": "acc + fmt"})
    kwargs, weights = composed.to_trl_kwargs()
    # One step takes both prompts; an unparsable gold is None for math_verify, which TRL leaves out.
    rows = [{"prompt": "1+2=", "answer": "3"}, {"prompt": "x=", "answer": "hello"}]
    args = GRPOConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=8,
        num_generations=4,
        max_completion_length=8,
        reward_weights=weights,
        **{**trainer_defaults, "max_steps": 1},
    )
    trainer = GRPOTrainer(model=str(tiny_lm_dir), args=args, train_dataset=Dataset.from_list(rows), **kwargs)
    trainer.train()
    logged = [h for h in trainer.state.log_history if "rewards/acc/mean" in h]
    assert logged and logged[0]["rewards/acc/mean"] == 0.0  # a tiny random model answers nothing right
    assert composed.components["acc"].none_reasons == {"unparsable gold": 4}


def test_a_plain_gold_in_scientific_notation_is_its_number():
    """math-verify reads a bare `1e10` as 1: gold "1e10" scored \\boxed{1} right and \\boxed{10000000000} wrong."""
    reward = get_reward("math_verify", reference="answer")
    golds = ["1e10", "1e10", "1.5e-3", "1.5e-3", "1E+3", "-2.5e2"]
    completions = [
        r"\boxed{1}",
        r"\boxed{10000000000}",
        r"\boxed{1}",
        r"\boxed{0.0015}",
        r"\boxed{1000}",
        r"\boxed{-250}",
    ]
    assert reward(completions=completions, answer=golds) == [0.0, 1.0, 0.0, 1.0, 1.0, 1.0]
