#!/bin/sh
# Runs inside a usip-vm guest booted with systemd as pid 1 (init "systemd") and usip.ko loaded
# (see ../vm-systemd.test.ts): systemd/usip-agent.service as shipped, installed in
# /run/systemd/system with a drop-in that only points ExecStart at this tree's agent (and its
# configuration directory at /run/usip.d: the guest's /etc is the host's, read-only). Each step
# leaves its output in $USIP_VM_RESULTS for the host to check; a wait that times out is noted
# in $USIP_VM_RESULTS/timeouts.
set -u
umask 022
cd "$(dirname "$0")/../../../.." || exit 1
results=${USIP_VM_RESULTS:?not in a usip-vm guest}
root=$PWD
conf=/run/usip.d
work=/run/usip-sd
unit=usip-agent.service
dropins=/run/systemd/system/$unit.d
mkdir -p $conf $work/m $dropins

step() { # step NAME COMMAND...: run COMMAND, keep its output and exit status
	name=$1
	shift
	"$@" >"$results/$name.out" 2>"$results/$name.err"
	echo $? >"$results/$name.status"
}

wait_for() { # wait_for WHAT SECONDS COMMAND...: until COMMAND succeeds; a timeout is noted
	what=$1
	tries=$(($2 * 5))
	shift 2
	until "$@" >/dev/null 2>&1; do
		tries=$((tries - 1))
		if [ $tries -le 0 ]; then
			echo "$what" >>"$results/timeouts"
			return 1
		fi
		sleep 0.2
	done
}

prop() { # prop NAME: one property of the unit
	systemctl show -p "$1" --value $unit
}

show() { # show NAME: the unit's state, as systemctl show prints it
	step "$1" systemctl show -p ActiveState -p SubState -p StatusText -p NRestarts -p Result \
		-p ExecMainStatus -p WatchdogUSec -p Type $unit
}

# systemd's debug messages name the unit's state changes (running -> reload -> running) and the
# notifications it got, in the unit's journal.
step log-level systemd-analyze set-log-level debug

cp packages/config-agent/systemd/$unit /run/systemd/system/$unit
cat >$dropins/10-test.conf <<EOF
[Service]
ExecStart=
ExecStart=$root/packages/config-agent/dist/bin.js run --config-dir $conf
EOF
# The command records each mount under $work/m: action, path and source, one line each.
cat >$conf/10-mounts.json <<'EOF'
{
  "notifiers": [
    {
      "type": "mtab",
      "action": "mount",
      "pathPrefix": "/run/usip-sd/m",
      "run": ["/bin/sh", "-c", "echo \"$USIP_EVENT_ACTION $USIP_EVENT_PATH $USIP_EVENT_SOURCE\" >>/run/usip-sd/actions.log"]
    }
  ]
}
EOF
# What a notifier with "unit" starts: it records the event it read from the agent's event file,
# its cgroup and whether it runs with no_new_privs (the agent's sandbox does, the unit's not).
cat >/run/systemd/system/usip-sd-probe.service <<'EOF'
[Service]
Type=oneshot
EnvironmentFile=-/run/usip-agent/events/usip-sd-probe.service.env
ExecStart=/bin/sh -c 'echo "$USIP_EVENT_ACTION $USIP_EVENT_PATH $USIP_EVENT_SOURCE" >/run/usip-sd/unit.log; cat /proc/self/cgroup >>/run/usip-sd/unit.log; grep NoNewPrivs /proc/self/status >>/run/usip-sd/unit.log'
EOF
step daemon-reload systemctl daemon-reload

# Type=notify: `systemctl start` returns once READY=1 arrived, so the status is there already.
step start systemctl start $unit
show started
pid=$(prop MainPID)
echo "$pid" >"$results/agent.pid"
readlink /proc/"$pid"/ns/mnt >"$results/agent.mntns"
readlink /proc/1/ns/mnt >"$results/init.mntns"

# A mount made here, outside the service, reaches the notifier's command.
mount -t tmpfs -o size=1m usip-outside $work/m
wait_for "the action of the mount made outside the service" 60 grep -q "usip-outside" $work/actions.log
umount $work/m
cp $work/actions.log "$results/actions.log"

# A unit action: the agent runs `systemctl start --no-block` from inside its sandbox, and the unit
# runs outside it, with the event.
mkdir -p $work/u
cat >$conf/40-unit.json <<'EOF'
{ "notifiers": [{ "type": "mtab", "action": "mount", "pathPrefix": "/run/usip-sd/u", "unit": "usip-sd-probe.service" }] }
EOF
wait_for "the unit file's listener" 60 sh -c "systemctl show -p StatusText --value $unit | grep -q '^2 files'"
mount -t tmpfs -o size=1m usip-unit-src $work/u
wait_for "the unit started by the agent" 60 test -s $work/unit.log
wait_for "the unit to finish" 60 sh -c "[ \"\$(systemctl show -p ActiveState --value usip-sd-probe.service)\" = inactive ]"
umount $work/u
cp $work/unit.log "$results/unit.log"
grep NoNewPrivs /proc/"$pid"/status >"$results/agent.nonewprivs"
step unit-show systemctl show -p Result -p ExecMainStatus usip-sd-probe.service
rm $conf/40-unit.json
wait_for "the unit file's listener gone" 60 sh -c "systemctl show -p StatusText --value $unit | grep -q '^1 file,'"

# A bad notifier file is an error in the journal.
printf '{ "notifiers": [' >$conf/20-bad.json
wait_for "the bad file in journalctl -p err" 60 sh -c "journalctl -q -p err -u $unit -o cat | grep -q 20-bad.json"
step journal-err journalctl -q -p err -u $unit -o cat --no-pager

# Reload: RELOADING=1 ... READY=1. A file added meanwhile is counted in the status after it.
rm $conf/20-bad.json
cat >$conf/30-umounts.json <<'EOF'
{ "notifiers": [{ "type": "mtab", "action": "umount", "kernLog": true }] }
EOF
step reload systemctl reload $unit
wait_for "running again after the reload" 60 sh -c "[ \"\$(systemctl show -p SubState --value $unit)\" = running ]"
wait_for "the second file in the status" 60 sh -c "systemctl show -p StatusText --value $unit | grep -q '^2 files'"
show reloaded

# The watchdog (WatchdogSec of the unit) is armed and pinged: systemd saw a ping, and the agent
# is still the one started, never restarted.
step watchdog-timestamp systemctl show -p WatchdogTimestampMonotonic --value $unit
show before-stop
step stop systemctl stop $unit
show stopped

# With a short watchdog: pings keep the agent alive for several periods, and an agent that
# stops pinging (SIGSTOP) is killed and restarted by systemd (Restart=on-failure).
cat >$dropins/20-watchdog.conf <<'EOF'
[Service]
WatchdogSec=3s
EOF
step daemon-reload-2 systemctl daemon-reload
step start-2 systemctl start $unit
first=$(prop WatchdogTimestampMonotonic)
echo "$first" >"$results/watchdog-first"
# Pinged every 1.5 s: wait for 4 more pings, 6 s, longer than the 3 s systemd waits.
n=0
last=$first
while [ $n -lt 4 ]; do
	wait_for "a watchdog ping" 30 sh -c "[ \"\$(systemctl show -p WatchdogTimestampMonotonic --value $unit)\" != $last ]" || break
	last=$(prop WatchdogTimestampMonotonic)
	n=$((n + 1))
done
echo "$n" >"$results/watchdog-pings"
show watchdog-alive
pid=$(prop MainPID)
kill -STOP "$pid"
wait_for "the restart of the stopped agent by the watchdog" 90 sh -c "[ \"\$(systemctl show -p NRestarts --value $unit)\" = 1 ] && [ \"\$(systemctl show -p SubState --value $unit)\" = running ]"
show watchdog-restarted
step stop-2 systemctl stop $unit

journalctl -u $unit -o json --no-pager >"$results/journal.json"
journalctl -b -o short-monotonic --no-pager >"$results/journal-boot.txt"
exit 0
