// Runs inside the VM guest (see ../vm-events.test.ts), with usip.ko loaded with allow_inject=1:
// the @usip/client API against the real module. `root` mode: register, inject, typed events,
// the multicast copy through watch(), listeners(), a burst into a tiny receive buffer (overrun
// and missed), kernel refusals, close(). `nobody` mode (run as uid 65534): the refusals an
// unprivileged user meets. Prints what it saw as JSON on stdout; the host judges it.
import {
  UsipClient,
  isNetlinkError,
  type Listener,
  type ListenerItem,
  type NotifierOptions,
} from '@usip/client';

if (process.env.USIP_VM === undefined) throw new Error('not in a usip-vm guest: USIP_VM is not set');
const mode = process.argv[2];
if (mode !== 'root' && mode !== 'nobody') throw new Error(`usage: client-events.ts root|nobody, got ${mode}`);

/** A watchdog, not a measurement: a missing item fails the run with a message instead of hanging it. */
async function within<T>(promise: Promise<T>, what: string, ms = 30_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`nothing after ${ms / 1000} s: ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function next(iterator: AsyncIterator<ListenerItem>, what: string): Promise<ListenerItem> {
  const result = await within(iterator.next(), what);
  if (result.done === true) throw new Error(`the iteration ended while waiting for ${what}`);
  return result.value;
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: Record<string, unknown> };

async function outcome(fn: () => Promise<unknown>): Promise<Outcome> {
  try {
    return { ok: true, value: await fn() };
  } catch (error) {
    if (!(error instanceof Error)) throw error;
    const fields: Record<string, unknown> = { name: error.name, message: error.message };
    if (isNetlinkError(error)) Object.assign(fields, { code: error.code, errno: error.errno, extack: error.extack });
    return { ok: false, error: fields };
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const report: Record<string, unknown> = { mode };
const client = await UsipClient.connect();

async function waitForEmptyQueue(): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if ((await client.stats()).queued === 0) return;
    await sleep(50);
  }
  throw new Error('the event queue did not drain');
}

if (mode === 'root') {
  const listener = await client.register({
    notifiers: [
      { type: 'mtab', action: 'mount', cmd: 5 },
      { type: 'storage', action: 'enospc', pathPrefix: '/client' },
    ],
  });
  report.registration = { id: listener.id, groups: listener.groups, scope: listener.scope, mntNs: listener.mntNs };
  const events = listener[Symbol.asyncIterator]();
  const watch = await client.watch('mtab');
  const watched = watch[Symbol.asyncIterator]();

  report.injectMount = await client.inject({
    type: 'mtab',
    action: 'mount',
    path: '/client/a',
    mountId: 7,
    parentId: 1,
    fsType: 'ext4',
    source: '/dev/vda',
    dev: 0x801,
  });
  report.injectEnospc = await client.inject({ type: 'storage', action: 'enospc', path: '/client/full', count: 3 });
  // Not matched by this listener (its storage notifier wants paths under /client).
  await client.inject({ type: 'storage', action: 'enospc', path: '/elsewhere' });
  report.events = [await next(events, 'the mount event'), await next(events, 'the enospc event')];
  report.watched = await next(watched, 'the multicast copy of the mount event');
  report.listed = (await client.listeners()).find((l) => l.id === listener.id);

  // A burst into a listener whose socket buffer is tiny and that nobody reads meanwhile.
  const small = await client.register({ notifiers: [{ type: 'mtab', action: 'remount' }], receiveBufferSize: 4096 });
  const smallItems = small[Symbol.asyncIterator]();
  const burst = await client.inject({ type: 'mtab', action: 'remount', path: '/burst', repeat: 5000 });
  await waitForEmptyQueue();
  // Read everything, and post markers until one arrives (earlier ones may be lost to the same
  // full buffer, and are then counted in the marker's missed).
  const markers: bigint[] = [];
  let received = 0;
  let missedSum = 0;
  let lostKnown = 0;
  let overruns = 0;
  let eventsWithMissed = 0;
  let markerSeq: bigint | undefined;
  let pending: Promise<IteratorResult<ListenerItem>> | undefined;
  while (markerSeq === undefined) {
    pending ??= smallItems.next();
    const step = await Promise.race([pending, sleep(200).then(() => 'idle' as const)]);
    if (step === 'idle') {
      if (markers.length >= 100) throw new Error('100 markers posted and none arrived');
      markers.push((await client.inject({ type: 'mtab', action: 'remount', path: '/marker' })).seq);
      continue;
    }
    pending = undefined;
    if (step.done === true) throw new Error('the small listener ended');
    const item = step.value;
    if (item.kind === 'overrun') {
      overruns++;
      lostKnown += item.lost ?? 0;
      continue;
    }
    if (item.kind === 'missed') {
      missedSum += item.missed;
      continue;
    }
    if (item.kind === 'unknown-event') throw new Error(`an event this client does not know: ${item.operation}`);
    received++;
    missedSum += item.missed;
    if (item.missed > 0) eventsWithMissed++;
    if (item.path === '/marker') markerSeq = item.seq;
  }
  report.overrun = {
    burst,
    received,
    missedSum,
    lostKnown,
    overruns,
    eventsWithMissed,
    // Events posted to the small listener up to the marker that arrived.
    posted: 5000 + markers.filter((seq) => markerSeq !== undefined && seq <= markerSeq).length,
    listed: (await client.listeners()).find((l) => l.id === small.id),
  };
  await small.close();

  const tooMany: NotifierOptions[] = Array.from({ length: 33 }, () => ({ type: 'mtab', action: 'mount' }));
  report.tooManyNotifiers = await outcome(() => client.register({ notifiers: tooMany }));
  report.unknownId = await outcome(() => client.unregister(999_999));

  await listener.close();
  await listener.close();
  report.afterClose = {
    listed: (await client.listeners()).some((l) => l.id === listener.id),
    iterationDone: (await within(events.next(), 'the end of the iteration')).done,
    closed: listener.closed,
  };
  await watch.close();
  report.watchDone = (await within(watched.next(), 'the end of the watch')).done;
  report.stats = await client.stats();
} else {
  report.watch = await outcome(() => client.watch('mtab'));
  report.global = await outcome(() => client.register({ global: true, notifiers: [{ type: 'mtab', action: 'mount' }] }));
  report.inject = await outcome(() => client.inject({ type: 'mtab', action: 'mount' }));
  // The shell set max_listeners_per_user to 1 for this run.
  const listeners: Listener[] = [];
  const first = await outcome(async () => {
    const l = await client.register({ notifiers: [{ type: 'mtab', action: 'umount' }] });
    listeners.push(l);
    return { id: l.id, scope: l.scope };
  });
  report.first = first;
  report.second = await outcome(() => client.register({ notifiers: [{ type: 'mtab', action: 'umount' }] }));
  report.listed = await client.listeners();
  for (const l of listeners) await l.close();
  report.listedAfterClose = await client.listeners();
}

await client.close();
// On stdout, which the guest script keeps in $USIP_VM_RESULTS (not writable for uid 65534).
process.stdout.write(`${JSON.stringify(report, (_key, value: unknown) => (typeof value === 'bigint' ? `${value}n` : value), 2)}\n`);
