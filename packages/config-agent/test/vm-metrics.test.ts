// usip-agent run --metrics against usip.ko in a real kernel (Debian's 6.12; USIP_TEST_KERNELS
// picks others): test/guest/metrics.sh serves the metrics on a unix socket and scrapes them over
// HTTP, with `usip stats --json` just before and after each scrape, around real tmpfs mounts and
// umounts and an rmmod/insmod of the module. The host checks the scrapes.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { runInVm, type VmRunResult } from '@usip/vm';
import { MODULE_STATS } from '../src/metrics.js';
import { samples, value, type Sample } from './metrics-helpers.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const file = '/run/usip.d/10-m.json';

const read = (run: VmRunResult, name: string) => readFileSync(join(run.resultsDir, name), 'utf8');

function scrape(run: VmRunResult, n: string): Sample[] {
  assert.is(read(run, `scrape-${n}.status`).trim(), '200 text/plain; version=0.0.4; charset=utf-8', `scrape ${n}`);
  return samples(read(run, `scrape-${n}.txt`));
}

const stats = (run: VmRunResult, name: string) => JSON.parse(read(run, `stats-${name}.json`)) as Record<string, string | number>;

/**
 * Each usip_module_* gauge of scrape `n` agrees with `usip stats --json` taken around it: equal
 * to the counter when it did not move in between, else within the two readings.
 */
function consistent(run: VmRunResult, n: string): void {
  const s = scrape(run, n);
  const before = stats(run, `${n}-before`);
  const after = stats(run, `${n}-after`);
  assert.is(before.scope, 'host');
  for (const { key, metric } of MODULE_STATS) {
    const got = value(s, metric, { scope: 'host' });
    if (before[key] === undefined) {
      assert.is(got, undefined, metric);
      continue;
    }
    const [lo, hi] = [Number(before[key]), Number(after[key])].sort((a, b) => a - b) as [number, number];
    assert.ok(got !== undefined && got >= lo && got <= hi, `${metric} = ${got}, usip stats said ${before[key]} then ${after[key]}`);
  }
}

const kernels = (process.env.USIP_TEST_KERNELS?.trim() || '6.12').split(',').map((k) => k.trim());
for (const kernel of kernels) {
  const run = await runInVm({
    kernel,
    modules: [join(root, 'packages/kernel-module/build/{kver}/usip.ko')],
    command: ['sh', 'packages/config-agent/test/guest/metrics.sh'],
    cwd: root,
    timeoutMs: 240_000,
    stream: true,
  });
  const test = suite(`usip-agent --metrics against the module in the ${kernel} guest (${run.kernel.release})`);

  test('the guest ran the script to the end without a wait timing out; the kernel log is clean', () => {
    assert.is(run.timedOut, false, 'timed out');
    assert.equal(run.loadErrors, [], 'usip.ko loaded');
    assert.equal(run.problems, [], 'kernel log problems');
    assert.is(run.exitCode, 0, run.output);
    assert.is(run.unloaded, true, 'usip unloaded');
    const timeouts = existsSync(join(run.resultsDir, 'timeouts')) ? read(run, 'timeouts') : '';
    assert.is(timeouts, '', `waits that timed out: ${timeouts}\nagent log:\n${read(run, 'agent.log')}`);
    assert.is(read(run, 'socket-mode').trim(), '660 socket');
  });

  test('at start: module_present 1, one listener, the files; every usip_module_* gauge as usip stats says', () => {
    const s = scrape(run, '1');
    assert.is(value(s, 'usip_agent_module_present'), 1);
    assert.is(value(s, 'usip_agent_module_connected'), 1);
    assert.is(value(s, 'usip_agent_listeners'), 1);
    assert.is(value(s, 'usip_agent_notifier_files', { state: 'valid' }), 1);
    assert.is(value(s, 'usip_agent_notifier_files', { state: 'invalid' }), 1);
    assert.is(value(s, 'usip_agent_module_stats_failures_total'), 0);
    // The agent's one listener, with its three notifiers, is the module's only one.
    assert.is(value(s, 'usip_module_listeners', { scope: 'host' }), 1);
    assert.is(value(s, 'usip_module_notifiers', { scope: 'host' }), 3);
    assert.is(value(s, 'usip_module_mount_hooks', { scope: 'host' })! > 0, true);
    assert.is(s.filter((x) => x.name.startsWith('usip_module_')).length, MODULE_STATS.length);
    consistent(run, '1');
    assert.is(value(s, 'usip_agent_events_received_total', { file, type: 'mtab', action: 'mount' }), 0);
  });

  test('after two real tmpfs mounts and umounts: events and actions counted; the module posted them', () => {
    const s = scrape(run, '2');
    assert.is(value(s, 'usip_agent_events_received_total', { file, type: 'mtab', action: 'mount' }), 2);
    assert.is(value(s, 'usip_agent_events_received_total', { file, type: 'mtab', action: 'umount' }), 2);
    assert.is(value(s, 'usip_agent_events_missed_total', { file }), 0);
    assert.is(value(s, 'usip_agent_actions_started_total', { file, kind: 'run' }), 4);
    assert.is(value(s, 'usip_agent_actions_succeeded_total', { file, kind: 'run' }), 2);
    assert.is(value(s, 'usip_agent_actions_failed_total', { file, kind: 'run' }), 2);
    assert.is(value(s, 'usip_agent_actions_timed_out_total', { file, kind: 'run' }), 0);
    assert.is(value(s, 'usip_agent_actions_started_total', { file, kind: 'stdout' }), 2);
    assert.is(value(s, 'usip_agent_action_duration_seconds_count', { file, kind: 'run' }), 4);
    consistent(run, '2');
    const posted = (n: string) => value(scrape(run, n), 'usip_module_posted', { scope: 'host' })!;
    assert.ok(posted('2') - posted('1') >= 4, `posted ${posted('1')} then ${posted('2')}`);
    assert.ok(value(s, 'usip_module_delivered', { scope: 'host' })! >= 4);
  });

  test('the module unloaded: module_present 0, no usip_module_* samples, no listener; loaded again: back', () => {
    assert.is(read(run, 'rmmod.status').trim(), '0');
    const s = scrape(run, '3');
    assert.is(value(s, 'usip_agent_module_present'), 0);
    assert.is(value(s, 'usip_agent_listeners'), 0);
    assert.equal(s.filter((x) => x.name.startsWith('usip_module_')), []);
    assert.is(read(run, 'insmod.status').trim(), '0');
    const back = scrape(run, '4');
    assert.is(value(back, 'usip_agent_module_present'), 1);
    assert.is(value(back, 'usip_agent_listeners'), 1);
    consistent(run, '4');
    // A module loaded again counts from 0: no event posted since.
    assert.is(value(back, 'usip_module_posted', { scope: 'host' }), 0);
    // The agent's own counters go on.
    assert.is(value(back, 'usip_agent_events_received_total', { file, type: 'mtab', action: 'mount' }), 2);
  });

  test('SIGTERM: exit 0, the socket removed', () => {
    assert.is(read(run, 'agent.status').trim(), '0', read(run, 'agent.log'));
    assert.is(read(run, 'socket-after').trim(), 'absent');
  });

  test.run();
}
