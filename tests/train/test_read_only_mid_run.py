"""A run folder that turns read-only mid-run, for real: the error is one line naming the write that failed
(never the lock file), exit 2.

As root, permissions do not stop writes, so in a mount namespace of the run's own the folder is bind-mounted onto
itself and that mount made read-only after checkpoint-2 (`unshare --mount` as root, `unshare --user
--map-root-user --mount` otherwise; nothing outside the namespace sees it); without a permitted namespace a user
that is not root gets `chmod`. Skipped, saying why, where neither
is possible (root in a container that may not mount).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TESTS

SCRIPT = TESTS / "scripts" / "train_readonly.py"
NAMESPACES = (["unshare", "--mount"], ["unshare", "--user", "--map-root-user", "--mount"])


def _namespace(probe: Path) -> list[str] | None:
    """The first unshare command under which a folder can be bind-mounted read-only onto itself, else None."""
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        return None
    probe.mkdir()
    check = f"mount --bind {probe} {probe} && mount -o remount,bind,ro {probe} && ! touch {probe}/x 2>/dev/null"
    for command in NAMESPACES:
        try:
            done = subprocess.run([*command, "sh", "-c", check], capture_output=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0:
            return command
    return None


@pytest.mark.slow
def test_a_run_folder_turned_read_only_mid_run_names_the_write_that_failed(tiny_lm_dir, tmp_path):
    run = tmp_path / "run"
    namespace = _namespace(tmp_path / "probe")
    if namespace is None and os.geteuid() == 0:
        pytest.skip(
            "root without permission to mount a tmpfs in a mount namespace (unshare/mount refused): "
            "chmod does not stop root's writes, and there is no other real read-only folder here"
        )
    rows = tmp_path / "messages.jsonl"
    chat = [{"role": "user", "content": "1+1?"}, {"role": "assistant", "content": "2"}]
    rows.write_text("".join(json.dumps({"messages": chat}) + "\n" for _ in range(8)))
    config = tmp_path / "c.json"
    trainer = {
        "max_steps": 4,
        "per_device_train_batch_size": 2,
        "max_length": 16,
        "logging_steps": 1,
        "save_strategy": "steps",
        "save_steps": 2,
        "use_cpu": True,
        "report_to": "none",
        "disable_tqdm": True,
        "activation_checkpointing": False,
        "seed": 0,
    }
    config.write_text(
        json.dumps(
            {
                "stage": "sft",
                "model": str(tiny_lm_dir),
                "output_dir": str(run),
                "dataset": {"path": str(rows)},
                "trainer": trainer,
            }
        )
    )
    train = [
        sys.executable,
        str(SCRIPT),
        "remount" if namespace else "chmod",
        "2",
        str(run),
        "--",
        "train",
        str(config),
    ]
    if namespace:
        run.mkdir()  # the bind mount needs the folder; an empty one is the run's to claim
        train = [*namespace, *train]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "300"}
    try:
        proc = subprocess.run(train, capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    finally:
        for root, _, _ in os.walk(run):
            os.chmod(root, 0o755)  # the chmod form: let pytest clean up
    assert "is read-only now" in proc.stderr, proc.stderr[-3000:]
    assert proc.returncode == 2, proc.stderr[-3000:]
    error = [line for line in proc.stderr.splitlines() if line.startswith("Error:")]
    assert len(error) == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    named = Path(error[0].removeprefix("Error: ").split(": ", 1)[0])  # the path the error is about
    assert named.parent == run and named.name not in (".rewardkit-train.lock", ".rewardkit-written.jsonl"), error[0]
    assert ("read-only file system" if namespace else "permission denied") in error[0].lower(), error[0]
    assert "writable again" in error[0], error[0]
    assert (run / "checkpoint-2" / "trainer_state.json").is_file() and not (run / "checkpoint-4").exists()


def test_a_read_only_folder_names_the_write_the_record_precedes(tmp_path):
    """The record line goes before its write: a folder turned read-only fails there, naming that write."""
    namespace = _namespace(tmp_path / "probe")
    if namespace is None:
        pytest.skip("no mount namespace in which a folder can be made read-only (unshare/mount refused)")
    run = tmp_path / "run"
    run.mkdir()
    code = (
        "import sys\n"
        "from rewardkit.core import written\n"
        "from rewardkit.core.errors import DataError\n"
        "try:\n"
        f"    written.note({str(run)!r}, {str(run / 'checkpoint-2')!r}, 'pending')\n"
        "except DataError as exc:\n"
        "    print(exc)\n"
    )
    script = f'mount --bind {run} {run} && mount -o remount,bind,ro {run} && {sys.executable} -c "$0"'
    done = subprocess.run([*namespace, "sh", "-c", script, code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith(f"{run / 'checkpoint-2'}: cannot be written"), done.stdout
    assert f"the run folder {run} is not writable" in done.stdout and f"make {run} writable again" in done.stdout
