import type { ListenerInfo, NotifierInfo, protocol } from '@usip/client';

/**
 * A listener in `usip listeners --json`: keys are the spec's names camelCased, names (scope,
 * type, action, flags) the spec's own, 64-bit counters as strings.
 */
export interface ListenerJson {
  id: number;
  scope: protocol.ScopeName;
  global: boolean;
  mntNs: number;
  ownerPid: number;
  ownerUid: number;
  portId: number;
  groups: string[];
  delivered: bigint;
  missed: bigint;
  notifiers: NotifierJson[];
}

export interface NotifierJson {
  type: protocol.EventTypeName;
  action: protocol.ActionName;
  flags: protocol.NotifierFlagsName[];
  cmd?: number;
  mountId?: number;
  pathPrefix?: string;
  threshold?: number;
  thresholdInodes?: number;
  thresholdBytes?: bigint;
  hysteresis?: number;
  intervalMs?: number;
}

function notifierJson(n: NotifierInfo): NotifierJson {
  const out: NotifierJson = {
    type: n.type,
    action: n.action,
    flags: [...(n.notify ? (['notify'] as const) : []), ...(n.kernLog ? (['kern-log'] as const) : [])],
  };
  if (n.cmd !== undefined) out.cmd = n.cmd;
  if (n.mountId !== undefined) out.mountId = n.mountId;
  if (n.pathPrefix !== undefined) out.pathPrefix = n.pathPrefix;
  if (n.threshold !== undefined) out.threshold = n.threshold;
  if (n.thresholdInodes !== undefined) out.thresholdInodes = n.thresholdInodes;
  if (n.thresholdBytes !== undefined) out.thresholdBytes = n.thresholdBytes;
  if (n.hysteresis !== undefined) out.hysteresis = n.hysteresis;
  if (n.intervalMs !== undefined) out.intervalMs = n.intervalMs;
  return out;
}

export function listenerJson(info: ListenerInfo): ListenerJson {
  return {
    id: info.id,
    scope: info.scope,
    global: info.global,
    mntNs: info.mntNs,
    ownerPid: info.ownerPid,
    ownerUid: info.ownerUid,
    portId: info.portId,
    groups: info.groups,
    delivered: info.delivered,
    missed: info.missed,
    notifiers: info.notifiers.map(notifierJson),
  };
}

/** One notifier in a table cell: `mtab/mount:notify,kern-log[cmd=3,path-prefix=/mnt]`. */
export function formatNotifier(n: NotifierJson): string {
  const selectors = [
    n.cmd !== undefined ? `cmd=${n.cmd}` : '',
    n.mountId !== undefined ? `mount-id=${n.mountId}` : '',
    n.pathPrefix !== undefined ? `path-prefix=${n.pathPrefix}` : '',
    n.threshold !== undefined ? `threshold=${n.threshold}%` : '',
    n.thresholdInodes !== undefined ? `threshold-inodes=${n.thresholdInodes}%` : '',
    n.thresholdBytes !== undefined ? `threshold-bytes=${n.thresholdBytes}` : '',
    n.hysteresis !== undefined ? `hysteresis=${n.hysteresis}` : '',
    n.intervalMs !== undefined ? `interval-ms=${n.intervalMs}` : '',
  ].filter((s) => s !== '');
  return `${n.type}/${n.action}:${n.flags.join(',')}${selectors.length > 0 ? `[${selectors.join(',')}]` : ''}`;
}

const COLUMNS = ['ID', 'SCOPE', 'MNT-NS', 'PID', 'UID', 'DELIVERED', 'MISSED', 'NOTIFIERS'] as const;

/** The table of `usip listeners`: one row per listener, notifiers last (the wide column). */
export function formatListeners(listeners: ListenerJson[]): string {
  if (listeners.length === 0) return 'no listeners (among those this user may see in this network namespace)\n';
  const rows = listeners.map((l) => [
    String(l.id),
    l.scope,
    String(l.mntNs),
    String(l.ownerPid),
    String(l.ownerUid),
    String(l.delivered),
    String(l.missed),
    l.notifiers.map(formatNotifier).join(' '),
  ]);
  const widths = COLUMNS.map((title, i) => Math.max(title.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(COLUMNS), ...rows.map(line)].join('\n') + '\n';
}
