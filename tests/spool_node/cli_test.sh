#!/usr/bin/env bash
# `zkit spool` and `zkit spool-inspect` from the command line: bad flags exit 2 naming the flag;
# SIGTERM stops the spool with exit 0 and final statistics; verify exits 0 on a clean directory
# (listing a stray file as foreign) and 1 once a record is damaged; dump reads it; neither changes
# the directory; the action is a bare word or --action, an unknown one exits 2 naming it.
#   cli_test.sh ZKIT
set -uo pipefail
zkit=$1
tmp=$(mktemp -d "${TMPDIR:-/tmp}/zkit-spool-cli.XXXXXX")
spool_pid=""
cleanup() {
  if [[ -n $spool_pid ]]; then kill -KILL "$spool_pid" 2>/dev/null || true; fi
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

expect_usage() {  # expect_usage FLAG ARGS...: exit 2 and the flag named on stderr
  local flag=$1; shift
  "$zkit" "$@" >/dev/null 2>"$tmp/err"
  local rc=$?
  [[ $rc -eq 2 ]] || fail "'$*' exited $rc, expected 2"
  grep -q -- "$flag" "$tmp/err" || fail "'$*' did not name $flag: $(cat "$tmp/err")"
}
base=(spool --dir "$tmp/spool" --listen "ipc://$tmp/in" --forward "ipc://$tmp/out")
expect_usage --max-bytes "${base[@]}" --max-bytes 12Q
expect_usage --segment-bytes "${base[@]}" --segment-bytes 1k
expect_usage --max-age "${base[@]}" --max-age 10x
expect_usage --fsync "${base[@]}" --fsync sometimes
expect_usage --when-full "${base[@]}" --when-full maybe
expect_usage --max-sessions "${base[@]}" --max-sessions 0
expect_usage --max-producers "${base[@]}" --max-producers 0
expect_usage --duplicate-window "${base[@]}" --duplicate-window -3
expect_usage --listen spool --dir "$tmp/spool" --listen nope --forward "ipc://$tmp/out"
expect_usage --dir spool --dir /proc/nonexistent/x --listen "ipc://$tmp/in" --forward "ipc://$tmp/out"
expect_usage --action spool-inspect --action check --dir "$tmp"
expect_usage check spool-inspect check --dir "$tmp"                # an unknown action, as a bare word
expect_usage --action spool-inspect --dir "$tmp"                   # no action at all
expect_usage positional spool-inspect verify dump --dir "$tmp"     # one bare word only
expect_usage "more than once" spool-inspect verify --action dump --dir "$tmp"
expect_usage --dir spool-inspect verify --dir "$tmp/missing"

"$zkit" "${base[@]}" --control "ipc://$tmp/ctl" --stats-interval 0 >"$tmp/spool.out" 2>"$tmp/spool.err" &
spool_pid=$!
"$zkit" send --reliable --endpoint "ipc://$tmp/in" --count 1000 --size 20 2>"$tmp/send.err" ||
  fail "send: $(cat "$tmp/send.err")"
"$zkit" stats --control "ipc://$tmp/ctl" --json >"$tmp/stats.json" || fail "stats did not answer"
grep -q '"device":"spool"' "$tmp/stats.json" || fail "STATS: $(cat "$tmp/stats.json")"
kill -TERM "$spool_pid"
wait "$spool_pid"
rc=$?
spool_pid=""
[[ $rc -eq 0 ]] || fail "spool exited $rc after SIGTERM: $(tail -3 "$tmp/spool.err")"
grep -q "final statistics" "$tmp/spool.err" || fail "no final statistics"

# A stray file named like a segment whose number overflows 64 bits is foreign, not a segment.
printf 'stray' >"$tmp/spool/99999999999999999999.seg"
"$zkit" spool-inspect verify --dir "$tmp/spool" >"$tmp/verify.out" ||
  fail "verify of a clean spool: $(cat "$tmp/verify.out")"
grep -q "1000 messages" "$tmp/verify.out" || fail "verify: $(cat "$tmp/verify.out")"
grep -q "foreign files: 1" "$tmp/verify.out" || fail "verify: $(cat "$tmp/verify.out")"
"$zkit" spool-inspect --action verify --dir "$tmp/spool" --format json >"$tmp/verify.json" ||
  fail "verify --action (json): $(cat "$tmp/verify.json")"
grep -q '"99999999999999999999.seg"' "$tmp/verify.json" || fail "verify json: $(cat "$tmp/verify.json")"
"$zkit" spool-inspect dump --dir "$tmp/spool" --format json >"$tmp/dump.out" ||
  fail "dump failed"
[[ -s $tmp/dump.out ]] || fail "dump printed nothing"

seg=$(ls "$tmp/spool"/*.seg | head -1)
size=$(stat -c %s "$seg")
printf 'GARBAGE-GARBAGE' | dd of="$seg" bs=1 seek=$((size / 2)) conv=notrunc status=none
before=$(ls -l --time-style=+%s.%N "$tmp/spool" | md5sum)
"$zkit" spool-inspect verify --dir "$tmp/spool" >"$tmp/verify2.out"
rc=$?
[[ $rc -eq 1 ]] || fail "verify of a damaged spool exited $rc: $(cat "$tmp/verify2.out")"
"$zkit" spool-inspect dump --dir "$tmp/spool" --format hex >/dev/null || fail "dump (damaged)"
after=$(ls -l --time-style=+%s.%N "$tmp/spool" | md5sum)
[[ $before == "$after" ]] || fail "spool-inspect changed the directory"
echo "PASS"
