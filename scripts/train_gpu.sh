#!/usr/bin/env bash
# GPU training recipe (issues #16, #17): train a shipped model at the paper's batch size (32)
# with bfloat16 autocast for a fixed wall-clock budget on one GPU, then write its weights
# (safetensors; steps, samples seen, time and machine in the metadata) under $OUT/weights.
#
#   bash scripts/train_gpu.sh NAME [SECONDS]     # e.g. pdunet-ct-sparse16 300
#   bash benchmarks/gpu.sh --train NAME          # the same, after the device tests
#
# NAME: any model of scripts/train_pretrained.py (pdunet-ct-sparse16, lpd-ct-sparse16, ...),
# "ct16" for the three CT sparsity-16 models one after another, "dehaze" for the two
# ultrasound dehazing priors (scripts/train_dehaze_priors.py; FRAMES simulated frames, default
# 96), or "lesion3d" / "lesion-mask3d" for the 3D lesion models (scripts/train_lesion.py
# --recipe gpu; N_TRAIN crops, default 256, and STEPS, default 20000, whichever ends first).
# Several names: comma-separated; NAME:SECONDS gives one its own budget. CHANNELS overrides
# the lesion models' widths (e.g. "16 32 64" for a short budget). DATA=mix (issue #17) trains
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
NAMES=""
for item in ${NAME//,/ }; do  # ct16[:SECONDS] -> the three CT models, each with that budget
  if [ "${item%%:*}" = "ct16" ]; then
    tail=${item#ct16}
    NAMES="$NAMES pdunet-ct-sparse16$tail lpd-ct-sparse16$tail fbpconvnet-ct-sparse16$tail"
  else
    NAMES="$NAMES $item"
  fi
done
for item in $NAMES; do
  n=${item%%:*}; secs=$SECONDS_PER_MODEL
  [ "$item" != "$n" ] && secs=${item#*:}
  case "$n" in
    dehaze)
      $PY scripts/train_dehaze_priors.py --gpu --seconds "$secs" \
        --frames "${FRAMES:-96}" ${EPOCHS:+--epochs $EPOCHS} --out "$OUT/weights/dehaze" || echo "FAILED: $n" ;;
    lesion3d|lesion-mask3d)
      model=image; [ "$n" = "lesion-mask3d" ] && model=mask
      $PY scripts/train_lesion.py --recipe gpu --model $model --seconds "$secs" \
        ${CHANNELS:+--channels $CHANNELS} --n-train "${N_TRAIN:-256}" --steps "${STEPS:-20000}" --out "$OUT/weights/lesion" || echo "FAILED: $n" ;;
    *)
      $PY scripts/train_pretrained.py "$n" --device cuda --batch 32 --amp bf16 \
        --seconds "$secs" --out "$OUT/weights" $EXTRA || echo "FAILED: $n" ;;
  esac
done
