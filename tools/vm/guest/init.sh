#!/bin/busybox sh
# shellcheck shell=dash
# SPDX-License-Identifier: GPL-2.0-only
#
# /init of the usip-vm initramfs: the first of the guest's two stages. The initramfs is generic
# per kernel (and cached). This stage loads the virtio and 9p modules, mounts the host's root
# (read-only over 9p), a fresh /run in it and, at /run/usip-vm/harness, the writable "usiprun"
# 9p share that holds this run's plan.sh and second stage (stage2.sh, copied there by the host)
# and gets the run's status files back. Then switch_root makes the host's root the guest's
# root, the root of its mount namespace (a chroot would not be: no user namespace can be
# created in one), empties the initramfs and runs the second stage as pid 1.
#
# If /init exited, the kernel would panic: an error before the second stage ends in
# `poweroff -f`, and the host, finding no status file, shows the console log (ttyS0).
B=/bin/busybox
export PATH=/bin
H=/run/usip-vm/harness

say() { echo "usip-vm-init: $*" >/dev/console; }

die_early() {
	say "error: $*"
	$B sync
	$B poweroff -f
	# poweroff -f does not return; if it somehow did, /init must still never exit.
	while :; do $B sleep 60; done
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

$B mkdir -p /host
# Nothing changes the host's files under a running test, so the guest may cache them (loose).
$B mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose hostroot /host ||
	die_early "cannot mount the host root (9p tag hostroot)"
$B mount -t tmpfs -o mode=0755 tmpfs /host/run || die_early "cannot mount tmpfs on /run"
$B mkdir -p /host$H
$B mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 usiprun /host$H ||
	die_early "cannot mount the run directory (9p tag usiprun)"
for f in plan.sh stage2.sh; do
	[ -f "/host$H/$f" ] || die_early "$H/$f is missing"
done
for fs in proc sys dev; do
	$B mount --move "/$fs" "/host/$fs" || die_early "cannot move /$fs to the host root"
done
exec $B switch_root /host /bin/busybox sh "$H/stage2.sh"
