// Runs inside the VM guest, in a private mount namespace (see ../vm-backends.test.ts): the
// mount watcher of openMounts({ backend }) (the module, the kernel's own fanotify + listmount /
// statmount, or the mountinfo poll) while `mount-storm` (./mount-storm.c) makes N tmpfs mounts
// under /tmp/bstorm-LABEL/box from one tight loop, remounts one of them read-only, and then they
// all go with one lazy umount of box. After each phase, once the watcher's table holds what the
// phase made, the table must equal this process's own /proc/self/mountinfo, exactly. Writes
// what it saw as JSON to $USIP_VM_RESULTS/bstorm-LABEL.json; the host judges it.
//
//   node --import tsx backend-storm.ts STORM-BINARY N LABEL [--backend module|kernel|mountinfo]
import { execFile, execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { formatMountinfoLine, openMounts, readMountinfo, sameMount, type MountBackend, type MountChange, type MountInfo } from '@usip/client';

const results = process.env.USIP_VM_RESULTS;
if (results === undefined) throw new Error('not in a usip-vm guest: USIP_VM_RESULTS is not set');
const { positionals, values } = parseArgs({ allowPositionals: true, options: { backend: { type: 'string' } } });
const [binary, countText, label] = positionals;
if (binary === undefined || countText === undefined || label === undefined) {
  throw new Error('usage: backend-storm.ts STORM-BINARY N LABEL [--backend module|kernel|mountinfo]');
}
const count = Number(countText);
const top = `/tmp/bstorm-${label}`;
const root = `${top}/box`;
const execFileAsync = promisify(execFile);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const ms = (from: bigint) => Number(process.hrtime.bigint() - from) / 1e6;

const report: Record<string, unknown> = { label, count, forced: values.backend ?? null, kernel: process.env.USIP_VM_KERNEL };
const save = () =>
  writeFileSync(join(results, `bstorm-${label}.json`), `${JSON.stringify(report, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v), 2)}\n`);

execFileSync('mkdir', ['-p', top]);
execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'bstorm', top]);
execFileSync('mkdir', ['-p', root]);
execFileSync('mount', ['--bind', top, root]);

const api = await openMounts(values.backend === undefined ? {} : { backend: values.backend as MountBackend });
report.plan = api.plan.features.map((f) => ({ feature: f.feature, backend: f.backend, mechanism: f.mechanism, reason: f.reason }));
const watcher = await api.watchMounts();
report.backend = watcher.backend;
report.fallbackReason = (watcher as { fallbackReason?: string }).fallbackReason ?? null;
report.initial = { mounts: watcher.table.size };

const counts: Record<string, number> = { mount: 0, umount: 0, move: 0, remount: 0 };
const inStorm = (mount: MountInfo) => mount.mountPoint.startsWith(`${root}/`);
let stormMounts = 0;
let readOnlyRemounts = 0;
const resyncs: Omit<Extract<MountChange, { kind: 'resync' }>, 'kind'>[] = [];
let consumerError: unknown;
const consumer = (async () => {
  try {
    for await (const change of watcher) {
      if (change.kind === 'resync') {
        const { kind: _kind, ...rest } = change;
        resyncs.push(rest);
        continue;
      }
      counts[change.kind]!++;
      if (change.kind === 'umount') {
        if (inStorm(change.mount)) stormMounts--;
      } else if (inStorm(change.mount) !== (change.previous !== undefined && inStorm(change.previous))) {
        stormMounts += inStorm(change.mount) ? 1 : -1;
      }
      if (change.kind === 'remount' && inStorm(change.mount) && change.mount.options.startsWith('ro')) readOnlyRemounts++;
    }
  } catch (error) {
    consumerError = error;
  }
})();

async function until(what: string, done: () => boolean, limitMs = 240_000): Promise<void> {
  const start = Date.now();
  while (!done()) {
    if (consumerError !== undefined) throw consumerError;
    if (Date.now() - start > limitMs) throw new Error(`${what}: not after ${limitMs / 1000} s (table ${watcher.table.size}, storm mounts ${stormMounts})`);
    await sleep(20);
  }
}

function withoutUniqueId(mount: MountInfo): MountInfo {
  const { uniqueId: _uniqueId, ...rest } = mount;
  return rest;
}

/** The watcher's table against mountinfo, read now: every field mountinfo has. */
async function compare(): Promise<Record<string, unknown>> {
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
  return {
    tableSize: table.size,
    mountinfoSize: mountinfo.length,
    differences: differences.length,
    firstDifferences: differences.slice(0, 5),
    uniqueIds: [...table.values()].filter((m) => m.uniqueId !== undefined).length,
  };
}

/** Runs one phase, waits for the watcher to show its result, then compares. */
async function phase(name: string, act: () => Promise<void>, done: () => boolean): Promise<Record<string, unknown>> {
  const before = { ...counts };
  const resyncsBefore = resyncs.length;
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  await act();
  const actedMs = ms(start);
  await until(`${name}: the watcher's table showing it`, done);
  const caughtUpMs = ms(start);
  const used = process.cpuUsage(cpu);
  const result: Record<string, unknown> = {
    actedMs,
    caughtUpMs,
    byKind: Object.fromEntries(Object.entries(counts).map(([kind, n]) => [kind, n - before[kind]!])),
    resyncs: resyncs.slice(resyncsBefore),
    cpuMs: (used.user + used.system) / 1000,
  };
  // Let anything still in flight arrive; the table must then be exactly the namespace's.
  await sleep(300);
  result.check = await compare();
  return result;
}

const first = `${root}/d00000`;
try {
  report.mountPhase = await phase(
    'mount',
    async () => {
      await execFileAsync(binary, ['mount', root, String(count)]);
    },
    () => stormMounts === count,
  );
  save();
  report.remountPhase = await phase(
    'remount',
    async () => {
      await execFileAsync('mount', ['-o', 'remount,bind,ro', first]);
    },
    () => readOnlyRemounts === 1 && (watcher.table.get([...watcher.table.values()].find((m) => m.mountPoint === first)?.id ?? -1)?.options.startsWith('ro') ?? false),
  );
  save();
  report.umountPhase = await phase(
    'lazy-umount',
    async () => {
      await execFileAsync('umount', ['-l', root]);
    },
    () => stormMounts === 0 && ![...watcher.table.values()].some((m) => m.mountPoint === root),
  );
} catch (error) {
  report.error = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
} finally {
  await watcher.close();
  await consumer;
  if (consumerError !== undefined) report.consumerError = String(consumerError);
  report.resyncsTotal = watcher.resyncs;
  await api.close();
  execFileSync('umount', [top]);
  save();
}
