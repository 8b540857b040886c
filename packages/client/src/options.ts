// What callers pass to register() and inject(), checked field by field before anything is sent,
// and turned into the attribute objects of the generated tables. The kernel checks all of this
// again (policy + handler); checking here too gives errors that name the caller's own field
// (`notifiers[1].action`) instead of an attribute offset in a netlink message.
import {
  ACTION_VALUES,
  ACTIONS_OF_TYPE,
  EVENT_ATTRIBUTE_SET,
  EVENT_TYPE_VALUES,
  ListenerFlags,
  MOUNT_ATTRIBUTE_SET,
  NOTIFIER_ATTRIBUTE_SET,
  NotifierFlags,
  STATFS_ATTRIBUTE_SET,
  type ActionName,
  type AttributeSetSpec,
  type AttributeSpec,
  type EventAttributes,
  type EventTypeName,
  type InjectRequest,
  type ListenerRegisterRequest,
  type MtabActionName,
  type NotifierAttributes,
  type StatfsRequest,
  type StorageActionName,
} from './generated/usip.js';
import { UsipArgumentError } from './errors.js';
import { checkSignal } from './lifetime.js';

// The actions of each type come from the spec (its mtab-action and storage-action enums); the
// module refuses a notifier or an injection that mixes them.
export { ACTIONS_OF_TYPE, type MtabActionName, type StorageActionName };

/** A type and one of its actions. */
export type TypedAction = { type: 'mtab'; action: MtabActionName } | { type: 'storage'; action: StorageActionName };

/** What a notifier matches and what it does with a match. */
export type NotifierOptions = TypedAction & {
  /** A number of the caller's choosing, echoed in every event this notifier matches. */
  cmd?: number;
  /** Send matching events to the listener (default true). */
  notify?: boolean;
  /** Write a line about each matching event to the kernel log (default false). */
  kernLog?: boolean;
  /** Match only events of this mount (a mount id, 0 to 2^31 - 1). */
  mountId?: number;
  /** Match only events at or below this absolute path (whole path components). */
  pathPrefix?: string;
} & LowSpaceOptions;

/**
 * A low-space notifier's options (action 'low-space' only; other actions take none of them). The
 * module reads the usage of the mounts it selects (mountId, pathPrefix, or every mount below the
 * listener's root) every intervalMs and reports a crossing of exactly one threshold: `low` when
 * free space falls below it, `recovered` when it rises above threshold * (100 + hysteresis) / 100,
 * `mount-gone` when a watched mount goes.
 */
export interface LowSpaceOptions {
  /** Percentage (1..100) of blocks available to unprivileged users (df's Avail over Size). */
  threshold?: number;
  /** Percentage (1..100) of free inodes. */
  thresholdInodes?: number;
  /** Bytes available to unprivileged users (>= 1). */
  thresholdBytes?: bigint;
  /** How far above the threshold free space must rise to recover, in percent of it (0..1000, default 5). */
  hysteresis?: number;
  /** How often the mounts are read, in milliseconds (100..3600000, default 1000). */
  intervalMs?: number;
}

/** The options only a low-space notifier takes. */
export const LOW_SPACE_KEYS = ['threshold', 'thresholdInodes', 'thresholdBytes', 'hysteresis', 'intervalMs'] as const;
const THRESHOLD_KEYS = ['threshold', 'thresholdInodes', 'thresholdBytes'] as const;

export interface RegisterOptions {
  /** Receive the events of every mount namespace (needs CAP_SYS_ADMIN); default: the caller's. */
  global?: boolean;
  /** One or more notifiers. */
  notifiers: NotifierOptions[];
  /** SO_RCVBUF of the listener's socket in bytes (the kernel doubles it); default: the system's. */
  receiveBufferSize?: number;
  /** Cancels the registration while it waits (nothing stays registered), and later ends the
   *  listener: it closes, and its pending and later next() reject with the signal's reason. */
  signal?: AbortSignal;
}

export type InjectOptions = TypedAction & {
  mountId?: number;
  parentId?: number;
  path?: string;
  fsType?: string;
  source?: string;
  /** Device number, new_encode_dev() format. */
  dev?: number;
  /** How many occurrences the event stands for (>= 1). */
  count?: number;
  /** Post the event this many times in a burst (1..65536). */
  repeat?: number;
};

export interface WatchOptions {
  /** SO_RCVBUF of the subscription's socket in bytes (the kernel doubles it). */
  receiveBufferSize?: number;
  /** Cancels the subscription while it waits, and later ends it (as RegisterOptions.signal). */
  signal?: AbortSignal;
}

/** The action a name means: its spec name ('low-space'), the one spelling there is. */
export function actionFromName(name: string): ActionName | undefined {
  return Object.hasOwn(ACTION_VALUES, name) ? (name as ActionName) : undefined;
}

/**
 * The spec name that a value spelt the old way means ('lowSpace', 'mountGone' and 'mntNs' were
 * names of 'low-space', 'mount-gone' and 'mnt-ns'), for an error that tells the new name;
 * undefined when `value` is no such spelling of one of `names`.
 */
export function renamedValue(value: unknown, names: readonly string[]): string | undefined {
  if (typeof value !== 'string' || names.includes(value)) return undefined;
  const dashed = value.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
  return names.includes(dashed) ? dashed : undefined;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}

function fail(operation: string, field: string, message: string): never {
  throw new UsipArgumentError(field, `${operation}: ${field}: ${message}`);
}

function checkObject(operation: string, field: string, value: unknown, known: readonly string[]): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    fail(operation, field, `expected an object, got ${describe(value)}`);
  }
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (record[key] !== undefined && !known.includes(key)) {
      fail(operation, field === '' ? key : `${field}.${key}`, `unknown option; the options are ${known.join(', ')}`);
    }
  }
  return record;
}

function join(field: string, key: string): string {
  return field === '' ? key : `${field}.${key}`;
}

function checkBoolean(operation: string, field: string, value: unknown): boolean | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'boolean') fail(operation, field, `expected true or false, got ${describe(value)}`);
  return value;
}

function attribute(set: AttributeSetSpec<object>, key: string): AttributeSpec {
  const spec = set.attributes.find((a) => a.key === key);
  if (spec === undefined) throw new Error(`options: the ${set.name} attribute set has no ${key}`);
  return spec;
}

/**
 * Checks a value against the attribute it will be sent as: its integer width and the spec's
 * checks (min, max, max-len), so the limits come from the spec rather than from copies here.
 */
function checkAttributeValue(
  operation: string,
  field: string,
  value: unknown,
  set: AttributeSetSpec<object>,
  key: string,
): void {
  if (value === undefined) return;
  const spec = attribute(set, key);
  const checks = spec.checks ?? {};
  switch (spec.type) {
    case 'u32': {
      const min = Number(checks.min ?? 0);
      const max = Number(checks.max ?? 0xffffffff);
      if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
        fail(operation, field, `expected an integer from ${min} to ${max}, got ${describe(value)}`);
      }
      return;
    }
    case 'u64': {
      if (spec.safeNumber === true) {
        // A mount id or namespace inode: the spec bounds it below 2^53, so it is a number.
        const min = Number(checks.min ?? 0);
        const max = Number(checks.max);
        if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
          fail(operation, field, `expected an integer from ${min} to ${max}, got ${describe(value)}`);
        }
        return;
      }
      const min = BigInt(checks.min ?? 0);
      const max = BigInt(checks.max ?? 0xffffffffffffffffn);
      if (typeof value !== 'bigint') {
        fail(operation, field, `expected a bigint (e.g. ${typeof value === 'number' ? value : 42}n), got ${describe(value)}`);
      }
      if (value < min || value > max) fail(operation, field, `expected a value from ${min} to ${max}, got ${value}`);
      return;
    }
    case 'string': {
      if (typeof value !== 'string') fail(operation, field, `expected a string, got ${describe(value)}`);
      if (value.includes('\0')) fail(operation, field, 'contains a NUL character');
      const length = Buffer.byteLength(value);
      if (checks.maxLen !== undefined && length > checks.maxLen) {
        fail(operation, field, `is ${length} bytes long, longer than the maximum of ${checks.maxLen}`);
      }
      return;
    }
    default:
      throw new Error(`options: cannot check ${set.name}.${spec.name} of type ${spec.type}`);
  }
}

function checkTypedAction(operation: string, field: string, record: Record<string, unknown>): TypedAction {
  const { type, action } = record;
  const typeField = join(field, 'type');
  const actionField = join(field, 'action');
  const types = Object.keys(EVENT_TYPE_VALUES) as EventTypeName[];
  if (type === undefined) fail(operation, typeField, `is required: one of ${types.join(', ')}`);
  if (typeof type !== 'string' || !(types as string[]).includes(type)) {
    fail(operation, typeField, `expected one of ${types.join(', ')}, got ${describe(type)}`);
  }
  const allowed: readonly string[] = ACTIONS_OF_TYPE[type as EventTypeName];
  if (action === undefined) fail(operation, actionField, `is required: one of ${allowed.join(', ')}`);
  if (typeof action !== 'string' || actionFromName(action) === undefined) {
    const renamed = renamedValue(action, allowed);
    fail(operation, actionField, renamed !== undefined ? `${describe(action)} is now called ${describe(renamed)}` : `expected an action name (${Object.keys(ACTION_VALUES).join(', ')}), got ${describe(action)}`);
  }
  if (!allowed.includes(action)) {
    fail(operation, actionField, `${describe(action)} is not a${type === 'mtab' ? 'n' : ''} ${type} action; ${type} actions are ${allowed.join(', ')}`);
  }
  return { type, action } as TypedAction;
}

function checkReceiveBufferSize(operation: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 0x7fffffff) {
    fail(operation, 'receiveBufferSize', `expected a number of bytes from 1 to ${0x7fffffff}, got ${describe(value)}`);
  }
  return value;
}

const NOTIFIER_KEYS = ['type', 'action', 'cmd', 'notify', 'kernLog', 'mountId', 'pathPrefix', ...LOW_SPACE_KEYS] as const;
const REGISTER_KEYS = ['global', 'notifiers', 'receiveBufferSize', 'signal'] as const;

/** Checks one notifier and returns its attributes. */
export function notifierAttributes(options: NotifierOptions, field = 'notifier', operation = 'usip listener-register'): NotifierAttributes {
  const record = checkObject(operation, field, options, NOTIFIER_KEYS);
  const { type, action } = checkTypedAction(operation, field, record);
  const notify = checkBoolean(operation, join(field, 'notify'), record.notify) ?? true;
  const kernLog = checkBoolean(operation, join(field, 'kernLog'), record.kernLog) ?? false;
  if (!notify && !kernLog) {
    fail(operation, field, 'notify and kernLog are both false: a notifier must do one of them');
  }
  checkAttributeValue(operation, join(field, 'cmd'), record.cmd, NOTIFIER_ATTRIBUTE_SET, 'cmd');
  checkAttributeValue(operation, join(field, 'mountId'), record.mountId, NOTIFIER_ATTRIBUTE_SET, 'mountId');
  checkAttributeValue(operation, join(field, 'pathPrefix'), record.pathPrefix, NOTIFIER_ATTRIBUTE_SET, 'pathPrefix');
  if (typeof record.pathPrefix === 'string' && !record.pathPrefix.startsWith('/')) {
    fail(operation, join(field, 'pathPrefix'), `must be an absolute path, got ${describe(record.pathPrefix)}`);
  }
  checkLowSpace(operation, field, action, record);
  return {
    type: EVENT_TYPE_VALUES[type],
    action: ACTION_VALUES[action],
    cmd: record.cmd as number | undefined,
    flags: (notify ? NotifierFlags.notify : 0) | (kernLog ? NotifierFlags.kernLog : 0),
    mountId: record.mountId as number | undefined,
    pathPrefix: record.pathPrefix as string | undefined,
    threshold: record.threshold as number | undefined,
    thresholdInodes: record.thresholdInodes as number | undefined,
    thresholdBytes: record.thresholdBytes as bigint | undefined,
    hysteresis: record.hysteresis as number | undefined,
    intervalMs: record.intervalMs as number | undefined,
  };
}

/** The module's rules for low-space options (usip_notifier_parse_space), checked here first. */
function checkLowSpace(operation: string, field: string, action: ActionName, record: Record<string, unknown>): void {
  for (const key of LOW_SPACE_KEYS) {
    checkAttributeValue(operation, join(field, key), record[key], NOTIFIER_ATTRIBUTE_SET, key);
  }
  const given = LOW_SPACE_KEYS.find((key) => record[key] !== undefined);
  if (action !== 'low-space') {
    if (given !== undefined) fail(operation, join(field, given), `only a low-space notifier takes ${LOW_SPACE_KEYS.join(', ')}`);
    return;
  }
  const thresholds = THRESHOLD_KEYS.filter((key) => record[key] !== undefined);
  if (thresholds.length !== 1) {
    fail(
      operation,
      field,
      `a low-space notifier needs exactly one of ${THRESHOLD_KEYS.join(', ')}${thresholds.length ? `, got ${thresholds.join(' and ')}` : ''}`,
    );
  }
  const [key] = thresholds as [(typeof THRESHOLD_KEYS)[number]];
  if (record[key] === 0 || record[key] === 0n) fail(operation, join(field, key), 'a threshold of 0 can never be crossed');
  // The ranges the module's handler checks (the spec says them in prose, not as policy checks).
  for (const [name, min, max] of LOW_SPACE_RANGES) {
    const value = record[name];
    if (typeof value === 'number' && (value < min || value > max)) {
      fail(operation, join(field, name), `must be an integer from ${min} to ${max}, got number ${value}`);
    }
  }
}

/** The ranges of the low-space options, as usip_notifier_space_ranges() checks them. */
const LOW_SPACE_RANGES = [
  ['threshold', 1, 100],
  ['thresholdInodes', 1, 100],
  ['hysteresis', 0, 1000],
  ['intervalMs', 100, 3_600_000],
] as const;

/** Checks register()'s options; returns the request's attributes and the socket's buffer size. */
export function registerRequest(options: RegisterOptions): { request: ListenerRegisterRequest; receiveBufferSize: number | undefined; signal: AbortSignal | undefined } {
  const operation = 'usip listener-register';
  const record = checkObject(operation, '', options, REGISTER_KEYS);
  const global = checkBoolean(operation, 'global', record.global) ?? false;
  const notifiers = record.notifiers;
  if (!Array.isArray(notifiers)) fail(operation, 'notifiers', `expected an array of notifiers, got ${describe(notifiers)}`);
  if (notifiers.length === 0) fail(operation, 'notifiers', 'a listener needs at least one notifier');
  const notifier = notifiers.map((n: NotifierOptions, index) => notifierAttributes(n, `notifiers[${index}]`, operation));
  return {
    request: { flags: global ? ListenerFlags.global : 0, notifier },
    receiveBufferSize: checkReceiveBufferSize(operation, record.receiveBufferSize),
    signal: checkSignal(operation, record.signal),
  };
}

const INJECT_KEYS = ['type', 'action', 'mountId', 'parentId', 'path', 'fsType', 'source', 'dev', 'count', 'repeat'] as const;

/** Checks inject()'s options and returns the request's attributes. */
export function injectRequest(options: InjectOptions): InjectRequest {
  const operation = 'usip inject';
  const record = checkObject(operation, '', options, INJECT_KEYS);
  const { type, action } = checkTypedAction(operation, '', record);
  // The module's low-space events come from its timer with a space-state, which an injection
  // cannot carry: an injected one would be an event the protocol says cannot exist.
  if (action === 'low-space') fail(operation, 'action', 'low-space events cannot be injected: they carry a space-state, which inject has no attribute for');
  const request: InjectRequest = { type: EVENT_TYPE_VALUES[type], action: ACTION_VALUES[action] };
  for (const key of INJECT_KEYS) {
    if (key === 'type' || key === 'action') continue;
    checkAttributeValue(operation, key, record[key], EVENT_ATTRIBUTE_SET, key);
    if (record[key] !== undefined) (request as Record<string, unknown>)[key] = record[key] as EventAttributes[typeof key];
  }
  return request;
}

/** Checks watch()'s options. */
export function watchOptions(group: unknown, options: unknown): { group: EventTypeName; receiveBufferSize: number | undefined; signal: AbortSignal | undefined } {
  const operation = 'usip watch';
  const groups = Object.keys(EVENT_TYPE_VALUES);
  if (typeof group !== 'string' || !groups.includes(group)) {
    fail(operation, 'group', `expected one of ${groups.join(', ')}, got ${describe(group)}`);
  }
  const record = checkObject(operation, '', options ?? {}, ['receiveBufferSize', 'signal']);
  return {
    group: group as EventTypeName,
    receiveBufferSize: checkReceiveBufferSize(operation, record.receiveBufferSize),
    signal: checkSignal(operation, record.signal),
  };
}

/** Checks a listener id. */
export function listenerId(operation: string, id: unknown): number {
  if (typeof id !== 'number' || !Number.isInteger(id) || id < 1 || id > 0xffffffff) {
    fail(operation, 'id', `expected a listener id (an integer from 1 to ${0xffffffff}), got ${describe(id)}`);
  }
  return id;
}

/** The default SO_RCVBUF of a mount watcher's listener socket: room for tens of thousands of
 *  events, so that bursts rarely overflow it (the kernel caps it at net.core.rmem_max). */
export const DEFAULT_WATCH_RECEIVE_BUFFER = 4 * 1024 * 1024;

export interface MountWatcherOptions {
  /** SO_RCVBUF of the listener socket in bytes (default 4 MiB; the kernel doubles it and caps it
   *  at net.core.rmem_max). */
  receiveBufferSize?: number;
  /** Aborts watchMounts() while it sets up (it rejects with the signal's reason and unregisters
   *  what it registered), and later closes the watcher (checked by UsipClient.watchMounts). */
  signal?: AbortSignal;
}

/** Checks watchMounts()'s options. */
export function mountWatcherOptions(options: unknown): { receiveBufferSize: number } {
  const operation = 'usip watch-mounts';
  const record = checkObject(operation, '', options ?? {}, ['receiveBufferSize', 'signal']);
  return { receiveBufferSize: checkReceiveBufferSize(operation, record.receiveBufferSize) ?? DEFAULT_WATCH_RECEIVE_BUFFER };
}

/** Checks mount()'s argument: a mount id, or { uniqueId }. Returns the request's key. */
export function mountKey(operation: string, id: unknown): { mountId: number } | { uniqueId: bigint } {
  if (typeof id === 'number') {
    checkAttributeValue(operation, 'id', id, MOUNT_ATTRIBUTE_SET, 'mountId');
    return { mountId: id };
  }
  if (id !== null && typeof id === 'object' && !Array.isArray(id)) {
    const record = checkObject(operation, 'id', id, ['uniqueId']);
    if (record.uniqueId === undefined) fail(operation, 'id.uniqueId', 'is required: a bigint');
    checkAttributeValue(operation, 'id.uniqueId', record.uniqueId, MOUNT_ATTRIBUTE_SET, 'uniqueId');
    return { uniqueId: record.uniqueId as bigint };
  }
  return fail(operation, 'id', `expected a mount id (a number) or { uniqueId: bigint }, got ${describe(id)}`);
}

/** Which mount statfs() reads: by mount id, by unique id (Linux 6.8+), or the mount a path is on. */
export type StatfsTarget = { mountId: number } | { uniqueId: bigint } | { path: string };

export interface StatfsOptions {
  /**
   * How long the module waits for one file system before it reports ETIMEDOUT for it, in
   * milliseconds (1 to 60000; default: the module parameter statfs_timeout_ms, 1000).
   */
  timeoutMs?: number;
}

/** Checks statfs()'s options; returns the request's timeout-ms (undefined: the module's default). */
export function statfsOptions(operation: string, options: unknown): number | undefined {
  const record = checkObject(operation, '', options ?? {}, ['timeoutMs']);
  checkAttributeValue(operation, 'timeoutMs', record.timeoutMs, STATFS_ATTRIBUTE_SET, 'timeoutMs');
  return record.timeoutMs as number | undefined;
}

/** Checks statfs()'s target (exactly one of mountId, uniqueId, path) and its options: the request. */
export function statfsRequest(operation: string, target: unknown, options: unknown): StatfsRequest {
  const timeoutMs = statfsOptions(operation, options);
  const keys = ['mountId', 'uniqueId', 'path'] as const;
  const record = checkObject(operation, 'target', target, keys);
  const given = keys.filter((key) => record[key] !== undefined);
  if (given.length !== 1) {
    fail(operation, 'target', `name the mount by exactly one of mountId, uniqueId or path, got ${given.length === 0 ? 'none' : given.join(' and ')}`);
  }
  const { mountId, uniqueId, path } = record;
  if (mountId !== undefined) {
    checkAttributeValue(operation, 'target.mountId', mountId, STATFS_ATTRIBUTE_SET, 'mountId');
    return { mountId: mountId as number, timeoutMs };
  }
  if (uniqueId !== undefined) {
    checkAttributeValue(operation, 'target.uniqueId', uniqueId, STATFS_ATTRIBUTE_SET, 'uniqueId');
    return { uniqueId: uniqueId as bigint, timeoutMs };
  }
  checkAttributeValue(operation, 'target.path', path, STATFS_ATTRIBUTE_SET, 'path');
  if (path === '') fail(operation, 'target.path', 'is empty');
  return { path: path as string, timeoutMs };
}
