#!/bin/bash
# Idle CPU of `zkit spool` over 10 s, with a live downstream (`zkit recv --reliable`): CPU time of
# all its threads (/proc/PID/task/*/schedstat, ns) and voluntary context switches per thread.
# Usage: tests/spool_node/idle_cpu.sh build/devices/zkit   (report only; not a ctest)
ZKIT=${1:?usage: idle_cpu.sh PATH/TO/zkit}; DIR=$(mktemp -d)
"$ZKIT" recv --reliable --bind "ipc://$DIR/down" >/dev/null 2>"$DIR/recv.log" &
RPID=$!
"$ZKIT" spool --dir "$DIR/spool" --listen "ipc://$DIR/up" --forward "ipc://$DIR/down" \
  --control "ipc://$DIR/ctl" --stats-interval 0 >/dev/null 2>"$DIR/log" &
PID=$!
sleep 2
snap() {
  ns=$(cat /proc/$PID/task/*/schedstat | awk '{s+=$1} END {print s}')
  per=$(for t in /proc/$PID/task/*; do echo -n "$(cat $t/comm)=$(awk '/^voluntary/ {print $2}' $t/status) "; done)
}
snap; n0=$ns; p0=$per
sleep 10
snap; n1=$ns; p1=$per
kill -TERM $PID; wait $PID; kill -TERM $RPID; wait $RPID
echo "over 10 s: $(( (n1-n0)/1000 )) us of CPU ($(awk -v n=$((n1-n0)) 'BEGIN{printf "%.4f", n/1e9/10*100}') % of one core)"
echo "voluntary switches before: $p0"
echo "voluntary switches after:  $p1"
rm -rf "$DIR"
