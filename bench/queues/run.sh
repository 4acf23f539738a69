#!/usr/bin/env bash
# The queue benchmarks of issue 9 in one run: zkit consumer groups (queue_bench) beside raw libzmq
# PUSH/PULL and a raw write+fdatasync, and the peers on the same work through their own C clients:
# RabbitMQ 3.10 (quorum queue, publisher confirms, prefetch, multiple acks) and NATS JetStream
# (WorkQueue stream, pull consumers, explicit acks). Both servers are started here on loopback
# ports of their own with their own data directories (under one temp dir on the same disk as the
# spool's) and stopped by pid at the end. Rows are interleaved per repeat; each figure is the median
# of the repeats; ratios are taken between medians of the same run.
#
#   bench/queues/run.sh                 full run (3 repeats), JSON to bench/results/queues.json
#   bench/queues/run.sh --smoke         every program once on a tiny input, figures only, no
#                                       verdicts, JSON under the build dir (the ctest entry)
#   options: --build-dir DIR (default build), --no-build, --repeats N, --json FILE
# Exit status: 0 when every run finished with 0 messages lost, 1 otherwise, 2 on a usage error.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build_dir=$root/build
smoke=0
build=1
repeats=3
json=
while (($#)); do
  case "$1" in
    --smoke) smoke=1 ;;
    --no-build) build=0 ;;
    --build-dir) build_dir=$(cd "$2" && pwd) || exit 2; shift ;;
    --repeats) repeats=$2; shift ;;
    --json) json=$2; shift ;;
    -h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done
((smoke)) && repeats=1
if [ -z "$json" ]; then
  if ((smoke)); then json=$build_dir/bench/results/queues-smoke.json; else json=$root/bench/results/queues.json; fi
fi
mkdir -p "$(dirname "$json")"
bin=$build_dir/bench/queues
python=/usr/bin/python3  # Debian's
rabbit_harness=${ZKIT_RABBITMQ_HARNESS_PY:-$root/tests/support/rabbitmq.py}

if ((build)); then
  cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DZKIT_WERROR=ON >/dev/null &&
    cmake --build "$build_dir" -j2 --target queue_bench peer_rabbitmq peer_jetstream || exit 1
fi
for p in queue_bench peer_rabbitmq peer_jetstream; do
  [ -x "$bin/$p" ] || { echo "run.sh: $bin/$p is not built" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/zkit-qbench.XXXXXX")
rabbit_dir=$work/rabbitmq
# shellcheck source=../../tests/support/nats.sh
. "$root/tests/support/nats.sh"
cleanup() {
  nats_stop
  [ -f "$rabbit_dir/harness.json" ] && "$python" "$rabbit_harness" stop --dir "$rabbit_dir"
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

mkdir -p "$work/nats"
nats_start "$work/nats" || exit 1
env_file=$work/rabbitmq.env
if ! "$python" "$rabbit_harness" start --dir "$rabbit_dir" >"$env_file"; then
  echo "run.sh: RabbitMQ did not start (above: why)" >&2
  exit 1
fi
# shellcheck disable=SC1090
. "$env_file"
echo "run.sh: nats-server $NATS_URL, rabbitmq $ZKIT_AMQP_URL, work dir $work" >&2

# Messages per run: enough for a second or more of steady state at each system's speed.
if ((smoke)); then
  n_zkit_16=20000 n_zkit_1k=5000 n_zkit_redelivery=200000 n_rabbit_16=500 n_rabbit_1k=200 n_js_16=1000 n_js_1k=500
  consumer_counts="1 4" sizes="16 1024"
else
  n_zkit_16=${N_ZKIT_16:-30000000} n_zkit_1k=${N_ZKIT_1K:-500000}
  n_rabbit_16=${N_RABBIT_16:-100000} n_rabbit_1k=${N_RABBIT_1K:-50000}
  n_js_16=${N_JS_16:-200000} n_js_1k=${N_JS_1K:-100000}
  n_zkit_redelivery=${N_ZKIT_REDELIVERY:-500000}  # > 64 batches: the victim's whole prefetch
  consumer_counts="1 4 16" sizes="16 1024"
fi
publishers=${PUBLISHERS:-2}
lines=$work/results.jsonl
: >"$lines"
failed=0
run() {  # one program run; its JSON line goes to $lines, its failure is counted
  local out
  if out=$("$@" --timeout-s 300); then
    echo "$out" | tee -a "$lines"
  else
    echo "run.sh: FAILED (exit $?): $*" >&2
    [ -n "$out" ] && echo "$out" | tee -a "$lines"
    failed=$((failed + 1))
  fi
}

for ((r = 1; r <= repeats; r++)); do
  echo "== repeat $r of $repeats" >&2
  for size in $sizes; do
    if [ "$size" = 16 ]; then nz=$n_zkit_16 nr=$n_rabbit_16 nj=$n_js_16; else nz=$n_zkit_1k nr=$n_rabbit_1k nj=$n_js_1k; fi
    run "$bin/queue_bench" --mode raw-zmq --messages "$nz" --size "$size" --publishers "$publishers" --consumers 4 --dir "$work"
    run "$bin/queue_bench" --mode raw-disk --messages "$nz" --size "$size" --dir "$work"
    for c in $consumer_counts; do
      run "$bin/queue_bench" --mode group --groups 1 --messages "$nz" --size "$size" --publishers "$publishers" --consumers "$c" --dir "$work"
    done
    run "$bin/queue_bench" --mode group --groups 3 --messages "$nz" --size "$size" --publishers "$publishers" --consumers 1 --dir "$work"
    run "$bin/peer_rabbitmq" --url "$ZKIT_AMQP_URL" --messages "$nr" --size "$size" --publishers "$publishers" --consumers 4 --window 5000
    run "$bin/peer_jetstream" --url "$NATS_URL" --messages "$nj" --size "$size" --publishers "$publishers" --consumers 4 --window 5000
  done
  run "$bin/queue_bench" --mode redelivery --messages "$n_zkit_redelivery" --size 16 --dir "$work"
done

args=(--write "$json" --failed "$failed")
((smoke)) && args+=(--smoke)
"$python" "$root/bench/queues/tables.py" "${args[@]}" "$lines" || exit 1
((failed == 0))
