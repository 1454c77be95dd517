"""The reward-hacking alarm on a real CPU GRPO run: a gameable reward (brevity alone) against a held-out exact match.

A tiny model is warm-started to answer "7"; GRPO then trains it on `brevity` only, which never looks at the
answer: the empty completion scores best. The training reward climbs while the held-out exact match falls,
and best_checkpoint(divergence_warn=3, divergence_stop=True) must say so once and stop the run after saving.
"""

from __future__ import annotations

import importlib.util
import json
import logging

import pytest

pytestmark = pytest.mark.slow


def _warm_started(path, steps: int = 17):
    import torch

    from rewardkit.core.tiny import build_char_tokenizer, build_tiny_causal_lm

    tok = build_char_tokenizer()
    model = build_tiny_causal_lm(tok, hidden_size=64, num_layers=2, num_heads=4, seed=0)
    prompts = [f"Q{i}:" for i in range(16)]
    batch = tok([p + "7" + tok.eos_token for p in prompts], return_tensors="pt", padding=True)
    labels = batch["input_ids"].clone()
    labels[batch["attention_mask"] == 0] = -100
    labels[:, : len(tok(prompts[0])["input_ids"])] = -100  # learn the answer only
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):  # stopped early: answers "7" greedily, still samples other lengths
        model(**batch, labels=labels).loss.backward()
        opt.step()
        opt.zero_grad()
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return prompts


def test_gamed_reward_fires_the_alarm_once_and_stops_after_saving(tmp_path, trainer_defaults, caplog):
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    import rewardkit
    from rewardkit.train.events import ForwardEvalMetrics

    report_to = ["tensorboard"] if importlib.util.find_spec("tensorboard") else []  # in the `test` extra
    prompts = _warm_started(tmp_path / "base")
    val = [{"id": i, "prompt": f"Q{i}:", "answer": "7"} for i in range(16, 32)]
    best = rewardkit.get_callback(
        "best_checkpoint", spec={"rewards": {"em": {"use": "exact_match"}}}, divergence_warn=3, divergence_stop=True
    )
    callbacks = rewardkit.link_callbacks(
        [
            rewardkit.get_callback(
                "checkpoint_inference", dataset=val, reference_columns=["answer"], on="save", max_new_tokens=4
            ),
            best,
        ]
    )
    args = GRPOConfig(
        output_dir=str(tmp_path / "run"),
        max_steps=12,
        per_device_train_batch_size=16,
        num_generations=8,
        max_completion_length=4,
        learning_rate=0.01,
        **dict(trainer_defaults, save_strategy="steps", save_steps=2, report_to=report_to),
    )
    trainer = GRPOTrainer(
        model=str(tmp_path / "base"),
        reward_funcs=rewardkit.get_reward("brevity", max_length=3),
        args=args,
        train_dataset=Dataset.from_list([{"prompt": p} for p in prompts]),
        callbacks=callbacks,
    )
    trainer.add_callback(ForwardEvalMetrics(trainer))  # what `rewardkit train` adds: the alarm reaches trackers
    with caplog.at_level(logging.WARNING, logger="rewardkit.callbacks"):
        trainer.train()

    record = json.loads((tmp_path / "run" / "inference" / "scores.json").read_text())
    points = [(c["step"], c["score"], c["train_reward"]) for c in record["checkpoints"]]
    fired = record["divergence"]
    assert fired is not None, points
    step = fired["step"]
    window = [p for p in points if p[0] in fired["steps"]]
    assert len(window) == 3 and window[-1][0] == step
    assert window[-1][2] > window[0][2] and window[-1][1] < window[0][1]  # reward up, held-out down
    # The training reward beside each score is TRL's logged `reward` at that step.
    logged = {e["step"]: e["reward"] for e in trainer.state.log_history if "reward" in e}
    assert all(p[2] == pytest.approx(logged[p[0]]) for p in points)
    # Stopped at the alarm's step, after saving it; warned exactly once; in the Trainer's log history too.
    assert trainer.state.global_step == step < 12 and (tmp_path / "run" / f"checkpoint-{step}").is_dir()
    alarms = [r for r in caplog.records if "reward-hacking alarm" in r.getMessage()]
    assert len(alarms) == 1 and f"at step {step}" in alarms[0].getMessage()
    assert {"eval_score/reward_divergence": 1.0, "step": step}.items() <= next(
        e for e in trainer.state.log_history if "eval_score/reward_divergence" in e
    ).items()
    assert record["best"]["step"] < step  # best/ keeps a checkpoint from before the hacking
    assert sum("eval_score/reward_divergence" in e for e in trainer.state.log_history) == 1  # logged once
    if report_to:  # and the tracker got it, at that step
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        [logdir] = {p.parent for p in (tmp_path / "run").rglob("events.out.tfevents*")}
        events = EventAccumulator(str(logdir))
        events.Reload()
        assert [(e.step, e.value) for e in events.Scalars("eval/score/reward_divergence")] == [(step, 1.0)]
    print(f"alarm fired at step {step}: {fired['message']}")
