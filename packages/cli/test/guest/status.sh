#!/bin/sh
# Runs inside the VM guest with usip.ko loaded (see ../vm-status.test.ts). Each step leaves its
# stdout, stderr and exit status in $USIP_VM_RESULTS for the host to check.
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
step root-json node "$usip" status --json
step root-human node "$usip" status
# Any user may ping: run as "nobody", without capabilities.
step nobody-json setpriv --reuid=65534 --regid=65534 --clear-groups node "$usip" status --json
# In a new network namespace the family is there too (it is netns-aware).
step netns-json unshare --net node "$usip" status --json
step rmmod rmmod usip
step unloaded-json node "$usip" status --json
# Without the module, the mount table and its changes come from the kernel's own interfaces.
step unloaded-human node "$usip" status
step unloaded-mounts node "$usip" mounts --dump
cp /proc/self/mountinfo "$results/unloaded-mountinfo"
step unloaded-watch-run unshare -m --propagation private sh packages/cli/test/guest/unloaded-watch.sh "$results"
uname -r >"$results/uname"
