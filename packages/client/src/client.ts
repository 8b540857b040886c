import { GenlSocket, isNetlinkError, type FamilyInfo } from '@usip/netlink-native';
import {
  Command,
  EVENT_ATTRIBUTE_SET,
  FAMILY_NAME,
  FAMILY_VERSION,
  FEATURE_NAMES,
  LISTENER_ATTRIBUTE_SET,
  PING_ATTRIBUTE_SET,
  STATS_ATTRIBUTE_SET,
  type AttributeSetSpec,
  type PingReply,
} from './generated/usip.js';
import { UsipModuleNotLoadedError, UsipProtocolError } from './errors.js';
import { Listener, Watch } from './listener.js';
import { decodeAttributes, encodeAttributes, flagNames } from './netlink/attributes.js';
import {
  injectRequest,
  listenerId,
  registerRequest,
  watchOptions,
  type InjectOptions,
  type RegisterOptions,
  type WatchOptions,
} from './options.js';
import {
  injectResult,
  listenerInfo,
  registrationFromReply,
  statsResult,
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
  /** The feature bits, as a mask and as spec names (e.g. 'netns'). */
  featureMask: number;
  features: string[];
  /** The cookie of the request, echoed by the module. */
  cookie: bigint | undefined;
}

export interface PingOptions {
  /** A value the module echoes back, to match replies to requests. */
  cookie?: bigint;
}

/**
 * A connection to the usip kernel module over generic netlink. Open one with
 * `UsipClient.connect()`, and `close()` it when done (it holds a netlink socket).
 */
export class UsipClient {
  readonly #socket: GenlSocket;
  /** The usip family as the kernel's generic netlink controller describes it. */
  readonly family: FamilyInfo;

  private constructor(socket: GenlSocket, family: FamilyInfo) {
    this.#socket = socket;
    this.family = family;
  }

  /**
   * Opens a netlink socket and looks up the usip family. Rejects with UsipModuleNotLoadedError,
   * whose message says how to load the module, when the family does not exist.
   */
  static async connect(): Promise<UsipClient> {
    const socket = new GenlSocket();
    try {
      const family = await socket.resolveFamily(FAMILY_NAME);
      return new UsipClient(socket, family);
    } catch (error) {
      socket.close();
      if (isNetlinkError(error) && error.code === 'ENOENT') throw new UsipModuleNotLoadedError({ cause: error });
      throw error;
    }
  }

  /** Asks the module what it is: versions, kernel release and features. */
  async ping(options: PingOptions = {}): Promise<PingResult> {
    const request = encodeAttributes(PING_ATTRIBUTE_SET, { cookie: options.cookie });
    const replies = await this.#socket.request(this.family.id, Command.ping, FAMILY_VERSION, request, {
      label: 'usip ping',
    });
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
    return {
      protocolVersion,
      moduleVersion,
      kernelRelease,
      featureMask: features,
      features: flagNames(features, FEATURE_NAMES),
      cookie: reply.cookie,
    };
  }

  /**
   * Registers a listener on a socket of its own and returns it; iterate it for its events.
   * The listener lives until its close() or the end of the process, independently of this
   * client. Options are checked first (UsipArgumentError naming the field); the module's
   * refusals (EPERM for global without CAP_SYS_ADMIN, EMFILE, E2BIG, ...) reject with a
   * NetlinkError whose message ends with the module's explanation.
   */
  async register(options: RegisterOptions): Promise<Listener> {
    const { request, receiveBufferSize } = registerRequest(options);
    const attributes = encodeAttributes(LISTENER_ATTRIBUTE_SET, request);
    const socket = new GenlSocket();
    try {
      if (receiveBufferSize !== undefined) socket.setReceiveBufferSize(receiveBufferSize);
      const replies = await socket.request(this.family.id, Command.listenerRegister, FAMILY_VERSION, attributes, {
        label: 'usip listener-register',
      });
      const reply = decodeAttributes(LISTENER_ATTRIBUTE_SET, this.#single('usip listener-register', replies));
      return new Listener(socket, this.family.id, registrationFromReply(reply));
    } catch (error) {
      socket.close();
      throw error;
    }
  }

  /**
   * Subscribes, on a socket of its own, to the multicast group of an event type: copies of
   * the events delivered to any listener in this network namespace. Joining needs
   * CAP_SYS_ADMIN (EPERM otherwise).
   */
  async watch(group: 'mtab' | 'storage', options: WatchOptions = {}): Promise<Watch> {
    const checked = watchOptions(group, options);
    const groupId = this.family.multicastGroups.find((g) => g.name === checked.group)?.id;
    if (groupId === undefined) {
      throw new UsipProtocolError(`usip watch: the module has no multicast group "${checked.group}"`);
    }
    const socket = new GenlSocket();
    try {
      if (checked.receiveBufferSize !== undefined) socket.setReceiveBufferSize(checked.receiveBufferSize);
      await socket.joinGroup(FAMILY_NAME, checked.group);
      return new Watch(socket, this.family.id, checked.group, groupId);
    } catch (error) {
      socket.close();
      throw error;
    }
  }

  /** The listeners of this network namespace that the caller could unregister. */
  async listeners(): Promise<ListenerInfo[]> {
    const messages = await this.#socket.dump(this.family.id, Command.listenerGet, FAMILY_VERSION, undefined, {
      label: 'usip listener-get',
    });
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

  /** The module's counters. */
  async stats(): Promise<StatsResult> {
    return statsResult(await this.#do('usip stats', Command.stats, STATS_ATTRIBUTE_SET));
  }

  async #do<T extends object>(label: string, command: number, set: AttributeSetSpec<T>, attributes?: Buffer): Promise<T> {
    const replies = await this.#socket.request(this.family.id, command, FAMILY_VERSION, attributes, { label });
    return decodeAttributes(set, this.#single(label, replies));
  }

  #single(label: string, replies: { attributes: Buffer }[]): Buffer {
    if (replies.length !== 1) throw new UsipProtocolError(`${label}: expected one reply message, got ${replies.length}`);
    return replies[0]!.attributes;
  }

  /** Closes the socket; later calls reject. Closing twice is harmless. Listeners and watches
   *  have sockets of their own and stay open. */
  close(): void {
    this.#socket.close();
  }
}
