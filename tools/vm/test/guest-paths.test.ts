// Which host directories the guest opens up, and which /tmp entries it keeps, on a real tree.
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { guestOpenDirs, guestTmpEntries } from '../src/guest-paths.js';

// base (0700) / a (0755) / b (0750) / c (0711) / ws (0700), and next to base, open (0755) with
// symlinks into it.
const base = mkdtempSync(join(tmpdir(), 'usip-vm-paths-'));
const ws = join(base, 'a', 'b', 'c', 'ws');
const open = mkdtempSync(join(tmpdir(), 'usip-vm-paths-open-'));
mkdirSync(ws, { recursive: true });
chmodSync(base, 0o700);
chmodSync(join(base, 'a'), 0o755);
chmodSync(join(base, 'a', 'b'), 0o750);
chmodSync(join(base, 'a', 'b', 'c'), 0o711);
chmodSync(ws, 0o700);
chmodSync(open, 0o755);
symlinkSync(ws, join(open, 'to-ws'));
symlinkSync(join(base, 'a', 'b'), join(open, 'to-b'));

/** The entries outside the test's trees must be closed ancestors of them (none where /tmp is open). */
function outside(dirs: string[]): string[] {
  const rest = dirs.filter((d) => !d.startsWith(`${base}/`) && d !== base && !d.startsWith(`${open}/`));
  for (const d of rest) {
    assert.ok(base.startsWith(`${d}/`), `${d} is an ancestor of the test tree`);
    assert.is(statSync(d).mode & 0o001, 0, `${d} is closed to others`);
  }
  return rest;
}

test('guestOpenDirs: the ancestors others may not enter, parents first; not the path itself, nor open or merely unreadable ones', () => {
  const dirs = guestOpenDirs([ws]);
  const rest = outside(dirs);
  // c (0711) may be entered; ws is the path itself, not an ancestor.
  assert.equal(dirs.slice(rest.length), [base, join(base, 'a', 'b')]);
  assert.equal(guestOpenDirs([join(base, 'a')]).slice(rest.length), [base]);
  assert.equal(guestOpenDirs([open]).slice(rest.length), []);
});

test('guestOpenDirs: through symlinks, the real path is opened; a symlink itself never is; no duplicates', () => {
  const rest = outside(guestOpenDirs([ws]));
  assert.equal(guestOpenDirs([join(open, 'to-ws')]).slice(rest.length), [base, join(base, 'a', 'b')]);
  // open/to-b is a symlink to a closed directory: its target (b) and b's closed parent are opened.
  assert.equal(guestOpenDirs([join(open, 'to-b', 'c', 'ws'), ws, dirname(ws)]).slice(rest.length), [base, join(base, 'a', 'b')]);
});

test('guestOpenDirs: a path that does not exist still has its existing ancestors checked', () => {
  const rest = outside(guestOpenDirs([ws]));
  assert.equal(guestOpenDirs([join(base, 'a', 'b', 'missing', 'x')]).slice(rest.length), [base, join(base, 'a', 'b')]);
});

test('guestTmpEntries: the top-level /tmp entries of the paths and of their real paths', () => {
  assert.equal(guestTmpEntries(['/tmp/a/b', '/tmp/c', '/work/x', '/tmp', '/tmpx/y']), ['a', 'c']);
  const entry = (p: string) => (p.startsWith('/tmp/') ? [p.split('/')[2]] : []);
  // A path outside /tmp whose real path is in it brings that entry.
  assert.equal(guestTmpEntries([join(open, 'to-ws')]), [...new Set([...entry(open), ...entry(base)])]);
});

test.after(() => {
  rmSync(base, { recursive: true, force: true });
  rmSync(open, { recursive: true, force: true });
});

test.run();
