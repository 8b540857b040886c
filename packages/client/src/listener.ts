import { isNetlinkError, type GenlSocket } from '@usip/netlink-native';
import {
  Command,
  FAMILY_VERSION,
  LISTENER_ATTRIBUTE_SET,
  type EventTypeName,
  type ScopeName,
} from './generated/usip.js';
import { EventStream } from './events.js';
import { encodeAttributes } from './netlink/attributes.js';

/** What the module said when it registered a listener. */
export interface ListenerRegistration {
  /** The listener's id, unique while the module is loaded. */
  id: number;
  /** The multicast groups its events are copied to, one per event type of its notifiers. */
  groups: string[];
  /** Whose events it receives: its mount namespace's ('mnt-ns') or every one's ('global'). */
  scope: ScopeName;
  /** Inode number of the mount namespace it was registered in (as `stat -L -c %i /proc/self/ns/mnt`). */
  mntNs: number;
}

/**
 * A registered listener: the events its notifiers match, delivered to its own socket. It lives
 * as long as that socket: close() unregisters it and closes the socket, and so do leaving a
 * `for await` loop over it, the end of an `await using` block, the abort of the signal it was
 * registered with, and the end of the process. Iterate it for its events (and overruns).
 */
export class Listener extends EventStream implements ListenerRegistration {
  readonly id: number;
  readonly groups: string[];
  readonly scope: ScopeName;
  readonly mntNs: number;
  readonly #familyId: number;

  /** @internal Made by UsipClient.register(). */
  constructor(socket: GenlSocket, familyId: number, registration: ListenerRegistration, signal?: AbortSignal) {
    super(socket, familyId, 0, signal);
    this.#familyId = familyId;
    this.id = registration.id;
    this.groups = registration.groups;
    this.scope = registration.scope;
    this.mntNs = registration.mntNs;
  }

  /** Unregisters the listener, then closes its socket. A listener already gone is not an error. */
  protected async release(): Promise<void> {
    const request = encodeAttributes(LISTENER_ATTRIBUTE_SET, { id: this.id });
    try {
      await this.socket.request(this.#familyId, Command.listenerUnregister, FAMILY_VERSION, request, {
        label: 'usip listener-unregister',
      });
    } catch (error) {
      // ENOENT: unregistered by someone else meanwhile, or the module was unloaded.
      if (!(isNetlinkError(error) && error.code === 'ENOENT')) throw error;
    }
  }
}

/**
 * A passive subscription to a multicast group: copies of the events of that type delivered to
 * any listener in this network namespace (without `listenerId` and `cmd`). Needs CAP_SYS_ADMIN.
 * Ends as a listener does (close(), leaving a loop, `await using`, its signal).
 */
export class Watch extends EventStream {
  readonly group: EventTypeName;

  /** @internal Made by UsipClient.watch(). */
  constructor(socket: GenlSocket, familyId: number, group: EventTypeName, groupId: number, signal?: AbortSignal) {
    super(socket, familyId, groupId, signal);
    this.group = group;
  }

  protected async release(): Promise<void> {
    // Closing the socket leaves the group.
  }
}
