"""Throughput of the `bleurt` reward on CPU (pairs/s): the tiny parity checkpoint and a BLEURT-20-D3-sized one.

    python benchmarks/bench_bleurt.py            # 64 prompts x G=8 completions, 3 repeats
    python benchmarks/bench_bleurt.py --quick    # 16 prompts x G=4, 1 repeat

Needs sentencepiece (`pip install 'rewardkit[bleurt]'`). No hub access: the tiny checkpoint is
tests/fixtures/bleurt_tiny; the D3-sized one is random weights in bleurt-pytorch's format with BLEURT-20-D3's
published size (3 layers, ~30M parameters; the dimensions below are assumed: hidden 256, 4 heads, intermediate
1024, embedding_size 256, vocab 119547), tokenized with the tiny fixture's vocabulary (ids fit any vocab).
Both sides run in this process on the same GRPO-shaped batch: a reference repeats G times and some completions
repeat. "plain" is the bleurt-pytorch README loop written on the same model: every row, in order, batches of
32 padded to the longest. Rates count rows of the batch per second (CPU time of this process, torch on
1 thread unless --threads).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

FIXTURE = ROOT / "tests" / "fixtures" / "bleurt_tiny"
D3 = {
    "vocab_size": 119547,
    "hidden_size": 256,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "intermediate_size": 1024,
    "embedding_size": 256,
    "max_position_embeddings": 512,
}
WORDS = (
    "the a cat sat on mat bird chirps by window this is random sentence quick brown fox jumps over lazy dog "
    "고양이가 매트 위에 앉았다 띄어쓰기는 단어 단위로 한다 어간 뒤에 어미가 붙는다 옳다"
).split()


def make_d3(folder: Path) -> Path:
    """A random checkpoint of D3's size, written as bleurt-pytorch writes its checkpoints."""
    import torch
    from transformers import RemBertConfig, RemBertForSequenceClassification

    torch.manual_seed(0)
    cfg = RemBertConfig(
        vocab_size=D3["vocab_size"],
        hidden_size=D3["hidden_size"],
        input_embedding_size=D3["embedding_size"],
        output_embedding_size=D3["embedding_size"],
        num_hidden_layers=D3["num_hidden_layers"],
        num_attention_heads=D3["num_attention_heads"],
        intermediate_size=D3["intermediate_size"],
        max_position_embeddings=512,
        num_labels=1,
    )
    state = RemBertForSequenceClassification(cfg).state_dict()
    renamed = {}
    for key, value in state.items():
        key = key.replace("encoder.embedding_hidden_mapping_in.", "encoder.embedding_projection.")
        renamed[key.replace("rembert.", "bleurt.", 1)] = value
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(renamed, folder / "pytorch_model.bin")
    (folder / "config.json").write_text(
        json.dumps({**D3, "model_type": "bleurt", "hidden_act": "gelu", "type_vocab_size": 2, "pad_token_id": 0})
    )
    for name in ("spm.model", "tokenizer_config.json", "special_tokens_map.json"):
        (folder / name).write_bytes((FIXTURE / name).read_bytes())
    return folder


def batch(rng: random.Random, prompts: int, g: int) -> tuple[list[str], list[str]]:
    def sent(lo: int, hi: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))

    completions, references = [], []
    for _ in range(prompts):
        ref, shared = sent(8, 30), sent(5, 25)
        for k in range(g):
            completions.append(shared if k % 3 == 0 else sent(5, 30))  # a third repeat one completion
            references.append(ref)
    return completions, references


def plain(reward, completions: list[str], references: list[str]) -> list[float]:
    """Every row, in order, batches of 32 padded to the longest (bleurt-pytorch README style)."""
    import torch

    tok, net = reward.model()
    out = []
    with torch.inference_mode():
        for start in range(0, len(completions), 32):
            pairs = [
                tok.pair(tok.encode(r), tok.encode(c), 512)
                for r, c in zip(references[start : start + 32], completions[start : start + 32])
            ]
            width = max(len(ids) for ids, _ in pairs)
            ids = torch.tensor([p[0] + [tok.pad] * (width - len(p[0])) for p in pairs])
            types = torch.tensor([p[1] + [0] * (width - len(p[1])) for p in pairs])
            mask = torch.tensor([[1] * len(p[0]) + [0] * (width - len(p[0])) for p in pairs])
            out += net(input_ids=ids, token_type_ids=types, attention_mask=mask).logits[:, 0].tolist()
    return out


def cpu_time(fn) -> tuple[float, object]:
    start = time.process_time()
    result = fn()
    return time.process_time() - start, result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import torch

    from rewardkit import get_reward

    torch.set_num_threads(args.threads)
    prompts, g, repeats = (16, 4, 1) if args.quick else (64, 8, 3)
    completions, references = batch(random.Random(0), prompts, g)
    n = len(completions)
    print(
        f"GRPO-shaped batch: {prompts} prompts x G={g} = {n} rows, "
        f"{len(set(zip(references, completions)))} distinct pairs; torch threads {args.threads}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for label, folder in (("tiny (fixture)", FIXTURE), ("D3-sized", make_d3(Path(tmp) / "d3"))):
            reward = get_reward("bleurt", model=str(folder), device="cpu", reference="ref")
            reward.model()  # the load is not timed
            ours, base = [], []
            for _ in range(repeats):  # interleaved
                t, got = cpu_time(lambda reward=reward: reward(completions=completions, ref=references))
                ours.append(t)
                t, want = cpu_time(lambda reward=reward: plain(reward, completions, references))
                base.append(t)
            worst = max(abs(a - b) for a, b in zip(got, want))
            print(
                f"  {label:15s} bleurt reward {n / min(ours):8.1f} pairs/s   plain loop {n / min(base):8.1f} pairs/s"
                f"   -> {min(base) / min(ours):.2f}x   (max |diff| {worst:.1e})"
            )


if __name__ == "__main__":
    main()
