// The guest side of the mount-watch benchmark (tools/bench/mount-watch.mjs boots the VM and
// runs this under `unshare -m --propagation private`, as root, with usip.ko loaded).
//
//   node guest.mjs CONFIG_JSON
//
// Builds a mount table of N mounts in a private mount namespace and measures, in this one
// boot, side by side, the watchers (a) C: poll + re-read + parse mountinfo; (b) Node:
// UsipClient.watchMounts(); (bc) the same protocol from a lean C client (what the module costs
// apart from Node); (c) C: poll + listmount(2) + statmount(2) of the whole table:
//   - per change: each watcher alone, K paced changes (a tmpfs mounted on MARKER, then
//     unmounted, each time waiting until the watcher has reported it): its CPU per change and
//     its latency from the mount(2)/umount(2) return; watchers in rotating order, in rounds;
//   - dump vs mountinfo: UsipClient.mounts() vs readFileSync(mountinfo) + parseMountinfo() in
//     this process, alternating; and the same two kernel renderings read from C;
//   - storm (at the largest N): a C mounter makes STORM bind mounts, STORM umounts, then a
//     tmpfs on END, as fast as it can, with each watcher alone (and with none): the watcher's
//     CPU from the storm's start until it has caught up with the final state;
//   - mount(2) cost of a listener: blocks of mount+umount pairs rotating between no usip
//     listener (hooks disarmed), a listener in another namespace, one here, watchMounts() here.
// On kernels with fanotify mount events (6.15+) also (f) C: fanotify FAN_MNT_ATTACH/DETACH +
// one statmount(2) per event; and (g) Node: UsipClient.watchMounts() on the client's native
// backend (no module: fanotify + statmount through the binding), where the client has it.
// Without usip.ko (config.module false: not built for this kernel) the module's watchers, the
// dump comparison and the listener cost are left out, and the rest runs.
// Everything goes to CONFIG.out as JSON; a short log goes to stderr.
import { spawn, execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { GenlSocket } from '@usip/netlink-native';
import * as usip from '@usip/client';

const { UsipClient, parseMountinfo, protocol, decodeAttributes } = usip;
const here = dirname(fileURLToPath(import.meta.url));
const config = JSON.parse(process.argv[2] ?? '{}');
const BIN = config.bin;
const BASE = config.base ?? '/tmp/bench';
const SRC = `${BASE}/src`; // bind source: outside the mounts that hold the N and storm mounts
const NDIR = `${BASE}/n`; // a tmpfs holding the N mounts
const SDIR = `${BASE}/s`; // a tmpfs holding the storm's mounts
const MARKER = `${BASE}/marker`;
const END = `${BASE}/end`;
const PAIR = `${BASE}/pair`;
const WATCHERS = {
  a: { name: 'poll mountinfo + re-read + parse (C)', cmd: [`${BIN}/mw-watcher`, 'mountinfo', MARKER, SDIR, END] },
  b: {
    name: 'USIP watchMounts(): events + mount-get by id (Node)',
    // --profile: a V8 CPU profile of each run of the USIP watcher, into the results directory.
    cmd: [process.execPath, ...(config.profile ? ['--cpu-prof', `--cpu-prof-dir=${dirname(config.out)}/profiles`] : []), join(here, 'usip-watcher.mjs'), MARKER, SDIR, END],
  },
  bc: { name: 'USIP, lean C client: events + mount-get by unique id', cmd: [`${BIN}/mw-usip-watcher`, MARKER, SDIR, END] },
  c: { name: 'poll mountinfo + listmount + statmount (C)', cmd: [`${BIN}/mw-watcher`, 'listmount', MARKER, SDIR, END] },
  f: { name: 'fanotify mount events + statmount per event (C)', cmd: [`${BIN}/mw-fanotify-watcher`, MARKER, SDIR, END] },
  g: {
    name: 'USIP watchMounts() on the native backend: fanotify + statmount (Node, no module)',
    cmd: [process.execPath, ...(config.profile ? ['--cpu-prof', `--cpu-prof-dir=${dirname(config.out)}/profiles`] : []), join(here, 'usip-watcher.mjs'), '--backend', 'kernel', MARKER, SDIR, END],
  },
};
// Whether a watcher can run on this kernel: a command that exits 0, or prints why not.
const PROBES = {
  f: [`${BIN}/mw-fanotify-watcher`, '--probe'],
  g: [process.execPath, join(here, 'usip-watcher.mjs'), '--probe', '--backend', 'kernel'],
};
const hasModule = config.module !== false;
const USIP = new Set(['b', 'bc']);
const log = (...args) => console.error(`[${((performance.now() - t0) / 1000).toFixed(1)} s]`, ...args);
const t0 = performance.now();

// ---------------------------------------------------------------------------------------------
// Child processes that speak lines

class Proc {
  constructor(name, argv) {
    this.name = name;
    this.child = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    this.lines = [];
    this.waiters = [];
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        this.exit = { code, signal };
        for (const w of this.waiters) w.reject(new Error(`${name} exited (${code ?? signal}) while waiting for ${w.what}; stderr: ${this.stderr.slice(-2000)}`));
        this.waiters = [];
        resolve(this.exit);
      });
    });
    this.stderr = '';
    this.child.stderr.on('data', (chunk) => {
      this.stderr += chunk;
      process.stderr.write(`${name}: ${chunk}`);
    });
    this.child.stdin.on('error', () => {});
    createInterface({ input: this.child.stdout }).on('line', (line) => {
      const i = this.waiters.findIndex((w) => w.test(line));
      if (i >= 0) {
        const [w] = this.waiters.splice(i, 1);
        clearTimeout(w.timer);
        w.resolve(line);
      } else {
        this.lines.push(line);
      }
    });
  }

  /** The first line (already received or to come) whose first word is `prefix` (or one of them). */
  next(prefix, timeoutMs = 600_000) {
    const words = [prefix].flat();
    const test = (line) => words.includes(line.split(' ', 1)[0]);
    const i = this.lines.findIndex(test);
    if (i >= 0) return Promise.resolve(this.lines.splice(i, 1)[0]);
    if (this.exit) return Promise.reject(new Error(`${this.name} has exited (${this.exit.code ?? this.exit.signal}); stderr: ${this.stderr.slice(-2000)}`));
    return new Promise((resolve, reject) => {
      const w = { test, resolve, reject, what: prefix };
      w.timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`${this.name}: no "${prefix}" line within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  send(line) {
    this.child.stdin.write(`${line}\n`);
  }

  async quit() {
    this.send('quit');
    this.child.stdin.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 30_000);
    await this.exited;
    clearTimeout(timer);
  }
}

const fields = (line) => line.split(' ').slice(1);
const num = (s) => Number(s);

/** Runs a mounter subcommand to completion and returns its last stdout line's fields. */
async function mounter(...args) {
  const p = new Proc(`mounter ${args[0]}`, [`${BIN}/mw-mounter`, ...args]);
  const line = await p.next(args[0], 3_600_000);
  await p.exited;
  if (p.exit.code !== 0) throw new Error(`mounter ${args.join(' ')} failed: ${p.stderr}`);
  return fields(line);
}

// One long-lived mounter for the paced changes.
let server;
async function serve(command) {
  server.send(command);
  const line = await server.next(['ok', 'err'], 60_000);
  if (line.startsWith('err')) throw new Error(`mounter: ${command}: ${line}`);
  const [before, after] = fields(line).map(BigInt);
  return { before, after };
}

// ---------------------------------------------------------------------------------------------
// The module

const client = hasModule ? await UsipClient.connect() : undefined;
const raw = hasModule ? new GenlSocket() : undefined;

/** The module's counters, mount-hooks included (read raw: the client may not return it). */
async function stats() {
  if (!hasModule) return undefined;
  const [reply] = await raw.request(client.family.id, protocol.Command.stats, protocol.FAMILY_VERSION);
  return decodeAttributes(protocol.STATS_ATTRIBUTE_SET, reply.attributes);
}

/** Waits until the mount hooks are armed (true) or disarmed (false): they go a second after
 *  the last mtab listener. */
async function hooks(armed, timeoutMs = 10_000) {
  if (!hasModule) return undefined;
  const until = performance.now() + timeoutMs;
  for (;;) {
    const s = await stats();
    if ((s.mountHooks ?? 0) > 0 === armed) return s;
    if (performance.now() > until) throw new Error(`the mount hooks did not become ${armed ? 'armed' : 'disarmed'} (stats: ${JSON.stringify(s, (k, v) => (typeof v === 'bigint' ? String(v) : v))})`);
    await sleep(100);
  }
}

/** CPU time so far of each thread of a process, by thread id (schedstat: ns on CPU). */
function threadCpu(pid) {
  const out = new Map();
  let tids = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const comm = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      const ns = Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      out.set(tid, { comm, ns });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** CPU ms per thread name between two threadCpu() snapshots (threads alive at both). */
function threadDelta(before, after) {
  const byName = {};
  for (const [tid, a] of after) {
    const b = before.get(tid);
    const ms = (a.ns - (b?.ns ?? 0)) / 1e6;
    if (ms > 0) byName[a.comm] = (byName[a.comm] ?? 0) + ms;
  }
  return byName;
}

const mountinfoLines = () => readFileSync('/proc/self/mountinfo', 'utf8').split('\n').length - 1;

// ---------------------------------------------------------------------------------------------
// Phases

async function startWatcher(key) {
  const w = new Proc(key, WATCHERS[key].cmd);
  const ready = fields(await w.next('ready', 600_000));
  return { w, mounts: num(ready[0]), learnMs: num(ready[1]) / 1e6, receiveBufferSize: ready[2] === undefined ? undefined : num(ready[2]) };
}

const optional = (f, i) => (f[i] === undefined ? undefined : num(f[i]));

async function cpuOf(w) {
  w.send('cpu');
  const f = fields(await w.next('cpu'));
  // (f) answers "cpu user sys events resyncs statmounts"; the USIP watchers "... changes resyncs
  // table-dumps listener-dumps"
  if (w.name === 'f') return { userUs: num(f[0]), sysUs: num(f[1]), count: num(f[2]), resyncs: optional(f, 3), statmounts: optional(f, 4) };
  return { userUs: num(f[0]), sysUs: num(f[1]), count: num(f[2]), resyncs: optional(f, 3), tableDumps: optional(f, 4), listenerDumps: optional(f, 5) };
}

/**
 * Waits until the watcher is quiescent: start-up work done (for Node: compilation and the
 * garbage collection of the first dump, seconds under TCG). Returns its idle CPU rate, ms/s.
 */
async function settle(w) {
  await sleep(config.settleMs ?? 1000);
  const window = config.idleMs ?? 1000;
  const until = performance.now() + (config.settleMaxMs ?? 30_000);
  let rate;
  for (;;) {
    const a = await cpuOf(w);
    await sleep(window);
    const b = await cpuOf(w);
    rate = (b.userUs + b.sysUs - a.userUs - a.sysUs) / window;
    if (rate <= (config.idleThreshold ?? 10) || performance.now() > until) return rate;
  }
}

/** K paced changes with watcher `key` alone. */
async function perChange(key, k) {
  if (!USIP.has(key)) await hooks(false);
  const { w, mounts, learnMs, receiveBufferSize } = await startWatcher(key);
  // Steady state: a JIT-compiled watcher (Node) runs its hot paths in the interpreter at first,
  // which under TCG costs it several times its steady per-change CPU; a long-running daemon is
  // past that. The C watchers have nothing to warm up.
  const warm = config.warmup?.[key] ?? 0;
  for (let i = 0; i < warm / 2; i++) {
    for (const [command, expect] of [
      [`tmpfs ${MARKER}`, 'marker'],
      [`umount ${MARKER}`, 'marker'],
    ]) {
      await serve(command);
      await w.next(expect, 600_000);
    }
  }
  // What it costs when nothing happens, once start-up work is done.
  const idleCpuMsPerS = await settle(w);
  const before = await cpuOf(w);
  const threads0 = threadCpu(w.child.pid);
  const phaseStartNs = process.hrtime.bigint();
  const latency = { mount: [], umount: [] };
  const syscallUs = { mount: [], umount: [] };
  for (let i = 0; i < k / 2; i++) {
    for (const [kind, command, expect] of [
      ['mount', `tmpfs ${MARKER}`, 'marker'],
      ['umount', `umount ${MARKER}`, 'marker'],
    ]) {
      const { before: tb, after: ta } = await serve(command);
      const learned = BigInt(fields(await w.next(expect, 600_000))[1]);
      latency[kind].push(Number(learned - ta) / 1e6);
      syscallUs[kind].push(Number(ta - tb) / 1e3);
    }
  }
  const after = await cpuOf(w);
  const threads = threadDelta(threads0, threadCpu(w.child.pid));
  await w.quit();
  const cpuUs = after.userUs + after.sysUs - before.userUs - before.sysUs;
  return {
    watcher: key,
    changes: k,
    warmup: warm,
    mounts,
    initialLearnMs: learnMs,
    idleCpuMsPerS,
    threadsCpuMs: threads,
    phaseStartNs,
    phaseEndNs: process.hrtime.bigint(),
    cpuUs,
    userUs: after.userUs - before.userUs,
    sysUs: after.sysUs - before.sysUs,
    cpuPerChangeUs: cpuUs / k,
    reads: after.count - before.count,
    resyncs: after.resyncs === undefined ? undefined : after.resyncs - before.resyncs,
    tableDumps: after.tableDumps === undefined ? undefined : after.tableDumps - before.tableDumps,
    listenerDumps: after.listenerDumps === undefined ? undefined : after.listenerDumps - before.listenerDumps,
    statmounts: after.statmounts === undefined ? undefined : after.statmounts - before.statmounts,
    receiveBufferSize,
    latencyMs: latency,
    syscallUs,
  };
}

/**
 * Node's own wake-up floor in this boot: node-wake's pipe mode (a Node process woken by a byte
 * on a pipe every 20 ms, doing nothing else), so that the Node watcher's CPU per change is
 * compared with what any Node daemon pays per wake-up here, side by side.
 */
async function nodeFloor(wakes, warmup) {
  const text = execFileSync(process.execPath, [join(here, '..', 'node-wake', 'guest.mjs'), 'pipe', String(wakes), String(warmup)], { encoding: 'utf8' });
  const line = text.split('\n').find((x) => x.startsWith('{'));
  if (line === undefined) throw new Error(`node-wake pipe printed no result: ${text}`);
  return JSON.parse(line);
}

async function dumpVsMountinfo(reps) {
  const dump = [];
  const parse = [];
  let dumpMounts = 0;
  let parseMounts = 0;
  // Warm-up (JIT, caches), not counted.
  await client.mounts();
  parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8'));
  for (let i = 0; i < reps; i++) {
    const order = i % 2 === 0 ? ['dump', 'parse'] : ['parse', 'dump'];
    for (const what of order) {
      const c0 = process.cpuUsage();
      const s = process.hrtime.bigint();
      if (what === 'dump') {
        const table = await client.mounts();
        dumpMounts = table.mounts.length;
      } else {
        parseMounts = parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8')).length;
      }
      const wallMs = Number(process.hrtime.bigint() - s) / 1e6;
      const c = process.cpuUsage(c0);
      (what === 'dump' ? dump : parse).push({ wallMs, cpuMs: (c.user + c.system) / 1e3 });
    }
  }
  // The same in C, without Node: the kernel's two renderings, read (and the dump parsed).
  const c = new Proc('dump-bench', [`${BIN}/mw-usip-watcher`, '--dump-bench', String(reps)]);
  const inC = [];
  for (let i = 0; i < reps; i++) {
    const [readNs, dumpNs, dumpParseNs, mounts] = fields(await c.next('dump', 600_000)).map(Number);
    inC.push({ readMountinfoMs: readNs / 1e6, usipDumpMs: dumpNs / 1e6, usipDumpParseMs: dumpParseNs / 1e6, mounts });
  }
  await c.exited;
  return { reps, dumpMounts, parseMounts, dump, parse, inC };
}

async function storm(key, count) {
  let w;
  let before;
  let threads0;
  let startMounts;
  let receiveBufferSize;
  if (!USIP.has(key)) await hooks(false);
  if (key !== 'none') {
    const started = await startWatcher(key);
    w = started.w;
    startMounts = started.mounts;
    receiveBufferSize = started.receiveBufferSize;
    await settle(w);
    before = await cpuOf(w);
    threads0 = threadCpu(w.child.pid);
  }
  const s0 = await stats();
  log(`storm of ${count} with ${key === 'none' ? 'no watcher' : `watcher ${key}`}`);
  const caughtLine = w ? w.next('caught', 3_600_000) : undefined;
  const f = (await mounter('storm', SRC, SDIR, String(count), END)).map(BigInt);
  const [tStart, tMounted, tUnmounted, tEnd] = f;
  const result = {
    watcher: key,
    count,
    mounts: startMounts,
    // SO_RCVBUF of the listener as the kernel applied it: (b) and (b') must absorb alike.
    receiveBufferSize,
    mountPhaseMs: Number(tMounted - tStart) / 1e6,
    umountPhaseMs: Number(tUnmounted - tMounted) / 1e6,
    stormMs: Number(tEnd - tStart) / 1e6,
    mounterCpuMs: (Number(f[4]) + Number(f[5])) / 1e3,
  };
  if (w) {
    const c = fields(await caughtLine);
    const tCaught = BigInt(c[0]);
    const cpuUs = num(c[1]) + num(c[2]) - before.userUs - before.sysUs;
    Object.assign(result, {
      cpuToCatchUpMs: cpuUs / 1e3,
      // Where it went, by thread name (schedstat), up to a moment after it caught up.
      threadsCpuMs: threadDelta(threads0, threadCpu(w.child.pid)),
      caughtUpAfterEndMs: Number(tCaught - tEnd) / 1e6,
      caughtUpAfterStartMs: Number(tCaught - tStart) / 1e6,
      reads: num(c[3]) - before.count,
      resyncs: c[4] === undefined ? undefined : num(c[4]) - before.resyncs,
      tableDumps: c[5] === undefined ? undefined : num(c[5]) - before.tableDumps,
      listenerDumps: c[6] === undefined ? undefined : num(c[6]) - before.listenerDumps,
    });
  }
  const s1 = await stats();
  if (s1) result.module = { posted: Number(s1.posted - s0.posted), dropped: Number(s1.dropped - s0.dropped), delivered: Number(s1.delivered - s0.delivered) };
  await serve(`umount ${END}`);
  if (w) await w.quit();
  log(`  ${JSON.stringify(result)}`);
  return result;
}

/**
 * mount+umount pairs from C, in blocks that rotate between conditions:
 *  - none: no usip listener (hooks disarmed);
 *  - elsewhere: one mtab listener in another mount namespace (hooks armed, but nobody wants
 *    this namespace's events: what the probes alone cost);
 *  - here: one mtab listener in this namespace that only receives (lean C: every change
 *    becomes an event, delivered);
 *  - watcher: UsipClient.watchMounts() in this namespace (Node: events, and a mount-get for
 *    each mount event, competing for namespace_sem and the CPUs).
 */
async function listenerCost(pairs, blocks) {
  const conditions = ['none', 'elsewhere', 'here', 'watcher'];
  const out = { pairsPerBlock: pairs };
  for (const c of conditions) out[c] = [];
  for (let b = 0; b < blocks * conditions.length; b++) {
    const condition = conditions[b % conditions.length];
    let listener;
    if (condition === 'none') {
      await hooks(false);
    } else {
      const drain = [`${BIN}/mw-usip-watcher`, '--drain'];
      const argv =
        condition === 'elsewhere'
          ? ['unshare', '-m', '--propagation', 'private', ...drain]
          : condition === 'here'
            ? drain
            : WATCHERS.b.cmd;
      listener = new Proc(`listener (${condition})`, argv);
      await listener.next('ready', 600_000);
      await hooks(true);
    }
    const [count, elapsed, user, sys, inMount] = (await mounter('pairs', SRC, PAIR, String(pairs))).map(Number);
    const block = {
      elapsedMs: elapsed / 1e6,
      perPairUs: elapsed / 1e3 / count,
      mountUs: inMount / 1e3 / count,
      umountUs: (elapsed - inMount) / 1e3 / count,
      mounterCpuPerPairUs: (user + sys) / count,
    };
    if (condition === 'watcher') {
      await sleep(1000);
      const c = await cpuOf(listener);
      Object.assign(block, { events: c.count, resyncs: c.resyncs });
      await listener.quit();
    } else if (listener) {
      listener.child.stdin.end();
      const [events, lost] = fields(await listener.next('events', 120_000)).map(Number);
      await listener.exited;
      Object.assign(block, { events, lost });
    }
    out[condition].push(block);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The run

const results = {
  date: new Date().toISOString(),
  kernel: execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim(),
  cpus: Number(execFileSync('nproc', { encoding: 'utf8' })),
  config,
  module: hasModule ? await client.ping() : undefined,
  sizes: {},
  skipped: {},
};
if (hasModule) {
  results.module.cookie = undefined;
  log(`kernel ${results.kernel}, usip ${results.module.moduleVersion}, features ${results.module.features.join(',')}`);
} else {
  log(`kernel ${results.kernel}, no usip.ko: ${config.moduleMissing ?? 'not loaded'}`);
  for (const k of ['b', 'bc']) if (config.changes?.[k] || config.stormWatchers.includes(k)) results.skipped[k] = `no usip.ko for this kernel (${config.moduleMissing ?? 'not loaded'})`;
  config.watchers = config.watchers.filter((k) => USIP.has(k) === false);
  config.stormWatchers = config.stormWatchers.filter((k) => !USIP.has(k));
  config.dumpReps = undefined;
  config.pairs = 0;
}
// The watchers this kernel (or the client) may not have: probed, left out with the reason.
for (const [key, argv] of Object.entries(PROBES)) {
  if (!config.watchers.includes(key) && !config.stormWatchers.includes(key)) continue;
  let why;
  try {
    execFileSync(argv[0], argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    why = `${String(error.stdout ?? '').trim() || String(error.stderr ?? '').trim().split('\n').pop() || error.message}`;
  }
  if (why !== undefined) {
    results.skipped[key] = why;
    config.watchers = config.watchers.filter((k) => k !== key);
    config.stormWatchers = config.stormWatchers.filter((k) => k !== key);
    log(`watcher ${key} left out: ${why}`);
  }
}
const needed = [...(config.watchers.includes('b') || config.stormWatchers.includes('b') ? ['watchMounts'] : []), ...(config.dumpReps ? ['mounts'] : [])];
const missing = needed.filter((m) => typeof client?.[m] !== 'function');
if (missing.length > 0) throw new Error(`@usip/client has no ${missing.join(', ')}: build packages/client first`);

mkdirSync(BASE, { recursive: true });
execFileSync('mount', ['-t', 'tmpfs', 'bench', BASE]);
for (const d of [SRC, NDIR, SDIR, MARKER, END, PAIR]) mkdirSync(d, { recursive: true });
execFileSync('mount', ['-t', 'tmpfs', 'bench-n', NDIR]);
execFileSync('mount', ['-t', 'tmpfs', 'bench-s', SDIR]);
server = new Proc('mounter serve', [`${BIN}/mw-mounter`, 'serve']);

let populated = 0;
const sizes = [...config.sizes].sort((x, y) => x - y);
for (const n of sizes) {
  const need = n - mountinfoLines();
  if (need > 0) {
    const [count, ns] = await mounter('populate', SRC, NDIR, String(populated), String(populated + need));
    populated += need;
    log(`N = ${n}: ${count} bind mounts in ${(ns / 1e6).toFixed(0)} ms`);
  }
  const r = { mounts: mountinfoLines(), perChange: [], floor: [], dump: undefined, storm: [], listenerCost: undefined };
  results.sizes[n] = r;
  for (let round = 0; round < config.rounds; round++) {
    const order = ['a', 'b', 'bc', 'c', 'f', 'g'].filter((k) => config.watchers.includes(k));
    for (let i = 0; i < round % order.length; i++) order.push(order.shift());
    for (const key of order) {
      const k = config.changes[key];
      const one = await perChange(key, k);
      one.round = round;
      r.perChange.push(one);
      log(`N = ${n}, round ${round}, ${key}: ${(one.cpuPerChangeUs / 1e3).toFixed(3)} ms CPU per change, ` + `latency median ${median([...one.latencyMs.mount, ...one.latencyMs.umount]).toFixed(2)} ms`);
    }
    if (config.floor?.wakes) {
      const one = await nodeFloor(config.floor.wakes, config.floor.warmup);
      one.round = round;
      r.floor.push(one);
      log(`N = ${n}, round ${round}, Node's wake-up floor (pipe): ${(one.cpuUs / 1e3).toFixed(3)} ms CPU per wake-up`);
    }
  }
  if (config.dumpReps?.[n]) {
    r.dump = await dumpVsMountinfo(config.dumpReps[n]);
    log(`N = ${n}: dump ${median(r.dump.dump.map((x) => x.wallMs)).toFixed(1)} ms, mountinfo ${median(r.dump.parse.map((x) => x.wallMs)).toFixed(1)} ms`);
  }
  if (n === sizes[sizes.length - 1]) {
    for (const key of config.stormWatchers) r.storm.push(await storm(key, config.storm));
    if (config.pairs) {
      r.listenerCost = await listenerCost(config.pairs, config.pairBlocks);
      log(`listener cost: ${JSON.stringify(r.listenerCost)}`);
    }
  }
  writeFileSync(config.out, JSON.stringify(results, (k, v) => (typeof v === 'bigint' ? String(v) : v), 2));
}

function median(xs) {
  const s = [...xs].sort((x, y) => x - y);
  const m = Math.floor(s.length / 2);
  return s.length === 0 ? NaN : s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

await server.quit();
raw?.close();
await client?.close();
log('done');
