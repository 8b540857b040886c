// The mount watcher of the backends without the module: the same changes (MountChange) and the
// same guarantee (the table converges exactly on the namespace's; a loss resynchronises) as the
// module's MountWatcher, from what the kernel itself offers:
//
//  - 'mountinfo': poll() on /proc/self/mountinfo, done by @usip/netlink-native's MountinfoWatch
//    off the JS thread: each wakeup re-reads the file and hands over the difference (added,
//    removed and changed lines). Every change the kernel wakes pollers for (mount, umount, move,
//    remount, mount_setattr) arrives; its cost is a whole re-read per wakeup, O(mounts), in the
//    binding's thread (wakeups that come while it reads are one re-read).
//  - 'kernel': fanotify mount events (6.15+, FAN_MARK_MNTNS) for attach, detach and move (a move
//    is one event with both bits), each applied with one statmount of the mount (and of the
//    submounts of a moved mount, whose mount points change without events): O(1) per change.
//    fanotify does not report remounts, mount_setattr or propagation changes, so the mountinfo
//    poll runs alongside in its 'on-request' mode: its thread only counts wakeups (O(1)), and
//    the watcher pairs them with fanotify's events. A burst (items less than SETTLE_MS apart)
//    whose wakeups and events balance is explained by the events: no read. A wakeup no event
//    explains (a remount, mount_setattr) leaves the burst unbalanced: at its end the watcher
//    asks for a re-read, whose difference names the mounts whose line changed, read again
//    with statmount (O(mounts), for those changes only). Counts more than one apart (wakeups
//    the kernel merged: a storm, a recursive bind) make the table maybe stale: a re-read at its
//    end, and in a burst longer than STALE_READ_INTERVAL_MS at most one per that interval while
//    it goes on. A queue overflow is a resync. The exact guarantee is in the README.
//
// Neither fanotify nor the mountinfo poll hears a propagation change made with mount(2)
// (mount --make-shared ...): the kernel does not wake mountinfo pollers for it. Both backends
// therefore compare the whole table with the kernel's every `checkIntervalMs` (default 5 s; 0
// turns it off) while the namespace is quiet, and report what differs as ordinary changes.
//
// Subscribe first, then snapshot, then apply: the streams are opened before the table is read,
// and every event is applied by reading the mount's state now (statmount) or by its line, so an
// event that raced the snapshot changes nothing.
import { readFile } from 'node:fs/promises';
import type { FanotifyBatch, KernelMount, MountinfoBatch, MountinfoStream, NativeStream } from './kernel-api.js';
import { kernelMountInfo, isComplete } from './kernel-mounts.js';
import { formatMountinfoLine, parseMountinfo, sameMount, type MountInfo } from './mounts.js';
import type { MountChange, MountResyncReason, MountTableChange } from './mount-watcher.js';
import type { MountBackend } from './backends.js';
import { abortable, checkSignal, Lifetime } from './lifetime.js';

/** What every mount watcher offers, whatever its backend. */
export interface MountTableWatcher extends AsyncIterable<MountChange> {
  /** Who reports the changes. */
  readonly backend: MountBackend;
  /** The mount table by mount id, as of the last change yielded. */
  readonly table: ReadonlyMap<number, MountInfo>;
  /** The number of the last change applied (the module's ns-seq; a count of changes otherwise). */
  readonly nsSeq: bigint;
  /** How many times the watcher read the whole table again after a loss. */
  readonly resyncs: number;
  /** Inode number of the mount namespace watched. */
  readonly mntNs: number;
  readonly closed: boolean;
  /** The next change; done once the watcher is closed, or rejects with the reason of the signal
   *  that ended it. */
  next(): Promise<IteratorResult<MountChange, undefined>>;
  /** Ends the watcher (its listener, its streams). Idempotent: every call returns the same promise. */
  close(): Promise<void>;
  /** close(), for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** What the watcher needs of the outside world; @internal (openMounts() fills it with the binding). */
export interface UserWatcherIo {
  /** The mountinfo poll stream; its first batch is the whole table. 'kernel' needs its
   *  'on-request' mode (requestRead(); batches with `wakeups` and `reread`). */
  mountinfo: MountinfoStream;
  /** The fanotify stream ('kernel' only). */
  fanotify?: NativeStream<FanotifyBatch>;
  /** statmount of one mount by unique id; null when it is not (any more) in the namespace ('kernel'). */
  stat?(uniqueId: bigint): Promise<KernelMount | null>;
  /** listmount + statmount of the whole namespace ('kernel'). */
  list?(): Promise<KernelMount[]>;
  /** The text of /proc/self/mountinfo now. */
  readMountinfo(): Promise<string>;
  mntNs: number;
}

export interface UserWatcherOptions {
  /** How often the whole table is compared with the kernel's while quiet, in ms (default 5000; 0: never). */
  checkIntervalMs?: number;
  /** Cancels open() (the streams are closed, it rejects with the reason), and later ends the
   *  watcher: it closes, and a pending or later next() rejects with the reason. */
  signal?: AbortSignal;
}

const DEFAULT_CHECK_INTERVAL_MS = 5000;
/** How long the streams must be quiet before the 'kernel' watcher checks that both agree. */
const SETTLE_MS = 50;
/** After a disagreement, how long they must be quiet before it counts as a loss: fanotify's
 *  batches (read and statmount'ed by the binding) can trail the mountinfo poll in a storm. */
const SUSPECT_SETTLE_MS = 1000;
/** 'kernel': while a burst whose wakeups fanotify does not explain goes on, at most one re-read
 *  of mountinfo per this many ms (and one at its end). */
export const STALE_READ_INTERVAL_MS = 1000;

type Item = { source: 'mountinfo'; batch: MountinfoBatch } | { source: 'fanotify'; batch: FanotifyBatch } | { source: 'timer' } | { source: 'settle' } | { source: 'ended' };

/** Whether two entries with one mount id are one mount (what never changes for a mount). */
function sameIdentity(a: MountInfo, b: MountInfo): boolean {
  if (a.uniqueId !== undefined && b.uniqueId !== undefined) return a.uniqueId === b.uniqueId;
  return a.major === b.major && a.minor === b.minor && a.root === b.root && a.fsType === b.fsType && a.source === b.source;
}

function lineId(line: string): number {
  const space = line.indexOf(' ');
  return Number(line.slice(0, space));
}

/**
 * The mount table of the caller's namespace kept current without the module (see the top of
 * this file). Made by openMounts().watchMounts(); the same use as MountWatcher.
 */
export class UserSpaceMountWatcher implements MountTableWatcher, AsyncIterableIterator<MountChange, undefined> {
  readonly backend: MountBackend;
  readonly mntNs: number;
  readonly #io: UserWatcherIo;
  readonly #table = new Map<number, MountInfo>();
  /** 'kernel': unique id -> mount id. */
  readonly #byUnique = new Map<bigint, number>();
  /** The binding's view of mountinfo: id -> line (what the batches so far make). */
  readonly #lines = new Map<number, string>();
  /** The queue's last change of each mount id not yet applied (null: an umount), and the ids of
   *  the unique ids it names: the table as the queue will leave it, without copying the table. */
  readonly #overlay = new Map<number, MountInfo | null>();
  readonly #overlayByUnique = new Map<bigint, number>();
  readonly #checkIntervalMs: number;
  #queue: MountChange[] = [];
  #queueHead = 0;
  #seq = 0n;
  /** The nsSeq of the last change queued. */
  #tailSeq = 0n;
  #resyncs = 0;
  readonly #lifetime: Lifetime;
  #turn: Promise<unknown> = Promise.resolve();
  #infoIterator: AsyncIterator<MountinfoBatch>;
  #fanIterator: AsyncIterator<FanotifyBatch> | undefined;
  #infoPull: Promise<IteratorResult<MountinfoBatch>> | undefined;
  #fanPull: Promise<IteratorResult<FanotifyBatch>> | undefined;
  #timer: { promise: Promise<void>; handle: NodeJS.Timeout } | undefined;
  #lastActivity = Date.now();
  /** 'kernel': the streams had items since the last agreement check. */
  #unsettled = false;
  #settleMs = SETTLE_MS;
  /** 'kernel': mounts fanotify named whose mountinfo line is needed and not there yet. */
  readonly #waiting = new Set<bigint>();
  /** 'kernel': the poll's wakeups and fanotify's events in the current burst (since it last balanced). */
  #burstWakeups = 0;
  #burstEvents = 0;
  /** 'kernel': a re-read of mountinfo is owed (wakeups fanotify does not explain, or may not). */
  #stale = false;
  /** 'kernel': a re-read was made while the burst went on: its end owes one too. */
  #owedAtEnd = false;
  #readPending = false;
  #lastReadAt = -Infinity;
  /** 'kernel': since when the counts have been two or more apart. */
  #driftSince: number | undefined;
  /** 'kernel': when the current burst began (its first item after a quiet moment). */
  #burstStartedAt = 0;
  #rereads = 0;
  /** 'kernel': wakeups since the last read: #lines are the namespace's only while 0. */
  #wakeupsSinceRead = 0;
  /** 'kernel': a read came since the last agreement check. */
  #verify = false;
  #ended = false;
  #wake: (() => void) | undefined;

  private constructor(backend: MountBackend, io: UserWatcherIo, options: UserWatcherOptions) {
    this.backend = backend;
    this.#io = io;
    this.mntNs = io.mntNs;
    this.#checkIntervalMs = options.checkIntervalMs ?? DEFAULT_CHECK_INTERVAL_MS;
    this.#infoIterator = io.mountinfo[Symbol.asyncIterator]();
    this.#fanIterator = io.fanotify?.[Symbol.asyncIterator]();
    this.#lifetime = new Lifetime(async () => {
      this.#closeStreams();
      this.#wake?.();
    }, options.signal);
  }

  /**
   * Opens a watcher on streams that are already subscribed: reads the first mountinfo batch (the
   * whole table), then ('kernel') the table with listmount + statmount, which becomes the snapshot.
   * The streams are the watcher's from the start: closed if open() fails or `signal` aborts.
   */
  static async open(backend: 'kernel' | 'mountinfo', io: UserWatcherIo, options: UserWatcherOptions = {}): Promise<UserSpaceMountWatcher> {
    let signal: AbortSignal | undefined;
    try {
      signal = checkSignal('usip watch-mounts', options.signal);
      if (backend === 'kernel' && (io.fanotify === undefined || io.stat === undefined || io.list === undefined || io.mountinfo.requestRead === undefined)) {
        throw new Error("UserSpaceMountWatcher: the kernel backend needs fanotify, stat, list and a mountinfo watch with reread: 'on-request'");
      }
    } catch (error) {
      io.mountinfo.close();
      io.fanotify?.close();
      throw error;
    }
    const watcher = new UserSpaceMountWatcher(backend, io, options);
    const opening = (async () => {
      const first = await watcher.#infoIterator.next();
      if (first.done === true) throw new Error('the mountinfo watch ended before its first batch');
      for (const line of first.value.added) watcher.#lines.set(lineId(line), line);
      const table = backend === 'kernel' ? await watcher.#kernelTable() : watcher.#mountinfoTable();
      for (const mount of table) watcher.#set(mount);
    })();
    try {
      // An abort closes the streams (the watcher's lifetime) and gives up on the snapshot at once.
      await abortable(opening, signal);
    } catch (error) {
      await watcher.close();
      if (signal?.aborted === true) throw signal.reason;
      throw error;
    }
    return watcher;
  }

  get table(): ReadonlyMap<number, MountInfo> {
    return this.#table;
  }

  get nsSeq(): bigint {
    return this.#seq;
  }

  get resyncs(): number {
    return this.#resyncs;
  }

  /** 'kernel': how many times the watcher asked for a re-read of mountinfo (0 for 'mountinfo',
   *  whose poll re-reads after every wakeup). */
  get rereads(): number {
    return this.#rereads;
  }

  get closed(): boolean {
    return this.#lifetime.closed;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** Leaving a `for await` loop (break, return, throw) closes the watcher. */
  async return(): Promise<IteratorResult<MountChange, undefined>> {
    await this.close();
    return { done: true, value: undefined };
  }

  next(): Promise<IteratorResult<MountChange, undefined>> {
    const result = this.#turn.then(() => this.#next());
    this.#turn = result.catch(() => undefined);
    return result;
  }

  /** Closes the streams; iteration ends. Idempotent: every call returns the same promise. */
  close(): Promise<void> {
    return this.#lifetime.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #closeStreams(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer.handle);
    this.#timer = undefined;
    this.#io.mountinfo.close();
    this.#io.fanotify?.close();
  }

  async #next(): Promise<IteratorResult<MountChange, undefined>> {
    try {
      for (;;) {
        if (this.closed) return this.#closedResult();
        if (this.#queueHead < this.#queue.length) return { done: false, value: this.#take() };
        if (this.#ended) return { done: true, value: undefined };
        await this.#advance();
      }
    } catch (error) {
      if (this.closed) return this.#closedResult();
      throw error;
    }
  }

  /** What next() gives once closed: the end, or the reason of the signal that ended the watcher. */
  #closedResult(): IteratorResult<MountChange, undefined> {
    this.#lifetime.throwIfAborted();
    return { done: true, value: undefined };
  }

  /** Yields the next queued change, applying it to the table. */
  #take(): MountChange {
    const change = this.#queue[this.#queueHead++]!;
    if (this.#queueHead === this.#queue.length) {
      this.#queue = [];
      this.#queueHead = 0;
      this.#overlay.clear();
      this.#overlayByUnique.clear();
    }
    if (change.kind === 'umount') this.#delete(change.mount);
    else if (change.kind !== 'resync') this.#set(change.mount);
    if (change.kind !== 'resync') this.#seq++;
    return change;
  }

  #set(mount: MountInfo): void {
    const old = this.#table.get(mount.id);
    if (old?.uniqueId !== undefined) this.#byUnique.delete(old.uniqueId);
    this.#table.set(mount.id, mount);
    if (mount.uniqueId !== undefined) this.#byUnique.set(mount.uniqueId, mount.id);
  }

  #delete(mount: MountInfo): void {
    const entry = this.#table.get(mount.id);
    if (entry === undefined || !sameIdentity(entry, mount)) return;
    this.#table.delete(mount.id);
    if (entry.uniqueId !== undefined) this.#byUnique.delete(entry.uniqueId);
  }

  /** One entry of the table as the changes queued so far will leave it: O(1), whatever the queue. */
  #lookup(id: number): MountInfo | undefined {
    const queued = this.#overlay.get(id);
    if (queued !== undefined) return queued ?? undefined;
    return this.#table.get(id);
  }

  /** The whole table as the changes queued so far will leave it: O(mounts) while changes are
   *  queued (for the rare whole-table uses: a move's submounts, a comparison). */
  #projected(): Map<number, MountInfo> {
    if (this.#overlay.size === 0) return this.#table;
    const table = new Map(this.#table);
    for (const [id, mount] of this.#overlay) {
      if (mount === null) table.delete(id);
      else table.set(id, mount);
    }
    return table;
  }

  /** The next item of any stream, or of a timer. */
  async #wait(): Promise<Item> {
    const waits: Promise<Item>[] = [];
    this.#infoPull ??= this.#infoIterator.next();
    waits.push(this.#infoPull.then((r) => (r.done === true ? { source: 'ended' } : { source: 'mountinfo', batch: r.value })));
    if (this.#fanIterator !== undefined) {
      this.#fanPull ??= this.#fanIterator.next();
      waits.push(this.#fanPull.then((r) => (r.done === true ? { source: 'ended' } : { source: 'fanotify', batch: r.value })));
    }
    let settle: NodeJS.Timeout | undefined;
    if (this.#unsettled) waits.push(new Promise<Item>((resolve) => (settle = setTimeout(resolve, this.#settleMs, { source: 'settle' }))));
    if (this.#checkIntervalMs > 0) {
      if (this.#timer === undefined) {
        let handle!: NodeJS.Timeout;
        const promise = new Promise<void>((resolve) => (handle = setTimeout(resolve, this.#checkIntervalMs)));
        this.#timer = { promise, handle };
      }
      waits.push(this.#timer.promise.then(() => ({ source: 'timer' })));
    }
    waits.push(new Promise<Item>((resolve) => (this.#wake = () => resolve({ source: 'ended' }))));
    try {
      return await Promise.race(waits);
    } finally {
      if (settle !== undefined) clearTimeout(settle);
      this.#wake = undefined;
    }
  }

  async #advance(): Promise<void> {
    const item = await this.#wait();
    switch (item.source) {
      case 'ended':
        this.#ended = true;
        return;
      case 'timer':
        this.#timer = undefined;
        // Only while quiet: a busy namespace is compared once it settles (its changes are being reported).
        if (Date.now() - this.#lastActivity >= this.#checkIntervalMs / 2) await this.#compare(undefined);
        return;
      case 'settle':
        this.#unsettled = false;
        await this.#settled();
        return;
      case 'mountinfo':
        this.#infoPull = undefined;
        this.#lastActivity = Date.now();
        await this.#mountinfoBatch(item.batch);
        return;
      case 'fanotify':
        this.#fanPull = undefined;
        this.#lastActivity = Date.now();
        await this.#fanotifyBatch(item.batch);
        return;
    }
  }

  /** Applies the binding's view of one batch to #lines; returns the ids whose line changed or went. */
  #applyLines(batch: MountinfoBatch): { touched: number[]; changed: number[]; added: number[] } {
    const touched: number[] = [];
    const changed: number[] = [];
    const added: number[] = [];
    for (const id of batch.removed) {
      this.#lines.delete(id);
      touched.push(id);
    }
    for (const line of batch.changed) {
      const id = lineId(line);
      this.#lines.set(id, line);
      touched.push(id);
      changed.push(id);
    }
    for (const line of batch.added) {
      const id = lineId(line);
      this.#lines.set(id, line);
      added.push(id);
    }
    return { touched, changed, added };
  }

  async #mountinfoBatch(batch: MountinfoBatch): Promise<void> {
    const { touched, changed, added } = this.#applyLines(batch);
    if (this.backend === 'mountinfo') {
      if (this.#lines.size !== batch.lines) {
        // The batches do not add up to the file: read it again.
        await this.#resync('gap');
        return;
      }
      const changes: MountTableChange[] = [];
      const seen = new Set<number>();
      for (const id of [...touched, ...added]) {
        if (seen.has(id)) continue;
        seen.add(id);
        const line = this.#lines.get(id);
        const now = line === undefined ? undefined : this.#parse(line);
        changes.push(...changesFor(this.#lookup(id), now));
      }
      this.#queueChanges(sortChanges(changes));
      return;
    }
    // 'kernel': wakeups are counted against fanotify's events; a read's lines say which mounts
    // to read again (fanotify says which came and went).
    this.#active();
    const wakeups = batch.wakeups ?? 0;
    if (wakeups > 0) {
      this.#wakeupsSinceRead += wakeups;
      this.#burstWakeups += wakeups;
      this.#balance();
    }
    if (batch.reread === false) return;
    this.#readPending = false;
    this.#verify = true;
    this.#wakeupsSinceRead = 0;
    // Removed lines are fanotify's detaches (reported, or a loss the agreement check finds):
    // in a storm the reads' removed lines are thousands, each a statmount if read again here.
    const uniqueIds = new Set<bigint>();
    for (const id of changed) {
      const entry = this.#lookup(id);
      if (entry?.uniqueId !== undefined) uniqueIds.add(entry.uniqueId);
    }
    // A line new to the reads whose mount fanotify already reported: it may have changed since
    // (attached, then remounted before this read). A mount not in the table is fanotify's to report.
    for (const id of added) {
      const entry = this.#lookup(id);
      if (entry?.uniqueId === undefined) continue;
      const { uniqueId, ...known } = entry;
      if (!sameMount(known, this.#parse(this.#lines.get(id)!))) uniqueIds.add(uniqueId);
    }
    for (const uniqueId of this.#waiting) uniqueIds.add(uniqueId);
    this.#waiting.clear();
    if (uniqueIds.size > 0) await this.#refresh([...uniqueIds], new Set());
  }

  async #fanotifyBatch(batch: FanotifyBatch): Promise<void> {
    this.#active();
    this.#burstEvents += batch.events.length;
    this.#balance();
    if (batch.overflow) {
      await this.#resync('overrun');
      return;
    }
    const uniqueIds: bigint[] = [];
    const moved = new Set<bigint>();
    // What the binding's statmount saw when it read the batch: the state of the mount then, or
    // later, never earlier than the event (a detach's null included).
    const known = new Map<bigint, KernelMount | null>();
    for (const event of batch.events) {
      uniqueIds.push(event.uniqueId);
      if (event.kind === 'move') moved.add(event.uniqueId);
      if (event.mount !== undefined) known.set(event.uniqueId, event.mount);
      else known.delete(event.uniqueId);
    }
    await this.#refresh(uniqueIds, moved, known);
  }

  /**
   * Reads these mounts again with statmount (and the submounts of moved ones, whose mount points
   * changed without an event) and queues what changed: umounts first, then the rest in order.
   */
  async #refresh(uniqueIds: bigint[], moved: Set<bigint>, known: ReadonlyMap<bigint, KernelMount | null> = new Map()): Promise<void> {
    const wanted = new Set(uniqueIds);
    if (moved.size > 0) {
      // The submounts of a moved mount: a walk of the whole table (O(mounts) in JS, per batch with a move).
      const table = this.#projected();
      const byParent = new Map<number, MountInfo[]>();
      for (const mount of table.values()) {
        if (mount.parentId === mount.id) continue;
        const list = byParent.get(mount.parentId);
        if (list === undefined) byParent.set(mount.parentId, [mount]);
        else list.push(mount);
      }
      for (const uniqueId of moved) {
        const id = this.#idOf(uniqueId);
        if (id === undefined) continue;
        const stack = [...(byParent.get(id) ?? [])];
        while (stack.length > 0) {
          const child = stack.pop()!;
          if (child.uniqueId !== undefined) wanted.add(child.uniqueId);
          stack.push(...(byParent.get(child.id) ?? []));
        }
      }
    }
    const order = [...wanted];
    const states = await Promise.all(order.map((uniqueId) => (known.has(uniqueId) ? known.get(uniqueId)! : this.#io.stat!(uniqueId))));
    const umounts: MountTableChange[] = [];
    const others: MountTableChange[] = [];
    order.forEach((uniqueId, i) => {
      const state = states[i];
      const id = this.#idOf(uniqueId);
      const previous = id === undefined ? undefined : this.#lookup(id);
      if (state === null || state === undefined) {
        if (previous !== undefined) umounts.push({ kind: 'umount', mount: previous, nsSeq: 0n });
        return;
      }
      const now = this.#fromKernel(state);
      if (now === undefined) {
        // Its mountinfo line is not there yet (statmount lacks the source): the next batch has it.
        this.#waiting.add(uniqueId);
        return;
      }
      for (const change of changesFor(previous ?? this.#lookup(now.id), now)) (change.kind === 'umount' ? umounts : others).push(change);
    });
    this.#queueChanges([...umounts, ...others]);
  }

  /** The mount id of a unique id in the table as the queue will leave it. */
  #idOf(uniqueId: bigint): number | undefined {
    const id = this.#byUnique.get(uniqueId);
    if (id !== undefined && this.#lookup(id)?.uniqueId === uniqueId) return id;
    // Queued changes not applied yet.
    const queued = this.#overlayByUnique.get(uniqueId);
    if (queued !== undefined && this.#lookup(queued)?.uniqueId === uniqueId) return queued;
    return undefined;
  }

  /** A KernelMount as MountInfo, with the mountinfo line for what statmount lacks; undefined if that line is missing. */
  #fromKernel(mount: KernelMount): MountInfo | undefined {
    if (isComplete(mount)) return kernelMountInfo(mount, undefined, this.mntNs);
    const line = this.#lines.get(mount.id);
    if (line === undefined) return undefined;
    const parsed = this.#parse(line);
    if (!sameDevice(parsed, mount)) return undefined;
    return kernelMountInfo(mount, parsed, this.mntNs);
  }

  #parse(line: string): MountInfo {
    return parseMountinfo(line, { mntNs: this.mntNs })[0]!;
  }

  #mountinfoTable(): MountInfo[] {
    return [...this.#lines.values()].map((line) => this.#parse(line));
  }

  /** 'kernel': the whole table with listmount + statmount, completed from the mountinfo lines. */
  async #kernelTable(): Promise<MountInfo[]> {
    const mounts = await this.#io.list!();
    let lines = this.#lines;
    if (!mounts.every(isComplete) && !mounts.every((m) => lines.has(m.id))) {
      // The binding's lines are older than the table: a fresh read of mountinfo.
      lines = new Map(parseMountinfo(await this.#io.readMountinfo()).map((m) => [m.id, formatMountinfoLine(m)]));
    }
    const out: MountInfo[] = [];
    for (const mount of mounts) {
      if (isComplete(mount)) {
        out.push(kernelMountInfo(mount, undefined, this.mntNs));
        continue;
      }
      const line = lines.get(mount.id);
      if (line === undefined) continue; // gone between the two reads; its detach event follows
      out.push(kernelMountInfo(mount, parseMountinfo(line, { mntNs: this.mntNs })[0]!, this.mntNs));
    }
    return out;
  }

  /** The kernel's table now (listmount, or a read of mountinfo). */
  async #fresh(): Promise<MountInfo[]> {
    if (this.backend === 'kernel') return this.#kernelTable();
    return parseMountinfo(await this.#io.readMountinfo(), { mntNs: this.mntNs });
  }

  /**
   * 'kernel', after each item: a burst whose counts balance has every wakeup explained by an
   * event (reset); counts two or more apart for STALE_READ_INTERVAL_MS mean merged wakeups or
   * changes fanotify does not report: maybe stale, a re-read once the burst has lasted that
   * long, at most once per that interval while it lasts (and one at its end: #settled).
   */
  #balance(): void {
    const drift = this.#burstWakeups - this.#burstEvents;
    if (drift === 0) {
      this.#burstWakeups = 0;
      this.#burstEvents = 0;
      this.#driftSince = undefined;
      return;
    }
    // Apart by one is a change in flight; by more, briefly, the streams' batching (fanotify's
    // batches come when the binding has read and statmounted them); for a second, merged wakeups.
    const now = Date.now();
    if (drift >= 2 || drift <= -2) {
      this.#driftSince ??= now;
      if (now - this.#driftSince >= STALE_READ_INTERVAL_MS) this.#stale = true;
    } else this.#driftSince = undefined;
    // Not before the burst has lasted that long either: a short one (a recursive bind) is read once, at its end.
    if (this.#stale && !this.#readPending && now - Math.max(this.#lastReadAt, this.#burstStartedAt) >= STALE_READ_INTERVAL_MS) {
      this.#owedAtEnd = true;
      this.#requestRead();
    }
  }

  /** 'kernel': an item came; the first after a quiet moment begins a burst. */
  #active(): void {
    if (!this.#unsettled) this.#burstStartedAt = Date.now();
    this.#unsettled = true;
  }

  #requestRead(): void {
    this.#stale = false;
    this.#readPending = true;
    this.#lastReadAt = Date.now();
    this.#rereads++;
    this.#io.mountinfo.requestRead!();
  }

  /** Both streams quiet for #settleMs: the end of a burst ('kernel'). */
  async #settled(): Promise<void> {
    if (this.#burstWakeups !== this.#burstEvents || this.#waiting.size > 0) this.#stale = true;
    this.#burstWakeups = 0;
    this.#burstEvents = 0;
    this.#driftSince = undefined;
    if (this.#stale || this.#owedAtEnd) {
      // A pending read may have begun before the burst ended: ask again once it is answered.
      if (this.#readPending) return;
      this.#owedAtEnd = false;
      this.#settleMs = SETTLE_MS;
      this.#requestRead();
      return;
    }
    if (this.#readPending) return;
    await this.#agree();
  }

  /** 'kernel', once the streams are quiet after a read and no wakeup since (so the read's lines
   *  are the namespace's): the table must hold the mounts mountinfo shows. */
  async #agree(): Promise<void> {
    if (!this.#verify || this.#wakeupsSinceRead > 0) {
      this.#verify = false;
      this.#settleMs = SETTLE_MS;
      return;
    }
    const table = this.#projected();
    let same = table.size === this.#lines.size && this.#waiting.size === 0;
    if (same) for (const id of this.#lines.keys()) if (!table.has(id)) same = false;
    if (same) {
      this.#verify = false;
      this.#settleMs = SETTLE_MS;
      return;
    }
    if (this.#settleMs < SUSPECT_SETTLE_MS) {
      // Look again once both streams have been quiet for longer.
      this.#settleMs = SUSPECT_SETTLE_MS;
      this.#unsettled = true;
      return;
    }
    this.#settleMs = SETTLE_MS;
    this.#verify = false;
    await this.#resync('gap');
  }

  /** Compares the whole table with the kernel's, and queues the differences as changes (a resync item first when `reason`). */
  async #compare(reason: MountResyncReason | undefined): Promise<void> {
    const fresh = await this.#fresh();
    const table = this.#projected();
    const byId = new Map(fresh.map((m) => [m.id, m]));
    const changes: MountTableChange[] = [];
    let added = 0;
    let removed = 0;
    let changed = 0;
    for (const old of table.values()) {
      const now = byId.get(old.id);
      if (now === undefined || !sameIdentity(old, now)) {
        changes.push({ kind: 'umount', mount: old, nsSeq: 0n });
        removed++;
      }
    }
    for (const mount of fresh) {
      const old = table.get(mount.id);
      if (old === undefined || !sameIdentity(old, mount)) {
        changes.push({ kind: 'mount', mount, nsSeq: 0n });
        added++;
      } else if (!sameMount(old, mount)) {
        changes.push({ kind: old.mountPoint !== mount.mountPoint || old.parentId !== mount.parentId ? 'move' : 'remount', mount, previous: old, nsSeq: 0n });
        changed++;
      }
    }
    if (reason !== undefined) {
      this.#resyncs++;
      const nsSeq = this.#queuedSeq() + BigInt(changes.length);
      this.#queue.push({ kind: 'resync', reason, nsSeq, mounts: fresh.length, added, removed, changed });
    }
    this.#queueChanges(changes);
  }

  async #resync(reason: MountResyncReason): Promise<void> {
    this.#waiting.clear();
    await this.#compare(reason);
  }

  /** The count of changes once everything queued is applied. */
  #queuedSeq(): bigint {
    // The number of the last change queued, unless every one was applied since.
    return this.#tailSeq > this.#seq ? this.#tailSeq : this.#seq;
  }

  /** Queues changes, numbering them: each one's nsSeq is the watcher's count once it is applied. */
  #queueChanges(changes: MountTableChange[]): void {
    let seq = this.#queuedSeq();
    for (const change of changes) {
      this.#queue.push({ ...change, nsSeq: ++seq });
      this.#tailSeq = seq;
      if (change.kind === 'umount') this.#overlay.set(change.mount.id, null);
      else {
        this.#overlay.set(change.mount.id, change.mount);
        if (change.mount.uniqueId !== undefined) this.#overlayByUnique.set(change.mount.uniqueId, change.mount.id);
      }
    }
  }
}

/** The changes that take `previous` (the table's entry for the id) to `now` (undefined: gone). */
function changesFor(previous: MountInfo | undefined, now: MountInfo | undefined): MountTableChange[] {
  if (now === undefined) return previous === undefined ? [] : [{ kind: 'umount', mount: previous, nsSeq: 0n }];
  if (previous === undefined) return [{ kind: 'mount', mount: now, nsSeq: 0n }];
  if (!sameIdentity(previous, now)) return [{ kind: 'umount', mount: previous, nsSeq: 0n }, { kind: 'mount', mount: now, nsSeq: 0n }];
  if (sameMount(previous, now)) return [];
  const kind = previous.mountPoint !== now.mountPoint || previous.parentId !== now.parentId ? 'move' : 'remount';
  return [{ kind, mount: now, previous, nsSeq: 0n }];
}

/** Umounts before the rest (a reused id goes before it comes again). */
function sortChanges(changes: MountTableChange[]): MountTableChange[] {
  return [...changes.filter((c) => c.kind === 'umount'), ...changes.filter((c) => c.kind !== 'umount')];
}

function sameDevice(line: MountInfo, mount: KernelMount): boolean {
  return line.major === mount.major && line.minor === mount.minor && line.root === mount.root;
}

/** The text of the caller's mountinfo. */
export function readOwnMountinfo(): Promise<string> {
  return readFile('/proc/self/mountinfo', 'utf8');
}
