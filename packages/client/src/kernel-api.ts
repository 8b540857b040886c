// The kernel's own mount API, as @usip/netlink-native exposes it (listmount/statmount 6.8+,
// fanotify mount events 6.15+, a poll() watcher of mountinfo and statfs(2), all run off the JS
// thread). Looked up at run time, member by member: a binding built before one of them existed
// makes that one unavailable, with a reason, instead of breaking the import.
import * as native from '@usip/netlink-native';

/** What the running kernel offers of the new mount API (mountApiSupport()). */
export interface MountApiSupport {
  listmount: boolean;
  statmount: boolean;
  /** The STATMOUNT_* request bits the kernel answers. */
  statmountMask: bigint;
  fanotifyMount: { available: boolean; reason?: string };
}

/** One mount as listmount + statmount describe it. Fields the kernel does not answer are undefined. */
export interface KernelMount {
  /** mnt_id_old: mountinfo's first field. */
  id: number;
  parentId: number;
  uniqueId: bigint;
  parentUniqueId: bigint;
  major: number;
  minor: number;
  /** Real strings (no escapes). */
  root: string;
  mountPoint: string;
  /** MOUNT_ATTR_* */
  mountAttr: bigint;
  /** MS_SHARED | MS_SLAVE | MS_PRIVATE | MS_UNBINDABLE */
  propagation: bigint;
  peerGroup: number;
  master: number;
  propagateFrom: number;
  fsType: string;
  /** STATMOUNT_SB_SOURCE (newer kernels only). */
  source?: string;
  /** STATMOUNT_MNT_OPTS: the file system's own options, as its show_options() writes them. */
  mountOptions?: string;
  /** The super block's SB_RDONLY, SB_SYNCHRONOUS, SB_DIRSYNC, SB_LAZYTIME bits. */
  sbFlags: number;
  mntNsId?: bigint;
}

/** A batch of a MountinfoWatch: the difference between two reads of mountinfo. */
export interface MountinfoBatch {
  generation: number;
  /** Whole mountinfo lines. */
  added: string[];
  /** Mount ids. */
  removed: number[];
  /** Whole lines of mounts whose line changed. */
  changed: string[];
  /** Lines in the file after this batch (as of the last read). */
  lines: number;
  /** The watch thread's wakeups since the previous batch (with `reread`: those before the read). */
  wakeups?: number;
  /** The batch comes from a read (always, by default); false: a `reread: 'on-request'` watch
   *  reports only wakeups. Absent from a binding built before the option: true. */
  reread?: boolean;
}

export interface FanotifyMountEvent {
  kind: 'attach' | 'detach' | 'move';
  uniqueId: bigint;
  /** With the watch's `statmount` option: the mount as the binding saw it when it read the
   *  batch (null: gone by then, or a detach). */
  mount?: KernelMount | null;
}

export interface FanotifyBatch {
  events: FanotifyMountEvent[];
  /** The fanotify queue overflowed: events were lost before this batch. */
  overflow: boolean;
}

/** An async stream the binding reads on its own thread; close() ends it. */
export interface NativeStream<T> extends AsyncIterable<T> {
  close(): void;
}

/** The mountinfo poll: with `reread: 'on-request'` it reads the file only after requestRead(). */
export interface MountinfoStream extends NativeStream<MountinfoBatch> {
  requestRead?(): void;
}

/** statfs(2) of a path, as the binding reports it (every number a bigint). */
export interface NativeStatfs {
  type: bigint;
  blockSize: bigint;
  fragmentSize: bigint;
  blocks: bigint;
  blocksFree: bigint;
  blocksAvailable: bigint;
  files: bigint;
  filesFree: bigint;
  fsid: bigint;
  nameMax: bigint;
  flags: bigint;
}

export interface KernelApi {
  mountApiSupport(): MountApiSupport;
  listKernelMounts(): Promise<KernelMount[]>;
  statKernelMount(uniqueId: bigint): Promise<KernelMount | null>;
  MountinfoWatch: new (path?: string, options?: { reread?: 'every-wakeup' | 'on-request' }) => MountinfoStream;
  FanotifyMountWatch: new (options?: { nsPath?: string; statmount?: boolean }) => NativeStream<FanotifyBatch>;
  statfsPath(path: string, options?: { timeoutMs?: number }): Promise<NativeStatfs>;
}

const NAMES = ['mountApiSupport', 'listKernelMounts', 'statKernelMount', 'MountinfoWatch', 'FanotifyMountWatch', 'statfsPath'] as const;

let override: Partial<KernelApi> | undefined;

/** @internal Tests replace members of the kernel API (e.g. to make fanotify refuse). */
export function setKernelApiForTests(api: Partial<KernelApi> | undefined): void {
  override = api;
}

/** One member of the binding's mount API, or undefined when this build of the binding lacks it. */
export function kernelApi<K extends keyof KernelApi>(name: K): KernelApi[K] | undefined {
  if (override !== undefined && override[name] !== undefined) return override[name] as KernelApi[K];
  const value = (native as unknown as Record<string, unknown>)[name];
  return typeof value === 'function' ? (value as KernelApi[K]) : undefined;
}

/** The members of the mount API this build of @usip/netlink-native lacks. */
export function missingKernelApi(): string[] {
  return NAMES.filter((name) => kernelApi(name) === undefined);
}

/** Why a member is missing, for messages. */
export function missingReason(name: keyof KernelApi): string {
  return `@usip/netlink-native has no ${name}() (a build from before the kernel mount API; rebuild it with "npx nx build netlink-native")`;
}

/** A member that must be there: throws an Error naming it otherwise. */
export function requireKernelApi<K extends keyof KernelApi>(name: K): KernelApi[K] {
  const value = kernelApi(name);
  if (value === undefined) throw new Error(missingReason(name));
  return value;
}
