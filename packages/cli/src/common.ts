// What every command shares: exit codes, error reporting, JSON with 64-bit values, option
// value parsers that turn a bad value into a usage error naming it.
import { InvalidArgumentError } from 'commander';
import {
  ACTIONS_OF_TYPE,
  MOUNT_BACKENDS,
  openMounts,
  UsipArgumentError,
  UsipClient,
  UsipMounts,
  UsipError,
  actionFromName,
  isNetlinkError,
  renamedValue,
  protocol,
  type MountBackend,
  type TypedAction,
  encodeDev,
} from '@usip/client';

// The shared text helpers, one copy in @usip/client, re-exported for the commands.
export { decodeDev, encodeDev, quote, toJson } from '@usip/client';

/** Exit codes: 0 success, 1 the operation failed (e.g. module not loaded), 2 bad usage, 130
 *  interrupted (SIGINT: 128 + 2, what a shell reports for a command killed by it). */
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
export const EXIT_INTERRUPTED = 130;

/**
 * Prints an error the user can act on (`usip: <message>`) and sets the exit code: 2 for a bad
 * argument, 1 for everything the module or the system refused. Anything else is a bug and is
 * thrown on, with its stack.
 */
export function reportError(error: unknown): void {
  if (error instanceof UsipArgumentError) {
    process.stderr.write(`usip: ${error.message}\n`);
    process.exitCode = EXIT_USAGE;
  } else if (error instanceof UsipError || isNetlinkError(error)) {
    process.stderr.write(`usip: ${error.message}\n`);
    process.exitCode = EXIT_FAILURE;
  } else {
    throw error;
  }
}

/** Connects, runs `action`, closes; errors are reported with reportError (`explain` may first
 *  replace a connection error with one that says more). */
export async function withClient(action: (client: UsipClient) => Promise<void>, explain?: (error: unknown) => unknown): Promise<void> {
  let client: UsipClient;
  try {
    client = await UsipClient.connect();
  } catch (error) {
    reportError(explain === undefined ? error : explain(error));
    return;
  }
  try {
    await action(client);
  } catch (error) {
    reportError(error);
  } finally {
    await client.close();
  }
}

/**
 * Opens the mount API on the best backend for each feature (or the one `backend` forces), runs
 * `action`, closes; errors are reported with reportError.
 */
export async function withMounts(backend: MountBackend | undefined, action: (mounts: UsipMounts) => Promise<void>): Promise<void> {
  let mounts: UsipMounts;
  try {
    mounts = await openMounts(backend === undefined ? {} : { backend });
  } catch (error) {
    reportError(error);
    return;
  }
  try {
    await action(mounts);
  } catch (error) {
    reportError(error);
  } finally {
    await mounts.close();
  }
}

/** The --backend option's parser: module, kernel or mountinfo. */
export function backendName(value: string): MountBackend {
  if (!(MOUNT_BACKENDS as readonly string[]).includes(value)) throw new InvalidArgumentError(`expected one of ${MOUNT_BACKENDS.join(', ')}`);
  return value as MountBackend;
}

export const BACKEND_HELP = `where the mount table and its changes come from: ${MOUNT_BACKENDS.join(', ')} (default: the best available; see usip status)`;

/** An option parser for an integer from min to max (decimal, or hexadecimal with 0x). */
export function integer(min: number, max: number): (value: string) => number {
  return (value) => {
    const n = /^(?:\d+|0x[\da-f]+)$/i.test(value) ? Number(value) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected an integer from ${min} to ${max}`);
    }
    return n;
  };
}

const U64_MAX = 0xffffffffffffffffn;

/** An option parser for a 64-bit unsigned value (decimal, or hexadecimal with 0x). */
export function u64(value: string): bigint {
  if (!/^(?:\d+|0x[\da-f]+)$/i.test(value) || BigInt(value) > U64_MAX) {
    throw new InvalidArgumentError(`expected an integer from 0 to ${U64_MAX}`);
  }
  return BigInt(value);
}

/** An option parser for a device number: MAJOR:MINOR, or the encoded number itself. */
export function deviceNumber(value: string): number {
  const pair = /^(\d+):(\d+)$/.exec(value);
  if (pair === null) return integer(0, 0xffffffff)(value);
  const major = Number(pair[1]);
  const minor = Number(pair[2]);
  if (major > 0xfff || minor > 0xfffff) {
    throw new InvalidArgumentError('expected MAJOR:MINOR with a major up to 4095 and a minor up to 1048575');
  }
  return encodeDev(major, minor);
}

export const TYPE_NAMES = Object.keys(protocol.EventType) as protocol.EventTypeName[];

/** Names of the actions of a type, from the spec (low-space). */
export function actionsOf(type: protocol.EventTypeName): string[] {
  return [...ACTIONS_OF_TYPE[type]];
}

/** An option parser for a mount id: 0 to the spec's mount-id-max (the kernel's ids are ints). */
export const mountId = integer(0, protocol.MOUNT_ID_MAX);

/**
 * Checks a type and an action given on the command line. Returns the pair, or the reason it is
 * not one, naming the bad value.
 */
export function typedAction(type: string, action: string): TypedAction | string {
  if (!(TYPE_NAMES as string[]).includes(type)) return `unknown event type "${type}"; the types are ${TYPE_NAMES.join(', ')}`;
  const key = actionFromName(action);
  const allowed = actionsOf(type as protocol.EventTypeName);
  if (key === undefined) {
    const renamed = renamedValue(action, allowed);
    return `unknown action "${action}"${renamed === undefined ? '' : ` (it is called "${renamed}")`}; ${type} actions are ${allowed.join(', ')}`;
  }
  if (!(ACTIONS_OF_TYPE[type as protocol.EventTypeName] as readonly string[]).includes(key)) {
    return `"${action}" is not a${type === 'mtab' ? 'n' : ''} ${type} action; ${type} actions are ${allowed.join(', ')}`;
  }
  return { type, action: key } as TypedAction;
}

/** Spec spelling of an enum value by number, or the number if this client does not know it. */
export { enumName } from '@usip/client';

/**
 * Runs `stream` (a loop over a listener or a watcher) until it ends, stopping it with `close` on
 * SIGINT (exit status 130), SIGTERM (0: asked to stop) or a closed stdout (EPIPE), and closing
 * it in any case.
 */
export async function untilStopped(close: () => Promise<void>, stream: () => Promise<void>): Promise<void> {
  const stop = () => {
    close().catch(() => undefined);
  };
  const interrupt = () => {
    process.exitCode = EXIT_INTERRUPTED;
    stop();
  };
  const onStdoutError = (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    stop();
  };
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', stop);
  process.stdout.on('error', onStdoutError);
  try {
    await stream();
  } finally {
    process.off('SIGINT', interrupt);
    process.off('SIGTERM', stop);
    await close();
    process.stdout.off('error', onStdoutError);
  }
}
