// openMounts(): the mount table, its changes, statfs and block devices through one API on every
// kernel, module or not, each feature from the backend chooseBackends() picked for it (the
// module, the kernel's listmount/statmount/fanotify/statfs(2), or /proc/self/mountinfo).
import { realpath, stat } from 'node:fs/promises';
import { constants, release } from 'node:os';
import { UsipClient } from './client.js';
import { chooseBackends, choiceOf, fanotifyReason, probeBackends, probeKernel, requireBackend, UsipBackendUnavailableError, type BackendPlan, type BackendProbe, type MountBackend } from './backends.js';
import { readBlockDevices, splitDev, type BlockDevice, type BlockDeviceOptions } from './devices.js';
import { UsipArgumentError, UsipError, UsipModuleNotLoadedError } from './errors.js';
import { requireKernelApi, type KernelMount, type NativeStream, type FanotifyBatch } from './kernel-api.js';
import { isComplete, kernelMountInfo } from './kernel-mounts.js';
import { parseMountinfo, readMountinfo, type MountInfo, type MountTable } from './mounts.js';
import { mountKey, mountWatcherOptions, statfsOptions, statfsRequest, type MountWatcherOptions, type StatfsOptions, type StatfsTarget } from './options.js';
import { statfsError, type StatfsError, type StatfsInfo } from './statfs.js';
import { STATFS_FLAGS_NAMES, type StatfsFlagsName } from './generated/usip.js';
import { flagNames } from './netlink/attributes.js';
import { readOwnMountinfo, UserSpaceMountWatcher, type MountTableWatcher, type UserWatcherIo } from './user-watcher.js';
import { checkSignal, Lifetime, onAbort, takeSignal, whileNotAborted, type AbortOptions } from './lifetime.js';

export interface OpenMountsOptions {
  /** Serve the mount features from this backend only (default: the best for each feature). */
  backend?: MountBackend;
  /** Cancels the opening (the probes, the module's connection): open() rejects with the
   *  signal's reason and nothing stays open. The UsipMounts' life is not bound to it. */
  signal?: AbortSignal;
}

export interface WatchMountsOptions extends MountWatcherOptions {
  /** Without the module: how often the whole table is compared with the kernel's while quiet, to
   *  catch propagation changes nothing reports (ms, default 5000; 0 never). */
  checkIntervalMs?: number;
  /** Cancels watchMounts() while it waits (nothing stays open), and later ends the watcher. */
  signal?: AbortSignal;
}

/** No mount with this id is visible to the caller (in its namespace, under its root). */
export class UsipNoSuchMountError extends UsipError {
  constructor(operation: string, what: string) {
    super('ENOENT', `${operation}: no mount ${what} in the caller's mount namespace, under its root`);
  }
}

/** A system call failed (statfs of a path that does not exist, ...): `code` is the errno's name. */
export class UsipSystemError extends UsipError {
  readonly errno: number;
  constructor(operation: string, code: string, message: string, options?: { cause?: unknown }) {
    super(code, `${operation}: ${message} (${code})`, options);
    this.errno = (constants.errno as Record<string, number>)[code] ?? 0;
  }
}

async function ownMntNs(): Promise<number> {
  return (await stat('/proc/self/ns/mnt')).ino;
}

const STATFS_CONCURRENCY = 16;

/**
 * The mount information of the caller's namespace from the best backend for each feature (see
 * `plan`). Open with openMounts(); close() when done (it may hold the module's netlink socket).
 */
export class UsipMounts implements AsyncDisposable {
  /** Which backend serves each feature, and why. */
  readonly plan: BackendPlan;
  /** The module's connection, when the module is loaded. */
  readonly client: UsipClient | undefined;
  readonly #lifetime: Lifetime;

  private constructor(plan: BackendPlan, client: UsipClient | undefined) {
    this.plan = plan;
    this.client = client;
    this.#lifetime = new Lifetime(async () => client?.close());
  }

  /** Probes the module and the kernel and decides (see chooseBackends). */
  static async open(options: OpenMountsOptions = {}): Promise<UsipMounts> {
    if (typeof options !== 'object' || options === null) {
      throw new UsipArgumentError('options', `usip open-mounts: options must be an object, got ${options === null ? 'null' : typeof options}`);
    }
    const signal = checkSignal('usip open-mounts', options.signal);
    signal?.throwIfAborted();
    let client: UsipClient | undefined;
    let refused: string | undefined;
    try {
      client = await UsipClient.connect({ signal });
    } catch (error) {
      if (signal?.aborted === true) throw signal.reason;
      // Not loaded, or netlink out of reach (a seccomp filter, ...): served without it.
      refused = error instanceof UsipModuleNotLoadedError ? 'module not loaded' : `module: ${(error as Error).message}`;
    }
    try {
      const probe: BackendProbe =
        client === undefined ? { ...probeKernel(), module: { loaded: false, reason: refused! } } : await whileNotAborted(signal, () => probeBackends({ client: client! }));
      const plan = chooseBackends(probe, options.backend === undefined ? {} : { backend: options.backend });
      return new UsipMounts(plan, client);
    } catch (error) {
      await client?.close();
      throw error;
    }
  }

  /** True once close() was called. */
  get closed(): boolean {
    return this.#lifetime.closed;
  }

  /** The backend of a feature, or the error that says why none can serve it. */
  backendOf(feature: Parameters<typeof choiceOf>[1]): MountBackend {
    return requireBackend(this.plan, feature).backend as MountBackend;
  }

  #client(): UsipClient {
    if (this.client === undefined) throw new UsipModuleNotLoadedError();
    return this.client;
  }

  /** The mount table of the caller's namespace, in its order (what /proc/self/mountinfo shows). */
  async mounts(options: AbortOptions = {}): Promise<MountTable> {
    const { signal } = takeSignal('usip mount-get', options);
    switch (this.backendOf('mount-table')) {
      case 'module':
        return this.#client().mounts({ signal });
      case 'kernel':
        return whileNotAborted(signal, async () => ({ mounts: await kernelTable(await ownMntNs(), signal), nsSeq: 0n }));
      case 'mountinfo':
        return whileNotAborted(signal, async () => ({ mounts: await readMountinfo(), nsSeq: 0n }));
    }
  }

  /** One mount, by mount id or `{ uniqueId }` (the module, or Linux 6.8+'s statmount). */
  async mount(id: number | { uniqueId: bigint }, options: AbortOptions = {}): Promise<MountInfo> {
    const label = 'usip mount-get';
    const { signal } = takeSignal(label, options);
    const key = mountKey(label, id);
    const backend = this.backendOf('mount-table');
    if (backend === 'module') return this.#client().mount(id, { signal });
    return whileNotAborted(signal, () => this.#kernelMount(label, key, backend, signal));
  }

  async #kernelMount(label: string, key: { mountId: number } | { uniqueId: bigint }, backend: MountBackend, signal: AbortSignal | undefined): Promise<MountInfo> {
    if ('uniqueId' in key) {
      if (backend !== 'kernel') {
        throw new UsipBackendUnavailableError('mount-table', backend, 'mountinfo has no unique ids (they need listmount/statmount, Linux 6.8, or the module)');
      }
      const found = await requireKernelApi('statKernelMount')(key.uniqueId);
      if (found === null) throw new UsipNoSuchMountError(label, `with unique id ${key.uniqueId}`);
      const mntNs = await ownMntNs();
      if (isComplete(found)) return kernelMountInfo(found, undefined, mntNs);
      const line = (await readMountinfo()).find((m) => m.id === found.id);
      if (line === undefined) throw new UsipNoSuchMountError(label, `with unique id ${key.uniqueId}`);
      return kernelMountInfo(found, line, mntNs);
    }
    const { mounts } = await this.mounts({ signal });
    const found = mounts.find((m) => m.id === key.mountId);
    if (found === undefined) throw new UsipNoSuchMountError(label, String(key.mountId));
    return found;
  }

  /**
   * Watches the mount table: a snapshot (`table`) and its changes, with the same kinds and the
   * same guarantees on every backend (see the README). Without the module, fanotify where the
   * kernel has mount events and the caller may mark its namespace, else the mountinfo poll;
   * `fallbackReason` says why fanotify was not used when the kernel backend was chosen but refused.
   */
  async watchMounts(options: WatchMountsOptions = {}): Promise<MountTableWatcher & { fallbackReason?: string }> {
    const { checkIntervalMs, signal: given, ...moduleOptions } = options;
    const signal = checkSignal('usip watch-mounts', given);
    if (checkIntervalMs !== undefined && (!Number.isSafeInteger(checkIntervalMs) || checkIntervalMs < 0)) {
      throw new UsipError('USIP_INVALID_ARGUMENT', `usip watch-mounts: checkIntervalMs: expected an integer >= 0, got ${checkIntervalMs}`);
    }
    const backend = this.backendOf('mount-changes');
    signal?.throwIfAborted();
    if (backend === 'module') {
      // MountWatcher (client.ts, mount-watcher.ts) does not take the signal itself here: a watcher
      // made after the abort is closed, and the abort closes it later (its pending next() then ends).
      const watcher = await whileNotAborted(signal, () => this.#client().watchMounts(mountWatcherOptions(moduleOptions)), (w) => w.close());
      onAbort(signal, () => void watcher.close().catch(() => undefined));
      return watcher;
    }
    const watchOptions = { ...(checkIntervalMs === undefined ? {} : { checkIntervalMs }), ...(signal === undefined ? {} : { signal }) };
    const mntNs = await whileNotAborted(signal, ownMntNs);
    let fallbackReason: string | undefined;
    if (backend === 'kernel') {
      // Subscribe first: fanotify, then the mountinfo poll, then the table.
      let fanotify: NativeStream<FanotifyBatch> | undefined;
      try {
        fanotify = new (requireKernelApi('FanotifyMountWatch'))({ statmount: true });
      } catch (error) {
        const code = (error as { code?: unknown }).code;
        if (this.plan.forced === 'kernel' || typeof code !== 'string') {
          throw new UsipBackendUnavailableError('mount-changes', 'kernel', fanotifyRefusal(code, error), { cause: error });
        }
        fallbackReason = fanotifyRefusal(code, error);
      }
      if (fanotify !== undefined) {
        let mountinfo;
        try {
          // Its wakeups only; it reads mountinfo when the watcher asks (remounts and the like).
          mountinfo = new (requireKernelApi('MountinfoWatch'))(undefined, { reread: 'on-request' });
        } catch (error) {
          fanotify.close();
          throw error;
        }
        const io: UserWatcherIo = {
          mountinfo,
          fanotify,
          stat: requireKernelApi('statKernelMount'),
          list: requireKernelApi('listKernelMounts'),
          readMountinfo: readOwnMountinfo,
          mntNs,
        };
        return UserSpaceMountWatcher.open('kernel', io, watchOptions);
      }
    }
    const mountinfo = new (requireKernelApi('MountinfoWatch'))();
    const watcher = await UserSpaceMountWatcher.open('mountinfo', { mountinfo, readMountinfo: readOwnMountinfo, mntNs }, watchOptions);
    return fallbackReason === undefined ? watcher : Object.assign(watcher, { fallbackReason });
  }

  /** File system usage of one mount (see UsipClient#statfs); without the module, statfs(2). */
  async statfs(target: StatfsTarget, options: StatfsOptions & AbortOptions = {}): Promise<StatfsInfo> {
    const label = 'usip statfs';
    if (this.backendOf('statfs') === 'module') return this.#client().statfs(target, options);
    const { signal, rest } = takeSignal(label, options);
    const request = statfsRequest(label, target, rest);
    return whileNotAborted(signal, async () => {
      if (request.path !== undefined) {
        const { mounts } = await this.mounts({ signal });
        const mount = await mountOfPath(label, mounts, request.path);
        return statfsOfMount(mount, request.path, request.timeoutMs);
      }
      const mount = await this.mount(request.uniqueId !== undefined ? { uniqueId: request.uniqueId } : Number(request.mountId!), { signal });
      return statfsOfMount(mount, mount.mountPoint, request.timeoutMs);
    });
  }

  /** File system usage of every mount, in the table's order (see UsipClient#statfsAll). */
  async statfsAll(options: StatfsOptions & AbortOptions = {}): Promise<StatfsInfo[]> {
    if (this.backendOf('statfs') === 'module') return this.#client().statfsAll(options);
    const { signal, rest } = takeSignal('usip statfs', options);
    const timeoutMs = statfsOptions('usip statfs', rest);
    return whileNotAborted(signal, () => this.#statfsAll(timeoutMs, signal));
  }

  async #statfsAll(timeoutMs: number | undefined, signal: AbortSignal | undefined): Promise<StatfsInfo[]> {
    const { mounts } = await this.mounts({ signal });
    const out = new Array<StatfsInfo>(mounts.length);
    // A mount with another on its very mount point is out of statfs(2)'s reach: the path leads to the top one.
    const hidden = new Set(mounts.filter((m) => m.parentId !== m.id).flatMap((m) => (mounts.some((p) => p.id === m.parentId && p.mountPoint === m.mountPoint) ? [m.parentId] : [])));
    let next = 0;
    const worker = async () => {
      // An abandoned call stops starting statfs(2)s (each may wait out a hung file system's timeout).
      while (next < mounts.length && signal?.aborted !== true) {
        const i = next++;
        const mount = mounts[i]!;
        out[i] = hidden.has(mount.id) ? { ...(await statfsBase(mount)), error: OVERMOUNTED } : await statfsOfMount(mount, mount.mountPoint, timeoutMs);
      }
    };
    await Promise.all(Array.from({ length: Math.min(STATFS_CONCURRENCY, mounts.length) }, worker));
    return out;
  }

  /** The block devices (sysfs) with the mounts that use them, from this backend's mount table. */
  async devices(options: Omit<BlockDeviceOptions, 'mounts'> & AbortOptions = {}): Promise<BlockDevice[]> {
    if (this.backendOf('mount-table') === 'module') return this.#client().devices(options);
    const { signal, rest } = takeSignal('usip devices', options);
    return whileNotAborted(signal, async () => {
      const { mounts } = await this.mounts({ signal });
      signal?.throwIfAborted();
      return readBlockDevices({ ...rest, mounts });
    });
  }

  /** Closes the module's connection, if any. Idempotent: every call returns the same promise.
   *  Watchers have their own and stay open. */
  close(): Promise<void> {
    return this.#lifetime.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** Opens the mount API on the best backend for each feature (or the one forced). */
export function openMounts(options: OpenMountsOptions = {}): Promise<UsipMounts> {
  return UsipMounts.open(options);
}

function fanotifyRefusal(code: unknown, error: unknown): string {
  return fanotifyReason(typeof code === 'string' ? `${code}: ${(error as Error).message}` : (error as Error).message, release());
}

/** The table from listmount + statmount, completed from mountinfo where statmount lacks fields. */
export async function kernelTable(mntNs: number | undefined, signal?: AbortSignal): Promise<MountInfo[]> {
  const list = requireKernelApi('listKernelMounts');
  for (let attempt = 1; ; attempt++) {
    // A caller who gave up does not need another attempt.
    signal?.throwIfAborted();
    const mounts: KernelMount[] = await list();
    if (mounts.every(isComplete)) return mounts.map((m) => kernelMountInfo(m, undefined, mntNs));
    const lines = new Map(parseMountinfo(await readOwnMountinfo()).map((m) => [m.id, m]));
    const out: MountInfo[] = [];
    let raced = false;
    for (const mount of mounts) {
      const line = lines.get(mount.id);
      if (line === undefined || line.major !== mount.major || line.minor !== mount.minor || line.root !== mount.root) {
        raced = true;
        break;
      }
      out.push(kernelMountInfo(mount, line, mntNs));
    }
    // The table changed between listmount and the read of mountinfo: read both again.
    if (!raced || attempt >= 8) {
      if (raced) throw new UsipError('USIP_DUMP_INTERRUPTED', 'usip mount-get: the mount table changed between listmount and the read of mountinfo, 8 times in a row; try again');
      return out;
    }
  }
}

/** The mount a path is on: the topmost mount whose mount point is the longest prefix of its real path, on its device. */
export async function mountOfPath(operation: string, mounts: readonly MountInfo[], path: string): Promise<MountInfo> {
  let real: string;
  let dev: bigint;
  try {
    real = await realpath(path);
    dev = (await stat(real, { bigint: true })).dev;
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string') throw new UsipSystemError(operation, code, `${path}: ${statfsError((constants.errno as Record<string, number>)[code] ?? 0).message}`, { cause: error });
    throw error;
  }
  const { major, minor } = splitDev(dev);
  const under = (mp: string) => mp === '/' || real === mp || real.startsWith(`${mp}/`);
  let best: MountInfo | undefined;
  let bestOnDevice: MountInfo | undefined;
  for (const mount of mounts) {
    if (!under(mount.mountPoint)) continue;
    if (best === undefined || mount.mountPoint.length >= best.mountPoint.length) best = mount;
    if (mount.major === major && mount.minor === minor && (bestOnDevice === undefined || mount.mountPoint.length >= bestOnDevice.mountPoint.length)) bestOnDevice = mount;
  }
  const found = best !== undefined && best.major === major && best.minor === minor ? best : (bestOnDevice ?? best);
  if (found === undefined) throw new UsipSystemError(operation, 'ENOENT', `${path}: not on a mount visible to the caller`);
  return found;
}

/** The StatfsInfo error of a mount that another mount on the same mount point hides from statfs(2). */
export const OVERMOUNTED: StatfsError = { errno: 0, code: 'USIP_OVERMOUNTED', message: 'Hidden by a mount on the same mount point: statfs(2) cannot reach it' };

async function statfsBase(mount: MountInfo) {
  return {
    id: mount.id,
    ...(mount.uniqueId === undefined ? {} : { uniqueId: mount.uniqueId }),
    mountPoint: mount.mountPoint,
    fsType: mount.fsType,
    source: mount.source,
    major: mount.major,
    minor: mount.minor,
    mntNs: mount.mntNs ?? (await ownMntNs()),
  };
}

/** statfs(2) of `path` (the mount's mount point, or a path on it), as the module's StatfsInfo. */
export async function statfsOfMount(mount: MountInfo, path: string, timeoutMs: number | undefined): Promise<StatfsInfo> {
  const base = await statfsBase(mount);
  const statfsPath = requireKernelApi('statfsPath');
  try {
    const s = await statfsPath(path, timeoutMs === undefined ? { timeoutMs: 1000 } : { timeoutMs });
    const flags = Number(s.flags);
    return {
      ...base,
      usage: {
        bsize: s.blockSize,
        frsize: s.fragmentSize,
        blocks: s.blocks,
        blocksFree: s.blocksFree,
        blocksAvailable: s.blocksAvailable,
        files: s.files,
        filesFree: s.filesFree,
        fsid: s.fsid,
        nameMax: Number(s.nameMax),
        flags,
        flagNames: flagNames(flags, STATFS_FLAGS_NAMES) as StatfsFlagsName[],
      },
    };
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    const errno = typeof code === 'string' ? (constants.errno as Record<string, number>)[code] : undefined;
    if (errno === undefined) throw error;
    return { ...base, error: statfsError(errno) };
  }
}

