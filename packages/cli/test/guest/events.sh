#!/bin/sh
# Runs inside the VM guest with usip.ko loaded with allow_inject=1 (see ../vm-events.test.ts):
# usip listen / listeners / inject / stats, and the client API script, against the module.
# Each step leaves its stdout, stderr and exit status in $USIP_VM_RESULTS for the host to check.
set -u
cd "$(dirname "$0")/../../../.."
results=${USIP_VM_RESULTS:?not in a usip-vm guest}

step() { # step NAME COMMAND...: run COMMAND, keep its output and exit status
	name=$1
	shift
	"$@" >"$results/$name.out" 2>"$results/$name.err"
	echo $? >"$results/$name.status"
}

wait_listening() { # wait_listening NAME PID: until usip listen's stderr says it is registered
	until grep -q '^usip: listening' "$results/$1.err" 2>/dev/null; do
		# It exited without registering: the host reports its stderr.
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.1
	done
}

usip=packages/cli/dist/bin.js
nobody='setpriv --reuid=65534 --regid=65534 --clear-groups'
stat -L -c %i /proc/self/ns/mnt >"$results/mnt-ns"

# usip listen --json --count 3, and three injections while it runs.
node "$usip" listen --json --count 3 --notifier mtab:mount --notifier mtab:umount:kern-log:cmd=7 \
	>"$results/listen.out" 2>"$results/listen.err" &
echo $! >"$results/listen.pid"
wait_listening listen "$(cat "$results/listen.pid")"
echo $? >"$results/listen-ready.status"
step listeners-running node "$usip" listeners --json
step listeners-table node "$usip" listeners
step inject-1 node "$usip" inject --type mtab --action mount --path /mnt/a --mount-id 101 --parent-id 1 \
	--fs-type tmpfs --source none --dev 0:42 --json
step inject-2 node "$usip" inject --type mtab --action umount --path /mnt/a --mount-id 101 --json
step inject-3 node "$usip" inject --type mtab --action mount --path '/mnt/b c' --mount-id 102
wait "$(cat "$results/listen.pid")"
echo $? >"$results/listen.status"
step listeners-after-count node "$usip" listeners --json

# The human form of an event line.
node "$usip" listen --count 1 --notifier storage:enospc >"$results/human.out" 2>"$results/human.err" &
human=$!
wait_listening human $human
step inject-enospc node "$usip" inject --type storage --action enospc --path /srv --count 2 --dev 8:1
wait $human
echo $? >"$results/human.status"

# A listener dies with its process: SIGKILL.
node "$usip" listen --notifier mtab:move >"$results/killed.out" 2>"$results/killed.err" &
echo $! >"$results/killed.pid"
wait_listening killed "$(cat "$results/killed.pid")"
step listeners-before-kill node "$usip" listeners --json
kill -KILL "$(cat "$results/killed.pid")"
wait "$(cat "$results/killed.pid")"
echo $? >"$results/killed.status"
step listeners-after-kill node "$usip" listeners --json

# SIGTERM stops usip listen cleanly (exit 0), and it unregisters.
node "$usip" listen --notifier mtab:remount >"$results/term.out" 2>"$results/term.err" &
term=$!
wait_listening term $term
kill -TERM $term
wait $term
echo $? >"$results/term.status"
step listeners-after-term node "$usip" listeners --json

# An unprivileged user: inject and global listeners are refused, with the module's reason.
step nobody-inject $nobody node "$usip" inject --type mtab --action mount
step nobody-global $nobody node "$usip" listen --global --count 1 --notifier mtab:mount

# The client API.
step client-root node --import tsx packages/cli/test/guest/client-events.ts root
echo 1 >/sys/module/usip/parameters/max_listeners_per_user
step client-nobody $nobody node --import tsx packages/cli/test/guest/client-events.ts nobody
echo 64 >/sys/module/usip/parameters/max_listeners_per_user

cat /sys/module/usip/parameters/event_queue_len >"$results/event_queue_len"
step stats node "$usip" stats --json
step stats-human node "$usip" stats
step nobody-stats $nobody node "$usip" stats --json
step nobody-stats-human $nobody node "$usip" stats
# A real failure (after the stats above: its coalescing slot lives a second or two): dd fills a
# 64 KiB tmpfs while usip listen waits for its ENOSPC.
mkdir -p /tmp/full && mount -t tmpfs -o size=64k none /tmp/full
node "$usip" listen --json --count 1 --notifier storage:enospc:path-prefix=/tmp/full \
	>"$results/real-enospc.out" 2>"$results/real-enospc.err" &
real=$!
wait_listening real-enospc $real
sh -c 'echo $$ >"$1"; exec dd if=/dev/zero of=/tmp/full/f bs=4k count=100' sh "$results/dd.pid" 2>"$results/dd.err"
echo $? >"$results/dd.status"
wait $real
echo $? >"$results/real-enospc.status"
stat -c %i /tmp/full/f >"$results/dd.ino"
umount /tmp/full
uname -r >"$results/uname"
