#!/usr/bin/env bash
# Rebuilds relu_ext's CPU code with AddressSanitizer and UndefinedBehaviorSanitizer into a scratch folder (the
# installed relu_ext is left alone) and runs the CPU parity and fuzz tests against that build. Any report fails it.
#   tools/sanitize.sh [scratch folder]
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$(mktemp -d)}
cd "$repo"
mkdir -p "$out"
if ! RELU_EXT_CUDA=0 RELU_EXT_SANITIZE=address,undefined python setup.py -q build_ext \
     --build-lib "$out" --build-temp "$out/build" > "$out/build.log" 2>&1; then
  tail -n 40 "$out/build.log"; echo "sanitizer build failed (log: $out/build.log)" >&2; exit 1
fi
cp relu_ext/*.py "$out/relu_ext/"
cd "$out"  # import the sanitized build, not the installed one
# libstdc++ preloaded too, so that ASan finds __cxa_throw (python itself does not link it)
export PYTHONPATH=$out LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libstdc++.so)"
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
python -c 'import relu_ext, sys; print("sanitized build:", relu_ext.__file__); sys.exit(relu_ext.WITH_CUDA)'
python -m pytest -q -p no:cacheprovider -m "not huge" -k "not cuda" \
  "$repo/tests/test_parity.py" "$repo/tests/test_fuzz.py" "$repo/tests/test_errors.py" "$repo/tests/test_autograd.py" \
  "$repo/tests/test_autograd_modes.py" "$repo/tests/test_layouts.py" "$repo/tests/test_mask.py"
