#!/usr/bin/env bash
# On a machine with an NVIDIA GPU, nvcc, torch and ninja (no internet needed): build relu_ext from source, run the
# CUDA tests, the sanitizers over the CUDA parity tests, and the CUDA benchmark. Eight files go to $OUT (else
# ./gpu-results): summary.txt, build.log, tests.log, sanitizer.log, benchmark.log, gpu.json, gpu.png, gpu.md.
# Sized to finish within 10 minutes: the steps' limits add up to 600 s (the build and the run take far less).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/gpu-results}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
status=0
step() {  # step NAME LOG SECONDS COMMAND...: runs it with a limit, appends to $OUT/LOG, remembers a failure
  local name=$1 log=$OUT/$2 limit=$3; shift 3
  echo "== $name: $*" | tee -a "$OUT/summary.txt" >> "$log"
  local start=$SECONDS
  timeout "$limit" "$@" >> "$log" 2>&1
  local rc=$?
  tail -n 25 "$log"
  echo "== $name: exit $rc in $((SECONDS - start)) s" | tee -a "$OUT/summary.txt"
  [ $rc -eq 0 ] || status=1
}

{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader; nvcc --version | tail -n 2
  python -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'; } | tee "$OUT/summary.txt"

step build build.log 150 pip install --no-build-isolation --no-deps -v .
cd /tmp  # import the installed package, not the source folder
REPO=$OLDPWD
step cuda_tests tests.log 150 python -m pytest -q -x "$REPO/tests" -k "cuda or Cuda or CUDA" -p no:cacheprovider
step huge_cuda tests.log 60 python -m pytest -q -x "$REPO/tests/test_scale.py" -m huge -k cuda -p no:cacheprovider
if command -v compute-sanitizer >/dev/null; then
  step memcheck sanitizer.log 60 compute-sanitizer --tool memcheck --error-exitcode 1 \
    python -m pytest -q -x "$REPO/tests/test_parity.py" -k "cuda and (sizes or misaligned)" -p no:cacheprovider
  step racecheck sanitizer.log 30 compute-sanitizer --tool racecheck --error-exitcode 1 \
    python -m pytest -q -x "$REPO/tests/test_parity.py" -k "cuda and misaligned and float32" -p no:cacheprovider
  step initcheck sanitizer.log 30 compute-sanitizer --tool initcheck --error-exitcode 1 \
    python -m pytest -q -x "$REPO/tests/test_parity.py" -k "cuda and (sizes or misaligned) and float32" -p no:cacheprovider
fi
step benchmark benchmark.log 120 python "$REPO/benchmarks/benchmark.py" --device cuda --sizes 10,12,14,16,18,20,22,24,26,28 \
  --dtypes float32,bfloat16 --min-run-time 0.05 --no-compile --json "$OUT/gpu.json" --plot "$OUT/gpu.png" \
  --markdown "$OUT/gpu.md"
echo "== overall: $([ $status -eq 0 ] && echo PASS || echo FAIL)" | tee -a "$OUT/summary.txt"
exit $status
