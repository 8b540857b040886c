// The module's replies, decoded with the generated tables and checked for what they must carry.
import {
  ACTION_NAMES,
  EVENT_TYPE_NAMES,
  ListenerFlags,
  NotifierFlags,
  SCOPE_NAMES,
  STATS_ATTRIBUTE_SET,
  STATS_OPERATION,
  STATS_SCOPE_NAMES,
  type ActionName,
  type EventTypeName,
  type InjectReply,
  type ListenerAttributes,
  type NotifierAttributes,
  type ScopeName,
  type StatsReply,
  type StatsScopeName,
} from './generated/usip.js';
import { UsipProtocolError } from './errors.js';
import { decodeAttributes } from './netlink/attributes.js';
import type { ListenerRegistration } from './listener.js';

/** A notifier as the module lists it; the same shape as NotifierOptions, with its flags. */
export interface NotifierInfo {
  type: EventTypeName;
  action: ActionName;
  cmd?: number;
  notify: boolean;
  kernLog: boolean;
  /** The raw notifier-flags mask. */
  flags: number;
  mountId?: number;
  pathPrefix?: string;
  /** low-space notifiers: the one threshold they have, and their hysteresis and interval. */
  threshold?: number;
  thresholdInodes?: number;
  thresholdBytes?: bigint;
  hysteresis?: number;
  intervalMs?: number;
}

/** A listener, as listener-get dumps it. */
export interface ListenerInfo {
  id: number;
  /** Registered with the global flag. */
  global: boolean;
  /** The raw listener-flags mask. */
  flags: number;
  scope: ScopeName;
  /** Inode number of the mount namespace it was registered in. */
  mntNs: number;
  /** Registering process, in the caller's pid namespace; 0 if not visible there. */
  ownerPid: number;
  ownerUid: number;
  /** Netlink port id of the socket the listener belongs to. */
  portId: number;
  notifiers: NotifierInfo[];
  groups: string[];
  /** Events delivered to the listener's socket. */
  delivered: bigint;
  /** Events it should have received and did not (queue full, or its receive buffer). */
  missed: bigint;
}

export interface InjectResult {
  /** Sequence number of the last event posted. */
  seq: bigint;
  /** How many were queued for delivery. */
  queued: number;
  /** How many were dropped because the event queue was full. */
  dropped: number;
}

/**
 * The counters every stats reply carries, whoever asks. The spec says in prose which these are:
 * the others (posted, undeliverable, objects, mount-hooks) are host-wide, and a reply in the
 * user scope leaves them out.
 */
const STATS_ALWAYS = ['listeners', 'notifiers', 'queued', 'queueLimit', 'dropped', 'delivered'] as const;
type StatsAlways = (typeof STATS_ALWAYS)[number];

/**
 * The module's counters: every attribute of the stats reply (the generated `StatsReply`), those
 * of both scopes required, the host-wide ones optional, and `scope` by name: `'host'` (the whole
 * module's, for CAP_SYS_ADMIN in the initial user namespace) or `'user'` (the caller's own
 * listeners'; the host-wide counters are absent). A module that sends no scope predates it and
 * reports the whole module's counters: `'host'`.
 */
export type StatsResult = { scope: StatsScopeName } & Required<Pick<StatsReply, StatsAlways>> & Omit<StatsReply, StatsAlways | 'scope'>;


function requireAll<T extends object, K extends keyof T>(operation: string, reply: T, keys: readonly K[]): Required<Pick<T, K>> {
  const missing = keys.filter((key) => reply[key] === undefined);
  if (missing.length > 0) throw new UsipProtocolError(`${operation}: the reply lacks ${missing.join(', ')}`);
  return reply as Required<Pick<T, K>>;
}

/**
 * The spec name of an enumerated value, from a generated name table such as ACTION_NAMES; the
 * number itself when the table does not have it (a newer module's), and undefined for undefined.
 * For display: a reply this client must understand uses knownName, which refuses the unknown.
 */
export function enumName<N extends string>(names: Readonly<Record<number, N>>, value: number): N | number;
export function enumName<N extends string>(names: Readonly<Record<number, N>>, value: number | undefined): N | number | undefined;
export function enumName<N extends string>(names: Readonly<Record<number, N>>, value: number | undefined): N | number | undefined {
  if (value === undefined) return undefined;
  return Object.hasOwn(names, value) ? (names[value] as N) : value;
}

function knownName<N extends string>(operation: string, what: string, names: Readonly<Record<number, N>>, value: number): N {
  const name = enumName(names, value);
  if (typeof name === 'number') throw new UsipProtocolError(`${operation}: unknown ${what} ${value} in the reply`);
  return name;
}

export function registrationFromReply(reply: ListenerAttributes): ListenerRegistration {
  const operation = 'usip listener-register';
  const { id, scope, mntNs } = requireAll(operation, reply, ['id', 'scope', 'mntNs']);
  return { id, groups: reply.group ?? [], scope: knownName(operation, 'scope', SCOPE_NAMES, scope), mntNs };
}

export function notifierInfo(operation: string, notifier: NotifierAttributes): NotifierInfo {
  const { type, action, flags } = requireAll(operation, notifier, ['type', 'action', 'flags']);
  const info: NotifierInfo = {
    type: knownName(operation, 'notifier type', EVENT_TYPE_NAMES, type),
    action: knownName(operation, 'notifier action', ACTION_NAMES, action),
    notify: (flags & NotifierFlags.notify) !== 0,
    kernLog: (flags & NotifierFlags.kernLog) !== 0,
    flags,
  };
  if (notifier.cmd !== undefined) info.cmd = notifier.cmd;
  if (notifier.mountId !== undefined) info.mountId = notifier.mountId;
  if (notifier.pathPrefix !== undefined) info.pathPrefix = notifier.pathPrefix;
  for (const key of ['threshold', 'thresholdInodes', 'hysteresis', 'intervalMs'] as const) {
    if (notifier[key] !== undefined) info[key] = notifier[key];
  }
  if (notifier.thresholdBytes !== undefined) info.thresholdBytes = notifier.thresholdBytes;
  return info;
}

export function listenerInfo(reply: ListenerAttributes): ListenerInfo {
  const operation = 'usip listener-get';
  const r = requireAll(operation, reply, ['id', 'flags', 'scope', 'mntNs', 'ownerPid', 'ownerUid', 'portId', 'delivered', 'missed']);
  return {
    id: r.id,
    global: (r.flags & ListenerFlags.global) !== 0,
    flags: r.flags,
    scope: knownName(operation, 'scope', SCOPE_NAMES, r.scope),
    mntNs: r.mntNs,
    ownerPid: r.ownerPid,
    ownerUid: r.ownerUid,
    portId: r.portId,
    notifiers: (reply.notifier ?? []).map((n) => notifierInfo(operation, n)),
    groups: reply.group ?? [],
    delivered: r.delivered,
    missed: r.missed,
  };
}

export function injectResult(reply: InjectReply): InjectResult {
  const { seq, queued, dropped } = requireAll('usip inject', reply, ['seq', 'queued', 'dropped']);
  return { seq, queued, dropped };
}


/** A decoded stats reply as a StatsResult: every attribute the operation's reply has, as sent. */
export function statsResult(reply: StatsReply): StatsResult {
  const operation = 'usip stats';
  requireAll(operation, reply, STATS_ALWAYS);
  const scope = reply.scope === undefined ? 'host' : knownName(operation, 'stats scope', STATS_SCOPE_NAMES, reply.scope);
  const out: Record<string, unknown> = { scope };
  // The generated list of the reply's attributes, so that none is left out (mount-hooks was).
  for (const key of STATS_OPERATION.do.reply) {
    if (key !== 'scope' && reply[key] !== undefined) out[key] = reply[key];
  }
  return out as StatsResult;
}

/** Decodes the attributes of a stats reply (the bytes after the genetlink header). */
export function decodeStats(attributes: Uint8Array): StatsResult {
  return statsResult(decodeAttributes(STATS_ATTRIBUTE_SET, attributes));
}
