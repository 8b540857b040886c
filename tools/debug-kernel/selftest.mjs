#!/usr/bin/env node
// Checks the debug kernel does its job, in two boots of it under the usip-vm harness:
//   1. `true` with the selftest module loaded and asked for nothing: the run passes (the kernel
//      itself boots, loads and unloads a module without a report), and how long a trivial run takes;
//   2. the module makes a GFP_KERNEL allocation under a spinlock, an rcu_dereference() outside
//      rcu_read_lock(), an AB-BA mutex order and a KASAN use-after-free (in that order: a lockdep
//      or KASAN report turns lockdep off): each report is in the kernel log, and the harness
//      fails the run on it.
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

  const bugs = await boot('bugs', 'sleep,rcu,circular,kasan');
  const found = (label, pattern) => classifyKernelLog(bugs.kernelLog).some((f) => f.label === label && pattern.test(f.line));
  expect(!bugs.ok, 'the run with four bugs fails');
  expect(found('BUG', /BUG: sleeping function called from invalid context/), 'sleep in atomic: "BUG: sleeping function called from invalid context"');
  expect(found('lockdep', /WARNING: suspicious RCU usage/), 'PROVE_RCU: "WARNING: suspicious RCU usage"');
  expect(found('lockdep', /WARNING: possible circular locking dependency detected/), 'lockdep: "WARNING: possible circular locking dependency detected"');
  expect(found('KASAN', /BUG: KASAN: slab-use-after-free in selftest_kasan/), 'KASAN: "BUG: KASAN: slab-use-after-free in selftest_kasan"');
} finally {
  rmSync(out, { recursive: true, force: true });
}

process.stdout.write(failed === 0 ? 'selftest: every check passed\n' : `selftest: ${failed} check(s) failed\n`);
process.exit(failed === 0 ? 0 : 1);
