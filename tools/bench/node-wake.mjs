#!/usr/bin/env node
// What one wake-up costs a Node process in the 6.12 guest (1 vCPU, QEMU TCG), in CPU: woken by
// a pipe (any Node daemon's floor), by a bare usip mtab listener, and by watchMounts(); rounds
// alternate the three, and the ratios are to the pipe. It tells how much of the Node watcher's
// per-change cost in the mount-watch benchmark is Node itself under TCG. Asserts nothing.
//   node tools/bench/node-wake.mjs [--rounds 2] [--wakes 150] [--warmup 50]
import { existsSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { formatVerdict, resolveKernels, runInVm } from '@usip/vm';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const { values: opts } = parseArgs({
  options: {
    rounds: { type: 'string', default: '2' },
    wakes: { type: 'string', default: '150' },
    warmup: { type: 'string', default: '50' },
  },
});
const int = (name) => {
  const v = Number(opts[name]);
  if (!Number.isInteger(v) || v < 1) {
    console.error(`node-wake: --${name} must be a positive integer (got ${opts[name]})`);
    process.exit(1);
  }
  return v;
};
const [rounds, wakes, warmup] = [int('rounds'), int('wakes'), int('warmup')];
const [kernel] = await resolveKernels('6.12');
const module = join(root, 'packages/kernel-module/build', kernel.release, 'usip.ko');
if (!existsSync(module)) {
  console.error(`node-wake: ${relative(root, module)} is missing: build it with npx nx run kernel-module:build`);
  process.exit(1);
}
const modes = ['pipe', 'listener', 'watcher'];
const script = [];
for (let r = 0; r < rounds; r++) {
  for (const mode of [...modes.slice(r % 3), ...modes.slice(0, r % 3)]) {
    script.push(`"$NODE" tools/bench/node-wake/guest.mjs ${mode} ${wakes} ${warmup}`);
  }
}
const run = await runInVm({
  kernel,
  modules: [module],
  command: ['sh', '-c', `set -e; NODE=${process.execPath}; ${script.join('; ')}`],
  cwd: root,
  cpus: 1,
  memoryMb: 2048,
  timeoutMs: 900_000,
});
if (!run.ok) {
  console.error(formatVerdict(run));
  process.exit(1);
}
const results = run.output
  .split('\n')
  .filter((line) => line.startsWith('{'))
  .map((line) => JSON.parse(line));
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
};
const cpuOf = (mode) => median(results.filter((x) => x.mode === mode).map((x) => x.cpuUs)) / 1000;
const pipe = cpuOf('pipe');
console.log(`node-wake: ${kernel.release}, 1 vCPU, QEMU TCG; ${rounds} rounds of ${wakes} wake-ups each (after ${warmup} not counted); medians`);
console.log('| woken by | CPU ms per wake-up | vs pipe |');
console.log('|---|---|---|');
for (const mode of modes) console.log(`| ${mode} | ${cpuOf(mode).toFixed(2)} | ${(cpuOf(mode) / pipe).toFixed(2)}x |`);
// Where the time goes: each thread kind's CPU per wake-up (schedstat), medians over the rounds.
const threadNames = [...new Set(results.flatMap((x) => Object.keys(x.threads ?? {})))].sort();
console.log('\nCPU ms per wake-up by thread (schedstat; medians over the rounds)');
console.log(`| woken by | ${threadNames.join(' | ')} |`);
console.log(`|---|${threadNames.map(() => '---|').join('')}`);
for (const mode of modes) {
  const cells = threadNames.map((name) => (median(results.filter((x) => x.mode === mode).map((x) => x.threads?.[name] ?? 0)) / 1000).toFixed(2));
  console.log(`| ${mode} | ${cells.join(' | ')} |`);
}
