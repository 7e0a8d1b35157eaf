#!/usr/bin/env bash
# One prepared script for a lent GPU machine: CUDA kernel tests on the device, then GPU
# throughput. Usage (from the repo root on the GPU machine): bash benchmarks/gpu.sh
set -uo pipefail
OUT=${OUT:-gpu_out}
mkdir -p "$OUT"
python3 -m venv .venv-gpu
.venv-gpu/bin/pip install -q torch "numba-cuda[cu12]" -e ".[dev]" 2>&1 | tail -3
.venv-gpu/bin/mrct info | tee "$OUT/info.txt"
NUMBA_ENABLE_CUDASIM=0 .venv-gpu/bin/python -m pytest -q -m cuda tests 2>&1 | tee "$OUT/cuda_tests.txt"
.venv-gpu/bin/python benchmarks/radon_gpu.py 2>&1 | tee "$OUT/radon_gpu.md"
.venv-gpu/bin/python benchmarks/drr_gpu.py 2>&1 | tee "$OUT/drr_gpu.md"
