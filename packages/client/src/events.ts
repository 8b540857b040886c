// Events as the client hands them out: the notifications of a socket (unicast events for a
// listener, or multicast copies for a watcher) decoded into a union told apart by `kind`, and
// within an event by `type` and `action` (spec names), and the socket's overruns as items of
// their own.
import type { GenlNotification, GenlSocket } from '@usip/netlink-native';
import {
  ACTION_NAMES,
  EVENT_ATTRIBUTE_SET,
  EVENT_OPERATIONS,
  EVENT_TYPE_NAMES,
  QUOTA_TYPE_NAMES,
  QUOTA_WARNING_NAMES,
  SPACE_STATE_NAMES,
  TYPE_OF_ACTION,
  type EventAttributes,
  type MtabActionName,
  type MtabEvent,
  type QuotaTypeName,
  type QuotaWarningName,
  type SpaceStateName,
  type StorageEvent,
} from './generated/usip.js';
import { UsipProtocolError } from './errors.js';
import { AttributeError, decodeAttributes } from './netlink/attributes.js';
import { abortable, checkSignal, Lifetime, onAbort } from './lifetime.js';

/** What every event carries, whatever made it (the module's event builder always puts them). */
const ALWAYS = ['seq', 'missed', 'timestamp', 'mntNs'] as const;
type Always = (typeof ALWAYS)[number];
/** What every event carries except a low-space one (a timer's check, no task's doing). */
const TASK = ['pid', 'uid'] as const;
type Task = (typeof TASK)[number];
/** Attributes decoded from numbers into names. */
type Named = 'type' | 'action' | 'spaceState' | 'quotaType' | 'quotaWarning';

/**
 * What a listener's event and a watch's multicast copy both have. `listenerId` is on every event
 * of a Listener (decoding checks it) and never on a Watch's copies; `cmd` is on a listener's
 * events whose notifier has one.
 */
type Carried<E, Required_ extends keyof E> = Required<Pick<E, Required_>> & Omit<E, Required_ | Named>;

/** A mount table event: `action` is one of the mtab actions. */
export type MtabListenerEvent = { readonly kind: 'mtab-event'; readonly type: 'mtab'; readonly action: MtabActionName } & Carried<
  MtabEvent,
  Always | Task
>;

type StorageBase = { readonly kind: 'storage-event'; readonly type: 'storage' };

/** A system call failed with ENOSPC or EDQUOT. */
export type SpaceErrorEvent = StorageBase & { readonly action: 'enospc' | 'edquot' } & Carried<StorageEvent, Always | Task>;

/** The kernel's disk quota code warned a user. */
export type QuotaEvent = StorageBase & {
  readonly action: 'quota';
  readonly quotaType?: QuotaTypeName;
  readonly quotaWarning?: QuotaWarningName;
} & Carried<StorageEvent, Always | Task>;

/**
 * A low-space event. The check runs in the kernel, so it has no causing process (no pid, uid or
 * comm), and it always names its mount (mountId) and which way it went (spaceState): 'low' (free
 * space fell below the notifier's threshold) and 'recovered' (it rose above the threshold plus
 * the hysteresis) carry the mount (path as the listener sees it, fsType, source, dev) and the
 * usage read (bytesTotal, bytesAvailable, filesTotal, filesFree); 'mount-gone' (the watched
 * mount went; the notifier stays) carries the mount's ids only.
 */
export type LowSpaceEvent = StorageBase & { readonly action: 'low-space'; readonly spaceState: SpaceStateName } & Carried<
  StorageEvent,
  Always | 'mountId'
>;

/** A storage event: its `action` tells which of these it is. */
export type StorageListenerEvent = SpaceErrorEvent | QuotaEvent | LowSpaceEvent;

/** An event: `kind` tells mtab from storage, then `type` and `action` (spec names) what it is. */
export type ListenerEvent = MtabListenerEvent | StorageListenerEvent;

/**
 * An event this client cannot name: its type, action or another enumerated attribute (space
 * state, quota type or warning) has a value that a newer module knows and this client does not.
 * It is handed out rather than thrown, so that a loop over a listener keeps going; `attributes`
 * has everything it carried, as numbers.
 */
export interface UnknownEvent {
  readonly kind: 'unknown-event';
  /** The operation it came as. */
  readonly operation: 'mtab-event' | 'storage-event';
  readonly attributes: EventAttributes;
}

/** Is this item a low-space event? */
export function isLowSpaceEvent(item: ListenerItem): item is LowSpaceEvent {
  return item.kind === 'storage-event' && item.action === 'low-space';
}

/**
 * The socket's receive buffer overflowed (the kernel dropped messages for it), or the binding's
 * own queue did. `lost` is the number of messages lost when it is known. The events lost this
 * way are also counted in the `missed` attribute of the next event the listener receives.
 */
export interface Overrun {
  readonly kind: 'overrun';
  readonly lost?: number;
}

/**
 * The module lost `missed` events meant for this listener (its event queue was full) and, its
 * queue having drained, tells so without waiting for a next event to carry the count. The next
 * event's `missed` does not count them again.
 */
export interface Missed {
  readonly kind: 'missed';
  readonly missed: number;
}

/** What iterating a listener or a watch yields. */
export type ListenerItem = ListenerEvent | UnknownEvent | Overrun | Missed;

/** The spec name of an event attribute, for messages: mntNs -> mnt-ns. */
const SPEC_NAMES = new Map(EVENT_ATTRIBUTE_SET.attributes.map((a) => [a.key, a.name]));

function decodeEvent(operation: string, attributes: Uint8Array): EventAttributes {
  try {
    return decodeAttributes(EVENT_ATTRIBUTE_SET, attributes);
  } catch (error) {
    if (error instanceof AttributeError) {
      throw new UsipProtocolError(`usip ${operation}: malformed ${operation === 'missed' ? 'message' : 'event'} from the module: ${error.message}`, { cause: error });
    }
    throw error;
  }
}

function lacks(operation: string, attributes: EventAttributes, keys: readonly (keyof EventAttributes)[]): void {
  const missing = keys.filter((key) => attributes[key] === undefined);
  if (missing.length > 0) {
    throw new UsipProtocolError(`usip ${operation}: the event lacks ${missing.map((key) => SPEC_NAMES.get(key) ?? key).join(', ')}`);
  }
}

/** A known enumerated value by name; undefined if absent; null if this client does not know it. */
function named<N extends string>(table: Readonly<Record<number, N>>, value: number | undefined): N | undefined | null {
  if (value === undefined) return undefined;
  return table[value] ?? null;
}

/**
 * One event message as an item. `unicast`: sent to a listener's socket (which always carries
 * listener-id), not a multicast copy. Throws UsipProtocolError when the message is malformed or
 * lacks what the protocol guarantees; an event with values this client does not know is an
 * UnknownEvent.
 */
export function eventItem(operation: 'mtab-event' | 'storage-event', attributes: EventAttributes, unicast: boolean): ListenerEvent | UnknownEvent {
  lacks(operation, attributes, ['type', 'action', ...ALWAYS, ...(unicast ? (['listenerId'] as const) : [])]);
  const type = named(EVENT_TYPE_NAMES, attributes.type);
  const action = named(ACTION_NAMES, attributes.action);
  const spaceState = named(SPACE_STATE_NAMES, attributes.spaceState);
  const quotaType = named(QUOTA_TYPE_NAMES, attributes.quotaType);
  const quotaWarning = named(QUOTA_WARNING_NAMES, attributes.quotaWarning);
  if (type === null || action === null || spaceState === null || quotaType === null || quotaWarning === null) {
    return { kind: 'unknown-event', operation, attributes };
  }
  const expected = operation === 'mtab-event' ? 'mtab' : 'storage';
  if (type !== expected) throw new UsipProtocolError(`usip ${operation}: the event has type ${String(type)}, not ${expected}`);
  if (TYPE_OF_ACTION[action as keyof typeof TYPE_OF_ACTION] !== type) {
    throw new UsipProtocolError(`usip ${operation}: action ${String(action)} is not a${type === 'mtab' ? 'n' : ''} ${type} action`);
  }
  if (action === 'low-space') {
    lacks(operation, attributes, ['spaceState', 'mountId']);
  } else {
    lacks(operation, attributes, TASK);
  }
  const event: Record<string, unknown> = { kind: operation };
  for (const [key, value] of Object.entries(attributes)) if (value !== undefined) event[key] = value;
  event.type = type;
  event.action = action;
  if (spaceState !== undefined) event.spaceState = spaceState;
  if (quotaType !== undefined) event.quotaType = quotaType;
  if (quotaWarning !== undefined) event.quotaWarning = quotaWarning;
  return event as unknown as ListenerEvent;
}

/**
 * Turns one notification into an item, or undefined when it is not for this stream: another
 * family, another group (`group` 0 is unicast to the socket), or an event command this client
 * does not know (a newer module). Throws UsipProtocolError when an event is malformed or lacks
 * an attribute the protocol guarantees (naming it).
 */
export function notificationItem(notification: GenlNotification, familyId: number, group: number): ListenerItem | undefined {
  if (notification.kind === 'overrun') {
    return notification.lost === undefined ? { kind: 'overrun' } : { kind: 'overrun', lost: notification.lost };
  }
  if (notification.kind !== 'message') return undefined;
  if (notification.familyId !== familyId || notification.group !== group) return undefined;
  const operation = EVENT_OPERATIONS[notification.command];
  if (operation === undefined || operation.event === undefined) return undefined;
  const attributes = decodeEvent(operation.name, notification.attributes);
  if (operation.name === 'missed') {
    if (attributes.missed === undefined) throw new UsipProtocolError('usip missed: the message lacks its missed count');
    return { kind: 'missed', missed: attributes.missed };
  }
  if (operation.name !== 'mtab-event' && operation.name !== 'storage-event') return undefined;
  // Only the attributes the operation's event carries (the set is shared with inject).
  const carried: Record<string, unknown> = {};
  for (const key of operation.event) {
    const value = (attributes as Record<string, unknown>)[key];
    if (value !== undefined) carried[key] = value;
  }
  return eventItem(operation.name, carried as EventAttributes, group === 0);
}

/** Options of one loop over a stream (EventStream#iterate). */
export interface IterateOptions {
  /** Ends this loop: a pending next() rejects with the signal's reason, and the stream closes
   *  (as leaving the loop does). */
  signal?: AbortSignal;
}

/**
 * The items arriving on one socket of its own. Iterate it with `for await`; leaving the loop
 * (break, return, throw) closes the stream, since a loop that stopped reading would leave the
 * kernel queueing for nobody: a listener is unregistered, and with it the module's hooks may be
 * disarmed. After close() iteration ends (next() resolves done), unless the stream's signal ended
 * it: then next() rejects with the signal's reason. One consumer at a time; `await using` closes
 * it at the end of the block.
 */
export abstract class EventStream implements AsyncIterableIterator<ListenerItem>, AsyncDisposable {
  readonly #socket: GenlSocket;
  readonly #familyId: number;
  readonly #group: number;
  readonly #source: AsyncIterator<GenlNotification>;
  readonly #lifetime: Lifetime;
  /** Ends the pending pull once closing begins, rather than after the unregister request and the
   *  socket's end. One per pull (not one promise raced by every pull, which would keep a
   *  reaction per item until close). */
  #wake: (() => void) | undefined;

  protected constructor(socket: GenlSocket, familyId: number, group: number, signal?: AbortSignal) {
    this.#socket = socket;
    this.#familyId = familyId;
    this.#group = group;
    this.#source = socket.notifications();
    this.#lifetime = new Lifetime(async () => {
      this.#wake?.();
      try {
        await this.release();
      } finally {
        this.#socket.close();
      }
    }, signal);
  }

  /** The port id of the stream's netlink socket. */
  get portId(): number {
    return this.#socket.portId;
  }

  /** True once close() was called (or the stream's signal aborted). */
  get closed(): boolean {
    return this.#lifetime.closed;
  }

  protected get socket(): GenlSocket {
    return this.#socket;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /**
   * The next item. Resolves done once the stream is closed; rejects with the signal's reason
   * if the stream's signal ended it (also while waiting).
   */
  async next(): Promise<IteratorResult<ListenerItem, undefined>> {
    for (;;) {
      if (this.closed) return this.#closedResult();
      let wake: (() => void) | undefined;
      const next = await new Promise<IteratorResult<GenlNotification> | typeof ENDED>((resolve, reject) => {
        wake = this.#wake = () => resolve(ENDED);
        this.#source.next().then(resolve, reject);
      }).finally(() => {
        if (this.#wake === wake) this.#wake = undefined;
      });
      if (next === ENDED || next.done === true) return this.#closedResult();
      const item = notificationItem(next.value, this.#familyId, this.#group);
      if (item !== undefined) return { done: false, value: item };
    }
  }

  /** Leaving a `for await` loop: closes the stream (unregisters a listener) and waits for it. */
  async return(): Promise<IteratorResult<ListenerItem, undefined>> {
    await this.close();
    return DONE;
  }

  /**
   * One loop with a signal of its own: when it aborts, a pending next() rejects with its reason
   * and the stream closes (as leaving the loop would).
   */
  iterate(options: IterateOptions = {}): AsyncIterableIterator<ListenerItem> {
    const signal = checkSignal('usip iterate', (options as IterateOptions | undefined)?.signal);
    if (signal === undefined) return this;
    const stop = onAbort(signal, () => void this.close().catch(() => undefined));
    const iterator: AsyncIterableIterator<ListenerItem> = {
      next: async () => {
        signal.throwIfAborted();
        const result = await abortable(this.next(), signal);
        // The stream closing for the loop's signal is the loop's abort, not a plain end.
        if (result.done === true) {
          stop();
          signal.throwIfAborted();
        }
        return result;
      },
      return: async () => {
        stop();
        return this.return();
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }

  #closedResult(): IteratorResult<ListenerItem, undefined> {
    this.#lifetime.throwIfAborted();
    return DONE;
  }

  /** Stops the stream: iteration ends, the socket is closed. Idempotent (every call returns the
   *  same promise); resolves when done. */
  close(): Promise<void> {
    return this.#lifetime.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** What to do before the socket is closed. */
  protected abstract release(): Promise<void>;
}

const ENDED = Symbol('ended');
const DONE: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });
