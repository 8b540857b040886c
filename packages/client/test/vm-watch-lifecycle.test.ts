// The lifecycle of UsipClient.watchMounts() against usip.ko in real kernels: leaving a
// for-await loop, the watcher's signal, an aborted or bad signal, close() and `await using`
// each leave no listener behind, and with the last mtab listener gone the module disarms its
// mount hooks (its stats say so). The guest runs test/guest/watch-lifecycle.ts; this judges
// what it saw. USIP_TEST_KERNELS (a usip-vm selector, e.g. 6.12) limits the kernels; all
// supported ones by default.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { resolveKernels, runInVm } from '@usip/vm';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const kernels = await resolveKernels(process.env.USIP_TEST_KERNELS?.trim() || 'all', { log: (m) => process.stderr.write(`${m}\n`) });

interface State {
  listed: boolean;
  listeners: number;
  mountHooks: number;
}
type Outcome = { ok: true; value: unknown } | { ok: false; name: string; message: string };
interface Report {
  before: State;
  loop: { during: State; seen?: string; closed: boolean; after: State; disarmed: boolean; nextAfter: unknown };
  signal: { during: State; pending: Outcome; closed: boolean; after: State; disarmed: boolean };
  aborted: { result: Outcome; raced: Outcome; listenersBefore: number; listenersAfter: number; disarmed: boolean };
  badSignal: { result: Outcome; argument?: string };
  close: { same: boolean; after: State; scopedClosed: boolean; scopedAfter: State; disarmed: boolean };
}

for (const kernel of kernels) {
  const run = await runInVm({
    kernel,
    modules: [join(root, 'packages/kernel-module/build/{kver}/usip.ko')],
    command: ['node', '--import', 'tsx', 'packages/client/test/guest/watch-lifecycle.ts'],
    cwd: root,
    timeoutMs: 300_000,
  });
  const test = suite(`watchMounts() lifecycle in the ${kernel.series} guest (${run.kernel.release})`);
  const report = (): Report => JSON.parse(readFileSync(join(run.resultsDir, 'watch-lifecycle.json'), 'utf8')) as Report;

  test('the guest ran to the end, the module unloaded, the kernel log is clean', () => {
    assert.is(run.timedOut, false, 'timed out');
    assert.equal(run.loadErrors, [], 'usip.ko loaded');
    assert.equal(run.problems, [], 'kernel log problems');
    assert.is(run.exitCode, 0, run.output);
    assert.is(run.unloaded, true, 'usip unloaded');
    assert.equal(report().before, { listed: false, listeners: 0, mountHooks: 0 }, 'nothing registered at the start');
  });

  test('leaving a for await loop unregisters the listener, and the module disarms its hooks', () => {
    const { loop } = report();
    assert.equal(loop.during, { listed: true, listeners: 1, mountHooks: loop.during.mountHooks });
    assert.ok(loop.during.mountHooks > 0, 'hooks armed while it watched');
    assert.is(loop.seen, 'mount /tmp/watch-lifecycle', 'it saw the real mount before the break');
    assert.is(loop.closed, true);
    assert.equal([loop.after.listed, loop.after.listeners], [false, 0], 'no listener left');
    assert.is(loop.disarmed, true, 'stats: mount hooks back to 0');
    assert.equal(loop.nextAfter, { done: true }, 'iterating again yields nothing');
  });

  test("the watcher's signal closes it: a pending next() rejects with the reason, the listener goes", () => {
    const { signal } = report();
    assert.is(signal.during.listed, true);
    assert.equal(signal.pending, { ok: false, name: 'Error', message: 'stop watching' });
    assert.is(signal.closed, true);
    assert.equal([signal.after.listed, signal.after.listeners], [false, 0]);
    assert.is(signal.disarmed, true);
  });

  test('an aborted signal rejects watchMounts() with its reason and leaves no listener', () => {
    const { aborted } = report();
    assert.equal(aborted.result, { ok: false, name: 'AbortError', message: 'This operation was aborted' });
    assert.equal(aborted.raced, { ok: false, name: 'Error', message: 'changed my mind' });
    assert.equal([aborted.listenersBefore, aborted.listenersAfter], [0, 0]);
    assert.is(aborted.disarmed, true);
  });

  test('a signal that is not an AbortSignal is a UsipArgumentError naming signal', () => {
    const { badSignal } = report();
    assert.equal(badSignal.result, { ok: false, name: 'UsipArgumentError', message: 'usip watch-mounts: signal must be an AbortSignal' });
    assert.is(badSignal.argument, 'signal');
  });

  test('close() returns one promise for every call; await using closes at the end of the scope', () => {
    const { close } = report();
    assert.is(close.same, true);
    assert.is(close.after.listed, false);
    assert.is(close.scopedClosed, true);
    assert.equal([close.scopedAfter.listed, close.scopedAfter.listeners], [false, 0]);
    assert.is(close.disarmed, true);
  });

  test.run();
}
