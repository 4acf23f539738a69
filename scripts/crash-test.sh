#!/usr/bin/env bash
# Crash test for the spool node: reliable senders stream into a real `zkit spool` process and a
# reliable receiver drains it (both in spool_crash_peer, which outlives the spool); the spool is
# killed with SIGKILL at random moments and restarted on the same directory, N times. At the end
# every acknowledged message must have reached the receiver exactly once and in order per producer.
#
#   scripts/crash-test.sh [--cycles N] [--build DIR] [--fsync MODE] [--producers N]
#                         [--min-ms MS] [--max-ms MS] [--segment-bytes SIZE] [--zkit PATH]
#                         [--peer PATH]
#
# --build DIR defaults to build/ in the source tree (a relative DIR is taken from where the script
# is run). Prints progress, then the peer's result line: iterations, messages, lost (must be 0),
# duplicates seen by the application (must be 0). Exit 0 on PASS, 1 on FAIL, 2 on bad usage.
set -euo pipefail

usage() {
  # The comment block above, without its '# ' (everything up to the first line that is not one).
  sed -n '2,/^[^#]/p' "$0" | sed -e '/^[^#]/d' -e 's/^# \{0,1\}//'
}

cycles=1000
build="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/build"
fsync=always
producers=4
min_ms=30
max_ms=400
segment_bytes=64MiB
zkit=""
peer=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --cycles) cycles=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --fsync) fsync=$2; shift 2 ;;
    --producers) producers=$2; shift 2 ;;
    --min-ms) min_ms=$2; shift 2 ;;
    --max-ms) max_ms=$2; shift 2 ;;
    --segment-bytes) segment_bytes=$2; shift 2 ;;
    --zkit) zkit=$2; shift 2 ;;
    --peer) peer=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "crash-test.sh: unknown flag $1" >&2; exit 2 ;;
  esac
done
[[ -n $zkit ]] || zkit=$build/devices/zkit
[[ -n $peer ]] || peer=$build/tests/spool_node/spool_crash_peer
for f in "$zkit" "$peer"; do
  [[ -x $f ]] || { echo "crash-test.sh: $f not built (cmake --build $build)" >&2; exit 2; }
done
if ! [[ $cycles =~ ^[0-9]+$ && $min_ms =~ ^[0-9]+$ && $max_ms =~ ^[0-9]+$ && $max_ms -gt $min_ms ]]; then
  echo "crash-test.sh: --cycles, --min-ms, --max-ms must be numbers, max > min" >&2
  exit 2
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/zkit-crash-test.XXXXXX")
spool_pid=""
peer_pid=""
cleanup() {
  # Only the processes this script started, by pid.
  if [[ -n $spool_pid ]]; then kill -KILL "$spool_pid" 2>/dev/null || true; fi
  if [[ -n $peer_pid ]]; then kill -KILL "$peer_pid" 2>/dev/null || true; fi
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

in="ipc://$tmp/in"
out="ipc://$tmp/out"
start_spool() {
  "$zkit" spool --dir "$tmp/spool" --listen "$in" --forward "$out" --fsync "$fsync" \
    --segment-bytes "$segment_bytes" --stats-interval 0 --log-level warn --linger-ms 200 >/dev/null 2>>"$tmp/spool.err" &
  spool_pid=$!
}

"$peer" --listen "$in" --forward "$out" --stop-file "$tmp/stop" --cycles "$cycles" \
  --producers "$producers" --drain-s 120 >"$tmp/peer.out" 2>"$tmp/peer.err" &
peer_pid=$!

echo "crash test: $cycles SIGKILL/restart cycles, fsync $fsync, segments of $segment_bytes," \
     "$producers producers, kill after ${min_ms}-${max_ms} ms, dir $tmp/spool"
started=$SECONDS
for ((i = 1; i <= cycles; i++)); do
  start_spool
  ms=$((min_ms + RANDOM % (max_ms - min_ms)))
  sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
  kill -KILL "$spool_pid" 2>/dev/null || true
  wait "$spool_pid" 2>/dev/null || true
  spool_pid=""
  if ! kill -0 "$peer_pid" 2>/dev/null; then
    echo "crash test: the peer died at cycle $i" >&2
    cat "$tmp/peer.err" >&2
    exit 1
  fi
  if ((i % 100 == 0)); then echo "  $i cycles ($((SECONDS - started)) s)"; fi
done

# A last, clean run drains everything; then the peer checks.
start_spool
touch "$tmp/stop"
status=0
wait "$peer_pid" || status=$?
peer_pid=""
kill -TERM "$spool_pid" 2>/dev/null || true
wait "$spool_pid" || true
spool_pid=""
cat "$tmp/peer.out"
echo "crash test: $((SECONDS - started)) s; spool warnings/errors logged: $(grep -c -E "warning|error" "$tmp/spool.err" || true)"
if ((status != 0)); then
  echo "--- peer stderr" >&2; tail -20 "$tmp/peer.err" >&2
  echo "--- spool stderr (last lines)" >&2; tail -20 "$tmp/spool.err" >&2
  exit 1
fi
exit 0
