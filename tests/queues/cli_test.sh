#!/usr/bin/env bash
# Queues from the command line: `zkit spool --serve` and its bounds (bad values exit 2 naming the
# flag), `zkit recv --group` (every message once across two members, exit codes), `zkit groups`
# list/reset/delete/replay-dead (exit 0, 1 when the spool refuses, 2 on usage errors).
#   cli_test.sh ZKIT
set -uo pipefail
zkit=$1
tmp=$(mktemp -d "${TMPDIR:-/tmp}/zkit-queues-cli.XXXXXX")
spool_pid=""
cleanup() {
  if [[ -n $spool_pid ]]; then kill -KILL "$spool_pid" 2>/dev/null || true; fi
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
expect_usage() {  # expect_usage TEXT ARGS...: exit 2 and TEXT on stderr
  local text=$1; shift
  "$zkit" "$@" >/dev/null 2>"$tmp/err"
  local rc=$?
  [[ $rc -eq 2 ]] || fail "'$*' exited $rc, expected 2"
  grep -q -- "$text" "$tmp/err" || fail "'$*' did not say $text: $(cat "$tmp/err")"
}
base=(spool --dir "$tmp/spool" --listen "ipc://$tmp/in" --serve "ipc://$tmp/serve")
expect_usage "--forward or --serve" spool --dir "$tmp/spool" --listen "ipc://$tmp/in"
expect_usage --max-groups "${base[@]}" --max-groups 0
expect_usage --max-members "${base[@]}" --max-members 0
expect_usage --max-prefetch "${base[@]}" --max-prefetch 0
expect_usage --ack-wait "${base[@]}" --ack-wait 0
expect_usage --ack-wait "${base[@]}" --ack-wait soon
expect_usage --consumer-heartbeat "${base[@]}" --consumer-heartbeat 1ms
expect_usage --max-dead-bytes "${base[@]}" --max-dead-bytes 3X
expect_usage --serve "${base[@]}" --serve nowhere
expect_usage "go together" recv --group work
expect_usage --group recv --from "ipc://$tmp/serve" --group "bad name"
expect_usage --start recv --from "ipc://$tmp/serve" --group work --start yesterday
expect_usage "needs --group" recv --socket pull --endpoint "ipc://$tmp/x" --manual-ack
expect_usage "--group takes no --reliable" recv --from "ipc://$tmp/serve" --group w --reliable
expect_usage --action groups frobnicate --control "ipc://$tmp/ctl"
expect_usage "--group is required" groups delete --control "ipc://$tmp/ctl"
expect_usage "--to is required" groups reset --control "ipc://$tmp/ctl" --group work
expect_usage --to groups reset --control "ipc://$tmp/ctl" --group work --to never

"$zkit" "${base[@]}" --control "ipc://$tmp/ctl" --stats-interval 0 >"$tmp/spool.out" 2>"$tmp/spool.err" &
spool_pid=$!
"$zkit" send --reliable --endpoint "ipc://$tmp/in" --count 20000 --size 20 2>"$tmp/send.err" ||
  fail "send: $(cat "$tmp/send.err")"
grep -q "^serve ipc://" "$tmp/spool.out" || fail "no serve line: $(cat "$tmp/spool.out")"
# One member alone gets all of it, in order (--check).
"$zkit" recv --from "ipc://$tmp/serve" --group solo --count 20000 --quiet --check 2>"$tmp/solo.err" ||
  fail "recv solo: $(cat "$tmp/solo.err")"
# Two members of one group share it: together every message once.
"$zkit" recv --from "ipc://$tmp/serve" --group pair --prefetch 2 --timeout-ms 2000 --format text >"$tmp/a.out" 2>"$tmp/a.err" &
a=$!
"$zkit" recv --from "ipc://$tmp/serve" --group pair --prefetch 2 --manual-ack --timeout-ms 2000 --format text >"$tmp/b.out" 2>"$tmp/b.err" &
b=$!
wait $a $b
total=$(cat "$tmp/a.out" "$tmp/b.out" | wc -l)
unique=$(cat "$tmp/a.out" "$tmp/b.out" | sort -u | wc -l)
[[ $total -eq 20000 && $unique -eq 20000 ]] || fail "pair: $total lines, $unique distinct (want 20000)"
"$zkit" groups list --control "ipc://$tmp/ctl" >"$tmp/list" || fail "groups list"
grep -q "^pair " "$tmp/list" && grep -q "^solo " "$tmp/list" || fail "list: $(cat "$tmp/list")"
"$zkit" groups list --control "ipc://$tmp/ctl" --json | grep -q '"lag_batches":0' || fail "list --json"
"$zkit" groups reset --control "ipc://$tmp/ctl" --group solo --to earliest >/dev/null || fail "reset"
"$zkit" recv --from "ipc://$tmp/serve" --group solo --count 20000 --quiet --check 2>"$tmp/again.err" ||
  fail "recv after reset: $(cat "$tmp/again.err")"
"$zkit" groups replay-dead --control "ipc://$tmp/ctl" --group solo | grep -q "0 batches replayed" ||
  fail "replay-dead"
"$zkit" groups delete --control "ipc://$tmp/ctl" --group solo >/dev/null || fail "delete"
"$zkit" groups delete --control "ipc://$tmp/ctl" --group solo 2>"$tmp/err"
[[ $? -eq 1 ]] && grep -q "no group" "$tmp/err" || fail "delete of a deleted group: $(cat "$tmp/err")"
"$zkit" groups reset --control "ipc://$tmp/ctl" --group forward --to earliest 2>/dev/null
[[ $? -eq 1 ]] || fail "reset of the forward group was not refused"
kill -TERM "$spool_pid"
wait "$spool_pid" || fail "spool exit status $?"
spool_pid=""
[[ -d $tmp/spool/groups ]] || fail "no groups directory"
echo "queues cli ok"
