"""`rewardkit train ...` whose run folder turns read-only once checkpoint-STEP is saved (when the next step
begins), as a disk remounted read-only (or a folder chmodded) under a running job does.

Usage: train_readonly.py remount|chmod STEP FOLDER -- <rewardkit arguments>
  remount: FOLDER is bind-mounted onto itself and that mount made read-only (`mount -o remount,bind,ro`), in
           this process's own mount namespace: run it under `unshare --mount`, or `unshare --user
           --map-root-user --mount` without root. Files already open for writing (the run lock) stay writable, as
           on a disk remounted under a running job; every new write fails with EROFS.
  chmod:   every folder under FOLDER loses its write permission (stops a user that is not root only).
"""

import os
import subprocess
import sys


def main() -> None:
    mode, step, folder = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    sys.argv = ["rewardkit", *sys.argv[5:]]
    from transformers import TrainerCallback

    from rewardkit.cli import main as cli
    from rewardkit.train import pipeline

    class ReadOnlyAfterSave(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            if state.global_step != step or not os.path.isdir(os.path.join(folder, f"checkpoint-{step}")):
                return
            if mode == "remount":
                subprocess.run(["mount", "--bind", folder, folder], check=True)
                subprocess.run(["mount", "-o", "remount,bind,ro", folder], check=True)
            else:
                for root, _, _ in os.walk(folder):
                    os.chmod(root, 0o555)
            os.write(2, f"train_readonly: {folder} is read-only now\n".encode())  # below the stderr filter

    build = pipeline.build_callbacks
    pipeline.build_callbacks = lambda *a, **k: build(*a, **k) + [ReadOnlyAfterSave()]  # after the real ones
    cli.main()


if __name__ == "__main__":
    main()
