#!/usr/bin/env bash
# A NATS server with JetStream for tests and benchmarks: Debian's nats-server on 127.0.0.1, a free
# port chosen by the server itself (-p -1, read back from its log, so two runs never race for one),
# its own store and log under a directory the caller owns, stopped by the pid this script started.
#
# Sourced (bash):   . tests/support/nats.sh
#                   nats_start DIR     # sets NATS_PID, NATS_PORT, NATS_URL; returns 1 with a
#                                      # message on stderr when the server does not come up in 10 s
#                   nats_stop          # SIGTERM to NATS_PID, SIGKILL after 10 s; idempotent
# Run:              tests/support/nats.sh DIR COMMAND [ARGS...]
#                   starts the server, runs COMMAND with NATS_URL in its environment, stops the
#                   server, exits with COMMAND's status (1 when the server did not start).
# DIR must exist; the server writes DIR/nats.log and DIR/jetstream/.

NATS_SERVER=${NATS_SERVER:-/usr/sbin/nats-server}

nats_start() {
  local dir=$1
  if [ ! -x "$NATS_SERVER" ]; then
    echo "nats.sh: $NATS_SERVER not found (Debian package nats-server)" >&2
    return 1
  fi
  mkdir -p "$dir/jetstream" || return 1
  : >"$dir/nats.log"
  "$NATS_SERVER" -a 127.0.0.1 -p -1 -js -sd "$dir/jetstream" -n "zkit-test-$$" \
    -l "$dir/nats.log" </dev/null >/dev/null 2>&1 &
  NATS_PID=$!
  local i line
  for ((i = 0; i < 200; i++)); do  # 200 x 50 ms: the server is ready or gone within 10 s
    if grep -q "Server is ready" "$dir/nats.log" 2>/dev/null; then
      line=$(grep -m1 "Listening for client connections on" "$dir/nats.log")
      NATS_PORT=${line##*:}
      NATS_URL="nats://127.0.0.1:$NATS_PORT"
      export NATS_PID NATS_PORT NATS_URL
      return 0
    fi
    if ! kill -0 "$NATS_PID" 2>/dev/null; then
      echo "nats.sh: nats-server exited at start; its log ($dir/nats.log):" >&2
      tail -n 20 "$dir/nats.log" >&2
      NATS_PID=
      return 1
    fi
    sleep 0.05
  done
  echo "nats.sh: nats-server (pid $NATS_PID) not ready after 10 s; log: $dir/nats.log" >&2
  nats_stop
  return 1
}

nats_stop() {
  [ -n "${NATS_PID:-}" ] || return 0
  kill -TERM "$NATS_PID" 2>/dev/null
  local i
  for ((i = 0; i < 200; i++)); do
    kill -0 "$NATS_PID" 2>/dev/null || break
    sleep 0.05
  done
  kill -KILL "$NATS_PID" 2>/dev/null
  wait "$NATS_PID" 2>/dev/null
  NATS_PID=
  return 0
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  if [ $# -lt 2 ]; then
    echo "usage: nats.sh DIR COMMAND [ARGS...]" >&2
    exit 2
  fi
  dir=$1
  shift
  nats_start "$dir" || exit 1
  trap nats_stop EXIT
  "$@"
  exit $?
fi
