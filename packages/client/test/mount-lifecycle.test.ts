// openMounts() and its watchers on this machine's own kernel (no usip module here: the kernel
// and mountinfo backends, forced in turn): AbortSignals on every operation that waits (already
// aborted, aborted while it runs, not a signal), close() async and idempotent, `await using`,
// and a watcher's signal ending it. Its descriptors (fanotify, the polled mountinfo) are gone
// after close.
import { readdirSync, readlinkSync } from 'node:fs';
import { suite, test } from 'uvu';
import * as assert from 'uvu/assert';
import { mountApiSupport } from '@usip/netlink-native';
import { devices, openMounts, UsipArgumentError, UsipClient, type MountBackend } from '../src/index.js';

const failure = (promise: Promise<unknown>) =>
  promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (error: unknown) => error,
  );

/** The descriptors a watcher watches through: fanotify groups and opened mountinfo files (the
 *  binding's wake-up eventfd goes with its object, at garbage collection). */
const openFds = () =>
  readdirSync('/proc/self/fd').filter((fd) => {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      return target === 'anon_inode:[fanotify]' || target.endsWith('/mountinfo');
    } catch {
      return false; // the directory's own descriptor, gone by now
    }
  }).length;

/** Waits (a watchdog, not a measurement) until `check` holds. */
async function eventually(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (check()) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`never: ${what}`);
}

function isSignalError(error: unknown): boolean {
  return error instanceof UsipArgumentError && error.field === 'signal' && /signal must be an AbortSignal/.test(error.message);
}

test('connect() and openMounts() with an aborted signal reject with its reason; a non-signal is refused by name', async () => {
  const reason = new Error('not now');
  assert.is(await failure(UsipClient.connect({ signal: AbortSignal.abort(reason) })), reason);
  assert.is(await failure(openMounts({ signal: AbortSignal.abort(reason) })), reason);
  assert.ok(isSignalError(await failure(UsipClient.connect({ signal: 'soon' as unknown as AbortSignal }))));
  assert.ok(isSignalError(await failure(openMounts({ signal: 1 as unknown as AbortSignal }))));
  assert.is(await failure(devices({ signal: AbortSignal.abort(reason) })), reason);
  for (const open of [() => UsipClient.connect(null as unknown as object), () => openMounts('fast' as unknown as object)]) {
    const error = await failure(open());
    assert.ok(error instanceof UsipArgumentError && error.field === 'options' && /options must be an object/.test(error.message), String(error));
  }
});

const support = mountApiSupport();
const backends: MountBackend[] = support.fanotifyMount && support.listmount ? ['kernel', 'mountinfo'] : ['mountinfo'];

for (const backend of backends) {
  const s = suite(`the ${backend} backend on this machine's kernel`);

  s('close() is idempotent and Symbol.asyncDispose is close(); await using closes at the block end', async () => {
    const mounts = await openMounts({ backend });
    const first = mounts.close();
    assert.is(mounts.close(), first);
    assert.is(mounts[Symbol.asyncDispose](), first);
    await first;
    assert.is(mounts.closed, true);
    let kept: Awaited<ReturnType<typeof openMounts>> | undefined;
    {
      await using inner = await openMounts({ backend });
      kept = inner;
      assert.is(inner.closed, false);
    }
    assert.is(kept.closed, true);
  });

  s('mounts(), statfsAll(), statfs(), devices() reject with the reason of an aborted signal, or of one that aborts while they run', async () => {
    await using mounts = await openMounts({ backend });
    const reason = new Error('given up');
    const aborted = AbortSignal.abort(reason);
    assert.is(await failure(mounts.mounts({ signal: aborted })), reason);
    assert.is(await failure(mounts.statfsAll({ signal: aborted })), reason);
    assert.is(await failure(mounts.statfs({ path: '/' }, { signal: aborted })), reason);
    assert.is(await failure(mounts.devices({ signal: aborted })), reason);
    for (const run of [(signal: AbortSignal) => mounts.statfsAll({ signal }), (signal: AbortSignal) => mounts.mounts({ signal }), (signal: AbortSignal) => mounts.devices({ signal })]) {
      const controller = new AbortController();
      const running = run(controller.signal);
      controller.abort(reason);
      assert.is(await failure(running), reason);
    }
    // With a signal that stays quiet, they answer as without one.
    const { signal } = new AbortController();
    assert.equal((await mounts.mounts({ signal })).mounts.length, (await mounts.mounts()).mounts.length);
    assert.ok((await mounts.statfsAll({ signal, timeoutMs: 1000 })).length > 0);
    assert.ok(isSignalError(await failure(mounts.statfsAll({ signal: 'x' as unknown as AbortSignal }))));
    assert.ok(isSignalError(await failure(mounts.mounts({ signal: {} as AbortSignal }))));
  });

  s('a watcher closes its streams (their descriptors go) on close(), at the end of await using, and when its signal aborts', async () => {
    await using mounts = await openMounts({ backend });
    const before = openFds();
    const watcher = await mounts.watchMounts({ checkIntervalMs: 0 });
    assert.is(watcher.backend, backend);
    assert.ok(openFds() > before, 'the watcher holds descriptors');
    const first = watcher.close();
    assert.is(watcher.close(), first);
    await first;
    await eventually(() => openFds() === before, `the ${backend} watcher's descriptors are closed`);

    {
      await using _watcher = await mounts.watchMounts({ checkIntervalMs: 0 });
      assert.ok(openFds() > before);
    }
    await eventually(() => openFds() === before, 'await using closed the watcher');

    const controller = new AbortController();
    const bound = await mounts.watchMounts({ checkIntervalMs: 0, signal: controller.signal });
    const pending = bound.next();
    const reason = new Error('shutting down');
    controller.abort(reason);
    assert.is(await failure(pending), reason, 'the pending next() rejects with the reason');
    assert.is(bound.closed, true);
    assert.is(await failure(bound.next()), reason);
    await eventually(() => openFds() === before, "the signal closed the watcher's descriptors");
  });

  s('watchMounts() with an aborted signal rejects with its reason and leaves nothing open', async () => {
    await using mounts = await openMounts({ backend });
    const before = openFds();
    const reason = new Error('not now');
    assert.is(await failure(mounts.watchMounts({ signal: AbortSignal.abort(reason) })), reason);
    const controller = new AbortController();
    const opening = mounts.watchMounts({ signal: controller.signal });
    controller.abort(reason);
    assert.is(await failure(opening), reason);
    await eventually(() => openFds() === before, 'no descriptor stays open');
    assert.ok(isSignalError(await failure(mounts.watchMounts({ signal: 'x' as unknown as AbortSignal }))));
  });

  s.run();
}

test.run();
