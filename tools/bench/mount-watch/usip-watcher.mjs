// (b) of the mount-watch benchmark: the USIP watcher (UsipClient.watchMounts(): events, and a
// mount-get by id for each mount they name). It speaks the line protocol of watcher.c:
//   usage: node usip-watcher.mjs MARKER STORM_DIR END
//   stdout: "ready <mounts> <learn_ns> <SO_RCVBUF>", "marker <0|1> <t_ns> <mounts>",
//           "caught <t_ns> <user_us> <sys_us> <changes> <resyncs> <table dumps> <listener dumps>"
//   stdin:  "cpu" -> "cpu <user_us> <sys_us> <changes> <resyncs> <table dumps> <listener dumps>",
//           "quit"
// Times are CLOCK_MONOTONIC (process.hrtime), as the C programs' clock_gettime().
// It keeps its counts from the changes alone (O(1) each): the storm mounts below STORM_DIR, and
// whether MARKER and END are mount points, as the watcher's table has them after each change.
import { writeSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { UsipClient } from '@usip/client';
import { GenlSocket } from '@usip/netlink-native';

const [marker, stormDir, end] = process.argv.slice(2);
if (end === undefined) {
  console.error('usage: node usip-watcher.mjs MARKER STORM_DIR END');
  process.exit(2);
}
const prefix = `${stormDir}/`;
// One write(2) per line, without the stream machinery: the reporting should cost what it costs
// the C watchers.
const write = (line) => writeSync(1, `${line}\n`);

// Counted, not changed: the netlink dumps the client runs (mount-get dumps, i.e. (re)reads of
// the whole table, attempts that a change interrupted included; listener-get dumps, its checks
// of the listener's missed count after a quiet moment).
const MOUNT_GET = 9;
let tableDumps = 0;
let listenerDumps = 0;
const dump = GenlSocket.prototype.dump;
GenlSocket.prototype.dump = function (familyId, command, ...rest) {
  if (command === MOUNT_GET) tableDumps++;
  else listenerDumps++;
  return dump.call(this, familyId, command, ...rest);
};

const client = await UsipClient.connect();
const started = process.hrtime.bigint();
const watcher = await client.watchMounts();
const learnNs = process.hrtime.bigint() - started;

// How many table entries are on each interesting mount point: markers can be stacked.
let storm = 0;
let markers = 0;
let ends = 0;
const count = (mountPoint, delta) => {
  if (mountPoint.startsWith(prefix)) storm += delta;
  else if (mountPoint === marker) markers += delta;
  else if (mountPoint === end) ends += delta;
};
for (const mount of watcher.table.values()) count(mount.mountPoint, 1);
write(`ready ${watcher.table.size} ${learnNs} ${watcher.receiveBufferSize}`);

let changes = 0;
let resyncs = 0;
let markerSeen = markers > 0;
let caught = false;
const cpu = () => {
  const { user, system } = process.cpuUsage();
  return `${user} ${system}`;
};

const loop = (async () => {
  for await (const change of watcher) {
    changes++;
    switch (change.kind) {
      case 'resync':
        resyncs++; // the changes that follow bring the table to the new dump
        continue;
      case 'mount':
        if (change.previous !== undefined) count(change.previous.mountPoint, -1);
        count(change.mount.mountPoint, 1);
        break;
      case 'umount':
        count(change.mount.mountPoint, -1);
        break;
      default: // move, remount
        if (change.previous !== undefined) count(change.previous.mountPoint, -1);
        count(change.mount.mountPoint, 1);
    }
    const markerNow = markers > 0;
    if (markerNow !== markerSeen) {
      markerSeen = markerNow;
      write(`marker ${markerNow ? 1 : 0} ${process.hrtime.bigint()} ${watcher.table.size}`);
    }
    if (ends > 0 && storm === 0) {
      if (!caught) {
        caught = true;
        const t = process.hrtime.bigint();
        write(`caught ${t} ${cpu()} ${changes} ${resyncs} ${tableDumps} ${listenerDumps}`);
      }
    } else if (ends === 0) {
      caught = false;
    }
  }
})();

const input = createInterface({ input: process.stdin });
for await (const line of input) {
  if (line === 'cpu') write(`cpu ${cpu()} ${changes} ${resyncs} ${tableDumps} ${listenerDumps}`);
  else if (line === 'quit') break;
}
await watcher.close();
await loop;
client.close();
