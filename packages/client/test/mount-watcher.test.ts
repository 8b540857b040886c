// MountWatcher's state machine, driven through its io (the one seam UsipClient.watchMounts
// fills with the real sockets) by a model of a mount namespace: mounts, umounts, moves and
// remounts make events numbered as the module numbers them, which are delivered, delayed,
// dropped or overrun at will; mount-get reads the model's state at the time of the call (so it
// can be ahead of its event, as in the kernel); replies and events are bytes made with the real
// codec. The real thing runs in the VM: packages/cli/test/vm-mounts.test.ts.
import type { GenlNotification } from '@usip/netlink-native';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Action, Command, EVENT_ATTRIBUTE_SET, MOUNT_ATTRIBUTE_SET, MountAttr, type EventAttributes } from '../src/generated/usip.js';
import { UsipDumpInterruptedError, UsipProtocolError } from '../src/errors.js';
import { decodeMount, decodeMountEvent, encodeDev, mountEventNsSeq } from '../src/mount-codec.js';
import { MountWatcher, descendants, type MountChange, type MountTableChange, type MountWatcherIo, type MountWatcherTuning } from '../src/mount-watcher.js';
import { sameMount, type MountInfo, type MountTable } from '../src/mounts.js';
import { encodeAttributes } from '../src/netlink/attributes.js';

const FAMILY = 0x22;
const MNT_NS = 4026532000;

interface FakeMount {
  id: number;
  uniqueId: bigint;
  parentId: number;
  mountPoint: string;
  attr: number;
  minor: number;
  shared?: number;
  /** Outside the watcher's root: not in dumps, no path in events, ENOENT for mount-get. */
  hidden: boolean;
}

/** A mount namespace as the module sees it, and the events it makes. */
class FakeNamespace {
  readonly mounts = new Map<number, FakeMount>();
  seq = 0;
  readonly outbox: EventAttributes[] = [];
  #nextId = 2;
  #nextUnique = 0x80000001n;
  #nextMinor = 100;
  readonly #freeIds: number[] = [];

  constructor(readonly options: { uniqueIds: boolean; reuseIds: boolean }) {
    this.mounts.set(1, { id: 1, uniqueId: 0x80000000n, parentId: 0, mountPoint: '/', attr: MountAttr.relatime, minor: 1, hidden: false });
  }

  #id(): number {
    if (this.options.reuseIds && this.#freeIds.length > 0) {
      this.#freeIds.sort((a, b) => a - b);
      return this.#freeIds.shift()!;
    }
    return this.#nextId++;
  }

  #event(action: number, m: FakeMount, subtree = false): void {
    const event: EventAttributes = {
      type: 1,
      action,
      mountId: m.id,
      parentId: m.parentId,
      dev: encodeDev(0, m.minor),
      fsType: 'tmpfs',
      source: `src${m.minor}`,
      nsSeq: BigInt(++this.seq),
    };
    if (!m.hidden) event.path = m.mountPoint;
    if (this.options.uniqueIds) event.uniqueId = m.uniqueId;
    if (subtree) event.subtree = true;
    this.outbox.push(event);
  }

  /** A tree of mounts unmounted at once, told as the module tells a big one: one subtree event. */
  umountTree(id: number): void {
    const top = this.mounts.get(id)!;
    this.#event(Action.umount, top, true);
    for (const m of this.#subtree(id)) {
      this.mounts.delete(m.id);
      this.#freeIds.push(m.id);
    }
  }

  /** A tree of mounts attached at once (its top at parentId/name, then a chain of @depth below). */
  mountTree(parentId: number, name: string, depth: number): number {
    const outbox = this.outbox.length;
    const top = this.mount(parentId, name);
    let below = top;
    for (let i = 0; i < depth; i++) below = this.mount(below, `d${i}`);
    // One event for them all, numbered once.
    this.outbox.splice(outbox);
    this.seq -= depth + 1;
    this.#event(Action.mount, this.mounts.get(top)!, true);
    return top;
  }

  /** A change that happened but whose event the module lost before queuing (a hole). */
  skip(): void {
    this.seq++;
  }

  mount(parentId: number, name: string, hidden = false): number {
    const parent = this.mounts.get(parentId)!;
    const m: FakeMount = {
      id: this.#id(),
      uniqueId: this.#nextUnique++,
      parentId,
      mountPoint: parent.mountPoint === '/' ? `/${name}` : `${parent.mountPoint}/${name}`,
      attr: MountAttr.relatime,
      minor: this.#nextMinor++,
      hidden: hidden || parent.hidden,
    };
    this.mounts.set(m.id, m);
    this.#event(Action.mount, m);
    return m.id;
  }

  #subtree(id: number): FakeMount[] {
    const out = [this.mounts.get(id)!];
    for (let i = 0; i < out.length; i++) for (const m of this.mounts.values()) if (m.parentId === out[i]!.id && m.id !== out[i]!.id) out.push(m);
    return out;
  }

  umount(id: number): void {
    for (const m of this.#subtree(id)) {
      this.#event(Action.umount, m);
      this.mounts.delete(m.id);
      this.#freeIds.push(m.id);
    }
  }

  move(id: number, parentId: number, name: string, options: { hidden?: boolean } = {}): void {
    const m = this.mounts.get(id)!;
    const parent = this.mounts.get(parentId)!;
    const from = m.mountPoint;
    const to = name === '' ? parent.mountPoint : parent.mountPoint === '/' ? `/${name}` : `${parent.mountPoint}/${name}`;
    for (const d of this.#subtree(id)) {
      d.mountPoint = d === m ? to : to === '/' ? d.mountPoint.slice(from.length) : to + d.mountPoint.slice(from.length);
      d.hidden = options.hidden ?? parent.hidden;
    }
    m.parentId = parentId;
    this.#event(Action.move, m);
  }

  remount(id: number, attr: number): void {
    const m = this.mounts.get(id)!;
    m.attr = attr;
    this.#event(Action.remount, m);
  }

  share(id: number, group: number): void {
    const m = this.mounts.get(id)!;
    m.shared = group;
    this.#event(Action.remount, m);
  }

  info(m: FakeMount): MountInfo {
    const attributes = encodeAttributes(MOUNT_ATTRIBUTE_SET, {
      mountId: m.id,
      parentId: m.parentId,
      uniqueId: this.options.uniqueIds ? m.uniqueId : undefined,
      devMajor: 0,
      devMinor: m.minor,
      root: '/',
      mountPoint: m.mountPoint,
      attr: m.attr,
      fsType: 'tmpfs',
      source: `src${m.minor}`,
      superOptions: 'rw,inode64',
      shared: m.shared,
      mntNs: MNT_NS,
    });
    return decodeMount('test', attributes);
  }

  get(id: number, uniqueId: bigint | undefined): MountInfo | undefined {
    const m = uniqueId === undefined ? this.mounts.get(id) : [...this.mounts.values()].find((x) => x.uniqueId === uniqueId);
    return m === undefined || m.hidden ? undefined : this.info(m);
  }

  dump(): MountTable {
    return { mounts: [...this.mounts.values()].filter((m) => !m.hidden).map((m) => this.info(m)), nsSeq: BigInt(this.seq) };
  }
}

/** The listener socket: what the test delivers, in order, taken in batches as the binding
 *  takes them: everything delivered by the time the watcher reads. */
class Channel {
  #items: GenlNotification[] = [];
  #waiting: ((items: GenlNotification[] | undefined) => void) | undefined;
  #ended = false;
  /** Events the module lost for this listener and has not reported yet. */
  #unreported = 0;

  push(item: GenlNotification): void {
    this.#items.push(item);
    if (this.#waiting !== undefined) {
      const resolve = this.#waiting;
      this.#waiting = undefined;
      // What is pushed in the same turn joins the batch, as datagrams already queued do.
      queueMicrotask(() => resolve(this.#takeAll()));
    }
  }

  /**
   * Delivers the namespace's waiting events; `drop` picks the ones the module loses. Losses are
   * reported by the next event delivered, or, as the module does once its queue has drained, by
   * a missed message.
   */
  deliver(ns: FakeNamespace, drop: (event: EventAttributes, index: number) => boolean = () => false): void {
    ns.outbox.splice(0).forEach((event, index) => {
      if (drop(event, index)) {
        this.#unreported++;
        return;
      }
      this.push(message({ ...event, missed: this.#unreported }));
      this.#unreported = 0;
    });
    if (this.#unreported > 0) {
      this.push(missedMessage(this.#unreported));
      this.#unreported = 0;
    }
  }

  end(): void {
    this.#ended = true;
    this.#waiting?.(undefined);
    this.#waiting = undefined;
  }

  #takeAll(): GenlNotification[] {
    const items = this.#items;
    this.#items = [];
    return items;
  }

  /** Everything delivered (at least one item; waits for one), or undefined once ended. */
  take(): Promise<GenlNotification[] | undefined> {
    if (this.#ended) return Promise.resolve(undefined);
    if (this.#items.length > 0) return Promise.resolve(this.#takeAll());
    return new Promise((resolve) => {
      this.#waiting = resolve;
    });
  }
}

function missedMessage(missed: number): GenlNotification {
  return { kind: 'message', familyId: FAMILY, command: Command.missed, version: 1, attributes: encodeAttributes(EVENT_ATTRIBUTE_SET, { listenerId: 1, missed }), group: 0 };
}

function message(attributes: EventAttributes): GenlNotification {
  return { kind: 'message', familyId: FAMILY, command: Command.mtabEvent, version: 1, attributes: encodeAttributes(EVENT_ATTRIBUTE_SET, attributes), group: 0 };
}

interface Harness {
  /** The consumer's next() in flight (a consumer waits for changes all the time). */
  pending?: Promise<IteratorResult<MountChange, undefined>>;
  ns: FakeNamespace;
  channel: Channel;
  watcher: MountWatcher;
  /** mount-gets the watcher asked for itself (io.fetch). */
  fetches: { id: number; uniqueId: bigint | undefined }[];
  /** mount-gets the io made with a batch, as the binding does (io.next). */
  batchFetches: { id: number; uniqueId: bigint | undefined }[];
  dumps: number;
  /** Single-attempt (bulk) dumps to refuse as interrupted, as a busy namespace would. */
  interruptBulk: number;
  /** The fetch limit of each io.next() call. */
  fetchLimits: number[];
  /** What the last dump was given as the table its entries may be taken from. */
  dumpPrevious?: ReadonlyMap<number, MountInfo>;
  /** Mount ids whose batch mount-get fails with another error than ENOENT (left unanswered). */
  unanswered: Set<number>;
  closed: boolean;
}

async function harness(
  options: { uniqueIds?: boolean; reuseIds?: boolean; setup?: (ns: FakeNamespace) => void; tuning?: Partial<MountWatcherTuning>; signal?: AbortSignal } = {},
): Promise<Harness> {
  const ns = new FakeNamespace({ uniqueIds: options.uniqueIds ?? true, reuseIds: options.reuseIds ?? false });
  options.setup?.(ns);
  ns.outbox.length = 0; // before the listener was registered
  const channel = new Channel();
  const h = { ns, channel, fetches: [], batchFetches: [], dumps: 0, interruptBulk: 0, closed: false, fetchLimits: [], unanswered: new Set() } as unknown as Harness;
  const io: MountWatcherIo = {
    // As the binding: the batch, and one mount-get per distinct key (unique id, else mount id)
    // of its mtab events that are not umounts, made now (so possibly after later changes);
    // none when they would be more than the limit, or when the batch has an overrun.
    async next(fetchLimit, nextSeq) {
      h.fetchLimits.push(fetchLimit);
      const items = await channel.take();
      if (items === undefined) return undefined;
      const batch = (mounts: (MountInfo | null | undefined)[]) => ({ items, mount: (index: number) => mounts[index] });
      const mounts = new Array<MountInfo | null | undefined>(items.length);
      const keys = new Map<number | bigint, number[]>();
      if (items.every((item) => item.kind === 'message')) {
        items.forEach((item, index) => {
          if (item.kind !== 'message' || item.familyId !== FAMILY || item.command !== Command.mtabEvent) return;
          const event = decodeMountEvent(item.attributes);
          // Umounts need none; events before nextSeq are in the table already (injected ones
          // have no ns-seq at all).
          if (event.action === Action.umount || event.nsSeq < nextSeq) return;
          const key = event.uniqueId ?? event.mountId;
          keys.set(key, [...(keys.get(key) ?? []), index]);
        });
      }
      if (keys.size > fetchLimit) return batch(mounts);
      for (const indexes of keys.values()) {
        const event = decodeMountEvent((items[indexes[0]!] as { attributes: Buffer }).attributes);
        h.batchFetches.push({ id: event.mountId, uniqueId: event.uniqueId });
        if (h.unanswered.has(event.mountId)) continue;
        const mount = ns.get(event.mountId, event.uniqueId) ?? null;
        for (const index of indexes) mounts[index] = mount;
      }
      return batch(mounts);
    },
    familyId: FAMILY,
    async fetch(id, uniqueId) {
      h.fetches.push({ id, uniqueId });
      await new Promise((resolve) => setImmediate(resolve));
      return ns.get(id, uniqueId);
    },
    async dump(attempts, previous) {
      h.dumps++;
      h.dumpPrevious = previous;
      if (attempts === 1 && h.interruptBulk > 0) {
        h.interruptBulk--;
        throw new UsipDumpInterruptedError('usip mount-get', 1);
      }
      return ns.dump();
    },
    async close() {
      h.closed = true;
      channel.end();
    },
  };
  h.watcher = new MountWatcher(io, ns.dump(), { listenerId: 1, mntNs: MNT_NS, receiveBufferSize: 1 << 20, signal: options.signal }, { ...options.tuning });
  return h;
}

/** A consumer's own copy of the table, built from the changes alone. */
class Mirror {
  readonly map: Map<number, MountInfo>;
  constructor(watcher: MountWatcher) {
    this.map = new Map(watcher.table);
  }
  apply(change: MountChange): void {
    if (change.kind === 'umount') this.map.delete(change.mount.id);
    else if (change.kind !== 'resync') this.map.set(change.mount.id, change.mount);
  }
}

async function within<T>(promise: Promise<T>, what: string, ms = 2000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`stuck: ${what}`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

const QUIET = Symbol('quiet');

/**
 * Takes changes until the watcher is current with the namespace (events that change nothing
 * yield nothing, so the watcher's ns-seq says when), checking the mirror after each.
 */
async function catchUp(h: Harness, mirror = new Mirror(h.watcher)): Promise<MountChange[]> {
  const changes: MountChange[] = [];
  const start = Date.now();
  for (;;) {
    h.pending ??= h.watcher.next();
    const next = await Promise.race([h.pending, new Promise<typeof QUIET>((resolve) => setTimeout(resolve, 2, QUIET))]);
    if (next === QUIET) {
      if (h.watcher.nsSeq >= BigInt(h.ns.seq)) return changes;
      if (Date.now() - start > 2000) throw new Error(`stuck: waiting at ns-seq ${h.watcher.nsSeq} of ${h.ns.seq}`);
      continue;
    }
    h.pending = undefined;
    if (next.done === true) throw new Error('the watcher ended');
    changes.push(next.value);
    mirror.apply(next.value);
    assert.equal(mirror.map, new Map(h.watcher.table), 'the table is the snapshot plus the changes so far');
  }
}

function assertTable(h: Harness): void {
  const expected = h.ns.dump().mounts;
  const table = h.watcher.table;
  const wrong = expected.filter((m) => !table.has(m.id) || !sameMount(table.get(m.id)!, m));
  assert.equal(wrong, [], 'every mount of the namespace is in the table as it is');
  assert.is(table.size, expected.length, `table ${[...table.keys()]} vs ${expected.map((m) => m.id)}`);
}

const summary = (changes: MountChange[]) => changes.map((c) => (c.kind === 'resync' ? `resync:${c.reason}` : `${c.kind} ${c.mount.id} ${c.mount.mountPoint}`));

test('the snapshot, then one change per mount, remount and umount', async () => {
  const h = await harness({ setup: (ns) => ns.mount(1, 'srv') });
  assert.is(h.watcher.table.size, 2);
  assert.is(h.watcher.nsSeq, 1n);
  const a = h.ns.mount(1, 'a');
  h.channel.deliver(h.ns);
  let changes = await catchUp(h);
  assert.equal(summary(changes), [`mount ${a} /a`]);
  assert.is(changes[0]!.kind === 'mount' && changes[0]!.nsSeq, 2n);
  assert.not.ok('previous' in changes[0]!);
  h.ns.remount(a, MountAttr.ro | MountAttr.relatime);
  h.channel.deliver(h.ns);
  changes = await catchUp(h);
  assert.equal(summary(changes), [`remount ${a} /a`]);
  const remount = changes[0] as MountTableChange;
  assert.equal([remount.previous?.options, remount.mount.options], ['rw,relatime', 'ro,relatime']);
  h.ns.umount(a);
  h.channel.deliver(h.ns);
  changes = await catchUp(h);
  assert.equal(summary(changes), [`umount ${a} /a`]);
  assert.is(changes[0]!.kind === 'umount' && changes[0]!.mount.options, 'ro,relatime', 'umount carries the mount as it was');
  assertTable(h);
  assert.is(h.watcher.resyncs, 0, 'no resync');
});

test('a batch is fetched with one mount-get per mount, by unique id, and applied in order', async () => {
  const h = await harness();
  const a = h.ns.mount(1, 'a');
  const b = h.ns.mount(a, 'b');
  h.ns.remount(a, MountAttr.noexec);
  h.ns.remount(a, MountAttr.noexec | MountAttr.nodev);
  h.ns.umount(b);
  h.channel.deliver(h.ns);
  const changes = await catchUp(h);
  // b was gone when it was fetched: it never shows. a was fetched once, in its latest state.
  assert.equal(summary(changes), [`mount ${a} /a`]);
  assert.is((changes[0] as MountTableChange).mount.options, 'rw,nodev,noexec');
  // Made by the io with the batch (the binding's one call), none by the watcher itself.
  assert.equal(h.batchFetches.map((f) => f.id).sort(), [a, b]);
  assert.ok(h.batchFetches.every((f) => f.uniqueId !== undefined));
  assert.equal(h.fetches, []);
  assert.ok(h.fetchLimits.every((limit) => limit === 63), 'with unique ids, up to a backlog (bulkMin, or a sixteenth of the table) less one');
  assertTable(h);
});

test('with unique ids, a batch naming a sixteenth of the table (bulkMin at least) is a backlog: a resync, no mount-get', async () => {
  const h = await harness({ tuning: { bulkMin: 8 } });
  const ids: number[] = [];
  for (let i = 0; i < 7; i++) ids.push(h.ns.mount(1, `m${i}`));
  h.channel.deliver(h.ns);
  // Seven mounts: below the backlog, fetched with the batch.
  assert.is(summary(await catchUp(h)).length, 7);
  assert.is(h.batchFetches.length, 7);
  h.batchFetches.length = 0;
  for (let i = 7; i < 15; i++) ids.push(h.ns.mount(1, `m${i}`));
  h.ns.umount(ids[8]!);
  h.channel.deliver(h.ns);
  const changes = await catchUp(h);
  assert.is(summary(changes)[0], 'resync:backlog');
  assert.equal(summary(changes.slice(1)).sort(), ids.slice(7).filter((id) => id !== ids[8]).map((id) => `mount ${id} /m${ids.indexOf(id)}`).sort());
  assert.equal([h.fetches, h.batchFetches], [[], []], 'no mount-get');
  assert.equal(h.fetchLimits.at(-1), 7);
  assertTable(h);
});

test('with unique ids, big batches one after another are a backlog once their mounts reach a sixteenth of the table', async () => {
  const h = await harness({
    tuning: { bulkMin: 4 },
    setup: (ns) => {
      for (let i = 0; i < 100; i++) ns.mount(1, `pre${i}`);
    },
  });
  // 102 mounts: a backlog is 7 (a sixteenth); batches of 4 or more count towards it.
  const first = [0, 1, 2, 3, 4].map((i) => h.ns.mount(1, `a${i}`));
  h.channel.deliver(h.ns);
  assert.is(summary(await catchUp(h)).length, 5);
  assert.equal(h.batchFetches.map((f) => f.id), first, 'fetched: 5 of 7');
  assert.is(h.fetchLimits[0], 6);
  // A small batch ends the run.
  const small = h.ns.mount(1, 'small');
  h.channel.deliver(h.ns);
  assert.equal(summary(await catchUp(h)), [`mount ${small} /small`]);
  const second = [0, 1, 2, 3, 4].map((i) => h.ns.mount(1, `b${i}`));
  h.channel.deliver(h.ns);
  assert.is(summary(await catchUp(h)).length, 5, 'a new run: fetched');
  h.batchFetches.length = 0;
  // The read waiting for the next batch was asked with the run at 5 of 7.
  assert.is(h.fetchLimits.at(-1), 3, 'at most bulkMin - 1 once the run has named 5 of 7');
  const third = [0, 1, 2, 3].map((i) => h.ns.mount(1, `c${i}`));
  h.channel.deliver(h.ns);
  const changes = await catchUp(h);
  assert.is(summary(changes)[0], 'resync:backlog');
  assert.equal(summary(changes.slice(1)).sort(), third.map((id, i) => `mount ${id} /c${i}`).sort());
  assert.equal([h.fetches, h.batchFetches], [[], []], 'no mount-get');
  assertTable(h);
  void second;
});

test('the io is told which ns-seq comes next: events the table has already get no mount-get', async () => {
  const h = await harness();
  const a = h.ns.mount(1, 'a');
  const stale = h.ns.outbox.slice();
  h.channel.deliver(h.ns);
  await catchUp(h);
  // a's event again (as after a resync whose dump had it), then b's.
  const b = h.ns.mount(1, 'b');
  for (const event of stale) h.channel.push(message(event));
  h.batchFetches.length = 0;
  h.channel.deliver(h.ns);
  assert.equal(summary(await catchUp(h)), [`mount ${b} /b`]);
  assert.equal(h.batchFetches.map((f) => f.id), [b]);
  assert.is(h.fetches.length, 0);
  assertTable(h);
  void a;
});

test('next() calls are answered in call order, also when changes are at hand', async () => {
  const h = await harness();
  const first = h.watcher.next();
  const second = h.watcher.next();
  const a = h.ns.mount(1, 'a');
  const b = h.ns.mount(1, 'b');
  const c = h.ns.mount(1, 'c');
  h.channel.deliver(h.ns);
  const one = await within(first, 'the first change');
  // The second call waits its turn; a third, made now that changes are at hand, comes after it.
  const third = h.watcher.next();
  const results = await within(Promise.all([second, third]), 'the others');
  assert.equal(summary([one.value!, ...results.map((r) => r.value!)]), [`mount ${a} /a`, `mount ${b} /b`, `mount ${c} /c`]);
  assertTable(h);
});

test('a mount the io could not fetch (a failure other than ENOENT) the watcher fetches itself', async () => {
  const h = await harness();
  const a = h.ns.mount(1, 'a');
  const b = h.ns.mount(1, 'b');
  h.unanswered = new Set([b]);
  h.channel.deliver(h.ns);
  const changes = await catchUp(h);
  assert.equal(summary(changes), [`mount ${a} /a`, `mount ${b} /b`]);
  assert.equal(h.batchFetches.map((f) => f.id), [a, b]);
  assert.equal(h.fetches.map((f) => f.id), [b]);
  assertTable(h);
});

test('without unique ids, a batch that names many mounts is read with one dump, which also answers for the events up to its ns-seq', async () => {
  const h = await harness({ uniqueIds: false, tuning: { bulkMin: 8 } });
  const ids: number[] = [];
  for (let i = 0; i < 20; i++) ids.push(h.ns.mount(1, `m${i}`));
  h.ns.remount(ids[3]!, MountAttr.ro);
  h.ns.umount(ids[4]!);
  // The first 10 events are read now; the rest only after the dump.
  const events = h.ns.outbox.splice(0);
  for (const event of events.slice(0, 10)) h.channel.push(message(event));
  const first = await within(h.watcher.next(), 'the first change');
  assert.is(h.dumps, 1, 'one dump for the batch');
  assert.equal(h.fetchLimits, [7], 'the io may make at most bulkMin - 1 mount-gets by mount id');
  assert.equal([h.fetches, h.batchFetches], [[], []], 'no mount-get');
  for (const event of events.slice(10)) h.channel.push(message(event));
  const rest = await catchUp(h);
  const all = [first.value!, ...rest];
  assert.is(h.dumps, 1, 'the later events are older than the dump: it answers for them too');
  assert.equal(h.fetches, []);
  // m4 was gone when the dump was made: it never shows; m3 shows as the dump has it.
  assert.is(all.filter((c) => c.kind === 'mount').length, 19);
  assert.is(h.watcher.table.get(ids[3]!)!.options, 'ro');
  assertTable(h);
  // Events after the dump's ns-seq are fetched one by one again (by the io: within its limit).
  const late = h.ns.mount(1, 'late');
  h.channel.deliver(h.ns);
  assert.equal(summary(await catchUp(h)), [`mount ${late} /late`]);
  assert.equal(h.batchFetches.map((f) => f.id), [late]);
});

test('with unique ids, a batch that names many mounts, but less than a sixteenth of the table, is fetched by the io, one mount-get each, with no dump', async () => {
  const h = await harness({
    tuning: { bulkMin: 8 },
    setup: (ns) => {
      for (let i = 0; i < 400; i++) ns.mount(1, `pre${i}`);
    },
  });
  const ids: number[] = [];
  for (let i = 0; i < 20; i++) ids.push(h.ns.mount(1, `m${i}`));
  h.ns.remount(ids[3]!, MountAttr.ro);
  h.ns.umount(ids[4]!);
  h.channel.deliver(h.ns);
  const changes = await catchUp(h);
  assert.is(h.dumps, 0);
  assert.equal(h.fetches, []);
  // One per mount named (m3's two events share one), none for the umount.
  assert.is(h.batchFetches.length, 20);
  assert.is(changes.filter((c) => c.kind === 'mount').length, 19);
  assert.is(h.watcher.table.get(ids[3]!)!.options, 'ro');
  assertTable(h);
});

test('a bulk dump the namespace interrupts falls back to a mount-get per mount, and waits before the next', async () => {
  const h = await harness({ uniqueIds: false, tuning: { bulkMin: 4, bulkBackoffMs: 60_000 } });
  h.interruptBulk = 1;
  for (let i = 0; i < 6; i++) h.ns.mount(1, `m${i}`);
  h.channel.deliver(h.ns);
  await catchUp(h);
  assert.is(h.dumps, 1);
  assert.is(h.fetches.length, 6);
  for (let i = 0; i < 6; i++) h.ns.mount(1, `n${i}`);
  h.channel.deliver(h.ns);
  await catchUp(h);
  assert.is(h.dumps, 1, 'backing off');
  assert.is(h.fetches.length, 12);
  assertTable(h);
  assert.is(h.watcher.resyncs, 0);
});

test('a move moves the mount and rewrites its submounts\' mount points, parents first', async () => {
  const h = await harness();
  const a = h.ns.mount(1, 'a');
  const b = h.ns.mount(a, 'b');
  const c = h.ns.mount(b, 'c');
  const d = h.ns.mount(1, 'd');
  const x = h.ns.mount(1, 'ab'); // /ab: not below /a
  h.channel.deliver(h.ns);
  await catchUp(h);
  h.ns.move(a, d, 'in');
  h.channel.deliver(h.ns);
  const changes = await catchUp(h);
  assert.equal(summary(changes), [`move ${a} /d/in`, `move ${b} /d/in/b`, `move ${c} /d/in/b/c`]);
  const [moved] = changes as MountTableChange[];
  assert.equal([moved!.previous?.mountPoint, moved!.previous?.parentId, moved!.mount.parentId], ['/a', 1, d]);
  assert.is(h.watcher.table.get(x)!.mountPoint, '/ab');
  assertTable(h);
  // Submount rewrites take their mount point from the move, even if mount-get is ahead of it.
  h.ns.move(a, 1, 'e');
  h.ns.move(a, 1, 'f');
  h.channel.deliver(h.ns);
  const twice = await catchUp(h);
  assert.equal(summary(twice).slice(-3), [`move ${a} /f`, `move ${b} /f/b`, `move ${c} /f/b/c`]);
  assertTable(h);
  assert.is(h.watcher.resyncs, 0);
});

test('descendants() follows parent ids, parents before children, and stops at cycles', () => {
  const m = (id: number, parentId: number) => ({ id, parentId }) as MountInfo;
  const table = new Map([m(1, 1), m(2, 1), m(3, 2), m(4, 3), m(5, 1), m(6, 7), m(7, 6)].map((x) => [x.id, x]));
  assert.equal(descendants(table, 2).map((x) => x.id), [3, 4]);
  assert.equal(descendants(table, 1).map((x) => x.id), [2, 5, 3, 4]);
  assert.equal(descendants(table, 6).map((x) => x.id), [7]);
});

test('changes that change nothing yield nothing: an unchanged remount, a mount already gone', async () => {
  const h = await harness();
  const a = h.ns.mount(1, 'a');
  h.channel.deliver(h.ns);
  await catchUp(h);
  h.ns.remount(a, MountAttr.relatime);
  const b = h.ns.mount(1, 'b');
  h.ns.umount(b);
  h.channel.deliver(h.ns);
  assert.equal(summary(await catchUp(h)), []);
  assert.is(h.watcher.nsSeq, BigInt(h.ns.seq));
  assertTable(h);
});

test('events the dump already has, and injected events (no ns-seq), are skipped', async () => {
  const h = await harness({ setup: (ns) => ns.mount(1, 'late') });
  assert.is(h.watcher.nsSeq, 1n);
  // The event of the mount the dump has (ns-seq 1), delivered after the dump.
  h.channel.push(message({ type: 1, action: Action.umount, mountId: 2, uniqueId: h.ns.mounts.get(2)!.uniqueId, nsSeq: 1n }));
  h.channel.push(message({ type: 1, action: Action.mount, mountId: 99, path: '/injected' }));
  const a = h.ns.mount(1, 'a');
  h.channel.deliver(h.ns);
  assert.equal(summary(await catchUp(h)), [`mount ${a} /a`]);
  assert.not.ok(h.watcher.table.has(99));
  assertTable(h);
  assert.is(h.watcher.resyncs, 0);
});

test('a hole in ns-seq resynchronises: the resync item, then the differences as changes', async () => {
  const h = await harness({ setup: (ns) => ns.mount(1, 'keep') });
  const a = h.ns.mount(1, 'a');
  h.channel.deliver(h.ns);
  await catchUp(h);
  h.ns.umount(a);
  h.ns.skip(); // a change whose event the module lost
  const b = h.ns.mount(1, 'b');
  h.ns.remount(2, MountAttr.ro);
  h.channel.deliver(h.ns, (e) => e.action === Action.umount);
  const changes = await catchUp(h);
  // Removals first, then the dump's order.
  assert.equal(summary(changes), ['resync:missed', `umount ${a} /a`, 'remount 2 /keep', `mount ${b} /b`]);
  const resync = changes[0] as Extract<MountChange, { kind: 'resync' }>;
  assert.equal(resync, { kind: 'resync', reason: 'missed', nsSeq: BigInt(h.ns.seq), mounts: 3, added: 1, removed: 1, changed: 1 });
  assert.is(h.watcher.resyncs, 1);
  assertTable(h);
  // Without a missed count on the event after the hole (the hook itself was skipped): gap.
  h.ns.skip();
  h.ns.mount(1, 'c');
  h.channel.deliver(h.ns);
  assert.equal(summary(await catchUp(h)).slice(0, 1), ['resync:gap']);
  assertTable(h);
});

test('a subtree event (a tree too big to tell mount by mount) resynchronises, for a mount and for a umount', async () => {
  const h = await harness({ setup: (ns) => ns.mount(1, 'keep') });
  const top = h.ns.mountTree(1, 'tree', 3);
  h.channel.deliver(h.ns);
  const changes = await catchUp(h);
  assert.equal(summary(changes).slice(0, 1), ['resync:subtree']);
  assert.equal(changes.filter((c) => c.kind === 'mount').length, 4, 'the tree\'s four mounts come from the dump');
  assert.ok(h.watcher.table.has(top));
  assertTable(h);
  h.ns.umountTree(top);
  h.channel.deliver(h.ns);
  const gone = await catchUp(h);
  assert.equal(summary(gone).slice(0, 1), ['resync:subtree']);
  assert.equal(gone.filter((c) => c.kind === 'umount').length, 4);
  assertTable(h);
  assert.is(h.watcher.resyncs, 2);
});

test('missed > 0 on an event that is next in sequence is no gap: nothing of this table was lost', async () => {
  const h = await harness();
  const a = h.ns.mount(1, 'a');
  h.channel.deliver(h.ns);
  assert.equal(summary(await catchUp(h)), [`mount ${a} /a`]);
  // An injected event was dropped for the listener: the next event says missed 1.
  h.ns.remount(a, MountAttr.nosuid);
  for (const event of h.ns.outbox.splice(0)) h.channel.push(message({ ...event, missed: 1 }));
  assert.equal(summary(await catchUp(h)), [`remount ${a} /a`]);
  assert.is(h.watcher.resyncs, 0);
  h.ns.mount(1, 'b');
  h.channel.deliver(h.ns);
  await catchUp(h);
  assert.is(h.watcher.resyncs, 0);
});

test('an overrun item resynchronises; what was read before it is not applied', async () => {
  const h = await harness();
  const a = h.ns.mount(1, 'a');
  h.channel.deliver(h.ns);
  h.channel.push({ kind: 'overrun' });
  const b = h.ns.mount(1, 'b');
  // The module lost b's event in the full socket buffer.
  h.channel.deliver(h.ns, () => true);
  const changes = await catchUp(h);
  assert.equal(summary(changes), ['resync:overrun', `mount ${a} /a`, `mount ${b} /b`]);
  assert.is(h.dumpPrevious, h.watcher.table, 'the resync may take unchanged entries from the table');
  assert.equal(h.fetches, [], 'the batch with the overrun was not fetched');
  assertTable(h);
});

test('events lost at the end of a burst: the module\'s missed message, once its queue has drained, resynchronises', async () => {
  const h = await harness();
  const a = h.ns.mount(1, 'a');
  const b = h.ns.mount(1, 'b');
  h.channel.deliver(h.ns, (_e, index) => index === 1);
  const changes = await catchUp(h);
  // a's event and the missed message after it came together: the resync's diff brings both.
  assert.equal(summary(changes), ['resync:missed', `mount ${a} /a`, `mount ${b} /b`]);
  assertTable(h);
  // Covered: no new resync.
  const c = h.ns.mount(1, 'c');
  h.channel.deliver(h.ns);
  assert.equal(summary(await catchUp(h)), [`mount ${c} /c`]);
  assert.is(h.watcher.resyncs, 1);
});

test('moves the watcher cannot apply itself resynchronise: pivot_root, into or out of view', async () => {
  const h = await harness();
  const a = h.ns.mount(1, 'a');
  const sub = h.ns.mount(a, 'sub');
  h.channel.deliver(h.ns);
  await catchUp(h);
  // Out of view: a and its submounts leave the table.
  h.ns.move(a, 1, 'gone', { hidden: true });
  h.channel.deliver(h.ns);
  let changes = await catchUp(h);
  assert.equal(summary(changes), ['resync:move', `umount ${a} /a`, `umount ${sub} /a/sub`]);
  assertTable(h);
  // Into view, with a submount no event told about.
  h.ns.move(a, 1, 'back', { hidden: false });
  h.channel.deliver(h.ns);
  changes = await catchUp(h);
  assert.equal(summary(changes), ['resync:move', `mount ${a} /back`, `mount ${sub} /back/sub`]);
  assertTable(h);
  // Onto the root's mount point.
  h.ns.move(a, 1, '');
  h.channel.deliver(h.ns);
  changes = await catchUp(h);
  assert.equal(summary(changes)[0], 'resync:move');
  assertTable(h);
});

test('without unique ids (Linux before 6.8) a reused mount id is told apart by its device', async () => {
  const h = await harness({ uniqueIds: false, reuseIds: true });
  const a = h.ns.mount(1, 'a');
  h.channel.deliver(h.ns);
  await catchUp(h);
  // a goes, and a new mount takes its id before the watcher reads anything.
  h.ns.remount(a, MountAttr.noexec);
  h.ns.umount(a);
  const b = h.ns.mount(1, 'b');
  assert.is(b, a, 'the id was reused');
  h.channel.deliver(h.ns);
  const changes = await catchUp(h);
  assert.equal(summary(changes), [`umount ${a} /a`, `mount ${b} /b`]);
  const asked = [...h.fetches, ...h.batchFetches];
  assert.ok(asked.length > 0 && asked.every((f) => f.uniqueId === undefined));
  assertTable(h);
});

test('leaving a for await loop closes the watcher: the listener goes, and iterating again yields nothing', async () => {
  for (const leave of ['break', 'return', 'throw'] as const) {
    const h = await harness();
    h.ns.mount(1, 'a');
    h.ns.mount(1, 'b');
    h.channel.deliver(h.ns);
    const seen: string[] = [];
    const loop = async (): Promise<void> => {
      for await (const change of h.watcher) {
        seen.push(summary([change])[0]!);
        if (leave === 'break') break;
        if (leave === 'return') return;
        throw new Error('out');
      }
    };
    await loop().catch((error: Error) => assert.is(error.message, 'out'));
    assert.equal(seen, ['mount 2 /a'], leave);
    assert.is(h.closed, true, `${leave}: the io was closed (the listener unregistered)`);
    assert.is(h.watcher.closed, true);
    for await (const change of h.watcher) assert.unreachable(`yielded ${summary([change])} after ${leave}`);
    assert.equal(await h.watcher.next(), { done: true, value: undefined });
  }
});

test('close() is idempotent and async, ends a pending next() with done; await using closes', async () => {
  const h = await harness();
  const pending = h.watcher.next();
  const first = h.watcher.close();
  const second = h.watcher.close();
  assert.is(first, second, 'every call returns the same promise');
  assert.is(h.watcher[Symbol.asyncDispose](), first);
  await first;
  assert.equal(await within(pending, 'the end'), { done: true, value: undefined });
  assert.is(h.closed, true);
  assert.equal(await h.watcher.next(), { done: true, value: undefined });

  const scoped = await harness();
  {
    await using watcher = scoped.watcher;
    assert.is(watcher.closed, false);
  }
  assert.is(scoped.closed, true);
});

test('a signal given at creation closes the watcher when it aborts; pending and later next() reject with its reason', async () => {
  const controller = new AbortController();
  const h = await harness({ signal: controller.signal });
  const a = h.ns.mount(1, 'a');
  h.channel.deliver(h.ns);
  assert.equal(summary(await catchUp(h)), [`mount ${a} /a`]);
  const pending = h.watcher.next();
  const reason = new Error('enough');
  controller.abort(reason);
  try {
    await within(pending, 'the rejection');
    assert.unreachable('resolved');
  } catch (error) {
    assert.is(error, reason);
  }
  assert.is(h.closed, true);
  assert.is(h.watcher.closed, true);
  await h.watcher.close();
  try {
    await h.watcher.next();
    assert.unreachable('resolved');
  } catch (error) {
    assert.is(error, reason);
  }

  // Aborted before the watcher was made: closed at once, next() rejects with the default reason.
  const early = new AbortController();
  early.abort();
  const h2 = await harness({ signal: early.signal });
  assert.is(h2.watcher.closed, true);
  try {
    await h2.watcher.next();
    assert.unreachable('resolved');
  } catch (error) {
    assert.instance(error, DOMException);
    assert.is((error as DOMException).name, 'AbortError');
  }
  await h2.watcher.close();
  assert.is(h2.closed, true);
});

test('mountEventNsSeq reads an event\'s ns-seq without decoding it: 0 without one, -1 for bytes decodeMountEvent refuses', () => {
  const bytes = (attributes: EventAttributes) => encodeAttributes(EVENT_ATTRIBUTE_SET, attributes);
  const full = bytes({ action: Action.mount, mountId: 7, parentId: 1, uniqueId: 0x1_0000_0007n, path: '/mnt/a', dev: encodeDev(8, 1), nsSeq: 1234n });
  assert.is(mountEventNsSeq(full), 1234);
  assert.is(mountEventNsSeq(full), decodeMountEvent(full).nsSeq);
  assert.is(mountEventNsSeq(bytes({ action: Action.mount, mountId: 7 })), 0);
  // An attribute longer than the buffer, and an ns-seq of the wrong size.
  assert.is(mountEventNsSeq(Buffer.from([12, 0, 22, 0, 1])), -1);
  assert.is(mountEventNsSeq(Buffer.from([8, 0, 22, 0, 1, 0, 0, 0])), -1);
});

test('a malformed event fails the iteration with a UsipProtocolError', async () => {
  const h = await harness();
  h.channel.push({ kind: 'message', familyId: FAMILY, command: Command.mtabEvent, version: 1, attributes: Buffer.from([12, 0, 22, 0, 1]), group: 0 });
  try {
    await within(h.watcher.next(), 'the error');
    assert.unreachable('no error');
  } catch (error) {
    assert.instance(error, UsipProtocolError);
    assert.match((error as Error).message, /^usip mtab-event: malformed event from the module: event\.ns-seq/);
  }
});

/** A small deterministic PRNG (mulberry32), so a failure can be replayed. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

for (const uniqueIds of [true, false]) {
  test(`random storms of changes with losses end in the namespace's table (${uniqueIds ? 'unique ids' : 'reused ids, no unique ids'})`, async () => {
    for (let seed = 1; seed <= 25; seed++) {
      const rand = random(seed);
      // Half the seeds read big batches with a dump.
      const h = await harness({ uniqueIds, reuseIds: !uniqueIds, tuning: seed % 2 === 0 ? { bulkMin: 3 } : {} });
      h.interruptBulk = seed % 4 === 0 ? 3 : 0;
      const mirror = new Mirror(h.watcher);
      let names = 0;
      for (let round = 0; round < 12; round++) {
        const ops = 1 + Math.floor(rand() * 25);
        for (let i = 0; i < ops; i++) {
          const visible = [...h.ns.mounts.values()];
          const pick = visible[Math.floor(rand() * visible.length)]!;
          const r = rand();
          if (r < 0.4 || visible.length < 3) h.ns.mount(pick.id, `m${names++}`);
          else if (r < 0.6 && pick.id !== 1) h.ns.umount(pick.id);
          else if (r < 0.75 && pick.id !== 1) {
            // Move somewhere that is not below itself.
            const inside = new Set<number>();
            const stack = [pick.id];
            while (stack.length > 0) {
              const id = stack.pop()!;
              inside.add(id);
              for (const m of h.ns.mounts.values()) if (m.parentId === id && m.id !== id) stack.push(m.id);
            }
            const targets = visible.filter((m) => !inside.has(m.id));
            h.ns.move(pick.id, targets[Math.floor(rand() * targets.length)]!.id, `v${names++}`);
          } else if (r < 0.9) h.ns.remount(pick.id, rand() < 0.5 ? MountAttr.ro : MountAttr.nodev | MountAttr.relatime);
          else h.ns.share(pick.id, 1 + Math.floor(rand() * 5));
        }
        const lose = rand();
        h.channel.deliver(h.ns, () => lose < 0.3 && rand() < 0.1);
        if (rand() < 0.05) h.channel.push({ kind: 'overrun' });
        // Sometimes the watcher reads now, sometimes the namespace moves on first.
        if (rand() < 0.6) await catchUp(h, mirror);
      }
      // Events lost at the very end are told by a missed message.
      await catchUp(h, mirror);
      try {
        assertTable(h);
      } catch (error) {
        throw new Error(`seed ${seed}: ${(error as Error).message}`);
      }
      await h.watcher.close();
    }
  });
}

test.run();
