// Runs inside the VM guest (see ../vm-mounts.test.ts), in mounts.sh's private namespace with its
// few hundred mounts: the @usip/client mount table API against the module, in one process.
// mounts() and this process's own mountinfo, read right after; mount() by id and by unique id,
// and its refusals; a watcher's snapshot against mountinfo, and its table after a tree is moved
// into a shared mount. Prints what it saw as JSON on stdout (64-bit values as "<n>n"); the host
// judges it.
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import {
  UsipClient,
  formatMountinfoLine,
  isNetlinkError,
  readMountinfo,
  sameMount,
  type MountChange,
  type MountInfo,
  type MountWatcher,
} from '@usip/client';

if (process.env.USIP_VM === undefined) throw new Error('not in a usip-vm guest: USIP_VM is not set');

type Outcome = { ok: true; value: unknown } | { ok: false; error: Record<string, unknown> };

async function outcome(fn: () => Promise<unknown>): Promise<Outcome> {
  try {
    return { ok: true, value: await fn() };
  } catch (error) {
    if (!(error instanceof Error)) throw error;
    const fields: Record<string, unknown> = { name: error.name, message: error.message, code: (error as { code?: unknown }).code };
    if (isNetlinkError(error)) Object.assign(fields, { errno: error.errno, extack: error.extack });
    return { ok: false, error: fields };
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const sh = (...args: string[]) => execFileSync(args[0]!, args.slice(1));
const report: Record<string, unknown> = {};
const client = await UsipClient.connect();

// mounts() and mountinfo of this very process, one right after the other.
const table = await client.mounts();
report.mountinfo = readFileSync('/proc/self/mountinfo', 'utf8');
report.mntNs = statSync('/proc/self/ns/mnt').ino;
report.dump = table;

// mount(): every tenth mount by id, the first by unique id (6.8+), and refusals.
const sample = table.mounts.filter((_, i) => i % 10 === 0);
report.byId = await Promise.all(sample.map((m) => client.mount(m.id)));
report.sampleIds = sample.map((m) => m.id);
const first = table.mounts[0]!;
report.byUniqueId = first.uniqueId === undefined ? null : await outcome(() => client.mount({ uniqueId: first.uniqueId! }));
report.absent = await outcome(() => client.mount(999_999));
report.badArgument = await outcome(() => client.mount(-1));

function withoutUniqueId(mount: MountInfo): MountInfo {
  const { uniqueId: _uniqueId, ...rest } = mount;
  return rest;
}

/** The watcher's table against this process's mountinfo (every field but uniqueId). */
async function differences(watcher: MountWatcher): Promise<string[]> {
  const out: string[] = [];
  const mountinfo = await readMountinfo();
  for (const mount of mountinfo) {
    const entry = watcher.table.get(mount.id);
    if (entry === undefined) out.push(`missing: ${formatMountinfoLine(mount)}`);
    else if (!sameMount(withoutUniqueId(entry), mount)) out.push(`mountinfo: ${formatMountinfoLine(mount)} | table: ${formatMountinfoLine(entry)}`);
  }
  const ids = new Set(mountinfo.map((m) => m.id));
  for (const entry of watcher.table.values()) if (!ids.has(entry.id)) out.push(`extra: ${formatMountinfoLine(entry)}`);
  return out;
}

const watcher = await client.watchMounts();
report.watcherStart = { size: watcher.table.size, differences: await differences(watcher) };
const changes: string[] = [];
const consumer = (async () => {
  for await (const change of watcher) changes.push(describe(change));
})();

function describe(change: MountChange): string {
  return change.kind === 'resync' ? `resync ${change.reason}` : `${change.kind} ${change.mount.mountPoint} ${change.mount.optionalFields}`;
}

/** Until the watcher has applied every event up to now (a dump's ns-seq tells where "now" is). */
async function caughtUp(): Promise<void> {
  const { nsSeq } = await client.mounts();
  for (let i = 0; watcher.nsSeq < nsSeq; i++) {
    if (i > 1500) throw new Error(`the watcher stayed at ns-seq ${watcher.nsSeq}, the namespace is at ${nsSeq}`);
    await sleep(20);
  }
}

// A tree moved into a shared mount: the move makes every mount of the tree shared, so the
// mountinfo lines of the submounts change too (a remount event each, by the protocol).
sh('mkdir', '-p', '/tmp/ms');
sh('mount', '-t', 'tmpfs', 'ms', '/tmp/ms');
sh('mkdir', '/tmp/ms/a', '/tmp/ms/sh');
sh('mount', '-t', 'tmpfs', 'sh', '/tmp/ms/sh');
sh('mount', '--make-shared', '/tmp/ms/sh');
sh('mkdir', '/tmp/ms/sh/in');
sh('mount', '-t', 'tmpfs', 'tree', '/tmp/ms/a');
sh('mkdir', '/tmp/ms/a/c');
sh('mount', '-t', 'tmpfs', 'tree-sub', '/tmp/ms/a/c');
await caughtUp();
report.beforeMove = await differences(watcher);
changes.length = 0;
sh('mount', '--move', '/tmp/ms/a', '/tmp/ms/sh/in');
await caughtUp();
report.moveIntoShared = { changes: [...changes], differences: await differences(watcher) };
sh('umount', '-R', '/tmp/ms');
await caughtUp();
report.afterAll = await differences(watcher);
await watcher.close();
await consumer;
report.resyncs = watcher.resyncs;
await client.close();
process.stdout.write(`${JSON.stringify(report, (_key, value: unknown) => (typeof value === 'bigint' ? `${value}n` : value), 2)}\n`);
