// How the client's objects end, against usip.ko in a real kernel: boots each kernel of
// USIP_TEST_KERNELS (default 6.1, 6.12 and 7) with the module loaded and runs
// test/guest/lifecycle.ts there, which leaves what it saw in lifecycle.json.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { runInVm } from '@usip/vm';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const kernels = (process.env.USIP_TEST_KERNELS?.trim() || '6.1,6.12,7').split(',').map((k) => k.trim());

for (const kernel of kernels) {
  const run = await runInVm({
    kernel,
    modules: [join(root, 'packages/kernel-module/build/{kver}/usip.ko')],
    command: ['node', '--import', 'tsx', 'packages/client/test/guest/lifecycle.ts'],
    cwd: root,
    timeoutMs: 240_000,
  });
  const test = suite(`the client's objects end against the module in the ${kernel} guest (${run.kernel.release})`);
  const report = (): any => JSON.parse(readFileSync(join(run.resultsDir, 'lifecycle.json'), 'utf8'));

  test('the guest ran the script to the end, the module unloaded, the kernel log is clean', () => {
    assert.is(run.timedOut, false, 'timed out');
    assert.equal(run.loadErrors, [], 'usip.ko loaded');
    assert.equal(run.problems, [], 'kernel log problems');
    assert.is(run.exitCode, 0, run.output);
    assert.is(run.unloaded, true, 'usip unloaded');
  });

  test('before: no listener, no mount hook armed', () => {
    const { before } = report();
    assert.equal(before.listeners, []);
    assert.is(before.mountHooks, 0);
  });

  test('(a) break out of for await over a listener: unregistered (listener-get empty), the mount hooks disarmed', () => {
    const { a } = report();
    assert.equal(a.during.listeners, [a.during.id], 'listener-get shows the listener while the loop runs');
    assert.ok(a.during.mountHooks > 0, `hooks armed while it listens: ${a.during.mountHooks}`);
    assert.equal(a.first, { kind: 'mtab-event', action: 'mount', path: '/tmp/lifecycle-a' }, 'the loop got the real mount');
    assert.is(a.afterBreak.closed, true);
    assert.equal(a.afterBreak.listeners, [], 'listener-get is empty right after the loop is left');
    assert.equal(a.after.listeners, []);
    assert.is(a.after.mountHooks, 0, 'stats: mount-hooks 0');
    if (a.during.kprobes !== null && a.after.kprobes !== null) {
      assert.ok(a.during.kprobes > a.after.kprobes, `the kernel's kprobe list shrank: ${a.during.kprobes} -> ${a.after.kprobes}`);
    }
    assert.equal(a.next, { ok: true, value: { done: true } }, 'next() after the loop resolves done');
  });

  for (const how of ['normal', 'throwing'] as const) {
    test(`(b) await using of a client, a listener, a watch and a mount watcher releases all at the block's end (${how})`, () => {
      const b = report().b[how];
      if (how === 'throwing') assert.equal(b.thrown, { ok: false, isReason: false, name: 'Error', message: 'the block failed' }, 'the block\'s own error comes out');
      else assert.is(b.thrown.ok, true, JSON.stringify(b.thrown));
      assert.is(b.inside.listeners, 2, 'inside: the listener and the mount watcher\'s');
      assert.ok(b.inside.mountHooks > 0);
      assert.equal(b.closed, { client: true, listener: true, watch: true, watcher: true });
      assert.equal(b.listeners, [], 'listener-get is empty after the block');
      assert.is(b.clientRequest.ok, false, 'the client is closed: a request fails');
    });
  }

  test('(c) an abort while next() is pending rejects it with the reason and unregisters; so does a watcher\'s signal', () => {
    const { c, cWatcher } = report();
    assert.equal(c.registered, [c.id]);
    assert.equal(c.next, { ok: false, isReason: true, name: 'Error', message: 'the daemon stops' });
    assert.is(c.closed, true);
    assert.equal(c.listeners, []);
    assert.is(c.later.isReason, true, 'a later next() rejects with the reason too');
    assert.is(cWatcher.backend, 'module');
    assert.is(cWatcher.watching.length, 1);
    assert.is(cWatcher.closed, true);
    assert.equal(cWatcher.listeners, []);
  });

  test('(d) register() with an aborted signal, or one aborted while it waits, rejects with the reason and leaves no listener', () => {
    const { d } = report();
    assert.equal(d.before, []);
    assert.equal(d.already, { ok: false, isReason: true, name: 'Error', message: 'never mind' });
    assert.equal(d.afterAborted, []);
    assert.equal(d.during, { ok: false, isReason: true, name: 'Error', message: 'never mind' });
    assert.equal(d.after, []);
    assert.is(d.watchAborted.isReason, true);
    assert.is(d.connectAborted.isReason, true);
  });

  test('the end: nothing registered, hooks disarmed; the client\'s close() is idempotent and closes it', () => {
    const r = report();
    assert.equal(r.end.listeners, []);
    assert.is(r.end.mountHooks, 0);
    if (r.before.kprobes !== null) assert.is(r.end.kprobes, r.before.kprobes, 'the kprobe list is back to what it was');
    assert.is(r.closeIdempotent, true);
    assert.is(r.afterClose.ok, false);
  });

  test.run();
}
