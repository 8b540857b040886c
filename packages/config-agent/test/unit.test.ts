// A notifier's `unit`: the agent runs `systemctl start --no-block -- UNIT` with the event in its
// environment, and first writes the event to UNIT.env for the unit. Here `systemctl` is a real
// child process: a script first in PATH (and, once, named by the agent's `systemctl` option) that
// records its arguments, its environment and the event file as it finds it. The real systemd case
// runs in a guest (a unit started by the real systemctl).
import { execFileSync } from 'node:child_process';
import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Agent, environmentFileText, parseNotifierFile, writeEventFile, type ActionOutcome, type NotifierFileError } from '../src/index.js';
import { FakeModule } from './fake-kernel.js';
import { memoryLog, waitFor, withTempDir } from './helpers.js';

/** A systemctl that appends, for each call: its argv, its USIP_* environment and the event file. */
async function fakeSystemctl(dir: string, record: string, eventDir: string): Promise<string> {
  const path = join(dir, 'systemctl');
  await writeFile(
    path,
    [
      '#!/bin/sh',
      `exec >>'${record}'`,
      'echo "argv:$#"; for a in "$@"; do printf "arg=%s\\n" "$a"; done',
      'env | grep "^USIP_" | sort | sed "s/^/env:/"',
      // What the unit would read, as sh reads it (EnvironmentFile= reads the same syntax).
      `f='${eventDir}'/"$4".env; printf 'file-mode=%s\\n' "$(stat -c %a "$f")"`,
      '( . "$f"; printf "file-path=%s|\\n" "$USIP_EVENT_PATH"; printf "file-state=%s\\n" "$USIP_EVENT_SPACE_STATE"; printf "file-index=%s\\n" "$USIP_NOTIFIER_INDEX" )',
      'echo end',
    ].join('\n') + '\n',
  );
  await chmod(path, 0o755);
  return path;
}

test('unit: a name systemctl can start, not an option or a path; with run, or without any action with timeoutSeconds, refused', () => {
  const problems = (notifier: object) => {
    try {
      parseNotifierFile('/etc/usip.d/x.json', JSON.stringify({ notifiers: [{ type: 'mtab', action: 'mount', ...notifier }] }));
      return [];
    } catch (error) {
      return (error as NotifierFileError).problems.map((p) => [p.pointer, p.rule]);
    }
  };
  for (const good of ['cleanup.service', 'backup@srv-disk.service', 'var\\x2dlog.mount', 'nightly.timer', 'a:b_c.target']) assert.equal(problems({ unit: good }), [], good);
  for (const bad of ['--now.service', '-.mount', '.hidden.service', '../x.service', '/etc/systemd/system/x.service', 'x.service/y', 'backup@.service', 'x', 'x.device', 'x.scope', 'x.service ', 'x;y.service', `${'a'.repeat(250)}.service`]) {
    assert.ok(problems({ unit: bad }).some(([pointer]) => pointer === '/notifiers/0/unit'), bad);
  }
  assert.equal(problems({ unit: 'x.service', run: ['/bin/true'] }), [['/notifiers/0/unit', 'action']]);
  assert.equal(problems({ unit: 'x.service', notify: false, kernLog: true }), [['/notifiers/0/unit', 'notify']]);
  assert.equal(problems({ unit: 'x.service', timeoutSeconds: 5 }), []);
  assert.equal(problems({ timeoutSeconds: 5 }), [['/notifiers/0/timeoutSeconds', 'run']]);
});

test('the event file: EnvironmentFile= syntax that sh reads back exactly, written atomically with mode 0600 in a 0700 directory', async () => {
  await withTempDir(async (dir) => {
    const tricky = 'a "quoted" $HOME `id` back\\slash\nnew line \'single\'';
    const file = join(dir, 'events', 'x.service.env');
    writeEventFile(file, environmentFileText({ USIP_EVENT_PATH: tricky, USIP_EVENT_SEQ: '7' }));
    assert.is((await stat(file)).mode & 0o777, 0o600);
    assert.is((await stat(join(dir, 'events'))).mode & 0o777, 0o700);
    assert.is(await readFile(file, 'utf8'), 'USIP_EVENT_PATH="a \\"quoted\\" \\$HOME \\`id\\` back\\\\slash\nnew line \'single\'"\nUSIP_EVENT_SEQ="7"\n');
    const read = execFileSync('/bin/sh', ['-c', '. "$0"; printf "%s|%s" "$USIP_EVENT_PATH" "$USIP_EVENT_SEQ"', file], { encoding: 'utf8', env: { HOME: '/nowhere' } });
    assert.is(read, `${tricky}|7`);
    // Written again: replaced whole, and no temporary file left.
    writeEventFile(file, environmentFileText({ USIP_EVENT_SEQ: '8' }));
    assert.is(await readFile(file, 'utf8'), 'USIP_EVENT_SEQ="8"\n');
    assert.equal(execFileSync('ls', ['-A', join(dir, 'events')], { encoding: 'utf8' }), 'x.service.env\n');
  });
});

test('run: a low-space event starts the unit: systemctl start --no-block -- UNIT, the event in its environment and in UNIT.env', async () => {
  await withTempDir(async (base) => {
    const record = join(base, 'record');
    const eventDir = join(base, 'events');
    await fakeSystemctl(base, record, eventDir);
    const conf = join(base, 'usip.d');
    execFileSync('mkdir', ['-m', '755', conf]);
    await writeFile(
      join(conf, '60-var.json'),
      JSON.stringify({ notifiers: [{ type: 'mtab', action: 'mount' }, { type: 'storage', action: 'low-space', pathPrefix: '/var', threshold: 10, unit: 'cleanup.service' }] }),
    );
    const module = new FakeModule();
    const mem = memoryLog();
    const outcomes: ActionOutcome[] = [];
    const path = process.env.PATH;
    // The systemctl found first in PATH, as the agent's default ("systemctl") looks it up.
    process.env.PATH = `${base}:${path ?? '/usr/bin:/bin'}`;
    const agent = new Agent({ configDir: conf, connect: module.connect, log: mem.log, output: () => undefined, onOutcome: (o) => outcomes.push(o), unitEventDir: eventDir, debounceMs: 50 });
    try {
      await agent.start();
      const weird = '/var/we"ird $x';
      const seq = module.post({ type: 'storage', action: 'low-space', path: weird });
      await waitFor('systemctl to run', () => outcomes.length === 1);
      const out = (await readFile(record, 'utf8')).trimEnd().split('\n');
      assert.equal(out.slice(0, 5), ['argv:4', 'arg=start', 'arg=--no-block', 'arg=--', 'arg=cleanup.service']);
      const env = Object.fromEntries(out.filter((l) => l.startsWith('env:')).map((l) => l.slice(4).split(/=(.*)/s).slice(0, 2)));
      assert.equal(
        [env.USIP_EVENT_TYPE, env.USIP_EVENT_ACTION, env.USIP_EVENT_SPACE_STATE, env.USIP_EVENT_PATH, env.USIP_EVENT_SEQ, env.USIP_NOTIFIER_FILE, env.USIP_NOTIFIER_INDEX, env.USIP_EVENT_CMD],
        ['storage', 'low-space', 'low', weird, String(seq), join(conf, '60-var.json'), '1', '1'],
      );
      assert.equal(out.slice(out.indexOf('file-mode=600')), ['file-mode=600', `file-path=${weird}|`, 'file-state=low', 'file-index=1', 'end']);
      assert.equal(outcomes.map((o) => [o.exitCode, o.job.argv, o.job.unit]), [[0, ['systemctl', 'start', '--no-block', '--', 'cleanup.service'], 'cleanup.service']]);
      assert.equal(mem.find('command ran').map((r) => [r.command, r.unit, r.event]), [['systemctl', 'cleanup.service', 'storage/low-space']]);
    } finally {
      process.env.PATH = path;
      await agent.stop();
    }
  });
});

test('run: the systemctl option names another systemctl; one that fails, or an event file that cannot be written, is logged as a failed action', async () => {
  await withTempDir(async (base) => {
    const record = join(base, 'record');
    const eventDir = join(base, 'events');
    const systemctl = await fakeSystemctl(base, record, eventDir);
    const failing = join(base, 'failing-systemctl');
    await writeFile(failing, '#!/bin/sh\necho "Failed to start $4: Unit $4 not found." >&2\nexit 5\n');
    await chmod(failing, 0o755);
    const conf = join(base, 'usip.d');
    execFileSync('mkdir', ['-m', '755', conf]);
    await writeFile(join(conf, '10-m.json'), JSON.stringify({ notifiers: [{ type: 'mtab', action: 'mount', unit: 'on-mount@srv.service', timeoutSeconds: 10 }] }));
    for (const [bin, dir, expect] of [
      [systemctl, eventDir, 'ok'],
      [failing, eventDir, 'exit'],
      [systemctl, join(record, 'not-a-dir'), 'file'],
    ] as const) {
      const module = new FakeModule();
      const mem = memoryLog();
      const outcomes: ActionOutcome[] = [];
      const agent = new Agent({ configDir: conf, connect: module.connect, log: mem.log, onOutcome: (o) => outcomes.push(o), systemctl: bin, unitEventDir: dir, debounceMs: 50 });
      try {
        await agent.start();
        module.post({ type: 'mtab', action: 'mount', path: '/srv' });
        await waitFor('the action', () => outcomes.length === 1);
        const [o] = outcomes;
        if (expect === 'ok') {
          assert.equal([o!.exitCode, o!.job.argv, o!.job.timeoutMs], [0, [systemctl, 'start', '--no-block', '--', 'on-mount@srv.service'], 10_000]);
          assert.ok((await readFile(join(eventDir, 'on-mount@srv.service.env'), 'utf8')).includes('USIP_EVENT_PATH="/srv"\n'));
        } else if (expect === 'exit') {
          assert.equal(mem.find('the command failed (exit status 5)').map((r) => [r.unit, r.stderr]), [['on-mount@srv.service', 'Failed to start on-mount@srv.service: Unit on-mount@srv.service not found.']]);
        } else {
          assert.equal(mem.find('the command could not be started').map((r) => [r.unit, r.code]), [['on-mount@srv.service', 'ENOTDIR']]);
          assert.match(String(mem.find('the command could not be started')[0]!.error), `cannot write the event file ${join(record, 'not-a-dir', 'on-mount@srv.service.env')}`);
        }
      } finally {
        await agent.stop();
      }
    }
  });
});

test.run();
