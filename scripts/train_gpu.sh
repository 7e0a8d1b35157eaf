#!/usr/bin/env bash
# GPU training recipe (issues #16, #17): train a shipped model at the paper's batch size (32)
# with bfloat16 autocast for a fixed wall-clock budget on one GPU, then write its weights
# (safetensors; steps, samples seen, time and machine in the metadata) under $OUT/weights.
#
#   bash scripts/train_gpu.sh NAME [SECONDS]     # e.g. pdunet-ct-sparse16 300
#   bash benchmarks/gpu.sh --train NAME          # the same, after the device tests
#
# NAME: any model of scripts/train_pretrained.py (pdunet-ct-sparse16, lpd-ct-sparse16, ...)
# or "ct16" for the three CT sparsity-16 models one after another. DATA=mix (issue #17) trains
# on the CT data mix (mrct.recon.ct_mix; a pool of POOL images built by all CPU cores, Poisson
# noise at PHOTONS when set); the default DATA=chest is the shipped weights' recipe. Needs the shared data
# (../shared/data or $MRCT_SHARED_DATA). Copy the result into src/mrct/recon/weights/ to ship.
set -euo pipefail
cd "$(dirname "$0")/.."
NAME=${1:?usage: bash scripts/train_gpu.sh NAME [SECONDS]}
SECONDS_PER_MODEL=${2:-${TRAIN_SECONDS:-300}}
OUT=${OUT:-gpu_out}
PY=${PYTHON:-python3}
DATA=${DATA:-chest}
EXTRA=""
if [ "$DATA" = "mix" ]; then
  EXTRA="--data mix --pool ${POOL:-4096} --workers $(nproc) --val-every ${VAL_EVERY:-500}"
  if [ -n "${PHOTONS:-}" ]; then EXTRA="$EXTRA --photons $PHOTONS"; fi
fi
if [ "$NAME" = "ct16" ]; then
  NAMES="pdunet-ct-sparse16 lpd-ct-sparse16 fbpconvnet-ct-sparse16"
else
  NAMES="$NAME"
fi
for n in $NAMES; do
  $PY scripts/train_pretrained.py "$n" --device cuda --batch 32 --amp bf16 \
    --seconds "$SECONDS_PER_MODEL" --out "$OUT/weights" $EXTRA
done
