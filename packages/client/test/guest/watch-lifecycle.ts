// Runs in the QEMU guest (see ../vm-watch-lifecycle.test.ts), as root with usip.ko loaded:
// the lifecycle of UsipClient.watchMounts() against the real module. Each case makes a watcher,
// ends it one way (leaving a for-await loop, its signal, close(), await using), and records
// what the module then says: the listener in listener-get, the listeners and armed mount hooks
// in stats. Facts go to $USIP_VM_RESULTS/watch-lifecycle.json; the host judges them.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { UsipArgumentError, UsipClient, type MountWatcher } from '../../src/index.js';

const results = process.env.USIP_VM_RESULTS;
if (results === undefined) throw new Error('not in a usip-vm guest');
const client = await UsipClient.connect();
const report: Record<string, unknown> = {};

/** What the module says now: is the listener there, how many listeners, are the hooks armed. */
async function moduleState(listenerId?: number): Promise<{ listed: boolean; listeners: number; mountHooks: number }> {
  const listeners = await client.listeners();
  const stats = await client.stats();
  return { listed: listeners.some((l) => l.id === listenerId), listeners: stats.listeners, mountHooks: stats.mountHooks ?? -1 };
}

/** The module disarms its hooks a moment after the last mtab listener went: wait for it. */
async function disarmed(): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    if ((await client.stats()).mountHooks === 0) return true;
    await sleep(100);
  }
  return false;
}

async function outcome<T>(promise: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; name: string; message: string }> {
  try {
    return { ok: true, value: await promise };
  } catch (error) {
    const e = error as Error;
    return { ok: false, name: e.name, message: e.message };
  }
}

const dir = '/tmp/watch-lifecycle';
mkdirSync(dir, { recursive: true });
const mount = () => execFileSync('mount', ['-t', 'tmpfs', 'lifecycle', dir]);
const umount = () => execFileSync('umount', [dir]);

report.before = await moduleState();

// 1. Leaving a for-await loop (break) after a real change unregisters the listener.
{
  const watcher = await client.watchMounts();
  const during = await moduleState(watcher.listenerId);
  mount();
  let seen: string | undefined;
  for await (const change of watcher) {
    if (change.kind === 'mount' && change.mount.mountPoint === dir) {
      seen = `${change.kind} ${change.mount.mountPoint}`;
      break;
    }
  }
  umount();
  report.loop = {
    during,
    seen,
    closed: watcher.closed,
    after: await moduleState(watcher.listenerId),
    disarmed: await disarmed(),
    nextAfter: await watcher.next(),
  };
}

// 2. Its signal aborting closes it: a pending next() rejects with the reason; listener gone.
{
  const controller = new AbortController();
  const watcher = await client.watchMounts({ signal: controller.signal });
  const during = await moduleState(watcher.listenerId);
  const pending = watcher.next();
  controller.abort(new Error('stop watching'));
  const result = await outcome(pending);
  await watcher.close();
  report.signal = { during, pending: result, closed: watcher.closed, after: await moduleState(watcher.listenerId), disarmed: await disarmed() };
}

// 3. An aborted signal: watchMounts() rejects with its reason and leaves no listener.
{
  const controller = new AbortController();
  controller.abort();
  const before = (await client.listeners()).length;
  const result = await outcome(client.watchMounts({ signal: controller.signal }));
  // One aborted while it sets up: whatever it registered goes too.
  const late = new AbortController();
  const racing = outcome(client.watchMounts({ signal: late.signal }));
  late.abort(new Error('changed my mind'));
  const raced = await racing;
  await sleep(500);
  report.aborted = { result, raced, listenersBefore: before, listenersAfter: (await client.listeners()).length, disarmed: await disarmed() };
}

// 4. A signal that is not an AbortSignal is refused, naming it.
{
  const result = await outcome(client.watchMounts({ signal: 'soon' as unknown as AbortSignal }));
  let argument: string | undefined;
  try {
    await client.watchMounts({ signal: 5 as unknown as AbortSignal });
  } catch (error) {
    if (error instanceof UsipArgumentError) argument = error.field;
  }
  report.badSignal = { result, argument };
}

// 5. close() twice (one promise) and await using.
{
  const watcher = await client.watchMounts();
  const first = watcher.close();
  const same = first === watcher.close();
  await first;
  let scoped: MountWatcher | undefined;
  {
    await using w = await client.watchMounts();
    scoped = w;
  }
  report.close = {
    same,
    after: await moduleState(watcher.listenerId),
    scopedClosed: scoped.closed,
    scopedAfter: await moduleState(scoped.listenerId),
    disarmed: await disarmed(),
  };
}

client.close();
writeFileSync(join(results, 'watch-lifecycle.json'), JSON.stringify(report, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v), 2));
