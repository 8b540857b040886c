#!/bin/sh
# Runs inside the VM guest with usip.ko loaded (see ../vm-devices.test.ts). Makes loop devices on
# sparse files in /tmp: one with a DOS partition table of two partitions (sfdisk), ext4 on the
# second, mounted twice (the file system, and a bind mount of a directory of it at a path with a
# space); one read-only and just under 100M. Then usip devices and lsblk, side by side, as root
# and as uid 65534; the client (devices-client.ts); and usip devices again once the module is
# unloaded. Each step leaves its stdout, stderr and exit status in $USIP_VM_RESULTS.
set -u
cd "$(dirname "$0")/../../../.."
results=${USIP_VM_RESULTS:?not in a usip-vm guest}

step() { # step NAME COMMAND...: run COMMAND, keep its output and exit status
	name=$1
	shift
	"$@" >"$results/$name.out" 2>"$results/$name.err"
	echo $? >"$results/$name.status"
}

usip=packages/cli/dist/bin.js
nobody='setpriv --reuid=65534 --regid=65534 --clear-groups'
columns=NAME,MAJ:MIN,RM,SIZE,RO,TYPE,MOUNTPOINTS

# --- The devices.
step modprobe modprobe -a loop ext4
truncate -s 1536M /tmp/parted.img
truncate -s 104857088 /tmp/ro.img
parted=$(losetup -f --show -P /tmp/parted.img)
echo "$parted" >"$results/parted-device"
printf 'label: dos\n,20MiB\n,\n' >"$results/sfdisk.in"
step sfdisk sfdisk --quiet "$parted" <"$results/sfdisk.in"
# sfdisk has the kernel read the table again; the nodes come from devtmpfs.
i=0
until [ -b "${parted}p2" ] || [ $i -ge 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
step mkfs mkfs.ext4 -q -F "${parted}p2"
mkdir -p /tmp/mnt/p2 "/tmp/mnt/with space"
step mount mount -t ext4 "${parted}p2" /tmp/mnt/p2
mkdir /tmp/mnt/p2/sub
step bind mount --bind /tmp/mnt/p2/sub "/tmp/mnt/with space"
ro=$(losetup -f --show -r /tmp/ro.img)
echo "$ro" >"$results/ro-device"
ls -l /dev/loop* >"$results/dev-nodes"

# --- usip devices and lsblk, each form, as root and as nobody.
for who in root nobody; do
	as=
	[ $who = nobody ] && as=$nobody
	step "$who-usip-json-b" $as node "$usip" devices --json -b
	step "$who-lsblk-json-b" $as lsblk -J -b -o $columns
	step "$who-usip-json-b-order" $as node "$usip" devices --json -b -o NAME,MAJ:MIN,SIZE,RO,RM,TYPE,MOUNTPOINTS
	step "$who-lsblk-json-b-order" $as lsblk -J -b -o NAME,MAJ:MIN,SIZE,RO,RM,TYPE,MOUNTPOINTS
	step "$who-usip-json" $as node "$usip" devices --json
	step "$who-lsblk-json" $as lsblk -J -o $columns
	step "$who-usip-tree" $as node "$usip" devices
	step "$who-lsblk-tree" $as lsblk -o $columns
	step "$who-usip-list" $as node "$usip" devices -l -b
	step "$who-lsblk-list" $as lsblk -l -b -o $columns
	step "$who-usip-all" $as node "$usip" devices -a -o NAME,MAJ:MIN,SIZE,RO,RM,TYPE,ROTA,LOG-SEC,PHY-SEC
	step "$who-lsblk-all" $as lsblk -a -o NAME,MAJ:MIN,SIZE,RO,RM,TYPE,ROTA,LOG-SEC,PHY-SEC
	step "$who-usip-named" $as node "$usip" devices --json -b "$parted" "${parted}p2" "$ro"
	step "$who-lsblk-named" $as lsblk -J -b -o $columns "$parted" "${parted}p2" "$ro"
	step "$who-client" $as node --import tsx packages/cli/test/guest/devices-client.ts
done
step usip-extra node "$usip" devices --json -o NAME,FSTYPE,MODEL,SERIAL "$parted"

# --- Devices coming and going while the client reads them.
step race node --import tsx packages/cli/test/guest/devices-client.ts race

# --- Without the module: the mounts come from mountinfo, the answer is the same.
step rmmod rmmod usip
step unloaded-usip-json-b node "$usip" devices --json -b
step unloaded-lsblk-json-b lsblk -J -b -o $columns
step unloaded-client node --import tsx packages/cli/test/guest/devices-client.ts

umount "/tmp/mnt/with space" /tmp/mnt/p2
losetup -d "$parted" "$ro"
uname -r >"$results/uname"
