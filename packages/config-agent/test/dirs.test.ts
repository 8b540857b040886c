// Several configuration directories, by systemd's `.d` rules: /etc/usip.d over /run/usip.d over
// /usr/lib/usip.d. Real directories and files, real chokidar and real commands; the module's
// registration side in process (fake-kernel.ts), and `usip-agent check` as built, as a process.
import { execFile } from 'node:child_process';
import { chmod, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Agent, DEFAULT_CONFIG_DIRS, NotifierConfig, listConfigEntries, type ActionOutcome } from '../src/index.js';
import { FakeModule } from './fake-kernel.js';
import { memoryLog, waitFor, withTempDir } from './helpers.js';

const execFileAsync = promisify(execFile);
const bin = fileURLToPath(new URL('../dist/bin.js', import.meta.url));

/** etc, run and lib under `base`: the three directories, highest precedence first. */
async function threeDirs(base: string, make: ('etc' | 'run' | 'lib')[] = ['etc', 'run', 'lib']) {
  const dirs = { etc: join(base, 'etc'), run: join(base, 'run'), lib: join(base, 'lib') };
  for (const d of make) await mkdir(dirs[d], { mode: 0o755 });
  return { ...dirs, list: [dirs.etc, dirs.run, dirs.lib] };
}

const write = (dir: string, name: string, content: unknown) => writeFile(join(dir, name), JSON.stringify(content, null, 2));

/** A command that appends "TAG ACTION PATH" to `record`. */
function recorder(record: string, tag: string): string[] {
  return ['/bin/sh', '-c', 'printf "%s %s %s\\n" "$1" "$USIP_EVENT_ACTION" "$USIP_EVENT_PATH" >> "$0"', record, tag];
}

async function lines(path: string): Promise<string[]> {
  try {
    return (await readFile(path, 'utf8')).trimEnd().split('\n').filter((l) => l !== '');
  } catch {
    return [];
  }
}

test('the default directories are /etc, /run and /usr/lib usip.d, in that order', () => {
  assert.equal(DEFAULT_CONFIG_DIRS, ['/etc/usip.d', '/run/usip.d', '/usr/lib/usip.d']);
});

test('listConfigEntries: the union of names in byte order, the highest directory wins, a link to /dev/null masks, a missing directory is skipped', async () => {
  await withTempDir(async (base) => {
    const d = await threeDirs(base, ['etc', 'lib']);
    const file = { notifiers: [{ type: 'mtab', action: 'mount' }] };
    await write(d.lib, '10-vendor.json', file);
    await write(d.lib, '20-both.json', file);
    await write(d.etc, '20-both.json', file);
    await write(d.lib, '30-masked.json', file);
    await symlink('/dev/null', join(d.etc, '30-masked.json'));
    await write(d.etc, '9-admin.json', file);
    const { entries, missing } = await listConfigEntries(d.list);
    assert.equal(missing, [d.run]);
    assert.equal(
      entries.map((e) => [e.name, e.path, e.masked, e.overridden]),
      [
        ['10-vendor.json', join(d.lib, '10-vendor.json'), false, []],
        ['20-both.json', join(d.etc, '20-both.json'), false, [join(d.lib, '20-both.json')]],
        ['30-masked.json', join(d.etc, '30-masked.json'), true, [join(d.lib, '30-masked.json')]],
        ['9-admin.json', join(d.etc, '9-admin.json'), false, []],
      ],
    );
    const config = new NotifierConfig();
    const { problems } = await config.loadDirectories(d.list);
    assert.equal(problems, []);
    assert.equal(config.files.map((f) => f.path).sort(), [join(d.lib, '10-vendor.json'), join(d.etc, '20-both.json'), join(d.etc, '9-admin.json')].sort());
    // A directory that exists but is not one is an error naming it.
    await writeFile(d.run, 'not a directory');
    const error = await listConfigEntries(d.list).then(() => undefined, (e: Error) => e);
    assert.match(String(error?.message), `cannot read the configuration directory ${d.run}: ENOTDIR`);
  });
});

test('run: an admin file overrides the vendor file (its listener replaces the vendor one), removing it brings the vendor one back, a mask removes it', async () => {
  await withTempDir(async (base) => {
    const d = await threeDirs(base, ['etc', 'lib']);
    const record = join(base, 'record');
    await write(d.lib, '50-x.json', { notifiers: [{ type: 'mtab', action: 'mount', run: recorder(record, 'vendor') }] });
    const module = new FakeModule();
    const mem = memoryLog();
    const outcomes: ActionOutcome[] = [];
    const agent = new Agent({ configDirs: d.list, connect: module.connect, log: mem.log, output: () => undefined, onOutcome: (o) => outcomes.push(o), debounceMs: 50, checkIntervalMs: 100, retryIntervalMs: 100 });
    try {
      await agent.start();
      assert.equal(mem.find('this configuration directory does not exist: skipped (looked for again on SIGHUP)').map((r) => r.configDir), [d.run]);
      assert.equal(mem.find('ready')[0]!.configDirs, d.list);
      assert.equal(module.ops, ['register 1']);
      const post = async (path: string, count: number) => {
        module.post({ type: 'mtab', action: 'mount', path });
        await waitFor(`${count} command(s)`, () => outcomes.length === count);
      };
      await post('/a', 1);

      // The admin's file of the same name in the directory of higher precedence.
      await write(d.etc, '50-x.json', { notifiers: [{ type: 'mtab', action: 'mount', run: recorder(record, 'admin') }] });
      await waitFor('the vendor listener to close', () => module.ops.includes('close 1'));
      // Same notifiers, another file: a listener of its own, registered before the vendor one goes.
      assert.equal(module.ops, ['register 1', 'register 2', 'close 1']);
      assert.equal(mem.find('this file overrides the files of the same name in the directories below').map((r) => [r.file, r.overrides]), [[join(d.etc, '50-x.json'), [join(d.lib, '50-x.json')]]]);
      assert.equal(mem.find('registered', join(d.etc, '50-x.json')).map((r) => [r.listenerId, r.replaces]), [[2, 1]]);
      assert.equal(mem.find('listener closed', join(d.etc, '50-x.json')).map((r) => [r.listenerId, r.reason]), [[1, `replaced by ${join(d.etc, '50-x.json')}`]]);
      await post('/b', 2);

      // Removed: the vendor file counts again.
      await rm(join(d.etc, '50-x.json'));
      await waitFor('the admin listener to close', () => module.ops.includes('close 2'));
      assert.equal(module.ops.slice(3), ['register 3', 'close 2']);
      assert.equal(agent.status().map((s) => [s.file, s.listenerId]), [[join(d.lib, '50-x.json'), 3]]);
      await post('/c', 3);

      // Masked: nothing of the name is registered or run.
      await symlink('/dev/null', join(d.etc, '50-x.json'));
      await waitFor('the vendor listener to close', () => module.ops.includes('close 3'));
      assert.equal(module.ops.slice(5), ['close 3']);
      assert.equal(mem.find('masked: the files of this name in the directories below are not read').map((r) => [r.file, r.masks]), [[join(d.etc, '50-x.json'), [join(d.lib, '50-x.json')]]]);
      assert.equal(agent.status(), []);
      module.post({ type: 'mtab', action: 'mount', path: '/masked' });
      // The mask undone: the vendor file again. The event posted while masked ran nothing.
      await rm(join(d.etc, '50-x.json'));
      await waitFor('the vendor file registered again', () => module.ops.includes('register 4'));
      await post('/d', 4);
      assert.equal(await lines(record), ['vendor mount /a', 'admin mount /b', 'vendor mount /c', 'vendor mount /d']);

      // /run/usip.d made after start: followed from the next rescan (SIGHUP), and above /usr/lib.
      await mkdir(d.run, { mode: 0o755 });
      await write(d.run, '50-x.json', { notifiers: [{ type: 'mtab', action: 'mount', run: recorder(record, 'runtime') }] });
      await agent.rescan();
      await waitFor('the runtime file registered', () => module.ops.includes('close 4'));
      await post('/e', 5);
      await write(d.run, '70-new.json', { notifiers: [{ type: 'mtab', action: 'move' }] });
      await waitFor('a new file of /run/usip.d seen by the watcher', () => agent.status().some((s) => s.file === join(d.run, '70-new.json') && s.listenerId !== undefined));
      assert.equal((await lines(record)).at(-1), 'runtime mount /e');

      // /run/usip.d removed (its files' listeners go, the vendor file is back), then made again:
      // followed again from the next rescan.
      await rm(d.run, { recursive: true });
      await waitFor('the vendor file back', () => agent.status().map((s) => s.file).join() === join(d.lib, '50-x.json'));
      await mkdir(d.run, { mode: 0o755 });
      await agent.rescan();
      await write(d.run, '80-again.json', { notifiers: [{ type: 'mtab', action: 'move' }] });
      await waitFor('a file of the directory made again', () => agent.status().some((s) => s.file === join(d.run, '80-again.json') && s.listenerId !== undefined));
    } finally {
      await agent.stop();
    }
  });
});

test('an invalid admin override keeps the last good version (the vendor one) registered; a permission problem in one directory refuses only its files', async () => {
  await withTempDir(async (base) => {
    const d = await threeDirs(base);
    const record = join(base, 'record');
    await write(d.lib, '50-x.json', { notifiers: [{ type: 'mtab', action: 'mount', run: recorder(record, 'vendor') }] });
    await write(d.run, '40-run.json', { notifiers: [{ type: 'mtab', action: 'mount', run: recorder(record, 'run') }] });
    // /run/usip.d writable by its group: its files with commands are refused, the others not.
    await chmod(d.run, 0o775);
    const module = new FakeModule();
    const mem = memoryLog();
    const agent = new Agent({ configDirs: d.list, connect: module.connect, log: mem.log, output: () => undefined, debounceMs: 50, checkIntervalMs: 100 });
    try {
      await agent.start();
      assert.equal(
        mem.find('refusing to run commands from this file', join(d.run, '40-run.json')).map((r) => r.problem),
        [`the directory ${d.run} is writable by group (mode 0775)`],
      );
      assert.equal(agent.status().map((s) => [s.file, s.listenerId]), [[join(d.lib, '50-x.json'), 1]]);
      await write(d.etc, '50-x.json', { notifiers: [{ type: 'mtab', action: 'mount', run: [] }] });
      await waitFor('the problem', () => mem.find('invalid notifier file', join(d.etc, '50-x.json')).length === 1);
      await waitFor('kept', () => mem.find('keeping the last good version of this file', join(d.etc, '50-x.json')).length === 1);
      assert.equal(module.ops, ['register 1']);
    } finally {
      await agent.stop();
    }
  });
});

test('usip-agent check -c A -c B -c C: which file wins, which are overridden or masked; the summary counts them', async () => {
  await withTempDir(async (base) => {
    const d = await threeDirs(base);
    const file = { notifiers: [{ type: 'mtab', action: 'mount' }] };
    await write(d.lib, '10-x.json', file);
    await write(d.run, '10-x.json', file);
    await write(d.etc, '10-x.json', file);
    await write(d.lib, '20-y.json', { notifiers: [{ type: 'mtab', action: 'nope' }] });
    await symlink('/dev/null', join(d.etc, '20-y.json'));
    await write(d.run, '30-z.json', file);
    const { stdout, stderr } = await execFileAsync(process.execPath, [bin, 'check', '-c', d.etc, '--config-dir', d.run, '-c', d.lib]);
    // The invalid vendor file is masked: not read, so no problem.
    assert.is(stderr, '');
    assert.equal(stdout.trimEnd().split('\n'), [
      `${join(d.run, '10-x.json')}: overridden by ${join(d.etc, '10-x.json')}`,
      `${join(d.lib, '10-x.json')}: overridden by ${join(d.etc, '10-x.json')}`,
      `${join(d.lib, '20-y.json')}: masked by ${join(d.etc, '20-y.json')} (a symbolic link to /dev/null)`,
      `${d.etc}, ${d.run}, ${d.lib}: 2 valid file(s), 2 notifier(s), 0 problem(s), 0 skipped, 2 overridden, 1 masked`,
    ]);
    // A directory that does not exist is skipped, and said (a typo would otherwise go unseen).
    const missing = join(base, 'nowhere');
    const skipped = await execFileAsync(process.execPath, [bin, 'check', '-c', missing, '-c', d.run]);
    assert.is(skipped.stdout, `${missing}: no such directory, skipped\n${missing}, ${d.run}: 2 valid file(s), 2 notifier(s), 0 problem(s), 0 skipped\n`);
    // Given once, -c replaces the whole default list: only that directory is read.
    const one = await execFileAsync(process.execPath, [bin, 'check', '-c', d.lib]).then(
      () => ({ code: 0, stdout: '', stderr: '' }),
      (error: { code: number; stdout: string; stderr: string }) => error,
    );
    // The invalid vendor file, no longer masked, fails the check.
    assert.is(one.code, 1);
    assert.is(one.stderr, `${join(d.lib, '20-y.json')}: /notifiers/0/action: must be one of "mount", "umount", "move", "remount" [enum]\n`);
    assert.is(one.stdout, `${d.lib}: 1 valid file(s), 1 notifier(s), 1 problem(s), 0 skipped\n`);
  }).catch((error: { stdout?: string; stderr?: string }) => {
    throw error.stderr !== undefined ? new Error(`${String(error)}\n${error.stdout}\n${error.stderr}`) : error;
  });
});

test.run();
