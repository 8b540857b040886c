#!/bin/sh
# Runs inside the VM guest with usip.ko loaded (see ../vm-agent.test.ts): usip-agent run against
# the real module. Real tmpfs mounts and umounts run a notifier file's command; the file is
# edited (a valid change, an invalid one, then removed) while the agent runs; the module is
# unloaded and loaded again; an unprivileged agent is refused its global file; a group-writable
# file with a command is refused (its commands would run as root). Each step leaves
# its output in $USIP_VM_RESULTS for the host to check; a wait that times out is noted in
# $USIP_VM_RESULTS/timeouts.
set -u
# Files written here are not group- or world-writable, whatever umask the guest started with: the
# agent refuses to run the commands of a file that is.
umask 022
cd "$(dirname "$0")/../../../.."
results=${USIP_VM_RESULTS:?not in a usip-vm guest}

agent=packages/config-agent/dist/bin.js
usip=packages/cli/dist/bin.js
record="$PWD/packages/config-agent/test/guest/record.sh"
actions=$results/actions.log
# Not in /tmp: anybody may add a file there (1777), and the agent refuses to run the commands of
# a file in a directory others can write to. /run is the guest's own tmpfs, 0755, root's.
conf=/run/usip.d
mnt=/tmp/agent/a
: >"$actions"
mkdir -p $conf $mnt

mark() { # mark WHAT: when the script got there (seconds since boot), for the host to report
	read -r up _ </proc/uptime
	echo "$up $1" >>"$results/marks"
}

step() { # step NAME COMMAND...: run COMMAND, keep its output and exit status
	name=$1
	shift
	"$@" >"$results/$name.out" 2>"$results/$name.err"
	echo $? >"$results/$name.status"
}

# Waits poll 5 times a second, and look with shell builtins only: the guest's CPUs are emulated
# by one host thread, where every fork costs, and would slow down the agent being waited for.
wait_for() { # wait_for WHAT SECONDS COMMAND...: until COMMAND succeeds; a timeout is noted
	what=$1
	tries=$(($2 * 5))
	shift 2
	until "$@"; do
		tries=$((tries - 1))
		if [ $tries -le 0 ]; then
			echo "$what" >>"$results/timeouts"
			return 1
		fi
		sleep 0.2
	done
}

at_least() { # at_least N PATTERN FILE: FILE has N lines with PATTERN (a fixed string)
	[ -f "$3" ] || return 1
	n=0
	while IFS= read -r line; do
		case $line in
		*"$2"*) n=$((n + 1)) ;;
		esac
	done <"$3"
	[ $n -ge "$1" ]
}

count() { # count PATTERN FILE: lines of FILE with PATTERN (a fixed string)
	grep -cF -- "$1" "$2" 2>/dev/null || true
}

write_conf() { # write_conf NAME TEXT: as editors save, a temporary file renamed over the file
	printf '%s\n' "$2" >"$conf/.$1.tmp" && mv "$conf/.$1.tmp" "$conf/$1"
}

mount_round() { # mount_round SOURCE: a tmpfs mounted at $mnt and unmounted
	mount -t tmpfs -o size=1m "$1" $mnt && umount $mnt
}

run_action() { # the run array of a notifier that records with TAG
	printf '["/bin/sh", "%s", "%s", "%s"]' "$record" "$actions" "$1"
}

log=$results/agent.log
out=$results/agent.out

write_conf 10-mounts.json "{
  \"description\": \"VM test, version 1\",
  \"notifiers\": [
    { \"type\": \"mtab\", \"action\": \"mount\", \"pathPrefix\": \"/tmp/agent\", \"run\": $(run_action v1) },
    { \"type\": \"mtab\", \"action\": \"umount\", \"pathPrefix\": \"/tmp/agent\", \"run\": $(run_action v1), \"timeoutSeconds\": 20 }
  ]
}"
write_conf 20-global.json '{ "scope": "global", "notifiers": [ { "type": "mtab", "action": "remount", "pathPrefix": "/tmp/agent" } ] }'
# Group-writable, with a command: refused, named in the log; the other files are not affected.
write_conf 30-writable.json "{ \"notifiers\": [ { \"type\": \"mtab\", \"action\": \"mount\", \"pathPrefix\": \"/tmp/agent\", \"run\": $(run_action writable) } ] }"
chmod 664 $conf/30-writable.json

mark start
node "$agent" run --config-dir $conf --debounce 100 --check-interval 1 --retry-interval 0.5 >"$out" 2>"$log" &
agent_pid=$!
echo $agent_pid >"$results/agent.pid"
wait_for ready 60 at_least 1 '"msg":"ready"' "$log"
mark ready
step listeners-1 node "$usip" listeners --json

# Version 1: a real mount and umount run the file's command; a remount reaches the global file's
# notifier, which has no run: a JSON line on stdout.
mark listeners-1
mount_round agent-v1
wait_for v1-actions 30 at_least 2 'agent-v1' "$actions"
mount -t tmpfs -o size=1m agent-r1 $mnt && mount -o remount,size=2m $mnt && umount $mnt
wait_for r1-remount 30 at_least 1 'agent-r1' "$out"

mark v1
# Version 2, valid, asking the module for something else (kern-log on umount): a new listener
# replaces the old one; umount has no run any more.
write_conf 10-mounts.json "{
  \"description\": \"VM test, version 2\",
  \"notifiers\": [
    { \"type\": \"mtab\", \"action\": \"mount\", \"pathPrefix\": \"/tmp/agent\", \"run\": $(run_action v2) },
    { \"type\": \"mtab\", \"action\": \"umount\", \"pathPrefix\": \"/tmp/agent\", \"kernLog\": true }
  ]
}"
wait_for v2-registered 30 at_least 1 '"replaces":' "$log"
wait_for v1-closed 30 at_least 1 '"reason":"replaced by the new version of the file"' "$log"
mark v2-registered
step listeners-2 node "$usip" listeners --json
mark listeners-2
mount_round agent-v2
wait_for v2-actions 30 at_least 1 'agent-v2' "$actions"
wait_for v2-umount 30 at_least 1 'agent-v2' "$out"

mark v2
# Version 3, invalid: logged, and version 2 stays registered and acting.
write_conf 10-mounts.json '{ "notifiers": [ { "type": "mtab", "action": "mount", "run": [] } ] }'
wait_for v3-kept 30 at_least 1 '"msg":"keeping the last good version of this file"' "$log"
step listeners-3 node "$usip" listeners --json
mount_round agent-v3
wait_for v3-actions 30 at_least 1 'agent-v3' "$actions"
wait_for v3-umount 30 at_least 1 'agent-v3' "$out"

mark v3
# Removed: its listener is closed; the global file's stays. A remount after a mount shows the
# agent saw the events that followed, and that the mount ran nothing.
rm $conf/10-mounts.json
wait_for v4-closed 30 at_least 1 '"reason":"the file was removed"' "$log"
step listeners-4 node "$usip" listeners --json
mount -t tmpfs -o size=1m agent-v4 $mnt && mount -o remount,size=2m $mnt && umount $mnt
wait_for v4-remount 30 at_least 1 'agent-v4' "$out"

mark v4
# The module is unloaded and loaded again: the agent notices, and registers its files again.
registered_before=$(count '"msg":"registered"' "$log")
rmmod usip
echo $? >"$results/rmmod.status"
wait_for module-gone 30 at_least 1 '"msg":"the usip module went away (unloaded?): its listeners are gone"' "$log"
insmod "packages/kernel-module/build/$(uname -r)/usip.ko"
echo $? >"$results/insmod.status"
wait_for re-registered 30 at_least $((registered_before + 1)) '"msg":"registered"' "$log"
mount -t tmpfs -o size=1m agent-v5 $mnt && mount -o remount,size=2m $mnt && umount $mnt
wait_for v5-remount 30 at_least 1 'agent-v5' "$out"
step listeners-5 node "$usip" listeners --json

mark v5
# SIGTERM: every listener closed, exit 0.
kill -TERM $agent_pid
wait $agent_pid
echo $? >"$results/agent.status"
mark agent-exited
step listeners-after node "$usip" listeners --json

mark listeners-after
# An unprivileged agent: its global file is refused (EPERM) and named; its other file works.
nconf=/tmp/usip-nobody.d
mkdir -p $nconf
printf '%s\n' '{ "notifiers": [ { "type": "mtab", "action": "mount", "pathPrefix": "/tmp/agent" } ] }' >$nconf/10-ns.json
printf '%s\n' '{ "scope": "global", "notifiers": [ { "type": "mtab", "action": "mount" } ] }' >$nconf/20-global.json
chmod -R a+rX $nconf
setpriv --reuid=65534 --regid=65534 --clear-groups node "$agent" run --config-dir $nconf \
	>"$results/nobody.out" 2>"$results/nobody.log" &
nobody_pid=$!
echo $nobody_pid >"$results/nobody.pid"
wait_for nobody-ready 60 at_least 1 '"msg":"ready"' "$results/nobody.log"
step listeners-nobody node "$usip" listeners --json
mount_round agent-n1
wait_for nobody-event 30 at_least 1 'agent-n1' "$results/nobody.out"
kill -TERM $nobody_pid
wait $nobody_pid
echo $? >"$results/nobody.status"
mark nobody-exited
# The docs' example "log every ENOSPC with the process that hit it", as shipped, but logging to
# the results: dd fills a 64 KiB tmpfs, and its failure becomes a line of the log.
sconf=/run/usip-storage.d
mkdir -p $sconf /tmp/agent/full
sed "s|/var/log/usip-space.log|$results/space.log|g" examples/usip.d/50-log-space-errors.json \
	>$sconf/50-log-space-errors.json
mount -t tmpfs -o size=64k agent-full /tmp/agent/full
node "$agent" run --config-dir $sconf >"$results/storage.out" 2>"$results/storage.log" &
storage_pid=$!
wait_for storage-ready 60 at_least 1 '"msg":"ready"' "$results/storage.log"
sh -c 'echo $$ >"$1"; exec dd if=/dev/zero of=/tmp/agent/full/f bs=4k count=100' sh "$results/dd.pid" 2>/dev/null
wait_for storage-logged 30 at_least 1 'pid' "$results/space.log"
kill -TERM $storage_pid
wait $storage_pid
echo $? >"$results/storage.status"
umount /tmp/agent/full
mark storage-exited
# The example "when /var has less than 10% free, run the cleanup script", watching a 4 MiB tmpfs in
# place of /var: filling it to 95% runs the cleanup once; freeing it (recovered) runs nothing.
lconf=/run/usip-low.d
mkdir -p $lconf /tmp/agent/var
sed -e 's|"/var"|"/tmp/agent/var"|' \
	-e "s|/usr/local/sbin/usip-var-cleanup|$PWD/packages/config-agent/test/guest/cleanup.sh|" \
	examples/usip.d/61-var-low-space-script.json >$lconf/61-var-low-space-script.json
mount -t tmpfs -o size=4m agent-var /tmp/agent/var
node "$agent" run --config-dir $lconf >"$results/low.out" 2>"$results/low.log" &
low_pid=$!
wait_for low-ready 60 at_least 1 '"msg":"ready"' "$results/low.log"
fallocate -l 3900k /tmp/agent/var/big
wait_for low-cleanup 30 at_least 1 'cleanup' "$results/cleanup.log"
rm /tmp/agent/var/big
# The recovered event comes within an interval (1 s): give it three.
sleep 3
kill -TERM $low_pid
wait $low_pid
echo $? >"$results/low.status"
umount /tmp/agent/var
mark low-exited
# Three directories, as /etc, /run and /usr/lib usip.d: a vendor file registers and acts; the
# admin's file of the same name replaces its listener (registered first) and acts; removed, the
# vendor file is back; a link to /dev/null masks the name (no listener left).
dirs=/run/usip-dirs
mkdir -p $dirs/etc $dirs/run $dirs/lib
printf '%s\n' "{ \"notifiers\": [ { \"type\": \"mtab\", \"action\": \"mount\", \"pathPrefix\": \"/tmp/agent\", \"run\": $(run_action vendor) } ] }" \
	>$dirs/lib/50-vm.json
node "$agent" run -c $dirs/etc -c $dirs/run -c $dirs/lib --debounce 100 >"$results/dirs.out" 2>"$results/dirs.log" &
dirs_pid=$!
echo $dirs_pid >"$results/dirs.pid"
wait_for dirs-ready 60 at_least 1 '"msg":"ready"' "$results/dirs.log"
step listeners-dirs-vendor node "$usip" listeners --json
mount_round agent-d1
wait_for dirs-vendor-action 30 at_least 1 'agent-d1' "$actions"
printf '%s\n' "{ \"notifiers\": [ { \"type\": \"mtab\", \"action\": \"mount\", \"pathPrefix\": \"/tmp/agent\", \"kernLog\": true, \"run\": $(run_action admin) } ] }" \
	>$dirs/etc/.50-vm.json.tmp && mv $dirs/etc/.50-vm.json.tmp $dirs/etc/50-vm.json
wait_for dirs-overridden 30 at_least 1 "\"reason\":\"replaced by $dirs/etc/50-vm.json\"" "$results/dirs.log"
step listeners-dirs-admin node "$usip" listeners --json
mount_round agent-d2
wait_for dirs-admin-action 30 at_least 1 'agent-d2' "$actions"
rm $dirs/etc/50-vm.json
wait_for dirs-vendor-back 30 at_least 1 "\"reason\":\"replaced by $dirs/lib/50-vm.json\"" "$results/dirs.log"
mount_round agent-d3
wait_for dirs-vendor-again 30 at_least 1 'agent-d3' "$actions"
ln -s /dev/null $dirs/run/50-vm.json
wait_for dirs-masked 30 at_least 1 '"msg":"notifier file masked (a symbolic link to /dev/null): its listener goes"' "$results/dirs.log"
wait_for dirs-closed 30 at_least 1 '"reason":"the file was masked (a symbolic link to /dev/null)"' "$results/dirs.log"
step listeners-dirs-masked node "$usip" listeners --json
node "$agent" check -c $dirs/etc -c $dirs/run -c $dirs/lib >"$results/dirs-check.out" 2>"$results/dirs-check.err"
echo $? >"$results/dirs-check.status"
kill -TERM $dirs_pid
wait $dirs_pid
echo $? >"$results/dirs.status"
mark dirs-exited
uname -r >"$results/uname"
