// (b) of the mount-watch benchmark: the USIP watcher (UsipClient.watchMounts(): events, and a
// mount-get by id for each mount they name); with --backend kernel, (g): the same watcher on the
// client's native backend (no module: fanotify mount events + statmount through the binding).
// It speaks the line protocol of watcher.c:
//   usage: node usip-watcher.mjs [--backend module|kernel|mountinfo] MARKER STORM_DIR END
//          node usip-watcher.mjs --probe [--backend kernel]   exit 0 if that watcher can run
//          here, else print why and exit 1
//   stdout: "ready <mounts> <learn_ns> <SO_RCVBUF>", "marker <0|1> <t_ns> <mounts>",
//           "caught <t_ns> <user_us> <sys_us> <changes> <resyncs> <table dumps> <listener dumps>"
//   stdin:  "cpu" -> "cpu <user_us> <sys_us> <changes> <resyncs> <table dumps> <listener dumps>",
//           "quit"
// Times are CLOCK_MONOTONIC (process.hrtime), as the C programs' clock_gettime().
// It keeps its counts from the changes alone (O(1) each): the storm mounts below STORM_DIR, and
// whether MARKER and END are mount points, as the watcher's table has them after each change.
import { writeSync } from 'node:fs';
import { createInterface } from 'node:readline';
import * as usip from '@usip/client';
import { GenlSocket } from '@usip/netlink-native';

const { UsipClient } = usip;
const args = process.argv.slice(2);
const probe = args[0] === '--probe' && args.shift() !== undefined;
let backend;
if (args[0] === '--backend') {
  backend = args[1];
  args.splice(0, 2);
}
const [marker, stormDir, end] = args;
if (end === undefined && !probe) {
  console.error('usage: node usip-watcher.mjs [--backend module|kernel|mountinfo] MARKER STORM_DIR END | --probe [--backend B]');
  process.exit(2);
}

/** The client and its watcher, on the backend asked for (the module's by default). */
async function open() {
  if (backend === undefined) {
    const client = await UsipClient.connect();
    return { client, watcher: await client.watchMounts() };
  }
  // The client's backends (packages/client/src/mount-service.ts): openMounts() with the backend
  // forced, then its watchMounts() (without the module: fanotify + statmount, and the mountinfo
  // poll for remounts, through the binding).
  if (typeof usip.openMounts !== 'function') throw new Error('this build of @usip/client has no openMounts() (the backends without the module): build packages/client');
  const client = await usip.openMounts({ backend });
  try {
    const watcher = await client.watchMounts();
    if (watcher.backend !== backend) throw new Error(`watchMounts() runs on the ${watcher.backend} backend, not ${backend}${watcher.fallbackReason ? `: ${watcher.fallbackReason}` : ''}`);
    return { client, watcher };
  } catch (error) {
    await client.close();
    throw error;
  }
}

if (probe) {
  try {
    const { client, watcher } = await open();
    await watcher.close();
    await client.close();
    process.exit(0);
  } catch (error) {
    console.log(String(error?.message ?? error).split('\n')[0]);
    process.exit(1);
  }
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
for (const method of ['dump', 'dumpPacked']) {
  const dump = GenlSocket.prototype[method];
  if (dump === undefined) continue;
  GenlSocket.prototype[method] = function (familyId, command, ...rest) {
    if (command === MOUNT_GET) tableDumps++;
    else listenerDumps++;
    return dump.call(this, familyId, command, ...rest);
  };
}

const started = process.hrtime.bigint();
const { client, watcher } = await open();
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
write(`ready ${watcher.table.size} ${learnNs}${watcher.receiveBufferSize === undefined ? '' : ` ${watcher.receiveBufferSize}`}`);

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
await client.close();
