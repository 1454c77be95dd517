"""`rewardkit train ...` that SIGKILLs itself at a chosen point, like a preempted machine (no clean-up, no atexit).

Usage: train_kill.py after-save|in-save STEP STAGE_DIR_SUFFIX -- <rewardkit arguments>
  after-save: right after every callback's on_save of STEP (checkpoint-STEP complete).
  in-save:    while checkpoint-STEP's trainer_state.json is half written (the Trainer writes it last).
Only the stage whose output_dir ends with STAGE_DIR_SUFFIX is killed.
"""

import os
import signal
import sys


def main() -> None:
    mode, step, suffix = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    sys.argv = ["rewardkit", *sys.argv[5:]]
    from transformers import TrainerCallback
    from transformers.trainer_callback import TrainerState

    from rewardkit.cli import main as cli
    from rewardkit.train import pipeline

    if mode == "after-save":

        class KillAfterSave(TrainerCallback):
            def on_save(self, args, state, control, **kwargs):
                if state.global_step == step and args.output_dir.endswith(suffix):
                    os.kill(os.getpid(), signal.SIGKILL)

        build = pipeline.build_callbacks
        pipeline.build_callbacks = lambda *a, **k: build(*a, **k) + [KillAfterSave()]  # after the real ones
    else:
        save = TrainerState.save_to_json

        def save_then_die(self, json_path):
            if f"{suffix}/checkpoint-{step}/" in json_path.replace(os.sep, "/"):
                with open(json_path, "w", encoding="utf-8") as handle:
                    handle.write('{"global_step": ')  # cut short, as a kill mid-write leaves it
                os.kill(os.getpid(), signal.SIGKILL)
            return save(self, json_path)

        TrainerState.save_to_json = save_then_die
    cli.main()


if __name__ == "__main__":
    main()
