import { constants } from 'node:os';
import { GenlSocket, isNetlinkError, type FamilyInfo, type FollowUp, type PackedMessages } from '@usip/netlink-native';
import {
  Action,
  Command,
  EVENT_ATTRIBUTE_SET,
  EventAttribute,
  FAMILY_NAME,
  FAMILY_VERSION,
  FEATURE_NAMES,
  UNAVAILABLE_REASON_NAMES,
  Feature,
  LISTENER_ATTRIBUTE_SET,
  MountAttribute,
  PING_ATTRIBUTE_SET,
  STATFS_ATTRIBUTE_SET,
  type AttributeSetSpec,
  type PingReply,
} from './generated/usip.js';
import { readBlockDevices, type BlockDevice, type BlockDeviceOptions } from './devices.js';
import { UsipArgumentError, UsipDumpInterruptedError, UsipModuleNotLoadedError, UsipProtocolError, UsipUnsupportedError } from './errors.js';
import { Listener, Watch } from './listener.js';
import { decodeMount, decodeMountKeeping, dumpNsSeq, leadingMountId, mountGetRequest, payloadText, sameSource, type PayloadText } from './mount-codec.js';
import { MountWatcher, type MountWatcherIo } from './mount-watcher.js';
import { readMountinfo, type MountInfo, type MountTable } from './mounts.js';
import { decodeAttributes, encodeAttributes, flagNames } from './netlink/attributes.js';
import {
  ACTIONS_OF_TYPE,
  injectRequest,
  listenerId,
  mountKey,
  mountWatcherOptions,
  registerRequest,
  statfsOptions,
  statfsRequest,
  watchOptions,
  type InjectOptions,
  type MountWatcherOptions,
  type RegisterOptions,
  type StatfsOptions,
  type StatfsTarget,
  type WatchOptions,
} from './options.js';
import { decodeStatfs, type StatfsInfo } from './statfs.js';
import { abortable, checkSignal, Lifetime, onAbort, takeSignal, whileNotAborted, type AbortOptions } from './lifetime.js';
import {
  injectResult,
  listenerInfo,
  registrationFromReply,
  decodeStats,
  type InjectResult,
  type ListenerInfo,
  type StatsResult,
} from './replies.js';

/** What `ping` learns about the loaded module. */
export interface PingResult {
  /** The protocol version the module speaks; compare with PROTOCOL_VERSION. */
  protocolVersion: number;
  moduleVersion: string;
  /** The kernel release the module was built for. */
  kernelRelease: string;
  /** The available features' bits, as a mask and as spec names (e.g. 'netns'). */
  featureMask: number;
  features: string[];
  /** Every feature the module knows, whether it works on this kernel now, and if not why in a word. */
  featureStatus: FeatureStatus[];
  /** The cookie of the request, echoed by the module. */
  cookie: bigint | undefined;
}

/** One feature of the loaded module (spec names, e.g. 'mount-events' and 'prototype-mismatch'). */
export interface FeatureStatus {
  feature: string;
  available: boolean;
  /** Why it is not available; absent when it is. */
  reason?: string;
}

export interface PingOptions extends AbortOptions {
  /** A value the module echoes back, to match replies to requests. */
  cookie?: bigint;
}

/** UsipClient.connect()'s options. */
export interface ConnectOptions {
  /** Cancels the connection while it is made (the socket is closed, and connect() rejects with
   *  the signal's reason). The client's life is not bound to it: close() the client. */
  signal?: AbortSignal;
}

/**
 * A connection to the usip kernel module over generic netlink. Open one with
 * `UsipClient.connect()`, and `close()` it when done (it holds a netlink socket), or let
 * `await using client = await UsipClient.connect()` close it at the end of the block.
 */
export class UsipClient implements AsyncDisposable {
  readonly #socket: GenlSocket;
  readonly #lifetime: Lifetime;
  /** The usip family as the kernel's generic netlink controller describes it. */
  readonly family: FamilyInfo;

  private constructor(socket: GenlSocket, family: FamilyInfo) {
    this.#socket = socket;
    this.family = family;
    this.#lifetime = new Lifetime(async () => socket.close());
  }

  /**
   * Opens a netlink socket and looks up the usip family. Rejects with UsipModuleNotLoadedError,
   * whose message says how to load the module, when the family does not exist; with the
   * signal's reason when `signal` aborts first (nothing stays open).
   */
  static async connect(options: ConnectOptions = {}): Promise<UsipClient> {
    if (typeof options !== 'object' || options === null) {
      throw new UsipArgumentError('options', `usip connect: options must be an object, got ${options === null ? 'null' : typeof options}`);
    }
    const signal = checkSignal('usip connect', options.signal);
    signal?.throwIfAborted();
    const socket = new GenlSocket();
    // Closing the socket ends the pending lookup (ECANCELED); the caller gets the signal's reason.
    const stop = onAbort(signal, () => socket.close());
    try {
      const family = await socket.resolveFamily(FAMILY_NAME);
      signal?.throwIfAborted();
      return new UsipClient(socket, family);
    } catch (error) {
      socket.close();
      if (signal?.aborted === true) throw signal.reason;
      if (isNetlinkError(error) && error.code === 'ENOENT') throw new UsipModuleNotLoadedError({ cause: error });
      throw error;
    } finally {
      stop();
    }
  }

  /** True once close() was called. */
  get closed(): boolean {
    return this.#lifetime.closed;
  }

  /** Asks the module what it is: versions, kernel release and features. */
  async ping(options: PingOptions = {}): Promise<PingResult> {
    const { signal, rest } = takeSignal('usip ping', options);
    const request = encodeAttributes(PING_ATTRIBUTE_SET, { cookie: rest.cookie });
    const replies = await whileNotAborted(signal, () =>
      this.#socket.request(this.family.id, Command.ping, FAMILY_VERSION, request, {
        label: 'usip ping',
      }),
    );
    if (replies.length !== 1) {
      throw new UsipProtocolError(`usip ping: expected one reply message, got ${replies.length}`);
    }
    const reply: PingReply = decodeAttributes(PING_ATTRIBUTE_SET, replies[0]!.attributes);
    const { protocolVersion, moduleVersion, features, kernelRelease } = reply;
    if (protocolVersion === undefined || moduleVersion === undefined || features === undefined || kernelRelease === undefined) {
      const missing = Object.entries({ protocolVersion, moduleVersion, features, kernelRelease })
        .filter(([, value]) => value === undefined)
        .map(([key]) => key);
      throw new UsipProtocolError(`usip ping: the reply lacks ${missing.join(', ')}`);
    }
    const featureStatus = (reply.featureStatus ?? []).map((status): FeatureStatus => {
      const [feature] = flagNames(status.feature ?? 0, FEATURE_NAMES);
      if (feature === undefined || status.available === undefined) {
        throw new UsipProtocolError(`usip ping: a feature-status without a known feature or availability: ${JSON.stringify(status)}`);
      }
      if (status.available === 1) return { feature, available: true };
      const reason = status.reason === undefined ? 'unknown' : (UNAVAILABLE_REASON_NAMES[status.reason] ?? `reason-${status.reason}`);
      return { feature, available: false, reason };
    });
    return {
      protocolVersion,
      moduleVersion,
      kernelRelease,
      featureMask: features,
      features: flagNames(features, FEATURE_NAMES),
      featureStatus,
      cookie: reply.cookie,
    };
  }

  /**
   * Registers a listener on a socket of its own and returns it; iterate it for its events.
   * The listener lives until its close() (or leaving a `for await` loop over it, or the end of
   * an `await using` block), the abort of `signal`, or the end of the process, independently of
   * this client. Options are checked first (UsipArgumentError naming the field); the module's
   * refusals (EPERM for global without CAP_SYS_ADMIN, EMFILE, E2BIG, ...) reject with a
   * NetlinkError whose message ends with the module's explanation. A signal that aborts before
   * the listener is handed over rejects with its reason, and nothing stays registered.
   */
  async register(options: RegisterOptions): Promise<Listener> {
    const { request, receiveBufferSize, signal } = registerRequest(options);
    signal?.throwIfAborted();
    const attributes = encodeAttributes(LISTENER_ATTRIBUTE_SET, request);
    return this.#onOwnSocket(signal, receiveBufferSize, async (socket) => {
      const replies = await socket.request(this.family.id, Command.listenerRegister, FAMILY_VERSION, attributes, {
        label: 'usip listener-register',
      });
      const reply = decodeAttributes(LISTENER_ATTRIBUTE_SET, this.#single('usip listener-register', replies));
      return () => new Listener(socket, this.family.id, registrationFromReply(reply), signal);
    });
  }

  /**
   * Subscribes, on a socket of its own, to the multicast group of an event type: copies of
   * the events delivered to any listener in this network namespace. Joining needs
   * CAP_SYS_ADMIN (EPERM otherwise). `signal` cancels the subscription while it is made and
   * ends it later, as register()'s does.
   */
  async watch(group: 'mtab' | 'storage', options: WatchOptions = {}): Promise<Watch> {
    const checked = watchOptions(group, options);
    const groupId = this.family.multicastGroups.find((g) => g.name === checked.group)?.id;
    if (groupId === undefined) {
      throw new UsipProtocolError(`usip watch: the module has no multicast group "${checked.group}"`);
    }
    const { signal } = checked;
    signal?.throwIfAborted();
    return this.#onOwnSocket(signal, checked.receiveBufferSize, async (socket) => {
      await socket.joinGroup(FAMILY_NAME, checked.group);
      return () => new Watch(socket, this.family.id, checked.group, groupId, signal);
    });
  }

  /**
   * Runs `setup` on a new socket and makes the object it returns; the socket is closed if setup
   * fails or `signal` aborts first. Closing a listener's socket also unregisters the listener,
   * so a registration the module made for a caller who is gone does not stay behind.
   */
  async #onOwnSocket<T>(signal: AbortSignal | undefined, receiveBufferSize: number | undefined, setup: (socket: GenlSocket) => Promise<() => T>): Promise<T> {
    const socket = new GenlSocket();
    const stop = onAbort(signal, () => socket.close());
    try {
      if (receiveBufferSize !== undefined) socket.setReceiveBufferSize(receiveBufferSize);
      const make = await setup(socket);
      signal?.throwIfAborted();
      return make();
    } catch (error) {
      socket.close();
      if (signal?.aborted === true) throw signal.reason;
      throw error;
    } finally {
      stop();
    }
  }

  /** The listeners of this network namespace that the caller could unregister. */
  async listeners(options: AbortOptions = {}): Promise<ListenerInfo[]> {
    const { signal } = takeSignal('usip listener-get', options);
    const messages = await whileNotAborted(signal, () =>
      this.#socket.dump(this.family.id, Command.listenerGet, FAMILY_VERSION, undefined, {
        label: 'usip listener-get',
      }),
    );
    return messages.map((message) => listenerInfo(decodeAttributes(LISTENER_ATTRIBUTE_SET, message.attributes)));
  }

  /** Removes a listener by id (ENOENT if there is none, EPERM if it is not the caller's). */
  async unregister(id: number): Promise<void> {
    const attributes = encodeAttributes(LISTENER_ATTRIBUTE_SET, { id: listenerId('usip listener-unregister', id) });
    await this.#socket.request(this.family.id, Command.listenerUnregister, FAMILY_VERSION, attributes, {
      label: 'usip listener-unregister',
    });
  }

  /**
   * Posts a synthetic event (or `repeat` of them) as if it happened in the caller's mount
   * namespace. Needs the module loaded with allow_inject=1 (EOPNOTSUPP otherwise) and
   * CAP_SYS_ADMIN (EPERM otherwise).
   */
  async inject(options: InjectOptions): Promise<InjectResult> {
    const attributes = encodeAttributes(EVENT_ATTRIBUTE_SET, injectRequest(options));
    const reply = await this.#do('usip inject', Command.inject, EVENT_ATTRIBUTE_SET, attributes);
    return injectResult(reply);
  }

  /**
   * The mount table of the caller's mount namespace as seen from its root directory (what
   * /proc/self/mountinfo shows), from one consistent dump; a dump that a concurrent change
   * interrupted is retried a few times, then UsipDumpInterruptedError. EOPNOTSUPP (NetlinkError)
   * when the module cannot read the mount table on this kernel (feature mount-table).
   */
  async mounts(options: AbortOptions = {}): Promise<MountTable> {
    const { signal } = takeSignal('usip mount-get', options);
    return whileNotAborted(signal, () => readMountTable(this.#socket, this.family.id, MOUNTS_ATTEMPTS));
  }

  /**
   * One mount of the caller's namespace, by mount id or by `{ uniqueId }` (Linux 6.8+). ENOENT
   * (NetlinkError, with the module's message) when no such mount is visible to the caller.
   */
  async mount(id: number | { uniqueId: bigint }, options: AbortOptions = {}): Promise<MountInfo> {
    const label = 'usip mount-get';
    const { signal } = takeSignal(label, options);
    const request = mountGetRequest(mountKey(label, id));
    const replies = await whileNotAborted(signal, () => this.#socket.request(this.family.id, Command.mountGet, FAMILY_VERSION, request, { label }));
    return decodeMount(label, this.#single(label, replies));
  }

  /**
   * Watches the mount table of the caller's namespace: registers a listener for every mtab
   * action (on a socket of its own), then dumps the table; the watcher holds the table and
   * yields its changes. It lives until its close() (or leaving a `for await` loop over it, or
   * `signal` aborting) or the end of the process, independently of this client.
   * UsipUnsupportedError when the module cannot read the table or report its changes on this
   * kernel (features mount-table, mount-events). With `signal` aborted (before or while this
   * waits) it rejects with the signal's reason and unregisters what it had registered.
   */
  async watchMounts(options: MountWatcherOptions = {}): Promise<MountWatcher> {
    const { receiveBufferSize } = mountWatcherOptions(options);
    const signal = checkSignal('usip watch-mounts', options?.signal);
    signal?.throwIfAborted();
    return abortable(this.#watchMounts(receiveBufferSize, signal), signal, (watcher) => watcher.close());
  }

  async #watchMounts(receiveBufferSize: number, signal: AbortSignal | undefined): Promise<MountWatcher> {
    const { featureMask, featureStatus } = await this.ping();
    // The table stays exact only if every kind of change is reported.
    for (const [feature, bit, what] of [
      ['mount-table', Feature.mountTable, 'read the mount table'],
      ['mount-events', Feature.mountEvents, 'report mounts, umounts and moves'],
      ['remount-events', Feature.remountEvents, 'report remounts'],
      ['propagation-events', Feature.propagationEvents, 'report propagation changes'],
      ['setattr-events', Feature.setattrEvents, 'report mount_setattr(2) changes'],
    ] as const) {
      if ((featureMask & bit) === 0) {
        const reason = featureStatus.find((s) => s.feature === feature)?.reason ?? 'unknown';
        throw new UsipUnsupportedError(
          feature,
          `usip watch-mounts: the loaded usip module cannot ${what} on this kernel (feature ${feature}: ${reason}; the kernel log says more)`,
        );
      }
    }
    const familyId = this.family.id;
    const { request } = registerRequest({ notifiers: ACTIONS_OF_TYPE.mtab.map((action) => ({ type: 'mtab', action })) });
    const listenerSocket = new GenlSocket();
    const requestSockets: GenlSocket[] = [];
    const closeAll = () => {
      listenerSocket.close();
      for (const socket of requestSockets) socket.close();
    };
    try {
      // Past net.core.rmem_max (208 KiB on Debian) where the caller may (CAP_NET_ADMIN): a storm
      // of mount changes then fits instead of overrunning into a resync.
      try {
        listenerSocket.setReceiveBufferSize(receiveBufferSize, { force: true });
      } catch (error) {
        if (!(isNetlinkError(error) && error.code === 'EPERM')) throw error;
        listenerSocket.setReceiveBufferSize(receiveBufferSize);
      }
      const label = 'usip listener-register';
      const replies = await listenerSocket.request(familyId, Command.listenerRegister, FAMILY_VERSION, encodeAttributes(LISTENER_ATTRIBUTE_SET, request), {
        label,
      });
      const registration = registrationFromReply(decodeAttributes(LISTENER_ATTRIBUTE_SET, this.#single(label, replies)));
      for (let i = 0; i < WATCH_REQUEST_SOCKETS; i++) requestSockets.push(new GenlSocket());
      const io = watcherIo(familyId, registration.id, listenerSocket, requestSockets, closeAll);
      // Aborted already: no dump (closing the listener's socket unregisters it).
      signal?.throwIfAborted();
      const table = await io.dump();
      return new MountWatcher(io, table, {
        listenerId: registration.id,
        mntNs: registration.mntNs,
        receiveBufferSize: listenerSocket.receiveBufferSize,
        signal,
      });
    } catch (error) {
      // Closing the listener's socket unregisters it too.
      closeAll();
      throw error;
    }
  }

  /**
   * File system usage of one mount of the caller's namespace, as statfs(2) reports it: by
   * `{ mountId }`, `{ uniqueId }` (Linux 6.8+) or `{ path }` (resolved from this process's root and
   * working directory, as statfs(2) does; the answer is about the mount it is on). A file system
   * that does not answer within `timeoutMs` (default: the module's statfs_timeout_ms, 1000) gives
   * `error` ETIMEDOUT instead of `usage`. ENOENT (NetlinkError, with the module's message) when
   * the path does not exist or the mount is not visible to the caller; EOPNOTSUPP when the module
   * lacks the feature statfs.
   */
  async statfs(target: StatfsTarget, options: StatfsOptions & AbortOptions = {}): Promise<StatfsInfo> {
    const label = 'usip statfs';
    const { signal, rest } = takeSignal(label, options);
    const request = encodeAttributes(STATFS_ATTRIBUTE_SET, statfsRequest(label, target, rest));
    const replies = await whileNotAborted(signal, () => this.#socket.request(this.family.id, Command.statfs, FAMILY_VERSION, request, { label }));
    return decodeStatfs(label, this.#single(label, replies));
  }

  /**
   * File system usage of every mount of the caller's namespace, in the namespace's order, as
   * the caller sees them from its root directory (the mounts of mountinfo). Each mount has
   * `usage`, or `error` (ETIMEDOUT for a file system that did not answer within `timeoutMs`):
   * one slow file system does not hold up the others.
   */
  async statfsAll(options: StatfsOptions & AbortOptions = {}): Promise<StatfsInfo[]> {
    const label = 'usip statfs';
    const { signal, rest } = takeSignal(label, options);
    const timeoutMs = statfsOptions(label, rest);
    const request = timeoutMs === undefined ? undefined : encodeAttributes(STATFS_ATTRIBUTE_SET, { timeoutMs });
    const messages = await whileNotAborted(signal, () => this.#socket.dump(this.family.id, Command.statfs, FAMILY_VERSION, request, { label }));
    return messages.map((message) => decodeStatfs(label, message.attributes));
  }

  /**
   * Every block device of the system, with its partitions and the mounts that use it (see
   * readBlockDevices: sysfs, read in user space). The mount table is this client's dump of the
   * caller's namespace; /proc/self/mountinfo when the module cannot dump it on this kernel
   * (EOPNOTSUPP) or the table kept changing while it was dumped.
   */
  async devices(options: Omit<BlockDeviceOptions, 'mounts'> & AbortOptions = {}): Promise<BlockDevice[]> {
    const { signal, rest } = takeSignal('usip devices', options);
    return whileNotAborted(signal, async () => {
      let mounts: MountInfo[];
      try {
        mounts = (await this.mounts({ signal })).mounts;
      } catch (error) {
        if (!(error instanceof UsipDumpInterruptedError || (isNetlinkError(error) && error.code === 'EOPNOTSUPP'))) throw error;
        mounts = await readMountinfo();
      }
      signal?.throwIfAborted();
      return readBlockDevices({ ...rest, mounts });
    });
  }

  /** The module's counters. */
  async stats(options: AbortOptions = {}): Promise<StatsResult> {
    const label = 'usip stats';
    const { signal } = takeSignal(label, options);
    return decodeStats(this.#single(label, await whileNotAborted(signal, () => this.#socket.request(this.family.id, Command.stats, FAMILY_VERSION, undefined, { label }))));
  }

  async #do<T extends object>(label: string, command: number, set: AttributeSetSpec<T>, attributes?: Buffer): Promise<T> {
    const replies = await this.#socket.request(this.family.id, command, FAMILY_VERSION, attributes, { label });
    return decodeAttributes(set, this.#single(label, replies));
  }

  #single(label: string, replies: { attributes: Buffer }[]): Buffer {
    return single(label, replies);
  }

  /** Closes the socket; later calls reject. Idempotent: every call returns the same promise.
   *  Listeners, watches and mount watchers have sockets of their own and stay open. */
  close(): Promise<void> {
    return this.#lifetime.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Every block device of the system, with its partitions and the mounts that use it: through
 * the module's mount table when it is loaded (UsipClient#devices), and from
 * /proc/self/mountinfo when it is not (or netlink is out of reach). The devices themselves
 * always come from sysfs.
 */
export async function devices(options: Omit<BlockDeviceOptions, 'mounts'> & AbortOptions = {}): Promise<BlockDevice[]> {
  const { signal, rest } = takeSignal('usip devices', options);
  let client: UsipClient;
  try {
    client = await UsipClient.connect({ signal });
  } catch (error) {
    if (error instanceof UsipModuleNotLoadedError || isNetlinkError(error)) return whileNotAborted(signal, () => readBlockDevices(rest));
    throw error;
  }
  try {
    return await client.devices({ ...rest, signal });
  } finally {
    await client.close();
  }
}

function single(label: string, replies: { attributes: Buffer }[]): Buffer {
  if (replies.length !== 1) throw new UsipProtocolError(`${label}: expected one reply message, got ${replies.length}`);
  return replies[0]!.attributes;
}

/** Dump attempts of mounts() before it gives up on a busy namespace. */
const MOUNTS_ATTEMPTS = 8;
/** A watcher's: it must resynchronise eventually, so it waits out longer bursts of changes. */
const WATCH_DUMP_ATTEMPTS = 100;
/** Sockets a watcher sends its mount-get requests on: each runs its requests one at a time. */
const WATCH_REQUEST_SOCKETS = 2;
const ENOENT = constants.errno.ENOENT;
const NO_MOUNTS: ReadonlyMap<number, MountInfo> = new Map();

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Dumps the mount table; a dump interrupted by a concurrent change is retried, after a pause
 * that doubles each time (1 ms, 2 ms, ... up to 250 ms), `attempts` times in all.
 */
export async function readMountTable(socket: GenlSocket, familyId: number, attempts: number, previous?: ReadonlyMap<number, MountInfo>): Promise<MountTable> {
  const label = 'usip mount-get';
  for (let attempt = 1; ; attempt++) {
    let dump: PackedMessages;
    try {
      // Packed: no object or view per message, for the many a watcher's resync reuses.
      dump = await socket.dumpPacked(familyId, Command.mountGet, FAMILY_VERSION, undefined, { label });
    } catch (error) {
      if (!(isNetlinkError(error) && error.dumpInterrupted === true)) throw error;
      if (attempt >= attempts) throw new UsipDumpInterruptedError(label, attempts, { cause: error });
      await sleep(Math.min(2 ** (attempt - 1), 250));
      continue;
    }
    const { payload, count, starts, ends } = dump;
    const mounts = new Array<MountInfo>(count);
    // The messages lie in one payload: its strings are read from one Latin-1 copy, made when
    // a mount is first decoded (a watcher's resync in a storm reuses most entries).
    let text: PayloadText | undefined;
    for (let i = 0; i < count; i++) {
      const start = starts[i]!;
      const end = ends[i]!;
      // For a watcher: a mount whose bytes are those its entry was decoded from is that entry
      // (a resync in a storm reads tens of thousands of mounts, most of them unchanged).
      const old = previous?.get(leadingMountId(payload, start, end));
      if (old !== undefined && sameSource(old, payload, start, end)) {
        mounts[i] = old;
        continue;
      }
      const bytes = payload.subarray(start, end);
      text ??= payloadText(payload);
      mounts[i] = previous === undefined ? decodeMount(label, bytes, text) : decodeMountKeeping(label, bytes, text);
    }
    const nsSeq = count === 0 ? 0n : dumpNsSeq(label, payload.subarray(starts[0]!, ends[0]!));
    if (nsSeq === undefined) throw new UsipProtocolError(`${label}: the dump lacks ns-seq`);
    return { mounts, nsSeq };
  }
}

/** The real world of a MountWatcher: its listener socket and its request sockets. */
function watcherIo(familyId: number, listenerId: number, listenerSocket: GenlSocket, requestSockets: GenlSocket[], closeAll: () => void): MountWatcherIo {
  let turn = 0;
  const label = 'usip mount-get';
  // The binding reads every event the socket holds and makes their mount-gets itself (by
  // unique id, else mount id; none for an umount), then wakes JavaScript once for them all.
  const followUp: FollowUp & { minimum: { attribute: number; value: number } } = {
    socket: requestSockets[requestSockets.length - 1]!,
    familyId,
    eventCommand: Command.mtabEvent,
    requestCommand: Command.mountGet,
    version: FAMILY_VERSION,
    keys: [
      [EventAttribute.uniqueId, MountAttribute.uniqueId],
      [EventAttribute.mountId, MountAttribute.mountId],
    ],
    skip: { attribute: EventAttribute.action, values: [Action.umount] },
    minimum: { attribute: EventAttribute.nsSeq, value: 0 },
    label,
  };
  return {
    async next(fetchLimit, nextSeq) {
      // Events the watcher has passed (in the table already, e.g. after a resync) need none.
      followUp.minimum = { attribute: EventAttribute.nsSeq, value: nextSeq };
      const batch = await listenerSocket.nextNotificationsFollowed(followUp, fetchLimit);
      if (batch === undefined) return undefined;
      const { notifications, replies } = batch;
      // Events with one key share one reply (a view of the same bytes): decoded once.
      let decoded: Map<number, MountInfo> | undefined;
      let text: PayloadText | undefined;
      return {
        items: notifications,
        mount(index) {
          const reply = replies[index];
          if (reply === undefined) return undefined;
          // Gone since its event; any other failure is left for the watcher to ask again, which
          // reports it with the kernel's message.
          if (typeof reply === 'number') return reply === ENOENT ? null : undefined;
          let mount = decoded?.get(reply.byteOffset);
          if (mount === undefined) {
            // The replies are views of one buffer: its strings are read from one Latin-1 copy.
            mount = decodeMountKeeping(label, reply, (text ??= payloadText(reply)));
            (decoded ??= new Map()).set(reply.byteOffset, mount);
          }
          return mount;
        },
      };
    },
    familyId,
    async fetch(mountId, uniqueId) {
      const socket = requestSockets[turn++ % requestSockets.length]!;
      const request = mountGetRequest(uniqueId === undefined ? { mountId } : { uniqueId });
      try {
        return decodeMount(label, single(label, await socket.request(familyId, Command.mountGet, FAMILY_VERSION, request, { label })));
      } catch (error) {
        if (isNetlinkError(error) && error.code === 'ENOENT') return undefined;
        throw error;
      }
    },
    dump: (attempts = WATCH_DUMP_ATTEMPTS, previous = NO_MOUNTS) => readMountTable(requestSockets[0]!, familyId, attempts, previous),
    async close() {
      try {
        const request = encodeAttributes(LISTENER_ATTRIBUTE_SET, { id: listenerId });
        await listenerSocket.request(familyId, Command.listenerUnregister, FAMILY_VERSION, request, { label: 'usip listener-unregister' });
      } catch (error) {
        // ENOENT: unregistered by someone else meanwhile, or the module was unloaded.
        if (!(isNetlinkError(error) && error.code === 'ENOENT')) {
          closeAll();
          throw error;
        }
      }
      closeAll();
    },
  };
}
