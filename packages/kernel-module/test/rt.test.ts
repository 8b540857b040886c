// PREEMPT_RT kernels are refused: DKMS does not build the module for one (dkms.test.ts, the
// BUILD_EXCLUSIVE_CONFIG of dkms.conf), and a module built for one by hand does not load there,
// saying why. Its mount hooks allocate memory and take spinlocks with preemption disabled, which
// sleep on PREEMPT_RT. This boots Debian's own RT kernel of the 6.12 series in QEMU.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { buildModule, formatVerdict, resolveKernels, runInVm } from '@usip/vm';
import { moduleRoot, vmTimeout } from './helpers.js';

const log = (message: string) => process.stderr.write(`${message}\n`);
const [kernel] = await resolveKernels('6.12-rt', { log });
if (kernel === undefined) throw new Error('the 6.12-rt selector resolved no kernel');
const out = mkdtempSync(join(tmpdir(), 'usip-rt-'));
let run: Awaited<ReturnType<typeof runInVm>> | undefined;
let buildOutput = '';
try {
  // Plain make, as someone building it by hand would (DKMS would refuse).
  const [built] = await buildModule({ kernel: [kernel], src: moduleRoot, out, echo: null, log });
  buildOutput = built?.output ?? '';
  const ko = built?.modules.find((m) => m.endsWith('/usip.ko'));
  if (ko === undefined) throw new Error(`no usip.ko was built for ${kernel.release}:\n${buildOutput}`);
  run = await runInVm({ kernel, modules: [ko], command: ['true'], timeoutMs: vmTimeout(180_000) });
} finally {
  rmSync(out, { recursive: true, force: true });
}

test(`the kernel ${kernel.release} is Debian's PREEMPT_RT build`, () => {
  assert.match(readFileSync(join(kernel.cacheDir, 'config'), 'utf8'), /^CONFIG_PREEMPT_RT=y$/m);
});

test('usip.ko built for it by hand does not load: insmod fails with EOPNOTSUPP', () => {
  assert.ok(run, 'the VM did not run');
  assert.is(run!.loadErrors.length, 1, formatVerdict(run!));
  assert.match(run!.loadErrors[0]!, /usip/);
  assert.match(run!.loadErrors[0]!, /not supported/i);
});

test('the kernel log says why, and nothing else went wrong', () => {
  assert.match(run!.kernelLog, /usip: PREEMPT_RT kernels are not supported/);
  assert.equal(run!.problems, [], formatVerdict(run!));
  // The refusal is the module's only word (besides the kernel's taint notes): nothing else of it
  // ran. (busybox's insmod tries finit_module(2), then init_module(2): the refusal comes twice.)
  const others = run!.kernelLog
    .split('\n')
    .filter((l) => /\busip: /.test(l) && !/PREEMPT_RT kernels are not supported|taints kernel|tainting kernel/.test(l));
  assert.equal(others, []);
});

test.run();
