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
#
# With run_init=systemd the setup is the same, then the host's systemd is exec'd as pid 1 and
# boots to usip-vm.target, whose usip-vm-command.service runs this script again with
# --in-systemd: from there on (the command, unload, dmesg, poweroff) it is the same as well.
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
run_kver='' run_modules_tree='' run_deadline='' run_unload='' run_init=''
# shellcheck disable=SC1091
. $G/plan.sh

out=
for f in /sys/class/virtio-ports/*/name; do
	[ -f "$f" ] && [ "$($B cat "$f")" = usip.out ] && out=/dev/${f#/sys/class/virtio-ports/} && out=${out%/name}
done
if [ -z "$out" ] || [ ! -c "$out" ]; then
	fail "no virtio-serial port named usip.out for the command's output"
fi


# Hands over to the host's systemd as pid 1. Its unit path is this run's units, the runtime
# directory (where tests install theirs) and the distribution's units, not /etc/systemd/system:
# the host's enabled units and its fstab (generators' output is left out too) stay out of the
# guest, which boots to usip-vm.target alone (plus what its units pull in: sysinit.target).
start_systemd() {
	U=/run/usip-vm/units
	$B mkdir -p $U
	# systemd and journald write below /var; the host's root is read-only.
	for d in /var/log /var/lib/systemd /var/cache; do
		[ -d "$d" ] && { $B mount -t tmpfs -o mode=0755 usip-var "$d" || fail "cannot mount tmpfs on $d"; }
	done
	[ -d /var/tmp ] && { $B mount -t tmpfs -o mode=1777 usip-var /var/tmp || fail "cannot mount tmpfs on /var/tmp"; }
	# A machine id of this boot only: the journal in /run/log/journal is named after it.
	$B tr -d - </proc/sys/kernel/random/uuid >/run/machine-id
	if [ -f /etc/machine-id ]; then
		$B mount --bind /run/machine-id /etc/machine-id || fail "cannot give the guest its machine id"
	fi
	$B cat >$U/usip-vm.target <<-EOF
		[Unit]
		Description=usip-vm: the run's command under systemd
		Requires=usip-vm-command.service
		After=usip-vm-command.service
		AllowIsolate=yes
	EOF
	$B cat >$U/usip-vm-command.service <<-EOF
		[Unit]
		Description=usip-vm: the run's command, then unload, dmesg and power off
		Wants=systemd-journald.socket
		After=sysinit.target systemd-journald.socket

		[Service]
		Type=exec
		ExecStart=/bin/busybox sh $G/stage2.sh --in-systemd
		StandardOutput=journal+console
		StandardError=journal+console
		TimeoutStartSec=infinity
	EOF
	# Masked: udev would load modules for the emulated hardware (ata, floppy, crypto) while the
	# test runs, and be killed in the middle of it at the end; the others set up what a guest on
	# the host's read-only root neither needs nor can have (the host's modules-load.d included).
	for unit in systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket \
		systemd-udev-trigger.service systemd-udev-settle.service systemd-hwdb-update.service \
		systemd-modules-load.service systemd-binfmt.service proc-sys-fs-binfmt_misc.automount \
		systemd-firstboot.service systemd-repart.service systemd-pcrphase.service \
		systemd-pcrphase-sysinit.service systemd-random-seed.service systemd-machine-id-commit.service; do
		$B ln -s /dev/null "$U/$unit"
	done
	[ -s $G/harness-errors ] && return
	echo "usip-vm: starting systemd" >/dev/kmsg
	exec $B env -i SYSTEMD_UNIT_PATH="$U:/run/systemd/system:/lib/systemd/system" \
		/lib/systemd/systemd --unit=usip-vm.target --show-status=no
}

if [ "${1:-}" = --in-systemd ]; then
	# Run by usip-vm-command.service: set up before systemd started; the modules to unload,
	# last loaded first, are in $G/loaded.
	[ -f $G/loaded ] && loaded=$($B tac $G/loaded | $B tr '\n' ' ')
else
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
	if [ "$run_init" = systemd ]; then
		start_systemd
		fail "could not start /lib/systemd/systemd"
	fi
fi

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
# The shell's own kill: excluded from -1 as the caller, it survives when it is not pid 1 (under
# systemd, where services that are restarted make the wait below last its 5 s).
kill -KILL -1 2>/dev/null
i=0
while [ $i -lt 50 ]; do
	others=0
	for p in /proc/[0-9]*; do
		[ "${p#/proc/}" = 1 ] || [ "${p#/proc/}" = $$ ] && continue
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
