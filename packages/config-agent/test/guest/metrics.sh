#!/bin/sh
# Runs inside the VM guest with usip.ko loaded (see ../vm-metrics.test.ts): usip-agent run
# --metrics on a unix socket against the real module. Scrapes with `usip stats --json` taken just
# before and just after, real tmpfs mounts and umounts counted, the module unloaded (its counters
# absent, module_present 0) and loaded again. Each step leaves its output in $USIP_VM_RESULTS for
# the host to check; a wait that times out is noted in $USIP_VM_RESULTS/timeouts.
set -u
umask 022
cd "$(dirname "$0")/../../../.."
results=${USIP_VM_RESULTS:?not in a usip-vm guest}

agent=packages/config-agent/dist/bin.js
usip=packages/cli/dist/bin.js
conf=/run/usip.d
mnt=/tmp/metrics/a
sock=/run/usip-agent/metrics.sock
log=$results/agent.log
mkdir -p $conf $mnt /run/usip-agent

# Polls with shell builtins only: forks are dear on the emulated CPUs.
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

count() { # count PATTERN FILE
	grep -cF -- "$1" "$2" 2>/dev/null || true
}

# A scrape over the unix socket with node's own HTTP client (no curl needed): body, then status.
scrape() { # scrape NAME
	node -e '
const http = require("node:http");
http.get({ socketPath: process.argv[1], path: "/metrics" }, (res) => {
  let body = "";
  res.setEncoding("utf8");
  res.on("data", (c) => (body += c));
  res.on("end", () => { process.stdout.write(body); process.stderr.write(`${res.statusCode} ${res.headers["content-type"]}\n`); });
}).on("error", (e) => { process.stderr.write(`${e.message}\n`); process.exit(1); });' "$sock" >"$results/scrape-$1.txt" 2>"$results/scrape-$1.status"
}

# Consistent counters: stats, scrape, stats, with nothing else happening.
scrape_between_stats() { # scrape_between_stats NAME
	node "$usip" stats --json >"$results/stats-$1-before.json" 2>>"$results/stats.err"
	scrape "$1"
	node "$usip" stats --json >"$results/stats-$1-after.json" 2>>"$results/stats.err"
}

printf '%s\n' '{ "notifiers": [
  { "type": "mtab", "action": "mount", "pathPrefix": "/tmp/metrics", "run": ["/bin/true"] },
  { "type": "mtab", "action": "umount", "pathPrefix": "/tmp/metrics", "run": ["/bin/sh", "-c", "exit 3"] },
  { "type": "mtab", "action": "umount", "pathPrefix": "/tmp/metrics" }
] }' >$conf/10-m.json
printf '%s\n' '{ "notifiers": [ { "type": "mtab", "action": "nope" } ] }' >$conf/20-bad.json

node "$agent" run --config-dir $conf --metrics "unix:$sock" --check-interval 1 --retry-interval 0.5 >"$results/agent.out" 2>"$log" &
agent_pid=$!
echo $agent_pid >"$results/agent.pid"
wait_for ready 60 at_least 1 '"msg":"ready"' "$log"
stat -c '%a %F' $sock >"$results/socket-mode"

scrape_between_stats 1

mount -t tmpfs -o size=1m m1 $mnt && umount $mnt
mount -t tmpfs -o size=1m m2 $mnt && umount $mnt
# Two mounts (/bin/true), two umounts (exit 3): four commands done.
wait_for commands 60 at_least 4 '"durationMs"' "$log"
wait_for stdout 30 at_least 2 '"action":"umount"' "$results/agent.out"
scrape_between_stats 2

# Unloaded: the module's counters are gone from the scrape.
rmmod usip
echo $? >"$results/rmmod.status"
wait_for module-gone 30 at_least 1 '"msg":"the usip module went away (unloaded?): its listeners are gone"' "$log"
scrape 3
insmod "packages/kernel-module/build/$(uname -r)/usip.ko"
echo $? >"$results/insmod.status"
wait_for re-registered 30 at_least 2 '"msg":"registered"' "$log"
scrape_between_stats 4

kill -TERM $agent_pid
wait $agent_pid
echo $? >"$results/agent.status"
[ -e $sock ] && echo present >"$results/socket-after" || echo absent >"$results/socket-after"
