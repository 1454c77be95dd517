"""How different the greedy answers of a `rewardkit tiny` model are from row to row, by initialisation.

    python benchmarks/bench_tiny_answers.py [--init-ranges 0.02,0.05,0.1,0.2] [--seeds 0,1,2] [--new-tokens 32]

A tiny random LM drawn with transformers' default spread (initializer_range 0.02) gives nearly the same greedy
answer to every prompt (issue 29: 5 distinct answers on 127 competition dev rows; 121 at 0.1), so checkpoint
selection on it only ever reports "all tied". For each spread and seed this builds the model `rewardkit tiny DIR
--from <data>` builds (qwen2, hidden 64, 2 layers; `rewardkit.cli.tiny_command.make`) and counts the distinct
greedy answers (`rewardkit.engines.hf.generate_texts`, the engine of `rewardkit generate`) on:

- korean: the 12 questions of plugins/rewardkit-korean's sample.jsonl with the competition example's system
  prompt (examples/competition/grpo_qlora.yaml), the case of the issue;
- english: the 24 user turns of examples/data/capybara_sample.jsonl and ultrafeedback_sample.jsonl, no system.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
KOREAN = ROOT / "plugins" / "rewardkit-korean" / "src" / "rewardkit_korean" / "data" / "sample.jsonl"
ENGLISH = [
    ROOT / "examples" / "data" / "capybara_sample.jsonl",
    ROOT / "examples" / "data" / "ultrafeedback_sample.jsonl",
]
SYSTEM = (
    '당신은 한국어 어문 규범 전문가입니다. 질문에 답할 때 먼저 올바른 문장을 "…"가 옳다. 형식으로 쓰고, '
    "이어서 그 이유를 설명하세요."
)


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def prompt_sets() -> dict[str, list]:
    korean = [
        [{"role": "system", "content": SYSTEM}, {"role": "user", "content": row["input"]["question"]}]
        for row in _lines(KOREAN)
    ]
    english = []
    for path in ENGLISH:
        for row in _lines(path):
            turns = row.get("messages") or row.get("chosen")
            english.append([next(t for t in turns if t["role"] == "user")])
    return {"korean": korean, "english": english}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--init-ranges", default="0.02,0.05,0.1,0.2")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--json", action="store_true")
    opts = parser.parse_args()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rewardkit.cli.tiny_command import DEFAULT_INIT_RANGE, make
    from rewardkit.engines.hf import generate_texts

    torch.set_num_threads(1)
    sets = prompt_sets()
    results = []
    with tempfile.TemporaryDirectory(prefix="rk-bench-tiny-") as tmp:
        for init in [float(x) for x in opts.init_ranges.split(",")]:
            for seed in [int(x) for x in opts.seeds.split(",")]:
                folder = Path(tmp) / f"lm-{init}-{seed}"
                make(folder, [KOREAN, *ENGLISH], init_range=init, seed=seed)
                model = AutoModelForCausalLM.from_pretrained(folder)
                tok = AutoTokenizer.from_pretrained(folder)
                row = {"init_range": init, "seed": seed}
                for name, prompts in sets.items():
                    answers = generate_texts(model, tok, prompts, max_new_tokens=opts.new_tokens)
                    row[name] = len(set(answers))
                    row[f"{name}_rows"] = len(prompts)
                results.append(row)
                print(json.dumps(row), file=sys.stderr)
    if opts.json:
        print(json.dumps(results, indent=2))
        return
    print(f"distinct greedy answers, {opts.new_tokens} new tokens (default --init-range {DEFAULT_INIT_RANGE})")
    print(f"{'init_range':>10}{'seed':>6}{'korean':>10}{'english':>10}")
    for r in results:
        print(
            f"{r['init_range']:>10}{r['seed']:>6}{r['korean']:>6}/{r['korean_rows']:<3}{r['english']:>6}/{r['english_rows']:<3}"
        )


if __name__ == "__main__":
    main()
