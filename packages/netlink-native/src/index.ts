// @usip/netlink-native: generic netlink sockets for Node.js, backed by a Rust addon. Every call
// runs its socket I/O on the addon's tokio runtime and settles one promise, so the JS thread
// never blocks and a dump of thousands of messages crosses into JavaScript once. Notifications
// (multicast and unsolicited messages) arrive through an async iterator, in batches.
import { loadBinding } from './binding.js';
import { NetlinkError, SyscallError, fromNativeError, isNetlinkError, isSyscallError } from './errors.js';
import type { NetlinkErrorDetails, SyscallErrorDetails } from './errors.js';
import type {
  NativeFamilyInfo,
  NativeFollowedBatch,
  NativeFollowUp,
  NativeGenlSocket,
  NativeMessageBatch,
  NativeNotificationBatch,
} from './native.js';

export { NetlinkError, isNetlinkError, SyscallError, isSyscallError };
export { NativeAddonMissingError, PREBUILT_TARGETS, nativeTarget } from './binding.js';
export type { NetlinkErrorDetails, SyscallErrorDetails };
export {
  FanotifyMountWatch,
  MAX_STATFS_THREADS,
  MountAttr,
  MountinfoWatch,
  Propagation,
  StatmountMask,
  listKernelMounts,
  mountApiSupport,
  statKernelMount,
  statfsPath,
} from './mounts.js';
export type {
  FanotifyMountWatchOptions,
  KernelMount,
  MountApiSupport,
  MountEvent,
  MountEventBatch,
  MountinfoBatch,
  MountinfoWatchOptions,
  StatfsOptions,
  StatfsResult,
} from './mounts.js';

/**
 * Sends `state` to systemd as sd_notify(3) does: newline-separated assignments such as
 * `READY=1`, `STATUS=...`, `RELOADING=1`, `WATCHDOG=1`, in one datagram to the socket named by
 * `$NOTIFY_SOCKET` (a path, or an abstract name written `@name`). Returns false, sending nothing,
 * when `NOTIFY_SOCKET` is unset or empty (not a Type=notify service); throws when it is
 * malformed or the datagram cannot be sent.
 */
export function notifySystemd(state: string): boolean {
  if (typeof state !== 'string' || state.length === 0) throw new TypeError('notifySystemd: state must be a non-empty string');
  return loadBinding().notifySystemd(state);
}

export interface FamilyOperation {
  /** The command number. */
  id: number;
  /** CTRL_ATTR_OP_FLAGS: see OperationFlags. */
  flags: number;
}

export interface MulticastGroup {
  name: string;
  id: number;
}

export interface FamilyInfo {
  id: number;
  name: string;
  version: number;
  /** Size of the family's own header after genlmsghdr (0 for most families). */
  headerSize: number;
  maxAttr: number;
  operations: FamilyOperation[];
  multicastGroups: MulticastGroup[];
}

/** The messages of a dump in one buffer (see GenlSocket.dumpPacked). */
export interface PackedMessages {
  /** What follows each message's genlmsghdr, the messages one after another. */
  payload: Buffer;
  count: number;
  commands: Uint32Array;
  versions: Uint32Array;
  /** Where message i's attributes start and end in `payload`. */
  starts: Uint32Array;
  ends: Uint32Array;
}

export interface GenlMessage {
  command: number;
  version: number;
  /** Everything after the genlmsghdr: the family header (if any), then the attributes as raw
   *  TLVs. The messages of one reply are views into one shared buffer. */
  attributes: Buffer;
}

/** A message that is not a reply to this socket's own requests. */
export interface GenlNotificationMessage {
  kind: 'message';
  /** The generic netlink family id (the nlmsghdr type). */
  familyId: number;
  command: number;
  version: number;
  /** Everything after the genlmsghdr, as for request() and dump(). The messages of one batch
   *  are views into one shared buffer. */
  attributes: Buffer;
  /** The multicast group id it arrived on; 0 for a unicast to this socket. */
  group: number;
}

/** Messages were lost at this point of the stream. */
export interface GenlOverrun {
  kind: 'overrun';
  /** How many, when known: this process dropped them because its notification queue was
   *  full. Absent when the kernel dropped them because the socket's receive buffer was full
   *  (recv failed with ENOBUFS): the count is then unknown. */
  lost?: number;
}

export type GenlNotification = GenlNotificationMessage | GenlOverrun;

/**
 * For each notification that is an event of one family and command, one request (a `do`) on
 * another socket, keyed by an attribute of the event: see GenlSocket.nextNotificationsFollowed.
 */
export interface FollowUp {
  /** The socket the requests go to (not the one the notifications come from: its replies
   *  would queue behind the events). */
  socket: GenlSocket;
  familyId: number;
  /** The command of the events followed up. */
  eventCommand: number;
  /** The command and version of the requests. */
  requestCommand: number;
  version: number;
  /** [event attribute, request attribute] pairs in order of preference: the first the event
   *  carries is copied, payload as is, into the request as its one attribute. An event with
   *  none gets no request. Events with equal keys in one batch share one request. */
  keys: readonly (readonly [number, number])[];
  /** An event whose u32 attribute `attribute` holds one of `values` gets no request. */
  skip?: { attribute: number; values: readonly number[] };
  /** Only events whose u64 attribute `attribute` is at least `value` get a request (e.g. a
   *  sequence number the reader has passed); events without it get none. */
  minimum?: { attribute: number; value: number };
  /** Names the requests in errors. */
  label?: string;
}

/**
 * What a request made for a notification returned: the attributes of its one reply message,
 * the errno of its failure (a positive number; EPROTO for a reply of other than one message),
 * or undefined when no request was made for that notification.
 */
export type FollowUpReply = Buffer | number | undefined;

/** Notifications taken together, and per notification what its follow-up request returned. */
export interface FollowedNotifications {
  notifications: GenlNotification[];
  /** Index by index with `notifications`. */
  replies: FollowUpReply[];
}

export interface GenlSocketOptions {
  /** How many notifications the socket keeps in process until they are consumed (default
   *  DEFAULT_NOTIFICATION_QUEUE_LIMIT, 4096; 1 to 1,048,576). Further ones are dropped and
   *  reported as an overrun with their count. */
  notificationQueueLimit?: number;
}

/** The default of GenlSocketOptions.notificationQueueLimit. */
export const DEFAULT_NOTIFICATION_QUEUE_LIMIT = 4096;
const MAX_NOTIFICATION_QUEUE_LIMIT = 1 << 20;
const MAX_RECEIVE_BUFFER = 0x7fffffff;

export interface RequestOptions {
  /** Names the operation in errors, e.g. 'usip ping' gives "usip ping: Operation not
   *  permitted (EPERM): ...". By default: the family name (once resolved on this socket, else
   *  its id) and the command number. */
  label?: string;
}

/** Bits of FamilyOperation.flags (CTRL_ATTR_OP_FLAGS, include/uapi/linux/genetlink.h). */
export const OperationFlags = {
  adminPerm: 0x01,
  canDo: 0x02,
  canDump: 0x04,
  hasPolicy: 0x08,
  unsAdminPerm: 0x10,
} as const;

/** The generic netlink controller, present in every kernel (include/uapi/linux/genetlink.h). */
export const Nlctrl = {
  familyId: 0x10,
  name: 'nlctrl',
  version: 2,
  commands: { newFamily: 1, getFamily: 3 },
  attributes: {
    familyId: 1,
    familyName: 2,
    version: 3,
    headerSize: 4,
    maxAttr: 5,
    operations: 6,
    multicastGroups: 7,
  },
} as const;

function checkAttributes(value: unknown): Uint8Array {
  if (value === undefined) return EMPTY;
  if (!(value instanceof Uint8Array)) {
    throw new TypeError(`attributes must be a Buffer or Uint8Array, got ${describe(value)}`);
  }
  return value;
}

function checkOptions(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null) {
    throw new TypeError(`options must be an object, got ${describe(value)}`);
  }
  const { label } = value as RequestOptions;
  if (label !== undefined && typeof label !== 'string') {
    throw new TypeError(`options.label must be a string, got ${describe(label)}`);
  }
  return label;
}

/**
 * What is wrong with `value` as an integer from `min` to `max`: 'type' when it is not an
 * integer of the bounds' kind (a number that is an integer, or a bigint for bigint bounds),
 * 'range' when it is one but outside, undefined when it is fine. The one rule behind every
 * integer check of this package and of @usip/client (which words its errors as attribute
 * errors); checkInteger words them as argument errors.
 */
export function integerProblem(value: unknown, min: number, max: number): 'type' | 'range' | undefined;
export function integerProblem(value: unknown, min: bigint, max: bigint): 'type' | 'range' | undefined;
export function integerProblem(value: unknown, min: number | bigint, max: number | bigint): 'type' | 'range' | undefined {
  if (typeof min === 'bigint') {
    if (typeof value !== 'bigint') return 'type';
  } else if (typeof value !== 'number' || !Number.isInteger(value)) {
    return 'type';
  }
  return value < min || value > max ? 'range' : undefined;
}

/**
 * `value` if it is an integer number from `min` to `max`; else a TypeError (not an integer) or
 * RangeError (outside), both saying "NAME must be an integer from MIN to MAX, got ...".
 */
export function checkInteger(name: string, value: unknown, min: number, max: number): number {
  const problem = integerProblem(value, min, max);
  if (problem === 'type') throw new TypeError(`${name} must be an integer from ${min} to ${max}, got ${describe(value)}`);
  if (problem === 'range') throw new RangeError(`${name} must be an integer from ${min} to ${max}, got ${String(value)}`);
  return value as number;
}

function checkName(name: string, value: unknown): string {
  if (typeof value !== 'string') {
    throw new TypeError(`${name} must be a string, got ${describe(value)}`);
  }
  return value;
}

function checkSocketOptions(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null) {
    throw new TypeError(`options must be an object, got ${describe(value)}`);
  }
  const { notificationQueueLimit } = value as GenlSocketOptions;
  if (notificationQueueLimit === undefined) return undefined;
  return checkInteger('options.notificationQueueLimit', notificationQueueLimit, 1, MAX_NOTIFICATION_QUEUE_LIMIT);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'object') return value.constructor?.name ?? 'object';
  return `${typeof value} ${String(value)}`;
}

const EMPTY = new Uint8Array(0);

function toFamily(native: NativeFamilyInfo): FamilyInfo {
  return {
    id: native.id,
    name: native.name,
    version: native.version,
    headerSize: native.headerSize,
    maxAttr: native.maxAttr,
    operations: native.operations.map(({ id, flags }) => ({ id, flags })),
    multicastGroups: native.multicastGroups.map(({ name, id }) => ({ name, id })),
  };
}

function toMessages({ payload, layout }: NativeMessageBatch): GenlMessage[] {
  const count = layout.length / 4;
  const messages = new Array<GenlMessage>(count);
  for (let index = 0; index < count; index++) {
    const base = index * 4;
    messages[index] = {
      command: layout[base]!,
      version: layout[base + 1]!,
      attributes: payload.subarray(layout[base + 2]!, layout[base + 3]!),
    };
  }
  return messages;
}

const MESSAGE = 0;
const OVERRUN = 1;
const KERNEL_OVERRUN = 2;
const FIELDS = 7;

function toNotifications({ payload, layout }: NativeNotificationBatch): GenlNotification[] {
  const count = layout.length / FIELDS;
  const notifications = new Array<GenlNotification>(count);
  for (let index = 0; index < count; index++) {
    const base = index * FIELDS;
    const kind = layout[base]!;
    if (kind === MESSAGE) {
      notifications[index] = {
        kind: 'message',
        familyId: layout[base + 1]!,
        command: layout[base + 2]!,
        version: layout[base + 3]!,
        attributes: payload.subarray(layout[base + 5]!, layout[base + 6]!),
        group: layout[base + 4]!,
      };
    } else if (kind === OVERRUN) {
      notifications[index] = { kind: 'overrun', lost: layout[base + 5]! + layout[base + 6]! * 2 ** 32 };
    } else if (kind === KERNEL_OVERRUN) {
      notifications[index] = { kind: 'overrun' };
    } else {
      throw new Error(`@usip/netlink-native: the addon sent a notification of unknown kind ${kind}`);
    }
  }
  return notifications;
}

const REPLY_MESSAGE = 1;
const REPLY_ERROR = 2;

function toFollowed(batch: NativeFollowedBatch): FollowedNotifications {
  const notifications = toNotifications(batch);
  const { replies: bytes, replyLayout } = batch;
  const replies = new Array<FollowUpReply>(notifications.length);
  for (let index = 0; index < notifications.length; index++) {
    const base = index * 3;
    const status = replyLayout[base]!;
    // Equal keys share a reply: its bytes are copied once, and each gets a view.
    if (status === REPLY_MESSAGE) replies[index] = bytes.subarray(replyLayout[base + 1]!, replyLayout[base + 2]!);
    else if (status === REPLY_ERROR) replies[index] = replyLayout[base + 1]!;
  }
  return { notifications, replies };
}

/** A FollowUp checked and in the addon's shape; a TypeError or RangeError names what is wrong. */
function checkFollowUp(value: unknown): [GenlSocket, NativeFollowUp] {
  if (typeof value !== 'object' || value === null) throw new TypeError(`followUp must be an object, got ${describe(value)}`);
  const spec = value as FollowUp;
  if (!(spec.socket instanceof GenlSocket)) throw new TypeError(`followUp.socket must be a GenlSocket, got ${describe(spec.socket)}`);
  if (!Array.isArray(spec.keys) || spec.keys.length === 0) throw new TypeError(`followUp.keys must be a non-empty array of [event attribute, request attribute] pairs, got ${describe(spec.keys)}`);
  const keys: number[] = [];
  spec.keys.forEach((pair: unknown, index) => {
    if (!Array.isArray(pair) || pair.length !== 2) throw new TypeError(`followUp.keys[${index}] must be an [event attribute, request attribute] pair, got ${describe(pair)}`);
    keys.push(checkInteger(`followUp.keys[${index}][0]`, pair[0], 0, 0x3fff), checkInteger(`followUp.keys[${index}][1]`, pair[1], 0, 0x3fff));
  });
  let skipAttribute: number | undefined;
  const skipValues: number[] = [];
  if (spec.skip !== undefined) {
    if (typeof spec.skip !== 'object' || spec.skip === null) throw new TypeError(`followUp.skip must be an object, got ${describe(spec.skip)}`);
    skipAttribute = checkInteger('followUp.skip.attribute', spec.skip.attribute, 0, 0x3fff);
    if (!Array.isArray(spec.skip.values)) throw new TypeError(`followUp.skip.values must be an array, got ${describe(spec.skip.values)}`);
    spec.skip.values.forEach((v: unknown, index) => skipValues.push(checkInteger(`followUp.skip.values[${index}]`, v, 0, 0xffffffff)));
  }
  let minimumAttribute: number | undefined;
  let minimum: number | undefined;
  if (spec.minimum !== undefined) {
    if (typeof spec.minimum !== 'object' || spec.minimum === null) throw new TypeError(`followUp.minimum must be an object, got ${describe(spec.minimum)}`);
    minimumAttribute = checkInteger('followUp.minimum.attribute', spec.minimum.attribute, 0, 0x3fff);
    minimum = checkInteger('followUp.minimum.value', spec.minimum.value, 0, Number.MAX_SAFE_INTEGER);
  }
  if (spec.label !== undefined && typeof spec.label !== 'string') throw new TypeError(`followUp.label must be a string, got ${describe(spec.label)}`);
  const familyId = checkInteger('followUp.familyId', spec.familyId, 0, 0xffff);
  const requestCommand = checkInteger('followUp.requestCommand', spec.requestCommand, 0, 0xff);
  return [
    spec.socket,
    {
      familyId,
      eventCommand: checkInteger('followUp.eventCommand', spec.eventCommand, 0, 0xff),
      requestCommand,
      version: checkInteger('followUp.version', spec.version, 0, 0xff),
      keys,
      skipAttribute,
      skipValues,
      minimumAttribute,
      minimum,
      label: spec.label ?? `request to family ${familyId} command ${requestCommand}`,
    },
  ];
}

const DONE: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });

async function settle<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw fromNativeError(error);
  }
}

/**
 * A generic netlink socket (AF_NETLINK, NETLINK_GENERIC) with extended and capped acks.
 * Calls may be issued concurrently; the socket runs them one at a time, in call order.
 * Messages that are not replies (multicast messages of joined groups, unsolicited unicasts
 * from the kernel) are read from the same socket and delivered by notifications().
 */
export class GenlSocket {
  readonly #native: NativeGenlSocket;
  /** Notifications fetched from the addon and not consumed yet, from #head on. */
  #fetched: GenlNotification[] = [];
  #head = 0;
  /** The iterator currently consuming notifications, if any. */
  #consumer: object | undefined;
  /** Serializes next() calls, so concurrent ones get the notifications in order. */
  #turn: Promise<unknown> = Promise.resolve();

  /** Opens the socket; throws a NetlinkError (with `syscall`) if the kernel refuses, a
   *  TypeError or RangeError for bad options. */
  constructor(options?: GenlSocketOptions) {
    const notificationQueueLimit = checkSocketOptions(options);
    const { NativeGenlSocket } = loadBinding();
    try {
      this.#native = new NativeGenlSocket(notificationQueueLimit);
    } catch (error) {
      throw fromNativeError(error);
    }
  }

  /** The port id the kernel assigned to this socket. */
  get portId(): number {
    return this.#native.portId;
  }

  get closed(): boolean {
    return this.#native.closed;
  }

  /** Looks a family up by name; rejects with an ENOENT NetlinkError if none is registered. */
  async resolveFamily(name: string): Promise<FamilyInfo> {
    if (typeof name !== 'string') {
      throw new TypeError(`family name must be a string, got ${describe(name)}`);
    }
    return toFamily(await settle(() => this.#native.resolveFamily(name)));
  }

  /** Every generic netlink family the kernel has registered. */
  async listFamilies(): Promise<FamilyInfo[]> {
    return (await settle(() => this.#native.listFamilies())).map(toFamily);
  }

  /**
   * Sends a request (NLM_F_REQUEST | NLM_F_ACK) and resolves with the reply messages once
   * the kernel acks: none when the operation only acks.
   */
  async request(
    familyId: number,
    command: number,
    version: number,
    attributes?: Uint8Array,
    options?: RequestOptions,
  ): Promise<GenlMessage[]> {
    const args = this.#check(familyId, command, version, attributes, options);
    return toMessages(await settle(() => this.#native.request(...args)));
  }

  /**
   * Runs a dump (NLM_F_REQUEST | NLM_F_DUMP) and resolves with every message once the kernel
   * ends it. A dump that fails midway rejects (never a partial list); one the kernel flags as
   * interrupted rejects with code 'EINTR' and `dumpInterrupted: true`: retry it.
   */
  async dump(
    familyId: number,
    command: number,
    version: number,
    attributes?: Uint8Array,
    options?: RequestOptions,
  ): Promise<GenlMessage[]> {
    const args = this.#check(familyId, command, version, attributes, options);
    return toMessages(await settle(() => this.#native.dump(...args)));
  }

  /**
   * dump(), without a message object per message: the messages' attributes lie in one
   * `payload`, message i's from `starts[i]` to `ends[i]` (commands and versions in
   * `commands`/`versions`). For readers of big dumps (tens of thousands of messages), which
   * need no object or view for a message they can tell from its bytes. Rejects as dump() does.
   */
  async dumpPacked(familyId: number, command: number, version: number, attributes?: Uint8Array, options?: RequestOptions): Promise<PackedMessages> {
    const args = this.#check(familyId, command, version, attributes, options);
    const { payload, layout } = await settle(() => this.#native.dump(...args));
    const count = layout.length / 4;
    const packed: PackedMessages = {
      payload,
      count,
      commands: new Uint32Array(count),
      versions: new Uint32Array(count),
      starts: new Uint32Array(count),
      ends: new Uint32Array(count),
    };
    for (let index = 0; index < count; index++) {
      const base = index * 4;
      packed.commands[index] = layout[base]!;
      packed.versions[index] = layout[base + 1]!;
      packed.starts[index] = layout[base + 2]!;
      packed.ends[index] = layout[base + 3]!;
    }
    return packed;
  }

  /**
   * Subscribes this socket to a multicast group of a family, by names: resolves the family's
   * groups with nlctrl, then setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP). Rejects with a
   * NetlinkError: ENOENT naming the family or group when it does not exist, EPERM when the group
   * needs a capability the caller lacks. Idempotent.
   */
  async joinGroup(family: string, group: string): Promise<void> {
    const args = [checkName('family', family), checkName('group', group)] as const;
    await settle(() => this.#native.joinGroup(...args));
  }

  /** Leaves a multicast group (NETLINK_DROP_MEMBERSHIP), found by names as for joinGroup().
   *  Leaving a group that was not joined is harmless. */
  async leaveGroup(family: string, group: string): Promise<void> {
    const args = [checkName('family', family), checkName('group', group)] as const;
    await settle(() => this.#native.leaveGroup(...args));
  }

  /**
   * Sets SO_RCVBUF in bytes. The kernel doubles the value (for its bookkeeping) and caps it at
   * net.core.rmem_max. When the buffer is full the kernel drops messages for this socket, and
   * notifications() yields an overrun. With `force`, SO_RCVBUFFORCE: no rmem_max cap, but EPERM
   * without CAP_NET_ADMIN. Throws a NetlinkError (EBADF once closed).
   */
  setReceiveBufferSize(bytes: number, options: { force?: boolean } = {}): void {
    const checked = checkInteger('bytes', bytes, 1, MAX_RECEIVE_BUFFER);
    if (typeof options !== 'object' || options === null) {
      throw new TypeError(`options must be an object, got ${describe(options)}`);
    }
    const force = options.force ?? false;
    if (typeof force !== 'boolean') throw new TypeError(`options.force must be a boolean, got ${describe(force)}`);
    try {
      this.#native.setReceiveBufferSize(checked, force);
    } catch (error) {
      throw fromNativeError(error);
    }
  }

  /** SO_RCVBUF as the kernel applies it: twice what was set, within its limits. */
  get receiveBufferSize(): number {
    try {
      return this.#native.receiveBufferSize;
    } catch (error) {
      throw fromNativeError(error);
    }
  }

  /**
   * The messages that are not replies to this socket's own requests: multicast messages of
   * joined groups and unsolicited unicast messages the kernel sends to this socket (nlmsg_seq
   * 0, e.g. usip events for a listener registered through this socket), with an `overrun` item
   * where messages were lost. One consumer at a time: a second call while an iterator is active
   * throws; ending the iterator (break, return()) lets another start, and what the first had
   * not taken is kept for it. The iterator ends (done) when the socket is closed.
   */
  notifications(): AsyncIterableIterator<GenlNotification> {
    if (this.closed) return endedIterator();
    if (this.#consumer !== undefined) {
      throw new Error(
        'notifications(): this socket already has a consumer; end it (break out of its loop or ' +
          'call return()) before starting another',
      );
    }
    const consumer = {};
    this.#consumer = consumer;
    let finished = false;
    const finish = (): void => {
      finished = true;
      if (this.#consumer === consumer) this.#consumer = undefined;
    };
    const iterator: AsyncIterableIterator<GenlNotification> = {
      next: () => {
        const result = this.#turn.then(async () => {
          if (finished) return DONE;
          const next = await this.#nextNotification();
          if (next.done) finish();
          return next;
        });
        this.#turn = result.catch(() => undefined);
        return result;
      },
      return: async () => {
        finish();
        return DONE;
      },
      [Symbol.asyncIterator]() {
        return iterator;
      },
    };
    return iterator;
  }

  /**
   * The notifications queued by now (at least one; waits for one), with, for each event that
   * `followUp` names, the reply to one request made on `followUp.socket` before this resolves:
   * a wake-up costs one call into JavaScript however many events and requests it brought.
   * When the batch would need more than `limit` requests (default: no limit), none are made.
   * Resolves with undefined once this socket is closed. Not while a notifications() iterator
   * is active (it throws); notifications such an iterator left are returned first, without
   * requests.
   */
  async nextNotificationsFollowed(followUp: FollowUp, limit = 0xffffffff): Promise<FollowedNotifications | undefined> {
    const [socket, spec] = checkFollowUp(followUp);
    const requester = socket.#native;
    const max = checkInteger('limit', limit, 0, 0xffffffff);
    if (this.#consumer !== undefined) {
      throw new Error('nextNotificationsFollowed(): this socket has a notifications() consumer; end it first');
    }
    if (this.closed) return undefined;
    if (this.#head < this.#fetched.length) {
      const notifications = this.#fetched.slice(this.#head);
      this.#fetched = [];
      this.#head = 0;
      return { notifications, replies: new Array<FollowUpReply>(notifications.length) };
    }
    const batch = await settle(() => this.#native.nextNotificationsFollowed(requester, spec, max));
    return batch === null ? undefined : toFollowed(batch);
  }

  async #nextNotification(): Promise<IteratorResult<GenlNotification, undefined>> {
    for (;;) {
      if (this.closed) return DONE;
      if (this.#head < this.#fetched.length) {
        const value = this.#fetched[this.#head]!;
        this.#head += 1;
        return { done: false, value };
      }
      const batch = await settle(() => this.#native.nextNotifications());
      if (batch === null) return DONE;
      this.#fetched = toNotifications(batch);
      this.#head = 0;
    }
  }

  /** Closes the socket. Idempotent. Pending calls reject with ECANCELED, later ones with
   *  EBADF; the notifications iterator ends, and notifications not yet taken are dropped. */
  close(): void {
    this.#native.close();
    this.#fetched = [];
    this.#head = 0;
  }

  #check(
    familyId: unknown,
    command: unknown,
    version: unknown,
    attributes: unknown,
    options: unknown,
  ): [number, number, number, Uint8Array, string | undefined] {
    return [
      checkInteger('familyId', familyId, 0, 0xffff),
      checkInteger('command', command, 0, 0xff),
      checkInteger('version', version, 0, 0xff),
      checkAttributes(attributes),
      checkOptions(options),
    ];
  }
}

function endedIterator(): AsyncIterableIterator<GenlNotification> {
  const iterator: AsyncIterableIterator<GenlNotification> = {
    next: async () => DONE,
    return: async () => DONE,
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}
