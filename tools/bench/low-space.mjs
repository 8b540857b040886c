#!/usr/bin/env node
// What the module's low-space check costs in the 6.12 guest (1 vCPU, QEMU TCG): CPU per watched
// mount and check, measured side by side in one boot (windows without a listener alternate with
// windows with one listener watching every mount at a short interval). Asserts nothing.
//   node tools/bench/low-space.mjs [--mounts 200] [--interval-ms 100] [--window 10] [--rounds 4]
import { existsSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { formatVerdict, resolveKernels, runInVm } from '@usip/vm';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const { values: opts } = parseArgs({
  options: {
    mounts: { type: 'string', default: '200' },
    'interval-ms': { type: 'string', default: '100' },
    window: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '4' },
  },
});
const int = (name, min) => {
  const v = Number(opts[name]);
  if (!Number.isInteger(v) || v < min) {
    console.error(`low-space: --${name} must be an integer of at least ${min} (got ${opts[name]})`);
    process.exit(1);
  }
  return v;
};
const [mounts, intervalMs, windowS, rounds] = [int('mounts', 1), int('interval-ms', 100), int('window', 1), int('rounds', 1)];
const [kernel] = await resolveKernels('6.12');
const module = join(root, 'packages/kernel-module/build', kernel.release, 'usip.ko');
if (!existsSync(module)) {
  console.error(`low-space: ${relative(root, module)} is missing: build it with npx nx run kernel-module:build`);
  process.exit(1);
}
const run = await runInVm({
  kernel,
  modules: [module],
  command: ['/usr/bin/python3', 'tools/bench/low-space/guest.py', String(mounts), String(intervalMs), String(windowS), String(rounds)],
  cwd: root,
  cpus: 1,
  memoryMb: 2048,
  timeoutMs: (2 * rounds * (windowS + 3) + 120) * 1000,
});
if (!run.ok) {
  console.error(formatVerdict(run));
  console.error(run.output);
  process.exit(1);
}
const lines = run.output
  .split('\n')
  .filter((line) => line.startsWith('{'))
  .map((line) => JSON.parse(line));
const [setup] = lines;
const windows = lines.filter((x) => x.mode !== undefined);
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
};
// Per round: the listener's window minus the same round's window without it, per second.
const extra = (key) =>
  median(
    [...new Set(windows.map((w) => w.round))].map((r) => {
      const on = windows.find((w) => w.round === r && w.mode === 'listener');
      const off = windows.find((w) => w.round === r && w.mode === 'none');
      return on[key] / on.seconds - off[key] / off.seconds;
    }),
  );
const watched = median(windows.filter((w) => w.mode === 'listener').map((w) => w.watched));
const checksPerSecond = (watched * 1000) / intervalMs;
const kworkerUs = extra('kworker_ns') / 1000;
const busyUs = extra('busy_ms') * 1000;
const perCheck = (us) => (us / checksPerSecond).toFixed(2);
console.log(
  `low-space: ${kernel.release}, 1 vCPU, QEMU TCG; ${setup.mounts} tmpfs mounts (${setup.mountinfo} in mountinfo), ` +
    `one listener watching every mount (${watched} watched) every ${intervalMs} ms; ${rounds} rounds of ${windowS} s windows, medians`,
);
console.log('| measured | CPU per second with the listener, above without | per mount check | per watched mount per second at the default 1 s |');
console.log('|---|---|---|---|');
console.log(`| kworker threads (schedstat) | ${(kworkerUs / 1000).toFixed(2)} ms | ${perCheck(kworkerUs)} µs | ${perCheck(kworkerUs)} µs |`);
// /proc/stat is sampled at the tick, which a tickless TCG guest mostly skips: shown, not used.
console.log(`\n(whole guest by /proc/stat, tick-sampled and unreliable under TCG: ${(busyUs / 1000).toFixed(2)} ms per second more with the listener)`);
console.log(`\n${checksPerSecond} mount checks per second; raw windows:`);
for (const w of windows) {
  console.log(`  round ${w.round} ${w.mode.padEnd(8)} ${w.seconds.toFixed(2)} s: kworker ${(w.kworker_ns / 1e6).toFixed(2)} ms, busy ${w.busy_ms.toFixed(0)} ms`);
}
