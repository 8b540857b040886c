#!/bin/sh
# Runs inside the VM guest with usip.ko loaded (see ../vm-mounts.test.ts), in a private mount
# namespace of its own: a few hundred mounts of every kind, then usip mounts / mount / watch
# against them, the client API (mounts-client.ts), and the storms (mount-storm.ts).
# Each step leaves its stdout, stderr and exit status in $USIP_VM_RESULTS for the host to check.
#   sh mounts.sh STORM-BINARY STORM-SIZE
set -u
cd "$(dirname "$0")/../../../.."
results=${USIP_VM_RESULTS:?not in a usip-vm guest}
storm=${1:?usage: mounts.sh STORM-BINARY STORM-SIZE}
storm_size=${2:?usage: mounts.sh STORM-BINARY STORM-SIZE}

if [ -z "${USIP_MOUNTS_PRIVATE:-}" ]; then
	# A mount id of the initial namespace: not visible from the private one.
	awk '$5 == "/" { print $1 }' /proc/self/mountinfo >"$results/outside-id"
	USIP_MOUNTS_PRIVATE=1 exec unshare -m --propagation private sh "$0" "$@"
fi

step() { # step NAME COMMAND...: run COMMAND, keep its output and exit status
	name=$1
	shift
	"$@" >"$results/$name.out" 2>"$results/$name.err"
	echo $? >"$results/$name.status"
}

lines() { # lines FILE: how many lines FILE has (0 if it does not exist)
	if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi
}

wait_lines() { # wait_lines FILE N PID: until FILE has N lines, or PID is gone
	until [ "$(lines "$1")" -ge "$2" ]; do
		kill -0 "$3" 2>/dev/null || return 1
		sleep 0.05
	done
}

wait_watching() { # wait_watching NAME PID: until usip watch's stderr says it is watching
	until grep -q '^usip: watching' "$results/$1.err" 2>/dev/null; do
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.05
	done
}

usip=packages/cli/dist/bin.js
stat -L -c %i /proc/self/ns/mnt >"$results/mnt-ns"
start=$(date +%s)

# --- A few hundred mounts: tmpfs with every per-mount option, binds of whole file systems and
# of directories, nesting, odd names, shared/slave/unbindable propagation (see mount-storm.c).
m=/tmp/m
mkdir -p $m
step variety "$storm" variety $m
echo $(($(date +%s) - start)) >"$results/setup-seconds"

# --- usip mounts, and mountinfo read right after in the same namespace, from the same root.
step mounts-json node "$usip" mounts --dump
cp /proc/self/mountinfo "$results/mountinfo-after-json"
step mounts-table node "$usip" mounts -l -o ID,PARENT,TARGET,SOURCE,FSTYPE,OPTIONS
step mounts-tree node "$usip" mounts -o ID,PARENT,TARGET,SOURCE,FSTYPE,OPTIONS
# usip mounts next to findmnt, with the module: the same bytes (../findmnt.test.ts reads them).
mkdir -p "$results/findmnt" /tmp/findmnt-cmp
step findmnt-cmp sh packages/cli/test/host/findmnt.sh "$PWD" /tmp/findmnt-cmp "$results/findmnt" default module

# --- usip mount: a few mounts by id, one by unique id, and ids that are not here.
space_id=$(awk '$5 == "/tmp/m/with\\040space" { print $1 }' /proc/self/mountinfo)
slave_id=$(awk '$5 == "/tmp/m/slave" { print $1 }' /proc/self/mountinfo)
echo "$space_id $slave_id" >"$results/mount-ids"
step mount-json node "$usip" mount $slave_id --json
step mount-human node "$usip" mount $space_id
step mount-outside node "$usip" mount "$(cat "$results/outside-id")"
# Linux 6.8 and later: the unique id from the line above (none before: a made-up one).
unique=$(awk '$1 == "unique" && $2 == "id" { print $3 }' "$results/mount-human.out")
echo "$unique" >"$results/unique-id"
step mount-unique-json node "$usip" mount --unique-id "${unique:-2147483648}" --json

# --- usip watch --json --count 7 while this script mounts, moves, remounts and umounts; each
# step waits for the lines of the one before, so that each change is seen on its own.
w=$m/w
mkdir -p $w/a $w/b
node "$usip" watch --dump --count 7 >"$results/watch.out" 2>"$results/watch.err" &
watch=$!
wait_watching watch $watch
echo $? >"$results/watch-ready.status"
mount -t tmpfs watched $w/a
wait_lines "$results/watch.out" 1 $watch
mkdir $w/a/c
mount -t tmpfs watched-sub $w/a/c
wait_lines "$results/watch.out" 2 $watch
mount --move $w/a $w/b
wait_lines "$results/watch.out" 4 $watch
mount -o remount,bind,ro $w/b
wait_lines "$results/watch.out" 5 $watch
umount $w/b/c
wait_lines "$results/watch.out" 6 $watch
umount $w/b
wait $watch
echo $? >"$results/watch.status"

# The human form, and SIGTERM: exit 0, the listener gone.
node "$usip" watch >"$results/watch-human.out" 2>"$results/watch-human.err" &
watch=$!
wait_watching watch-human $watch
mount -t tmpfs human "$w/a"
wait_lines "$results/watch-human.out" 2 $watch
kill -TERM $watch
wait $watch
echo $? >"$results/watch-human.status"
umount "$w/a"
step listeners-after-watch node "$usip" listeners --json

# --- The client API in one process: mounts() against its own mountinfo, mount(), a watcher.
step client node --import tsx packages/cli/test/guest/mounts-client.ts

# --- The storms. The big one: a buffer that holds the mount loop's events (the watcher's default
# of 4 MiB, once rmem_max allows it), then all of them go with one lazy umount, a burst far
# bigger than the module's event queue. The small one: a buffer that overflows, and a umount loop.
sysctl -qw net.core.rmem_max=8388608
step storm-big node --import tsx packages/cli/test/guest/mount-storm.ts "$storm" "$storm_size" big --umount lazy
step storm-small node --import tsx packages/cli/test/guest/mount-storm.ts "$storm" 1000 small --receive-buffer-size 16384 --umount loop

step stats node "$usip" stats --json
echo $(($(date +%s) - start)) >"$results/seconds"
uname -r >"$results/uname"
