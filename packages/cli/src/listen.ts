import { InvalidArgumentError } from 'commander';
import { protocol, type ListenerItem, type NotifierOptions, type UsipClient } from '@usip/client';
import { decodeDev, enumName, integer, toJson, typedAction, u64, untilStopped } from './common.js';

/**
 * Parses `--notifier TYPE:ACTION[:OPTION]...`, OPTION being kern-log, cmd=N, mount-id=N,
 * threshold=N or path-prefix=PATH (last: the path may contain ':'). Throws InvalidArgumentError
 * naming what is wrong; commander turns it into a usage error that quotes the value.
 */
export function parseNotifier(spec: string): NotifierOptions {
  const parts = spec.split(':');
  if (parts.length < 2 || parts[0] === '' || parts[1] === '') {
    throw new InvalidArgumentError('expected TYPE:ACTION[:OPTION]..., e.g. mtab:mount or mtab:umount:kern-log');
  }
  const pair = typedAction(parts[0]!, parts[1]!);
  if (typeof pair === 'string') throw new InvalidArgumentError(pair);
  const notifier: NotifierOptions = { ...pair };
  for (let i = 2; i < parts.length; i++) {
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
        notifier.mountId = parsed(u64);
        break;
      case 'threshold':
        notifier.threshold = parsed(integer(0, 100));
        break;
      case 'path-prefix':
        // The rest of the spec is the path, colons included.
        notifier.pathPrefix = [needValue(), ...parts.slice(i + 1)].join(':');
        if (!notifier.pathPrefix.startsWith('/')) throw new InvalidArgumentError('path-prefix must be an absolute path');
        i = parts.length;
        break;
      default:
        throw new InvalidArgumentError(
          `unknown notifier option "${part}"; the options are kern-log, cmd=N, mount-id=N, threshold=N, path-prefix=PATH`,
        );
    }
  }
  return notifier;
}

/** Nanoseconds since the epoch as an ISO time with all nine digits. */
export function isoTime(ns: bigint): string {
  const ms = new Date(Number(ns / 1_000_000n)).toISOString();
  return `${ms.slice(0, -4)}${(ns % 1_000_000_000n).toString().padStart(9, '0')}Z`;
}

/** An item of `usip listen --json`: spec names for type and action, 64-bit values as strings. */
export function itemJson(item: ListenerItem): Record<string, unknown> {
  if (item.kind === 'overrun') return { ...item };
  if (item.kind === 'missed') return { ...item };
  const { typeName: _typeName, actionName: _actionName, ...event } = item;
  return {
    ...event,
    type: enumName(protocol.EVENT_TYPE_NAMES, item.type),
    action: enumName(protocol.ACTION_NAMES, item.action),
    ...('quotaType' in item && item.quotaType !== undefined ? { quotaType: enumName(protocol.QUOTA_TYPE_NAMES, item.quotaType) } : {}),
    ...('quotaWarning' in item && item.quotaWarning !== undefined
      ? { quotaWarning: enumName(protocol.QUOTA_WARNING_NAMES, item.quotaWarning) }
      : {}),
  };
}

/** An enum value by its spec name, as text; the number if this client does not know it. */
function named(names: Readonly<Record<number, string>>, value: number | undefined): string | undefined {
  const name = enumName(names, value);
  return name === undefined ? undefined : String(name);
}

function quote(value: string): string {
  return /^[\w./:@+-]+$/.test(value) ? value : JSON.stringify(value);
}

/** An item of `usip listen` as one line for people. */
export function formatItem(item: ListenerItem): string {
  if (item.kind === 'overrun') {
    return `overrun: messages to this listener were lost${item.lost === undefined ? '' : ` (${item.lost})`}; the next event's missed count tells how many events\n`;
  }
  if (item.kind === 'missed') {
    return `missed: ${item.missed} events for this listener were lost (the module's event queue was full)\n`;
  }
  const type = enumName(protocol.EVENT_TYPE_NAMES, item.type) ?? '?';
  const action = enumName(protocol.ACTION_NAMES, item.action) ?? '?';
  const fields: [string, string | undefined][] = [
    ['seq', item.seq?.toString()],
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
    ['pid', item.pid?.toString()],
    ['uid', item.uid?.toString()],
    ['comm', 'comm' in item && item.comm !== undefined ? quote(item.comm) : undefined],
    ['syscall', 'syscall' in item ? item.syscall : undefined],
    ['ino', 'ino' in item ? item.ino?.toString() : undefined],
    ['quota-type', 'quotaType' in item ? named(protocol.QUOTA_TYPE_NAMES, item.quotaType) : undefined],
    ['quota-id', 'quotaId' in item ? item.quotaId?.toString() : undefined],
    ['quota-warning', 'quotaWarning' in item ? named(protocol.QUOTA_WARNING_NAMES, item.quotaWarning) : undefined],
    ['mnt-ns', item.mntNs?.toString()],
  ];
  const time = item.timestamp === undefined ? '-' : isoTime(item.timestamp);
  const rest = fields.filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`);
  return `${time} ${type}/${action} ${rest.join(' ')}\n`;
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
  client.close();
  const scope = protocol.SCOPE_NAMES[protocol.Scope[listener.scope]];
  process.stderr.write(
    `usip: listening: listener ${listener.id}, scope ${scope}, mnt-ns ${listener.mntNs}, groups ${listener.groups.join(', ')}\n`,
  );
  await untilStopped(
    () => listener.close(),
    async () => {
      let events = 0;
      for await (const item of listener) {
        process.stdout.write(options.json ? `${toJson(itemJson(item))}\n` : formatItem(item));
        if (item.kind !== 'overrun' && item.kind !== 'missed' && options.count !== undefined && ++events >= options.count) break;
      }
    },
  );
}
