// Honest degradation, on each supported kernel: one QEMU boot per kernel loads usip.ko with
// fail_check=mount-events (the load-time checks of that feature fail as if the kernel's
// structures or prototypes did not match) and runs test/guest/fail_check_checks.py (raw netlink
// from Python). Exactly that feature is off, said in the kernel log and in ping's feature-status
// (forced-off); mtab notifiers that need it are refused with EOPNOTSUPP and an extack naming it;
// what does not need it works (a storage notifier hears a real ENOSPC). A fail_check naming no
// feature refuses to load; one naming the mount table takes out what needs it.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { formatVerdict } from '@usip/vm';
import { runGuestChecks } from './helpers.js';

type Status = Record<string, { available: number; reason: string | null }>;
interface Features {
  mask: number;
  status: Status;
}
interface Refusal {
  errno: number;
  error: string | null;
  extack: string | null;
}
interface Load {
  exit: number;
  stderr: string;
  log: string[];
  loaded?: boolean;
  features?: Features;
  rmmod?: number;
}

const reports = await runGuestChecks({
  command: ['/usr/bin/python3', 'packages/kernel-module/test/guest/fail_check_checks.py', '{ko}'],
  results: 'fail-check-checks.jsonl',
  params: ['fail_check=mount-events'],
  timeoutMs: 240_000,
});

/**
 * @features is @baseline (the module loaded without fail_check on the same kernel) but for @off,
 * each unavailable for its reason; the features mask is the available ones.
 */
function only(features: Features, off: Record<string, string>, baseline: Features, flags: Record<string, string>): void {
  assert.equal(Object.keys(features.status).sort(), Object.values(flags).sort(), 'one status per feature of the spec');
  for (const [name, s] of Object.entries(features.status)) {
    assert.equal(s, name in off ? { available: 0, reason: off[name] } : baseline.status[name], name);
  }
  const expected = Object.entries(flags)
    .filter(([, name]) => features.status[name]?.available === 1)
    .reduce((mask, [flag]) => mask | Number(flag), 0);
  assert.is(features.mask, expected, 'the features mask is the available ones');
}

for (const report of reports) {
  const { run } = report;
  const test = suite(`usip fail_check in the ${run.kernel.series} guest (${run.kernel.release})`);

  test('the guest ran every group of checks, the module unloaded, the kernel log is clean', () => {
    assert.equal(run.loadErrors, [], formatVerdict(run));
    assert.is(run.timedOut, false, `timed out:\n${run.output}`);
    assert.is(run.exitCode, 0, `${formatVerdict(run)}\n${run.output}`);
    assert.equal(run.problems, [], 'kernel log problems');
    assert.equal(report.errors, [], 'groups of checks that broke');
    assert.is(report.get<boolean>('end'), true);
  });

  test('without fail_check every feature of the mount table and of storage is available (what the others are compared with)', () => {
    const r = report.get<{ baseline: Load }>('reload');
    assert.is(r.baseline.exit, 0, JSON.stringify(r.baseline));
    assert.is(r.baseline.rmmod, 0);
    const everyFeature = ['netns', 'mount-table', 'mount-events', 'remount-events', 'propagation-events', 'setattr-events',
      'statfs', 'space-errors', 'quota-warnings', 'low-space'];
    for (const name of everyFeature) {
      assert.equal(r.baseline.features?.status[name], { available: 1, reason: null }, name);
    }
    // Debian's 7.x headers have fanotify's mount events; 6.1's and 6.12's do not.
    const major = Number(run.kernel.series.split('.')[0]);
    assert.equal(r.baseline.features?.status['native-mount-notify'], major >= 7 ? { available: 1, reason: null } : { available: 0, reason: 'not-built' });
    assert.equal(r.baseline.log.filter((l) => / is not available: /.test(l) && !/native-mount-notify/.test(l)), [], r.baseline.log.join('\n'));
  });

  test('fail_check=mount-events: that feature alone is off, forced-off, and the kernel log says so once', () => {
    const f = report.get<Features & { spec_mask: number; feature_flags: Record<string, string> }>('loaded.features');
    const baseline = report.get<{ baseline: Load }>('reload').baseline.features!;
    only(f, { 'mount-events': 'forced-off' }, baseline, f.feature_flags);
    assert.is(report.get<string>('loaded.param'), 'mount-events');
    const log = report.get<string[]>('loaded.log');
    const off = log.filter((l) => / is not available: /.test(l) && !/native-mount-notify/.test(l));
    assert.equal(off, ['usip: mount-events is not available: its checks were made to fail (usip.fail_check)'], log.join('\n'));
  });

  test('mount, umount and move notifiers are refused: EOPNOTSUPP naming mount-events; nothing registered or armed', () => {
    const r = report.get<Record<string, Refusal> & { listeners_after: number; mount_hooks_after: number }>('refusals.mtab');
    for (const name of ['mount', 'umount', 'move', 'mixed']) {
      assert.is(r[name].error, 'EOPNOTSUPP', `${name}: ${JSON.stringify(r[name])}`);
      assert.match(r[name].extack ?? '', /need the feature mount-events, which is not available/, name);
    }
    assert.is(r.listeners_after, 0);
    assert.is(r.mount_hooks_after, 0);
  });

  test('a remount notifier is accepted: remount-events, propagation-events and setattr-events still work', () => {
    const r = report.get<{ errno: number; extack: string | null; mount_hooks: number }>('refusals.remount');
    assert.is(r.errno, 0, JSON.stringify(r));
    assert.ok(r.mount_hooks > 0, 'the remount features armed their hooks');
  });

  test('storage notifiers still work: an enospc notifier hears a real failing write', () => {
    const s = report.get<{
      register: { errno: number; extack: string | null };
      write_errno: string | null;
      mount_point: string;
      event: { genl_cmd: number; action: number; path: string; fs_type: string; pid: number } | null;
      pid: number;
      storage_event_cmd: number;
    }>('storage.enospc');
    assert.is(s.register.errno, 0, JSON.stringify(s.register));
    assert.is(s.write_errno, 'ENOSPC');
    assert.ok(s.event, 'an event arrived');
    assert.is(s.event?.genl_cmd, s.storage_event_cmd);
    assert.is(s.event?.action, 5, 'enospc');
    assert.is(s.event?.path, s.mount_point);
    assert.is(s.event?.fs_type, 'tmpfs');
    assert.is(s.event?.pid, s.pid);
  });

  test('fail_check naming no feature refuses to load; naming the mount table takes out what needs it', () => {
    const r = report.get<{ rmmod: number; baseline: Load; bogus: Load; table: Load; again: Load; param: string; features: Features }>('reload');
    const baseline = r.baseline.features!;
    assert.is(r.rmmod, 0);
    assert.is.not(r.bogus.exit, 0, JSON.stringify(r.bogus));
    assert.match(r.bogus.stderr, /Invalid (argument|parameters)/, 'EINVAL (kmod says Invalid parameters)');
    assert.is(r.bogus.loaded, false);
    assert.ok(r.bogus.log.includes('usip: fail_check: no feature is called no-such-feature'), r.bogus.log.join('\n'));
    assert.is(r.table.exit, 0, JSON.stringify(r.table));
    const flags = report.get<{ feature_flags: Record<string, string> }>('loaded.features').feature_flags;
    const needsTable = ['mount-events', 'remount-events', 'propagation-events', 'setattr-events', 'statfs', 'space-errors', 'low-space'];
    only(r.table.features!, {
      'mount-table': 'forced-off',
      'quota-warnings': 'forced-off',
      ...Object.fromEntries(needsTable.map((n) => [n, 'needs-mount-table'])),
    }, baseline, flags);
    assert.is(r.table.rmmod, 0);
    assert.is(r.again.exit, 0, JSON.stringify(r.again));
    assert.is(r.param, 'mount-events');
    only(r.features, { 'mount-events': 'forced-off' }, baseline, flags);
  });

  test.run();
}
