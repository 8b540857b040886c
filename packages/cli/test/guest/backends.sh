#!/bin/sh
# Runs inside the VM guest (see ../vm-backends.test.ts), usip.ko loaded with
# usip.fail_check=mount-events (the module's own check of that feature made to fail, as on a
# kernel whose internals it could not verify), in a private mount namespace of its own:
#   - usip status --json: which backend serves each feature now, and why;
#   - a small storm with the default choice: mount changes fall back to the kernel's own
#     mechanism (or mountinfo) while the module still serves the rest;
#   - after rmmod usip: usip status and usip mounts with no module at all, and the 15,000-mount
#     storm on what the client then picks, its table compared with mountinfo after each phase.
# Each step leaves its stdout, stderr and exit status in $USIP_VM_RESULTS.
#   sh backends.sh STORM-BINARY STORM-SIZE
set -u
cd "$(dirname "$0")/../../../.."
results=${USIP_VM_RESULTS:?not in a usip-vm guest}
storm=${1:?usage: backends.sh STORM-BINARY STORM-SIZE}
storm_size=${2:?usage: backends.sh STORM-BINARY STORM-SIZE}

if [ -z "${USIP_BACKENDS_PRIVATE:-}" ]; then
	USIP_BACKENDS_PRIVATE=1 exec unshare -m --propagation private sh "$0" "$@"
fi

step() { # step NAME COMMAND...: run COMMAND, keep its output and exit status
	name=$1
	shift
	"$@" >"$results/$name.out" 2>"$results/$name.err"
	echo $? >"$results/$name.status"
}

usip="node packages/cli/dist/bin.js"
storm_ts=packages/cli/test/guest/backend-storm.ts
step status-forced-off $usip status --json
step fallback node --import tsx $storm_ts "$storm" 300 fallback
step rmmod rmmod usip
step status-unloaded $usip status --json
step mounts-unloaded $usip mounts --dump
cat /proc/self/mountinfo >"$results/mountinfo-unloaded"
step storm node --import tsx $storm_ts "$storm" "$storm_size" nomodule
exit 0
