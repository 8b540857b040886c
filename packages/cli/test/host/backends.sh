#!/bin/sh
# Run by ../backends.test.ts as root in a private mount namespace (unshare -m --propagation
# private), without the usip module:  sh backends.sh REPO DIR RESULTS
# usip mounts / mount / df / watch with each backend forced, usip status, and the same as uid
# 65534 (through a bind mount of the workspace at a path anyone may enter, seen only in this
# namespace). Each step leaves its stdout, stderr and exit status in RESULTS.
set -u
repo=$1
dir=$2
results=$3
cd "$repo"
usip="node $repo/packages/cli/dist/bin.js"

step() { # step NAME COMMAND...: run COMMAND, keep its output and exit status
	name=$1
	shift
	"$@" >"$results/$name.out" 2>"$results/$name.err"
	echo $? >"$results/$name.status"
}

wait_lines() { # wait_lines FILE N PID: until FILE has N lines, or PID is gone (60 s at most)
	tries=0
	until [ "$(wc -l <"$1" 2>/dev/null || echo 0)" -ge "$2" ]; do
		kill -0 "$3" 2>/dev/null || return 1
		tries=$((tries + 1))
		[ $tries -lt 1200 ] || return 1
		sleep 0.05
	done
}

wait_watching() { # wait_watching NAME PID
	until grep -q '^usip: watching' "$results/$1.err" 2>/dev/null; do
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.05
	done
}

mkdir -p "$dir/t1" "$dir/t2" "$dir/ro" "$dir/w" "$dir/m"
mount -t tmpfs -o size=10m t1 "$dir/t1"
mount -t tmpfs -o size=1m,nr_inodes=1000 "t 2" "$dir/t2"
dd if=/dev/zero of="$dir/t1/f" bs=1k count=300 2>/dev/null
mount -t tmpfs -o size=2m,ro ro "$dir/ro"

step status-json $usip status --json
step status $usip status
for b in kernel mountinfo; do
	step "mounts-$b" $usip mounts --dump --backend "$b"
	cp /proc/self/mountinfo "$results/mountinfo-$b"
	id=$(awk -v p="$dir/t1" '$5 == p { print $1 }' /proc/self/mountinfo)
	step "mount-$b" $usip mount "$id" --json --backend "$b"
	step "df-$b" $usip df -T -t tmpfs --backend "$b"
	for o in -H -P --total -l -i -Ph; do step "df$o-$b" $usip df $o -t tmpfs --backend "$b"; done
	step "df-files-$b" $usip df -h "$dir/t1" "$dir/t2/" "$dir/ro" --backend "$b"
	step "df-missing-$b" $usip df "$dir/nope" --backend "$b"
	step "devices-$b" $usip devices --json --backend "$b"
	# A watcher through a mount, a move, a remount and an umount, each once the one before was
	# reported: without the module, changes that follow each other faster than the watcher reads
	# may be seen as their sum (a remount of a mount already gone is not reported at all).
	timeout 120 $usip watch --dump --count 4 --backend "$b" >"$results/watch-$b.out" 2>"$results/watch-$b.err" &
	pid=$!
	wait_watching "watch-$b" $pid
	mount -t tmpfs "w$b" "$dir/w"
	wait_lines "$results/watch-$b.out" 1 $pid
	mount --move "$dir/w" "$dir/m"
	wait_lines "$results/watch-$b.out" 2 $pid
	mount -o remount,ro "$dir/m"
	wait_lines "$results/watch-$b.out" 3 $pid
	umount "$dir/m"
	wait $pid
	echo $? >"$results/watch-$b.status"
done
step df-coreutils df -T -t tmpfs
for o in -H -P --total -l -i -Ph; do step "df$o-coreutils" df $o -t tmpfs; done
step df-files-coreutils df -h "$dir/t1" "$dir/t2/" "$dir/ro"
step df-missing-coreutils df "$dir/nope"
step module-mounts $usip mounts --backend module
step module-status $usip status --backend module --json
step kernel-watch-as-module $usip watch --backend module --count 1
step listen-storage $usip listen --notifier storage:enospc
step listen-low-space $usip listen --notifier storage:low-space,threshold=10%
step listen-mtab $usip listen --notifier mtab:mount

# As uid 65534: fanotify is refused; the mountinfo poll serves the changes.
open=$(mktemp -d /tmp/usip-open.XXXXXX)
chmod 755 "$open"
mount --bind "$repo" "$open"
nobody="setpriv --reuid=65534 --regid=65534 --clear-groups env HOME=/tmp node $open/packages/cli/dist/bin.js"
step nobody-status-json $nobody status --json
step nobody-forced-kernel-watch $nobody watch --backend kernel --count 1
$nobody watch --dump --count 1 >"$results/nobody-watch.out" 2>"$results/nobody-watch.err" &
pid=$!
wait_watching nobody-watch $pid
mount -t tmpfs nobodysees "$dir/w"
wait $pid
echo $? >"$results/nobody-watch.status"
umount "$dir/w"
