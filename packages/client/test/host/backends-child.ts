// Run by kernel-backends.test.ts in a private mount namespace of its own (unshare -m
// --propagation private), as root:  node --import tsx backends-child.ts BACKEND STORM DIR N
// With the backend forced: the table against mountinfo after a few hundred mounts of every kind;
// a watcher through mount, bind, submount, move, remount, a propagation change, mount_setattr
// and umounts, its table against mountinfo after each; a storm of N mounts made from one loop,
// then all gone in one lazy umount. Prints one JSON object with what it saw.
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { openMounts, readMountinfo, sameMount, type MountChange, type MountInfo, type MountTableWatcher } from '../../src/index.js';

const [backend, storm, dir, stormSize] = process.argv.slice(2) as ['kernel' | 'mountinfo', string, string, string];
const out: Record<string, unknown> = { backend };

function strip(mount: MountInfo): MountInfo {
  const { uniqueId: _u, ...rest } = mount;
  return rest;
}

/** The differences between a table and mountinfo (by id, every field but the unique id); [] when equal. */
function differences(table: Iterable<MountInfo>, truth: MountInfo[]): string[] {
  const byId = new Map([...table].map((m) => [m.id, strip(m)]));
  const problems: string[] = [];
  for (const m of truth) {
    const have = byId.get(m.id);
    if (have === undefined) problems.push(`missing ${m.id} ${m.mountPoint}`);
    else if (!sameMount(have, m)) problems.push(`differs ${m.id}: ${JSON.stringify(have, big)} != ${JSON.stringify(m, big)}`);
    byId.delete(m.id);
  }
  for (const m of byId.values()) problems.push(`extra ${m.id} ${m.mountPoint}`);
  return problems;
}

const big = (_k: string, v: unknown) => (typeof v === 'bigint' ? v.toString() : v);
const sh = (...args: string[]) => execFileSync(args[0]!, args.slice(1), { stdio: ['ignore', 'ignore', 'inherit'] });

const source = await openMounts({ backend });
out.plan = source.plan.features.map((c) => [c.feature, c.backend, c.mechanism]);

// --- The table, after a few hundred mounts of every kind.
mkdirSync(`${dir}/v`, { recursive: true });
sh(storm, 'variety', `${dir}/v`);
const { mounts } = await source.mounts();
const mountinfo = await readMountinfo();
out.tableSize = mounts.length;
out.tableDifferences = differences(mounts, mountinfo);
out.tableOrder = mounts.map((m) => m.id).join(',') === mountinfo.map((m) => m.id).join(',');
out.uniqueIds = mounts.every((m) => m.uniqueId !== undefined);
const one = mounts[mounts.length - 1]!;
out.mountById = sameMount(await source.mount(one.id), one);
if (backend === 'kernel') out.mountByUniqueId = sameMount(await source.mount({ uniqueId: one.uniqueId! }), one);

// --- The watcher: each step's changes, and the table against mountinfo after it.
const watcher: MountTableWatcher & { fallbackReason?: string } = await source.watchMounts({ checkIntervalMs: 300 });
out.watcherBackend = watcher.backend;
out.snapshotDifferences = differences(watcher.table.values(), await readMountinfo());
const seen: MountChange[] = [];
const consuming = (async () => {
  for await (const change of watcher) seen.push(change);
})();

async function settle(label: string, timeoutMs = 20_000): Promise<{ step: string; kinds: string[]; differences: string[]; ms: number }> {
  const start = Date.now();
  const from = seen.length;
  let problems: string[] = [];
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 25));
    problems = differences(watcher.table.values(), await readMountinfo());
    if (problems.length === 0 || Date.now() - start > timeoutMs) break;
  }
  // A little longer: nothing more may come for a step that is done.
  await new Promise((resolve) => setTimeout(resolve, 100));
  const kinds = seen.slice(from).map((c) => (c.kind === 'resync' ? `resync:${c.reason}` : `${c.kind} ${c.mount.mountPoint.slice(dir.length)}`));
  return { step: label, kinds, differences: problems.slice(0, 5), ms: Date.now() - start };
}

const w = `${dir}/w`;
mkdirSync(`${w}/a`, { recursive: true });
mkdirSync(`${w}/b`, { recursive: true });
mkdirSync(`${w}/m`, { recursive: true });
const steps = [];
sh('mount', '-t', 'tmpfs', 'wa', `${w}/a`);
steps.push(await settle('mount'));
sh('mount', '--bind', `${w}/a`, `${w}/b`);
steps.push(await settle('bind'));
mkdirSync(`${w}/a/sub`);
sh('mount', '-t', 'tmpfs', 'wsub', `${w}/a/sub`);
steps.push(await settle('submount'));
sh('mount', '--move', `${w}/a`, `${w}/m`);
steps.push(await settle('move'));
sh('mount', '-o', 'remount,ro', `${w}/m/sub`);
steps.push(await settle('remount'));
sh('mount', '--make-shared', `${w}/b`);
steps.push(await settle('make-shared'));
sh('mount', '-o', 'remount,bind,nosuid', `${w}/b`);
steps.push(await settle('setattr'));
sh('umount', `${w}/m/sub`);
steps.push(await settle('umount'));
sh('umount', `${w}/m`, `${w}/b`);
steps.push(await settle('umounts'));
out.steps = steps;

// --- A storm: N mounts below a tmpfs (bind sources elsewhere), from one loop; then one lazy umount.
const s = `${dir}/s`;
mkdirSync(s, { recursive: true });
sh('mount', '-t', 'tmpfs', 'stormroot', s);
out.stormRoot = await settle('storm-root');
const resyncsBefore = watcher.resyncs;
let start = Date.now();
sh(storm, 'mount', s, stormSize);
const stormUp = await settle('storm', 120_000);
out.storm = { ...stormUp, kinds: undefined, changes: stormUp.kinds.length, resyncs: watcher.resyncs - resyncsBefore, tableSize: watcher.table.size, madeMs: Date.now() - start };
start = Date.now();
sh('umount', '-l', s);
const stormDown = await settle('storm-umount', 120_000);
out.stormUmount = { ...stormDown, kinds: undefined, changes: stormDown.kinds.length, resyncs: watcher.resyncs - resyncsBefore, tableSize: watcher.table.size };

await watcher.close();
await consuming;
out.closed = watcher.closed;

// --- Remounts with no periodic check to fall back on (checkIntervalMs: 0): a remount alone, paced
// mounts (the kernel backend reads mountinfo for none of them), and a remount in the middle of a
// storm of mounts; the table equals mountinfo after each.
{
  const quiet = await source.watchMounts({ checkIntervalMs: 0 });
  const rereads = () => (quiet as { rereads?: number }).rereads ?? 0;
  const changes: MountChange[] = [];
  const pulling = (async () => {
    for await (const change of quiet) changes.push(change);
  })();
  const until = async (label: string, timeoutMs = 20_000) => {
    const start = Date.now();
    const from = changes.length;
    let problems: string[] = [];
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, 25));
      problems = differences(quiet.table.values(), await readMountinfo());
      if (problems.length === 0 || Date.now() - start > timeoutMs) break;
    }
    await new Promise((resolve) => setTimeout(resolve, 150));
    const kinds = changes.slice(from).map((c) => (c.kind === 'resync' ? `resync:${c.reason}` : `${c.kind} ${c.mount.mountPoint.slice(dir.length)}`));
    return { step: label, kinds, differences: problems.slice(0, 5) };
  };
  const r = `${dir}/r`;
  mkdirSync(`${r}/x`, { recursive: true });
  mkdirSync(`${r}/s`, { recursive: true });
  sh('mount', '-t', 'tmpfs', 'rx', `${r}/x`);
  await until('x');
  let before = rereads();
  sh('mount', '-o', 'remount,ro', `${r}/x`);
  out.remountAlone = { ...(await until('remount-alone')), rereads: rereads() - before };
  before = rereads();
  const paced: string[][] = [];
  for (let i = 0; i < 8; i++) {
    mkdirSync(`${r}/p${i}`, { recursive: true });
    sh('mount', '-t', 'tmpfs', `rp${i}`, `${r}/p${i}`);
    paced.push((await until(`paced-mount-${i}`)).kinds);
    sh('umount', `${r}/p${i}`);
    paced.push((await until(`paced-umount-${i}`)).kinds);
  }
  out.paced = { kinds: paced, rereads: rereads() - before };
  sh('mount', '-t', 'tmpfs', 'rs', `${r}/s`);
  await until('storm-root');
  before = rereads();
  const base = (await readMountinfo()).length;
  const stormFrom = changes.length;
  const { spawn } = await import('node:child_process');
  const stormChild = spawn(storm, ['mount', `${r}/s`, stormSize], { stdio: ['ignore', 'ignore', 'inherit'] });
  const exited = new Promise<number | null>((resolve) => stormChild.on('exit', (code) => resolve(code)));
  let running = true;
  void exited.then(() => (running = false));
  // Once a tenth of the storm is in, remount x (rw again) while the storm goes on.
  while (running && (await readMountinfo()).length < base + Number(stormSize) / 10) await new Promise((resolve) => setTimeout(resolve, 2));
  const duringStorm = running;
  sh('mount', '-o', 'remount,rw', `${r}/x`);
  const code = await exited;
  const stormRemount = await until('storm-remount', 120_000);
  const stormKinds = changes.slice(stormFrom).map((c) => (c.kind === 'resync' ? `resync:${c.reason}` : `${c.kind} ${c.mount.mountPoint.slice(dir.length)}`));
  out.stormRemount = {
    ...stormRemount,
    kinds: stormKinds.filter((k) => !k.startsWith('mount /r/s/')),
    mounts: stormKinds.filter((k) => k.startsWith('mount /r/s/')).length,
    duringStorm,
    code,
    rereads: rereads() - before,
  };
  sh('umount', '-l', `${r}/s`);
  await until('storm-umount', 120_000);
  sh('umount', `${r}/x`);
  out.quietDifferences = (await until('x-umount')).differences;
  await quiet.close();
  await pulling;
}
source.close();
process.stdout.write(`${JSON.stringify(out, big)}\n`);
