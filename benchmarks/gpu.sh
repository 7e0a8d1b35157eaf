#!/usr/bin/env bash
# One prepared script for a GPU machine (issue #16): set up, run every CUDA test on the device
# (NUMBA_ENABLE_CUDASIM=0), then the GPU benchmarks against ASTRA, cuFINUFFT, torchkbnufft and
# DiffDRR, and optionally a training recipe. Everything lands under $OUT (default gpu_out/).
#
#   bash benchmarks/gpu.sh                 # tests + benchmarks (< 8 min on an H200)
#   bash benchmarks/gpu.sh --train NAME    # also: bash scripts/train_gpu.sh NAME
#   bash benchmarks/gpu.sh --setup-only    # install the packages and stop
#   bash benchmarks/gpu.sh --quick         # small sizes (smoke run)
#   bash benchmarks/gpu.sh --parts radon,nufft   # a subset of the benchmark parts (none: skip)
#   bash benchmarks/gpu.sh --tests "tests/test_nufft.py"   # a subset of the CUDA test files
#   bash benchmarks/gpu.sh --parts none --train dehaze,lesion3d --concurrent
#                      # tests in the background while training runs (no benchmark to disturb)
#
# Set-up works offline: it uses the machine's python3 with a CUDA torch and numba-cuda already
# installed, puts src/ on PYTHONPATH, and installs any wheels found in .whl*/ (or $WHEELS) into
# $SITE without touching the system; online it pip-installs what is missing instead. The CUDA 12
# wheels of ASTRA and cuFINUFFT get libcudart.so.12 from the nvidia-cuda-runtime-cu12 wheel and
# a tiny libcufft.so.11 shim (benchmarks/gpu/cufft_shim.c) that forwards to the machine's
# libcufft (CUDA 13) when no CUDA 12 cuFFT is present.
# Each part runs under its own time limit, so one failure or hang does not stop the rest.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu_out}
SITE=${SITE:-/tmp/mrct-gpu-site}
PY=${PYTHON:-python3}
TRAIN="" QUICK="" SETUP_ONLY="" CONCURRENT="" PARTS="radon,nufft,drr,fdk"
TESTS="tests/test_radon_cuda.py tests/test_drr_cuda.py tests/test_nufft.py tests/test_ultrasound_cuda.py tests/test_metrics.py::test_ssim_torch_cuda_matches_cpu"
while [ $# -gt 0 ]; do
  case "$1" in
    --train) TRAIN="$2"; shift 2 ;;
    --quick) QUICK="--quick"; shift ;;
    --setup-only) SETUP_ONLY=1; shift ;;
    --parts) PARTS="$2"; shift 2 ;;
    --tests) TESTS="$2"; shift 2 ;;
    --concurrent) CONCURRENT=1; shift ;;
    *) echo "unknown option $1 (see the header of $0)"; exit 2 ;;
  esac
done
mkdir -p "$OUT" "$SITE"
T0=$(date +%s)
stamp() { echo "[gpu.sh $(( $(date +%s) - T0 )) s] $*"; }

# -- set-up --------------------------------------------------------------------------------
stamp "setup"
WHEELS=$(ls ${WHEELS:-.whl*}/*.whl 2>/dev/null || true)
if [ -n "$WHEELS" ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target "$SITE" $WHEELS 2>&1 | tail -3
fi
export PYTHONPATH="$PWD/src:$SITE${PYTHONPATH:+:$PYTHONPATH}"
for mod in nibabel pydicom typer tqdm safetensors h5py scipy; do
  $PY -c "import $mod" 2>/dev/null || $PY -m pip install -q --target "$SITE" "$mod" 2>&1 | tail -1
done
# CUDA 12 runtime + cuFFT for the peers' wheels
LIBS="$SITE/_cuda12"
mkdir -p "$LIBS"
for f in "$SITE"/nvidia/cuda_runtime/lib/libcudart.so.12*; do [ -e "$f" ] && ln -sf "$f" "$LIBS/"; done
if ! ldconfig -p 2>/dev/null | grep -q "libcufft.so.11 "; then
  CUFFT12=$($PY - <<'EOF'
import glob, os, site, sys
pats = [p + "/nvidia/**/libcufft.so.12*" for p in site.getsitepackages() + sys.path]
pats += ["/usr/local/cuda*/lib64/libcufft.so.12*", "/usr/local/cuda*/targets/*/lib/libcufft.so.12*"]
hits = [h for p in pats for h in glob.glob(p, recursive=True)]
print(hits[0] if hits else "")
EOF
)
  if [ -n "$CUFFT12" ] && cc -shared -fPIC -O2 -Wl,--version-script=benchmarks/gpu/cufft_shim.map \
       -Wl,-soname,libcufft.so.11 -o "$LIBS/libcufft.so.11" benchmarks/gpu/cufft_shim.c -ldl; then
    export CUFFT_SHIM_TARGET="$CUFFT12"
    stamp "libcufft.so.11 shim -> $CUFFT12"
  else
    stamp "no libcufft.so.12 found or no C compiler: ASTRA/cuFINUFFT may not load"
  fi
fi
export LD_LIBRARY_PATH="$LIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
{
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem --format=csv
  $PY -c "import torch, numba; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0)); print('numba', numba.__version__)"
  for m in numba_cuda astra cufinufft torchkbnufft diffdrr; do
    $PY -c "import $m; print('$m', getattr($m, '__version__', 'ok'))" 2>&1 | tail -1
  done
  $PY -m mrct.cli info 2>&1 || $PY -c "import mrct; print('mrct', mrct.__version__)"
} > "$OUT/info.txt" 2>&1
cat "$OUT/info.txt"
[ -n "$SETUP_ONLY" ] && { stamp "setup only: done"; exit 0; }

# -- CUDA tests on the device --------------------------------------------------------------
run_tests() {
  NUMBA_ENABLE_CUDASIM=0 timeout ${TEST_TIMEOUT:-240} $PY -m pytest -q -p no:cacheprovider \
    -m cuda $TESTS -o addopts="" -ra > "$OUT/cuda_tests.txt" 2>&1
  echo "exit $?" >> "$OUT/cuda_tests.txt"
}
stamp "CUDA tests${CONCURRENT:+ (in the background)}"
if [ -n "$CONCURRENT" ]; then
  run_tests & TESTS_PID=$!
else
  run_tests; tail -15 "$OUT/cuda_tests.txt"
fi

# -- benchmarks ------------------------------------------------------------------------------
if [ "$PARTS" != "none" ]; then
  stamp "benchmarks: $PARTS"
  NUMBA_ENABLE_CUDASIM=0 PYTHONUNBUFFERED=1 timeout ${BENCH_TIMEOUT:-300} $PY benchmarks/gpu_bench.py \
    --out "$OUT" --parts "$PARTS" $QUICK > "$OUT/gpu_bench.log" 2>&1
  echo "exit $?" >> "$OUT/gpu_bench.log"
  grep -E "^  |^==|device-to" "$OUT/gpu_bench.log" | tail -80
fi

# -- training (optional) ---------------------------------------------------------------------
if [ -n "$TRAIN" ]; then
  stamp "training $TRAIN"
  if [ -f scripts/train_gpu.sh ]; then
    OUT="$OUT" bash scripts/train_gpu.sh "$TRAIN" 2>&1 | tee "$OUT/train.log" | tail -20
  else
    echo "scripts/train_gpu.sh not found: no GPU training recipe in this checkout" | tee "$OUT/train.log"
  fi
fi
if [ -n "$CONCURRENT" ]; then
  wait "$TESTS_PID"; tail -15 "$OUT/cuda_tests.txt"
fi
stamp "done"
