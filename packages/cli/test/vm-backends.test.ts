// End to end, on every supported kernel: the backends that serve the mount table without the
// module, and the fallback when the module has a feature off. One boot per kernel, usip.ko
// loaded with usip.fail_check=mount-events (its BTF check of that feature made to fail, as on a
// kernel it could not verify), running test/guest/backends.sh in a private mount namespace:
//   - usip status names the kernel's mechanism (or mountinfo) for mount changes, with the
//     module's reason, and the module for what it still serves;
//   - watchMounts() with the default choice falls back for mount changes and stays exact;
//   - after rmmod, with no module at all: usip status and usip mounts, and the 15,000-mount storm
//     (mounts, a remount, one lazy umount of them all) on what the client picks: 6.1 mountinfo
//     and its poll, 6.12 listmount/statmount and the mountinfo poll, 7.x listmount/statmount and
//     fanotify + statmount; the watcher's table equals mountinfo after each phase.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { parseMountinfo } from '@usip/client';
import { runInVm } from '@usip/vm';
import { read, step } from './vm-results.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const STORM_SIZE = 15_000;

const stormDir = join(root, 'node_modules/.cache/usip-cli');
const storm = join(stormDir, 'mount-storm');
mkdirSync(stormDir, { recursive: true });
execFileSync('gcc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', storm, join(root, 'packages/cli/test/guest/mount-storm.c')], { stdio: 'inherit' });

interface Choice {
  feature: string;
  backend: string;
  mechanism: string;
  reason: string;
}

interface PhaseCheck {
  tableSize: number;
  mountinfoSize: number;
  differences: number;
  firstDifferences: string[];
  uniqueIds: number;
}

interface StormReport {
  backend: string;
  fallbackReason: string | null;
  plan: Choice[];
  error?: string;
  consumerError?: string;
  mountPhase?: { byKind: Record<string, number>; resyncs: unknown[]; check: PhaseCheck; caughtUpMs: number; cpuMs: number };
  remountPhase?: { byKind: Record<string, number>; check: PhaseCheck };
  umountPhase?: { byKind: Record<string, number>; check: PhaseCheck };
}

const KERNELS = [
  // kernel; without the module: the watcher's backend, the mechanisms of the table and its changes
  { kernel: '6.1', watcher: 'mountinfo', table: /^read \/proc\/self\/mountinfo$/, changes: /^poll\(mountinfo\)$/ },
  { kernel: '6.12', watcher: 'mountinfo', table: /^listmount\+statmount$/, changes: /^poll\(mountinfo\)$/ },
  { kernel: '7', watcher: 'kernel', table: /^listmount\+statmount$/, changes: /^fanotify\+statmount$/ },
] as const;

for (const { kernel, watcher, table, changes } of KERNELS) {
  const run = await runInVm({
    kernel,
    modules: [{ path: join(root, 'packages/kernel-module/build/{kver}/usip.ko'), params: ['fail_check=mount-events'] }],
    command: ['sh', 'packages/cli/test/guest/backends.sh', storm, String(STORM_SIZE)],
    cwd: root,
    timeoutMs: 900_000,
    // The script unloads the module itself, to use the client with no module at all.
    unload: false,
    stream: true,
  });
  const test = suite(`backends and fallback in the ${kernel} guest (${run.kernel.release})`);
  const report = (label: string): StormReport => JSON.parse(read(run, `bstorm-${label}.json`)) as StormReport;
  const stepJson = (name: string, exitStatus = 0) => {
    const { status, out, err } = step(run, name);
    assert.is(status, exitStatus, `${name}: ${err}`);
    return JSON.parse(out) as { backends: { features: Choice[] } };
  };
  const feature = (features: Choice[], name: string) => features.find((f) => f.feature === name)!;

  test('the guest ran the script to the end; the kernel log is clean', () => {
    assert.is(run.timedOut, false, 'timed out');
    assert.equal(run.loadErrors, [], 'usip.ko loaded');
    assert.equal(run.problems, [], 'kernel log problems');
    assert.is(run.exitCode, 0, run.output);
    assert.is(step(run, 'rmmod').status, 0, step(run, 'rmmod').err);
  });

  test('usip status: mount changes come from the kernel or mountinfo because the module has mount-events off; the module serves the rest', () => {
    const { features } = stepJson('status-forced-off').backends;
    const mountChanges = feature(features, 'mount-changes');
    assert.is.not(mountChanges.backend, 'module', JSON.stringify(mountChanges));
    assert.match(mountChanges.reason, /mount-events off: forced-off/, mountChanges.reason);
    // With the module loaded, fanotify (where there is one) or the poll: never the module's events.
    assert.match(mountChanges.mechanism, /^(fanotify\+statmount|poll\(mountinfo\))$/, mountChanges.mechanism);
    assert.is(feature(features, 'mount-table').backend, 'module');
    assert.is(feature(features, 'statfs').backend, 'module');
    assert.is(feature(features, 'storage-events').backend, 'module');
  });

  test('watchMounts() falls back for mount changes and its table stays mountinfo\'s', () => {
    const r = report('fallback');
    assert.is(r.error, undefined, r.error);
    assert.is(r.consumerError, undefined, r.consumerError);
    assert.is.not(r.backend, 'module');
    for (const phase of [r.mountPhase!, r.remountPhase!, r.umountPhase!]) {
      assert.is(phase.check.differences, 0, phase.check.firstDifferences.join('\n'));
    }
    assert.is(r.mountPhase!.byKind.mount, 300);
    assert.ok(r.remountPhase!.byKind.remount! >= 1, JSON.stringify(r.remountPhase!.byKind));
  });

  test(`with no module: the ${STORM_SIZE}-mount storm on the ${watcher} watcher: mounts, a remount and a lazy umount, the table exact after each`, () => {
    const r = report('nomodule');
    assert.is(r.error, undefined, r.error);
    assert.is(r.consumerError, undefined, r.consumerError);
    assert.is(r.backend, watcher);
    assert.is(r.fallbackReason, null, 'root may mark its namespace: no fallback from fanotify to the poll');
    assert.match(feature(r.plan, 'mount-changes').mechanism, changes);
    const mount = r.mountPhase!;
    assert.is(mount.check.differences, 0, mount.check.firstDifferences.join('\n'));
    assert.ok(mount.check.tableSize > STORM_SIZE, `${mount.check.tableSize} mounts`);
    assert.is(mount.check.uniqueIds > 0, watcher === 'kernel', 'unique ids from statmount only');
    assert.is(r.remountPhase!.check.differences, 0, r.remountPhase!.check.firstDifferences.join('\n'));
    assert.ok(r.remountPhase!.byKind.remount! >= 1, JSON.stringify(r.remountPhase!.byKind));
    const umount = r.umountPhase!;
    assert.is(umount.check.differences, 0, umount.check.firstDifferences.join('\n'));
    assert.ok(umount.check.tableSize < 100, `${umount.check.tableSize} mounts left`);
  });

  test('with no module at all: usip status names each backend and usip mounts is mountinfo', () => {
    // status exits 1 without the module (and says how to load it), still reporting the backends.
    const { features } = stepJson('status-unloaded', 1).backends;
    assert.match(step(run, 'status-unloaded').err, /not loaded[^\n]*modprobe usip/);
    for (const f of features.filter((x) => ['mount-table', 'mount-changes', 'statfs'].includes(x.feature))) {
      assert.is.not(f.backend, 'module', f.feature);
      assert.match(f.reason, /module not loaded/, f.reason);
    }
    assert.is(feature(features, 'storage-events').backend, 'none');
    assert.match(feature(features, 'mount-changes').mechanism, changes);
    assert.match(feature(features, 'mount-table').mechanism, table);
    const { mounts } = JSON.parse(step(run, 'mounts-unloaded').out) as { mounts: Array<{ id: number; mountPoint: string }> };
    const truth = parseMountinfo(readFileSync(join(run.resultsDir, 'mountinfo-unloaded'), 'utf8'));
    assert.equal(
      mounts.map((m) => [m.id, m.mountPoint]),
      truth.map((m) => [m.id, m.mountPoint]),
    );
  });

  test.run();
}
