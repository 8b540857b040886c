#!/bin/busybox sh
# shellcheck shell=dash
# SPDX-License-Identifier: GPL-2.0-only
#
# The second stage of the usip-vm guest: pid 1 once /init (guest/init.sh) has made the host's
# root, shared read-only over 9p, the guest's root with switch_root. It runs from the run's
# share, /run/usip-vm/harness, where the host copies it next to plan.sh, which says what to do
# in this run (see src/plan.ts). /proc, /sys and /dev are the ones /init mounted; /run is a
# fresh tmpfs.
#
# Channels: the kernel console is ttyS0 (kept in a host file); the command's output goes to the
# virtio-serial port "usip.out" (read live by the host; not a tty, like a pipe on the host);
# the run's status goes to files in the harness share. The run always ends in `poweroff -f`:
# if pid 1 exited, the kernel would panic.
B=/bin/busybox
export PATH=/bin
G=/run/usip-vm/harness
# Where the fresh /tmp and the opened directories are put together before they are moved into place.
S=/run/usip-vm/stage

say() { echo "usip-vm-init: $*" >/dev/console; }

finish() {
	$B sync
	$B poweroff -f
	# poweroff -f does not return; if it somehow did, pid 1 must still never exit.
	while :; do $B sleep 60; done
}

fail() {
	echo "$*" >>$G/harness-errors
	say "error: $*"
}

# plan.sh sets run_kver, run_modules_tree, run_deadline and run_unload, and defines
# load_plan_modules, keep_plan_tmp_entries, open_plan_dirs and guest_command (see src/plan.ts).
run_kver='' run_modules_tree='' run_deadline='' run_unload=''
# shellcheck disable=SC1091
. $G/plan.sh

out=
for f in /sys/class/virtio-ports/*/name; do
	[ -f "$f" ] && [ "$($B cat "$f")" = usip.out ] && out=/dev/${f#/sys/class/virtio-ports/} && out=${out%/name}
done
if [ -z "$out" ] || [ ! -c "$out" ]; then
	fail "no virtio-serial port named usip.out for the command's output"
fi

# The kernel's own modules, where the guest's modprobe looks for them. The host has a
# /lib/modules/<release> to mount on only for kernels whose headers it installed itself (not
# 7.x, built in the trixie root); its root is read-only here, so a tmpfs gives the place.
if [ -n "$run_modules_tree" ] && [ -d "$run_modules_tree" ]; then
	if [ ! -d "/lib/modules/$run_kver" ]; then
		$B mount -t tmpfs -o mode=0755 usip-modules /lib/modules
		$B mkdir "/lib/modules/$run_kver"
	fi
	$B mount --bind "$run_modules_tree" "/lib/modules/$run_kver"
fi

# Modules under test, by their host paths, before a fresh /tmp hides the host's /tmp.
loaded=""
# load_module NAME PATH [PARAM=VALUE]...
load_module() {
	lm_name=$1
	shift
	if $B insmod "$@" 2>$G/insmod.err; then
		loaded="$lm_name $loaded"
		echo "$lm_name" >>$G/loaded
	else
		{
			echo "insmod $* failed: $($B cat $G/insmod.err)"
		} >>$G/load-errors
	fi
}
# The boot stays quiet on the console (loglevel=5); from here on, every kernel message reaches
# it too, so a run whose guest hangs or dies still shows what the module said.
$B dmesg -n 8
echo "usip-vm: loading modules" >/dev/kmsg
load_plan_modules

# The file system the command sees: the host's root, read-only, with fresh kernel and scratch
# file systems mounted in it.
$B mkdir -p /dev/pts /dev/shm $S
$B mount -t devpts devpts /dev/pts
$B mount -t tmpfs -o mode=1777 tmpfs /dev/shm
$B mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null

# keep_tmp_entry NAME: the host's /tmp/NAME (a working tree there, say) stays visible
# (read-only) in the fresh /tmp being made at $S.
keep_tmp_entry() {
	$B mkdir -p "$S/$1"
	$B mount --rbind "/tmp/$1" "$S/$1" || fail "cannot keep /tmp/$1 visible"
}
if $B mount -t tmpfs -o mode=1777 tmpfs $S; then
	keep_plan_tmp_entries
	$B mount --move $S /tmp || fail "cannot mount tmpfs on /tmp"
else
	fail "cannot mount tmpfs on /tmp"
fi

# open_dir DIR: DIR is a directory on the way to the workspace or the working directory that
# others may not enter (a `mktemp -d` directory, /root). It is covered by a read-only tmpfs
# with DIR's owner and mode plus r-x for group and others, holding each entry of DIR
# bind-mounted from DIR (a symlink copied): any uid can reach the workspace, while every entry
# keeps its own owner and mode and nothing on the host changes. Called parents first, so a
# closed directory inside an opened one is opened in turn.
open_dir() {
	od_dir=$1
	[ -d "$od_dir" ] || return 0
	# shellcheck disable=SC2046
	set -- $($B stat -c '%a %u %g' "$od_dir")
	od_mode=$(printf '%o' $((0$1 | 055)))
	if ! $B mount -t tmpfs -o "mode=$od_mode,uid=$2,gid=$3" tmpfs $S; then
		fail "cannot open $od_dir"
		return
	fi
	for od_entry in "$od_dir"/* "$od_dir"/.[!.]* "$od_dir"/..?*; do
		od_name=${od_entry##*/}
		if [ -L "$od_entry" ]; then
			$B ln -s -- "$($B readlink "$od_entry")" "$S/$od_name"
		elif [ -d "$od_entry" ]; then
			$B mkdir "$S/$od_name" && $B mount --rbind "$od_entry" "$S/$od_name"
		elif [ -e "$od_entry" ]; then
			: >"$S/$od_name" && $B mount --rbind "$od_entry" "$S/$od_name"
		fi || fail "cannot keep $od_entry visible in the opened $od_dir"
	done
	$B mount -o remount,ro $S || fail "cannot make the opened $od_dir read-only"
	$B mount --move $S "$od_dir" || fail "cannot open $od_dir"
}
open_plan_dirs
$B rmdir $S

$B mkdir -p /run/usip-vm/results
$B mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 usipresults /run/usip-vm/results ||
	fail "cannot mount the results directory (9p tag usipresults)"
$B ip link set lo up
$B hostname usip-vm

if [ ! -s $G/load-errors ] && [ ! -s $G/harness-errors ]; then
	echo "usip-vm: running the command" >/dev/kmsg
	guest_command </dev/null >"$out" 2>&1 &
	cmd_pid=$!
	now=$($B cut -d. -f1 /proc/uptime)
	wait_s=$((run_deadline - now))
	[ "$wait_s" -gt 0 ] || wait_s=1
	(
		$B sleep "$wait_s"
		echo "$wait_s" >$G/timed-out
		# guest_command runs under setsid: its pid is its process group.
		$B kill -KILL -"$cmd_pid"
	) &
	watchdog_pid=$!
	wait "$cmd_pid"
	echo "$?" >$G/exit-status
	$B kill "$watchdog_pid" 2>/dev/null
	echo "usip-vm: command ended" >/dev/kmsg
fi

# Nothing the command started may keep a module busy: stop every process but pid 1.
$B kill -KILL -1 2>/dev/null
i=0
while [ $i -lt 50 ]; do
	others=0
	for p in /proc/[0-9]*; do
		[ "${p#/proc/}" = 1 ] && continue
		# Kernel threads have an empty cmdline.
		[ -s "$p/cmdline" ] && others=1 && break
	done
	[ $others = 0 ] && break
	$B usleep 100000
	i=$((i + 1))
done

if [ "$run_unload" = 1 ]; then
	unload_ok=1
	for name in $loaded; do
		$B rmmod "$name" 2>>$G/unload-errors || unload_ok=0
		if [ -e "/sys/module/$name" ]; then
			echo "$name is still loaded after rmmod" >>$G/unload-errors
			unload_ok=0
		fi
	done
	echo "$unload_ok" >$G/unloaded
	echo "usip-vm: modules unloaded" >/dev/kmsg
fi

$B umount /run/usip-vm/results 2>/dev/null
$B dmesg -s 16777216 >$G/dmesg.txt
# The harness share stays mounted (this script is read from it); 9p without a cache writes
# through, so every status file is on the host already.
echo finished >$G/done
finish
