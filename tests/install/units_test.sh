#!/usr/bin/env bash
# The systemd unit templates: install into a scratch prefix, check zkit-spool@.service and
# zkit-proxy@.service with `systemd-analyze verify` and `systemd-analyze security --offline`, then
# run each unit's ExecStart (the installed zkit with the installed example configuration, on
# loopback ports of its own) and stop it as systemd would, with SIGTERM: it must exit 0.
# Exits 77 (ctest: skipped, with the reason printed) only when systemd-analyze is not installed.
# Usage: units_test.sh BUILD_DIR WORK_DIR
set -euo pipefail
build=$1 work=$2
fail() { echo "units_test: FAIL: $*" >&2; exit 1; }
rm -rf "$work"
mkdir -p "$work/units" "$work/state"
cmake --install "$build" --prefix "$work/prefix" >"$work/install.log" 2>&1 ||
  { cat "$work/install.log"; fail "cmake --install"; }
unitdir=$work/prefix/lib/systemd/system
examples=$work/prefix/share/doc/zkit/examples

if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "units_test: systemd-analyze not found (Debian package systemd): the units are NOT verified"
  exit 77
fi
for kind in spool proxy; do
  # A template is verified through an instance: copy it under an instance name.
  unit=$work/units/zkit-$kind@example.service
  cp "$unitdir/zkit-$kind@.service" "$unit"
  if ! out=$(systemd-analyze verify "$unit" 2>&1); then
    echo "$out"
    fail "systemd-analyze verify zkit-$kind@example.service"
  fi
  # verify can exit 0 with warnings about the file (unknown keys, bad values): none allowed.
  if grep -q "zkit-$kind@" <<<"$out"; then
    echo "$out"
    fail "systemd-analyze verify warns about zkit-$kind@.service"
  fi
  exposure=$(systemd-analyze security --offline=yes --threshold=20 "$unit" 2>&1 |
             sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
  [ -n "$exposure" ] || fail "systemd-analyze security printed no exposure level"
  echo "zkit-$kind@.service: systemd-analyze verify clean; exposure $exposure (0 best, 10 worst)"
  awk -v e="$exposure" 'BEGIN { exit !(e <= 2.0) }' || fail "exposure $exposure above 2.0"
  grep -q '^KillSignal=SIGTERM$' "$unit" || fail "zkit-$kind@: stop is not SIGTERM"
  grep -q '^Restart=on-failure$' "$unit" || fail "zkit-$kind@: no Restart=on-failure"
done
grep -q '^StateDirectory=zkit/%i$' "$unitdir/zkit-spool@.service" || fail "spool: StateDirectory"

# ExecStart as systemd would run it for instance "example" (%i), with /etc/zkit/example.conf being
# the installed example and %S the state root; endpoints moved to loopback ports of our own (the
# command line wins over the file).
run_unit() {
  local kind=$1; shift
  local exec
  exec=$(sed -n 's/^ExecStart=//p' "$unitdir/zkit-$kind@.service")
  exec=${exec//\/etc\/zkit\/%i.conf/$examples\/$kind.conf}
  exec=${exec//%S/$work/state}
  exec=${exec//%i/example}
  mkdir -p "$work/state/zkit"
  local out=$work/$kind.out err=$work/$kind.err
  # shellcheck disable=SC2086  # ExecStart is a plain word list
  $exec "$@" >"$out" 2>"$err" &
  local pid=$! i
  for ((i = 0; i < 200; i++)); do  # up to 10 s for the endpoints line
    grep -q '^control tcp://' "$out" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  grep -q '^control tcp://' "$out" || { cat "$err"; kill -KILL "$pid" 2>/dev/null; fail "$kind did not start"; }
  kill -TERM "$pid"
  local rc=0
  wait "$pid" || rc=$?
  [ "$rc" -eq 0 ] || { cat "$err"; fail "$kind exited $rc on SIGTERM (want 0)"; }
  echo "zkit-$kind@example: ExecStart ran ($(tr '\n' ' ' <"$out")), SIGTERM -> exit 0"
}
run_unit spool --listen 'tcp://127.0.0.1:*' --forward tcp://127.0.0.1:9 --control 'tcp://127.0.0.1:*'
[ -e "$work/state/zkit/example/LOCK" ] ||
  fail "the spool did not use %S/zkit/%i as its directory"
run_unit proxy --frontend 'tcp://127.0.0.1:*' --backend 'tcp://127.0.0.1:*' --control 'tcp://127.0.0.1:*'
echo "units_test: both units verified and run"
