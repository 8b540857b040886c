// usip mount and usip watch, and usip mounts --dump: one mount with every field, the JSON forms
// with every field, and the changes as a live stream (findmnt --poll; its columns in findmnt.ts).
import { MountWatcher, type MountChange, type MountInfo, type MountTableWatcher, type UsipMounts } from '@usip/client';
import { quote, toJson, untilStopped } from './common.js';
import { changeJsonLine, changeRow, DEFAULT_POLL_COLUMNS, type PollAction, type PollColumn } from './findmnt.js';

/** A mount in --json output: ids as numbers, 64-bit values as decimal strings, fixed key order. */
export function mountJson(mount: MountInfo): Record<string, unknown> {
  const out: Record<string, unknown> = { id: mount.id, parentId: mount.parentId };
  if (mount.uniqueId !== undefined) out.uniqueId = mount.uniqueId;
  out.major = mount.major;
  out.minor = mount.minor;
  out.root = mount.root;
  out.mountPoint = mount.mountPoint;
  out.options = mount.options;
  out.attributes = mount.attributes;
  out.optionalFields = mount.optionalFields;
  if (mount.shared !== undefined) out.shared = mount.shared;
  if (mount.master !== undefined) out.master = mount.master;
  if (mount.propagateFrom !== undefined) out.propagateFrom = mount.propagateFrom;
  out.unbindable = mount.unbindable;
  out.fsType = mount.fsType;
  out.source = mount.source;
  out.superOptions = mount.superOptions;
  if (mount.mntNs !== undefined) out.mntNs = mount.mntNs;
  return out;
}

export { allOptions } from './findmnt.js';

/** `usip mount ID`: every field, one per line. */
export function formatMount(mount: MountInfo): string {
  const rows: [string, string][] = [
    ['parent', String(mount.parentId)],
    ...(mount.uniqueId === undefined ? [] : ([['unique id', String(mount.uniqueId)]] as [string, string][])),
    ['device', `${mount.major}:${mount.minor}`],
    ['root', quote(mount.root)],
    ['mount point', quote(mount.mountPoint)],
    ['options', mount.options],
    ['propagation', mount.optionalFields === '' ? 'private' : mount.optionalFields],
    ['fs type', quote(mount.fsType)],
    ['source', quote(mount.source)],
    ['super options', mount.superOptions],
  ];
  if (mount.mntNs !== undefined) rows.push(['mount namespace', String(mount.mntNs)]);
  const width = Math.max(...rows.map(([key]) => key.length));
  return [`mount ${mount.id}`, ...rows.map(([key, value]) => `  ${key.padEnd(width)}  ${value}`)].join('\n') + '\n';
}

/** A change of `usip watch --json`: the client's change, mounts as in `usip mounts --json`. */
export function changeJson(change: MountChange): Record<string, unknown> {
  if (change.kind === 'resync') return { ...change };
  const out: Record<string, unknown> = { kind: change.kind, nsSeq: change.nsSeq, mount: mountJson(change.mount) };
  if (change.previous !== undefined) out.previous = mountJson(change.previous);
  return out;
}

/** A resync line of `usip watch` for people: why the table was read again, and what changed. */
export function formatResync(change: Extract<MountChange, { kind: 'resync' }>): string {
  return (
    `resync ${change.reason}: read the table again at ns-seq ${change.nsSeq} ` +
    `(${change.mounts} mounts): ${change.added} added, ${change.removed} removed, ${change.changed} changed\n`
  );
}

export interface WatchCommandOptions {
  /** --dump: the client's change objects as JSON lines (every field of the mounts). */
  dump?: boolean;
  /** -J: one JSON object of the columns per change. */
  json?: boolean;
  /** -r: findmnt's raw escaping. */
  raw?: boolean;
  noHeadings?: boolean;
  output?: PollColumn[];
  /** --poll=LIST: only these actions (findmnt's). */
  poll?: PollAction[] | true;
  count?: number;
  receiveBufferSize?: number;
}

/** One line of `usip watch` for a change, in the form the options ask for. */
export function watchLine(change: MountChange, options: WatchCommandOptions): string {
  if (options.dump) return `${toJson(changeJson(change))}\n`;
  if (change.kind === 'resync') {
    return options.json ? `${toJson({ action: 'resync', ...change })}\n` : formatResync(change);
  }
  const columns = options.output ?? DEFAULT_POLL_COLUMNS;
  if (options.json) return changeJsonLine(change, columns);
  return `${changeRow(change, columns, options.raw === true).join(' ')}\n`;
}

/** Whether --poll=LIST lets a change through (a resync always goes through: it says what was missed). */
export function pollPasses(change: MountChange, poll: WatchCommandOptions['poll']): boolean {
  return change.kind === 'resync' || poll === undefined || poll === true || poll.includes(change.kind);
}

/**
 * Watches the mount table and prints each change until SIGINT/SIGTERM, a closed stdout, or
 * `count` changes (resync items do not count). A line on stderr says when it is watching, and
 * from which backend.
 */
export async function watch(source: UsipMounts, options: WatchCommandOptions): Promise<void> {
  const watcher = await source.watchMounts(options.receiveBufferSize === undefined ? {} : { receiveBufferSize: options.receiveBufferSize });
  await source.close();
  await untilStopped(
    () => watcher.close(),
    async () => {
      // Said once SIGINT and SIGTERM are handled: a script may signal as soon as it reads this.
      process.stderr.write(`usip: watching: ${watchingLine(watcher)}\n`);
      if (!options.dump && !options.json && !options.noHeadings) process.stdout.write(`${(options.output ?? DEFAULT_POLL_COLUMNS).join(' ')}\n`);
      let changes = 0;
      for await (const change of watcher) {
        if (!pollPasses(change, options.poll)) continue;
        process.stdout.write(watchLine(change, options));
        if (change.kind !== 'resync' && options.count !== undefined && ++changes >= options.count) break;
      }
    },
  );
}

/** What `usip watch` says on stderr once it watches: the module's listener, or the backend and why. */
export function watchingLine(watcher: MountTableWatcher & { listenerId?: number; fallbackReason?: string }): string {
  if (watcher instanceof MountWatcher) {
    return `${watcher.table.size} mounts, ns-seq ${watcher.nsSeq}, mnt-ns ${watcher.mntNs}, listener ${watcher.listenerId}`;
  }
  const how = watcher.backend === 'kernel' ? 'fanotify mount events + mountinfo poll for remounts' : 'mountinfo poll';
  const why = watcher.fallbackReason === undefined ? '' : ` (${watcher.fallbackReason})`;
  return `${watcher.table.size} mounts, mnt-ns ${watcher.mntNs}, backend ${watcher.backend}: ${how}${why}`;
}
