#!/usr/bin/env node
// The kernel's own mount APIs through @usip/netlink-native, on the host (real CPU): does
// FanotifyMountWatch's `statmount: true` (statmount of each attached mount in the addon, before
// the batch crosses into JS) pay, against statKernelMount() from JS per event (one crossing
// each)? And what MountinfoWatch costs per change next to fanotify, re-reading after every
// wakeup or ({ reread: 'on-request' }) only counting wakeups; and what the client's kernel
// watcher (openMounts({ backend: 'kernel' }).watchMounts(), fanotify + the on-request poll)
// costs. The watcher's own CPU (process.cpuUsage: the mounter is another process), for paced
// single changes and for a storm. Prints; asserts nothing.
//
//   node tools/bench/mount-api.mjs [--paced 300] [--storm 5000] [--base 1000] [--rounds 3]
//
// Re-runs itself in a private mount namespace (unshare -m --propagation private; needs root),
// so the mounts never reach the host's table.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';

const { values } = parseArgs({
  options: {
    paced: { type: 'string', default: '300' },
    storm: { type: 'string', default: '5000' },
    base: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '3' },
    inner: { type: 'boolean', default: false },
  },
});
if (!values.inner) {
  const self = fileURLToPath(import.meta.url);
  const args = ['-m', '--propagation', 'private', process.execPath, self, '--inner', ...process.argv.slice(2)];
  try {
    execFileSync('unshare', args, { stdio: 'inherit' });
  } catch (error) {
    console.error(`mount-api: could not run in a private mount namespace (root needed): ${error.message}`);
    process.exit(1);
  }
  process.exit(0);
}

const { FanotifyMountWatch, MountinfoWatch, mountApiSupport, statKernelMount } = await import('@usip/netlink-native');
const paced = Number(values.paced);
const storm = Number(values.storm);
const base = Number(values.base);
const rounds = Number(values.rounds);
const support = mountApiSupport();
if (!support.fanotifyMount.available) {
  console.error(`mount-api: no fanotify mount events here: ${support.fanotifyMount.reason}`);
  process.exit(1);
}

const dir = mkdtempSync(join(tmpdir(), 'usip-bench-mount-api-'));
const sh = (script) => execFileSync('sh', ['-ec', `cd '${dir}'; ${script}`], { stdio: 'ignore' });
// N mounts already there (the table size re-reading pays for), in a mount of their own.
sh(`mkdir table src tree work; mount -t tmpfs t table; for i in $(seq ${base}); do mkdir table/$i; mount -t tmpfs t table/$i; done; mount -t tmpfs s src; mount -t tmpfs w work`);
// A tree of 100 mounts: one recursive bind of it attaches 100 mounts in one system call, the
// storm a busy container host makes (a shell loop of mount(8) runs would pace it at ~2 ms each).
const TREE = 100;
sh(`mount -t tmpfs tree tree; for i in $(seq ${TREE - 1}); do mkdir tree/$i; mount -t tmpfs t tree/$i; done`);

/** Starts a mounter: `count` bind mounts of src into work (then unmounted), paced by `sleepMs`
 *  (0: as fast as a shell loop goes). Resolves when it is done. */
function mounter(count, sleepMs, tag) {
  const pause = sleepMs > 0 ? `sleep ${sleepMs / 1000};` : '';
  const script =
    sleepMs > 0
      ? `cd '${dir}'; mkdir -p work/${tag}; for i in $(seq ${count}); do mkdir work/${tag}/$i; mount --bind src work/${tag}/$i; ${pause} done`
      : `cd '${dir}'; mkdir -p work/${tag}; for i in $(seq ${Math.ceil(count / TREE)}); do mkdir work/${tag}/$i; mount --rbind tree work/${tag}/$i; done`;
  const child = spawn('sh', ['-ec', script], { stdio: 'ignore' });
  return new Promise((resolve, reject) => child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`mounter exit ${code}`)))));
}
const cleanup = (tag) => sh(`for d in work/${tag}/*; do umount -l $d 2>/dev/null || true; done; rm -rf work/${tag}`);

async function fanotifyRun(mode, count, sleepMs, tag) {
  const watch = new FanotifyMountWatch({ statmount: mode === 'in-addon' });
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const done = mounter(count, sleepMs, tag);
  let attached = 0;
  let described = 0;
  let crossings = 0;
  while (attached < count) {
    const next = await watch.next();
    crossings += 1;
    for (const event of next.value.events) {
      if (event.kind !== 'attach') continue;
      attached += 1;
      if (mode === 'in-addon') {
        if (event.mount) described += 1;
      } else if (mode === 'from-js') {
        const mount = await statKernelMount(event.uniqueId);
        crossings += 1;
        if (mount) described += 1;
      }
    }
  }
  const cpu = process.cpuUsage(cpu0);
  const wall = performance.now() - t0;
  await done;
  watch.close();
  cleanup(tag);
  return { cpuMs: (cpu.user + cpu.system) / 1000, wallMs: wall, described, crossings };
}

async function mountinfoRun(count, sleepMs, tag, reread = 'every-wakeup') {
  const watch = new MountinfoWatch(undefined, { reread });
  await watch.next(); // the table
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let finished = false;
  const done = mounter(count, sleepMs, tag).then(() => (finished = true));
  let added = 0;
  let crossings = 0;
  let wakeups = 0;
  let asked = false;
  let pending;
  while (added < count) {
    // On request: only wakeups until the mounter is done, then one read (counted) for the lines.
    if (reread === 'on-request' && finished && !asked) {
      watch.requestRead();
      asked = true;
    }
    pending ??= watch.next();
    const next = await (asked || reread !== 'on-request' ? pending : Promise.race([pending, done.then(() => undefined)]));
    if (next === undefined) continue;
    pending = undefined;
    crossings += 1;
    wakeups += next.value.wakeups ?? 0;
    added += next.value.added.filter((line) => line.includes(`/work/${tag}/`)).length;
    if (next.value.removed.length > 0) throw new Error('mount-api: unexpected removals while mounting');
  }
  const cpu = process.cpuUsage(cpu0);
  const wall = performance.now() - t0;
  await done;
  watch.close();
  cleanup(tag);
  // The poll thread's CPU is in process.cpuUsage() too: it belongs to this process.
  return { cpuMs: (cpu.user + cpu.system) / 1000, wallMs: wall, described: added, crossings, wakeups };
}

/** The client's kernel watcher (no periodic check): until its table holds every mount made. */
async function clientRun(count, sleepMs, tag) {
  const { openMounts } = await import('@usip/client');
  const source = await openMounts({ backend: 'kernel' });
  const watcher = await source.watchMounts({ checkIntervalMs: 0 });
  const mine = (change) => change.kind === 'mount' && change.mount.mountPoint.includes(`/work/${tag}/`);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const done = mounter(count, sleepMs, tag);
  let added = 0;
  let crossings = 0;
  while (added < count) {
    const next = await watcher.next();
    crossings += 1;
    if (mine(next.value)) added += 1;
  }
  // What it does once the mounter stops (its end-of-burst read, if any) counts too: it works
  // while pulled.
  const draining = (async () => {
    for (;;) if ((await watcher.next()).done) return;
  })();
  await done;
  await new Promise((resolve) => setTimeout(resolve, 300));
  const cpu = process.cpuUsage(cpu0);
  const wall = performance.now() - t0;
  const rereads = watcher.rereads; // undefined for a client from before it
  await watcher.close();
  await draining;
  await source.close();
  cleanup(tag);
  return { cpuMs: (cpu.user + cpu.system) / 1000, wallMs: wall, described: added, crossings, rereads };
}

const modes = [
  ['fanotify, ids only', (n, s, t) => fanotifyRun('ids', n, s, t)],
  ['fanotify + statKernelMount() from JS', (n, s, t) => fanotifyRun('from-js', n, s, t)],
  ['fanotify, statmount: true (in the addon)', (n, s, t) => fanotifyRun('in-addon', n, s, t)],
  ['MountinfoWatch (re-read + diff)', (n, s, t) => mountinfoRun(n, s, t)],
];
// A binding built before the option has no on-request mode; a client before it, no rereads.
const probe = new MountinfoWatch(undefined, { reread: 'on-request' });
if (probe.reread === 'on-request') modes.push(["MountinfoWatch { reread: 'on-request' }", (n, s, t) => mountinfoRun(n, s, t, 'on-request')]);
probe.close();
modes.push(['client kernel watcher (watchMounts)', (n, s, t) => clientRun(n, s, t)]);

console.log(`mount-api: ${base} mounts in the table; ${rounds} rounds, interleaved; the watcher's CPU (user+sys)`);
for (const [label, count, sleepMs] of [
  [`paced: ${paced} binds, 5 ms apart`, paced, 5],
  [`storm: ${storm} mounts, by recursive binds of a ${TREE}-mount tree, unpaced`, storm, 0],
]) {
  const results = new Map(modes.map(([name]) => [name, []]));
  for (let round = 0; round < rounds; round++) {
    for (const [name, run] of modes) {
      results.get(name).push(await run(count, sleepMs, `r${round}-${name.length}-${count}`));
    }
  }
  console.log(`\n${label}`);
  console.log('  watcher                                       CPU/change   CPU total   wall     crossings  described  wakeups  re-reads');
  for (const [name, runs] of results) {
    const median = (pick) => runs.map(pick).sort((a, b) => a - b)[Math.floor(runs.length / 2)];
    const cpu = median((r) => r.cpuMs);
    const optional = (key) => (runs[0][key] === undefined ? '–' : String(median((r) => r[key])));
    console.log(
      `  ${name.padEnd(44)}  ${((cpu / count) * 1000).toFixed(1).padStart(7)} µs  ${cpu.toFixed(0).padStart(7)} ms  ${median((r) => r.wallMs).toFixed(0).padStart(6)} ms  ${String(median((r) => r.crossings)).padStart(8)}  ${String(median((r) => r.described)).padStart(9)}  ${optional('wakeups').padStart(7)}  ${optional('rereads').padStart(8)}`,
    );
  }
}
sh('umount -R table; umount -R work; umount -R src; umount -R tree');
rmSync(dir, { recursive: true, force: true });
