// Reading a notifier file safely, and the rule that decides whether its commands may run.
//
// Reading: only regular files (a symbolic link is followed to one), at most MAX_FILE_BYTES. The
// entry is looked at with lstat/stat before it is opened, so that a FIFO, socket or device is
// named and never opened (opening a FIFO to read blocks until a writer comes; some devices act on
// open); it is then opened with O_NONBLOCK (and O_NOFOLLOW unless it was a link) and the opened
// file is checked again with fstat, since the entry may have been replaced in between.
//
// Running: the agent runs a file's commands as itself (root, as a service), so a file with `run`
// must be one only root or the agent's own user could have written: owned by root or by the
// agent's effective uid, not writable by group or others, and so must be its directory and every
// directory above it up to / (OpenSSH's StrictModes and sudo check the same way). A sticky
// directory writable by others (/tmp) is refused too: its owner's files cannot be replaced there,
// but anybody may create a new `x.json` in it and have its commands run as root.
import { constants, type Stats } from 'node:fs';
import { lstat, open, readlink, realpath, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { ConfigProblem } from './load.js';

/** The largest notifier file read: 1 MiB. A notifier file is a few hundred bytes; more is a mistake. */
export const MAX_FILE_BYTES = 1024 * 1024;

/** The rules of the problems found before a file's content is looked at. */
export const ENTRY_RULES = ['type', 'size', 'read'] as const;
/** The rule of a file with `run` that the agent refuses to run commands from. */
export const PERMISSIONS_RULE = 'permissions';

/** What reading one directory entry gave. */
export type EntryRead =
  /** The entry does not exist (any more). */
  | { kind: 'gone' }
  /** It is not read: not a regular file, too big, or unreadable; `problem` says which and why. */
  | { kind: 'skipped'; problem: ConfigProblem }
  /** Its text, with what the permission rule needs: the opened file's stat and its real path. */
  | { kind: 'text'; text: string; stats: Stats; realPath: string; link: boolean };

/** The kind of a file, for people: "a FIFO", "a directory"... */
export function fileKind(stats: Stats): string {
  if (stats.isFile()) return 'a regular file';
  if (stats.isDirectory()) return 'a directory';
  if (stats.isFIFO()) return 'a FIFO (named pipe)';
  if (stats.isSocket()) return 'a socket';
  if (stats.isCharacterDevice()) return 'a character device';
  if (stats.isBlockDevice()) return 'a block device';
  if (stats.isSymbolicLink()) return 'a symbolic link';
  return 'not a regular file';
}

function size(bytes: number): string {
  const mib = bytes / (1024 * 1024);
  if (mib < 1) return `${bytes} bytes`;
  return `${Number.isInteger(mib) ? mib : mib.toFixed(1)} MiB (${bytes} bytes)`;
}

const code = (error: unknown) => (error as NodeJS.ErrnoException)?.code;

/**
 * Reads one entry of the configuration directory as a notifier file, if it is one the agent
 * reads: a regular file, or a symbolic link to one, of at most `maxBytes`.
 */
export async function readEntry(file: string, maxBytes = MAX_FILE_BYTES): Promise<EntryRead> {
  const skipped = (rule: (typeof ENTRY_RULES)[number], message: string): EntryRead => ({
    kind: 'skipped',
    problem: { file, pointer: '', rule, message },
  });
  let entry: Stats;
  try {
    entry = await lstat(file);
  } catch (error) {
    if (code(error) === 'ENOENT' || code(error) === 'ENOTDIR') return { kind: 'gone' };
    return skipped('read', `cannot look at it: ${(error as Error).message}`);
  }
  const link = entry.isSymbolicLink();
  let target = entry;
  let via = '';
  if (link) {
    const to = await readlink(file).catch(() => '?');
    via = `a symbolic link to ${to}, which is `;
    try {
      target = await stat(file);
    } catch (error) {
      if (code(error) === 'ENOENT') return skipped('type', `a symbolic link to ${to}, which does not exist`);
      return skipped('read', `a symbolic link to ${to}, which cannot be followed: ${(error as Error).message}`);
    }
  }
  if (!target.isFile()) return skipped('type', `${via}${fileKind(target)}, not a regular file`);
  const tooBig = (bytes: number) => skipped('size', `${via}${size(bytes)}, more than the ${size(maxBytes)} a notifier file may have`);
  if (target.size > maxBytes) return tooBig(target.size);

  // O_NONBLOCK: should the entry have become a FIFO since, opening it does not wait for a writer.
  const flags = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY | (link ? 0 : constants.O_NOFOLLOW);
  let handle;
  try {
    handle = await open(file, flags);
  } catch (error) {
    if (code(error) === 'ENOENT') return { kind: 'gone' };
    if (code(error) === 'ELOOP' || code(error) === 'ENXIO') return skipped('type', `it changed while being read (${(error as Error).message})`);
    return skipped('read', `cannot open it: ${(error as Error).message}`);
  }
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) return skipped('type', `${via}${fileKind(stats)}, not a regular file`);
    if (stats.size > maxBytes) return tooBig(stats.size);
    // Read to the end, but no further than the limit: a file may have grown since fstat.
    const chunks: Buffer[] = [];
    let length = 0;
    for (;;) {
      const chunk = Buffer.allocUnsafe(Math.min(64 * 1024, maxBytes + 1 - length));
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, null);
      if (bytesRead === 0) break;
      chunks.push(chunk.subarray(0, bytesRead));
      length += bytesRead;
      if (length > maxBytes) return tooBig(Math.max(length, (await handle.stat()).size));
    }
    const realPath = link ? await realpath(file) : resolve(file);
    return { kind: 'text', text: Buffer.concat(chunks, length).toString('utf8'), stats, realPath, link };
  } catch (error) {
    if (code(error) === 'ENOENT') return { kind: 'gone' };
    return skipped('read', `cannot read it: ${(error as Error).message}`);
  } finally {
    await handle.close();
  }
}

/** `path` and every directory above it, up to /. */
function ancestry(path: string): string[] {
  const out: string[] = [];
  for (let dir = resolve(path); ; dir = dirname(dir)) {
    out.push(dir);
    if (dir === dirname(dir)) return out;
  }
}

function octal(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0');
}

/** What is wrong with the owner and mode of a file or directory, if anything. */
function ownerAndMode(what: string, stats: Stats, euid: number): string[] {
  const out: string[] = [];
  if (stats.uid !== 0 && stats.uid !== euid) {
    const allowed = euid === 0 ? 'root (the agent runs as root)' : `root or uid ${euid} (the agent's)`;
    out.push(`${what} is owned by uid ${stats.uid}, and may only be owned by ${allowed}`);
  }
  const group = (stats.mode & 0o020) !== 0;
  const others = (stats.mode & 0o002) !== 0;
  if (group || others) {
    const by = group && others ? 'group and others' : group ? 'group' : 'others';
    const sticky = stats.isDirectory() && (stats.mode & 0o1000) !== 0 ? ', sticky' : '';
    out.push(`${what} is writable by ${by} (mode ${octal(stats.mode)}${sticky})`);
  }
  return out;
}

/**
 * The rule for files that run commands: why the agent refuses to run the commands of `file`
 * (none: it may). `read` is what readEntry() gave for it (the opened file's owner and mode, and
 * where a symbolic link led); the directories are those of the entry and, for a link, of its
 * target, each up to /.
 */
export async function runPermissionProblems(
  file: string,
  read: { stats: Stats; realPath: string; link: boolean },
  euid: number = process.geteuid?.() ?? 0,
): Promise<ConfigProblem[]> {
  const reasons: string[] = [];
  const target = read.link ? `the file the link leads to (${read.realPath})` : 'the file';
  reasons.push(...ownerAndMode(target, read.stats, euid));
  // The entry's directories as named, as they really are (the configuration directory may be a
  // link), and the target's: whoever can write any of them can replace the file.
  const directories = new Set<string>(ancestry(dirname(resolve(file))));
  try {
    for (const dir of ancestry(await realpath(dirname(resolve(file))))) directories.add(dir);
  } catch (error) {
    reasons.push(`its directory cannot be resolved: ${(error as Error).message}`);
  }
  for (const dir of ancestry(dirname(read.realPath))) directories.add(dir);
  for (const dir of directories) {
    try {
      reasons.push(...ownerAndMode(`the directory ${dir}`, await stat(dir), euid));
    } catch (error) {
      reasons.push(`the directory ${dir} cannot be checked: ${(error as Error).message}`);
    }
  }
  return reasons.map((reason) => ({ file, pointer: '', rule: PERMISSIONS_RULE, message: reason }));
}
