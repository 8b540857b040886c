// UserSpaceMountWatcher's state machine through its io, with scripted streams: a fanotify
// overflow resynchronises ('overrun') and ends exact; mountinfo batches that do not add up to
// the file ('gap') do too; an attach whose mountinfo line (for the source statmount lacks before
// 6.15) comes in a later batch waits for it; events that raced the snapshot change nothing.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  formatMountinfoLine,
  parseMountinfo,
  UserSpaceMountWatcher,
  type FanotifyBatch,
  type KernelMount,
  type MountChange,
  type MountinfoBatch,
  type UserWatcherIo,
} from '../src/index.js';

/** An async stream the test feeds. */
class Feed<T> implements AsyncIterable<T> {
  #items: T[] = [];
  #waiting: ((r: IteratorResult<T>) => void) | undefined;
  #closed = false;
  push(item: T): void {
    if (this.#waiting !== undefined) {
      const resolve = this.#waiting;
      this.#waiting = undefined;
      resolve({ done: false, value: item });
    } else this.#items.push(item);
  }
  close(): void {
    this.#closed = true;
    this.#waiting?.({ done: true, value: undefined });
  }
  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => {
        if (this.#items.length > 0) return Promise.resolve({ done: false, value: this.#items.shift()! });
        if (this.#closed) return Promise.resolve({ done: true, value: undefined });
        return new Promise((resolve) => (this.#waiting = resolve));
      },
    };
  }
}

/** A mount namespace: KernelMounts by unique id (without source, as on 6.12) and their lines. */
class Namespace {
  mounts = new Map<bigint, KernelMount>();
  #next = 100;
  constructor() {
    this.add('/', 1);
  }
  add(mountPoint: string, parentId = 100, options: { id?: number } = {}): KernelMount {
    const id = options.id ?? this.#next++;
    const mount: KernelMount = {
      id,
      parentId: mountPoint === '/' ? 1 : parentId,
      uniqueId: BigInt(0x80000000 + this.mounts.size + (this.#next << 8)),
      parentUniqueId: 0n,
      major: 0,
      minor: id,
      root: '/',
      mountPoint,
      mountAttr: 0n,
      propagation: 1n << 18n,
      peerGroup: 0,
      master: 0,
      propagateFrom: 0,
      fsType: 'tmpfs',
      mountOptions: 'inode64',
      sbFlags: 0,
    };
    this.mounts.set(mount.uniqueId, mount);
    return mount;
  }
  line(m: KernelMount): string {
    const access = (m.mountAttr & 1n) === 0n ? 'rw' : 'ro';
    return `${m.id} ${m.parentId} ${m.major}:${m.minor} / ${m.mountPoint.replace(/ /g, '\\040')} ${access},relatime - tmpfs src${m.id} rw,inode64`;
  }
  text(): string {
    return [...this.mounts.values()].map((m) => `${this.line(m)}\n`).join('');
  }
  /** What the binding's statmount would say: no source (6.12), unless the test gave the mount one (6.15+). */
  stat(uniqueId: bigint): KernelMount | null {
    const m = this.mounts.get(uniqueId);
    if (m === undefined) return null;
    return { ...m };
  }
}

function io(ns: Namespace, kernel: boolean) {
  const mountinfo = new Feed<MountinfoBatch>();
  const fanotify = new Feed<FanotifyBatch>();
  let last = new Map<number, string>();
  let generation = 0;
  const reads = { requested: 0 };
  /** Pushes the difference since the last batch, as MountinfoWatch does after a read. */
  const read = (tamper?: (batch: MountinfoBatch) => void) => {
    const now = new Map([...ns.mounts.values()].map((m) => [m.id, ns.line(m)]));
    const batch: MountinfoBatch = { generation: ++generation, added: [], removed: [], changed: [], lines: now.size, wakeups: 0, reread: true };
    for (const [id, line] of now) {
      const old = last.get(id);
      if (old === undefined) batch.added.push(line);
      else if (old !== line) batch.changed.push(line);
    }
    for (const id of last.keys()) if (!now.has(id)) batch.removed.push(id);
    last = now;
    tamper?.(batch);
    mountinfo.push(batch);
  };
  /** A change's wakeup: 'mountinfo' re-reads (every wakeup); 'kernel' (reread: 'on-request')
   *  reports the wakeup only, after its first read. */
  const poll = (tamper?: (batch: MountinfoBatch) => void) => {
    if (!kernel || generation === 0) read(tamper);
    else mountinfo.push({ generation, added: [], removed: [], changed: [], lines: last.size, wakeups: 1, reread: false });
  };
  const value: UserWatcherIo = {
    mountinfo: Object.assign(
      mountinfo,
      kernel
        ? {
            requestRead: () => {
              reads.requested++;
              read();
            },
          }
        : {},
    ),
    readMountinfo: async () => ns.text(),
    mntNs: 7,
    ...(kernel
      ? {
          fanotify,
          stat: async (uniqueId: bigint) => ns.stat(uniqueId),
          list: async () => [...ns.mounts.values()].map((m) => ns.stat(m.uniqueId)!),
        }
      : {}),
  };
  return { value, poll, fanotify, reads };
}

/** A next() still pending from the last converge() (a change is never dropped). */
let pending: Promise<IteratorResult<MountChange, undefined>> | undefined;

/** Reads changes until the watcher's table equals the namespace's mountinfo (or throws after 3 s). */
async function converge(watcher: UserSpaceMountWatcher, ns: Namespace): Promise<MountChange[]> {
  const seen: MountChange[] = [];
  const deadline = Date.now() + 3000;
  for (;;) {
    const truth = parseMountinfo(ns.text(), { mntNs: 7 });
    const equal = truth.length === watcher.table.size && truth.every((m) => {
      const have = watcher.table.get(m.id);
      if (have === undefined) return false;
      const { uniqueId: _u, ...rest } = have;
      return formatMountinfoLine(rest) === formatMountinfoLine(m);
    });
    if (equal) return seen;
    if (Date.now() > deadline) throw new Error(`did not converge: ${JSON.stringify(seen.map((c) => c.kind))}`);
    pending ??= watcher.next();
    const next = await Promise.race([pending, new Promise<undefined>((r) => setTimeout(() => r(undefined), 100))]);
    if (next === undefined) continue;
    pending = undefined;
    if (next.done !== true) seen.push(next.value);
  }
}

const describe = (changes: MountChange[]) => changes.map((c) => (c.kind === 'resync' ? `resync ${c.reason}` : `${c.kind} ${c.mount.mountPoint}`));

test('mountinfo: changes from the batches; batches that do not add up to the file resynchronise (gap)', async () => {
  const ns = new Namespace();
  const { value, poll } = io(ns, false);
  poll();
  const watcher = await UserSpaceMountWatcher.open('mountinfo', value, { checkIntervalMs: 0 });
  assert.is(watcher.table.size, 1);
  const a = ns.add('/a');
  poll();
  assert.equal(describe(await converge(watcher, ns)), ['mount /a']);
  a.mountPoint = '/b';
  poll();
  assert.equal(describe(await converge(watcher, ns)), ['move /b']);
  // A batch that lost a line: the table is read again.
  const c = ns.add('/c');
  ns.add('/d');
  poll((batch) => (batch.added = batch.added.filter((line) => !line.startsWith(`${c.id} `))));
  assert.equal(describe(await converge(watcher, ns)), ['resync gap', 'mount /c', 'mount /d']);
  assert.is(watcher.resyncs, 1);
  await watcher.close();
  pending = undefined;
  assert.equal(await watcher.next(), { done: true, value: undefined });
});

test('kernel: attach, move with submounts, detach; an overflow resynchronises (overrun)', async () => {
  const ns = new Namespace();
  const { value, poll, fanotify } = io(ns, true);
  poll();
  // An attach that raced the snapshot: already in the table, it changes nothing.
  const early = ns.add('/early');
  const watcher = await UserSpaceMountWatcher.open('kernel', value, { checkIntervalMs: 0 });
  poll();
  fanotify.push({ events: [{ kind: 'attach', uniqueId: early.uniqueId }], overflow: false });
  assert.equal(describe(await converge(watcher, ns)), []);
  const a = ns.add('/a');
  const sub = ns.add('/a/sub', a.id);
  // fanotify first; the lines (the sources, which statmount lacks here) in a later batch.
  fanotify.push({ events: [{ kind: 'attach', uniqueId: a.uniqueId }, { kind: 'attach', uniqueId: sub.uniqueId }], overflow: false });
  await new Promise((r) => setTimeout(r, 20));
  poll();
  assert.equal(describe(await converge(watcher, ns)), ['mount /a', 'mount /a/sub']);
  a.mountPoint = '/m';
  sub.mountPoint = '/m/sub';
  fanotify.push({ events: [{ kind: 'move', uniqueId: a.uniqueId }], overflow: false });
  poll();
  assert.equal(describe(await converge(watcher, ns)), ['move /m', 'move /m/sub']);
  // Events lost in the kernel's queue: its overflow is the first thing the watcher hears.
  ns.mounts.delete(sub.uniqueId);
  ns.add('/lost');
  fanotify.push({ events: [], overflow: true });
  // (The move's mountinfo batch, still unread, may report the umount before the resync does.)
  const afterOverflow = describe(await converge(watcher, ns));
  assert.ok(afterOverflow.includes('resync overrun'), afterOverflow.join(', '));
  assert.equal(afterOverflow.filter((c) => c !== 'resync overrun').sort(), ['mount /lost', 'umount /m/sub']);
  poll();
  ns.mounts.delete(a.uniqueId);
  fanotify.push({ events: [{ kind: 'detach', uniqueId: a.uniqueId, mount: null }], overflow: false });
  poll();
  assert.equal(describe(await converge(watcher, ns)), ['umount /m']);
  assert.is(watcher.resyncs, 1);
  assert.ok(watcher.nsSeq > 0n);
  await watcher.close();
  pending = undefined;
});

test('kernel: a mount fanotify never reported is found once the streams are quiet (gap)', async () => {
  const ns = new Namespace();
  const { value, poll } = io(ns, true);
  poll();
  const watcher = await UserSpaceMountWatcher.open('kernel', value, { checkIntervalMs: 0 });
  ns.add('/unreported');
  poll();
  const start = Date.now();
  assert.equal(describe(await converge(watcher, ns)), ['resync gap', 'mount /unreported']);
  // Not at the first quiet moment (fanotify may trail the poll), after a longer one.
  assert.ok(Date.now() - start >= 1000, `${Date.now() - start} ms`);
  await watcher.close();
  pending = undefined;
});

test('kernel: a wakeup fanotify explains is not read again; a lone wakeup (remount) is, at the end of its burst', async () => {
  const ns = new Namespace();
  const { value, poll, fanotify, reads } = io(ns, true);
  poll();
  const watcher = await UserSpaceMountWatcher.open('kernel', value, { checkIntervalMs: 0 });
  for (let i = 0; i < 5; i++) {
    const m = ns.add(`/p${i}`);
    m.source = `src${m.id}`; // statmount knows the source (6.15+): no line needed
    fanotify.push({ events: [{ kind: 'attach', uniqueId: m.uniqueId }], overflow: false });
    poll();
    assert.equal(describe(await converge(watcher, ns)), [`mount /p${i}`]);
  }
  await new Promise((r) => setTimeout(r, 120));
  assert.is(reads.requested, 0, 'each wakeup had its event');
  assert.is(watcher.rereads, 0);
  // A remount: a wakeup and no event.
  const p0 = [...ns.mounts.values()].find((m) => m.mountPoint === '/p0')!;
  p0.mountAttr = 1n;
  poll();
  assert.equal(describe(await converge(watcher, ns)), ['remount /p0']);
  assert.is(reads.requested, 1);
  await watcher.close();
  pending = undefined;
});

test('kernel: a storm whose wakeups merged hides a remount; re-read at most once a second, and once at its end; exact', async () => {
  const ns = new Namespace();
  const { value, poll, fanotify, reads } = io(ns, true);
  poll();
  const watcher = await UserSpaceMountWatcher.open('kernel', value, { checkIntervalMs: 0 });
  const victim = ns.add('/victim');
  victim.source = `src${victim.id}`;
  fanotify.push({ events: [{ kind: 'attach', uniqueId: victim.uniqueId }], overflow: false });
  poll();
  await converge(watcher, ns);
  const seen: MountChange[] = [];
  const consuming = (async () => {
    for (;;) {
      const next = await watcher.next();
      if (next.done === true) return;
      seen.push(next.value);
    }
  })();
  const start = Date.now();
  // 2.5 s of attaches, 4 per batch and one wakeup per batch (the kernel merged the others); the
  // remount of /victim in the middle has no wakeup of its own.
  for (let i = 0; Date.now() - start < 2500; i++) {
    const batch = [0, 1, 2, 3].map((k) => {
      const m = ns.add(`/s/${i}.${k}`);
      m.source = `src${m.id}`;
      return { kind: 'attach' as const, uniqueId: m.uniqueId };
    });
    if (i === 20) victim.mountAttr = 1n;
    fanotify.push({ events: batch, overflow: false });
    poll();
    await new Promise((r) => setTimeout(r, 10));
  }
  const during = reads.requested;
  assert.ok(during >= 2 && during <= 3, `reads during 2.5 s: ${during}`);
  const truth = () => parseMountinfo(ns.text(), { mntNs: 7 });
  const same = () =>
    truth().length === watcher.table.size &&
    truth().every((m) => {
      const have = watcher.table.get(m.id);
      if (have === undefined) return false;
      const { uniqueId: _u, ...rest } = have;
      return formatMountinfoLine(rest) === formatMountinfoLine(m);
    });
  const deadline = Date.now() + 3000;
  while ((!same() || reads.requested === during) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 200));
  assert.ok(same(), 'the table converged on the namespace');
  assert.is(reads.requested, during + 1, 'one read at the end');
  const remounts = describe(seen).filter((c) => c.startsWith('remount'));
  assert.equal(remounts, ['remount /victim']);
  assert.is(watcher.resyncs, 0);
  await watcher.close();
  await consuming;
});

test.run();
