#!/bin/sh
# Runs inside the VM guest with usip.ko loaded (see ../vm-df.test.ts), in a private mount
# namespace of its own: tmpfs mounts of known sizes (one partly filled, one of 100 KiB, one
# without a size limit, a read-only one, one with a space in its name), a bind mount of a
# subdirectory and a second proc, then `df` and `usip df` with the same options side by side
# (9p, the host's file systems shared into the guest, is excluded with -x 9p on both: its usage
# moves with the host's). Then a FUSE file system whose daemon never answers statfs: `usip df`
# must report it and go on. Each step leaves its stdout, stderr and exit status in
# $USIP_VM_RESULTS for the host to check.
set -u
cd "$(dirname "$0")/../../../.."
results=${USIP_VM_RESULTS:?not in a usip-vm guest}

if [ -z "${USIP_DF_PRIVATE:-}" ]; then
	USIP_DF_PRIVATE=1 exec unshare -m --propagation private sh "$0" "$@"
fi

step() { # step NAME COMMAND...: run COMMAND, keep its output and exit status
	name=$1
	shift
	"$@" >"$results/$name.out" 2>"$results/$name.err"
	echo $? >"$results/$name.status"
}

usip=packages/cli/dist/bin.js
nobody="setpriv --reuid=65534 --regid=65534 --clear-groups"
d=/tmp/dfx
mkdir -p $d/a $d/b $d/c "$d/with space" $d/zero $d/ro $d/bind $d/proc2 $d/hung
mount -t tmpfs -o size=4m,nr_inodes=1000 fill $d/a
dd if=/dev/zero of=$d/a/data bs=1k count=300 2>/dev/null
mkdir $d/a/sub
mount -t tmpfs -o size=1g big $d/b
mount -t tmpfs -o size=100k small $d/c
dd if=/dev/zero of=$d/c/data bs=1k count=37 2>/dev/null
mount -t tmpfs -o size=2m odd "$d/with space"
mount -t tmpfs zero $d/zero
mount -t tmpfs -o size=1m,ro rofs $d/ro
mount --bind $d/a/sub $d/bind
mount -t proc proc $d/proc2

# The same options to both; NAME-df and NAME-usip.
pair() { # pair NAME ARGS...
	pair_name=$1
	shift
	step "$pair_name-df" df "$@"
	step "$pair_name-usip" node "$usip" df "$@"
}
pair default -x 9p
pair k -k -x 9p
pair h -h -x 9p
pair i -i -x 9p
pair ih -i -h -x 9p
pair all -a -x 9p
pair type -T -x 9p
pair only-tmpfs -t tmpfs
pair output-all --output -x 9p
pair output-some --output=source,target,size,pcent,itotal,file -x 9p
pair output-h -h --output=size,used,avail,target -x 9p
pair si -H -x 9p
pair si-inodes -H -i -x 9p
pair last-scale -h -k -x 9p
pair posix -P -x 9p
pair posix-h -P -h -T -x 9p
pair total --total -x 9p
pair total-h --total -h -T -x 9p
pair total-output --total --output=source,fstype,size,pcent,ipcent,file,target -x 9p
pair local -l -x 9p
pair paths -k $d/a $d/a/sub/../data $d/bind "$d/with space" $d/ro
pair missing -k $d/a /nonexistent
step nobody-default-df $nobody df -x 9p
step nobody-default-usip $nobody node "$usip" df -x 9p
step json-usip node "$usip" df --json -x 9p
step json-df df -B1 --output=source,size,used,avail,pcent,itotal,iused,iavail,ipcent,target -x 9p

# Bad input: usage errors that name what is wrong.
step bad-field node "$usip" df --output=source,blocks
step twice node "$usip" df --output=source,source
step inodes-output node "$usip" df -i --output
step bad-timeout node "$usip" df --timeout 0

# A hung FUSE file system: df itself would hang on it (not run); usip df reports it and goes on.
# (FUSE is a module on 6.1, built in on 6.12.)
[ -e /dev/fuse ] || modprobe fuse
python3 packages/cli/test/guest/hung-fuse.py $d/hung >"$results/fuse.out" 2>"$results/fuse.err" &
fuse=$!
until grep -q ready "$results/fuse.out" 2>/dev/null; do
	kill -0 $fuse 2>/dev/null || break
	sleep 0.05
done
start=$(date +%s.%N)
step hung-default node "$usip" df -x 9p
end=$(date +%s.%N)
echo "$start $end" >"$results/hung-default.time"
start=$(date +%s.%N)
step hung-again node "$usip" df --timeout 20000 -x 9p
end=$(date +%s.%N)
echo "$start $end" >"$results/hung-again.time"
step hung-path node "$usip" df $d/hung $d/a
step hung-json node "$usip" df --json -x 9p
kill -9 $fuse
wait $fuse 2>/dev/null
# Its statfs ends once the connection is gone; then it answers at once.
step hung-dead node "$usip" df $d/hung
umount -l $d/hung
uname -r >"$results/uname"
