// usip df: file system usage per mount, from the module's statfs, printed as coreutils df
// prints it (its columns, headers, rounding, alignment, and which mounts it leaves out), with
// --json for scripts. A file system that does not answer in time is reported on stderr, as df
// reports a failed statfs, instead of hanging the command.
import { isNetlinkError, statfsError, UsipDumpInterruptedError, UsipSystemError, type MountInfo, type StatfsInfo, type UsipMounts } from '@usip/client';
import { EXIT_FAILURE, quote, toJson } from './common.js';
import { layout, type Align } from './table.js';

/** df's --output fields, in the order `--output` alone prints them. */
export const DF_FIELDS = ['source', 'fstype', 'itotal', 'iused', 'iavail', 'ipcent', 'size', 'used', 'avail', 'pcent', 'file', 'target'] as const;
export type DfField = (typeof DF_FIELDS)[number];

export interface DfOptions {
  /** -a: also pseudo, duplicate and zero-size file systems. */
  all?: boolean;
  /** -h: sizes in powers of 1024 (1.5G). */
  human?: boolean;
  /** -H (--si): sizes in powers of 1000 (1.6G). */
  si?: boolean;
  /** -P: POSIX headers (1024-blocks, Capacity). */
  portability?: boolean;
  /** -l: local file systems only. */
  local?: boolean;
  /** --total: a last row with the sums. */
  total?: boolean;
  /** -i: inodes instead of blocks. */
  inodes?: boolean;
  /** -T: a Type column. */
  printType?: boolean;
  /** --output: these fields (true: all of them). */
  output?: DfField[];
  /** -t: only these types; -x: not these. */
  types?: string[];
  excludeTypes?: string[];
  timeoutMs?: number;
  json?: boolean;
}

/** A --output list, checked as df checks it; throws a message naming the bad field. */
export function parseOutputFields(list: string): DfField[] {
  const fields: DfField[] = [];
  for (const name of list.split(',')) {
    if (!(DF_FIELDS as readonly string[]).includes(name)) {
      throw new Error(`option --output: field ${JSON.stringify(name)} unknown; the fields are ${DF_FIELDS.join(',')}`);
    }
    if (fields.includes(name as DfField)) throw new Error(`option --output: field ${JSON.stringify(name)} used more than once`);
    fields.push(name as DfField);
  }
  return fields;
}

// ---------------------------------------------------------------------------------------------
// Numbers as df writes them

const POWER_LETTERS = ['', 'K', 'M', 'G', 'T', 'P', 'E', 'Z', 'Y', 'R', 'Q'];

/**
 * gnulib's human_readable() as df calls it: `n` units of `from` bytes written in units of `to`
 * bytes, rounded up (df's default); with `autoscale`, in powers of 1024 with a one-letter
 * suffix and one decimal below 10 (df -h: 1.5G, 10G, 1023, 0); `base` 1000 for df -H.
 */
export function humanReadable(n: bigint, from: bigint, to: bigint, autoscale: boolean, base = 1024n): string {
  // amt.tenths and how far the rest lies from a tenth: 0 none, 1 below half, 2 half, 3 above.
  const exact = n * from;
  let amt = exact / to;
  const r10 = (exact % to) * 10n;
  let tenths = r10 / to;
  const r2 = (r10 % to) * 2n;
  let rounding = r2 < to ? (r2 > 0n ? 1 : 0) : 2 + (to < r2 ? 1 : 0);
  let exponent = 0;
  let fraction = '';
  if (autoscale && amt >= base) {
    do {
      const s10 = (amt % base) * 10n + tenths;
      const s2 = (s10 % base) * 2n + BigInt(rounding >> 1);
      amt /= base;
      tenths = s10 / base;
      rounding = s2 < base ? (s2 + BigInt(rounding) !== 0n ? 1 : 0) : 2 + (base < s2 + BigInt(rounding) ? 1 : 0);
      exponent++;
    } while (amt >= base && exponent < POWER_LETTERS.length - 1);
    if (amt < 10n) {
      if (rounding > 0) {
        tenths++;
        rounding = 0;
        if (tenths === 10n) {
          amt++;
          tenths = 0n;
        }
      }
      if (amt < 10n) {
        fraction = `.${tenths}`;
        tenths = 0n;
        rounding = 0;
      }
    }
  }
  if (tenths + BigInt(rounding) > 0n) {
    amt++;
    if (autoscale && amt === base && exponent < POWER_LETTERS.length - 1) {
      exponent++;
      fraction = '.0';
      amt = 1n;
    }
  }
  // SI's kilo is a lower-case k (gnulib writes 1.1k for -H, 1.1K for -h).
  const letter = base === 1000n && exponent === 1 ? 'k' : POWER_LETTERS[exponent];
  return `${amt}${fraction}${letter}`;
}

/** df's Use%: used over used + available, rounded up; "-" when that is 0 or not known. */
export function percent(used: bigint, available: bigint): string {
  const total = used + available;
  if (used < 0n || total <= 0n) return '-';
  const u100 = used * 100n;
  return `${u100 / total + (u100 % total !== 0n ? 1n : 0n)}%`;
}

/** f_bavail is unsigned on the wire; a file system that reports a negative one sets the top bit. */
const signed64 = (value: bigint): bigint => (value >= 1n << 63n ? value - (1n << 64n) : value);

// ---------------------------------------------------------------------------------------------
// Rows

/** One file system as df shows it, before formatting: its mount and its numbers. */
export interface DfEntry {
  info: StatfsInfo;
  /** The mount's root in its file system (mount-get's root), when known: bind mounts prefer
   *  the one nearer the source's root. */
  root?: string;
  /** The file named on the command line (FILE arguments), for the file field. */
  file?: string;
}

/** gnulib's ME_DUMMY: the file system types df leaves out without -a. */
const DUMMY_TYPES = new Set(['autofs', 'proc', 'subfs', 'debugfs', 'devpts', 'fusectl', 'fuse.portal', 'mqueue', 'rpc_pipefs', 'sysfs', 'devfs', 'kernfs', 'ignore', 'none']);

export function isDummy(fsType: string): boolean {
  return DUMMY_TYPES.has(fsType);
}

/** gnulib's ME_REMOTE: a source host:path, //host/share of smbfs/cifs, or -hosts. */
export function isRemote(source: string, fsType: string): boolean {
  return source.includes(':') || (source.startsWith('//') && ['smbfs', 'smb3', 'cifs'].includes(fsType)) || source === '-hosts';
}

const typeSelected = (e: DfEntry, options: Pick<DfOptions, 'types' | 'excludeTypes'>) =>
  (options.types === undefined || options.types.includes(e.info.fsType)) && !(options.excludeTypes ?? []).includes(e.info.fsType);

/**
 * The mounts df lists without -a: one per device, as df's filter_mount_list() chooses it (a
 * source with a '/' wins over one without, then the mount nearer the root unless its source lies
 * deeper in the file system, then a later mount of another source on the same mount point; remote
 * mounts of different sources are all kept), then no pseudo file system, none of the types -t/-x
 * leave out, and none of size 0. Entries whose statfs failed are kept, to be reported.
 */
export function filterLikeDf(entries: readonly DfEntry[], options: Pick<DfOptions, 'types' | 'excludeTypes'>): DfEntry[] {
  // df's device list: the winner of each device, in the order the devices were first seen.
  const devices: { dev: string; entry: DfEntry }[] = [];
  for (const e of entries) {
    const dev = `${e.info.major}:${e.info.minor}`;
    // Pseudo and deselected file systems are not compared with the others (df does not stat them).
    const seenAt = isDummy(e.info.fsType) || !typeSelected(e, options) ? -1 : devices.findLastIndex((d) => d.dev === dev);
    if (seenAt < 0) {
      devices.push({ dev, entry: e });
      continue;
    }
    const seen = devices[seenAt]!.entry;
    const source = e.info.source ?? '';
    const seenSource = seen.info.source ?? '';
    const targetNearerRoot = seen.info.mountPoint.length > e.info.mountPoint.length;
    const sourceBelowRoot = seen.root !== undefined && e.root !== undefined && seen.root.length < e.root.length;
    if (isRemote(source, e.info.fsType) && isRemote(seenSource, seen.info.fsType) && source !== seenSource) {
      devices.push({ dev, entry: e });
    } else if (
      (source.includes('/') && !seenSource.includes('/')) ||
      (targetNearerRoot && !sourceBelowRoot) ||
      (seenSource !== source && e.info.mountPoint === seen.info.mountPoint)
    ) {
      devices[seenAt]!.entry = e;
    }
  }
  return devices
    .map((d) => d.entry)
    .filter((e) => typeSelected(e, options) && !isDummy(e.info.fsType) && (e.info.error !== undefined || e.info.usage.blocks !== 0n));
}

/** The mounts of `usip df -a`: every one, but those of types -t/-x leave out. */
export function filterAll(entries: readonly DfEntry[], options: Pick<DfOptions, 'types' | 'excludeTypes'>): DfEntry[] {
  return entries.filter((e) => typeSelected(e, options));
}

/** Control characters in a cell are shown as '?', as df does. */
// eslint-disable-next-line no-control-regex
const printable = (value: string) => value.replace(/[\u0000-\u001f\u007f]/g, '?');

/** df's minimum width of each column (its field_data table); columns grow to their widest cell. */
const MIN_WIDTH: Record<DfField, number> = {
  source: 14,
  fstype: 4,
  itotal: 5,
  iused: 5,
  iavail: 5,
  ipcent: 4,
  size: 5,
  used: 5,
  avail: 5,
  pcent: 4,
  file: 0,
  target: 0,
};

const ALIGN: Record<DfField, Align> = {
  source: 'left',
  fstype: 'left',
  itotal: 'right',
  iused: 'right',
  iavail: 'right',
  ipcent: 'right',
  size: 'right',
  used: 'right',
  avail: 'right',
  pcent: 'right',
  file: 'left',
  target: 'left',
};

/** -h or -H: sizes with a unit letter. */
const scaled = (options: Pick<DfOptions, 'human' | 'si'>) => options.human === true || options.si === true;

/** The columns df prints for these options, with their headers. */
export function dfColumns(options: DfOptions): { field: DfField; header: string }[] {
  const type = options.printType ? [{ field: 'fstype' as const, header: 'Type' }] : [];
  if (options.output !== undefined) {
    const headers: Record<DfField, string> = {
      source: 'Filesystem',
      fstype: 'Type',
      itotal: 'Inodes',
      iused: 'IUsed',
      iavail: 'IFree',
      ipcent: 'IUse%',
      size: scaled(options) ? 'Size' : '1K-blocks',
      used: 'Used',
      avail: 'Avail',
      pcent: 'Use%',
      file: 'File',
      target: 'Mounted on',
    };
    return options.output.map((field) => ({ field, header: headers[field] }));
  }
  if (options.inodes) {
    return [
      { field: 'source', header: 'Filesystem' },
      ...type,
      { field: 'itotal', header: 'Inodes' },
      { field: 'iused', header: 'IUsed' },
      { field: 'iavail', header: 'IFree' },
      { field: 'ipcent', header: 'IUse%' },
      { field: 'target', header: 'Mounted on' },
    ];
  }
  return [
    { field: 'source', header: 'Filesystem' },
    ...type,
    { field: 'size', header: scaled(options) ? 'Size' : options.portability ? '1024-blocks' : '1K-blocks' },
    { field: 'used', header: 'Used' },
    { field: 'avail', header: scaled(options) ? 'Avail' : 'Available' },
    { field: 'pcent', header: options.portability && !scaled(options) ? 'Capacity' : 'Use%' },
    { field: 'target', header: 'Mounted on' },
  ];
}

/** One cell of an entry with usage. */
export function dfCell(entry: DfEntry, field: DfField, scale: Pick<DfOptions, 'human' | 'si'> = {}): string {
  const { info } = entry;
  if (info.error !== undefined) return '-';
  const u = info.usage;
  const human = scaled(scale);
  const base = scale.si ? 1000n : 1024n;
  const write = (n: bigint, from: bigint, to: bigint) => (n < 0n ? `-${humanReadable(-n, from, to, human, base)}` : humanReadable(n, from, to, human, base));
  const blocks = (n: bigint) => write(n, u.frsize, human ? 1n : 1024n);
  const count = (n: bigint) => write(n, 1n, 1n);
  const available = signed64(u.blocksAvailable);
  const used = u.blocks - u.blocksFree;
  const iused = u.files - u.filesFree;
  switch (field) {
    case 'source':
      return printable(info.source ?? '-');
    case 'fstype':
      return printable(info.fsType);
    case 'target':
      return printable(info.mountPoint);
    case 'file':
      return printable(entry.file ?? '-');
    case 'size':
      return blocks(u.blocks);
    case 'used':
      return blocks(used);
    case 'avail':
      return blocks(available);
    case 'pcent':
      return percent(used, available);
    case 'itotal':
      return count(u.files);
    case 'iused':
      return count(iused);
    case 'iavail':
      return count(u.filesFree);
    case 'ipcent':
      return percent(iused, u.filesFree);
  }
}

/** The table: the header row and one row per entry (then the --total row), aligned as df aligns them. */
export function formatDf(entries: readonly DfEntry[], options: DfOptions, total?: DfEntry): string {
  const columns = dfColumns(options);
  const rows = [
    columns.map((c) => c.header),
    ...[...entries, ...(total === undefined ? [] : [total])].map((e) =>
      columns.map((c) => (e.info.error !== undefined && !['source', 'fstype', 'target', 'file'].includes(c.field) ? '-' : dfCell(e, c.field, options))),
    ),
  ];
  return layout(
    rows,
    columns.map((c) => ({ align: ALIGN[c.field], atLeast: MIN_WIDTH[c.field] })),
  );
}

/**
 * df's --total row: the sums of the rows shown (df adds them up in bytes), named "total", with
 * "-" for the mount point, type and file.
 */
export function totalEntry(entries: readonly DfEntry[]): DfEntry {
  const sum = { blocks: 0n, blocksFree: 0n, blocksAvailable: 0n, files: 0n, filesFree: 0n };
  for (const { info } of entries) {
    if (info.error !== undefined) continue;
    const u = info.usage;
    sum.blocks += u.blocks * u.frsize;
    sum.blocksFree += u.blocksFree * u.frsize;
    sum.blocksAvailable += signed64(u.blocksAvailable) * u.frsize;
    sum.files += u.files;
    sum.filesFree += u.filesFree;
  }
  const usage = { ...sum, blocksAvailable: sum.blocksAvailable < 0n ? sum.blocksAvailable + (1n << 64n) : sum.blocksAvailable, frsize: 1n, bsize: 1n };
  return { info: { source: 'total', fsType: '-', mountPoint: '-', usage } as unknown as StatfsInfo, file: '-' };
}

/** An entry of `usip df --json`: the mount, and its usage in bytes and inodes, or its error. */
export function dfJson(entry: DfEntry): Record<string, unknown> {
  const { info } = entry;
  const out: Record<string, unknown> = { source: info.source ?? null, fstype: info.fsType, target: info.mountPoint };
  if (entry.file !== undefined) out.file = entry.file;
  out.mountId = info.id;
  if (info.uniqueId !== undefined) out.uniqueId = info.uniqueId;
  out.major = info.major;
  out.minor = info.minor;
  if (info.error !== undefined) {
    out.error = { code: info.error.code, message: info.error.message };
    return out;
  }
  const u = info.usage;
  const available = signed64(u.blocksAvailable);
  const used = u.blocks - u.blocksFree;
  const pcent = percent(used, available);
  const ipcent = percent(u.files - u.filesFree, u.filesFree);
  Object.assign(out, {
    size: u.blocks * u.frsize,
    used: used * u.frsize,
    avail: available * u.frsize,
    pcent: pcent === '-' ? null : Number(pcent.slice(0, -1)),
    itotal: u.files,
    iused: u.files - u.filesFree,
    iavail: u.filesFree,
    ipcent: ipcent === '-' ? null : Number(ipcent.slice(0, -1)),
    bsize: u.bsize,
    frsize: u.frsize,
    blocks: u.blocks,
    blocksFree: u.blocksFree,
    blocksAvailable: u.blocksAvailable,
    fsid: u.fsid,
    nameMax: u.nameMax,
    flags: u.flagNames,
  });
  return out;
}

// ---------------------------------------------------------------------------------------------
// The command

/** The entries for FILE arguments, each read by path; an error of one is reported, the others go on. */
async function byPath(client: Pick<UsipMounts, 'statfs'>, files: readonly string[], timeoutMs: number | undefined, problems: string[]): Promise<DfEntry[]> {
  const entries: DfEntry[] = [];
  for (const file of files) {
    try {
      const info = await client.statfs({ path: file }, { timeoutMs });
      entries.push({ info, file });
    } catch (error) {
      if (error instanceof UsipSystemError) {
        problems.push(`usip df: ${quote(file, 'shell')}: ${statusText(error.errno, error.code)}`);
        continue;
      }
      if (!isNetlinkError(error) || error.operation !== 'usip statfs') throw error;
      const text = statusText(error.errno, error.code);
      const extra = error.extack !== undefined && error.extack.toLowerCase() !== text.toLowerCase() ? ` (${error.extack})` : '';
      problems.push(`usip df: ${quote(file, 'shell')}: ${text}${extra}`);
    }
  }
  return entries;
}

/** strerror(3)'s text for an errno (e.g. "No such file or directory"), or its name. */
function statusText(errno: number, code: string): string {
  const { message } = statfsError(errno);
  return message.startsWith('Unknown error') ? code : message;
}

/** `usip df [FILE...]`: prints the table (or JSON) and returns the exit status. */
export async function df(client: Pick<UsipMounts, 'statfs' | 'statfsAll' | 'mounts'>, files: readonly string[], options: DfOptions): Promise<number> {
  const problems: string[] = [];
  let entries: DfEntry[];
  if (files.length > 0) {
    entries = filterAll(await byPath(client, files, options.timeoutMs, problems), options);
  } else {
    const infos = await client.statfsAll({ timeoutMs: options.timeoutMs });
    let roots = new Map<number, string>();
    if (!options.all) {
      // mount-get's root of each mount, for df's choice between bind mounts of one device; a
      // table that keeps changing is not worth failing for: the choice is then made without it.
      try {
        const { mounts } = await client.mounts();
        roots = new Map(mounts.map((m: MountInfo) => [m.id, m.root]));
      } catch (error) {
        if (!(error instanceof UsipDumpInterruptedError)) throw error;
      }
    }
    // Without the module, statfs(2) cannot reach a mount hidden below another on the same mount
    // point: its path leads to the top one, as it does for df, which then shows the top one's
    // numbers and device in the hidden one's place.
    const reachable = infos.map((info) => {
      if (info.error?.code !== 'USIP_OVERMOUNTED') return info;
      const top = infos.findLast((other) => other.mountPoint === info.mountPoint && other.error?.code !== 'USIP_OVERMOUNTED');
      return top === undefined ? info : { ...top, id: info.id, source: info.source, fsType: info.fsType };
    });
    const all = reachable.map((info) => ({ info, ...(roots.has(info.id) ? { root: roots.get(info.id)! } : {}) }));
    entries = options.all ? filterAll(all, options) : filterLikeDf(all, options);
  }
  // -l: local file systems only (not host:path, //host/share, -hosts), as df's ME_REMOTE.
  if (options.local) entries = entries.filter((e) => !isRemote(e.info.source ?? '', e.info.fsType));
  const failed = entries.filter((e) => e.info.error !== undefined);
  for (const e of failed) problems.push(`usip df: ${quote(e.file ?? e.info.mountPoint, 'shell')}: ${e.info.error!.message}`);
  const shown = entries.filter((e) => e.info.error === undefined);
  const total = options.total ? totalEntry(shown) : undefined;
  if (options.json) {
    const out: Record<string, unknown> = { filesystems: entries.map(dfJson) };
    if (total !== undefined) {
      const { size, used, avail, pcent, itotal, iused, iavail, ipcent } = dfJson(total);
      out.total = { size, used, avail, pcent, itotal, iused, iavail, ipcent };
    }
    process.stdout.write(`${toJson(out, 2)}\n`);
  } else {
    process.stdout.write(formatDf(shown, options, total));
  }
  for (const line of problems) process.stderr.write(`${line}\n`);
  return problems.length > 0 ? EXIT_FAILURE : 0;
}
