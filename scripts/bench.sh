#!/usr/bin/env bash
# Builds the benchmarks and runs them; full runs write the published figures to bench/results/*.json
# (docs/benchmarks.md is written from them). Benchmarks are not tests: each always runs a baseline
# beside zkit in the same process run and reports ratios.
#
#   scripts/bench.sh                    throughput_bench, the default run (about 80 s on 2 cores)
#   scripts/bench.sh all                throughput, codec, spool, reliable and proxy benchmarks
#   scripts/bench.sh codec spool        just those (reliable: reliable_bench, proxy: proxy_throughput,
#                                       which print their tables and write no JSON)
#   scripts/bench.sh --quick [...]      short runs, figures without verdicts; JSON goes to
#                                       $BUILD_DIR/bench/results/ so the published ones stay as they are
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
    throughput | codec | spool | reliable | proxy) benches+=("$1") ;;
    all) benches+=(throughput codec spool reliable proxy) ;;
    --) shift; extra=("$@"); break ;;
    -h | --help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done
((${#benches[@]})) || benches=(throughput)

results=bench/results
((quick)) && results="$build_dir/bench/results"
mkdir -p "$results"

cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DZKIT_WERROR=ON >/dev/null
target() { if [ "$1" = proxy ]; then echo proxy_throughput; else echo "${1}_bench"; fi; }
for b in "${benches[@]}"; do
  cmake --build "$build_dir" --target "$(target "$b")" -j "$(nproc)"
done

failed=()
for b in "${benches[@]}"; do
  echo "== $(target "$b")"
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
    reliable)  # [messages] [size]
      if ((quick)); then args=(1000000); else args=(); fi
      "$build_dir/bench/reliable/reliable_bench" "${args[@]}"
      ;;
    proxy)  # [messages] [size] [batch]
      if ((quick)); then args=(100000); else args=(); fi
      "$build_dir/bench/devices/proxy_throughput" "${args[@]}"
      ;;
  esac
  status=$?
  set -e
  ((status == 0)) || failed+=("$(target "$b") (exit $status)")
done
echo "bench.sh: figures in $results/"
# A benchmark exits non-zero when one of its runs failed (its JSON says which); the others still ran.
if ((${#failed[@]})); then
  echo "bench.sh: some runs failed: ${failed[*]}" >&2
  exit 1
fi
