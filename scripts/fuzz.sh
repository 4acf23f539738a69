#!/usr/bin/env bash
# Builds the libFuzzer target for the batch envelope reader (clang++, -DZKIT_FUZZ=ON, in build-fuzz)
# and runs it for SECONDS (default 60) from a seed corpus of valid frames. Prints one summary line
# (executions, crashes); exits 1 on a crash, 77 (skip) when clang++ is missing.
# Usage: scripts/fuzz.sh [SECONDS]         fuzz for SECONDS after the build
#        scripts/fuzz.sh --within TOTAL    build, then fuzz for what is left of TOTAL s (at least 5)
# FUZZ_BUILD_DIR overrides build-fuzz.
set -euo pipefail
cd "$(dirname "$0")/.."
within=0 seconds=${1:-60}
if [ "${1:-}" = --within ]; then within=${2:?--within needs a number of seconds} seconds=0; fi
build=${FUZZ_BUILD_DIR:-build-fuzz}

if ! command -v clang++ >/dev/null 2>&1; then
  echo "fuzz: clang++ not found (Debian packages clang, libclang-rt-14-dev); skipping"
  exit 77
fi
launcher=()
command -v ccache >/dev/null 2>&1 && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
if [ ! -f "$build/CMakeCache.txt" ]; then
  CXX=clang++ cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DZKIT_FUZZ=ON \
    -DZKIT_BUILD_TESTS=OFF -DZKIT_BUILD_BENCH=OFF -DZKIT_BUILD_EXAMPLES=OFF "${launcher[@]}" >/dev/null
fi
cmake --build "$build" --target decode_fuzz decode_fuzz_seeds -j "$(nproc)" >/dev/null
if ((within)); then seconds=$((within - SECONDS)); ((seconds >= 5)) || seconds=5; fi

seeds="$build/fuzz-seeds"      # regenerated each run from the real encoder
corpus="$build/fuzz-corpus"    # grows across runs
artifacts="$build/fuzz-artifacts"
log="$build/fuzz.log"
mkdir -p "$corpus" "$artifacts"
"$(find "$build" -name decode_fuzz_seeds -type f -perm -u+x | head -1)" "$seeds" >/dev/null
fuzzer=$(find "$build" -name decode_fuzz -type f -perm -u+x | head -1)

before=$(find "$artifacts" -type f | wc -l)
status=0
"$fuzzer" -max_total_time="$seconds" -print_final_stats=1 -max_len=8192 -timeout=25 \
  -rss_limit_mb=2560 -artifact_prefix="$artifacts/" "$corpus" "$seeds" >"$log" 2>&1 || status=$?
crashes=$(( $(find "$artifacts" -type f | wc -l) - before ))
if [ "$status" -ne 0 ] && [ "$crashes" -eq 0 ]; then crashes=1; fi

execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
echo "fuzz: decode_fuzz ${seconds} s: ${execs:-0} executions, ${crashes} crashes," \
  "coverage ${cov:-?} edges, corpus $(find "$corpus" -type f | wc -l) inputs (log: $log)"
if [ "$crashes" -ne 0 ]; then
  grep -E 'ERROR|SUMMARY|Test unit written' "$log" | head -20 >&2 || true
  exit 1
fi
