// What the agent reads from its directory: regular files only (a symbolic link is followed to
// one), of at most 1 MiB; a link to /dev/null masks its name. A FIFO, a socket, a directory, a device, a link to nothing or a file
// too big is named with why and skipped, never blocks, and the other files are read: checked here
// with real entries of each kind, through `usip-agent check` and `usip-agent run` as built, run
// as real processes.
import { spawn } from 'node:child_process';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MAX_FILE_BYTES, loadNotifierFile, readEntry } from '../src/index.js';
import { waitFor, withTempDir } from './helpers.js';

const bin = fileURLToPath(new URL('../dist/bin.js', import.meta.url));

interface Child {
  stdout: string;
  stderr: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal: NodeJS.Signals): void;
}

/** The built usip-agent as a child process, killed with SIGKILL after `limitMs`. */
function agent(args: string[], limitMs: number): Child {
  const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const out: Child = {
    stdout: '',
    stderr: '',
    exited: new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal }))),
    kill: (signal) => child.kill(signal),
  };
  child.stdout.on('data', (chunk: Buffer) => (out.stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (out.stderr += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
  void out.exited.then(() => clearTimeout(timer));
  return out;
}

const mkfifo = (path: string) =>
  new Promise<void>((resolve, reject) =>
    spawn('mkfifo', [path], { stdio: 'inherit' }).on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`mkfifo ${path}: ${code}`)))),
  );

const good = (action: string) => JSON.stringify({ notifiers: [{ type: 'mtab', action }] });

/**
 * One entry of each kind, named *.json. Valid: 10-good, 35-exactly-1mib (a valid file of exactly
 * the limit) and 50-link (a symbolic link to 10-good, followed). The rest is skipped.
 */
async function populate(dir: string): Promise<Server> {
  await writeFile(join(dir, '10-good.json'), good('mount'));
  await mkfifo(join(dir, '20-fifo.json'));
  await writeFile(join(dir, '30-big.json'), `${good('umount')}${' '.repeat(MAX_FILE_BYTES)}`);
  const exact = good('move');
  await writeFile(join(dir, '35-exactly-1mib.json'), exact + ' '.repeat(MAX_FILE_BYTES - exact.length));
  await mkdir(join(dir, '40-dir.json'));
  await writeFile(join(dir, '40-dir.json', 'inner.json'), good('remount'));
  await symlink(join(dir, '10-good.json'), join(dir, '50-link.json'));
  await symlink(join(dir, 'nowhere'), join(dir, '60-dangling.json'));
  // A link to /dev/null masks its name (systemd's rule): not read, and no problem.
  await symlink('/dev/null', join(dir, '70-null.json'));
  await symlink('/dev/zero', join(dir, '75-zero.json'));
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(join(dir, '80-socket.json'), resolve));
  return server;
}

/** What each skipped entry is, as the problem message says it. */
function skipped(dir: string): [string, string, string][] {
  return [
    [join(dir, '20-fifo.json'), 'type', 'a FIFO (named pipe), not a regular file'],
    [join(dir, '30-big.json'), 'size', `1.0 MiB (${MAX_FILE_BYTES + good('umount').length} bytes), more than the 1 MiB (${MAX_FILE_BYTES} bytes) a notifier file may have`],
    [join(dir, '40-dir.json'), 'type', 'a directory, not a regular file'],
    [join(dir, '60-dangling.json'), 'type', `a symbolic link to ${join(dir, 'nowhere')}, which does not exist`],
    [join(dir, '75-zero.json'), 'type', 'a symbolic link to /dev/zero, which is a character device, not a regular file'],
    [join(dir, '80-socket.json'), 'type', 'a socket, not a regular file'],
  ];
}

test('usip-agent check: a FIFO, a socket, a directory, a link to nothing or to a device, a file over 1 MiB are each named and skipped; the rest is read', async () => {
  await withTempDir(async (dir) => {
    const server = await populate(dir);
    try {
      const check = agent(['check', '-c', dir], 15_000);
      const { code, signal } = await check.exited;
      // Before, reading the FIFO waited for a writer for ever (here: killed after 15 s).
      assert.is(signal, null, `usip-agent check did not finish: ${check.stderr}`);
      assert.is(code, 1, check.stderr);
      assert.equal(
        check.stderr.trimEnd().split('\n'),
        skipped(dir).map(([file, rule, message]) => `${file}: skipped: ${message} [${rule}]`),
      );
      assert.is(
        check.stdout,
        `${join(dir, '70-null.json')}: masked (a symbolic link to /dev/null), nothing of this name below it\n` +
          `${dir}: 3 valid file(s), 3 notifier(s), 6 problem(s), 6 skipped, 1 masked\n`,
      );
    } finally {
      server.close();
    }
  });
});

test('usip-agent run: ready with those entries in its directory, each named in the log with why, the regular files (and the link to one) valid', async () => {
  await withTempDir(async (dir) => {
    const server = await populate(dir);
    try {
      const run = agent(['run', '-c', dir, '--retry-interval', '60'], 20_000);
      // Before, the agent read the FIFO for ever and never got ready.
      await waitFor('ready', () => run.stderr.includes('"msg":"ready"'), 15_000);
      const records = run.stderr
        .trimEnd()
        .split('\n')
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      assert.equal(
        records
          .filter((r) => r.msg === 'skipped: this entry is not read')
          .map((r) => [r.file, r.rule, r.problem])
          .sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
        skipped(dir),
      );
      assert.ok(records.filter((r) => r.msg === 'skipped: this entry is not read').every((r) => r.level === 'warn'));
      assert.equal(
        records
          .filter((r) => r.msg === 'valid; to be registered when the usip module is loaded')
          .map((r) => r.file)
          .sort(),
        ['10-good.json', '35-exactly-1mib.json', '50-link.json'].map((name) => join(dir, name)),
      );
      assert.equal(records.filter((r) => r.msg === 'ready').map((r) => r.valid), [3]);
      assert.not.ok(run.stderr.includes('inner.json'), 'nothing inside the directory named 40-dir.json is read');
      assert.not.ok(run.stderr.includes('70-null.json'), 'a mask with nothing below it is no problem');
      run.kill('SIGTERM');
      assert.equal(await run.exited, { code: 0, signal: null });
    } finally {
      server.close();
    }
  });
});

test('readEntry: the size limit is on what is read, a file of exactly the limit is read, a link is followed to its file', async () => {
  await withTempDir(async (dir) => {
    await writeFile(join(dir, 'small.json'), '{}');
    const limited = await readEntry(join(dir, 'small.json'), 1);
    assert.is(limited.kind, 'skipped');
    if (limited.kind === 'skipped') assert.equal([limited.problem.rule, limited.problem.message], ['size', '2 bytes, more than the 1 bytes a notifier file may have']);
    const exact = await readEntry(join(dir, 'small.json'), 2);
    assert.is(exact.kind === 'text' && exact.text, '{}');
    await symlink('small.json', join(dir, 'link.json'));
    const linked = await readEntry(join(dir, 'link.json'));
    assert.ok(linked.kind === 'text' && linked.link && linked.realPath === join(dir, 'small.json') && linked.text === '{}', JSON.stringify(linked));
    assert.equal(await readEntry(join(dir, 'missing.json')), { kind: 'gone' });
    assert.equal(await loadNotifierFile(join(dir, 'missing.json')), { kind: 'gone' });
  });
});

test.run();
