// The mount table as the client hands it out: MountInfo, one shape for what the module's
// mount-get returns and for what /proc/self/mountinfo says, so that the two can be compared
// field by field; the renderings of mountinfo's sixth field and optional fields; the parser of
// mountinfo text.
import { readFile, stat } from 'node:fs/promises';
import { MountAttr, type MountAttrName } from './generated/usip.js';
import { UsipError } from './errors.js';

/**
 * One mount, as a line of /proc/self/mountinfo describes it (see proc(5)), seen from the
 * reading process: its mount namespace and its root directory. Strings are the real names, not
 * mountinfo's escaped spellings, except `superOptions`, which is mountinfo's last field verbatim.
 */
export interface MountInfo {
  /** Mount id (mountinfo's first field); the kernel reuses it after the mount goes. */
  id: number;
  /** Id of the parent mount (the mount itself, or a mount outside the root, for the root). */
  parentId: number;
  /** The 64-bit id that is never reused until reboot (Linux 6.8 and later, from the module
   *  only: mountinfo does not show it). */
  uniqueId?: bigint;
  /** The file system's device number (st_dev). */
  major: number;
  minor: number;
  /** The directory of the file system the mount shows at its mount point. */
  root: string;
  /** Where the mount is, relative to the reader's root directory. */
  mountPoint: string;
  /** The per-mount flags by their spec names, in the order of `options`. */
  attributes: readonly MountAttrName[];
  /** mountinfo's sixth field: "ro" or "rw", then ",nosuid", ",nodev", ",noexec", ",noatime",
   *  ",nodiratime", ",relatime", ",nosymfollow", ",idmapped" as they apply. */
  options: string;
  /** Peer group of a shared mount (shared:N). */
  shared?: number;
  /** Peer group a slave mount receives from (master:N). */
  master?: number;
  /** Nearest dominant peer group the mount receives from, when not its master (propagate_from:N). */
  propagateFrom?: number;
  /** The mount is unbindable. */
  unbindable: boolean;
  /** mountinfo's optional fields as it writes them: "shared:N", "master:N", "propagate_from:N",
   *  "unbindable", separated by spaces, in that order; "" when there are none. */
  optionalFields: string;
  /** File system type, with its subtype (fuse.sshfs). */
  fsType: string;
  /** The mounted source, e.g. /dev/sda1, or "none". */
  source: string;
  /** The file system's own options, mountinfo's last field verbatim (its escapes kept). */
  superOptions: string;
  /** Inode number of the mount namespace. Always set by the client; set by parseMountinfo and
   *  readMountinfo only when they know it (an option, or the reader's /proc/PID/ns/mnt). */
  mntNs?: number;
}

/** The mount table of the caller's namespace, as one consistent dump. */
export interface MountTable {
  /** In the namespace's order, as mountinfo lists them. */
  mounts: MountInfo[];
  /** The namespace's event number when the dump began: the table reflects every mtab event
   *  with an ns-seq up to this one (0 when no listener is registered in the namespace). */
  nsSeq: bigint;
}

// mountinfo's per-mount options after "ro"/"rw", in the kernel's order (show_mnt_opts(), and
// ",idmapped" last), with their MountAttr bits.
const OPTION_FLAGS: readonly [MountAttrName, string][] = [
  ['nosuid', ',nosuid'],
  ['nodev', ',nodev'],
  ['noexec', ',noexec'],
  ['noatime', ',noatime'],
  ['nodiratime', ',nodiratime'],
  ['relatime', ',relatime'],
  ['nosymfollow', ',nosymfollow'],
  ['idmapped', ',idmapped'],
];

interface RenderedAttributes {
  attributes: readonly MountAttrName[];
  options: string;
}

// attr values seen so far; there are few distinct ones, and sharing them costs no allocation
// per mount.
const RENDERED = new Map<number, RenderedAttributes>();

function rendered(attr: number): RenderedAttributes {
  let entry = RENDERED.get(attr);
  if (entry === undefined) {
    const ro = (attr & MountAttr.ro) !== 0;
    const attributes: MountAttrName[] = ro ? ['ro'] : [];
    let options = ro ? 'ro' : 'rw';
    for (const [name, text] of OPTION_FLAGS) {
      if ((attr & MountAttr[name]) !== 0) {
        attributes.push(name);
        options += text;
      }
    }
    entry = { attributes: Object.freeze(attributes), options };
    if (RENDERED.size < 4096) RENDERED.set(attr, entry);
  }
  return entry;
}

/**
 * mountinfo's sixth field for a mask of MountAttr flags: "ro" or "rw", then the other flags in
 * the kernel's order. Bits this client does not know are left out.
 */
export function mountOptions(attr: number): string {
  return rendered(attr).options;
}

/** The spec names of the MountAttr flags set in `attr`, in the order of mountOptions(). */
export function mountAttributeNames(attr: number): readonly MountAttrName[] {
  return rendered(attr).attributes;
}

/** The MountAttr mask of mountinfo's sixth field; options this client does not know are ignored. */
export function mountAttrFromOptions(options: string): number {
  let attr = 0;
  for (const option of options.split(',')) {
    if (option === 'rw') continue;
    const bit = (MountAttr as Record<string, number>)[option];
    if (bit !== undefined && Object.hasOwn(MountAttr, option)) attr |= bit;
  }
  return attr;
}

/** mountinfo's optional fields for a mount's propagation, as the kernel writes them. */
export function optionalFields(propagation: { shared?: number; master?: number; propagateFrom?: number; unbindable?: boolean }): string {
  const { shared, master, propagateFrom, unbindable } = propagation;
  if (shared === undefined && master === undefined && !unbindable) return '';
  const fields: string[] = [];
  if (shared !== undefined) fields.push(`shared:${shared}`);
  if (master !== undefined) {
    fields.push(`master:${master}`);
    if (propagateFrom !== undefined) fields.push(`propagate_from:${propagateFrom}`);
  }
  if (unbindable) fields.push('unbindable');
  return fields.join(' ');
}

/** True when two MountInfo describe the same mount the same way (every field, mntNs and
 *  uniqueId included, when either has them). */
export function sameMount(a: MountInfo, b: MountInfo): boolean {
  return (
    a.id === b.id &&
    a.parentId === b.parentId &&
    a.mountPoint === b.mountPoint &&
    a.uniqueId === b.uniqueId &&
    a.major === b.major &&
    a.minor === b.minor &&
    a.options === b.options &&
    a.optionalFields === b.optionalFields &&
    a.superOptions === b.superOptions &&
    a.root === b.root &&
    a.fsType === b.fsType &&
    a.source === b.source &&
    a.mntNs === b.mntNs &&
    a.shared === b.shared &&
    a.master === b.master &&
    a.propagateFrom === b.propagateFrom &&
    a.unbindable === b.unbindable
  );
}

// ---------------------------------------------------------------------------------------------
// mountinfo text

/** mountinfo text that does not have the format proc(5) describes. */
export class UsipMountinfoError extends UsipError {
  /** 1-based line number. */
  readonly line: number;
  constructor(line: number, message: string) {
    super('USIP_MOUNTINFO_SYNTAX', `mountinfo line ${line}: ${message}`);
    this.line = line;
  }
}

// The kernel escapes these in paths, the source and the type (seq_path_root(), mangle()).
const ESCAPED = /[ \t\n\\]/g;
const OCTAL = /\\([0-7]{3})/g;

/** A string as mountinfo writes a path, source or type: space, tab, newline and backslash as
 *  \ooo octal escapes. */
export function escapeMountinfo(value: string): string {
  return value.replace(ESCAPED, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
}

/** The inverse of escapeMountinfo(): \ooo octal escapes become the bytes they stand for (so
 *  that escaped bytes of a multi-byte UTF-8 character decode as that character). */
export function unescapeMountinfo(value: string): string {
  if (!value.includes('\\')) return value;
  let ascii = true;
  const replaced = value.replace(OCTAL, (_, octal: string) => {
    const byte = Number.parseInt(octal, 8);
    if (byte > 0x7f) ascii = false;
    return String.fromCharCode(byte);
  });
  if (ascii) return replaced;
  // Escapes of non-ASCII bytes: rebuild the UTF-8 byte string, then decode it as a whole.
  const source = Buffer.from(value, 'utf8');
  const bytes = Buffer.alloc(source.length);
  const isOctal = (b: number | undefined) => b !== undefined && b >= 0x30 && b <= 0x37;
  let length = 0;
  for (let i = 0; i < source.length; i++) {
    const b = source[i]!;
    if (b === 0x5c && isOctal(source[i + 1]) && isOctal(source[i + 2]) && isOctal(source[i + 3])) {
      bytes[length++] = ((source[i + 1]! - 0x30) << 6) | ((source[i + 2]! - 0x30) << 3) | (source[i + 3]! - 0x30);
      i += 3;
    } else {
      bytes[length++] = b;
    }
  }
  return bytes.toString('utf8', 0, length);
}

/** One MountInfo as a line of /proc/self/mountinfo (without the newline). */
export function formatMountinfoLine(mount: MountInfo): string {
  const optional = mount.optionalFields === '' ? '' : ` ${mount.optionalFields}`;
  return (
    `${mount.id} ${mount.parentId} ${mount.major}:${mount.minor} ${escapeMountinfo(mount.root)} ` +
    `${escapeMountinfo(mount.mountPoint)} ${mount.options}${optional} - ${escapeMountinfo(mount.fsType)} ` +
    `${escapeMountinfo(mount.source)} ${mount.superOptions}`
  );
}

const NUMBER = /^\d{1,15}$/;
const DEVICE = /^(\d{1,10}):(\d{1,10})$/;
const PEER = /^(shared|master|propagate_from):(\d{1,10})$/;

export interface ParseMountinfoOptions {
  /** The mount namespace the text describes (its inode number), put into every MountInfo. */
  mntNs?: number;
}

/**
 * Parses mountinfo text (proc(5): /proc/PID/mountinfo) into MountInfo, one per line, in the
 * file's order: the same shape and values as the module's mount-get, but without uniqueId
 * (mountinfo does not show it) and without mntNs unless `options.mntNs` says it. Paths, the
 * source and the type are unescaped; super options are kept verbatim. Optional fields and
 * per-mount options this client does not know are kept in `optionalFields` and `options` but
 * left out of the parsed fields. Throws UsipMountinfoError naming the line and the field.
 */
export function parseMountinfo(text: string, options: ParseMountinfoOptions = {}): MountInfo[] {
  const { mntNs } = options;
  if (mntNs !== undefined && (typeof mntNs !== 'number' || !Number.isInteger(mntNs) || mntNs < 0 || mntNs > 0xffffffff)) {
    throw new TypeError(`parseMountinfo: options.mntNs must be a namespace inode number (an integer from 0 to ${0xffffffff}), got ${typeof mntNs === 'number' ? mntNs : typeof mntNs}`);
  }
  const mounts: MountInfo[] = [];
  const lines = text.split('\n');
  // A final newline ends the last line; it does not start another.
  const count = lines.length > 0 && lines[lines.length - 1] === '' ? lines.length - 1 : lines.length;
  for (let index = 0; index < count; index++) {
    mounts.push(parseLine(lines[index]!, index + 1, mntNs));
  }
  return mounts;
}

function parseLine(line: string, number: number, mntNs: number | undefined): MountInfo {
  const fail = (message: string): never => {
    throw new UsipMountinfoError(number, message);
  };
  const fields = line.split(' ');
  if (fields.length < 10) fail(`expected at least 10 space-separated fields, got ${fields.length}: ${JSON.stringify(line)}`);
  const integer = (index: number, what: string): number => {
    const text = fields[index]!;
    if (!NUMBER.test(text)) fail(`field ${index + 1} (${what}) must be a decimal number, got ${JSON.stringify(text)}`);
    return Number(text);
  };
  const id = integer(0, 'mount id');
  const parentId = integer(1, 'parent id');
  const device = DEVICE.exec(fields[2]!);
  if (device === null) return fail(`field 3 (device) must be MAJOR:MINOR, got ${JSON.stringify(fields[2])}`);
  const root = unescapeMountinfo(fields[3]!);
  const mountPoint = unescapeMountinfo(fields[4]!);
  const mountOptionsText = fields[5]!;
  const mode = mountOptionsText.split(',', 1)[0];
  if (mode !== 'ro' && mode !== 'rw') fail(`field 6 (mount options) must start with ro or rw, got ${JSON.stringify(mountOptionsText)}`);
  let separator = 6;
  while (separator < fields.length && fields[separator] !== '-') separator++;
  if (separator + 3 > fields.length) {
    fail(`expected the optional fields to end with " - " followed by type, source and super options: ${JSON.stringify(line)}`);
  }
  let shared: number | undefined;
  let master: number | undefined;
  let propagateFrom: number | undefined;
  let unbindable = false;
  for (let i = 6; i < separator; i++) {
    const field = fields[i]!;
    if (field === 'unbindable') {
      unbindable = true;
      continue;
    }
    const peer = PEER.exec(field);
    if (peer === null) continue; // an optional field of a newer kernel: kept in optionalFields
    const group = Number(peer[2]);
    if (peer[1] === 'shared') shared = group;
    else if (peer[1] === 'master') master = group;
    else propagateFrom = group;
  }
  const attr = mountAttrFromOptions(mountOptionsText);
  const mount: MountInfo = {
    id,
    parentId,
    major: Number(device[1]),
    minor: Number(device[2]),
    root,
    mountPoint,
    attributes: mountAttributeNames(attr),
    options: mountOptionsText,
    unbindable,
    optionalFields: fields.slice(6, separator).join(' '),
    fsType: unescapeMountinfo(fields[separator + 1]!),
    source: unescapeMountinfo(fields[separator + 2]!),
    // The file system's options are everything after the source, as written.
    superOptions: fields.slice(separator + 3).join(' '),
  };
  if (shared !== undefined) mount.shared = shared;
  if (master !== undefined) mount.master = master;
  if (propagateFrom !== undefined) mount.propagateFrom = propagateFrom;
  if (mntNs !== undefined) mount.mntNs = mntNs;
  return mount;
}

export interface ReadMountinfoOptions {
  /** The mount namespace the file describes; by default the inode of /proc/PID/ns/mnt next to
   *  a /proc/PID/mountinfo path (none for other paths, or if it cannot be read). */
  mntNs?: number;
}

const PROC_MOUNTINFO = /^\/proc\/(self|thread-self|\d+)\/mountinfo$/;

/**
 * Reads and parses a mountinfo file (default: the caller's own, /proc/self/mountinfo). For a
 * /proc/PID/mountinfo path, mntNs is the inode number of the same process's /proc/PID/ns/mnt,
 * read right after the file, unless `options.mntNs` gives it.
 */
export async function readMountinfo(path = '/proc/self/mountinfo', options: ReadMountinfoOptions = {}): Promise<MountInfo[]> {
  const text = await readFile(path, 'utf8');
  let mntNs = options.mntNs;
  const proc = PROC_MOUNTINFO.exec(path);
  if (mntNs === undefined && proc !== null) {
    try {
      mntNs = (await stat(`/proc/${proc[1]}/ns/mnt`)).ino;
    } catch {
      // Not ours to see (another user's process): mntNs stays unknown.
    }
  }
  return parseMountinfo(text, mntNs === undefined ? {} : { mntNs });
}
