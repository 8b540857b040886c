#!/usr/bin/env node
// Mount-table watching, measured per guest kernel (Debian's 6.12 and newest 7.x by default), each
// side by side in its own boots: (a) a watcher that polls /proc/self/mountinfo and re-reads it,
// (b) the USIP watcher (UsipClient.watchMounts(): events + mount-get by id), (b') the same
// protocol from lean C, (c) listmount(2) + statmount(2) of the whole table, and on kernels with
// fanotify mount events (6.15+) (f) fanotify + one statmount per event in lean C and (g)
// watchMounts() on the client's native backend (no module); at N = 1,000 and 15,000 mounts: CPU
// per change, latency from the mount(2) return, total CPU for a storm; UsipClient.mounts() vs
// mountinfo parsed in JS; and what a registered mtab listener costs mount(2). Before the VMs, a
// few host-side figures (real CPU). Prints ratios and whether the targets are met; asserts
// nothing (exit 0), but exits 1 when it could not run. Method and figures:
// docs/mount-benchmark.md.
//
//   node tools/bench/mount-watch.mjs [--kernels 6.12,7] [--sizes 1000,15000] [--storm 15000] [--rounds 2]
//        [--changes a=16,b=96,bc=400,c=8,f=400,g=96] [--storm-watchers none,a,b,bc,c,f,g] [--pairs 150] [--pair-blocks 6]
//        [--dump-reps N] [--cpus 1] [--storm-cpus 2] [--warmup 300] [--floor 150] [--quick] [--profile] [--host-only] [--timeout 2400]
//   (--cpus: the guest's vCPUs. One by default: QEMU emulates every vCPU on one host thread, and a
//    wake-up across vCPUs then costs milliseconds, which weighs on thread-hopping runtimes such as
//    Node far more than on C; --storm-cpus: the vCPUs of a second boot for the storm and the cost
//    to mount(2), where watcher and mounter must run at the same time; --warmup: changes made with
//    the Node watcher before measuring it; --floor: wake-ups of Node's floor, node-wake's pipe
//    mode, run in the per-change boot each round beside (b); 0 leaves it out)
//   (--profile: V8 CPU profiles of the USIP watcher's runs, in the run's results directory;
//    --host-only: only the host-side figures, no VM)
//   node tools/bench/mount-watch.mjs --from RESULTS.json     (print the tables of an earlier run)
//   (--kernels: usip-vm selectors, one after the other; a kernel without a built usip.ko runs
//    without the module's watchers, with a note; (f) and (g) are probed in the guest and left out,
//    with the reason, where the kernel or the client lacks them)
//
// Needs usip.ko built for each kernel (packages/kernel-module/build/<release>/usip.ko; for 7.x:
// node tools/vm/dist/cli.js build-module --kernel 7 --src packages/kernel-module --out
// packages/kernel-module/build) and the packages built: `npx nx run bench:mount-watch` builds them.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { formatVerdict, resolveKernels, runInVm } from '@usip/vm';
import { report } from './mount-watch/report.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const { values: opts } = parseArgs({
  options: {
    kernels: { type: 'string', default: '6.12,7' },
    sizes: { type: 'string' },
    storm: { type: 'string' },
    rounds: { type: 'string' },
    changes: { type: 'string' },
    'storm-watchers': { type: 'string', default: 'none,a,b,bc,c,f,g' },
    pairs: { type: 'string' },
    'pair-blocks': { type: 'string', default: '6' },
    cpus: { type: 'string', default: '1' },
    'storm-cpus': { type: 'string', default: '2' },
    warmup: { type: 'string', default: '300' },
    floor: { type: 'string', default: '150' },
    'dump-reps': { type: 'string' },
    timeout: { type: 'string', default: '2400' },
    quick: { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
    'host-only': { type: 'boolean', default: false },
    from: { type: 'string' },
  },
});
// --quick: a smoke run of the whole pipeline in a few minutes (figures not worth quoting).
const defaults = opts.quick
  ? { sizes: '200,1000', storm: '1000', rounds: '1', changes: 'a=4,b=8,bc=8,c=4,f=8,g=8', pairs: '100' }
  : // Enough changes that a watcher's CPU per change is many ticks of the guest's CPU
    // accounting (HZ=250 here): ~1 ms a change for the lean client needs hundreds.
    { sizes: '1000,15000', storm: '15000', rounds: '2', changes: 'a=16,b=96,bc=400,c=8,f=400,g=96', pairs: '150' };
for (const [k, v] of Object.entries(defaults)) opts[k] ??= v;

if (opts.from) {
  // (--from: the tables of an earlier run)
  console.log(report(JSON.parse(readFileSync(opts.from, 'utf8'))));
  process.exit(0);
}

const fail = (message) => {
  console.error(`mount-watch: ${message}`);
  process.exit(1);
};
const int = (name, text) => {
  const v = Number(text);
  if (!Number.isInteger(v) || v < 0) fail(`--${name} must be a non-negative integer (got ${text})`);
  return v;
};

const sizes = opts.sizes.split(',').map((x) => int('sizes', x));
const WATCHER_KEYS = ['a', 'b', 'bc', 'c', 'f', 'g'];
const changes = Object.fromEntries(WATCHER_KEYS.map((k) => [k, 0]));
for (const [k, v] of opts.changes.split(',').map((kv) => kv.split('='))) {
  if (!(k in changes)) fail(`--changes: watchers are ${WATCHER_KEYS.join(', ')} (got ${k})`);
  changes[k] = int('changes', v);
  if (changes[k] % 2) fail(`--changes ${k}=${v}: must be even (mount + umount pairs)`);
}
const dumpReps = opts['dump-reps'] === undefined ? undefined : int('dump-reps', opts['dump-reps']);
const config = {
  sizes,
  rounds: int('rounds', opts.rounds),
  changes,
  watchers: WATCHER_KEYS.filter((k) => changes[k] > 0),
  storm: int('storm', opts.storm),
  stormWatchers: opts['storm-watchers'].split(',').filter(Boolean),
  pairs: int('pairs', opts.pairs),
  pairBlocks: int('pair-blocks', opts['pair-blocks']),
  // --dump-reps 0 leaves the comparison out.
  dumpReps: dumpReps === 0 ? undefined : Object.fromEntries(sizes.map((n) => [n, dumpReps ?? (n > 5000 ? 6 : 12)])),
  // Changes made with the Node watcher before its per-change figures are taken (not counted).
  warmup: { b: int('warmup', opts.warmup), g: int('warmup', opts.warmup) },
  out: '/run/usip-vm/results/mount-watch.json',
  profile: opts.profile,
};
// Node's wake-up floor (node-wake's pipe mode) in the per-change boot, each round, when the
// Node watcher (b) is measured there: issue 12's per-change target is (b) / this floor.
{
  const wakes = int('floor', opts.floor);
  config.floor = wakes > 0 && changes.b > 0 ? { wakes, warmup: 50 } : undefined;
}
for (const k of config.stormWatchers) if (!['none', ...WATCHER_KEYS].includes(k)) fail(`--storm-watchers: none, ${WATCHER_KEYS.join(', ')} (got ${k})`);

// The C helpers, built on the host; the guest sees this directory through its 9p root.
const bin = join(here, 'build');
mkdirSync(bin, { recursive: true });
for (const [out, src] of [
  ['mw-watcher', 'watcher.c'],
  ['mw-mounter', 'mounter.c'],
  ['mw-usip-watcher', 'usip-watcher.c'],
  ['mw-fanotify-watcher', 'fanotify-watcher.c'],
]) {
  try {
    execFileSync('gcc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', join(bin, out), join(here, 'mount-watch', src)], { stdio: 'inherit' });
  } catch {
    fail(`gcc could not build ${src}`);
  }
}
config.bin = bin;

// On the host first (real CPU, no TCG; seconds): the user-space part of the Node client per
// change (host-replay.mjs), and, where this user may mount in a private namespace, what one
// whole-table read costs watchers (a) and (c) on the host's own kernel at each N.
const hostSide = { replay: undefined, wholeTable: undefined };
try {
  hostSide.replay = JSON.parse(execFileSync(process.execPath, [join(here, 'mount-watch', 'host-replay.mjs'), sizes.join(',')], { encoding: 'utf8' }));
} catch (error) {
  hostSide.replayError = String(error.message ?? error).split('\n')[0];
}
{
  const dir = join(bin, 'host-mounts');
  const script = [
    'set -e',
    `mkdir -p ${dir} && mount -t tmpfs bench ${dir} && mkdir -p ${dir}/src ${dir}/n && mount -t tmpfs bench-n ${dir}/n`,
    'base=$(wc -l < /proc/self/mountinfo); done_=0',
    ...sizes.map((n) =>
      [
        `want=$((${n} - base)); [ $want -gt $done_ ] && ${bin}/mw-mounter populate ${dir}/src ${dir}/n $done_ $want >/dev/null && done_=$want`,
        `echo "size ${n} $(wc -l < /proc/self/mountinfo)"`,
        `for i in 1 2 3 4 5; do echo quit | ${bin}/mw-watcher mountinfo /x /y /z | sed 's/^/a /'; echo quit | ${bin}/mw-watcher listmount /x /y /z | sed 's/^/c /'; done`,
      ].join('\n'),
    ),
  ].join('\n');
  try {
    const text = execFileSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const whole = {};
    let n;
    for (const line of text.split('\n')) {
      const f = line.split(' ');
      if (f[0] === 'size') whole[(n = f[1])] = { mounts: Number(f[2]), a: [], c: [] };
      else if ((f[0] === 'a' || f[0] === 'c') && f[1] === 'ready') whole[n][f[0]].push(Number(f[3]) / 1e6);
    }
    hostSide.wholeTable = whole;
  } catch (error) {
    hostSide.wholeTableError = `could not mount in a private namespace on the host: ${String(error.stderr || error.message).trim().split('\n')[0]}`;
  }
}

if (opts['host-only']) {
  console.log(report({ date: new Date().toISOString(), kernel: '-', cpus: 0, sizes: Object.fromEntries(sizes.map((n) => [n, { perChange: [] }])), hostSide, host: { kernel: execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim() } }));
  process.exit(0);
}

const kernels = [];
for (const selector of opts.kernels.split(',').filter(Boolean)) {
  try {
    kernels.push(...(await resolveKernels(selector)));
  } catch (error) {
    fail(`--kernels ${selector}: ${error.message}`);
  }
}
if (!existsSync(join(root, 'packages/client/dist/index.js'))) fail('packages/client is not built: npx nx run client:build');

/** One boot of `kernel` running `cfg`; its results, and what the run was. */
async function boot(kernel, module, cfg, vcpus) {
  console.error(`mount-watch: booting ${kernel.release} (TCG, ${vcpus} vCPU(s)); config ${JSON.stringify({ ...cfg, bin: undefined })}`);
  const r = await runInVm({
    kernel,
    modules: module ? [module] : [],
    command: ['unshare', '-m', '--propagation', 'private', process.execPath, join(here, 'mount-watch', 'guest.mjs'), JSON.stringify(cfg)],
    cwd: root,
    timeoutMs: int('timeout', opts.timeout) * 1000,
    memoryMb: 3072,
    cpus: vcpus,
    stream: process.stderr,
  });
  const resultsFile = join(r.resultsDir, 'mount-watch.json');
  if (!r.ok) {
    console.error(formatVerdict(r));
    if (!existsSync(resultsFile)) fail(`the benchmark did not run to the end on ${kernel.release}`);
    console.error('mount-watch: the run failed; what it measured before that follows');
  }
  if (!existsSync(resultsFile)) fail(`the guest wrote no ${resultsFile}`);
  let qemu;
  try {
    qemu = readFileSync(join(r.runDir, 'qemu-command.txt'), 'utf8').match(/-accel (\S+)/)?.[1];
  } catch {
    // an older harness: not recorded
  }
  return { r, results: JSON.parse(readFileSync(resultsFile, 'utf8')), qemu, resultsFile };
}

const started = performance.now();
const hostBefore = loadavg();
// Per kernel, one after the other (one VM at a time). Per change and the dump comparison on one
// vCPU, where a wake-up is a context switch (see --cpus); the storm and the cost to mount(2) on
// --storm-cpus, where watcher and mounter run at the same time, as they would on a real machine.
// Each comparison is within one boot.
const perKernel = [];
const runs = [];
for (const kernel of kernels) {
  const module = join(root, 'packages/kernel-module/build', kernel.release, 'usip.ko');
  const moduleMissing = existsSync(module) ? undefined : `${relative(root, module)} is not built`;
  if (moduleMissing) console.error(`mount-watch: ${moduleMissing}: ${kernel.release} runs without the module's watchers (b, b'), the dump comparison and the listener cost`);
  const kcfg = { ...config, module: !moduleMissing, moduleMissing };
  const perChangeCfg = { ...kcfg, storm: 0, stormWatchers: [], pairs: 0 };
  const stormCfg = { ...kcfg, watchers: [], floor: undefined, dumpReps: undefined, sizes: [sizes[sizes.length - 1]], pairs: moduleMissing ? 0 : config.pairs };
  const wantStorm = config.stormWatchers.length > 0 || stormCfg.pairs > 0;
  const first = await boot(kernel, moduleMissing ? undefined : module, perChangeCfg, int('cpus', opts.cpus));
  runs.push(first);
  const results = first.results;
  results.perChangeCpus = int('cpus', opts.cpus);
  results.qemuAccel = first.qemu;
  if (wantStorm) {
    const second = await boot(kernel, moduleMissing ? undefined : module, stormCfg, int('storm-cpus', opts['storm-cpus']));
    runs.push(second);
    const last = String(sizes[sizes.length - 1]);
    results.sizes[last].storm = second.results.sizes[last]?.storm ?? [];
    results.sizes[last].listenerCost = second.results.sizes[last]?.listenerCost;
    results.stormCpus = int('storm-cpus', opts['storm-cpus']);
    results.skipped = { ...second.results.skipped, ...results.skipped };
  }
  results.vmSeconds = runs.slice(-1 - (wantStorm ? 1 : 0)).reduce((t, x) => t + x.r.durationMs, 0) / 1000;
  perKernel.push(results);
}
const r = { ok: runs.every((x) => x.r.ok), durationMs: runs.reduce((t, x) => t + x.r.durationMs, 0) };
const resultsFile = runs.map((x) => x.resultsFile).join(', ');
// What the host was and did: the figures are only comparable within one run.
const results = {
  date: new Date().toISOString(),
  kernels: perKernel,
  hostSide,
  host: {
    kernel: execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim(),
    cpu: cpus()[0]?.model,
    cpus: cpus().length,
    loadavgBefore: hostBefore,
    loadavgAfter: loadavg(),
    qemuAccel: runs[0]?.qemu,
    vmSeconds: r.durationMs / 1000,
  },
};
const keep = join(bin, 'mount-watch.json');
writeFileSync(keep, `${JSON.stringify(results, null, 2)}\n`);
console.error(`mount-watch: ${((performance.now() - started) / 1000).toFixed(0)} s; raw results: ${resultsFile} (copied to ${relative(process.cwd(), keep)})`);
console.log(report(results));
process.exit(r.ok ? 0 : 1);
