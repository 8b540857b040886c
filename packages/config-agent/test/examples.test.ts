// The examples of the repository (examples/usip.d, examples/systemd) as shipped: `usip-agent
// check` as built, run on them as a real process, passes every file; each names the schema in
// `$schema`; together they show each feature the docs point to them for.
import { execFile } from 'node:child_process';
import { cp, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DEFAULT_UNIT_EVENT_DIR, SCHEMA_ID, parseNotifierFile, type NotifierFile } from '../src/index.js';
import { withTempDir } from './helpers.js';

const execFileAsync = promisify(execFile);
const bin = fileURLToPath(new URL('../dist/bin.js', import.meta.url));
const examples = fileURLToPath(new URL('../../../examples', import.meta.url));
const usipD = join(examples, 'usip.d');

async function check(dir: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return execFileAsync(process.execPath, [bin, 'check', '-c', dir]).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: { code: number; stdout: string; stderr: string }) => error,
  );
}

async function files(): Promise<NotifierFile[]> {
  const names = (await readdir(usipD)).filter((n) => n.endsWith('.json')).sort();
  return Promise.all(names.map(async (n) => parseNotifierFile(join(usipD, n), await readFile(join(usipD, n), 'utf8'))));
}

test('usip-agent check -c examples/usip.d: every example passes', async () => {
  const all = await files();
  assert.ok(all.length >= 7, `${all.length} examples`);
  const notifiers = all.reduce((n, f) => n + f.notifiers.length, 0);
  let result = await check(usipD);
  // The examples have commands, and `check` applies the rule for them: a clone in a directory
  // others may write (under /tmp) is refused for where it is, not for what it holds. Then the
  // same files are checked where an installed copy would be: in a directory only root writes.
  const location = result.stderr.split('\n').filter((l) => l !== '' && !l.endsWith('[permissions]'));
  if (result.code !== 0 && location.length === 0) {
    result = await withTempDir(async (dir) => {
      await cp(usipD, join(dir, 'usip.d'), { recursive: true });
      const copy = await check(join(dir, 'usip.d'));
      return { ...copy, stdout: copy.stdout.replace(join(dir, 'usip.d'), usipD) };
    });
  }
  assert.is(result.stderr, '');
  assert.is(result.code, 0);
  assert.is(result.stdout, `${usipD}: ${all.length} valid file(s), ${notifiers} notifier(s), 0 problem(s), 0 skipped\n`);
});

test('every example names the schema by its $id in $schema', async () => {
  for (const file of await files()) assert.is(file.$schema, SCHEMA_ID, file.path);
});

test('the examples show: mount and umount logged, a unit started when /var is low on space, kern-log, scope mnt-ns, thresholds in bytes and inodes', async () => {
  const all = (await files()).flatMap((f) => f.notifiers.map((n) => ({ ...n, scope: f.scope, file: f.path })));
  const has = (what: string, test: (n: (typeof all)[number]) => boolean) => assert.ok(all.some(test), what);
  has('a mount logged', (n) => n.type === 'mtab' && n.action === 'mount' && n.run !== undefined);
  has('an umount logged', (n) => n.type === 'mtab' && n.action === 'umount' && n.run !== undefined);
  has('cleanup.service started when /var is low on space', (n) => n.action === 'low-space' && n.pathPrefix === '/var' && n.unit === 'cleanup.service');
  has('a kern-log notifier', (n) => n.kernLog === true && n.notify === false);
  has('scope mnt-ns, said', (n) => n.scope === 'mnt-ns');
  has('a threshold in bytes', (n) => n.thresholdBytes !== undefined);
  has('a threshold in inodes', (n) => n.thresholdInodes !== undefined);
});

test('examples/systemd/cleanup.service: reads the event file the agent writes for it, and systemd-analyze verify accepts it', async () => {
  const unit = join(examples, 'systemd', 'cleanup.service');
  const text = await readFile(unit, 'utf8');
  assert.match(text, `\nEnvironmentFile=-${DEFAULT_UNIT_EVENT_DIR}/cleanup.service.env\n`);
  const { stdout, stderr } = await execFileAsync('systemd-analyze', ['verify', unit]);
  assert.is(`${stdout}${stderr}`, '');
});

test('the example of usip.d(5), as the page shows it, is a valid notifier file', async () => {
  const page = await readFile(fileURLToPath(new URL('../man/usip.d.5', import.meta.url)), 'utf8');
  const source = /\n\.SH EXAMPLE\n\.nf\n\.RS\n([^]*?)\n\.RE\n/.exec(page)?.[1];
  assert.ok(source !== undefined, 'usip.d.5 has an EXAMPLE section');
  const example = source.split('\n').map((line) => line.replace(/^\\&/, '').replace(/\\e/g, '\\')).join('\n');
  const file = parseNotifierFile('usip.d.5', example);
  assert.equal(file.notifiers.map((n) => n.run?.[0] ?? n.unit), ['/usr/local/bin/backup-new-mount', 'cleanup.service']);
});

test.run();
