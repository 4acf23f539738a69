#!/usr/bin/env bash
# Builds the benchmarks and runs them; full runs write the published figures to bench/results/*.json
# (docs/benchmarks.md is written from them). Benchmarks are not tests: each always runs a baseline
# beside zkit in the same process run and reports ratios.
#
#   scripts/bench.sh                    throughput_bench, the default run (about 70 s on 2 cores)
#   scripts/bench.sh all                throughput, codec and spool benchmarks
#   scripts/bench.sh codec spool        just those
#   scripts/bench.sh --quick [...]      about 10 s each; figures go to $BUILD_DIR/bench/results/
#                                       so the published ones stay as they are
#   scripts/bench.sh throughput -- --tune --repeats 5     arguments after -- go to throughput_bench
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}

quick=0
benches=()
extra=()
while (($#)); do
  case "$1" in
    --quick) quick=1 ;;
    throughput | codec | spool) benches+=("$1") ;;
    all) benches+=(throughput codec spool) ;;
    --) shift; extra=("$@"); break ;;
    -h | --help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done
((${#benches[@]})) || benches=(throughput)

results=bench/results
((quick)) && results="$build_dir/bench/results"
mkdir -p "$results"

cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DZKIT_WERROR=ON >/dev/null
for b in "${benches[@]}"; do
  cmake --build "$build_dir" --target "${b}_bench" -j "$(nproc)"
done

failed=()
for b in "${benches[@]}"; do
  echo "== ${b}_bench"
  set +e
  case "$b" in
    throughput)
      args=(--json "$results/throughput.json")
      ((quick)) && args+=(--quick)
      "$build_dir/bench/throughput/throughput_bench" "${args[@]}" "${extra[@]}"
      ;;
    codec)
      args=(--benchmark_out="$results/codec.json" --benchmark_out_format=json)
      ((quick)) && args+=(--benchmark_min_time=0.05)
      "$build_dir/bench/codec/codec_bench" "${args[@]}"
      ;;
    spool)
      args=(--json "$results/spool.json")
      ((quick)) && args+=(--seconds 0.5 --backlog-mb 0)
      "$build_dir/bench/spool/spool_bench" "${args[@]}"
      ;;
  esac
  status=$?
  set -e
  ((status == 0)) || failed+=("${b}_bench (exit $status)")
done
echo "bench.sh: figures in $results/"
# A benchmark exits non-zero when one of its runs failed (its JSON says which); the others still ran.
if ((${#failed[@]})); then
  echo "bench.sh: some runs failed: ${failed[*]}" >&2
  exit 1
fi
