#!/usr/bin/env node
// Checks the debug kernel does its job, in three boots of it under the usip-vm harness:
//   1. `true` with the selftest module loaded and asked for nothing: the run passes (the kernel
//      itself boots, loads and unloads a module without a report), and how long a trivial run takes;
//   2. the module makes a GFP_KERNEL allocation under a spinlock, an AB-BA mutex order and a
//      KASAN use-after-free: each report is in the kernel log and the harness fails the run on it;
//   3. the module calls rcu_dereference() outside rcu_read_lock(): "suspicious RCU usage"
//      (a boot of its own: the first lockdep or KASAN report turns lockdep off).
// Usage: node tools/debug-kernel/selftest.mjs [--save DIR]   (DIR gets each boot's kernel log)
// Exit status 0 when every expectation holds.
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildModule, classifyKernelLog, formatVerdict, resolveKernels, runInVm } from '@usip/vm';

const here = dirname(fileURLToPath(import.meta.url));
const saveIndex = process.argv.indexOf('--save');
const saveDir = saveIndex > 0 ? process.argv[saveIndex + 1] : undefined;
const log = (message) => process.stderr.write(`selftest: ${message}\n`);

const [kernel] = await resolveKernels('6.12-debug', { log });
const out = mkdtempSync(join(tmpdir(), 'usip-debug-selftest-'));
let failed = 0;
const expect = (ok, what) => {
  process.stdout.write(`${ok ? 'ok  ' : 'FAIL'} ${what}\n`);
  if (!ok) failed += 1;
};

try {
  const [built] = await buildModule({ kernel: [kernel], src: join(here, 'selftest'), out, echo: null, log });
  const ko = built.modules[0];
  expect(!/warning:/i.test(built.output), `the selftest module builds against ${kernel.headersDir} without warnings`);
  expect(/BTF \[M\]/.test(built.output), 'the module gets BTF (CONFIG_DEBUG_INFO_BTF_MODULES against the kept vmlinux)');

  const boot = async (name, bugs, timeoutMs = 300_000) => {
    const r = await runInVm({
      kernel,
      modules: [{ path: ko, params: [`bugs=${bugs}`] }],
      command: ['sh', '-c', 'cat /proc/sys/kernel/tainted; test -e /sys/kernel/btf/vmlinux && echo btf'],
      timeoutMs,
      log,
    });
    log(`${name}: ${(r.durationMs / 1000).toFixed(1)} s, ${r.ok ? 'passed' : 'failed'}`);
    if (saveDir) {
      mkdirSync(saveDir, { recursive: true });
      copyFileSync(r.kernelLogPath, join(saveDir, `${name}.log`));
    }
    return r;
  };

  const clean = await boot('clean', 'none');
  expect(clean.ok, `a run with nothing asked passes (${(clean.durationMs / 1000).toFixed(1)} s)\n${clean.ok ? '' : formatVerdict(clean)}`);
  expect(/\bbtf\b/.test(clean.output), '/sys/kernel/btf/vmlinux exists in the guest');

  const three = await boot('sleep-circular-kasan', 'sleep,circular,kasan');
  const labels = classifyKernelLog(three.kernelLog);
  const found = (label, pattern) => labels.some((f) => f.label === label && pattern.test(f.line));
  expect(!three.ok, 'the run with three bugs fails');
  expect(found('KASAN', /BUG: KASAN: slab-use-after-free in selftest_kasan/), 'KASAN: "BUG: KASAN: slab-use-after-free in selftest_kasan"');
  expect(found('BUG', /BUG: sleeping function called from invalid context/), 'sleep in atomic: "BUG: sleeping function called from invalid context"');
  expect(found('lockdep', /WARNING: possible circular locking dependency detected/), 'lockdep: "WARNING: possible circular locking dependency detected"');

  const rcu = await boot('rcu', 'rcu');
  const rcuLabels = classifyKernelLog(rcu.kernelLog);
  expect(!rcu.ok, 'the run with an RCU bug fails');
  expect(rcuLabels.some((f) => f.label === 'lockdep' && /WARNING: suspicious RCU usage/.test(f.line)), 'PROVE_RCU: "WARNING: suspicious RCU usage"');
} finally {
  rmSync(out, { recursive: true, force: true });
}

process.stdout.write(failed === 0 ? 'selftest: every check passed\n' : `selftest: ${failed} check(s) failed\n`);
process.exit(failed === 0 ? 0 : 1);
