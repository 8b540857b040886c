// usip without the module, on this machine's own kernel (no usip module can be loaded here),
// through host/backends.sh in a private mount namespace: usip status shows each feature's
// backend and why (human and --json); usip mounts, mount, df, devices and watch with each
// backend forced (kernel: listmount/statmount, fanotify; mountinfo) give mountinfo's table, df's
// bytes and each change; --backend module fails with the module's message; storage listeners
// say they need the module; as uid 65534 fanotify is refused, status says why, and watch polls
// mountinfo.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseMountinfo, sameMount, type MountInfo } from '@usip/client';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'usip-cli-backends-'));
const results = mkdtempSync(join(tmpdir(), 'usip-cli-results-'));
execFileSync('unshare', ['-m', '--propagation', 'private', 'sh', join(root, 'packages/cli/test/host/backends.sh'), root, dir, results], {
  stdio: 'inherit',
  timeout: 300_000,
});
process.on('exit', () => {
  rmSync(dir, { recursive: true, force: true });
  rmSync(results, { recursive: true, force: true });
});

function step(name: string): { status: number; out: string; err: string } {
  const read = (suffix: string) => readFileSync(join(results, `${name}.${suffix}`), 'utf8');
  return { status: Number(read('status')), out: read('out'), err: read('err') };
}

const MODULE_HELP = 'The usip kernel module is not loaded: the generic netlink family "usip" does not exist';

test('usip status without the module: exit 1, the module error, and every feature\'s backend and reason', () => {
  const human = step('status');
  assert.is(human.status, 1);
  assert.match(human.err, `usip: ${MODULE_HELP}`);
  assert.match(human.out, /^usip module is not loaded: storage events and low space unavailable; the rest is served without it\n/);
  assert.match(human.out, /\n {2}mount table {5}kernel {2}listmount\+statmount {10}module not loaded\n/);
  assert.match(human.out, /\n {2}mount changes {3}kernel {2}fanotify\+statmount {11}module not loaded\n/);
  assert.match(human.out, /\n {2}remounts {8}kernel {2}poll\(mountinfo\)\+statmount {4}module not loaded; fanotify does not report remounts\n/);
  assert.match(human.out, /\n {2}statfs {10}kernel {2}statfs\(2\) +module not loaded\n/);
  assert.match(human.out, /\n {2}storage events {2}none {4}- +module not loaded\n/);
  const report = JSON.parse(step('status-json').out);
  assert.is(report.loaded, false);
  assert.is(report.error.code, 'USIP_MODULE_NOT_LOADED');
  assert.equal(
    report.backends.features.map((c: { feature: string; backend: string }) => [c.feature, c.backend]),
    [
      ['mount-table', 'kernel'],
      ['mount-changes', 'kernel'],
      ['remounts', 'kernel'],
      ['statfs', 'kernel'],
      ['block-devices', 'kernel'],
      ['storage-events', 'none'],
      ['low-space', 'none'],
    ],
  );
  assert.is(report.backends.features[0].passedOver[0].reason, 'module not loaded');
});

function fromJson(mount: Record<string, unknown>): MountInfo {
  const { uniqueId: _u, ...out } = mount as Record<string, unknown>;
  if (typeof out.mntNs === 'string') out.mntNs = BigInt(out.mntNs);
  return out as unknown as MountInfo;
}

for (const backend of ['kernel', 'mountinfo'] as const) {
  test(`--backend ${backend}: usip mounts --json is mountinfo read right after, field by field, in order`, () => {
    const { status, out, err } = step(`mounts-${backend}`);
    assert.is(status, 0, err);
    const { mounts } = JSON.parse(out) as { mounts: Record<string, unknown>[] };
    const truth = parseMountinfo(readFileSync(join(results, `mountinfo-${backend}`), 'utf8'));
    assert.is(mounts.length, truth.length);
    mounts.forEach((m, i) => {
      const mine = fromJson(m);
      const { mntNs: _n, ...withoutNs } = mine;
      assert.ok(sameMount(withoutNs as MountInfo, truth[i]!), `${JSON.stringify(m)} vs ${JSON.stringify(truth[i])}`);
    });
    assert.is(mounts.every((m) => typeof m.uniqueId === 'string'), backend === 'kernel', 'unique ids with listmount only');
    const one = step(`mount-${backend}`);
    assert.is(one.status, 0, one.err);
    assert.is(JSON.parse(one.out).mountPoint, join(dir, 't1'));
  });

  test(`--backend ${backend}: usip df prints df's bytes (tmpfs of known sizes, FILE arguments, a missing FILE)`, () => {
    for (const [mine, theirs] of [
      [`df-${backend}`, 'df-coreutils'],
      ...['-H', '-P', '--total', '-l', '-i', '-Ph'].map((o) => [`df${o}-${backend}`, `df${o}-coreutils`]),
      [`df-files-${backend}`, 'df-files-coreutils'],
    ]) {
      const a = step(mine!);
      const b = step(theirs!);
      assert.is(a.status, b.status, `${mine}: ${a.err}`);
      assert.fixture(a.out, b.out);
      assert.ok(a.out.split('\n').length >= 4, a.out);
    }
    const missing = step(`df-missing-${backend}`);
    assert.is(missing.status, 1);
    assert.is(missing.err.replace(/^usip df/, 'df'), step('df-missing-coreutils').err);
  });

  test(`--backend ${backend}: usip watch reports a mount, a move, a remount and an umount`, () => {
    const { status, out, err } = step(`watch-${backend}`);
    assert.is(status, 0, err);
    assert.match(err, backend === 'kernel' ? 'backend kernel: fanotify mount events + mountinfo poll for remounts' : 'backend mountinfo: mountinfo poll');
    const changes = out.trim().split('\n').map((line) => JSON.parse(line));
    assert.equal(
      changes.map((c: { kind: string; mount: { mountPoint: string; options: string } }) => [c.kind, c.mount.mountPoint.slice(dir.length), c.mount.options]),
      [
        ['mount', '/w', 'rw,relatime'],
        ['move', '/m', 'rw,relatime'],
        ['remount', '/m', 'ro,relatime'],
        ['umount', '/m', 'ro,relatime'],
      ],
    );
    assert.equal(changes.map((c: { nsSeq: string }) => c.nsSeq), ['1', '2', '3', '4']);
  });
}

test('usip devices gives the same devices and mounts from either backend', () => {
  const kernel = step('devices-kernel');
  const mountinfo = step('devices-mountinfo');
  assert.is(kernel.status, 0, kernel.err);
  assert.is(mountinfo.status, 0, mountinfo.err);
  assert.fixture(kernel.out, mountinfo.out);
  assert.ok(JSON.parse(kernel.out).blockdevices.length > 0);
});

test('--backend module without the module: exit 1, naming the backend and how to load the module', () => {
  for (const name of ['module-mounts', 'kernel-watch-as-module']) {
    const { status, out, err } = step(name);
    assert.is(status, 1, name);
    assert.is(out, '', name);
    assert.match(err, /^usip: the module backend was asked for \(--backend module\), and it cannot serve the mount (table|changes)\. The usip kernel module is not loaded/, name);
    assert.match(err, 'modprobe usip', name);
  }
  const forced = JSON.parse(step('module-status').out);
  assert.is(forced.backends.forced, 'module');
  assert.is(forced.backends.features[0].backend, 'none');
});

test('storage listeners say that only the module provides them; mtab listeners need it too', () => {
  assert.is(step('listen-storage').status, 1);
  assert.match(step('listen-storage').err, /^usip: storage events need the usip kernel module: no other backend provides them\. The usip kernel module is not loaded/);
  assert.match(step('listen-low-space').err, /^usip: low-space notifications need the usip kernel module: no other backend provides them\./);
  assert.ok(step('listen-mtab').err.startsWith(`usip: ${MODULE_HELP}`), step('listen-mtab').err);
});

test('as uid 65534: fanotify is refused (EPERM), status says why, watch polls mountinfo, --backend kernel fails naming it', () => {
  const report = JSON.parse(step('nobody-status-json').out);
  const changes = report.backends.features.find((c: { feature: string }) => c.feature === 'mount-changes');
  assert.is(changes.backend, 'mountinfo');
  assert.match(changes.reason, /^module not loaded; fanotify needs CAP_SYS_ADMIN \(EPERM/);
  assert.is(report.backends.features[0].backend, 'kernel', 'listmount needs no privilege');
  const watch = step('nobody-watch');
  assert.is(watch.status, 0, watch.err);
  assert.match(watch.err, 'backend mountinfo: mountinfo poll');
  const [change] = watch.out.trim().split('\n').map((line) => JSON.parse(line));
  assert.equal([change.kind, change.mount.source], ['mount', 'nobodysees']);
  const forced = step('nobody-forced-kernel-watch');
  assert.is(forced.status, 1);
  assert.match(forced.err, /^usip: the kernel backend cannot serve the mount changes: fanotify needs CAP_SYS_ADMIN \(EPERM/);
});

test.run();
