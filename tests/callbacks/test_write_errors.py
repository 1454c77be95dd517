"""A write that fails (a full disk, a file-size limit, a read-only folder) is one line naming the path."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

# A real failing write without root: RLIMIT_FSIZE makes every write past the limit fail with EFBIG (SIGXFSZ
# ignored), as a full disk fails with ENOSPC, from the OS through safetensors, torch and Python alike.
LIMITED = """
import resource, signal, sys, warnings
warnings.simplefilter("ignore")
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
"""


_LIBRARY = """
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
"""
_LORA_SAVE = """
from transformers import AutoModelForCausalLM, TrainerState, TrainingArguments
import rewardkit
model = AutoModelForCausalLM.from_pretrained(sys.argv[1])
args = TrainingArguments(output_dir=sys.argv[2], report_to="none", use_cpu=True)
try:
    rewardkit.get_callback("lora_save").on_save(args, TrainerState(global_step=3), None, model=model)
except rewardkit.DataError as exc:
    print(exc)
"""
_MERGE = """
from rewardkit import DataError
from rewardkit.train.config import load_stages
from rewardkit.train.stages import merge_adapter
stage = load_stages({"stage": "sft", "model": sys.argv[1], "dataset": {"generator": "arithmetic"}})[0][0]
try:
    merge_adapter(stage, sys.argv[1], sys.argv[2], sys.argv[3])
except DataError as exc:
    print(exc)
"""


@pytest.fixture(scope="module")
def limited(tiny_lm_dir, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str]]:
    """{case: (its folder, what it printed)}: the three cases below, one after another in one size-limited
    interpreter (one start of torch and transformers instead of three), each writing only in its own folder."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folders = {name: tmp_path_factory.mktemp(name) for name in ("library", "lora_save", "merge")}
    adapter = folders["merge"] / "final"  # what a LoRA stage leaves for the merge
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_lm_dir), LoraConfig(r=2, task_type="CAUSAL_LM"))
    model.save_pretrained(adapter)
    AutoTokenizer.from_pretrained(tiny_lm_dir).save_pretrained(adapter)
    cases = [
        ("library", _LIBRARY, [folders["library"]]),
        ("lora_save", _LORA_SAVE, [tiny_lm_dir, folders["lora_save"]]),
        ("merge", _MERGE, [tiny_lm_dir, adapter, folders["merge"] / "merged"]),
    ]
    script = LIMITED
    for name, body, args in cases:
        script += f"\ndef {name}():\n{textwrap.indent(body.strip(), '    ')}\n"
        script += f"print('@@ {name}', flush=True)\nsys.argv = ['-c', *{[str(a) for a in args]!r}]\n{name}()\n"
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    said = dict(part.split("\n", 1) if "\n" in part else (part, "") for part in proc.stdout.split("@@ ")[1:])
    return {name: (folders[name], said[name].strip()) for name, _, _ in cases}


def test_library_write_errors_become_one_line_naming_the_target(limited):
    folder, out = limited["library"]
    lines = out.splitlines()
    assert len(lines) == 3, out
    assert lines[0].startswith(f"stage 'grpo': writing {folder}/safetensors failed: File too large.")
    assert f"writing {folder}/torch failed: " in lines[1] and f"writing {folder}/python failed: " in lines[2]
    assert all("Hint: check the disk and the folder" in line for line in lines)


def test_lora_save_on_a_full_disk_names_its_folder(limited):
    folder, out = limited["lora_save"]
    assert out.startswith(f"lora_save: writing {folder}/adapters/step_3 failed: File too large."), out
    assert "\n" not in out and not [p for p in (folder / "adapters").iterdir()]  # no half-written folder left


def test_merge_adapter_on_a_full_disk_names_its_folder(limited):
    """The merge after a LoRA stage writes a whole model: a failed write is one line naming merged/, no temp
    folder is left beside it."""
    folder, out = limited["merge"]
    assert out.startswith(f"stage 'sft': merging the adapter: writing {folder}/merged failed: "), out
    assert "failed: File too large." in out and "\n" not in out, out
    # no merged/, no temp folder beside it (only the run's record of what it writes there)
    assert sorted(p.name for p in folder.iterdir()) == [".rewardkit-written.jsonl", "final"]
