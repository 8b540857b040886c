// Runs inside the VM guest (see ../vm-lifecycle.test.ts), as root, with usip.ko loaded: how the
// client's objects end against the real module. Leaving a for-await loop unregisters the listener
// and the module disarms its mount hooks; `await using` releases a client, a listener, a watch
// and a mount watcher at the end of a block, also when it throws; an AbortSignal rejects a
// pending next() with its reason and unregisters; register() with an aborted signal leaves no
// listener. Writes what it saw to $USIP_VM_RESULTS/lifecycle.json; the host judges it.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openMounts, UsipClient, type Listener, type ListenerItem, type MountTableWatcher, type NotifierOptions } from '../../src/index.js';

const results = process.env.USIP_VM_RESULTS;
if (results === undefined) throw new Error('not in a usip-vm guest: USIP_VM_RESULTS is not set');

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A watchdog, not a measurement: waits until `check` holds, or fails the run naming `what`. */
async function eventually(check: () => Promise<boolean>, what: string, ms = 30_000): Promise<void> {
  for (const start = Date.now(); Date.now() - start < ms; await sleep(50)) if (await check()) return;
  throw new Error(`still not after ${ms / 1000} s: ${what}`);
}

async function within<T>(promise: Promise<T>, what: string, ms = 30_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`nothing after ${ms / 1000} s: ${what}`)), ms)));
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** How a promise ended: its value's description, or the error (is it `reason` itself?). */
async function outcome(promise: Promise<unknown>, reason?: unknown): Promise<Record<string, unknown>> {
  try {
    const value = await within(promise, 'an outcome');
    const done = typeof value === 'object' && value !== null && 'done' in value ? { done: value.done } : undefined;
    return { ok: true, value: done ?? (value === undefined ? null : typeof value) };
  } catch (error) {
    const e = error as Error;
    return { ok: false, isReason: reason !== undefined && error === reason, name: e.name, message: e.message };
  }
}

/** The probes the kernel has registered now (debugfs), or null where it cannot be read. */
function kprobes(): string[] | null {
  const list = '/sys/kernel/debug/kprobes/list';
  try {
    if (!existsSync(list)) execFileSync('mount', ['-t', 'debugfs', 'debugfs', '/sys/kernel/debug']);
    return readFileSync(list, 'utf8').split('\n').filter((line) => line.trim() !== '');
  } catch {
    return null;
  }
}

const MTAB: NotifierOptions[] = [
  { type: 'mtab', action: 'mount' },
  { type: 'mtab', action: 'umount' },
];

const client = await UsipClient.connect();
const report: Record<string, unknown> = {};
const listenerIds = async () => (await client.listeners()).map((l) => l.id);
const hooks = async () => (await client.stats()).mountHooks ?? -1;
const disarmed = () => eventually(async () => (await hooks()) === 0, 'the mount hooks disarmed (stats mount-hooks 0)');

report.before = { listeners: await listenerIds(), mountHooks: await hooks(), kprobes: kprobes()?.length ?? null };

// (a) Breaking out of a for-await loop over a listener unregisters it, and with the last mtab
// listener gone the module disarms its hooks.
{
  const listener = await client.register({ notifiers: MTAB });
  await eventually(async () => (await hooks()) > 0, 'the mount hooks armed');
  const during = { listeners: await listenerIds(), id: listener.id, mountHooks: await hooks(), kprobes: kprobes()?.length ?? null };
  const dir = '/tmp/lifecycle-a';
  mkdirSync(dir, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', 'lifecycle-a', dir]);
  let first: ListenerItem | undefined;
  await within(
    (async () => {
      for await (const item of listener) {
        first = item;
        break;
      }
    })(),
    'the mount event',
  );
  execFileSync('umount', [dir]);
  const afterBreak = { closed: listener.closed, listeners: await listenerIds() };
  await disarmed();
  report.a = {
    during,
    first: first?.kind === 'mtab-event' ? { kind: first.kind, action: first.action, path: first.path } : first,
    afterBreak,
    after: { listeners: await listenerIds(), mountHooks: await hooks(), kprobes: kprobes()?.length ?? null },
    next: await outcome(listener.next()),
  };
}

// (b) await using of a client, a listener, a watch and a mount watcher: released at the block's
// end, and when the block throws.
async function block(fail: boolean): Promise<Record<string, unknown>> {
  const kept: { client?: UsipClient; listener?: Listener; watcher?: MountTableWatcher; watchClosed?: () => boolean } = {};
  let inside: Record<string, unknown> = {};
  const thrown = await outcome(
    (async () => {
      await using inner = await UsipClient.connect();
      await using listener = await inner.register({ notifiers: MTAB });
      await using watch = await inner.watch('mtab');
      await using watcher = await inner.watchMounts();
      Object.assign(kept, { client: inner, listener, watcher, watchClosed: () => watch.closed });
      inside = { listeners: (await listenerIds()).length, mountHooks: await hooks() };
      if (fail) throw new Error('the block failed');
    })(),
  );
  const closed = { client: kept.client?.closed, listener: kept.listener?.closed, watch: kept.watchClosed?.(), watcher: kept.watcher?.closed };
  const listeners = await listenerIds();
  await disarmed();
  return { thrown, inside, closed, listeners, clientRequest: await outcome(kept.client!.ping()) };
}
report.b = { normal: await block(false), throwing: await block(true) };

// (c) An AbortSignal aborting a pending next() rejects it with the reason and unregisters.
{
  const controller = new AbortController();
  const listener = await client.register({ notifiers: MTAB, signal: controller.signal });
  const registered = await listenerIds();
  const pending = listener.next();
  await sleep(100);
  const reason = new Error('the daemon stops');
  controller.abort(reason);
  const next = await outcome(pending, reason);
  await eventually(async () => !(await listenerIds()).includes(listener.id), 'the aborted listener unregistered');
  const listeners = await listenerIds();
  await disarmed();
  report.c = { id: listener.id, registered, next, closed: listener.closed, listeners, later: await outcome(listener.next(), reason) };

  // The same through openMounts().watchMounts() (the module's watcher).
  await using mounts = await openMounts();
  const watchController = new AbortController();
  const watcher = await mounts.watchMounts({ signal: watchController.signal });
  const watching = await listenerIds();
  watchController.abort(reason);
  await eventually(async () => (await listenerIds()).length === 0, "the aborted mount watcher's listener unregistered");
  report.cWatcher = { backend: watcher.backend, watching, closed: watcher.closed, listeners: await listenerIds() };
  await disarmed();
}

// (d) register() with an aborted signal, or one that aborts while it waits, leaves no listener.
{
  const reason = new Error('never mind');
  const before = await listenerIds();
  const already = await outcome(client.register({ notifiers: MTAB, signal: AbortSignal.abort(reason) }), reason);
  const afterAborted = await listenerIds();
  const controller = new AbortController();
  const registering = client.register({ notifiers: MTAB, signal: controller.signal });
  controller.abort(reason);
  const during = await outcome(registering, reason);
  // Closing the socket of a registration the module may have made meanwhile unregisters it.
  await eventually(async () => (await listenerIds()).length === 0, 'no listener left by the aborted registration');
  const watchAborted = await outcome(client.watch('mtab', { signal: AbortSignal.abort(reason) }), reason);
  const connectAborted = await outcome(UsipClient.connect({ signal: AbortSignal.abort(reason) }), reason);
  report.d = { before, already, afterAborted, during, after: await listenerIds(), watchAborted, connectAborted };
  await disarmed();
}

report.end = { listeners: await listenerIds(), mountHooks: await hooks(), kprobes: kprobes()?.length ?? null };
const closing = client.close();
report.closeIdempotent = closing === client.close();
await closing;
report.afterClose = await outcome(client.ping());
writeFileSync(join(results, 'lifecycle.json'), `${JSON.stringify(report, (_k, v) => (typeof v === 'bigint' ? String(v) : v), 2)}\n`);
