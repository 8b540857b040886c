// `usip-agent run --metrics` as built, as a real process on this machine (no usip module): bad
// addresses are usage errors (exit 2) naming the address, an address that cannot be bound is a
// fatal error (exit 1), and metrics are served on TCP and on a unix socket removed at exit.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { waitFor, withTempDir } from './helpers.js';
import { httpRequest, samples, value } from './metrics-helpers.js';

const bin = fileURLToPath(new URL('../dist/bin.js', import.meta.url));

interface Proc {
  stdout: string;
  stderr: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal: NodeJS.Signals): void;
}

function start(args: string[]): Proc {
  const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const proc: Proc = {
    stdout: '',
    stderr: '',
    exited: new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal }))),
    kill: (signal) => child.kill(signal),
  };
  child.stdout.on('data', (chunk: Buffer) => (proc.stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (proc.stderr += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  void proc.exited.then(() => clearTimeout(timer));
  return proc;
}

const records = (text: string) =>
  text
    .trimEnd()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

test('bad --metrics addresses: exit 2, naming the address and what is wrong, before anything starts', async () => {
  const cases: [string, string][] = [
    ['9464', 'no port in "9464"'],
    ['::1:9464', 'an IPv6 address goes in brackets, as in [::1]:9464'],
    ['unix:metrics.sock', 'a unix socket path must be absolute, got "metrics.sock"'],
    ['127.0.0.1:70000', '"70000" is not a port number (0 to 65535)'],
  ];
  for (const [address, message] of cases) {
    const agent = start(['run', '--config-dir', '/nonexistent', '--metrics', address]);
    const { code } = await agent.exited;
    assert.is(code, 2, `${address}: ${agent.stderr}`);
    assert.match(agent.stderr, `error: option '--metrics <address>' argument '${address}' is invalid. ${message}`);
    // Nothing ran: no log line.
    assert.equal(records(agent.stderr), [], agent.stderr);
  }
});

test('an address that cannot be served: exit 1, the bind error in a fatal log line, nothing registered', async () => {
  const busy = createServer();
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
  const port = (busy.address() as { port: number }).port;
  try {
    await withTempDir(async (dir) => {
      const agent = start(['run', '--config-dir', dir, '--metrics', `127.0.0.1:${port}`]);
      const { code } = await agent.exited;
      assert.is(code, 1, agent.stderr);
      const fatal = records(agent.stderr).find((r) => r.msg === 'cannot serve metrics');
      assert.ok(fatal, agent.stderr);
      assert.is(fatal!.level, 'fatal');
      assert.is(fatal!.metrics, `127.0.0.1:${port}`);
      assert.is(fatal!.error, `cannot serve metrics on 127.0.0.1:${port}: listen EADDRINUSE: address already in use 127.0.0.1:${port}`);
      assert.not.ok(records(agent.stderr).some((r) => r.msg === 'ready'));
      // A socket path in a directory that does not exist.
      const missing = join(dir, 'no', 'metrics.sock');
      const other = start(['run', '--config-dir', dir, '--metrics', missing]);
      assert.is((await other.exited).code, 1, other.stderr);
      assert.match(String(records(other.stderr).find((r) => r.msg === 'cannot serve metrics')?.error), `cannot serve metrics on ${missing}: the directory ${join(dir, 'no')} does not exist`);
    });
  } finally {
    busy.close();
  }
});

test('served on a unix socket (0660) and on [::1] / 127.0.0.1; the socket is removed when the agent exits', async () => {
  await withTempDir(async (dir) => {
    await writeFile(join(dir, '10-a.json'), JSON.stringify({ notifiers: [{ type: 'mtab', action: 'mount' }] }));
    await writeFile(join(dir, '20-bad.json'), '{');
    const socket = join(dir, 'metrics.sock');
    const agent = start(['run', '--config-dir', dir, '--metrics', `unix:${socket}`, '--retry-interval', '0.2']);
    await waitFor('ready', () => records(agent.stderr).some((r) => r.msg === 'ready'), 15_000);
    assert.ok(records(agent.stderr).some((r) => r.msg === `serving metrics on unix:${socket}/metrics` && r.metrics === socket), agent.stderr);
    assert.is((await stat(socket)).mode & 0o777, 0o660);
    const r = await httpRequest(socket);
    assert.is(r.status, 200);
    const s = samples(r.body);
    assert.is(value(s, 'usip_agent_info', { version: '0.1.0' }), 1);
    assert.is(value(s, 'usip_agent_module_present'), 0);
    assert.is(value(s, 'usip_agent_notifier_files', { state: 'valid' }), 1);
    assert.is(value(s, 'usip_agent_notifier_files', { state: 'invalid' }), 1);
    assert.is(value(s, 'usip_agent_listeners'), 0);
    // The process metrics, under the agent's prefix.
    assert.ok((value(s, 'usip_agent_process_resident_memory_bytes') ?? 0) > 0);
    assert.ok((value(s, 'usip_agent_process_open_fds') ?? 0) > 0);
    // Prometheus conventions over the whole scrape: usip_ names, _total for counters and only them, HELP for each.
    for (const m of r.body.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
      assert.ok(m[1]!.startsWith('usip_'), m[1]);
      assert.is(m[1]!.endsWith('_total'), m[2] === 'counter', m[1]);
      assert.match(r.body, new RegExp(`^# HELP ${m[1]} \\S`, 'm'));
    }
    agent.kill('SIGTERM');
    assert.is((await agent.exited).code, 0, agent.stderr);
    assert.not.ok(existsSync(socket), 'the socket is removed');

    // TCP, on a port the kernel picks (logged), IPv6 loopback when the machine has it.
    const v6 = start(['run', '--config-dir', dir, '--metrics', '[::1]:0']);
    await waitFor('serving or failing', () => records(v6.stderr).some((x) => x.msg === 'ready' || x.msg === 'cannot serve metrics'), 15_000);
    const served = records(v6.stderr).find((x) => typeof x.msg === 'string' && x.msg.startsWith('serving metrics on http://'));
    if (served !== undefined) {
      assert.match(String(served.metrics), /^\[::1\]:\d+$/);
      assert.is((await httpRequest(String(served.metrics))).status, 200);
    } else {
      assert.match(v6.stderr, /EADDRNOTAVAIL|EAFNOSUPPORT/);
    }
    v6.kill('SIGTERM');
    await v6.exited;
    const v4 = start(['run', '--config-dir', dir, '--metrics', 'localhost:0', '--log-format', 'human']);
    await waitFor('serving', () => /serving metrics on http:\/\/(127\.0\.0\.1|\[::1\]):\d+\/metrics/.test(v4.stderr), 15_000);
    // Served from before the files are read: the files count once it is ready.
    await waitFor('ready', () => / INFO  ready /.test(v4.stderr), 15_000);
    const where = /serving metrics on http:\/\/(\S+)\/metrics/.exec(v4.stderr)![1]!;
    const text = (await httpRequest(where)).body;
    assert.is(value(text, 'usip_agent_notifier_files', { state: 'valid' }), 1);
    v4.kill('SIGTERM');
    assert.is((await v4.exited).code, 0, v4.stderr);
  });
});

test.run();
