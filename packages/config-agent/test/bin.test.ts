// `usip-agent run` as built, as a real process on the development machine, which has no usip
// module: it waits for the module (or, with --no-retry, exits 1 saying how to load it), validates
// and follows its files meanwhile, and stops cleanly on SIGTERM.
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { waitFor, withTempDir } from './helpers.js';

const bin = fileURLToPath(new URL('../dist/bin.js', import.meta.url));

interface Agent {
  stdout: string;
  stderr: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal: NodeJS.Signals): void;
}

function start(args: string[]): Agent {
  const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const agent: Agent = {
    stdout: '',
    stderr: '',
    exited: new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal }))),
    kill: (signal) => child.kill(signal),
  };
  child.stdout.on('data', (chunk: Buffer) => (agent.stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (agent.stderr += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  void agent.exited.then(() => clearTimeout(timer));
  return agent;
}

const records = (text: string) =>
  text
    .trimEnd()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

test('run --no-retry without the module: exit 1, saying how to load it', async () => {
  await withTempDir(async (dir) => {
    const agent = start(['run', '--config-dir', dir, '--no-retry']);
    const { code } = await agent.exited;
    assert.is(code, 1, agent.stderr);
    const fatal = records(agent.stderr).find((r) => r.msg === 'cannot start');
    assert.ok(fatal, agent.stderr);
    assert.is(fatal!.level, 'fatal');
    assert.match(String(fatal!.error), /^The usip kernel module is not loaded: .*modprobe usip.*insmod/);
    assert.is(agent.stdout, '');
  });
});

test('run without the module waits for it, checks its files meanwhile, and exits 0 on SIGTERM (human log)', async () => {
  await withTempDir(async (dir) => {
    await writeFile(join(dir, '10-ok.json'), JSON.stringify({ notifiers: [{ type: 'mtab', action: 'mount' }] }));
    await writeFile(join(dir, '20-bad.json'), JSON.stringify({ scope: 'everywhere', notifiers: [{ type: 'mtab', action: 'mount' }] }));
    const agent = start(['run', '--config-dir', dir, '--log-format', 'human', '--retry-interval', '0.2']);
    await waitFor('ready', () => /INFO  ready /.test(agent.stderr), 15_000);
    const lines = agent.stderr.split('\n');
    const line = (re: RegExp) => lines.find((l) => re.test(l));
    assert.ok(line(/^\S+Z ERROR the usip module is not loaded; waiting for it error=".*modprobe usip.*" code=USIP_MODULE_NOT_LOADED retryIntervalSeconds=0.2$/), agent.stderr);
    assert.ok(line(new RegExp(`^\\S+Z ERROR ${join(dir, '20-bad.json')}: invalid notifier file pointer=/scope rule=enum problem="must be one of \\\\"mnt-ns\\\\", \\\\"global\\\\""$`)), agent.stderr);
    assert.ok(line(new RegExp(`^\\S+Z INFO  ${join(dir, '10-ok.json')}: valid; to be registered when the usip module is loaded notifiers=1$`)), agent.stderr);
    assert.ok(line(/ready .*valid=1 registered=0 connected=false$/), agent.stderr);
    // Retried every 0.2 s, said once.
    await new Promise((r) => setTimeout(r, 700));
    assert.is(agent.stderr.match(/not loaded; waiting/g)?.length, 1);
    agent.kill('SIGTERM');
    const { code } = await agent.exited;
    assert.is(code, 0, agent.stderr);
    assert.match(agent.stderr, /INFO  signal received signal=SIGTERM\n.*INFO  stopping\n.*INFO  stopped actions=/);
  });
});

test('run with a directory that does not exist: exit 1 naming it', async () => {
  const agent = start(['run', '--config-dir', '/nonexistent/usip.d']);
  const { code } = await agent.exited;
  assert.is(code, 1);
  const fatal = records(agent.stderr).find((r) => r.msg === 'cannot start');
  assert.match(String(fatal?.error), 'cannot read the configuration directory /nonexistent/usip.d: ENOENT');
});

test('run with a bad bound: a usage error naming the option', async () => {
  const agent = start(['run', '--max-running', '0']);
  const { code } = await agent.exited;
  assert.ok(code !== 0);
  assert.match(agent.stderr, "option '--max-running <n>' argument '0' is invalid. expected a whole number of at least 1");
});

test.run();
