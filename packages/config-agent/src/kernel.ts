// The agent's view of the usip module: register a listener, tell whether the listeners it holds
// are still there. The real one is @usip/client; host tests give the agent an in-process one.
import { isNetlinkError, UsipClient, UsipModuleNotLoadedError, type ListenerItem, type RegisterOptions } from '@usip/client';

/** A registered listener: its events, and close() to unregister it. */
export interface AgentListener extends AsyncIterable<ListenerItem> {
  readonly id: number;
  /** The netlink port id of its socket: with `id`, what tells it apart after a module reload. */
  readonly portId: number;
  /** 'mnt-ns' or 'global'. */
  readonly scope: string;
  close(): Promise<void>;
}

export interface AgentKernel {
  /**
   * Registers a listener. Rejects with the module's refusal (a NetlinkError: EPERM for a global
   * listener without CAP_SYS_ADMIN, EMFILE, E2BIG, ...) or a UsipArgumentError.
   */
  register(options: RegisterOptions): Promise<AgentListener>;
  /**
   * Whether the module is still there and still has every one of these listeners. False after
   * the module was unloaded (its listeners went with it), even if it was loaded again since.
   */
  alive(listeners: readonly AgentListener[]): Promise<boolean>;
  close(): Promise<void>;
}

/** Connects to the module; rejects with UsipModuleNotLoadedError when it is not loaded. */
export type KernelConnector = () => Promise<AgentKernel>;

/**
 * Errors of a request to a family that is gone: ENOENT, the family id is unknown (the module was
 * unloaded); EPROTONOSUPPORT, a dump while the module is being unloaded (netlink cannot take a
 * reference on it); EOPNOTSUPP, the id now belongs to a family without that command.
 */
const FAMILY_GONE = new Set(['ENOENT', 'EPROTONOSUPPORT', 'EOPNOTSUPP']);

export function familyGone(error: unknown): boolean {
  return isNetlinkError(error) && error.code !== undefined && FAMILY_GONE.has(error.code);
}

/**
 * Connects to the module, and makes sure it is not being unloaded: while rmmod runs its exit
 * function, the family still resolves and a request still succeeds, but the listener it would
 * register dies with the module a moment later. A dump needs a reference on the module, which
 * netlink cannot take then: a dump of the caller's own listeners (cheap) tells. A module on its
 * way out is a UsipModuleNotLoadedError, as one that is gone.
 */
export async function connectLiveModule(options: { signal?: AbortSignal } = {}): Promise<UsipClient> {
  const client = await UsipClient.connect(options);
  try {
    await client.listeners(options);
    return client;
  } catch (error) {
    await client.close();
    if (familyGone(error)) throw new UsipModuleNotLoadedError({ cause: error });
    throw error;
  }
}

/** The real module, through @usip/client. */
export const connectUsip: KernelConnector = async () => {
  const client = await connectLiveModule();
  return {
    register: (options) => client.register(options),
    async alive(listeners) {
      try {
        if (listeners.length === 0) {
          await client.ping();
          return true;
        }
        const present = new Set((await client.listeners()).map((l) => `${l.id}:${l.portId}`));
        return listeners.every((l) => present.has(`${l.id}:${l.portId}`));
      } catch (error) {
        if (familyGone(error)) return false;
        throw error;
      }
    },
    close: () => client.close(),
  };
};
