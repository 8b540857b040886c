// The agent's Prometheus metrics over real HTTP, on TCP and on real unix sockets: the agent on real
// files with real commands, the module's registration side in process (fake-kernel.ts), the
// module's counters from an injected source (and, for their absence, from the real client on this
// machine, which has no usip module). vm-metrics.test.ts scrapes an agent on the real module.
import { spawn } from 'node:child_process';
import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { StatsResult } from '@usip/client';
import { Agent, type ActionOutcome } from '../src/index.js';
import {
  MODULE_STATS,
  MetricsServerError,
  PrometheusMetrics,
  parseMetricsAddress,
  readModuleStats,
  serveMetrics,
  type MetricsServer,
  type ModuleStatsSource,
} from '../src/metrics.js';
import { FakeModule } from './fake-kernel.js';
import { memoryLog, waitFor, withTempDir } from './helpers.js';
import { httpRequest, samples, value } from './metrics-helpers.js';

const write = (dir: string, name: string, content: unknown) => writeFile(join(dir, name), JSON.stringify(content, null, 2));

const STATS: StatsResult = {
  scope: 'host',
  listeners: 3,
  notifiers: 7,
  queued: 0,
  queueLimit: 4096,
  posted: 1234n,
  dropped: 5n,
  delivered: 1229n,
  undeliverable: 0n,
  objects: 42,
  mountHooks: 2,
  storageHooks: 0,
  coalesceSlots: 0,
  watchedMounts: 0,
  statfsPending: 0,
  spaceErrorsUnreported: 0n,
};
const fakeStats: ModuleStatsSource = async () => ({ present: true, stats: STATS });

interface Harness {
  dir: string;
  agent: Agent;
  metrics: PrometheusMetrics;
  server: MetricsServer;
  outcomes: ActionOutcome[];
  scrape(): Promise<string>;
}

/** An agent on `dir` with its metrics served on 127.0.0.1 (a free port). */
async function withMetricsAgent(
  module: FakeModule,
  setup: (dir: string) => Promise<void>,
  body: (h: Harness) => Promise<void>,
  options: { moduleStats?: ModuleStatsSource; moduleStatsTimeoutMs?: number; limits?: ConstructorParameters<typeof Agent>[0]['limits'] } = {},
): Promise<void> {
  await withTempDir(async (dir) => {
    await setup(dir);
    const { log } = memoryLog();
    const metrics = new PrometheusMetrics({
      version: '9.8.7',
      processMetrics: false,
      moduleStats: options.moduleStats ?? fakeStats,
      ...(options.moduleStatsTimeoutMs !== undefined ? { moduleStatsTimeoutMs: options.moduleStatsTimeoutMs } : {}),
    });
    const outcomes: ActionOutcome[] = [];
    const agent = new Agent({
      configDir: dir,
      connect: module.connect,
      log,
      output: () => undefined,
      onOutcome: (o) => outcomes.push(o),
      metrics,
      debounceMs: 50,
      retryIntervalMs: 100,
      checkIntervalMs: 100,
      ...(options.limits !== undefined ? { limits: options.limits } : {}),
    });
    metrics.observe(agent);
    const server = await serveMetrics(metrics, parseMetricsAddress('127.0.0.1:0'), log);
    try {
      await agent.start();
      const scrape = async () => {
        const r = await httpRequest(server.address);
        assert.is(r.status, 200, r.body);
        return r.body;
      };
      await body({ dir, agent, metrics, server, outcomes, scrape });
    } finally {
      await agent.stop();
      await server.close();
    }
  });
}

test('--metrics addresses: TCP, IPv6 in brackets, host names, unix sockets; bad ones refused with what is wrong', () => {
  assert.equal(parseMetricsAddress('127.0.0.1:9464'), { kind: 'tcp', host: '127.0.0.1', port: 9464, text: '127.0.0.1:9464' });
  assert.equal(parseMetricsAddress('[::1]:9464'), { kind: 'tcp', host: '::1', port: 9464, text: '[::1]:9464' });
  assert.equal(parseMetricsAddress('localhost:9464'), { kind: 'tcp', host: 'localhost', port: 9464, text: 'localhost:9464' });
  assert.equal(parseMetricsAddress('0.0.0.0:0'), { kind: 'tcp', host: '0.0.0.0', port: 0, text: '0.0.0.0:0' });
  assert.equal(parseMetricsAddress('/run/usip-agent/metrics.sock'), { kind: 'unix', path: '/run/usip-agent/metrics.sock', text: '/run/usip-agent/metrics.sock' });
  assert.equal(parseMetricsAddress('unix:/run/m.sock'), { kind: 'unix', path: '/run/m.sock', text: 'unix:/run/m.sock' });
  const refused: [string, RegExp][] = [
    ['9464', /^no port in "9464"; expected HOST:PORT/],
    [':9464', /^no host in ":9464": say which address to listen on \(0\.0\.0\.0:9464 or \[::\]:9464/],
    ['::1:9464', /^an IPv6 address goes in brackets, as in \[::1\]:9464/],
    ['[127.0.0.1]:9464', /^"127\.0\.0\.1" in brackets is not an IPv6 address/],
    ['127.0.0.1:99999', /^"99999" is not a port number \(0 to 65535\)/],
    ['127.0.0.1:http', /^"http" is not a port number/],
    ['127.0.0.1:', /^"" is not a port number/],
    ['300.1.2.3:9464', /^"300\.1\.2\.3" is not an IPv4 address or a host name/],
    ['bad_host!:9464', /^"bad_host!" is not an IPv4 address or a host name/],
    ['unix:metrics.sock', /^a unix socket path must be absolute, got "metrics\.sock"/],
    ['/run/usip-agent/', /^"\/run\/usip-agent\/" names a directory, not a socket/],
    [`/run/${'x'.repeat(110)}`, /^the unix socket path "\/run\/x+" is 115 bytes long; at most 107 fit in a socket address$/],
  ];
  for (const [text, message] of refused) assert.throws(() => parseMetricsAddress(text), message, text);
});

test('a scrape: the files, the listeners, the module present with its counters as usip_module_* gauges', async () => {
  const module = new FakeModule();
  await withMetricsAgent(
    module,
    async (dir) => {
      await write(dir, '10-a.json', { notifiers: [{ type: 'mtab', action: 'mount', run: ['/bin/true'] }, { type: 'mtab', action: 'umount' }] });
      await write(dir, '20-b.json', { scope: 'global', notifiers: [{ type: 'storage', action: 'enospc' }] });
      await write(dir, '30-bad.json', { notifiers: [{ type: 'mtab', action: 'enospc' }] });
    },
    async ({ dir, scrape, server }) => {
      const r = await httpRequest(server.address);
      assert.is(r.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
      const text = await scrape();
      const s = samples(text);
      assert.is(value(s, 'usip_agent_info', { version: '9.8.7' }), 1);
      assert.is(value(s, 'usip_agent_listeners'), 2);
      assert.is(value(s, 'usip_agent_notifier_files', { state: 'valid' }), 2);
      assert.is(value(s, 'usip_agent_notifier_files', { state: 'invalid' }), 1);
      assert.is(value(s, 'usip_agent_module_present'), 1);
      assert.is(value(s, 'usip_agent_module_connected'), 1);
      assert.is(value(s, 'usip_agent_module_stats_failures_total'), 0);
      // Every counter of the spec's stats, under its spec name.
      assert.equal(MODULE_STATS.map((m) => m.metric).sort(), [
        'usip_module_coalesce_slots',
        'usip_module_delivered',
        'usip_module_dropped',
        'usip_module_listeners',
        'usip_module_mount_hooks',
        'usip_module_notifiers',
        'usip_module_objects',
        'usip_module_posted',
        'usip_module_queue_limit',
        'usip_module_queued',
        'usip_module_space_errors_unreported',
        'usip_module_statfs_pending',
        'usip_module_storage_hooks',
        'usip_module_undeliverable',
        'usip_module_watched_mounts',
      ]);
      for (const { key, metric } of MODULE_STATS) {
        assert.is(value(s, metric, { scope: 'host' }), Number(STATS[key]), metric);
        assert.match(text, `# TYPE ${metric} gauge\n`);
      }
      // A file's series exist from the start, at 0, for what its notifiers can do.
      const a = join(dir, '10-a.json');
      assert.is(value(s, 'usip_agent_events_received_total', { file: a, type: 'mtab', action: 'mount' }), 0);
      assert.is(value(s, 'usip_agent_events_received_total', { file: a, type: 'mtab', action: 'umount' }), 0);
      assert.is(value(s, 'usip_agent_actions_started_total', { file: a, kind: 'run' }), 0);
      assert.is(value(s, 'usip_agent_actions_started_total', { file: a, kind: 'stdout' }), 0);
      assert.is(value(s, 'usip_agent_actions_failed_total', { file: a, kind: 'run' }), 0);
      assert.is(value(s, 'usip_agent_events_received_total', { file: join(dir, '20-b.json'), type: 'storage', action: 'enospc' }), 0);
      // Prometheus conventions: counters end in _total, every metric has HELP, all are usip_.
      for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
        assert.ok(m[1]!.startsWith('usip_'), m[1]);
        if (m[2] === 'counter') assert.ok(m[1]!.endsWith('_total'), m[1]);
        assert.match(text, new RegExp(`^# HELP ${m[1]} \\S`, 'm'));
      }
    },
  );
});

test('events, missed counts, overruns; commands that succeed, fail and time out; events written to stdout', async () => {
  const module = new FakeModule();
  await withMetricsAgent(
    module,
    async (dir) => {
      await write(dir, '10-a.json', {
        notifiers: [
          { type: 'mtab', action: 'mount', run: ['/bin/true'] },
          { type: 'mtab', action: 'umount', run: ['/bin/sh', '-c', 'exit 3'] },
          { type: 'mtab', action: 'move', run: ['/bin/sleep', '30'], timeoutSeconds: 0.2 },
          { type: 'mtab', action: 'remount' },
        ],
      });
      await write(dir, '20-b.json', { notifiers: [{ type: 'mtab', action: 'mount' }] });
    },
    async ({ dir, agent, outcomes, scrape }) => {
      const a = join(dir, '10-a.json');
      const b = join(dir, '20-b.json');
      module.post({ type: 'mtab', action: 'mount', path: '/x' });
      module.post({ type: 'mtab', action: 'mount', path: '/y', missed: 4 });
      module.post({ type: 'mtab', action: 'umount', path: '/x' });
      module.post({ type: 'mtab', action: 'move', path: '/y' });
      module.post({ type: 'mtab', action: 'remount', path: '/y' });
      const listenerA = module.open.find((l) => l.options.notifiers.length === 4)!;
      listenerA.deliver({ kind: 'overrun', lost: 9 });
      listenerA.deliver({ kind: 'missed', missed: 6 });
      await waitFor('four commands', () => outcomes.length === 4);
      await agent.actions.idle();
      const s = samples(await scrape());
      const ev = (file: string, action: string) => value(s, 'usip_agent_events_received_total', { file, type: 'mtab', action });
      assert.equal([ev(a, 'mount'), ev(a, 'umount'), ev(a, 'move'), ev(a, 'remount')], [2, 1, 1, 1]);
      assert.is(ev(b, 'mount'), 2);
      // The missed field of an event (per listener: both files' listeners carry it) and a missed item.
      assert.is(value(s, 'usip_agent_events_missed_total', { file: a }), 10);
      assert.is(value(s, 'usip_agent_events_missed_total', { file: b }), 4);
      assert.is(value(s, 'usip_agent_listener_overruns_total', { file: a }), 1);
      assert.is(value(s, 'usip_agent_listener_overruns_total', { file: b }), 0);
      const act = (name: string, file: string, kind: string) => value(s, `usip_agent_actions_${name}_total`, { file, kind });
      assert.equal(
        ['started', 'succeeded', 'failed', 'timed_out', 'dropped'].map((n) => act(n, a, 'run')),
        [4, 2, 1, 1, 0],
      );
      assert.is(act('started', a, 'stdout'), 1);
      assert.is(act('started', b, 'stdout'), 2);
      assert.is(value(s, 'usip_agent_action_duration_seconds_count', { file: a, kind: 'run' }), 4);
      assert.is(value(s, 'usip_agent_action_duration_seconds_bucket', { file: a, kind: 'run', le: '+Inf' }), 4);
      assert.is(value(s, 'usip_agent_actions_running'), 0);
      assert.is(value(s, 'usip_agent_actions_queued'), 0);
      // What the runner counted itself agrees.
      assert.equal(agent.actions.counters, { started: 4, succeeded: 2, failed: 1, timedOut: 1, dropped: 0, discarded: 0 });
    },
  );
});

test("an event that two listeners of a file received during a replacement is counted once, as it is acted on once", async () => {
  const module = new FakeModule();
  await withMetricsAgent(
    module,
    async (dir) => write(dir, '10-a.json', { notifiers: [{ type: 'mtab', action: 'mount' }] }),
    async ({ dir, scrape }) => {
      module.onRegister = () => void module.post({ type: 'mtab', action: 'mount', path: '/overlap' });
      await write(dir, '10-a.json', { notifiers: [{ type: 'mtab', action: 'mount' }, { type: 'mtab', action: 'umount' }] });
      await waitFor('the old listener to close', () => module.ops.includes('close 1'));
      module.onRegister = undefined;
      const file = join(dir, '10-a.json');
      const s = samples(await scrape());
      assert.is(value(s, 'usip_agent_events_received_total', { file, type: 'mtab', action: 'mount' }), 1);
      assert.is(value(s, 'usip_agent_actions_started_total', { file, kind: 'stdout' }), 1);
      assert.is(value(s, 'usip_agent_listeners'), 1);
    },
  );
});

test("events dropped because a file's queue is full; commands running and queued", async () => {
  const module = new FakeModule();
  let gate = '';
  await withMetricsAgent(
    module,
    async (dir) => {
      gate = join(dir, 'gate');
      // Waits until the test opens the gate: the first command is still running when the others come.
      await write(dir, '10-a.json', { notifiers: [{ type: 'mtab', action: 'mount', run: ['/bin/sh', '-c', 'while [ ! -e "$0" ]; do sleep 0.02; done', gate] }] });
    },
    async ({ dir, agent, outcomes, scrape }) => {
      const file = join(dir, '10-a.json');
      for (const path of ['/1', '/2', '/3', '/4']) module.post({ type: 'mtab', action: 'mount', path });
      await waitFor('the drops', () => agent.actions.counters.dropped === 2);
      let s = samples(await scrape());
      assert.is(value(s, 'usip_agent_actions_dropped_total', { file, kind: 'run' }), 2);
      assert.is(value(s, 'usip_agent_actions_running'), 1);
      assert.is(value(s, 'usip_agent_actions_queued'), 1);
      assert.is(value(s, 'usip_agent_events_received_total', { file, type: 'mtab', action: 'mount' }), 4);
      await writeFile(gate, '');
      await waitFor('two commands', () => outcomes.length === 2);
      await agent.actions.idle();
      s = samples(await scrape());
      assert.is(value(s, 'usip_agent_actions_started_total', { file, kind: 'run' }), 2);
      assert.is(value(s, 'usip_agent_actions_succeeded_total', { file, kind: 'run' }), 2);
      assert.is(value(s, 'usip_agent_actions_running'), 0);
    },
    { limits: { maxRunning: 1, maxQueuedPerFile: 1 } },
  );
});

test('files: a file made invalid, then removed, moves between the states; the module unloaded: 0 listeners, not connected', async () => {
  const module = new FakeModule();
  await withMetricsAgent(
    module,
    async (dir) => write(dir, '10-a.json', { notifiers: [{ type: 'mtab', action: 'mount' }] }),
    async ({ dir, scrape }) => {
      const files = async () => {
        const s = samples(await scrape());
        return [value(s, 'usip_agent_notifier_files', { state: 'valid' }), value(s, 'usip_agent_notifier_files', { state: 'invalid' })];
      };
      assert.equal(await files(), [1, 0]);
      await writeFile(join(dir, '10-a.json'), '{ "notifiers": ');
      await waitFor('invalid', async () => (await files())[1] === 1);
      assert.equal(await files(), [0, 1]);
      await mkdir(join(dir, '20-dir.json'));
      await waitFor('the directory named *.json', async () => (await files())[1] === 2);
      await write(dir, '10-a.json', { notifiers: [{ type: 'mtab', action: 'umount' }] });
      await waitFor('valid again', async () => (await files())[0] === 1);
      assert.equal(await files(), [1, 1]);
      await rm(join(dir, '10-a.json'));
      await rm(join(dir, '20-dir.json'), { recursive: true });
      await waitFor('gone', async () => (await files()).join() === '0,0');
      await write(dir, '30-c.json', { notifiers: [{ type: 'mtab', action: 'mount' }] });
      await waitFor('registered', async () => value(await scrape(), 'usip_agent_listeners') === 1);
      module.unload();
      await waitFor('the loss seen', async () => value(await scrape(), 'usip_agent_module_connected') === 0);
      assert.is(value(await scrape(), 'usip_agent_listeners'), 0);
    },
  );
});

test('without the module (this machine): module_present 0 and no usip_module_* samples, from the real client', async () => {
  const module = new FakeModule();
  module.loaded = false;
  await withMetricsAgent(
    module,
    async () => undefined,
    async ({ scrape }) => {
      const text = await scrape();
      const s = samples(text);
      assert.is(value(s, 'usip_agent_module_present'), 0);
      assert.is(value(s, 'usip_agent_module_connected'), 0);
      assert.is(value(s, 'usip_agent_module_stats_failures_total'), 0);
      assert.equal(s.filter((x) => x.name.startsWith('usip_module_')), []);
    },
    { moduleStats: readModuleStats },
  );
});

test("the module's counters not read in time: the scrape answers anyway, counts the failure, leaves them out", async () => {
  const module = new FakeModule();
  let calls = 0;
  const hanging: ModuleStatsSource = (signal) =>
    new Promise((_, reject) => {
      calls++;
      signal.addEventListener('abort', () => reject(signal.reason));
    });
  await withMetricsAgent(
    module,
    async () => undefined,
    async ({ scrape }) => {
      let s = samples(await scrape());
      assert.is(value(s, 'usip_agent_module_stats_failures_total'), 1);
      assert.equal(s.filter((x) => x.name.startsWith('usip_module_')), []);
      // Not known from the read: the agent's own connection says.
      assert.is(value(s, 'usip_agent_module_present'), 1);
      s = samples(await scrape());
      assert.is(value(s, 'usip_agent_module_stats_failures_total'), 2);
      // One read per scrape, shared by every gauge that needs it.
      assert.is(calls, 2);
    },
    { moduleStats: hanging, moduleStatsTimeoutMs: 100 },
  );
});

test("the module there but its counters not read: present 1, the failure counted; a read that tells nothing: present from the agent's connection", async () => {
  const present = new PrometheusMetrics({ version: '1', processMetrics: false, moduleStats: async () => ({ present: true, error: new Error('EPERM') }) });
  let s = samples(await present.metrics());
  assert.is(value(s, 'usip_agent_module_present'), 1);
  assert.is(value(s, 'usip_agent_module_stats_failures_total'), 1);
  assert.equal(s.filter((x) => x.name.startsWith('usip_module_')), []);
  // No agent observed (so not connected), and a source that fails outright: 0.
  const unknown = new PrometheusMetrics({ version: '1', processMetrics: false, moduleStats: async () => Promise.reject(new Error('EMFILE')) });
  s = samples(await unknown.metrics());
  assert.is(value(s, 'usip_agent_module_present'), 0);
  assert.is(value(s, 'usip_agent_module_stats_failures_total'), 1);
  // The module's user scope (an agent without CAP_SYS_ADMIN): the counters it has, labelled so.
  const { posted: _p, undeliverable: _u, objects: _o, mountHooks: _m, ...user } = STATS;
  const own = new PrometheusMetrics({ version: '1', processMetrics: false, moduleStats: async () => ({ present: true, stats: { ...user, scope: 'user' } }) });
  s = samples(await own.metrics());
  assert.is(value(s, 'usip_module_listeners', { scope: 'user' }), 3);
  assert.is(value(s, 'usip_module_posted', { scope: 'user' }), undefined);
  assert.is(s.filter((x) => x.name.startsWith('usip_module_')).length, MODULE_STATS.length - 4);
});

test('HTTP: /metrics for GET and HEAD (no body), 404 elsewhere, 405 with Allow for other methods', async () => {
  await withMetricsAgent(
    new FakeModule(),
    async () => undefined,
    async ({ server }) => {
      const head = await httpRequest(server.address, '/metrics', 'HEAD');
      assert.is(head.status, 200);
      assert.is(head.body, '');
      assert.is(head.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
      assert.ok(Number(head.headers['content-length']) > 1000);
      assert.is((await httpRequest(server.address, '/metrics?x=1')).status, 200);
      const notFound = await httpRequest(server.address, '/');
      assert.equal([notFound.status, notFound.body], [404, 'not found: the metrics are at /metrics\n']);
      assert.is((await httpRequest(server.address, '/metrics/x')).status, 404);
      for (const method of ['POST', 'PUT', 'DELETE']) {
        const r = await httpRequest(server.address, '/metrics', method);
        assert.equal([r.status, r.headers.allow, r.body], [405, 'GET, HEAD', `method ${method} not allowed: GET or HEAD\n`], method);
      }
    },
  );
});

test('a unix socket: made 0660, scraped, removed at close; a stale one replaced; one in use, or a file, refused', async () => {
  await withTempDir(async (dir) => {
    const { log, find } = memoryLog();
    const metrics = new PrometheusMetrics({ version: '1', processMetrics: false, moduleStats: fakeStats });
    const path = join(dir, 'metrics.sock');
    let server = await serveMetrics(metrics, parseMetricsAddress(`unix:${path}`), log);
    assert.is(server.address, path);
    assert.is((await stat(path)).mode & 0o777, 0o660);
    assert.ok((await stat(path)).isSocket());
    const r = await httpRequest(path);
    assert.is(r.status, 200);
    assert.is(value(r.body, 'usip_module_posted', { scope: 'host' }), 1234);
    await server.close();
    assert.not.ok(existsSync(path));

    // A socket nobody listens on any more: its process was killed.
    const child = spawn(process.execPath, ['-e', `require('node:net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`]);
    await new Promise((resolve) => child.on('exit', resolve));
    assert.ok((await stat(path)).isSocket(), 'a stale socket');
    server = await serveMetrics(metrics, parseMetricsAddress(path), log);
    assert.is(find('replaced a stale metrics socket').length, 1);
    assert.is((await httpRequest(path)).status, 200);

    // Served: a second server on it is refused, the first one goes on.
    try {
      await serveMetrics(metrics, parseMetricsAddress(path), log);
      assert.unreachable('a socket in use');
    } catch (error) {
      assert.instance(error, MetricsServerError);
      assert.is((error as Error).message, `cannot serve metrics on ${path}: another process serves on that socket`);
    }
    assert.is((await httpRequest(path)).status, 200);
    await server.close();

    const file = join(dir, 'file.sock');
    await writeFile(file, 'precious');
    try {
      await serveMetrics(metrics, parseMetricsAddress(file), log);
      assert.unreachable('a regular file');
    } catch (error) {
      assert.is((error as Error).message, `cannot serve metrics on ${file}: it exists and is not a socket (a regular file); it is left alone`);
    }
    assert.ok(existsSync(file));

    // An address in use on TCP: the bind error, with the address.
    const busy: NetServer = createNetServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const port = (busy.address() as { port: number }).port;
    try {
      await serveMetrics(metrics, parseMetricsAddress(`127.0.0.1:${port}`), log);
      assert.unreachable('a port in use');
    } catch (error) {
      assert.match((error as Error).message, `cannot serve metrics on 127.0.0.1:${port}: listen EADDRINUSE: address already in use 127.0.0.1:${port}`);
    } finally {
      busy.close();
    }
  });
});

test.run();
