#!/usr/bin/env node
// Measures how long a VM run of `true` (boot, run, unload, log, poweroff) takes per kernel.
// Usage: node tools/bench/vm-boot.mjs [RUNS=5] [SELECTOR=all] [CPUS=2]   (after the build)
import { resolveKernels, runInVm } from '@usip/vm';

const runs = Number(process.argv[2] ?? 5);
const selector = process.argv[3] ?? 'all';
const cpus = Number(process.argv[4] ?? 2);
if (!Number.isInteger(runs) || runs < 1) throw new Error(`RUNS must be a positive integer (got ${process.argv[2]})`);

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
};

for (const kernel of await resolveKernels(selector)) {
  const times = [];
  for (let i = 0; i < runs; i += 1) {
    const started = performance.now();
    const r = await runInVm({ kernel, command: ['true'], cpus });
    if (!r.ok) throw new Error(`${kernel.release}: ${r.failures.join('; ')}`);
    times.push((performance.now() - started) / 1000);
  }
  const fmt = (x) => x.toFixed(2);
  console.log(
    `${kernel.selector} (${kernel.release}), ${cpus} CPU(s): median ${fmt(median(times))} s, ` +
      `min ${fmt(Math.min(...times))} s, max ${fmt(Math.max(...times))} s over ${runs} runs`,
  );
}
