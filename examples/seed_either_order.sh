#!/bin/sh
# Starts batch_send and async_consume in both orders on a fresh ipc endpoint and checks that the
# consumer printed all ten lines each time.  Usage: seed_either_order.sh <bindir>
set -eu
bin=$1
dir=$(mktemp -d /tmp/zkit-seed-XXXXXX)
trap 'rm -rf "$dir"' EXIT
ep="ipc://$dir/hello.sock"

check() {  # $1: consumer output file
  for i in 0 1 2 3 4 5 6 7 8 9; do
    grep -qx " \[x\] Received 'Hello World $i'" "$1" || { echo "missing Hello World $i"; cat "$1"; exit 1; }
  done
}

# consumer first
"$bin/async_consume" --endpoint "$ep" --timeout-s 20 > "$dir/c1.out" &
consumer=$!
sleep 0.3
"$bin/batch_send" --endpoint "$ep" > "$dir/s1.out"
wait $consumer
check "$dir/c1.out"
grep -qx " \[x\] Sent 'Hello World 9'" "$dir/s1.out"

# sender first: it waits (bounded by its linger) until the consumer binds
rm -f "$dir/hello.sock"
"$bin/batch_send" --endpoint "$ep" > "$dir/s2.out" &
sender=$!
sleep 0.5
"$bin/async_consume" --endpoint "$ep" --timeout-s 20 > "$dir/c2.out"
wait $sender
check "$dir/c2.out"
echo "seed programs: ten messages in either order"
