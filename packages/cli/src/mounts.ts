// usip mounts, usip mount and usip watch: the mount table as a table (findmnt's list view) or a
// tree, one mount with every field, and its changes as a live stream (findmnt --poll).
import { escapeMountinfo, MountWatcher, type MountChange, type MountInfo, type MountTableWatcher, type UsipMounts } from '@usip/client';
import { quote, toJson, untilStopped } from './common.js';

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

/**
 * findmnt's OPTIONS: the per-mount options, then the file system's, without the "ro"/"rw" the
 * latter repeat.
 */
export function allOptions(mount: MountInfo): string {
  const fs = mount.superOptions.replace(/^r[ow](,|$)/, '');
  return fs === '' ? mount.options : `${mount.options},${fs}`;
}

/** A value in a space-separated column: mountinfo's escapes for space, tab, newline, backslash. */
const cell = (value: string) => (value === '' ? '""' : escapeMountinfo(value));

const COLUMNS = ['ID', 'PARENT', 'TARGET', 'SOURCE', 'FSTYPE', 'OPTIONS'] as const;
const RIGHT = [true, true, false, false, false, false];

function table(rows: string[][]): string {
  const widths = COLUMNS.map((title, i) => Math.max(title.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((value, i) => (i === cells.length - 1 ? value : RIGHT[i] ? value.padStart(widths[i]!) : value.padEnd(widths[i]!)))
      .join(' ')
      .trimEnd();
  return `${[line(COLUMNS), ...rows.map(line)].join('\n')}\n`;
}

function row(mount: MountInfo, target: string): string[] {
  return [String(mount.id), String(mount.parentId), target, cell(mount.source), cell(mount.fsType), allOptions(mount)];
}

/** `usip mounts`: one row per mount, in the namespace's order, like `findmnt -l`. */
export function formatMountTable(mounts: readonly MountInfo[]): string {
  return table(mounts.map((m) => row(m, cell(m.mountPoint))));
}

/** `usip mounts --tree`: the same rows, each mount below its parent, like `findmnt`. */
export function formatMountTree(mounts: readonly MountInfo[]): string {
  const ids = new Set(mounts.map((m) => m.id));
  const children = new Map<number, MountInfo[]>();
  const roots: MountInfo[] = [];
  for (const mount of mounts) {
    if (mount.parentId === mount.id || !ids.has(mount.parentId)) roots.push(mount);
    else {
      const list = children.get(mount.parentId);
      if (list === undefined) children.set(mount.parentId, [mount]);
      else list.push(mount);
    }
  }
  const rows: string[][] = [];
  const seen = new Set<number>();
  const visit = (mount: MountInfo, lead: string, branch: string) => {
    if (seen.has(mount.id)) return;
    seen.add(mount.id);
    rows.push(row(mount, `${branch}${cell(mount.mountPoint)}`));
    const below = children.get(mount.id) ?? [];
    below.forEach((child, i) => {
      const last = i === below.length - 1;
      visit(child, `${lead}${last ? '  ' : '│ '}`, `${lead}${last ? '└─' : '├─'}`);
    });
  };
  for (const mount of roots) visit(mount, '', '');
  // A cycle of parents (which a consistent table does not have) still gets its rows.
  for (const mount of mounts) visit(mount, '', '');
  return table(rows);
}

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

export const WATCH_HEADER = `${'ACTION'.padEnd(7)} ${'ID'.padStart(6)} TARGET SOURCE FSTYPE OPTIONS\n`;

/** A change of `usip watch` for people: ACTION ID TARGET SOURCE FSTYPE OPTIONS, like findmnt --poll. */
export function formatChange(change: MountChange): string {
  if (change.kind === 'resync') {
    return (
      `${'resync'.padEnd(7)} ${'-'.padStart(6)} ${change.reason}: read the table again at ns-seq ${change.nsSeq} ` +
      `(${change.mounts} mounts): ${change.added} added, ${change.removed} removed, ${change.changed} changed\n`
    );
  }
  const { mount } = change;
  return `${change.kind.padEnd(7)} ${String(mount.id).padStart(6)} ${cell(mount.mountPoint)} ${cell(mount.source)} ${cell(mount.fsType)} ${allOptions(mount)}\n`;
}

export interface WatchCommandOptions {
  json?: boolean;
  count?: number;
  receiveBufferSize?: number;
}

/**
 * Watches the mount table and prints each change until SIGINT/SIGTERM, a closed stdout, or
 * `count` changes (resync items do not count). A line on stderr says when it is watching, and
 * from which backend.
 */
export async function watch(source: UsipMounts, options: WatchCommandOptions): Promise<void> {
  const watcher = await source.watchMounts(options.receiveBufferSize === undefined ? {} : { receiveBufferSize: options.receiveBufferSize });
  source.close();
  process.stderr.write(`usip: watching: ${watchingLine(watcher)}\n`);
  await untilStopped(
    () => watcher.close(),
    async () => {
      if (!options.json) process.stdout.write(WATCH_HEADER);
      let changes = 0;
      for await (const change of watcher) {
        process.stdout.write(options.json ? `${toJson(changeJson(change))}\n` : formatChange(change));
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
