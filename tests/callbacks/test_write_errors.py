"""A write that fails (a full disk, a file-size limit, a read-only folder) is one line naming the path."""

from __future__ import annotations

import subprocess
import sys
import textwrap

# A real failing write without root: RLIMIT_FSIZE makes every write past the limit fail with EFBIG (SIGXFSZ
# ignored), as a full disk fails with ENOSPC, from the OS through safetensors, torch and Python alike.
LIMITED = """
import resource, signal, sys, warnings
warnings.simplefilter("ignore")
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
"""


def _run(body: str, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", LIMITED + textwrap.dedent(body), *args], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_library_write_errors_become_one_line_naming_the_target(tmp_path):
    out = _run(
        """
        import torch, safetensors.torch as st
        from rewardkit.core.write_errors import writing
        from rewardkit import DataError
        for label, save in (
            ("safetensors", lambda p: st.save_file({"w": torch.zeros(100_000)}, p)),
            ("torch", lambda p: torch.save({"w": torch.zeros(100_000)}, p)),
            ("python", lambda p: open(p, "wb").write(b"x" * 100_000)),
        ):
            try:
                with writing(sys.argv[1] + "/" + label, "stage 'grpo'"):
                    save(sys.argv[1] + "/" + label)
            except DataError as exc:
                print(exc)
        """,
        str(tmp_path),
    )
    lines = out.splitlines()
    assert len(lines) == 3, out
    assert lines[0].startswith(f"stage 'grpo': writing {tmp_path}/safetensors failed: File too large.")
    assert f"writing {tmp_path}/torch failed: " in lines[1] and f"writing {tmp_path}/python failed: " in lines[2]
    assert all("Hint: check the disk and the folder" in line for line in lines)


def test_lora_save_on_a_full_disk_names_its_folder(tiny_lm_dir, tmp_path):
    out = _run(
        """
        from transformers import AutoModelForCausalLM, TrainerState, TrainingArguments
        import rewardkit
        model = AutoModelForCausalLM.from_pretrained(sys.argv[1])
        args = TrainingArguments(output_dir=sys.argv[2], report_to="none", use_cpu=True)
        try:
            rewardkit.get_callback("lora_save").on_save(args, TrainerState(global_step=3), None, model=model)
        except rewardkit.DataError as exc:
            print(exc)
        """,
        str(tiny_lm_dir),
        str(tmp_path),
    )
    assert out.startswith(f"lora_save: writing {tmp_path}/adapters/step_3 failed: File too large."), out
    assert "\n" not in out and not [p for p in (tmp_path / "adapters").iterdir()]  # no half-written folder left


def test_merge_adapter_on_a_full_disk_names_its_folder(tiny_lm_dir, tmp_path):
    """The merge after a LoRA stage writes a whole model: a failed write is one line naming merged/, no temp
    folder is left beside it."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    adapter = tmp_path / "final"
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_lm_dir), LoraConfig(r=2, task_type="CAUSAL_LM"))
    model.save_pretrained(adapter)
    AutoTokenizer.from_pretrained(tiny_lm_dir).save_pretrained(adapter)
    out = _run(
        """
        from rewardkit import DataError
        from rewardkit.train.config import load_stages
        from rewardkit.train.stages import merge_adapter
        stage = load_stages({"stage": "sft", "model": sys.argv[1], "dataset": {"generator": "arithmetic"}})[0][0]
        try:
            merge_adapter(stage, sys.argv[1], sys.argv[2], sys.argv[3])
        except DataError as exc:
            print(exc)
        """,
        str(tiny_lm_dir),
        str(adapter),
        str(tmp_path / "merged"),
    )
    assert out.startswith(f"stage 'sft': merging the adapter: writing {tmp_path}/merged failed: "), out
    assert "failed: File too large." in out and "\n" not in out, out
    # no merged/, no temp folder beside it (only the run's record of what it writes there)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".rewardkit-written.jsonl", "final"]
