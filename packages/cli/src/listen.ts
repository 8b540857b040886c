import { InvalidArgumentError } from 'commander';
import { LOW_SPACE_KEYS, protocol, type ListenerItem, type NotifierOptions, type UsipClient } from '@usip/client';
import { decodeDev, enumName, integer, mountId, quote, toJson, typedAction, u64, untilStopped } from './common.js';

const NOTIFIER_OPTIONS =
  'kern-log, cmd=N, mount-id=N, path-prefix=PATH, and for low-space threshold=N%, threshold-inodes=N%, threshold-bytes=SIZE, hysteresis=N, interval-ms=N';

/** A percentage option of a low-space notifier: N or N%, 1 to 100. */
function percent(value: string): number {
  return integer(1, 100)(value.endsWith('%') ? value.slice(0, -1) : value);
}

const SIZE_UNITS: Record<string, bigint> = { '': 1n, k: 1n << 10n, m: 1n << 20n, g: 1n << 30n, t: 1n << 40n, p: 1n << 50n, e: 1n << 60n };

/** A size in bytes: N, or N with K, M, G, T, P or E (powers of 1024; KiB and KB spell the same). */
export function size(value: string): bigint {
  const match = /^(\d+)\s*([kmgtpe]?)(?:i?b)?$/i.exec(value);
  const bytes = match === null ? -1n : BigInt(match[1]!) * SIZE_UNITS[match[2]!.toLowerCase()]!;
  if (bytes < 1n || bytes > 0xffffffffffffffffn) {
    throw new InvalidArgumentError('expected a size of at least 1 byte and below 16E, e.g. 512M or 1G (powers of 1024)');
  }
  return bytes;
}

/**
 * Parses `--notifier TYPE:ACTION[:OPTION]...`: OPTION being kern-log, cmd=N, mount-id=N,
 * path-prefix=PATH (last: the path may contain ':' and ','), and for low-space notifiers
 * threshold=N% (blocks available), threshold-inodes=N%, threshold-bytes=SIZE, hysteresis=N and
 * interval-ms=N. Options may also be separated by ',' (`storage:low-space,threshold=10%`).
 * Throws InvalidArgumentError naming what is wrong; commander turns it into a usage error that
 * quotes the value.
 */
export function parseNotifier(spec: string): NotifierOptions {
  const head = /^([^:,]*):([^:,]*)(?:[:,](.*))?$/s.exec(spec);
  if (head === null || head[1] === '' || head[2] === '') {
    throw new InvalidArgumentError('expected TYPE:ACTION[:OPTION]..., e.g. mtab:mount or storage:low-space:threshold=10%');
  }
  const pair = typedAction(head[1]!, head[2]!);
  if (typeof pair === 'string') throw new InvalidArgumentError(pair);
  const notifier: NotifierOptions = { ...pair };
  const parts = head[3] === undefined ? [] : splitOptions(head[3]);
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    const eq = part.indexOf('=');
    const key = eq === -1 ? part : part.slice(0, eq);
    const value = eq === -1 ? undefined : part.slice(eq + 1);
    const needValue = (): string => {
      if (value === undefined || value === '') throw new InvalidArgumentError(`${key} needs a value: ${key}=...`);
      return value;
    };
    const parsed = <T>(parse: (v: string) => T): T => {
      try {
        return parse(needValue());
      } catch (error) {
        if (error instanceof InvalidArgumentError) throw new InvalidArgumentError(`${key}: ${error.message}`);
        throw error;
      }
    };
    switch (key) {
      case 'kern-log':
        if (value !== undefined) throw new InvalidArgumentError('kern-log takes no value');
        notifier.kernLog = true;
        break;
      case 'cmd':
        notifier.cmd = parsed(integer(0, 0xffffffff));
        break;
      case 'mount-id':
        notifier.mountId = parsed(mountId);
        break;
      case 'threshold':
        notifier.threshold = parsed(percent);
        break;
      case 'threshold-inodes':
        notifier.thresholdInodes = parsed(percent);
        break;
      case 'threshold-bytes':
        notifier.thresholdBytes = parsed(size);
        break;
      case 'hysteresis':
        notifier.hysteresis = parsed(integer(0, 1000));
        break;
      case 'interval-ms':
        notifier.intervalMs = parsed(integer(100, 3_600_000));
        break;
      case 'path-prefix':
        // splitOptions() left the rest of the spec, separators included, as the path.
        notifier.pathPrefix = needValue();
        if (!notifier.pathPrefix.startsWith('/')) throw new InvalidArgumentError('path-prefix must be an absolute path');
        break;
      default:
        throw new InvalidArgumentError(`unknown notifier option "${part}"; the options are ${NOTIFIER_OPTIONS}`);
    }
  }
  const lowSpace = LOW_SPACE_KEYS.filter((key) => notifier[key] !== undefined);
  if (notifier.action !== 'low-space' && lowSpace.length > 0) {
    throw new InvalidArgumentError(`${optionName(lowSpace[0]!)} is for low-space notifiers only`);
  }
  if (notifier.action === 'low-space') {
    const thresholds = (['threshold', 'thresholdInodes', 'thresholdBytes'] as const).filter((key) => notifier[key] !== undefined);
    if (thresholds.length !== 1) {
      throw new InvalidArgumentError('a low-space notifier needs exactly one of threshold=N%, threshold-inodes=N%, threshold-bytes=SIZE');
    }
  }
  return notifier;
}

/** The command-line spelling of a low-space option (thresholdInodes -> threshold-inodes). */
function optionName(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** The options after TYPE:ACTION, split at ':' and ','; path-prefix=... takes the rest verbatim. */
function splitOptions(rest: string): string[] {
  const out: string[] = [];
  let at = 0;
  while (at <= rest.length) {
    if (rest.startsWith('path-prefix=', at)) {
      out.push(rest.slice(at));
      break;
    }
    const next = rest.slice(at).search(/[:,]/);
    if (next === -1) {
      out.push(rest.slice(at));
      break;
    }
    out.push(rest.slice(at, at + next));
    at += next + 1;
  }
  return out;
}

/** Nanoseconds since the epoch as an ISO time with all nine digits. */
export function isoTime(ns: bigint): string {
  const ms = new Date(Number(ns / 1_000_000n)).toISOString();
  return `${ms.slice(0, -4)}${(ns % 1_000_000_000n).toString().padStart(9, '0')}Z`;
}

/**
 * An item of `usip listen --json`: the item as the client decoded it (type, action and the
 * storage events' enums by their spec names, ids as numbers); toJson writes 64-bit counters as
 * strings. An event of a newer module is `{ kind: 'unknown-event', operation, attributes }`,
 * its attributes as numbers.
 */
export function itemJson(item: ListenerItem): Record<string, unknown> {
  return { ...item };
}

/** An item of `usip listen` as one line for people. */
export function formatItem(item: ListenerItem): string {
  if (item.kind === 'overrun') {
    return `overrun: messages to this listener were lost${item.lost === undefined ? '' : ` (${item.lost})`}; the next event's missed count tells how many events\n`;
  }
  if (item.kind === 'missed') {
    return `missed: ${item.missed} events for this listener were lost (the module's event queue was full)\n`;
  }
  if (item.kind === 'unknown-event') {
    const { type, action, seq } = item.attributes;
    return `unknown event: a ${item.operation} of type ${enumName(protocol.EVENT_TYPE_NAMES, type) ?? '?'} and action ${enumName(protocol.ACTION_NAMES, action) ?? '?'}${seq === undefined ? '' : ` (seq ${seq})`} that this usip does not know (a newer module?)\n`;
  }
  const fields: [string, string | undefined][] = [
    ['seq', item.seq.toString()],
    ['missed', item.missed ? String(item.missed) : undefined],
    ['listener', item.listenerId?.toString()],
    ['cmd', item.cmd?.toString()],
    ['path', item.path === undefined ? undefined : quote(item.path)],
    ['mount-id', item.mountId?.toString()],
    ['parent-id', 'parentId' in item ? item.parentId?.toString() : undefined],
    ['fs-type', item.fsType === undefined ? undefined : quote(item.fsType)],
    ['source', item.source === undefined ? undefined : quote(item.source)],
    ['dev', item.dev === undefined ? undefined : decodeDev(item.dev)],
    ['count', 'count' in item ? item.count?.toString() : undefined],
    ['space-state', 'spaceState' in item ? item.spaceState : undefined],
    ['bytes-available', 'bytesAvailable' in item ? item.bytesAvailable?.toString() : undefined],
    ['bytes-total', 'bytesTotal' in item ? item.bytesTotal?.toString() : undefined],
    ['files-free', 'filesFree' in item ? item.filesFree?.toString() : undefined],
    ['files-total', 'filesTotal' in item ? item.filesTotal?.toString() : undefined],
    ['pid', 'pid' in item ? item.pid?.toString() : undefined],
    ['uid', 'uid' in item ? item.uid?.toString() : undefined],
    ['comm', 'comm' in item && item.comm !== undefined ? quote(item.comm) : undefined],
    ['syscall', 'syscall' in item ? item.syscall : undefined],
    ['ino', 'ino' in item ? item.ino?.toString() : undefined],
    ['quota-type', 'quotaType' in item ? item.quotaType : undefined],
    ['quota-id', 'quotaId' in item ? item.quotaId?.toString() : undefined],
    ['quota-warning', 'quotaWarning' in item ? item.quotaWarning : undefined],
    ['mnt-ns', item.mntNs.toString()],
  ];
  const rest = fields.filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`);
  return `${isoTime(item.timestamp)} ${item.type}/${item.action} ${rest.join(' ')}\n`;
}

export interface ListenOptions {
  notifier: NotifierOptions[];
  global?: boolean;
  json?: boolean;
  count?: number;
  receiveBufferSize?: number;
}

/**
 * Registers a listener and prints its items until SIGINT/SIGTERM, a closed stdout, or `count`
 * events (overruns do not count). A line on stderr says when the listener is registered.
 */
export async function listen(client: UsipClient, options: ListenOptions): Promise<void> {
  const listener = await client.register({
    global: options.global ?? false,
    notifiers: options.notifier,
    ...(options.receiveBufferSize === undefined ? {} : { receiveBufferSize: options.receiveBufferSize }),
  });
  await client.close();
  await untilStopped(
    () => listener.close(),
    async () => {
      // Said once SIGINT and SIGTERM are handled: a script may signal as soon as it reads this.
      process.stderr.write(
        `usip: listening: listener ${listener.id}, scope ${listener.scope}, mnt-ns ${listener.mntNs}, groups ${listener.groups.join(', ')}\n`,
      );
      let events = 0;
      for await (const item of listener) {
        process.stdout.write(options.json ? `${toJson(itemJson(item))}\n` : formatItem(item));
        if (item.kind !== 'overrun' && item.kind !== 'missed' && options.count !== undefined && ++events >= options.count) break;
      }
    },
  );
}
