// MountWatcher: the mount table of the caller's namespace, kept up to date from the module's
// mtab events, as a snapshot plus a stream of changes.
//
// The protocol (docs: the client's README, "Watching the mount table"):
//  - the listener is registered first, then the table is dumped; the dump's ns-seq S says every
//    event numbered up to S is in it; events numbered after S are applied in order;
//  - the ns-seq of a namespace's events is consecutive, so a hole means events were lost; so
//    does an overrun item (the socket's buffer overflowed: what was lost is unknown), and so
//    does a missed message (the module lost events for the listener and its queue has drained,
//    with no later event to report them). Each resynchronises: a new dump, diffed against the
//    table;
//  - an event says which mount changed and where it is; the rest of a mount's line is read with
//    mount-get (by unique-id when the kernel has them), for a whole batch of events at once: the
//    io takes every event the socket holds and makes their mount-gets in one native call (one
//    wake-up of JavaScript per batch, not per event or per request), then the batch is applied
//    in ns-seq order. A mount-get may see a later state
//    than its event (the mount changed again, or went: ENOENT); the later events then apply
//    on top of it, so the table converges on the namespace's. Mount points and parent ids are
//    the events' own (they are in sequence): a move event moves the mount and rewrites the
//    mount points of its submounts, which get no event of their own.
import { isNetlinkError, type GenlNotification } from '@usip/netlink-native';
import { Action, Command } from './generated/usip.js';
import { UsipDumpInterruptedError, UsipProtocolError } from './errors.js';
import { Lifetime } from './lifetime.js';
import { decodeMountEvent, encodeDev, mountEventNsSeq, type MountEvent } from './mount-codec.js';
import { sameMount, type MountInfo, type MountTable } from './mounts.js';

/** A change of the table: a mount appeared, went, moved or changed otherwise. */
export interface MountTableChange {
  kind: 'mount' | 'umount' | 'move' | 'remount';
  /** The mount as it is now; for umount, as it was. */
  mount: MountInfo;
  /** What the table had for this mount id before (mount: only if an entry was replaced). */
  previous?: MountInfo;
  /** The ns-seq of the event it comes from (after a resync: the dump's). */
  nsSeq: bigint;
}

/**
 * Why the watcher read the whole table again: `gap` (a hole in the events' ns-seq, or an event
 * about a mount the events never introduced), `missed` (the module dropped events for the
 * listener: a hole whose event carried missed > 0, or a missed count in listener-get that no
 * event reported), `overrun` (the listener socket's receive buffer overflowed), `move` (a move
 * the watcher cannot apply by itself: pivot_root, a mount moved into or out of the root's view),
 * `subtree` (an event that stands for a whole tree of mounts changed at once, too many for the
 * module to tell one by one).
 */
/** Why the watcher read the table again: an ns-seq gap, events the module says were missed,
 *  the socket's buffer overrun, a move or subtree change it cannot follow mount by mount, or
 *  a backlog: big batches one after another (64 mounts or more each) naming a sixteenth of the
 *  table or more, which one dump answers for less than a mount-get each (the watcher fell
 *  behind a storm). */
export type MountResyncReason = 'gap' | 'missed' | 'overrun' | 'move' | 'subtree' | 'backlog';

/**
 * The watcher read the table again. It comes before the changes that bring the table to the
 * new dump (added + removed + changed of them, ordinary changes with the dump's nsSeq).
 */
export interface MountResync {
  kind: 'resync';
  reason: MountResyncReason;
  /** The dump's ns-seq. */
  nsSeq: bigint;
  /** Mounts in the new dump. */
  mounts: number;
  /** How many changes follow: mounts that appeared, went, and changed. */
  added: number;
  removed: number;
  changed: number;
}

export type MountChange = MountTableChange | MountResync;

/**
 * One batch of the listener socket's notifications, and what mount-get said of the mounts its
 * events name, asked when the batch was taken (so possibly later than an event: see the top).
 */
export interface MountEventBatch {
  items: GenlNotification[];
  /** For the item at `index`: the mount, null when mount-get said ENOENT (gone), undefined
   *  when it was not asked (not an mtab event, an umount, an event before `nextSeq`, a batch
   *  past the io's limit, or a mount-get that failed otherwise: the watcher then asks itself,
   *  through fetch()). Decoded when asked: the watcher asks only for events it applies. */
  mount(index: number): MountInfo | null | undefined;
}

/** What the watcher needs of the outside world; @internal (UsipClient.watchMounts provides it). */
export interface MountWatcherIo {
  /** The next batch of the listener socket's notifications (waits for at least one), with the
   *  mount-gets of its mtab events numbered `nextSeq` or later (older ones are in the table),
   *  unless the batch names more than `fetchLimit` mounts (then none); undefined once the
   *  socket is closed. */
  next(fetchLimit: number, nextSeq: number): Promise<MountEventBatch | undefined>;
  readonly familyId: number;
  /** mount-get by unique-id (when given) or mount-id; undefined when the mount is not there (ENOENT). */
  fetch(mountId: number, uniqueId: bigint | undefined): Promise<MountInfo | undefined>;
  /** A consistent dump of the table: interrupted ones retried, `attempts` in all (default:
   *  patiently), then UsipDumpInterruptedError. A mount that is in `previous` as it was read
   *  then may be that very entry (not decoded again). */
  dump(attempts?: number, previous?: ReadonlyMap<number, MountInfo>): Promise<MountTable>;
  /** Unregisters the listener and closes the sockets. */
  close(): Promise<void>;
}

/** Tuning of the watcher's loop; @internal. */
export interface MountWatcherTuning {
  /** A batch that names at least this many mounts is read with one dump instead of a
   *  mount-get each; with unique ids, when such batches one after another name a sixteenth of
   *  the table or more, the watcher resynchronises instead (reason 'backlog'). */
  bulkMin: number;
  /** After a bulk dump was interrupted (the namespace is busy), none for this long, doubling
   *  with each further interruption up to 8 times as long; a bulk dump that completes resets it. */
  bulkBackoffMs: number;
}

const DEFAULT_TUNING: MountWatcherTuning = { bulkMin: 64, bulkBackoffMs: 1000 };

const DONE: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });

/**
 * The mount table of the caller's mount namespace, and the changes that keep it current.
 * Made by `UsipClient.watchMounts()`. `table` is the snapshot; iterate the watcher for the
 * changes (`for await (const change of watcher)`): after each change `table` holds exactly
 * what the changes so far made of the snapshot. One consumer at a time. Leaving a `for await`
 * loop (break, return, throw) closes the watcher, as `close()` does: the listener is
 * unregistered (with the last mtab listener gone, the module disarms its hooks). A signal given
 * to watchMounts() closes it when it aborts; then a pending or later next() rejects with the
 * signal's reason, where after a plain close() it resolves done.
 */
export class MountWatcher implements AsyncIterable<MountChange>, AsyncDisposable {
  readonly #io: MountWatcherIo;
  readonly #tuning: MountWatcherTuning;
  readonly #table = new Map<number, MountInfo>();
  /** Mount-gets the io may make for one batch by mount id (a walk of the namespace each: many
   *  are read with one dump instead); undefined with unique ids (see #backlog()). */
  readonly #fetchLimit: number | undefined;
  /** The table reflects every event up to this ns-seq. */
  #nsSeq: number;
  /** The ns-seq of the next event to apply. */
  #expected: number;
  // Changes computed but not yielded yet, and the ns-seq the table reaches after each (-1: none).
  #queue: MountChange[] = [];
  #queueSeq: number[] = [];
  #queueHead = 0;
  // The batch being applied: its events and what mount-get said of each.
  #batch: MountEvent[] = [];
  #fetched: (MountInfo | undefined)[] = [];
  #batchHead = 0;
  // The last bulk dump, by mount id: the state of every mount as of its ns-seq, so it answers
  // for every event up to that ns-seq (as a mount-get would, made then).
  #snapshot: Map<number, MountInfo> | undefined;
  #snapshotSeq = 0;
  #bulkAfter = 0;
  #bulkFailures = 0;
  /** With unique ids: mounts named by the run of batches that each named bulkMin or more (the
   *  mount-gets a storm has cost so far; see #advance). */
  #streak = 0;
  #ended = false;
  readonly #lifetime: Lifetime;
  /** next() calls in flight or waiting for their turn (#turn). */
  #waiting = 0;
  #turn: Promise<unknown> = Promise.resolve();
  #resyncs = 0;
  /** Who reports the changes: the usip module (see UserSpaceMountWatcher for the others). */
  readonly backend = 'module' as const;
  /** The listener's id. */
  readonly listenerId: number;
  /** Inode number of the mount namespace watched. */
  readonly mntNs: number;
  /** SO_RCVBUF of the listener socket as the kernel applied it (twice what was asked, capped
   *  by net.core.rmem_max). */
  readonly receiveBufferSize: number;

  /** @internal Made by UsipClient.watchMounts(); tests drive it through its io. */
  constructor(
    io: MountWatcherIo,
    initial: MountTable,
    info: { listenerId: number; mntNs: number; receiveBufferSize: number; signal?: AbortSignal | undefined },
    tuning: Partial<MountWatcherTuning> = {},
  ) {
    this.#io = io;
    this.#tuning = { ...DEFAULT_TUNING, ...tuning };
    let uniqueIds = initial.mounts.length > 0;
    for (const mount of initial.mounts) {
      this.#table.set(mount.id, mount);
      if (mount.uniqueId === undefined) uniqueIds = false;
    }
    this.#fetchLimit = uniqueIds ? undefined : Math.max(0, this.#tuning.bulkMin - 1);
    this.#nsSeq = Number(initial.nsSeq);
    this.#expected = this.#nsSeq + 1;
    this.listenerId = info.listenerId;
    this.mntNs = info.mntNs;
    this.receiveBufferSize = info.receiveBufferSize;
    this.#lifetime = new Lifetime(() => this.#io.close(), info.signal);
  }

  /** The mount table by mount id, as of the last change yielded. */
  get table(): ReadonlyMap<number, MountInfo> {
    return this.#table;
  }

  /** The ns-seq the table is current with: every event up to it is reflected. */
  get nsSeq(): bigint {
    return BigInt(this.#nsSeq);
  }

  /** How many times the watcher read the whole table again. */
  get resyncs(): number {
    return this.#resyncs;
  }

  /** True once close() was called (or the watcher's signal aborted). */
  get closed(): boolean {
    return this.#lifetime.closed;
  }

  /** Leaving a `for await` loop closes the watcher (its return() awaits close()). */
  [Symbol.asyncIterator](): AsyncIterator<MountChange> {
    return {
      next: () => this.next(),
      return: async () => {
        await this.close();
        return DONE;
      },
    };
  }

  /** The next change; done once the watcher is closed (rejects with the signal's reason when its
   *  signal closed it). Calls are served one at a time. */
  next(): Promise<IteratorResult<MountChange, undefined>> {
    // No call in flight or waiting its turn, and a change at hand: no chaining, no await (a
    // batch's changes are taken one after another this way). Calls are answered in call order.
    if (this.#waiting === 0 && !this.closed && this.#queueHead < this.#queue.length) {
      return Promise.resolve({ done: false, value: this.#take() });
    }
    this.#waiting++;
    const result = this.#turn.then(() => this.#next()).finally(() => this.#waiting--);
    this.#turn = result.catch(() => undefined);
    return result;
  }

  /** Unregisters the listener and closes the sockets; iteration ends. Idempotent: every call
   *  returns the same promise. */
  close(): Promise<void> {
    return this.#lifetime.close();
  }

  /** `await using watcher = await client.watchMounts()` closes it at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** The end of iteration: done, or the signal's reason when the signal closed the watcher. */
  #end(): IteratorReturnResult<undefined> {
    this.#lifetime.throwIfAborted();
    return DONE;
  }

  async #next(): Promise<IteratorResult<MountChange, undefined>> {
    try {
      for (;;) {
        if (this.closed) return this.#end();
        if (this.#queueHead < this.#queue.length) return { done: false, value: this.#take() };
        if (this.#batchHead < this.#batch.length) {
          const index = this.#batchHead++;
          const event = this.#batch[index]!;
          const resync = this.#apply(event, this.#fetched[index]);
          if (resync !== undefined) await this.#resync(resync);
          continue;
        }
        if (this.#ended) return this.#end();
        await this.#advance();
      }
    } catch (error) {
      // Closing cancels what was in flight; that is the end, not a failure.
      if (this.closed) return this.#end();
      throw error;
    }
  }

  /** Yields the next queued change, applying it to the table. */
  #take(): MountChange {
    const index = this.#queueHead++;
    const change = this.#queue[index]!;
    const seq = this.#queueSeq[index]!;
    if (this.#queueHead === this.#queue.length) {
      this.#queue = [];
      this.#queueSeq = [];
      this.#queueHead = 0;
    }
    if (change.kind === 'umount') this.#table.delete(change.mount.id);
    else if (change.kind !== 'resync') this.#table.set(change.mount.id, change.mount);
    if (seq !== -1) this.#nsSeq = seq;
    return change;
  }

  #push(change: MountChange, seq: number): void {
    this.#queue.push(change);
    this.#queueSeq.push(seq);
  }

  /** Reads the next batch of events with what mount-get said of their mounts, and fetches
   *  what the io did not; or resynchronises. One await for the batch when the io had it all. */
  async #advance(): Promise<void> {
    // With unique ids the io fetches a batch unless that would take the storm's mount-gets
    // past what one dump of the table costs (see below).
    const backlog = this.#backlog();
    const batch = await this.#io.next(this.#fetchLimit ?? Math.max(this.#tuning.bulkMin, backlog - this.#streak) - 1, this.#expected);
    if (batch === undefined) {
      this.#ended = true;
      return;
    }
    const { items } = batch;
    let reason: MountResyncReason | undefined;
    const events: MountEvent[] = [];
    const fetched: (MountInfo | null | undefined)[] = [];
    const familyId = this.#io.familyId;
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!;
      if (item.kind === 'overrun') {
        reason ??= 'overrun';
        continue;
      }
      if (item.familyId !== familyId || item.group !== 0) continue;
      // Events for this listener were lost and no later one will say so.
      if (item.command === Command.missed) {
        reason ??= 'missed';
        continue;
      }
      if (item.command !== Command.mtabEvent) continue;
      // After a reason to resync the rest of the batch is in the dump to come; injected events
      // have no ns-seq (0); older ones are in the table already: none of them is decoded.
      if (reason !== undefined) continue;
      const seq = mountEventNsSeq(item.attributes);
      if (seq !== -1 && seq < this.#expected) continue;
      const event = decodeMountEvent(item.attributes);
      if (event.nsSeq > this.#expected) {
        reason = event.missed > 0 ? 'missed' : 'gap';
        continue;
      }
      // In order. A missed count here is about events before the last dump, or not about this
      // namespace's table: none of its events is missing.
      this.#expected++;
      if (event.mountId === -1) throw new UsipProtocolError(`usip mtab-event: ns-seq ${event.nsSeq} has no mount-id`);
      // A tree too big to tell mount by mount: the table is read again.
      if (event.subtree) {
        reason = 'subtree';
        continue;
      }
      events.push(event);
      fetched.push(event.action === Action.umount ? undefined : batch.mount(i));
    }
    // With unique ids a mount-get is a lookup, but big batches one after another mean the
    // watcher has fallen behind a storm. Once their mount-gets would reach a sixteenth of the
    // table (what one dump costs, about), the io makes none and the watcher resynchronises:
    // one dump answers for the batch and for the rest of the storm, which the socket holds
    // meanwhile (a rent-or-buy rule: at most twice what the cheaper of the two would cost).
    if (reason === undefined && this.#fetchLimit === undefined) {
      const keys = new Set<number | bigint>();
      let answered = false;
      for (let i = 0; i < events.length; i++) {
        const event = events[i]!;
        if (event.action === Action.umount) continue;
        keys.add(event.uniqueId ?? event.mountId);
        if (fetched[i] !== undefined) answered = true;
      }
      if (keys.size >= this.#tuning.bulkMin && !answered && this.#streak + keys.size >= backlog) reason = 'backlog';
      else this.#streak = keys.size >= this.#tuning.bulkMin ? this.#streak + keys.size : 0;
    }
    if (reason !== undefined) {
      await this.#resync(reason);
      return;
    }
    this.#batch = events;
    const rest = this.#fetch(events, fetched);
    this.#fetched = rest === undefined ? (fetched as (MountInfo | undefined)[]) : await rest;
    this.#batchHead = 0;
  }

  /**
   * What each event's mount is now (undefined: gone, or an umount, which needs nothing), from
   * what the io fetched with the batch; for the mounts it did not (past its limit, or a failed
   * request), one mount-get per mount (the latest state serves all its events), all at once,
   * or, for a batch that names many mounts, one dump for them all. Undefined when the io had
   * everything: `fetched` then holds the answer (null for gone turned into undefined).
   */
  #fetch(events: MountEvent[], fetched: (MountInfo | null | undefined)[]): Promise<(MountInfo | undefined)[]> | undefined {
    const keys = new Set<number | bigint>();
    let uniqueIds = true;
    for (let i = 0; i < events.length; i++) {
      const event = events[i]!;
      if (event.action === Action.umount) continue;
      const known = fetched[i];
      if (known === null) fetched[i] = undefined;
      if (known !== undefined) continue;
      keys.add(event.uniqueId ?? event.mountId);
      if (event.uniqueId === undefined) uniqueIds = false;
    }
    if (keys.size === 0) return undefined;
    return this.#fetchRest(events, fetched as (MountInfo | undefined)[], keys, uniqueIds);
  }

  async #fetchRest(events: MountEvent[], fetched: (MountInfo | undefined)[], keys: Set<number | bigint>, uniqueIds: boolean): Promise<(MountInfo | undefined)[]> {
    const last = events.length === 0 ? 0 : events[events.length - 1]!.nsSeq;
    if (this.#snapshot !== undefined && last > this.#snapshotSeq) this.#snapshot = undefined;
    // By mount-id the module walks the namespace for each mount; by unique id it looks it up,
    // and the cost is the round trip: a dump wins once a batch names a fair part of the table.
    if (
      this.#snapshot === undefined &&
      keys.size >= this.#tuning.bulkMin &&
      (!uniqueIds || keys.size * 16 >= this.#table.size) &&
      Date.now() >= this.#bulkAfter
    ) {
      try {
        const dump = await this.#io.dump(1);
        this.#snapshot = new Map();
        for (const mount of dump.mounts) this.#snapshot.set(mount.id, mount);
        this.#snapshotSeq = Number(dump.nsSeq);
        this.#bulkFailures = 0;
      } catch (error) {
        if (!(error instanceof UsipDumpInterruptedError)) throw error;
        // Changing as it was read (an interrupted dump costs a whole one): per mount, for a while.
        this.#bulkAfter = Date.now() + this.#tuning.bulkBackoffMs * 2 ** Math.min(this.#bulkFailures++, 3);
      }
    }
    const snapshot = this.#snapshot;
    const requests = new Map<number | bigint, Promise<MountInfo | undefined>>();
    const pending: (Promise<MountInfo | undefined> | MountInfo | undefined)[] = fetched.slice();
    for (let i = 0; i < events.length; i++) {
      const event = events[i]!;
      // The io asked for every event of a key or for none: the keys left are the ones to ask.
      if (event.action === Action.umount || !keys.has(event.uniqueId ?? event.mountId)) continue;
      if (snapshot !== undefined) {
        // The snapshot is as of a moment after this event: #fresh() tells whether its entry
        // for this id is the event's mount.
        pending[i] = snapshot.get(event.mountId);
        continue;
      }
      const key = event.uniqueId ?? event.mountId;
      let request = requests.get(key);
      if (request === undefined) {
        request = this.#io.fetch(event.mountId, event.uniqueId);
        requests.set(key, request);
      }
      pending[i] = request;
    }
    return requests.size === 0 ? (pending as (MountInfo | undefined)[]) : Promise.all(pending);
  }

  /** With unique ids: a batch naming this many mounts is a backlog (see #advance). */
  #backlog(): number {
    return Math.max(1, this.#tuning.bulkMin, Math.ceil(this.#table.size / 16));
  }

  /** Reads the table again and queues the changes from the table to it, after a resync item. */
  async #resync(reason: MountResyncReason): Promise<void> {
    // Events read so far are older than the dump about to start: they are in it.
    this.#batch = [];
    this.#fetched = [];
    this.#batchHead = 0;
    this.#snapshot = undefined;
    const dump = await this.#io.dump(undefined, this.#table);
    this.#resyncs++;
    this.#streak = 0;
    const seq = Number(dump.nsSeq);
    const nsSeq = dump.nsSeq;
    const fresh = new Map<number, MountInfo>();
    for (const mount of dump.mounts) fresh.set(mount.id, mount);
    const changes: MountTableChange[] = [];
    let removed = 0;
    let added = 0;
    let changed = 0;
    for (const old of this.#table.values()) {
      const now = fresh.get(old.id);
      if (now === undefined || (now !== old && !sameIdentity(old, now))) {
        changes.push({ kind: 'umount', mount: old, nsSeq });
        removed++;
      }
    }
    for (const mount of dump.mounts) {
      const old = this.#table.get(mount.id);
      // The entry itself: read as it was decoded (see MountWatcherIo.dump).
      if (old === mount) continue;
      if (old === undefined || !sameIdentity(old, mount)) {
        changes.push({ kind: 'mount', mount, nsSeq });
        added++;
      } else if (!sameMount(old, mount)) {
        const kind = old.mountPoint !== mount.mountPoint || old.parentId !== mount.parentId ? 'move' : 'remount';
        changes.push({ kind, mount, previous: old, nsSeq });
        changed++;
      }
    }
    this.#push({ kind: 'resync', reason, nsSeq, mounts: dump.mounts.length, added, removed, changed }, changes.length === 0 ? seq : -1);
    for (let i = 0; i < changes.length; i++) this.#push(changes[i]!, i === changes.length - 1 ? seq : -1);
    this.#expected = seq + 1;
  }

  /** The table's entry for the event's mount: same id, and same unique id when both have one. */
  #current(event: MountEvent): MountInfo | undefined {
    const entry = this.#table.get(event.mountId);
    if (entry === undefined) return undefined;
    if (event.uniqueId !== undefined && entry.uniqueId !== undefined && entry.uniqueId !== event.uniqueId) return undefined;
    return entry;
  }

  /** What mount-get said, if it is the event's mount (without unique ids, a reused id can
   *  name another mount: its device tells them apart, mostly). */
  #fresh(event: MountEvent, fetched: MountInfo | undefined): MountInfo | undefined {
    if (fetched === undefined || fetched.id !== event.mountId) return undefined;
    if (event.uniqueId !== undefined && fetched.uniqueId !== undefined && fetched.uniqueId !== event.uniqueId) return undefined;
    if (event.dev !== -1 && encodeDev(fetched.major, fetched.minor) !== event.dev) return undefined;
    return fetched;
  }

  /**
   * Applies one event (in ns-seq order; the queue is empty): queues its changes, or says why
   * the table must be read again instead.
   */
  #apply(event: MountEvent, fetched: MountInfo | undefined): MountResyncReason | undefined {
    const seq = event.nsSeq;
    const nsSeq = BigInt(seq);
    const previous = this.#current(event);
    switch (event.action) {
      case Action.umount:
        if (previous !== undefined) this.#push({ kind: 'umount', mount: previous, nsSeq }, seq);
        else this.#nsSeq = seq;
        return;
      case Action.mount: {
        const mount = this.#fresh(event, fetched);
        if (mount === undefined || event.path === undefined) {
          // Gone already (its umount follows), or not under our root.
          if (previous !== undefined) this.#push({ kind: 'umount', mount: previous, nsSeq }, seq);
          else this.#nsSeq = seq;
          return;
        }
        const entry = placed(mount, event.path, event.parentId);
        if (previous !== undefined && sameMount(previous, entry)) this.#nsSeq = seq;
        else this.#push(previous === undefined ? { kind: 'mount', mount: entry, nsSeq } : { kind: 'mount', mount: entry, previous, nsSeq }, seq);
        return;
      }
      case Action.remount: {
        const mount = this.#fresh(event, fetched);
        if (mount === undefined) {
          if (previous !== undefined) this.#push({ kind: 'umount', mount: previous, nsSeq }, seq);
          else this.#nsSeq = seq;
          return;
        }
        if (previous === undefined) {
          // A mount the events never introduced, yet there: the table cannot be trusted.
          if (event.path !== undefined) return 'gap';
          this.#nsSeq = seq;
          return;
        }
        const entry = placed(mount, previous.mountPoint, previous.parentId);
        if (sameMount(previous, entry)) this.#nsSeq = seq;
        else this.#push({ kind: 'remount', mount: entry, previous, nsSeq }, seq);
        return;
      }
      case Action.move:
        return this.#move(event, previous, this.#fresh(event, fetched));
      default:
        // An mtab action of a newer module: the table may be affected in ways unknown here.
        return 'gap';
    }
  }

  #move(event: MountEvent, previous: MountInfo | undefined, mount: MountInfo | undefined): MountResyncReason | undefined {
    const seq = event.nsSeq;
    const nsSeq = BigInt(seq);
    if (previous === undefined) {
      // Moved into view from outside our root: its submounts came along, unseen.
      if (mount !== undefined && event.path !== undefined) return 'move';
      this.#nsSeq = seq;
      return;
    }
    const from = previous.mountPoint;
    const to = event.path;
    // Out of view, or pivot_root: whole subtrees come and go.
    if (to === undefined || from === '/' || to === '/') return 'move';
    const subtree = descendants(this.#table, previous.id);
    const prefix = `${from}/`;
    // A submount that is not below its parent's mount point: nothing to rewrite from.
    for (const d of subtree) if (!d.mountPoint.startsWith(prefix)) return 'move';
    if (mount === undefined) {
      // Gone since: only the umount events of it and its submounts are left to come.
      this.#push({ kind: 'umount', mount: previous, nsSeq }, seq);
      return;
    }
    const moved = placed(mount, to, event.parentId);
    this.#push({ kind: 'move', mount: moved, previous, nsSeq }, subtree.length === 0 ? seq : -1);
    for (let i = 0; i < subtree.length; i++) {
      const d = subtree[i]!;
      const rewritten: MountInfo = { ...d, mountPoint: to + d.mountPoint.slice(from.length) };
      this.#push({ kind: 'move', mount: rewritten, previous: d, nsSeq }, i === subtree.length - 1 ? seq : -1);
    }
  }
}

/** Whether two entries with one mount id are one mount: same unique id, and (what never
 *  changes for a mount, for kernels without unique ids) device, root, type and source. */
function sameIdentity(a: MountInfo, b: MountInfo): boolean {
  return a.uniqueId === b.uniqueId && a.major === b.major && a.minor === b.minor && a.root === b.root && a.fsType === b.fsType && a.source === b.source;
}

/** The mount with the event's mount point and parent (the fetched ones may be later's). */
function placed(mount: MountInfo, mountPoint: string, parentId: number): MountInfo {
  if (mount.mountPoint === mountPoint && (parentId === -1 || mount.parentId === parentId)) return mount;
  return { ...mount, mountPoint, parentId: parentId === -1 ? mount.parentId : parentId };
}

/** The mounts below `rootId` (children, their children, ...), parents before children. */
export function descendants(table: ReadonlyMap<number, MountInfo>, rootId: number): MountInfo[] {
  const children = new Map<number, MountInfo[]>();
  for (const mount of table.values()) {
    if (mount.parentId === mount.id) continue;
    const list = children.get(mount.parentId);
    if (list === undefined) children.set(mount.parentId, [mount]);
    else list.push(mount);
  }
  const out: MountInfo[] = [];
  const seen = new Set<number>([rootId]);
  let level = children.get(rootId) ?? [];
  while (level.length > 0) {
    const next: MountInfo[] = [];
    for (const mount of level) {
      if (seen.has(mount.id)) continue;
      seen.add(mount.id);
      out.push(mount);
      const below = children.get(mount.id);
      if (below !== undefined) next.push(...below);
    }
    level = next;
  }
  return out;
}

/** For UsipClient: is this error a mount-get's "no such mount"? */
export function isNoSuchMount(error: unknown): boolean {
  return isNetlinkError(error) && error.code === 'ENOENT';
}
