// Events as the client hands them out: the notifications of a socket (unicast events for a
// listener, or multicast copies for a watcher) decoded into the generated UsipEvent union, and
// the socket's overruns as items of their own.
import type { GenlNotification, GenlSocket } from '@usip/netlink-native';
import {
  Action,
  EVENT_ATTRIBUTE_SET,
  EVENT_OPERATIONS,
  EventType,
  SpaceState,
  type ActionName,
  type EventTypeName,
  type SpaceStateName,
  type UsipEvent,
  type UsipEventKind,
} from './generated/usip.js';
import { UsipProtocolError } from './errors.js';
import { AttributeError, decodeAttributes } from './netlink/attributes.js';
import { abortable, checkSignal, Lifetime, onAbort } from './lifetime.js';

/** The names of an event's type and action, next to their numbers. */
export interface EventNames {
  /** `type` by name; undefined if the module sent a type this client does not know. */
  readonly typeName: EventTypeName | undefined;
  /** `action` by name; undefined if the module sent an action this client does not know. */
  readonly actionName: ActionName | undefined;
}

/** An event: the generated union (told apart by `kind`), with its type and action named. */
export type ListenerEvent = Exclude<UsipEvent, { kind: 'missed' }> & EventNames & SpaceStateNames;

/** A low-space event's space-state by name, next to its number. */
export interface SpaceStateNames {
  /**
   * 'low' (free space fell below the notifier's threshold), 'recovered' (it rose above the
   * threshold plus the hysteresis) or 'mountGone' (the watched mount went; the notifier stays);
   * undefined on other events, or for a state this client does not know.
   */
  readonly spaceStateName?: SpaceStateName;
}

/**
 * A low-space event: a storage event with action lowSpace. The check runs in the kernel, so it
 * has no causing process (no pid, uid or comm). `low` and `recovered` carry the mount (mountId,
 * path as the listener sees it, fsType, source, dev) and the usage read (bytesTotal,
 * bytesAvailable, filesTotal, filesFree); `mountGone` carries the mount's ids only.
 */
export type LowSpaceEvent = Extract<ListenerEvent, { kind: 'storage-event' }> & {
  readonly actionName: 'lowSpace';
  readonly spaceState: number;
  readonly mountId: bigint;
};

/** Is this item a low-space event (a storage event of action lowSpace with its space-state)? */
export function isLowSpaceEvent(item: ListenerItem): item is LowSpaceEvent {
  return (
    item.kind === 'storage-event' &&
    item.actionName === 'lowSpace' &&
    typeof item.spaceState === 'number' &&
    typeof item.mountId === 'bigint'
  );
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
export type ListenerItem = ListenerEvent | Overrun | Missed;

const TYPE_NAMES = new Map<number, EventTypeName>(
  (Object.entries(EventType) as [EventTypeName, number][]).map(([name, value]) => [value, name]),
);
const ACTION_NAMES = new Map<number, ActionName>(
  (Object.entries(Action) as [ActionName, number][]).map(([name, value]) => [value, name]),
);
const SPACE_STATE_NAMES = new Map<number, SpaceStateName>(
  (Object.entries(SpaceState) as [SpaceStateName, number][]).map(([name, value]) => [value, name]),
);

/**
 * Turns one notification into an item, or undefined when it is not for this stream: another
 * family, another group (`group` 0 is unicast to the socket), or an event command this client
 * does not know (a newer module). Throws UsipProtocolError when an event's attributes are
 * malformed.
 */
export function notificationItem(notification: GenlNotification, familyId: number, group: number): ListenerItem | undefined {
  if (notification.kind === 'overrun') {
    return notification.lost === undefined ? { kind: 'overrun' } : { kind: 'overrun', lost: notification.lost };
  }
  if (notification.kind !== 'message') return undefined;
  if (notification.familyId !== familyId || notification.group !== group) return undefined;
  const operation = EVENT_OPERATIONS[notification.command];
  if (operation === undefined || operation.event === undefined) return undefined;
  if (operation.name === 'missed') {
    let missed: unknown;
    try {
      missed = decodeAttributes(EVENT_ATTRIBUTE_SET, notification.attributes).missed;
    } catch (error) {
      if (error instanceof AttributeError) {
        throw new UsipProtocolError(`usip missed: malformed message from the module: ${error.message}`, { cause: error });
      }
      throw error;
    }
    if (typeof missed !== 'number') throw new UsipProtocolError('usip missed: the message lacks its missed count');
    return { kind: 'missed', missed };
  }
  let attributes: Record<string, unknown>;
  try {
    attributes = decodeAttributes(EVENT_ATTRIBUTE_SET, notification.attributes) as Record<string, unknown>;
  } catch (error) {
    if (error instanceof AttributeError) {
      throw new UsipProtocolError(`usip ${operation.name}: malformed event from the module: ${error.message}`, { cause: error });
    }
    throw error;
  }
  const event: Record<string, unknown> = { kind: operation.name as UsipEventKind };
  for (const key of operation.event) {
    if (attributes[key] !== undefined) event[key] = attributes[key];
  }
  event.typeName = typeof attributes.type === 'number' ? TYPE_NAMES.get(attributes.type) : undefined;
  event.actionName = typeof attributes.action === 'number' ? ACTION_NAMES.get(attributes.action) : undefined;
  if (operation.name === 'storage-event' && typeof attributes.spaceState === 'number') {
    event.spaceStateName = SPACE_STATE_NAMES.get(attributes.spaceState);
  }
  return event as unknown as ListenerEvent;
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
