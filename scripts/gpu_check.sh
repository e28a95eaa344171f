#!/usr/bin/env bash
# Check the paper's efficiency claim on an NVIDIA GPU in one call.
#
# Trains VGG-19 (the paper's Keras architecture, frozen base, random weights) on
# synthetic CIFAR-shaped data for a few hundred steps: dense, pruned with only the new
# dense layers masked (paper.toml's reading) and pruned with the whole model masked
# (paper-whole-model.toml's), each with the NVML hardware sampler running, and prints
# GPU utilization, memory, power, energy and throughput for each side by side
# (JSON too, with --out). Well under five minutes on one GPU.
#
#   scripts/gpu_check.sh [--steps 400] [--batch-size 32] [--out gpu_check.json]
#
# Without a usable NVIDIA GPU it stops at once with exit status 2 and says why; it
# never reports CPU numbers as GPU ones. PYTHON picks the interpreter (default:
# python3 on PATH).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
python="${PYTHON:-python3}"

if ! command -v nvidia-smi >/dev/null 2>&1; then
    echo "gpu_check: no NVIDIA GPU here (nvidia-smi is not installed); nothing measured." >&2
    exit 2
fi
if ! gpus="$(nvidia-smi -L 2>&1)" || [ -z "$gpus" ]; then
    echo "gpu_check: nvidia-smi finds no usable GPU: ${gpus:-no output}; nothing measured." >&2
    exit 2
fi
echo "$gpus"
cd "$root"
exec "$python" "$here/gpu_check.py" "$@"
