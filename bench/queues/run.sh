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
  n_zkit_16=${N_ZKIT_16:-10000000} n_zkit_1k=${N_ZKIT_1K:-200000}
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

smoke=$smoke failed=$failed "$python" - "$lines" "$json" <<'EOF'
# Medians per row, the ratio tables, the target verdicts (not in a smoke run), and the JSON.
import json, os, platform, statistics, subprocess, sys, time
lines, out = sys.argv[1], sys.argv[2]
smoke = os.environ["smoke"] == "1"
runs = [json.loads(l) for l in open(lines) if l.startswith("{")]
def key(r): return (r["system"], r.get("label", ""), r["size"], r.get("groups", 1), r["consumers"])
rows = {}
for r in runs:
    rows.setdefault(key(r), []).append(r)
def med(system, size, consumers=4, groups=1, label="", field="msgs_per_s"):
    rs = rows.get((system, label, size, groups, consumers))
    return statistics.median(r[field] for r in rs) if rs else None
def fmt(v):
    if v is None: return "-"
    return "%.2f M" % (v / 1e6) if v >= 1e6 else "%.1f k" % (v / 1e3) if v >= 1e3 else "%.0f" % v
def ratio(a, b): return a / b if a is not None and b else None
def rfmt(x): return "-" if x is None else "%.2fx" % x
def name(k):
    system, _, size, groups, consumers = k
    return {"zkit": "zkit, %d group(s) x %d consumer(s)" % (groups, consumers),
            "raw-zmq": "raw libzmq PUSH/PULL, %d PULL sockets" % consumers,
            "raw-disk": "raw write+fdatasync every 8 frames",
            "rabbitmq": "RabbitMQ quorum queue, %d consumers" % consumers,
            "jetstream": "JetStream WorkQueue, %d pull consumers" % consumers,
            "redelivery": "zkit redelivery after a member's SIGKILL"}.get(system, system)
order = ["raw-zmq", "raw-disk", "zkit", "rabbitmq", "jetstream", "redelivery"]
n = max(len(v) for v in rows.values())
print("\n| size | row | msgs/s (median of %d) | lost | duplicates |" % n)
print("|---|---|---|---|---|")
for k in sorted(rows, key=lambda k: (k[2], order.index(k[0]) if k[0] in order else 9, k[3], k[4])):
    rs = rows[k]
    if k[0] == "redelivery":
        fig = "%.3f s until acked by another member" % statistics.median(r["redelivery_s"] for r in rs)
    else:
        fig = fmt(statistics.median(r["msgs_per_s"] for r in rs))
    print("| %d B | %s | %s | %d | %d |" % (k[2], name(k), fig, sum(r["lost"] for r in rs),
                                            sum(r["duplicates"] for r in rs)))
checks = []
for size in (16, 1024):
    z1, z4, z16 = (med("zkit", size, c) for c in (1, 4, 16))
    g3 = med("zkit", size, 1, 3, field="min_group_msgs_per_s")
    rows_r = [
        ("%d B: zkit 4 consumers / 1 consumer" % size, ratio(z4, z1), 0.8),
        ("%d B: zkit 16 consumers / 1 consumer" % size, ratio(z16, z1), None),
        ("%d B: zkit 3 groups, slowest group / 1 group" % size, ratio(g3, z1), 0.7),
        ("%d B: zkit 4 consumers / RabbitMQ quorum queue" % size, ratio(z4, med("rabbitmq", size)), 50 if size == 16 else None),
        ("%d B: zkit 4 consumers / JetStream WorkQueue" % size, ratio(z4, med("jetstream", size)), 20 if size == 16 else None),
        ("%d B: zkit 4 consumers / raw libzmq PUSH/PULL" % size, ratio(z4, med("raw-zmq", size)), None),
        ("%d B: zkit 4 consumers / raw write+fdatasync" % size, ratio(z4, med("raw-disk", size, 1)), None),
    ]
    checks += rows_r
red = [r["redelivery_s"] for r in runs if r["system"] == "redelivery"]
print("\n| ratio | value | target |")
print("|---|---|---|")
verdicts = []
for name, v, target in checks:
    t = "" if target is None else ">= %g" % target
    if not smoke and target is not None and v is not None:
        t += " (%s)" % ("met" if v >= target else "not met")
    print("| %s | %s | %s |" % (name, rfmt(v), t))
if red:
    v = statistics.median(red)
    t = "<= 2 s" + ("" if smoke else " (%s)" % ("met" if v <= 2.0 else "not met"))
    print("| redelivery after a member's SIGKILL (s) | %.3f | %s |" % (v, t))
if smoke:
    print("\nrun.sh: smoke run, figures only, no verdicts")
def sh(cmd):
    try: return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
    except Exception: return ""
doc = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "smoke": smoke,
       "commit": sh("git -C '%s' describe --always --dirty --exclude '*'" % os.path.dirname(out)),
       "load": open("/proc/loadavg").read().split()[:3], "machine": platform.platform(),
       "nproc": os.cpu_count(), "runs": runs,
       "ratios": {name: v for name, v, _ in checks}, "redelivery_s": red,
       "failed_runs": int(os.environ["failed"])}
with open(out, "w") as f:
    json.dump(doc, f, indent=1)
print("run.sh: JSON %s" % out)
EOF
((failed == 0))
