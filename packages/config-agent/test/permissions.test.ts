// The rule for notifier files that run commands, on real files, directories and links with real
// owners (chown to 65534: these tests run as root) and modes: a file with `run` must be owned by
// root or the agent's user and not be writable by group or others, and so must its directory and
// every one above it up to /, sticky or not; the files without `run` are not concerned. Then
// `usip-agent check` as a real process. (The running agent: agent.test.ts.)
import { execFile } from 'node:child_process';
import { chmod, chown, mkdir, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { formatProblem, loadNotifierFile, type LoadOptions } from '../src/index.js';
import { withTempDir } from './helpers.js';

const execFileAsync = promisify(execFile);
const bin = fileURLToPath(new URL('../dist/bin.js', import.meta.url));
const NOBODY = 65534;

const withRun = { notifiers: [{ type: 'mtab', action: 'mount', run: ['/bin/true'] }] };
const withoutRun = { notifiers: [{ type: 'mtab', action: 'mount', kernLog: true }] };

/** Writes a notifier file with this owner and mode (chown, then chmod, which a chown would
 *  clear set-id bits after: after writing, so that no umask is in the way). */
async function notifier(path: string, content: object, mode = 0o644, uid = 0): Promise<string> {
  await writeFile(path, JSON.stringify(content));
  await chown(path, uid, uid);
  await chmod(path, mode);
  return path;
}

async function directory(path: string, mode = 0o755, uid = 0): Promise<string> {
  await mkdir(path);
  await chown(path, uid, uid);
  await chmod(path, mode);
  return path;
}

/** Why the agent refuses to run the file's commands ([] when it may); fails on other problems. */
async function refusals(file: string, options?: LoadOptions): Promise<string[]> {
  const result = await loadNotifierFile(file, options);
  if (result.kind === 'valid') return [];
  if (result.kind === 'problems' && result.stage === 'permissions') {
    assert.ok(result.problems.every((p) => p.rule === 'permissions' && p.file === file && p.pointer === ''));
    return result.problems.map((p) => p.message);
  }
  throw new Error(`${file}: ${JSON.stringify(result)}`);
}

/** The same file rewritten without `run` is accepted, whatever its mode, owner and directories. */
async function acceptedWithoutRun(file: string, options?: LoadOptions): Promise<void> {
  const { mode, uid } = await stat(file);
  await notifier(file, withoutRun, mode & 0o7777, uid);
  assert.is((await loadNotifierFile(file, options)).kind, 'valid', `${file} without run`);
}

test('these tests run as root (they give files to uid 65534)', () => {
  assert.is(process.geteuid?.(), 0, 'run the config-agent tests as root');
});

test('the file: owned by root, writable by nobody else; group- or world-writable, or another owner, is refused', async () => {
  await withTempDir(async (dir) => {
    const cases: [string, number, number, string[]][] = [
      ['ok.json', 0o644, 0, []],
      ['private.json', 0o600, 0, []],
      ['group.json', 0o664, 0, ['the file is writable by group (mode 0664)']],
      ['others.json', 0o646, 0, ['the file is writable by others (mode 0646)']],
      ['both.json', 0o666, 0, ['the file is writable by group and others (mode 0666)']],
      ['nobody.json', 0o644, NOBODY, ['the file is owned by uid 65534, and may only be owned by root (the agent runs as root)']],
      ['all.json', 0o4777, NOBODY, ['the file is owned by uid 65534, and may only be owned by root (the agent runs as root)', 'the file is writable by group and others (mode 4777)']],
    ];
    for (const [name, mode, uid, expected] of cases) {
      const file = await notifier(join(dir, name), withRun, mode, uid);
      assert.equal(await refusals(file), expected, name);
      await acceptedWithoutRun(file);
    }
  });
});

test("the agent's own user may own its files (an agent run as uid 65534: its files, not another user's)", async () => {
  await withTempDir(async (dir) => {
    const own = await notifier(join(dir, 'own.json'), withRun, 0o644, NOBODY);
    const other = await notifier(join(dir, 'other.json'), withRun, 0o644, 1000);
    const root = await notifier(join(dir, 'root.json'), withRun, 0o644, 0);
    assert.equal(await refusals(own, { euid: NOBODY }), []);
    assert.equal(await refusals(root, { euid: NOBODY }), []);
    assert.equal(await refusals(other, { euid: NOBODY }), ['the file is owned by uid 1000, and may only be owned by root or uid 65534 (the agent\'s)']);
  });
});

test('the directories: its own and every one above it up to /, owned by root, writable by nobody else, sticky or not', async () => {
  await withTempDir(async (dir) => {
    const groupDir = await directory(join(dir, 'group.d'), 0o775);
    const ownedDir = await directory(join(dir, 'owned.d'), 0o755, NOBODY);
    const shared = await directory(join(dir, 'shared'), 0o777);
    const deep = await directory(join(await directory(join(shared, 'etc')), 'usip.d'));
    const sticky = await directory(join(dir, 'sticky'), 0o1777);
    await directory(join(sticky, 'usip.d'));
    const cases: [string, string[]][] = [
      [join(groupDir, 'x.json'), [`the directory ${groupDir} is writable by group (mode 0775)`]],
      [join(ownedDir, 'x.json'), [`the directory ${ownedDir} is owned by uid 65534, and may only be owned by root (the agent runs as root)`]],
      // Two levels up: only that ancestor is named.
      [join(deep, 'x.json'), [`the directory ${shared} is writable by group and others (mode 0777)`]],
      // Sticky (like /tmp): its owner's files cannot be replaced, but anybody may add x.json there.
      [join(sticky, 'usip.d', 'x.json'), [`the directory ${sticky} is writable by group and others (mode 1777, sticky)`]],
    ];
    for (const [path, expected] of cases) {
      const file = await notifier(path, withRun);
      assert.equal(await refusals(file), expected, path);
      await acceptedWithoutRun(file);
    }
    // Every reason at once, the file's first, then the directories from its own upwards.
    const worst = await directory(join(shared, 'worst.d'), 0o777, NOBODY);
    const file = await notifier(join(worst, 'x.json'), withRun, 0o666, NOBODY);
    assert.equal(await refusals(file), [
      'the file is owned by uid 65534, and may only be owned by root (the agent runs as root)',
      'the file is writable by group and others (mode 0666)',
      `the directory ${worst} is owned by uid 65534, and may only be owned by root (the agent runs as root)`,
      `the directory ${worst} is writable by group and others (mode 0777)`,
      `the directory ${shared} is writable by group and others (mode 0777)`,
    ]);
  });
});

test('below /tmp (1777) a file with run is refused, naming /tmp; one without run is read', async () => {
  assert.is((await stat('/tmp')).mode & 0o7777, 0o1777, 'this test expects the usual /tmp');
  assert.is(tmpdir(), '/tmp');
  await withTempDir(async (dir) => {
    const file = await notifier(join(dir, '10-x.json'), withRun);
    assert.equal(await refusals(file), ['the directory /tmp is writable by group and others (mode 1777, sticky)']);
    await acceptedWithoutRun(file);
  }, tmpdir());
});

test('a symbolic link: the file it leads to and the directories of both are checked', async () => {
  await withTempDir(async (dir) => {
    const conf = await directory(join(dir, 'usip.d'));
    const open = await directory(join(dir, 'open'), 0o777);
    const safe = await directory(join(dir, 'safe'));
    const inOpen = await notifier(join(open, 'x.json'), withRun);
    const writable = await notifier(join(safe, 'writable.json'), withRun, 0o664);
    const good = await notifier(join(safe, 'good.json'), withRun);
    await symlink(inOpen, join(conf, '10-open.json'));
    await symlink(writable, join(conf, '20-writable.json'));
    await symlink(good, join(conf, '30-good.json'));
    await symlink(good, join(open, '40-link-in-open.json'));
    assert.equal(await refusals(join(conf, '10-open.json')), [`the directory ${open} is writable by group and others (mode 0777)`]);
    assert.equal(await refusals(join(conf, '20-writable.json')), [`the file the link leads to (${writable}) is writable by group (mode 0664)`]);
    assert.equal(await refusals(join(conf, '30-good.json')), []);
    // Whoever can write the link's directory can point the link elsewhere.
    assert.equal(await refusals(join(open, '40-link-in-open.json')), [`the directory ${open} is writable by group and others (mode 0777)`]);
  });
});

test('usip-agent check: the refused file is named with the rule, the others are valid, exit 1', async () => {
  await withTempDir(async (dir) => {
    const refused = await notifier(join(dir, '10-writable.json'), withRun, 0o664);
    await notifier(join(dir, '20-run.json'), withRun);
    await notifier(join(dir, '30-plain.json'), withoutRun, 0o666, NOBODY);
    const failure = await execFileAsync(process.execPath, [bin, 'check', '-c', dir]).then(
      ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
      (error: { code: number; stdout: string; stderr: string }) => error,
    );
    assert.is(failure.code, 1);
    assert.is(failure.stderr, `${refused}: refusing to run commands: the file is writable by group (mode 0664) [permissions]\n`);
    assert.is(failure.stdout, `${dir}: 2 valid file(s), 2 notifier(s), 1 problem(s), 0 skipped\n`);
    assert.is(
      formatProblem({ file: '/etc/usip.d/x.json', pointer: '', rule: 'permissions', message: 'the file is writable by group (mode 0664)' }),
      '/etc/usip.d/x.json: refusing to run commands: the file is writable by group (mode 0664) [permissions]',
    );
  });
});

test.run();
