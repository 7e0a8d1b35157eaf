#!/usr/bin/env bash
# The prepared device call for the GPU training recipes of issues #17, #20 and #21 (one H200,
# about 7 minutes): set up from carried wheels, run the NUFFT / ultrasound / SSIM CUDA tests in
# the background, train the 3D lesion model beside the Primal-Dual UNet (CT data mix) and then
# the two dehazing priors, and pack what comes back into at most 8 files in $OUT (the device
# tool returns 8 files, 16 MiB each, two folders deep): logs.tar.gz and the weights.
#
# From the repository root of the development machine (see benchmarks/results/*/README.md):
#   .whl3 = nibabel + pydicom wheels, .whl4 = diffusers + huggingface_hub and their pure-Python
#   needs, .gpudata/chest_ct = the shared chest CT; move the tracked *.safetensors aside first
#   (the working tree that travels is limited to 64 MiB), then run this with
#   carry [".whl3", ".whl4", ".gpudata/chest_ct"] and a timeout of 450 s.
set -uo pipefail
cd "$(dirname "$0")/.."
R=${OUT:-gpu_out}
mkdir -p "$R"; R=$(cd "$R" && pwd)
export OUT=/tmp/mrct-gpu-train MRCT_SHARED_DATA=${MRCT_SHARED_DATA:-$PWD/.gpudata}
export WHEELS=${WHEELS:-'.whl[34]'} PYTHONUNBUFFERED=1 TEST_TIMEOUT=${TEST_TIMEOUT:-330}
mkdir -p "$OUT"
bash benchmarks/gpu.sh --setup-only > "$OUT/setup.log" 2>&1; tail -12 "$OUT/setup.log"
export PYTHONPATH=$PWD/src:${SITE:-/tmp/mrct-gpu-site}
(CHANNELS=${LESION_CHANNELS:-"16 32 64"} N_TRAIN=${N_TRAIN:-256} STEPS=${STEPS:-2000} \
  timeout 300 bash scripts/train_gpu.sh lesion3d "${LESION_SECONDS:-170}" \
  > "$OUT/train_lesion3d.log" 2>&1) &
DATA=mix POOL=${POOL:-1024} FRAMES=${FRAMES:-64} EPOCHS=${EPOCHS:-10} timeout 390 \
  bash benchmarks/gpu.sh --parts none --concurrent \
  --tests "tests/test_nufft.py tests/test_ultrasound_cuda.py tests/test_metrics.py::test_ssim_torch_cuda_matches_cpu" \
  --train "pdunet-ct-sparse16:${PDUNET_SECONDS:-120},dehaze:${DEHAZE_SECONDS:-60}" \
  > "$OUT/gpu_sh.log" 2>&1
wait
nvidia-smi --query-gpu=name,driver_version --format=csv > "$OUT/gpu.txt" 2>&1
cd "$OUT"
tail -25 gpu_sh.log; tail -4 train_lesion3d.log; tail -3 cuda_tests.txt
tar czf "$R/logs.tar.gz" --exclude='*.safetensors' .
cp weights/pdunet-ct-sparse16.safetensors "$R/"
cp weights/lesion/lefusion-lung-ct.safetensors "$R/lefusion-lung-ct-3d.safetensors"
for k in tissue haze; do cp "weights/dehaze/$k/best.safetensors" "$R/dehaze-$k-rf.safetensors"; done
ls -la "$R"
