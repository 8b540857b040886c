import { GenlSocket, isNetlinkError, type FamilyInfo } from '@usip/netlink-native';
import {
  Command,
  FAMILY_NAME,
  FAMILY_VERSION,
  FEATURE_NAMES,
  PING_ATTRIBUTE_SET,
  type PingReply,
} from './generated/usip.js';
import { UsipModuleNotLoadedError, UsipProtocolError } from './errors.js';
import { decodeAttributes, encodeAttributes, flagNames } from './netlink/attributes.js';

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

  /** Closes the socket; later calls reject. Closing twice is harmless. */
  close(): void {
    this.#socket.close();
  }
}
