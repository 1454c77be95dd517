"""SFT + LoRA + the three callbacks; optionally SIGKILLs itself right after a save, or resumes.

Usage: kill_resume_run.py MODEL OUT [--kill-after-save STEP | --resume]
"""

import os
import signal
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SPEC = {
    "rewards": {
        "digit": {"use": "format_regex", "pattern": "[0-9]"},
        "e": {"use": "format_regex", "pattern": "e"},
        "short": {"use": "brevity", "max_length": 8},
    },
    "combine": "(digit + e + short) / 3",
}
VAL = [
    {"id": f"q{i}", "prompt": [{"role": "user", "content": f"What is {i}+{i}?"}], "answer": str(2 * i)}
    for i in range(5)
]
TRAIN = [
    {"messages": [{"role": "user", "content": f"What is {i}+{i}?"}, {"role": "assistant", "content": str(2 * i)}]}
    for i in range(8)
]


def main(argv: list[str] | None = None) -> None:
    """Run as a script, or in a test's process (argv given) for the runs nobody kills."""
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import TrainerCallback
    from trl import SFTConfig, SFTTrainer

    import rewardkit

    argv = sys.argv[1:] if argv is None else argv
    model_dir, out = argv[0], argv[1]
    kill_at = int(argv[3]) if len(argv) > 3 and argv[2] == "--kill-after-save" else None

    class KillAfterSave(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            if state.global_step == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)  # no clean-up, no atexit: like a preempted machine

    callbacks = [
        rewardkit.get_callback("lora_save"),
        rewardkit.get_callback(
            "checkpoint_inference", dataset=VAL, reference_columns=["answer"], max_new_tokens=8, batch_size=5
        ),
        rewardkit.get_callback("best_checkpoint", spec=SPEC, top_k=2),
        KillAfterSave(),
    ]
    args = SFTConfig(
        output_dir=out,
        max_steps=6,
        per_device_train_batch_size=2,
        learning_rate=0.1,
        max_length=64,
        save_strategy="steps",
        save_steps=2,
        eval_strategy="steps",
        eval_steps=2,
        metric_for_best_model="eval_score",
        report_to="none",
        use_cpu=True,
        bf16=False,
        fp16=False,
        activation_checkpointing=False,
        logging_steps=1,
        disable_tqdm=True,
        seed=0,
        dataloader_num_workers=0,
    )
    trainer = SFTTrainer(
        model=model_dir,
        args=args,
        train_dataset=Dataset.from_list(TRAIN),
        eval_dataset=Dataset.from_list(TRAIN[:2]),
        callbacks=callbacks,
        peft_config=LoraConfig(
            r=8,
            lora_alpha=16,
            lora_dropout=0.0,
            target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
            task_type="CAUSAL_LM",
        ),
    )
    trainer.train(resume_from_checkpoint="--resume" in argv or None)
    print(f"DONE best={trainer.state.best_model_checkpoint}", flush=True)


if __name__ == "__main__":
    main()
