"""`rewardkit tiny DIR`: a small random model in the Hugging Face layout, loadable offline (built by rewardkit.core.tiny)."""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from rewardkit.core.errors import ConfigError
from rewardkit.core.fileio import make_temp_dir
from rewardkit.core.output_dirs import foreign_entry
from rewardkit.core.tiny import TEXT_SUFFIXES, data_chars, make_tiny

ARCHES = ("qwen2", "llama")
# The spread of the random weights `rewardkit tiny` draws. At transformers' 0.02 a tiny LM gives the same greedy
# answer to every prompt, so selection statistics on it only ever say "all tied". benchmarks/bench_tiny_answers.py,
# 12 Korean sample questions with the competition system prompt / 24 English prompts, seeds 0-2: 1/12 and 1/24
# distinct at 0.02, 7-11/12 and 17-21/24 at 0.1, 12/12 and 24/24 at 0.2.
DEFAULT_INIT_RANGE = 0.2


@dataclass
class MadeModel:
    """What `rewardkit tiny` built."""

    path: str
    kind: str
    arch: str
    hidden: int
    layers: int
    vocab: int
    parameters: int
    data_chars: int
    seconds: float

    def report(self) -> str:
        """Two lines: what was written, and how to use it."""
        what = {
            "lm": f"{self.arch} causal LM",
            "bert": "BERT",
            "bleurt": "BLEURT-20-shaped checkpoint",
            "classifier": f"{self.arch} reward model",
        }[self.kind]
        use = {
            "lm": f"model: {self.path}  (or `rewardkit generate {self.path} ...`)",
            "bert": f"--set bertscore.model_type={self.path} --set bertscore.num_layers={self.layers}",
            "bleurt": f"--set bleurt.model={self.path}  (e.g. with the official_full preset)",
            "classifier": f"rewards: {{rm: {{use: reward_model, model: {self.path}}}}}",
        }[self.kind]
        return (
            f"Wrote a tiny random {what} to {self.path} (hidden {self.hidden}, {self.layers} layers, "
            f"{self.vocab} tokens incl. {self.data_chars} characters of your data, "
            f"{self.parameters / 1e6:.2f}M parameters) in {self.seconds:.1f} s.\nUse it: {use}"
        )


MAX_HIDDEN_SQUARED_LAYERS = 4096 * 4096 * 3  # at most about 0.6B parameters (2.4 GB of fp32 weights)


def make(
    directory: str | Path,
    data: list[Path],
    *,
    arch: str = "qwen2",
    hidden: int = 64,
    layers: int = 2,
    bert: bool = False,
    classifier: bool = False,
    bleurt: bool = False,
    seed: int = 0,
    init_range: float = DEFAULT_INIT_RANGE,
) -> MadeModel:
    """Build the model into a temporary folder next to `directory`, then rename it into place."""
    start = time.perf_counter()
    directory = Path(directory)
    chosen = [flag for flag, on in (("--bert", bert), ("--bleurt", bleurt), ("--classifier", classifier)) if on]
    if len(chosen) > 1:
        raise ConfigError(f"tiny: {' and '.join(chosen)} exclude each other.", hint="one model per folder.")
    if (
        isinstance(init_range, bool) or not isinstance(init_range, (int, float)) or not 0 < init_range <= 10
    ):  # NaN and inf fail too
        raise ConfigError(
            f"tiny: --init-range {init_range!r} is not in (0, 10].", hint=f"--init-range {DEFAULT_INIT_RANGE}."
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ConfigError(f"tiny: --seed {seed!r} is not an integer in [0, 2**32).", hint="--seed 0.")
    if not (bert or bleurt) and hidden % 2:  # each attention head's size must be even (rotary embeddings)
        raise ConfigError(f"tiny: --hidden {hidden} is odd; the heads need an even size.", hint="--hidden 64.")
    if hidden * hidden * layers > MAX_HIDDEN_SQUARED_LAYERS:  # about 12 * hidden**2 weights per layer, in fp32
        raise ConfigError(
            f"tiny: --hidden {hidden} --layers {layers} makes about {12 * hidden * hidden * layers / 1e9:.1f}B "
            "parameters; a tiny model is for CPU tests and this would not fit in memory.",
            hint="--hidden 64 --layers 2 (at most --hidden 1024 with 48 layers, or 4096 with 3).",
        )
    if arch not in ARCHES:
        raise ConfigError(f"tiny: --arch {arch!r} is not supported.", hint="--arch qwen2 or --arch llama.")
    if directory.exists() and (not directory.is_dir() or foreign_entry(directory, lambda entry: False) is not None):
        raise ConfigError(f"tiny: {directory} exists and is not an empty folder.", hint="name a new folder.")
    if bert and ("t5" in str(directory) or str(directory).startswith("scibert")):
        raise ConfigError(
            f"tiny: bert-score misreads a model path containing 't5' or starting with 'scibert' ({directory}).",
            hint="name the folder differently, e.g. tiny-bert.",
        )
    for path in data:
        if not path.is_file():
            why = "not a regular file" if path.exists() else "no such file"
            raise ConfigError(f"tiny: --from {path}: {why}.", hint="the train/dev files of your task.")
        if path.suffix.lower() not in TEXT_SUFFIXES:
            raise ConfigError(
                f"tiny: --from {path}: unsupported file type.", hint=f"one of {', '.join(TEXT_SUFFIXES)}."
            )
    heads = next(h for h in (4, 2, 1) if hidden % h == 0 and (hidden // h) % 2 == 0) if not (bert or bleurt) else 1
    try:
        chars = data_chars(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"tiny: cannot read the --from data ({exc}).", hint="UTF-8 JSON lines or text.") from None
    kind = "bert" if bert else "bleurt" if bleurt else "classifier" if classifier else "lm"
    if bleurt:
        try:
            import sentencepiece  # noqa: F401  the tiny BLEURT's vocabulary is a SentencePiece model
        except ImportError:
            raise ConfigError(
                "tiny: --bleurt needs the sentencepiece package.", hint="pip install 'rewardkit[bleurt]'."
            ) from None
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # "Writing model shards" for a 100 kB file says nothing
    tmp = make_temp_dir(directory.parent if str(directory.parent) else ".", f".{directory.name}-")
    try:
        make_tiny(
            tmp,
            kind,
            chars,
            arch=arch,
            hidden_size=hidden,
            num_layers=layers,
            num_heads=heads,
            seed=seed,
            init_range=float(init_range),
        )
        if directory.exists():
            directory.rmdir()  # empty (checked above)
        os.rename(tmp, directory)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    vocab, parameters = _size(directory, kind)
    return MadeModel(
        str(directory),
        kind,
        arch,
        hidden,
        layers,
        vocab,
        parameters,
        len(chars) if kind in ("lm", "classifier") else len([c for c in chars if c.isalnum()]),
        round(time.perf_counter() - start, 1),
    )


def _size(directory: Path, kind: str) -> tuple[int, int]:
    """(vocabulary size, parameter count) read back from the saved folder."""
    import json
    import math

    from safetensors import safe_open

    config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    if kind == "bleurt":  # bleurt-pytorch's format: pytorch_model.bin, as the BLEURT-20 hub repositories ship it
        import torch

        state = torch.load(directory / "pytorch_model.bin", map_location="cpu", weights_only=True)
        return int(config.get("vocab_size", 0)), sum(v.numel() for v in state.values())
    with safe_open(str(directory / "model.safetensors"), "np") as f:
        count = sum(math.prod(f.get_slice(key).get_shape()) for key in f.keys())
    return int(config.get("vocab_size", 0)), count
