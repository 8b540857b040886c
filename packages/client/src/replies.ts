// The module's replies, decoded with the generated tables and checked for what they must carry.
import {
  Action,
  EventType,
  ListenerFlags,
  NotifierFlags,
  Scope,
  type ActionName,
  type EventTypeName,
  type InjectReply,
  type ListenerAttributes,
  type NotifierAttributes,
  type ScopeName,
  type StatsReply,
} from './generated/usip.js';
import { UsipProtocolError } from './errors.js';
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
  mountId?: bigint;
  pathPrefix?: string;
  threshold?: number;
}

/** A listener, as listener-get dumps it. */
export interface ListenerInfo {
  id: number;
  /** Registered with the global flag. */
  global: boolean;
  /** The raw listener-flags mask. */
  flags: number;
  scope: ScopeName;
  mntNs: bigint;
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

/** The module's counters. */
export type StatsResult = Required<StatsReply>;

const byValue = <K extends string>(table: Record<K, number>): Map<number, K> =>
  new Map((Object.entries(table) as [K, number][]).map(([name, value]) => [value, name]));
const SCOPES = byValue<ScopeName>(Scope);
const TYPES = byValue<EventTypeName>(EventType);
const ACTIONS = byValue<ActionName>(Action);

function requireAll<T extends object, K extends keyof T>(operation: string, reply: T, keys: readonly K[]): Required<Pick<T, K>> {
  const missing = keys.filter((key) => reply[key] === undefined);
  if (missing.length > 0) throw new UsipProtocolError(`${operation}: the reply lacks ${missing.join(', ')}`);
  return reply as Required<Pick<T, K>>;
}

function enumName<K extends string>(operation: string, what: string, table: Map<number, K>, value: number): K {
  const name = table.get(value);
  if (name === undefined) throw new UsipProtocolError(`${operation}: unknown ${what} ${value} in the reply`);
  return name;
}

export function registrationFromReply(reply: ListenerAttributes): ListenerRegistration {
  const operation = 'usip listener-register';
  const { id, scope, mntNs } = requireAll(operation, reply, ['id', 'scope', 'mntNs']);
  return { id, groups: reply.group ?? [], scope: enumName(operation, 'scope', SCOPES, scope), mntNs };
}

export function notifierInfo(operation: string, notifier: NotifierAttributes): NotifierInfo {
  const { type, action, flags } = requireAll(operation, notifier, ['type', 'action', 'flags']);
  const info: NotifierInfo = {
    type: enumName(operation, 'notifier type', TYPES, type),
    action: enumName(operation, 'notifier action', ACTIONS, action),
    notify: (flags & NotifierFlags.notify) !== 0,
    kernLog: (flags & NotifierFlags.kernLog) !== 0,
    flags,
  };
  if (notifier.cmd !== undefined) info.cmd = notifier.cmd;
  if (notifier.mountId !== undefined) info.mountId = notifier.mountId;
  if (notifier.pathPrefix !== undefined) info.pathPrefix = notifier.pathPrefix;
  if (notifier.threshold !== undefined) info.threshold = notifier.threshold;
  return info;
}

export function listenerInfo(reply: ListenerAttributes): ListenerInfo {
  const operation = 'usip listener-get';
  const r = requireAll(operation, reply, ['id', 'flags', 'scope', 'mntNs', 'ownerPid', 'ownerUid', 'portId', 'delivered', 'missed']);
  return {
    id: r.id,
    global: (r.flags & ListenerFlags.global) !== 0,
    flags: r.flags,
    scope: enumName(operation, 'scope', SCOPES, r.scope),
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

const STATS_KEYS = ['listeners', 'notifiers', 'queued', 'queueLimit', 'posted', 'dropped', 'delivered', 'undeliverable', 'objects'] as const;

export function statsResult(reply: StatsReply): StatsResult {
  const all = requireAll('usip stats', reply, STATS_KEYS);
  const out = {} as Record<string, unknown>;
  for (const key of STATS_KEYS) out[key] = all[key];
  return out as StatsResult;
}
