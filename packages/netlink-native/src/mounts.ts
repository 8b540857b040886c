// The kernel's own mount APIs, for a mount table without the usip module: listmount/statmount
// (Linux 6.8+), fanotify mount events (6.15+), the mountinfo change signal (every kernel), and
// statfs with a timeout. All system calls run off the JS thread; results cross once per call
// or batch. Failures are SyscallErrors (errno, code, syscall, operation).
import { loadBinding } from './binding.js';
import { fromNativeSyscallError } from './errors.js';
import type {
  NativeFanotifyMountWatch,
  NativeMountApiSupport,
  NativeMountinfoWatch,
} from './native.js';

/** One mount as statmount(2) describes it. Paths are relative to the caller's root, as the
 *  kernel gives them (not escaped, unlike mountinfo). A field the kernel did not answer is
 *  undefined (e.g. `source` before Linux 6.15's STATMOUNT_SB_SOURCE). */
export interface KernelMount {
  /** mnt_id_old: the id mountinfo shows. */
  id: number;
  /** mnt_parent_id_old. */
  parentId: number;
  /** mnt_id: the 64-bit id that is never reused (what fanotify reports). */
  uniqueId: bigint;
  /** mnt_parent_id (the mount's own id for the root). */
  parentUniqueId: bigint;
  /** sb_dev_major / sb_dev_minor. */
  major: number;
  minor: number;
  /** mnt_root: the root of the mount in its file system. */
  root: string;
  /** mnt_point. */
  mountPoint: string;
  /** mnt_attr: MountAttr bits. */
  mountAttr: bigint;
  /** mnt_propagation: Propagation bits (MS_SHARED | MS_SLAVE | MS_PRIVATE | MS_UNBINDABLE). */
  propagation: bigint;
  /** mnt_peer_group (shared:N in mountinfo), 0 if none. */
  peerGroup: number;
  /** mnt_master (master:N), 0 if none. */
  master: number;
  /** propagate_from (propagate_from:N), 0 if none. */
  propagateFrom: number;
  /** fs_type, with '.subtype' when the kernel gives FS_SUBTYPE (fuse.sshfs). */
  fsType: string;
  /** STATMOUNT_SB_SOURCE (6.15+); '' when the kernel knows the field and it is empty. */
  source?: string;
  /** STATMOUNT_MNT_OPTS: the super block's options, comma-joined as the kernel gives them
   *  (mountinfo's super options without the leading rw/ro); '' when there are none. */
  mountOptions?: string;
  /** sb_flags: SB_RDONLY (1), SB_SYNCHRONOUS (16), SB_DIRSYNC (128), SB_LAZYTIME (1 << 25). */
  sbFlags: number;
  /** sb_magic: the file system's magic number (statfs f_type). */
  sbMagic?: bigint;
  /** STATMOUNT_MNT_NS_ID: the mount namespace's id. */
  mntNsId?: bigint;
}

export interface MountApiSupport {
  /** listmount(2) answers (Linux 6.8+). */
  listmount: boolean;
  /** statmount(2) answers (Linux 6.8+). */
  statmount: boolean;
  /** The StatmountMask request bits this kernel answers: its STATMOUNT_SUPPORTED_MASK where it
   *  has one (6.15+), else the bits it answered for the root mount when asked for all. */
  statmountMask: bigint;
  /** fanotify mount events on the caller's own mount namespace. */
  fanotifyMount: { available: boolean; reason?: string };
}

/** STATMOUNT_* request bits (include/uapi/linux/mount.h). */
export const StatmountMask = {
  sbBasic: 0x1n,
  mntBasic: 0x2n,
  propagateFrom: 0x4n,
  mntRoot: 0x8n,
  mntPoint: 0x10n,
  fsType: 0x20n,
  mntNsId: 0x40n,
  mntOpts: 0x80n,
  fsSubtype: 0x100n,
  sbSource: 0x200n,
  optArray: 0x400n,
  optSecArray: 0x800n,
  supportedMask: 0x1000n,
  mntUidmap: 0x2000n,
  mntGidmap: 0x4000n,
} as const;

/** MOUNT_ATTR_* bits of KernelMount.mountAttr. */
export const MountAttr = {
  rdonly: 0x1n,
  nosuid: 0x2n,
  nodev: 0x4n,
  noexec: 0x8n,
  /** The atime bits: 0 relatime, 0x10 noatime, 0x20 strictatime. */
  atimeMask: 0x70n,
  noatime: 0x10n,
  strictatime: 0x20n,
  nodiratime: 0x80n,
  idmap: 0x100000n,
  nosymfollow: 0x200000n,
} as const;

/** Bits of KernelMount.propagation. */
export const Propagation = {
  unbindable: 1n << 17n,
  private: 1n << 18n,
  slave: 1n << 19n,
  shared: 1n << 20n,
} as const;

async function settle<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw fromNativeSyscallError(error);
  }
}

function construct<T>(make: () => T): T {
  try {
    return make();
  } catch (error) {
    throw fromNativeSyscallError(error);
  }
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'object') return value.constructor?.name ?? 'object';
  return `${typeof value} ${String(value)}`;
}

let support: MountApiSupport | undefined;

/** Which of the kernel's mount APIs this kernel and this caller have. Probed once per process
 *  (by calling them: a few system calls), then answered from memory. */
export function mountApiSupport(): MountApiSupport {
  if (support) return support;
  const native: NativeMountApiSupport = loadBinding().mountApiSupport();
  const fanotifyMount: MountApiSupport['fanotifyMount'] = { available: native.fanotifyMount.available };
  if (typeof native.fanotifyMount.reason === 'string') fanotifyMount.reason = native.fanotifyMount.reason;
  support = Object.freeze({
    listmount: native.listmount,
    statmount: native.statmount,
    statmountMask: native.statmountMask,
    fanotifyMount: Object.freeze(fanotifyMount),
  });
  return support;
}

/** listmount(LSMT_ROOT) of the caller's mount namespace in batches, then statmount of each
 *  mount, on a worker thread; one crossing into JS. In listmount's order (ascending uniqueId).
 *  A mount that goes away between the two calls is left out. Rejects with a SyscallError
 *  (ENOSYS before Linux 6.8). */
export async function listKernelMounts(): Promise<KernelMount[]> {
  return (await settle(() => loadBinding().listKernelMounts())) as KernelMount[];
}

/** statmount of one mount of the caller's namespace by its unique id; null when there is none
 *  (ENOENT). */
export async function statKernelMount(uniqueId: bigint): Promise<KernelMount | null> {
  if (typeof uniqueId !== 'bigint') throw new TypeError(`uniqueId must be a bigint, got ${describe(uniqueId)}`);
  if (uniqueId < 0n || uniqueId > 0xffff_ffff_ffff_ffffn) {
    throw new RangeError(`uniqueId must be from 0 to 2^64-1, got ${uniqueId}`);
  }
  return (await settle(() => loadBinding().statKernelMount(uniqueId))) as KernelMount | null;
}

/** One batch of a MountinfoWatch. */
export interface MountinfoBatch {
  /** How many reads found the file changed so far (1 for the first batch). A batch covers every
   *  read since the previous batch: a consumer that is slow gets one coalesced batch. */
  generation: number;
  /** Whole lines of the mounts that appeared, in file order. The first batch: every line. */
  added: string[];
  /** Mount ids (the lines' first field) of the mounts that are gone. */
  removed: number[];
  /** Whole new lines of the mounts whose line text differs (remount, propagation change...). */
  changed: string[];
  /** The table's size (lines) after this batch (as of the last read). */
  lines: number;
  /** How many times the thread was woken (POLLPRI) since the previous batch; with `reread`,
   *  the wakeups before that read (one after it comes in a later batch). Wakeups coalesce:
   *  changes made while the thread was not waiting in poll() are one wakeup. */
  wakeups: number;
  /** The file was read for this batch: `added`, `removed` and `changed` are that read's
   *  difference (possibly empty with `reread: 'on-request'`). Always true by default; with
   *  `reread: 'on-request'` a batch without it only reports `wakeups`. */
  reread: boolean;
}

export interface MountinfoWatchOptions {
  /** When the thread re-reads the file: `'every-wakeup'` (default: each batch is a difference)
   *  or `'on-request'`: it reads once at the start, then only after requestRead(); a wakeup
   *  is only counted (a batch with `wakeups` and no read), O(1) per change. */
  reread?: 'every-wakeup' | 'on-request';
}

const DONE: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });

/**
 * Watches a mountinfo file the way every kernel allows: a thread (in the addon) waits in poll()
 * for the file's mount-change signal (POLLPRI | POLLERR), re-reads the whole file after each
 * wakeup and diffs it against the previous read by mount id, off the JS thread. The first batch
 * is the whole table, so the snapshot and the changes come from the same reads. With
 * `{ reread: 'on-request' }` the thread only counts wakeups (batches with `wakeups` and
 * `reread: false`) and reads again when asked with requestRead().
 *
 * Is its own async iterator: `for await (const batch of watch)` or `await watch.next()`.
 * Ending a for-await loop (break, return()) closes the watch. An error (e.g. a read that
 * fails) rejects one next() with a SyscallError, after which the iterator is done.
 * Lines that are not valid UTF-8 are decoded with U+FFFD replacements.
 */
export class MountinfoWatch implements AsyncIterableIterator<MountinfoBatch> {
  readonly path: string;
  readonly reread: 'every-wakeup' | 'on-request';
  readonly #native: NativeMountinfoWatch;

  /** Opens the file and starts the thread; throws a SyscallError (ENOENT, EACCES) when it
   *  cannot open the file. */
  constructor(path = '/proc/self/mountinfo', options: MountinfoWatchOptions = {}) {
    if (typeof path !== 'string') throw new TypeError(`path must be a string, got ${describe(path)}`);
    if (typeof options !== 'object' || options === null) {
      throw new TypeError(`options must be an object, got ${describe(options)}`);
    }
    const { reread = 'every-wakeup' } = options;
    if (reread !== 'every-wakeup' && reread !== 'on-request') {
      throw new TypeError(`options.reread must be 'every-wakeup' or 'on-request', got ${describe(reread)}`);
    }
    this.path = path;
    this.reread = reread;
    const { NativeMountinfoWatch } = loadBinding();
    this.#native = construct(() => new NativeMountinfoWatch(path, reread === 'on-request'));
  }

  get closed(): boolean {
    return this.#native.closed;
  }

  /** Asks the thread to read the file again: the next batch with `reread: true` is the
   *  difference from a read that began after this call (requests before that read begins
   *  are one read). Meant for `reread: 'on-request'`; by default it just adds a read. Does
   *  nothing once closed. */
  requestRead(): void {
    this.#native.requestRead();
  }

  async next(): Promise<IteratorResult<MountinfoBatch, undefined>> {
    const batch = await settle(() => this.#native.next());
    return batch === null ? DONE : { done: false, value: batch };
  }

  /** Closes the watch (ends the loop that called it). */
  async return(): Promise<IteratorResult<MountinfoBatch, undefined>> {
    this.close();
    return DONE;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** Stops the thread (at once: it waits on an eventfd too) and ends the iterator: a pending
   *  next() resolves done. Idempotent. */
  close(): void {
    this.#native.close();
  }
}

export interface FanotifyMountWatchOptions {
  /** The mount namespace to mark: a /proc/<pid>/ns/mnt path (default: the caller's own,
   *  /proc/self/ns/mnt). Needs CAP_SYS_ADMIN in the namespace's user namespace. */
  nsPath?: string;
  /** statmount each attached or moved mount in the addon before the batch is delivered, and
   *  give it as `event.mount` (null for a detach, or when the mount was gone by then). */
  statmount?: boolean;
}

export interface MountEvent {
  /** 'move' is one kernel event with both FAN_MNT_ATTACH and FAN_MNT_DETACH. */
  kind: 'attach' | 'detach' | 'move';
  uniqueId: bigint;
  /** With `statmount: true`: the mount as statmount saw it when the batch was read; null for
   *  a detach, or when statmount could not describe it (gone by then, or refused). */
  mount?: KernelMount | null;
}

export interface MountEventBatch {
  events: MountEvent[];
  /** The kernel's event queue overflowed (FAN_Q_OVERFLOW; its limit is
   *  fs.fanotify.max_queued_events, 16384 by default): events were lost here; resync. */
  overflow: boolean;
}

/**
 * fanotify mount events (Linux 6.15+): fanotify_init(FAN_CLASS_NOTIF | FAN_REPORT_MNT |
 * FAN_CLOEXEC | FAN_NONBLOCK) and fanotify_mark(FAN_MARK_ADD | FAN_MARK_MNTNS,
 * FAN_MNT_ATTACH | FAN_MNT_DETACH) of a mount namespace. The descriptor is read by the addon's
 * tokio reactor: waiting costs no thread. Its own async iterator, like MountinfoWatch; the
 * events read together come as one batch.
 */
export class FanotifyMountWatch implements AsyncIterableIterator<MountEventBatch> {
  readonly #native: NativeFanotifyMountWatch;
  readonly #statmount: boolean;

  /** Throws a SyscallError when the kernel or the caller cannot: EINVAL from fanotify_init
   *  before Linux 6.15, EPERM from fanotify_mark without CAP_SYS_ADMIN over the namespace
   *  (`detail` says which in words). */
  constructor(options: FanotifyMountWatchOptions = {}) {
    if (typeof options !== 'object' || options === null) {
      throw new TypeError(`options must be an object, got ${describe(options)}`);
    }
    const { nsPath, statmount = false } = options;
    if (nsPath !== undefined && typeof nsPath !== 'string') {
      throw new TypeError(`options.nsPath must be a string, got ${describe(nsPath)}`);
    }
    if (typeof statmount !== 'boolean') {
      throw new TypeError(`options.statmount must be a boolean, got ${describe(statmount)}`);
    }
    this.#statmount = statmount;
    const { NativeFanotifyMountWatch } = loadBinding();
    this.#native = construct(() => new NativeFanotifyMountWatch(nsPath, statmount));
  }

  get closed(): boolean {
    return this.#native.closed;
  }

  async next(): Promise<IteratorResult<MountEventBatch, undefined>> {
    const batch = await settle(() => this.#native.next());
    if (batch === null) return DONE;
    const events = batch.events as MountEvent[];
    if (this.#statmount && batch.mounts) {
      const mounts = batch.mounts as Array<KernelMount | null>;
      for (let index = 0; index < events.length; index++) events[index]!.mount = mounts[index] ?? null;
    }
    return { done: false, value: { events, overflow: batch.overflow } };
  }

  /** Closes the watch (ends the loop that called it). */
  async return(): Promise<IteratorResult<MountEventBatch, undefined>> {
    this.close();
    return DONE;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** Closes the fanotify group (its mark goes with it); a pending next() resolves done. */
  close(): void {
    this.#native.close();
  }
}

export interface StatfsOptions {
  /** Reject with ETIMEDOUT after this many milliseconds (waiting for a free thread included);
   *  0 or absent: wait as long as the kernel takes. */
  timeoutMs?: number;
}

export interface StatfsResult {
  /** f_type: the file system's magic number. */
  type: bigint;
  blockSize: bigint;
  fragmentSize: bigint;
  blocks: bigint;
  blocksFree: bigint;
  blocksAvailable: bigint;
  files: bigint;
  filesFree: bigint;
  /** f_fsid as glibc's statvfs gives it: __val[0] | __val[1] << 32. */
  fsid: bigint;
  nameMax: bigint;
  /** f_flags: ST_RDONLY (1), ST_NOSUID (2), ... */
  flags: bigint;
}

/** How many statfs threads may exist at once, blocked ones included (MAX_STATFS_THREADS of
 *  crates/mountapi/src/statfs.rs; the hung-FUSE test checks that they agree). */
export const MAX_STATFS_THREADS = 16;

/**
 * statfs(2) of a path on a thread of its own. A statfs of a hung file system (a dead NFS
 * server) blocks in the kernel and cannot be cancelled: with `timeoutMs` the promise rejects
 * with ETIMEDOUT, and the thread stays blocked until the kernel returns. At most
 * MAX_STATFS_THREADS (16) such threads exist at once; further calls wait for one to be free.
 */
export async function statfsPath(path: string, options: StatfsOptions = {}): Promise<StatfsResult> {
  if (typeof path !== 'string') throw new TypeError(`path must be a string, got ${describe(path)}`);
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`options must be an object, got ${describe(options)}`);
  }
  const { timeoutMs } = options;
  if (timeoutMs !== undefined) {
    if (typeof timeoutMs !== 'number' || !Number.isInteger(timeoutMs)) {
      throw new TypeError(`options.timeoutMs must be an integer, got ${describe(timeoutMs)}`);
    }
    if (timeoutMs < 0 || timeoutMs > 0xffffffff) {
      throw new RangeError(`options.timeoutMs must be from 0 to 4294967295, got ${timeoutMs}`);
    }
  }
  return settle(() => loadBinding().statfsPath(path, timeoutMs));
}
