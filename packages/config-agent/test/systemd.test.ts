// The agent as a Type=notify service, on the development machine: the built `usip-agent run` as a
// real process with NOTIFY_SOCKET naming a unix datagram socket that a python3 helper binds
// (Node cannot bind one), as a path and as an abstract name; what arrives there is what systemd
// would read. Also the pieces: STATUS= text, WATCHDOG_USEC/WATCHDOG_PID, the journal log format.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, fstatSync, openSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createLogger, journalLine, stderrIsJournal } from '../src/log.js';
import { SystemdNotifier, statusText, watchdogUsec } from '../src/systemd.js';
import { memoryLog, waitFor, withTempDir } from './helpers.js';

const bin = fileURLToPath(new URL('../dist/bin.js', import.meta.url));

// Binds the socket (a leading '@' is the abstract namespace), says "bound", then prints each
// datagram as one JSON string per line.
const RECEIVER = `
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
name = sys.argv[1]
s.bind('\\0' + name[1:] if name.startswith('@') else name)
print('"bound"', flush=True)
while True:
    print(json.dumps(s.recv(65536).decode()), flush=True)
`;

interface Receiver {
  datagrams: string[];
  close(): void;
}

async function receiver(address: string): Promise<Receiver> {
  const child = spawn('python3', ['-c', RECEIVER, address], { stdio: ['ignore', 'pipe', 'inherit'] });
  const received: string[] = [];
  let buffered = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    for (const line of lines) received.push(JSON.parse(line) as string);
  });
  await waitFor('the receiver to bind', () => received[0] === 'bound');
  received.shift();
  return { datagrams: received, close: () => child.kill('SIGKILL') };
}

interface Agent {
  child: ChildProcess;
  stderr: string;
  exited: Promise<number | null>;
}

/** The real agent; `shell` wraps it (`exec` keeps the pid, so WATCHDOG_PID=$$ names the agent). */
function agent(dir: string, env: Record<string, string>, shellPrefix = ''): Agent {
  const args = ['run', '--config-dir', dir, '--retry-interval', '0.2'];
  const child = shellPrefix
    ? spawn('sh', ['-c', `${shellPrefix} exec "$0" "$@"`, process.execPath, bin, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] })
    : spawn(process.execPath, [bin, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  const a: Agent = { child, stderr: '', exited: new Promise((r) => child.on('exit', (code) => r(code))) };
  child.stderr!.on('data', (chunk: Buffer) => (a.stderr += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  void a.exited.then(() => clearTimeout(timer));
  return a;
}

/** The assignments of one datagram, by name. */
const fields = (datagram: string) => Object.fromEntries(datagram.split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));

async function lifecycle(address: string, socketEnv: string): Promise<void> {
  await withTempDir(async (dir) => {
    await writeFile(join(dir, '10-a.json'), JSON.stringify({ notifiers: [{ type: 'mtab', action: 'mount' }, { type: 'mtab', action: 'umount' }] }));
    await writeFile(join(dir, '20-bad.json'), '{ "notifiers": [');
    const r = await receiver(address);
    try {
      const a = agent(dir, { NOTIFY_SOCKET: socketEnv });
      const ready = await waitFor('READY=1', () => r.datagrams.find((d) => d.startsWith('READY=1')), 15_000);
      // No module on the development machine: ready, waiting for it, with the valid file counted.
      assert.equal(fields(ready), { READY: '1', STATUS: 'waiting for the usip module (not loaded); 1 file, 2 notifiers, 0 listeners valid' });
      // The default log format is json: stderr is a pipe here, not the journal.
      assert.match(a.stderr, /^\{"level":"info"/);

      await writeFile(join(dir, '30-b.json'), JSON.stringify({ notifiers: [{ type: 'storage', action: 'enospc' }] }));
      const before = process.hrtime.bigint() / 1000n;
      a.child.kill('SIGHUP');
      const reloading = await waitFor('RELOADING=1', () => r.datagrams.find((d) => d.startsWith('RELOADING=1')), 10_000);
      const f = fields(reloading);
      assert.equal(Object.keys(f), ['RELOADING', 'MONOTONIC_USEC', 'STATUS']);
      // CLOCK_MONOTONIC in µs: the same clock as this process's hrtime, read after the signal.
      assert.ok(/^\d+$/.test(f.MONOTONIC_USEC!) && BigInt(f.MONOTONIC_USEC!) >= before, reloading);
      const index = r.datagrams.indexOf(reloading);
      const again = await waitFor('READY=1 after the reload', () => r.datagrams.slice(index + 1).find((d) => d.startsWith('READY=1')), 10_000);
      assert.equal(fields(again), { READY: '1', STATUS: 'waiting for the usip module (not loaded); 2 files, 3 notifiers, 0 listeners valid' });

      a.child.kill('SIGTERM');
      assert.is(await a.exited, 0, a.stderr);
      const last = r.datagrams.at(-1)!;
      assert.equal(fields(last), { STOPPING: '1', STATUS: 'stopping' });
      // No watchdog without WATCHDOG_USEC.
      assert.not.ok(r.datagrams.includes('WATCHDOG=1'), r.datagrams.join(' | '));
    } finally {
      r.close();
    }
  });
}

test('NOTIFY_SOCKET as a path: READY=1 with STATUS, SIGHUP -> RELOADING=1 + MONOTONIC_USEC -> READY=1, SIGTERM -> STOPPING=1', async () => {
  await withTempDir(async (sockets) => {
    const path = join(sockets, 'notify');
    await lifecycle(path, path);
  });
});

test('NOTIFY_SOCKET as an abstract name (@...)', async () => {
  const name = `@usip-agent-test-${process.pid}`;
  await lifecycle(name, name);
});

async function watchdogRun(env: Record<string, string>, shellPrefix = ''): Promise<string[]> {
  const name = `@usip-agent-watchdog-${process.pid}-${Math.random().toString(36).slice(2)}`;
  return withTempDir(async (dir) => {
    const r = await receiver(name);
    try {
      const a = agent(dir, { NOTIFY_SOCKET: name, ...env }, shellPrefix);
      await waitFor('READY=1', () => r.datagrams.some((d) => d.startsWith('READY=1')), 15_000);
      a.child.kill('SIGTERM');
      assert.is(await a.exited, 0, a.stderr);
      return [...r.datagrams];
    } finally {
      r.close();
    }
  });
}

test('WATCHDOG_USEC: WATCHDOG=1 right after READY=1, for no WATCHDOG_PID or one naming the agent', async () => {
  // The first ping is sent as soon as the agent is ready, before it can see SIGTERM.
  for (const [env, prefix] of [
    [{ WATCHDOG_USEC: '60000000' }, ''],
    [{ WATCHDOG_USEC: '60000000' }, 'WATCHDOG_PID=$$; export WATCHDOG_PID;'],
  ] as const) {
    const datagrams = await watchdogRun(env, prefix);
    const ready = datagrams.findIndex((d) => d.startsWith('READY=1'));
    assert.is(datagrams[ready + 1], 'WATCHDOG=1', datagrams.join(' | '));
    assert.ok(datagrams.at(-1)!.startsWith('STOPPING=1'));
  }
});

test('WATCHDOG_PID naming another process: no WATCHDOG=1', async () => {
  const datagrams = await watchdogRun({ WATCHDOG_USEC: '60000000', WATCHDOG_PID: String(process.pid) });
  assert.ok(datagrams.some((d) => d.startsWith('READY=1')));
  assert.not.ok(datagrams.includes('WATCHDOG=1'), datagrams.join(' | '));
});

test('watchdogUsec: as sd_watchdog_enabled(3) decides; malformed values are named', () => {
  assert.is(watchdogUsec({}), undefined);
  assert.is(watchdogUsec({ WATCHDOG_USEC: '30000000' }), 30_000_000);
  assert.is(watchdogUsec({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '42' }, 42), 30_000_000);
  assert.is(watchdogUsec({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '43' }, 42), undefined);
  assert.throws(() => watchdogUsec({ WATCHDOG_USEC: '30s' }), /WATCHDOG_USEC="30s" is not a whole number of microseconds/);
  assert.throws(() => watchdogUsec({ WATCHDOG_USEC: '0' }), /WATCHDOG_USEC="0"/);
  assert.throws(() => watchdogUsec({ WATCHDOG_USEC: '1', WATCHDOG_PID: 'me' }), /WATCHDOG_PID="me" is not a process id/);
});

test('statusText', () => {
  assert.is(statusText({ files: 3, notifiers: 5, listeners: 2, connected: true }), '3 files, 5 notifiers, 2 listeners; module present');
  assert.is(statusText({ files: 1, notifiers: 1, listeners: 0, connected: false }), 'waiting for the usip module (not loaded); 1 file, 1 notifier, 0 listeners valid');
});

test('SystemdNotifier: nothing without NOTIFY_SOCKET; a failing send is logged once; a status with a newline stays one assignment', () => {
  const sent: string[] = [];
  const { log, find } = memoryLog();
  const off = new SystemdNotifier({ send: (s) => (sent.push(s), true), log, env: {} });
  off.ready('x');
  assert.equal(sent, []);
  let fail = true;
  const on = new SystemdNotifier({
    send: (s) => {
      if (fail) throw new Error('ECONNREFUSED');
      sent.push(s);
      return true;
    },
    log,
    env: { NOTIFY_SOCKET: '/run/x' },
  });
  on.ready('a');
  on.status('b');
  assert.is(find('cannot notify systemd').length, 1);
  fail = false;
  on.status('two\nlines');
  on.status('two lines');
  assert.equal(sent, ['STATUS=two lines']);
  assert.is(find('notifying systemd works again').length, 1);
});

test('SystemdNotifier watchdog: pinged at once when healthy, withheld (and said once) when not; none for another WATCHDOG_PID', () => {
  const sent: string[] = [];
  const { log, find } = memoryLog();
  let healthy = false;
  const asked: number[] = [];
  const notifier = new SystemdNotifier({
    send: (s) => (sent.push(s), true),
    log,
    env: { NOTIFY_SOCKET: '@x', WATCHDOG_USEC: '4000000' },
    healthy: (watchdogMs) => (asked.push(watchdogMs), healthy),
  });
  assert.is(notifier.startWatchdog(), 2000, 'every half period');
  notifier.stopWatchdog();
  assert.equal(sent, []);
  assert.equal(asked, [4000], 'asked with the whole period');
  assert.is(find(/^unhealthy: not pinging the systemd watchdog/).length, 1);
  healthy = true;
  notifier.startWatchdog();
  notifier.stopWatchdog();
  assert.equal(sent, ['WATCHDOG=1']);
  assert.is(find('healthy again: pinging the systemd watchdog').length, 1);
  const other = new SystemdNotifier({ send: (s) => (sent.push(s), true), log, env: { NOTIFY_SOCKET: '@x', WATCHDOG_USEC: '4000000', WATCHDOG_PID: '1' } });
  assert.is(other.startWatchdog(), undefined);
  const malformed = new SystemdNotifier({ send: (s) => (sent.push(s), true), log, env: { NOTIFY_SOCKET: '@x', WATCHDOG_USEC: 'soon' } });
  assert.is(malformed.startWatchdog(), undefined);
  assert.match(String(find('ignoring the watchdog systemd asks for')[0]?.error), /WATCHDOG_USEC="soon"/);
  assert.equal(sent, ['WATCHDOG=1']);
});

test('journal format: <N> syslog priority prefix, no time, one line per record', () => {
  const lines: string[] = [];
  const log = createLogger({ format: 'journal', level: 'trace', destination: { write: (l: string) => lines.push(l) } });
  log.fatal('f');
  log.error({ file: '/etc/usip.d/x.json', rule: 'enum' }, 'invalid notifier file');
  log.warn('w');
  log.info({ n: 1 }, 'i');
  log.debug('d');
  log.trace('t');
  log.error({ stack: 'Error: x\n    at y' }, 'two\nlines');
  assert.equal(lines, [
    '<2>f\n',
    '<3>/etc/usip.d/x.json: invalid notifier file rule=enum\n',
    '<4>w\n',
    '<6>i n=1\n',
    '<7>d\n',
    '<7>t\n',
    '<3>two\\nlines stack="Error: x\\n    at y"\n',
  ]);
  assert.is(journalLine({ level: 'info', msg: 'm', time: 'T' }), '<6>m\n');
});

test('stderrIsJournal: JOURNAL_STREAM must name the device and inode of the stream', async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, 'stream');
    await writeFile(path, '');
    const fd = openSync(path, 'r');
    try {
      const { dev, ino } = fstatSync(fd, { bigint: true });
      assert.ok(stderrIsJournal({ JOURNAL_STREAM: `${dev}:${ino}` }, fd));
      assert.not.ok(stderrIsJournal({ JOURNAL_STREAM: `${dev}:${ino + 1n}` }, fd));
      assert.not.ok(stderrIsJournal({}, fd));
      assert.not.ok(stderrIsJournal({ JOURNAL_STREAM: 'garbage' }, fd));
    } finally {
      closeSync(fd);
    }
  });
});

test.run();
