"""Loading a model for inference: an adapter's pickled weights are refused unless they load safely."""

from __future__ import annotations

import os
import shlex

import pytest


def test_a_pickled_adapter_with_code_is_refused_as_unsafe(tiny_lm_dir, tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from rewardkit.core.errors import ConfigError
    from rewardkit.generation import load_model_for_inference

    adapter = tmp_path / "adapter"
    lora = LoraConfig(r=2, target_modules=["q_proj"], task_type="CAUSAL_LM")
    get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_lm_dir), lora).save_pretrained(adapter)
    (adapter / "adapter_model.safetensors").unlink()
    torch.save({"weight": _RunsCode(str(tmp_path / "ran"))}, adapter / "adapter_model.bin")
    with pytest.raises(
        ConfigError,
        match=r"adapter '.*adapter': a pickled weights file \(.bin\) could not be loaded "
        r"safely: .*unsupported GLOBAL posix.system.*Hint: use weights saved as "
        r".safetensors",
    ):
        load_model_for_inference(str(tiny_lm_dir), adapter, device="cpu")
    assert not (tmp_path / "ran").exists()


class _RunsCode:
    """Unpickling this runs a shell command (what a crafted adapter_model.bin does)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {shlex.quote(self.path)}",))
