// `usip mounts` and `usip watch` as findmnt prints them (util-linux 2.38's findmnt and
// findmnt --poll): its column names, defaults, tree, list, raw and JSON forms, -t and -T.
import type { MountChange, MountInfo, StatfsUsage, UsipMounts } from '@usip/client';
import { InvalidArgumentError } from 'commander';
import { humanSize } from './devices.js';
import { displayWidth, layout, type TableColumn } from './table.js';

interface ColumnDef {
  /** What `--help` says it is (findmnt's words). */
  help: string;
  /** Right-aligned (numbers). */
  right?: boolean;
  /** Cut first when the table is wider than the terminal (findmnt's truncatable columns). */
  truncate?: boolean;
  /** A number in -J output, as findmnt writes it. */
  number?: boolean;
  /**
   * findmnt's width hint: libsmartcols widens a column to it when its widest cell is at least
   * as wide as the header but narrower than the hint ("296K" under USED: 5 wide; "0": 4).
   */
  hint?: number;
}

/** findmnt's usage columns: statfs(2) of the mount (sizes right-aligned, numbers in -J with -b). */
const USAGE_COLUMNS = {
  AVAIL: { help: 'filesystem size available', right: true, hint: 5 },
  SIZE: { help: 'filesystem size', right: true, hint: 5 },
  USED: { help: 'filesystem size used', right: true, hint: 5 },
  'USE%': { help: 'filesystem use percentage', right: true, hint: 3 },
} as const satisfies Record<string, ColumnDef>;

/** The columns that need a statfs of each mount shown. */
export const USAGE_COLUMN_NAMES = Object.keys(USAGE_COLUMNS) as readonly (keyof typeof USAGE_COLUMNS)[];

/** findmnt's columns that the mount table (and statfs) has, in findmnt's --help order. */
export const MOUNT_COLUMNS = {
  AVAIL: USAGE_COLUMNS.AVAIL,
  FSROOT: { help: 'filesystem root' },
  FSTYPE: { help: 'filesystem type', truncate: true },
  'FS-OPTIONS': { help: 'FS specific mount options', truncate: true },
  ID: { help: 'mount ID', right: true, number: true },
  'MAJ:MIN': { help: 'major:minor device number' },
  OPTIONS: { help: 'all mount options', truncate: true },
  'OPT-FIELDS': { help: 'optional mount fields', truncate: true },
  PARENT: { help: 'mount parent ID', right: true, number: true },
  PROPAGATION: { help: 'VFS propagation flags' },
  SIZE: USAGE_COLUMNS.SIZE,
  SOURCE: { help: 'source device' },
  TARGET: { help: 'mountpoint' },
  USED: USAGE_COLUMNS.USED,
  'USE%': USAGE_COLUMNS['USE%'],
  'VFS-OPTIONS': { help: 'VFS specific mount options', truncate: true },
} as const satisfies Record<string, ColumnDef>;

const { AVAIL: _avail, SIZE: _size, USED: _used, 'USE%': _usePercent, ...TABLE_COLUMNS } = MOUNT_COLUMNS;

/**
 * The columns of `usip watch` (findmnt --poll's): the mount's, and what a change replaced; not
 * the usage columns (a mount that went cannot be statfs'd).
 */
export const POLL_COLUMNS = {
  ...TABLE_COLUMNS,
  ACTION: { help: 'action detected by --poll' },
  'OLD-TARGET': { help: 'old mountpoint saved by --poll' },
  'OLD-OPTIONS': { help: 'old mount options saved by --poll', truncate: true },
} as const satisfies Record<string, ColumnDef>;

export type MountColumn = keyof typeof MOUNT_COLUMNS;
export type PollColumn = keyof typeof POLL_COLUMNS;

export const DEFAULT_MOUNT_COLUMNS: readonly MountColumn[] = ['TARGET', 'SOURCE', 'FSTYPE', 'OPTIONS'];
export const DEFAULT_POLL_COLUMNS: readonly PollColumn[] = ['ACTION', 'TARGET', 'SOURCE', 'FSTYPE', 'OPTIONS'];

/** The actions of `usip watch --poll=LIST` (findmnt's). */
export const POLL_ACTIONS = ['mount', 'umount', 'remount', 'move'] as const;
export type PollAction = (typeof POLL_ACTIONS)[number];

/**
 * An -o value: column names, comma-separated, any case; `+LIST` appends to the defaults, as in
 * findmnt. An unknown name is a usage error naming it.
 */
export function columnParser<C extends string>(known: Readonly<Record<C, ColumnDef>>, defaults: readonly C[]): (value: string) => C[] {
  return (value) => {
    const append = value.startsWith('+');
    const names = (append ? value.slice(1) : value).split(',');
    const out: C[] = append ? [...defaults] : [];
    for (const raw of names) {
      const name = raw.trim().toUpperCase();
      if (!Object.hasOwn(known, name)) {
        throw new InvalidArgumentError(`unknown column "${raw}"; the columns are ${Object.keys(known).join(', ')}`);
      }
      out.push(name as C);
    }
    return out;
  };
}

/** A --poll value: actions, comma-separated. */
export function pollActions(value: string): PollAction[] {
  return value.split(',').map((raw) => {
    const name = raw.trim().toLowerCase();
    if (!(POLL_ACTIONS as readonly string[]).includes(name)) {
      throw new InvalidArgumentError(`unknown action "${raw}"; the actions are ${POLL_ACTIONS.join(', ')}`);
    }
    return name as PollAction;
  });
}

/** findmnt's OPTIONS: the per-mount options, then the file system's without their repeated ro/rw. */
export function allOptions(mount: MountInfo): string {
  const fs = mount.superOptions.replace(/^r[ow](,|$)/, '');
  return fs === '' ? mount.options : `${mount.options},${fs}`;
}

/** findmnt's PROPAGATION: shared or private, then slave and unbindable when they apply. */
export function propagation(mount: MountInfo): string {
  let out = mount.shared !== undefined ? 'shared' : 'private';
  if (mount.master !== undefined) out += ',slave';
  if (mount.unbindable) out += ',unbindable';
  return out;
}

/** findmnt's SOURCE: the source, and the root within the file system when it is not "/". */
export function sourceOf(mount: MountInfo): string {
  return mount.root === '/' || mount.root === '' ? mount.source : `${mount.source}[${mount.root}]`;
}

/** A cell: text, a number (ids), an exact 64-bit number (sizes with -b), or empty (null). */
type Value = string | number | bigint | null;

/** What the usage columns need: each mount's statfs (absent when it failed, as findmnt leaves the cells empty), and -b. */
export interface UsageView {
  usage: ReadonlyMap<number, StatfsUsage>;
  /** -b: sizes in bytes (JSON numbers), not for people. */
  bytes?: boolean;
}

/**
 * A size as findmnt writes it for people: "0", or powers of 1024 with a one-letter suffix and
 * at most one decimal (libcommon's size_to_human_string, as lsblk).
 */
export function findmntSize(bytes: bigint): string {
  return bytes === 0n ? '0' : humanSize(bytes);
}

/**
 * The usage of every mount, by mount id, from the backend's statfsAll. A mount whose statfs
 * failed has none (findmnt leaves its cells empty). Without the module a mount hidden below
 * another on its mount point cannot be reached by path; findmnt, which statfs's the path, shows
 * the top one's usage there, and so does this.
 */
export async function mountUsage(source: Pick<UsipMounts, 'statfsAll'>): Promise<Map<number, StatfsUsage>> {
  const infos = await source.statfsAll();
  const out = new Map<number, StatfsUsage>();
  for (const info of infos) {
    let usage = info.usage;
    if (info.error?.code === 'USIP_OVERMOUNTED') {
      usage = infos.findLast((other) => other.mountPoint === info.mountPoint && other.usage !== undefined)?.usage;
    }
    if (usage !== undefined) out.set(info.id, usage);
  }
  return out;
}

/**
 * findmnt's USE%: used blocks (f_blocks - f_bfree) over f_blocks, printf's "%.0f%%" (ties to
 * even); "-" when the file system has no blocks (proc, sysfs).
 */
export function usePercent(usage: StatfsUsage): string {
  if (usage.blocks === 0n) return '-';
  const used = usage.blocks - usage.blocksFree;
  // Exact in integers: percent = 100 * used / blocks, rounded to nearest, ties to even.
  const scaled = 100n * used;
  let whole = scaled / usage.blocks;
  const twice = 2n * (scaled % usage.blocks);
  if (twice > usage.blocks || (twice === usage.blocks && whole % 2n === 1n)) whole += 1n;
  return `${whole}%`;
}

function usageValue(mount: MountInfo, column: keyof typeof USAGE_COLUMNS, view: UsageView | undefined): Value {
  const usage = view?.usage.get(mount.id);
  if (usage === undefined) return null;
  if (column === 'USE%') return usePercent(usage);
  const blocks = column === 'SIZE' ? usage.blocks : column === 'AVAIL' ? usage.blocksAvailable : usage.blocks - usage.blocksFree;
  const bytes = blocks * usage.frsize;
  return view?.bytes ? bytes : findmntSize(bytes);
}

/** A mount's value in a column, as a string (null for an empty cell) or, for -J, a number. */
export function mountValue(mount: MountInfo, column: MountColumn, padDevice = false, usage?: UsageView): Value {
  switch (column) {
    case 'SIZE':
    case 'AVAIL':
    case 'USED':
    case 'USE%':
      return usageValue(mount, column, usage);
    case 'TARGET':
      return mount.mountPoint;
    case 'SOURCE':
      return sourceOf(mount);
    case 'FSTYPE':
      return mount.fsType;
    case 'OPTIONS':
      return allOptions(mount);
    case 'VFS-OPTIONS':
      return mount.options;
    case 'FS-OPTIONS':
      return mount.superOptions;
    case 'FSROOT':
      return mount.root;
    case 'PROPAGATION':
      return propagation(mount);
    case 'ID':
      return mount.id;
    case 'PARENT':
      return mount.parentId;
    case 'MAJ:MIN':
      // findmnt lines the table's device numbers up on the colon ("%3u:%-3u").
      return padDevice ? `${String(mount.major).padStart(3)}:${String(mount.minor).padEnd(3)}` : `${mount.major}:${mount.minor}`;
    case 'OPT-FIELDS':
      return mount.optionalFields === '' ? null : mount.optionalFields;
  }
}

/** A change's value in a --poll column. */
export function changeValue(change: Exclude<MountChange, { kind: 'resync' }>, column: PollColumn, padDevice = false): Value {
  switch (column) {
    case 'ACTION':
      return change.kind;
    // As findmnt --poll: the old target of a move, the old options of a remount, and for an
    // umount what went.
    case 'OLD-TARGET':
      if (change.kind === 'umount') return change.mount.mountPoint;
      return change.kind === 'move' && change.previous !== undefined ? change.previous.mountPoint : null;
    case 'OLD-OPTIONS':
      if (change.kind === 'umount') return allOptions(change.mount);
      return change.kind === 'remount' && change.previous !== undefined ? allOptions(change.previous) : null;
    default:
      return mountValue(change.mount, column, padDevice);
  }
}

/**
 * findmnt -r's escaping (libsmartcols' raw output): every byte that is a blank, a backslash, a
 * control character or not ASCII is written \xHH, so a line splits on spaces into its columns.
 */
export function rawEscape(value: string): string {
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    out += byte <= 0x20 || byte === 0x5c || byte >= 0x7f ? `\\x${byte.toString(16).padStart(2, '0')}` : String.fromCharCode(byte);
  }
  return out;
}

/** findmnt's table escaping: control characters as \xHH (a name stays on its line); the rest as is. */
export function tableEscape(value: string): string {
  return value.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/**
 * -t's list, as libmount matches it: comma-separated types; "no" before the first negates the
 * whole list ("nosysfs,proc": neither), "no" before a later one excludes just that one.
 */
export function matchesTypes(fsType: string, pattern: string): boolean {
  let negated = false;
  let list = pattern;
  if (list.startsWith('no')) {
    negated = true;
    list = list.slice(2);
  }
  const type = fsType.toLowerCase();
  for (const item of list.split(',')) {
    const lower = item.toLowerCase();
    if (lower.startsWith('no') && lower.slice(2) === type) return false;
    if (lower === type) return !negated;
  }
  return negated;
}

export interface FindmntView<C extends string> {
  columns: readonly C[];
  /** -r: one line per row, columns one space apart, values escaped (implies a list). */
  raw?: boolean;
  /** -n. */
  noHeadings?: boolean;
  /** The terminal width to fit the table to (only on a terminal, not with -r). */
  width?: number;
}

type Tree = { mount: MountInfo; children: Tree[] };

/**
 * The mounts shown as findmnt's tree: libmount walks the whole table from its root, each
 * mount's children by mount id, and hangs each mount shown below its nearest ancestor that is
 * shown (a filter such as -t may leave out the parent); the others are roots.
 */
function forest(shown: readonly MountInfo[], table: readonly MountInfo[] = shown): Tree[] {
  const ids = new Set(table.map((m) => m.id));
  const shownIds = new Set(shown.map((m) => m.id));
  const below = new Map<number, MountInfo[]>();
  const tops: MountInfo[] = [];
  for (const mount of table) {
    if (mount.parentId === mount.id || !ids.has(mount.parentId)) tops.push(mount);
    else below.set(mount.parentId, [...(below.get(mount.parentId) ?? []), mount]);
  }
  for (const list of below.values()) list.sort((a, b) => a.id - b.id);
  const roots: Tree[] = [];
  const seen = new Set<number>();
  const walk = (mount: MountInfo, anchor: Tree | undefined) => {
    if (seen.has(mount.id)) return;
    seen.add(mount.id);
    let next = anchor;
    if (shownIds.has(mount.id)) {
      next = { mount, children: [] };
      (anchor === undefined ? roots : anchor.children).push(next);
    }
    for (const child of below.get(mount.id) ?? []) walk(child, next);
  };
  for (const mount of tops) walk(mount, undefined);
  // A cycle of parents (which a consistent table does not have) still gets its rows.
  for (const mount of table) walk(mount, undefined);
  return roots;
}

function headerCells<C extends string>(columns: readonly C[]): string[] {
  return [...columns];
}

/**
 * `usip mounts` for people and for scripts: findmnt's tree (`tree`), or its list, as a table
 * (headings unless -n) or raw (-r).
 */
export function formatMounts(mounts: readonly MountInfo[], view: FindmntView<MountColumn> & { tree: boolean; table?: readonly MountInfo[]; usage?: UsageView }): string {
  const { columns } = view;
  const pad = !view.raw;
  const escape = view.raw ? rawEscape : tableEscape;
  const text = (v: Value) => (v === null ? '' : escape(String(v)));
  const rows: string[][] = [];
  // findmnt draws the tree in TARGET; without that column the rows keep the tree's order.
  const at = columns.indexOf('TARGET');
  if (view.tree && !view.raw) {
    const walk = (trees: Tree[], lead: string, top: boolean) => {
      trees.forEach(({ mount, children }, i) => {
        const last = i === trees.length - 1;
        const cells = columns.map((c) => text(mountValue(mount, c, pad, view.usage)));
        if (at >= 0) cells[at] = `${top ? '' : `${lead}${last ? '└─' : '├─'}`}${cells[at]}`;
        rows.push(cells);
        walk(children, top ? '' : `${lead}${last ? '  ' : '│ '}`, false);
      });
    };
    walk(forest(mounts, view.table), '', true);
  } else {
    for (const mount of mounts) rows.push(columns.map((c) => text(mountValue(mount, c, pad, view.usage))));
  }
  return formatRows(rows, columns, MOUNT_COLUMNS, view);
}

/** Rows as findmnt prints them: raw lines, or a table laid out (and fitted to the terminal). */
export function formatRows<C extends string>(rows: string[][], columns: readonly C[], defs: Readonly<Record<C, ColumnDef>>, view: FindmntView<C>): string {
  if (view.raw) return (view.noHeadings ? rows : [headerCells(columns), ...rows]).map((row) => `${row.join(' ')}\n`).join('');
  const layoutColumns: TableColumn[] = columns.map((c, i) => {
    const { right, truncate, hint } = defs[c] as ColumnDef;
    const widest = Math.max(0, ...rows.map((row) => displayWidth(row[i]!)));
    return {
      align: right ? 'right' : 'left',
      truncate: truncate === true,
      minWidth: displayWidth(c),
      ...(hint !== undefined && widest >= displayWidth(c) ? { atLeast: hint } : {}),
    };
  });
  // Columns are as wide as their header even without it (-n), as in findmnt.
  const text = layout([headerCells(columns), ...rows], layoutColumns, view.width);
  return view.noHeadings ? text.slice(text.indexOf('\n') + 1) : text;
}

/** One JSON object of a row: the column names in lower case as keys, numbers where findmnt has them. */
function jsonObject<C extends string>(columns: readonly C[], defs: Readonly<Record<C, ColumnDef>>, value: (c: C) => Value): Record<string, Value> {
  const out: Record<string, Value> = {};
  for (const c of columns) {
    const v = value(c);
    out[c.toLowerCase()] = v === null || v === '' ? null : typeof v === 'bigint' ? v : (defs[c] as ColumnDef).number ? Number(v) : String(v);
  }
  return out;
}

/** A marker JSON.stringify leaves in a string, so that a bigint can be written as its exact digits. */
const BIG = '\u0000usip-bigint:';

/** JSON.stringify with bigints as JSON numbers of their exact digits (sizes past 2^53 bytes stay exact). */
function stringify(value: unknown, indent?: number): string {
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? `${BIG}${v}` : v), indent).replace(/"\\u0000usip-bigint:(\d+)"/g, '$1');
}

/** `usip mounts -J`: findmnt -J's document, {"filesystems": [...]}, submounts as "children" in the tree (with TARGET). */
export function mountsJson(mounts: readonly MountInfo[], view: { columns: readonly MountColumn[]; tree: boolean; table?: readonly MountInfo[]; usage?: UsageView }): string {
  const object = (mount: MountInfo) => jsonObject(view.columns, MOUNT_COLUMNS, (c) => mountValue(mount, c, false, view.usage));
  let filesystems: unknown[];
  if (view.tree && view.columns.includes('TARGET')) {
    const nest = (trees: Tree[]): unknown[] =>
      trees.map(({ mount, children }) => (children.length === 0 ? object(mount) : { ...object(mount), children: nest(children) }));
    filesystems = nest(forest(mounts, view.table));
  } else if (view.tree) {
    // No TARGET, no nesting (findmnt's): the tree's order, flat.
    const flat = (trees: Tree[]): MountInfo[] => trees.flatMap(({ mount, children }) => [mount, ...flat(children)]);
    filesystems = flat(forest(mounts, view.table)).map(object);
  } else {
    filesystems = mounts.map(object);
  }
  // findmnt (libsmartcols) writes "},{" between array elements; the rest is JSON.stringify's layout.
  return `${stringify({ filesystems }, 3).replace(/\},\n\s*\{/g, "},{")}\n`;
}

/** `usip watch` for people: a change as findmnt --poll's row (no header: the caller prints it once). */
export function changeRow(change: Exclude<MountChange, { kind: 'resync' }>, columns: readonly PollColumn[], raw: boolean): string[] {
  const escape = raw ? rawEscape : tableEscape;
  return columns.map((c) => {
    const v = changeValue(change, c);
    return v === null ? '' : escape(String(v));
  });
}

/** `usip watch -J`: a change as one JSON object of its columns. */
export function changeJsonLine(change: Exclude<MountChange, { kind: 'resync' }>, columns: readonly PollColumn[]): string {
  return `${JSON.stringify(jsonObject(columns, POLL_COLUMNS, (c) => changeValue(change, c)))}\n`;
}
