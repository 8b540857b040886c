#!/bin/busybox sh
# shellcheck shell=dash
# SPDX-License-Identifier: GPL-2.0-only
#
# /init of the usip-vm initramfs. The initramfs is generic per kernel (and cached); what to do
# in this run comes from plan.sh in the writable "usiprun" 9p share, which the host writes.
#
# Channels: the kernel console is ttyS0 (kept in a host file); the command's output goes to the
# virtio-serial port "usip.out" (read live by the host; not a tty, like a pipe on the host);
# the run's status goes to files in the usiprun share. The run always ends in `poweroff -f`:
# if /init exited, the kernel would panic.
B=/bin/busybox
export PATH=/bin
G=/mnt/run

say() { echo "usip-vm-init: $*" >/dev/console; }

finish() {
	$B sync
	$B poweroff -f
	# poweroff -f does not return; if it somehow did, /init must still never exit.
	while :; do $B sleep 60; done
}

# Before the run share is up, an error can only go to the console; the host sees that the
# guest never wrote $G/done and shows the console log.
die_early() {
	say "error: $*"
	finish
}

$B mount -t proc proc /proc
$B mount -t sysfs sysfs /sys
$B mount -t devtmpfs devtmpfs /dev

# virtio and 9p modules of this kernel, in dependency order (none when built in).
if [ -f /mods/order ]; then
	for m in $($B cat /mods/order); do
		$B insmod "/mods/$m.ko" || die_early "cannot load /mods/$m.ko"
	done
fi

$B mkdir -p /host /mnt/run /mnt/hosttmp
# Nothing changes the host's files under a running test, so the guest may cache them (loose).
$B mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose hostroot /host ||
	die_early "cannot mount the host root (9p tag hostroot)"
$B mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 usiprun $G ||
	die_early "cannot mount the run directory (9p tag usiprun)"
[ -f $G/plan.sh ] || die_early "$G/plan.sh is missing"
# plan.sh sets run_kver, run_modules_tree, run_deadline, run_unload and run_tmp_binds, and
# defines load_plan_modules and guest_command (see src/plan.ts).
run_kver='' run_modules_tree='' run_deadline='' run_unload='' run_tmp_binds=''
# shellcheck disable=SC1091
. $G/plan.sh

fail() {
	echo "$*" >>$G/harness-errors
	say "error: $*"
}

out=
for f in /sys/class/virtio-ports/*/name; do
	[ -f "$f" ] && [ "$($B cat "$f")" = usip.out ] && out=/dev/${f#/sys/class/virtio-ports/} && out=${out%/name}
done
if [ -z "$out" ] || [ ! -c "$out" ]; then
	fail "no virtio-serial port named usip.out for the command's output"
fi

# The kernel's own modules, where the guest's modprobe looks for them.
if [ -n "$run_modules_tree" ] && [ -d "/host$run_modules_tree" ] &&
	[ -d "/host/lib/modules/$run_kver" ]; then
	$B mount --bind "/host$run_modules_tree" "/host/lib/modules/$run_kver"
fi

# Modules under test, by their host paths, before a fresh /tmp hides the host's /tmp.
loaded=""
# load_module NAME GUEST_PATH [PARAM=VALUE]...
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
# file systems mounted inside it.
$B mount --bind /host/tmp /mnt/hosttmp
$B mount -t proc proc /host/proc || fail "cannot mount /proc in the guest root"
$B mount -t sysfs sysfs /host/sys || fail "cannot mount /sys in the guest root"
$B mount -t devtmpfs devtmpfs /host/dev || fail "cannot mount /dev in the guest root"
$B mkdir -p /host/dev/pts /host/dev/shm
$B mount -t devpts devpts /host/dev/pts
$B mount -t tmpfs -o mode=1777 tmpfs /host/dev/shm
$B mount -t debugfs debugfs /host/sys/kernel/debug 2>/dev/null
$B mount -t tmpfs -o mode=1777 tmpfs /host/tmp || fail "cannot mount tmpfs on /tmp"
# A working tree under the host's /tmp stays visible (read-only) under the fresh /tmp.
for entry in $run_tmp_binds; do
	$B mkdir -p "/host/tmp/$entry"
	$B mount --bind "/mnt/hosttmp/$entry" "/host/tmp/$entry" || fail "cannot keep /tmp/$entry visible"
done
$B mount -t tmpfs -o mode=0755 tmpfs /host/run || fail "cannot mount tmpfs on /run"
$B mkdir -p /host/run/usip-vm/results
$B mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 usipresults /host/run/usip-vm/results ||
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

# Nothing the command started may keep a module busy: stop every process but /init.
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

$B umount /host/run/usip-vm/results 2>/dev/null
$B dmesg -s 16777216 >$G/dmesg.txt
echo finished >$G/done
$B umount $G
finish
