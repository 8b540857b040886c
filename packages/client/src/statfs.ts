// File system usage per mount, as the module's statfs operation reports it: the reply decoded
// with the generated tables, checked for what every reply carries, and shaped as StatfsInfo
// (which mount, then either its usage or why there is none).
import { constants } from 'node:os';
import { getSystemErrorMap } from 'node:util';
import { STATFS_ATTRIBUTE_SET, STATFS_FLAGS_NAMES, type StatfsFlagsName, type StatfsReply } from './generated/usip.js';
import { UsipProtocolError } from './errors.js';
import { AttributeError, decodeAttributes, flagNames } from './netlink/attributes.js';

/** What statfs(2) says about a mount's file system; counts are in units of `frsize`. */
export interface StatfsUsage {
  /** Optimal transfer block size (f_bsize). */
  bsize: bigint;
  /** Fragment size (f_frsize): the unit of blocks, blocksFree and blocksAvailable. */
  frsize: bigint;
  /** Size of the file system (f_blocks). */
  blocks: bigint;
  /** Free blocks (f_bfree). */
  blocksFree: bigint;
  /** Free blocks available to unprivileged users (f_bavail). */
  blocksAvailable: bigint;
  /** Inodes in total (f_files) and free (f_ffree). */
  files: bigint;
  filesFree: bigint;
  /** File system id (f_fsid, val[0] in the low 32 bits). */
  fsid: bigint;
  /** Longest file name (f_namelen). */
  nameMax: number;
  /** Mount flags (f_flags, the ST_* bits of sys/statvfs.h; ST_VALID always set). */
  flags: number;
  /** The flags by their spec names ('rdonly', 'nosuid', 'valid', 'relatime', ...). */
  flagNames: StatfsFlagsName[];
}

/** Why a mount has no usage: the errno its statfs ended with (ETIMEDOUT when it did not end in time). */
export interface StatfsError {
  errno: number;
  /** The errno's name, e.g. 'ETIMEDOUT'. */
  code: string;
  /** What it means, e.g. 'Connection timed out' (Node's system error text, capitalised as strerror(3)). */
  message: string;
}

/** One mount and its file system's usage, or the reason there is none. */
export type StatfsInfo = {
  /** Mount id (mountinfo's first field). */
  id: number;
  /** The never-reused 64-bit id (Linux 6.8 and later). */
  uniqueId?: bigint;
  /** Where the mount is, relative to the caller's root directory. */
  mountPoint: string;
  /** File system type, with its subtype (fuse.sshfs). */
  fsType: string;
  /** The mounted source, e.g. /dev/sda1; absent when it is too long to show. */
  source?: string;
  /** The file system's device number (st_dev). */
  major: number;
  minor: number;
  /** Inode number of the mount namespace. */
  mntNs: number;
} & ({ usage: StatfsUsage; error?: undefined } | { usage?: undefined; error: StatfsError });

const ERRORS = getSystemErrorMap();
/** The kernel's errno names by number (libuv's own codes, such as EOF, are not errnos). */
const ERRNO_NAMES = new Map(Object.entries(constants.errno).map(([name, value]) => [value, name]));

/** Where libuv's text is not glibc's strerror(3) for an error statfs commonly ends with. */
const GLIBC_TEXT: Partial<Record<string, string>> = {
  // A FUSE file system whose daemon is gone.
  ENOTCONN: 'Transport endpoint is not connected',
};

/**
 * An errno as { errno, code, message }: its name, and what it means as strerror(3) says it
 * (Node's system error table, libuv's, capitalised as strerror(3) writes it).
 */
export function statfsError(errno: number): StatfsError {
  const code = ERRNO_NAMES.get(errno);
  const known = ERRORS.get(-errno);
  if (code === undefined || known === undefined || known[0] !== code) return { errno, code: code ?? `E${errno}`, message: `Unknown error ${errno}` };
  const text = GLIBC_TEXT[code] ?? known[1];
  return { errno, code, message: text.charAt(0).toUpperCase() + text.slice(1) };
}

const USAGE_KEYS = ['bsize', 'frsize', 'blocks', 'blocksFree', 'blocksAvailable', 'files', 'filesFree', 'fsid', 'nameMax', 'flags'] as const;

/**
 * A statfs reply (do or dump message) as a StatfsInfo. Throws UsipProtocolError when it is
 * malformed, lacks what every reply carries, or has neither numbers nor an error (or both).
 */
export function decodeStatfs(operation: string, bytes: Uint8Array): StatfsInfo {
  let reply: StatfsReply;
  try {
    reply = decodeAttributes(STATFS_ATTRIBUTE_SET, bytes);
  } catch (error) {
    if (error instanceof AttributeError) {
      throw new UsipProtocolError(`${operation}: malformed reply from the module: ${error.message}`, { cause: error });
    }
    throw error;
  }
  const { mountId, uniqueId, mountPoint, fsType, source, devMajor, devMinor, mntNs, error } = reply;
  const missing = Object.entries({ mountId, mountPoint, fsType, devMajor, devMinor, mntNs })
    .filter(([, value]) => value === undefined)
    .map(([key]) => key);
  if (missing.length > 0) throw new UsipProtocolError(`${operation}: the reply lacks ${missing.join(', ')}`);
  const mount = {
    id: mountId!,
    ...(uniqueId === undefined ? {} : { uniqueId }),
    mountPoint: mountPoint!,
    fsType: fsType!,
    ...(source === undefined ? {} : { source }),
    major: devMajor!,
    minor: devMinor!,
    mntNs: mntNs!,
  };
  const present = USAGE_KEYS.filter((key) => reply[key] !== undefined);
  if (error !== undefined) {
    if (present.length > 0) throw new UsipProtocolError(`${operation}: mount ${mount.id} has an error (${error}) and numbers (${present.join(', ')})`);
    return { ...mount, error: statfsError(error) };
  }
  if (present.length !== USAGE_KEYS.length) {
    const lacking = USAGE_KEYS.filter((key) => reply[key] === undefined);
    throw new UsipProtocolError(`${operation}: mount ${mount.id} has neither an error nor ${lacking.join(', ')}`);
  }
  const flags = reply.flags!;
  return {
    ...mount,
    usage: {
      bsize: reply.bsize!,
      frsize: reply.frsize!,
      blocks: reply.blocks!,
      blocksFree: reply.blocksFree!,
      blocksAvailable: reply.blocksAvailable!,
      files: reply.files!,
      filesFree: reply.filesFree!,
      fsid: reply.fsid!,
      nameMax: reply.nameMax!,
      flags,
      flagNames: flagNames(flags, STATFS_FLAGS_NAMES) as StatfsFlagsName[],
    },
  };
}
