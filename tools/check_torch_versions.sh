#!/usr/bin/env bash
# Builds and tests relu_ext against each given torch release, each in a fresh venv of python3 (PYTHON=... for
# another), and prints one line per release. Exit status: non-zero if any failed.
#   tools/check_torch_versions.sh 2.6.0 2.13.0 2.14.1 2.15.0
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
status=0
results=()
for version in "$@"; do
  dir=$(mktemp -d)
  log=$dir/log
  echo "== torch $version ($dir)"
  (
    set -e
    "$python" -m venv "$dir/venv"
    source "$dir/venv/bin/activate"
    mkdir "$dir/src"  # a clean copy: no build folder of another torch
    (cd "$repo" && git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$dir/src")
    pip install -q "torch==$version" ninja "setuptools>=70.1"
    pip install -q --no-build-isolation "$dir/src[test]"
    cd "$dir"
    python -c 'import relu_ext, relu_ext._build_info as b, torch; print("torch", torch.__version__, "|", b.BUILD_NOTE)'
    cd "$dir/src" && pytest -q -p no:cacheprovider -m "not huge"
  ) > "$log" 2>&1
  rc=$?
  tail -n 3 "$log"
  summary=$(grep -E "^torch .* \| " "$log" | head -n 1)
  counts=$(grep -E "passed|failed|error" "$log" | tail -n 1)
  results+=("torch $version: $([ $rc -eq 0 ] && echo PASS || echo "FAIL (log: $log)") | ${summary#*| } | $counts")
  rm -rf "$dir/venv" "$dir/src"  # several GB each; the log stays
  [ $rc -eq 0 ] || status=1
done
printf '%s\n' "${results[@]}"
exit $status
