// Runs inside the VM guest, in a private mount namespace (see ../vm-mounts.test.ts): a mount
// watcher (@usip/client's watchMounts) runs while `mount-storm` (./mount-storm.c) makes N tmpfs
// mounts under /tmp/storm-LABEL/box from one tight loop, and then they go: one umount(2) each
// from the same loop, or all at once with one lazy umount of box (a burst of N + 1 events, more
// than the module's event queue holds). After each phase, once the watcher has caught up with
// the namespace, its table must equal this process's own /proc/self/mountinfo and a fresh
// mount-get dump, exactly. Writes what it saw as JSON to $USIP_VM_RESULTS/storm-LABEL.json;
// the host judges it.
//
//   node --import tsx mount-storm.ts STORM-BINARY N LABEL [--receive-buffer-size BYTES] [--umount loop|lazy]
import { execFile, execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import {
  UsipClient,
  formatMountinfoLine,
  readMountinfo,
  sameMount,
  type MountChange,
  type MountInfo,
} from '@usip/client';

const results = process.env.USIP_VM_RESULTS;
if (results === undefined) throw new Error('not in a usip-vm guest: USIP_VM_RESULTS is not set');
const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { 'receive-buffer-size': { type: 'string' }, umount: { type: 'string', default: 'loop' } },
});
const [binary, countText, label] = positionals;
if (binary === undefined || countText === undefined || label === undefined || !['loop', 'lazy'].includes(values.umount!)) {
  throw new Error('usage: mount-storm.ts STORM-BINARY N LABEL [--receive-buffer-size BYTES] [--umount loop|lazy]');
}
const count = Number(countText);
const top = `/tmp/storm-${label}`;
const root = `${top}/box`;
const execFileAsync = promisify(execFile);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const ms = (from: bigint) => Number(process.hrtime.bigint() - from) / 1e6;

const report: Record<string, unknown> = { label, count, umount: values.umount, kernel: process.env.USIP_VM_KERNEL };
const save = () =>
  writeFileSync(join(results, `storm-${label}.json`), `${JSON.stringify(report, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v), 2)}\n`);

// The storm's directories live on a tmpfs of their own; the mounts on them, in box.
execFileSync('mkdir', ['-p', top]);
execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'storm', top]);
execFileSync('mkdir', ['-p', root]);
execFileSync('mount', ['--bind', top, root]);

const client = await UsipClient.connect();
const buffer = values['receive-buffer-size'];
const watcher = await client.watchMounts(buffer === undefined ? {} : { receiveBufferSize: Number(buffer) });
report.receiveBufferSize = watcher.receiveBufferSize;
report.initial = { mounts: watcher.table.size, nsSeq: watcher.nsSeq };

// The consumer: counts what it is given; the test's phases only look at the watcher's state.
const counts: Record<string, number> = { mount: 0, umount: 0, move: 0, remount: 0 };
/** Storm mounts in the consumer's view (which is the table's: changes are applied as yielded). */
let stormMounts = 0;
const inStorm = (mount: MountInfo) => mount.mountPoint.startsWith(`${root}/`);
const resyncs: Omit<Extract<MountChange, { kind: 'resync' }>, 'kind'>[] = [];
let consumerError: unknown;
const consumer = (async () => {
  try {
    for await (const change of watcher) {
      if (change.kind === 'resync') {
        const { kind: _kind, ...rest } = change;
        resyncs.push(rest);
      } else {
        counts[change.kind]!++;
        if (change.kind === 'umount') {
          if (inStorm(change.mount)) stormMounts--;
        } else if (inStorm(change.mount) !== (change.previous !== undefined && inStorm(change.previous))) {
          stormMounts += inStorm(change.mount) ? 1 : -1;
        }
      }
    }
  } catch (error) {
    consumerError = error;
  }
})();

/** Waits until `done()` holds, or fails the phase after `limitMs`. */
async function until(what: string, done: () => boolean, limitMs = 180_000): Promise<void> {
  const start = Date.now();
  while (!done()) {
    if (consumerError !== undefined) throw consumerError;
    if (Date.now() - start > limitMs) throw new Error(`${what}: not after ${limitMs / 1000} s (nsSeq ${watcher.nsSeq}, table ${watcher.table.size})`);
    await sleep(20);
  }
}

function withoutUniqueId(mount: MountInfo): MountInfo {
  const { uniqueId: _uniqueId, ...rest } = mount;
  return rest;
}

/** The watcher's table against mountinfo (all but uniqueId, which mountinfo lacks) and against a dump (everything). */
async function compare(): Promise<Record<string, unknown>> {
  // Caught up: the watcher has applied every event up to the dump's ns-seq.
  const dump = await client.mounts();
  await until('the watcher reaching the dump\'s ns-seq', () => watcher.nsSeq >= dump.nsSeq);
  const mountinfo = await readMountinfo();
  const differences: string[] = [];
  const table = watcher.table;
  for (const mount of mountinfo) {
    const entry = table.get(mount.id);
    if (entry === undefined) differences.push(`missing from the table: ${formatMountinfoLine(mount)}`);
    else if (!sameMount(withoutUniqueId(entry), mount)) differences.push(`mountinfo: ${formatMountinfoLine(mount)} | table: ${formatMountinfoLine(entry)}`);
  }
  const inMountinfo = new Set(mountinfo.map((m) => m.id));
  for (const entry of table.values()) if (!inMountinfo.has(entry.id)) differences.push(`not in mountinfo: ${formatMountinfoLine(entry)}`);
  let dumpDifferences = 0;
  for (const mount of dump.mounts) {
    const entry = table.get(mount.id);
    if (entry === undefined || !sameMount(entry, mount)) dumpDifferences++;
  }
  return {
    tableSize: table.size,
    mountinfoSize: mountinfo.length,
    dumpSize: dump.mounts.length,
    dumpNsSeq: dump.nsSeq,
    watcherNsSeq: watcher.nsSeq,
    differences: differences.length,
    firstDifferences: differences.slice(0, 5),
    dumpDifferences,
    uniqueIds: [...table.values()].filter((m) => m.uniqueId !== undefined).length,
  };
}

async function phase(op: 'mount' | 'umount' | 'lazy-umount', expected: number): Promise<Record<string, unknown>> {
  const before = { ...counts };
  const resyncsBefore = resyncs.length;
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  let stormSeconds: number;
  if (op === 'lazy-umount') {
    await execFileAsync('umount', ['-l', root]);
    stormSeconds = ms(start) / 1000;
  } else {
    const { stdout } = await execFileAsync(binary!, [op, root, String(count)]);
    stormSeconds = (JSON.parse(stdout) as { seconds: number }).seconds;
  }
  const stormDoneMs = ms(start);
  await until(`the watcher's table holding ${expected} storm mounts`, () => stormMounts === expected);
  const caughtUpMs = ms(start);
  const used = process.cpuUsage(cpu);
  const changes = Object.entries(counts).reduce((sum, [kind, n]) => sum + n - before[kind]!, 0);
  const result: Record<string, unknown> = {
    op,
    stormSeconds,
    stormDoneMs,
    caughtUpMs,
    changes,
    byKind: Object.fromEntries(Object.entries(counts).map(([kind, n]) => [kind, n - before[kind]!])),
    resyncs: resyncs.slice(resyncsBefore),
    cpuUserMs: used.user / 1000,
    cpuSystemMs: used.system / 1000,
    cpuPerChangeUs: changes === 0 ? null : (used.user + used.system) / changes,
  };
  result.check = await compare();
  return result;
}

try {
  report.mountPhase = await phase('mount', count);
  save();
  report.umountPhase = await phase(values.umount === 'lazy' ? 'lazy-umount' : 'umount', 0);
  report.stats = await client.stats();
} catch (error) {
  report.error = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
} finally {
  await watcher.close();
  await consumer;
  if (consumerError !== undefined) report.consumerError = String(consumerError);
  report.resyncsTotal = watcher.resyncs;
  await client.close();
  if (values.umount === 'loop') execFileSync('umount', [root]);
  execFileSync('umount', [top]);
  save();
}
