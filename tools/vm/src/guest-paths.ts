// Which host paths the guest must keep reachable for the command: the guest's /tmp is a fresh
// tmpfs (the host's /tmp entries on the way to the workspace are bound into it), and a directory
// on the way that others may not enter (a clone in a `mktemp -d` directory, or in /root) is
// opened up in the guest, so that a process of another uid (65534, say) reaches the workspace.
// The guest sees the host's real owners and modes (9p with security_model=none), so what the
// host's lstat says is what the guest's processes meet.
import { lstatSync, realpathSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/** The paths themselves and, where they differ, their real paths (symlinks resolved). */
function withRealPaths(paths: readonly string[]): string[] {
  const all = new Set<string>();
  for (const p of paths) {
    const abs = resolve(p);
    all.add(abs);
    try {
      all.add(realpathSync(abs));
    } catch {
      // a path that does not exist has no real path; its own ancestors still count
    }
  }
  return [...all];
}

/** The top-level entries of /tmp that the paths lie in ("/tmp/a/b" -> "a"), real paths included. */
export function guestTmpEntries(paths: readonly string[]): string[] {
  const entries = new Set<string>();
  for (const p of withRealPaths(paths)) {
    const m = /^\/tmp\/([^/]+)/.exec(p);
    if (m?.[1]) entries.add(m[1]);
  }
  return [...entries];
}

/**
 * The proper ancestors of the paths (and of their real paths), other than /, that are
 * directories others may not enter (no o+x), parents first. The guest covers each with a
 * read-only tmpfs that anyone may enter and that holds each of its entries, bind-mounted: the
 * entries keep their own owners and modes, the host is not changed, and nothing else opens up.
 * A symlink on the way is not opened itself: its target is, through the real path.
 */
export function guestOpenDirs(paths: readonly string[]): string[] {
  const dirs = new Set<string>();
  for (const p of withRealPaths(paths)) {
    for (let dir = dirname(p); dir !== '/'; dir = dirname(dir)) {
      let stat;
      try {
        stat = lstatSync(dir);
      } catch {
        continue;
      }
      if (stat.isDirectory() && (stat.mode & 0o001) === 0) dirs.add(dir);
    }
  }
  const depth = (d: string) => d.split('/').length;
  return [...dirs].sort((a, b) => depth(a) - depth(b) || (a < b ? -1 : a > b ? 1 : 0));
}
