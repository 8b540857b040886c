#!/bin/sh
# Runs inside the VM guest after rmmod usip (see status.sh), in a private mount namespace:
# usip watch without the module sees a mount, a remount and an umount.   sh unloaded-watch.sh RESULTS
set -u
results=$1
usip=packages/cli/dist/bin.js
mkdir -p /tmp/unloaded-watch
node "$usip" watch --dump --count 3 >"$results/unloaded-watch.out" 2>"$results/unloaded-watch.err" &
pid=$!
until grep -q '^usip: watching' "$results/unloaded-watch.err" 2>/dev/null; do
	kill -0 $pid 2>/dev/null || exit 1
	sleep 0.05
done
mount -t tmpfs unloaded /tmp/unloaded-watch
mount -o remount,ro /tmp/unloaded-watch
umount /tmp/unloaded-watch
wait $pid
