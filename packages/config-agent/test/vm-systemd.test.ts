// usip-agent.service under a real systemd: a usip-vm guest booted with the host's systemd as pid 1
// (init "systemd") and usip.ko loaded runs test/guest/systemd-agent.sh, which installs the unit
// as shipped (plus a drop-in that only points ExecStart at this tree's agent), starts, reloads
// and stops it with systemctl, mounts outside the service, writes a bad notifier file, and
// lets the watchdog kill a stopped agent. The host checks what systemctl showed at each step and
// the unit's journal (systemd's own debug messages included: they name each notification and
// state change). USIP_TEST_KERNELS (a usip-vm selector) picks the kernels; 6.12 by default.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { resolveKernels, runInVm, type VmRunResult } from '@usip/vm';

const root = fileURLToPath(new URL('../../..', import.meta.url));

function read(run: VmRunResult, file: string): string {
  return readFileSync(join(run.resultsDir, file), 'utf8');
}

/** `systemctl show` output of a step, by property (the step must have succeeded). */
function shown(run: VmRunResult, step: string): Record<string, string> {
  assert.is(read(run, `${step}.status`).trim(), '0', read(run, `${step}.err`));
  return Object.fromEntries(
    read(run, `${step}.out`)
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
}

function succeeded(run: VmRunResult, step: string): void {
  assert.is(read(run, `${step}.status`).trim(), '0', `${step}: ${read(run, `${step}.err`)}`);
}

interface Entry {
  priority: number;
  pid: number;
  /** systemd's own messages about the unit come from pid 1. */
  fromSystemd: boolean;
  message: string;
}

function journal(run: VmRunResult): Entry[] {
  return read(run, 'journal.json')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const e = JSON.parse(l) as Record<string, unknown>;
      // journalctl gives a message that is not valid UTF-8 as an array of bytes.
      const message = Array.isArray(e.MESSAGE) ? Buffer.from(e.MESSAGE as number[]).toString() : String(e.MESSAGE);
      return { priority: Number(e.PRIORITY), pid: Number(e._PID), fromSystemd: e._PID === '1', message };
    });
}

/** The messages of systemd about the unit, from the first one matching `from` on. */
function systemdSays(run: VmRunResult): string[] {
  return journal(run)
    .filter((e) => e.fromSystemd)
    .map((e) => e.message.replace(/^usip-agent\.service: /, ''));
}

/** `wanted`, in this order, among `all` (other items may come between). */
function inOrder(all: string[], wanted: Array<string | RegExp>): boolean {
  let i = 0;
  for (const item of all) if (i < wanted.length && (typeof wanted[i] === 'string' ? item === wanted[i] : (wanted[i] as RegExp).test(item))) i += 1;
  return i === wanted.length;
}

const kernels = await resolveKernels(process.env.USIP_TEST_KERNELS?.trim() || '6.12', { log: (m) => process.stderr.write(`${m}\n`) });

for (const kernel of kernels) {
  const run = await runInVm({
    kernel,
    init: 'systemd',
    modules: [join(root, 'packages/kernel-module/build/{kver}/usip.ko')],
    command: ['sh', 'packages/config-agent/test/guest/systemd-agent.sh'],
    cwd: root,
    timeoutMs: 300_000,
    stream: true,
  });
  const test = suite(`usip-agent.service under systemd as pid 1 in the ${kernel.series} guest (${run.kernel.release})`);

  test('the guest ran the script to the end without a wait timing out; the module unloaded; the kernel log is clean', () => {
    assert.is(run.timedOut, false, 'timed out');
    assert.equal(run.loadErrors, [], 'usip.ko loaded');
    assert.equal(run.problems, [], 'kernel log problems');
    assert.is(run.exitCode, 0, run.output);
    assert.is(run.unloaded, true, 'usip unloaded');
    const timeouts = existsSync(join(run.resultsDir, 'timeouts')) ? read(run, 'timeouts') : '';
    assert.is(timeouts, '', `waits that timed out: ${timeouts}\njournal:\n${existsSync(join(run.resultsDir, 'journal-boot.txt')) ? read(run, 'journal-boot.txt').slice(-6000) : ''}`);
  });

  test('systemctl start returns once the agent said READY=1: active, running, with its status', () => {
    succeeded(run, 'daemon-reload');
    succeeded(run, 'start');
    const s = shown(run, 'started');
    assert.equal([s.Type, s.ActiveState, s.SubState, s.NRestarts], ['notify', 'active', 'running', '0']);
    assert.is(s.StatusText, '1 file, 1 notifier, 1 listener; module present');
    assert.ok(inOrder(systemdSays(run), ['Changed dead -> start', /^Got notification message from PID \d+ \(READY=1, STATUS=1 file, 1 notifier, 1 listener; module present\)$/, 'Changed start -> running']));
  });

  test('the agent is in the host mount namespace; a mount made outside the service runs the notifier command', () => {
    assert.is(read(run, 'agent.mntns'), read(run, 'init.mntns'));
    assert.match(read(run, 'agent.mntns'), /^mnt:\[\d+\]\n$/);
    assert.is(read(run, 'actions.log'), 'mount /run/usip-sd/m usip-outside\n');
  });

  test('a unit action: the agent starts the unit from its sandbox; the unit runs outside it, with the event', () => {
    const [event, cgroup, nnp] = read(run, 'unit.log').split('\n');
    assert.is(event, 'mount /run/usip-sd/u usip-unit-src');
    assert.is(cgroup, '0::/system.slice/usip-sd-probe.service');
    assert.match(nnp!, /^NoNewPrivs:\s+0$/);
    assert.match(read(run, 'agent.nonewprivs'), /^NoNewPrivs:\s+1\n$/);
    const s = shown(run, 'unit-show');
    assert.equal([s.Result, s.ExecMainStatus], ['success', '0']);
  });

  test('journalctl -p err -u usip-agent shows the bad notifier file and no info line; the journal has the agent\'s priorities', () => {
    succeeded(run, 'journal-err');
    const err = read(run, 'journal-err.out');
    assert.match(err, /^\/run\/usip\.d\/20-bad\.json: invalid notifier file pointer=\/ rule=json problem="not valid JSON: /m);
    assert.not.match(err, /ready configDir=|registered|connected to the usip module|command ran/);
    const agent = journal(run).filter((e) => !e.fromSystemd);
    const ready = agent.find((e) => e.message.startsWith('ready '));
    assert.ok(ready, 'the ready line');
    assert.is(ready!.priority, 6);
    // configDir (one directory) or configDirs (the list, with vendor and admin directories).
    assert.match(ready!.message, /^ready configDirs?=(\/run\/usip\.d|\["\/run\/usip\.d"\]) valid=1 registered=1 connected=true$/);
    assert.is(agent.find((e) => e.message.includes('20-bad.json: invalid notifier file'))!.priority, 3);
    // No JSON and no time stamp: journal lines, as the agent chose for a stderr that is the journal.
    assert.ok(agent.every((e) => !e.message.startsWith('{') && !/^<\d>/.test(e.message)), agent.map((e) => e.message).join('\n'));
  });

  test('systemctl reload: RELOADING=1 with MONOTONIC_USEC, reload -> running only after READY=1; the new file counted', () => {
    succeeded(run, 'reload');
    const says = systemdSays(run);
    assert.ok(
      inOrder(says, [
        'Changed running -> reload',
        /^Got notification message from PID \d+ \(RELOADING=1, MONOTONIC_USEC=\d+, STATUS=reading the configuration directory again\)$/,
        /^Got notification message from PID \d+ \(READY=1, STATUS=2 files, 2 notifiers, 2 listeners; module present\)$/,
        'Changed reload -> running',
      ]),
      says.join('\n'),
    );
    const s = shown(run, 'reloaded');
    assert.equal([s.ActiveState, s.SubState, s.NRestarts, s.StatusText], ['active', 'running', '0', '2 files, 2 notifiers, 2 listeners; module present']);
  });

  test('the watchdog of the unit is armed and pinged, and the agent is not killed', () => {
    const s = shown(run, 'before-stop');
    assert.equal([s.WatchdogUSec, s.ActiveState, s.NRestarts], ['1min', 'active', '0']);
    succeeded(run, 'watchdog-timestamp');
    assert.ok(Number(read(run, 'watchdog-timestamp.out')) > 0, 'systemd recorded a ping');
    assert.ok(systemdSays(run).some((m) => /^Got notification message from PID \d+ \(WATCHDOG=1\)$/.test(m)));
  });

  test('systemctl stop: STOPPING=1, exit 0, inactive', () => {
    succeeded(run, 'stop');
    const s = shown(run, 'stopped');
    assert.equal([s.ActiveState, s.SubState, s.Result, s.ExecMainStatus], ['inactive', 'dead', 'success', '0']);
    assert.ok(inOrder(systemdSays(run), ['Changed running -> stop-sigterm', /^Got notification message from PID \d+ \(STOPPING=1, STATUS=stopping\)$/, 'Changed stop-sigterm -> dead']));
  });

  test('WatchdogSec=3s: pings keep the agent alive past several periods; a stopped agent is killed and restarted', () => {
    succeeded(run, 'start-2');
    assert.is(read(run, 'watchdog-pings').trim(), '4', 'four more pings arrived');
    const alive = shown(run, 'watchdog-alive');
    assert.equal([alive.WatchdogUSec, alive.ActiveState, alive.NRestarts], ['3s', 'active', '0']);
    const restarted = shown(run, 'watchdog-restarted');
    assert.equal([restarted.ActiveState, restarted.SubState, restarted.NRestarts], ['active', 'running', '1']);
    assert.ok(inOrder(systemdSays(run), ['Watchdog timeout (limit 3s)!', "Failed with result 'watchdog'.", 'Changed dead -> start', 'Changed start -> running']), systemdSays(run).join('\n'));
    succeeded(run, 'stop-2');
  });

  test.run();
}
