// Storage events from real failures, on each supported kernel: one QEMU boot per kernel loads
// usip.ko and runs test/guest/storage_checks.py, which makes system calls fail with ENOSPC and
// EDQUOT on tmpfs, ext4 (with and without user quota), xfs and btrfs on loop devices, storms a full
// file system, and checks who may register and who hears what. The guest writes one JSON line per
// check to $USIP_VM_RESULTS/storage-checks.jsonl; each test below judges one of them.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { formatVerdict } from '@usip/vm';
import { Action, Command, Feature, QuotaType, QuotaWarning } from '../../client/src/generated/usip.js';
import { runGuestChecks } from './helpers.js';

const NOBODY = 65534;

interface StorageEvent {
  genl_cmd: number;
  action: number;
  syscall?: string;
  path?: string;
  fs_type?: string;
  source?: string;
  pid?: number;
  uid?: number;
  comm?: string;
  ino?: number;
  count?: number;
  mount_id?: number;
  unique_id?: number;
  quota_type?: number;
  quota_id?: number;
  quota_warning?: number;
  missed?: number;
}
interface Answer {
  errno: number;
  error: string | null;
  extack: string | null;
}
interface Stats {
  listeners?: number;
  objects?: number;
  queued?: number;
  storage_hooks?: number;
  coalesce_slots?: number;
}

const FD_CALLS = ['write', 'pwrite64', 'writev', 'fallocate'];
const PATH_CALLS = ['openat', 'mkdirat', 'mknodat', 'symlinkat', 'linkat', 'open', 'creat', 'mkdir', 'mknod', 'symlink', 'link', 'renameat2'];

/** Does the kernel have unique mount ids (6.8+)? */
function hasUniqueIds(release: string): boolean {
  const [major = 0, minor = 0] = release.split(/[.-]/).map(Number);
  return major > 6 || (major === 6 && minor >= 8);
}

const reports = await runGuestChecks({
  command: ['/usr/bin/python3', 'packages/kernel-module/test/guest/storage_checks.py', '--module', '{ko}'],
  results: 'storage-checks.jsonl',
  timeoutMs: 400_000,
  memoryMb: 2048,
});

for (const report of reports) {
  const { run } = report;
  const release = run.kernel.release;
  const test = suite(`usip storage events in the ${run.kernel.series} guest (${release})`);

  test('the guest ran every group of storage checks to the end, with a clean kernel log', () => {
    assert.equal(run.loadErrors, [], formatVerdict(run));
    assert.is(run.timedOut, false, `timed out:\n${run.output}`);
    assert.is(run.exitCode, 0, `${formatVerdict(run)}\n${run.output}`);
    assert.equal(report.errors.map((e) => `${e.check}: ${e.error}`), []);
    assert.is(report.get<boolean>('end'), true);
  });

  test('space-errors and quota-warnings are available; their hooks are armed only while a listener wants them, and the quota probe leaves the kprobes list', () => {
    const r = report.get<{
      features: Record<string, { available: number; reason: number | null }>;
      before: number; enospc: number; with_enospc: number; quota: number; both: number; after: number;
      quota_probe_listed: boolean; quota_probe_after: boolean; objects_after: number;
    }>('arming');
    assert.equal(r.features[String(Feature.spaceErrors)], { available: 1, reason: null });
    assert.equal(r.features[String(Feature.quotaWarnings)], { available: 1, reason: null });
    assert.equal([r.before, r.with_enospc, r.both, r.after], [0, 1, 2, 0], JSON.stringify(r));
    assert.equal([r.enospc, r.quota], [0, 0]);
    assert.is(r.quota_probe_listed, true);
    assert.is(r.quota_probe_after, false);
    assert.is(r.objects_after, 0);
  });

  test('every covered system call that fails with ENOSPC on tmpfs gives one enospc event: the call, the mount, the process, the inode', () => {
    const r = report.get<{
      listener_id: number; pid: number; comm: string;
      blk: { mount_id: number; fd_ino: number };
      ino: { mount_id: number; dir_ino: number };
      results: Record<string, { errno: string | null; event: StorageEvent | null }>;
      extra: StorageEvent[];
    }>('syscalls');
    assert.equal(Object.keys(r.results).sort(), [...FD_CALLS, ...PATH_CALLS].sort());
    for (const [call, { errno, event }] of Object.entries(r.results)) {
      const fd = FD_CALLS.includes(call);
      assert.is(errno, 'ENOSPC', `${call} failed with ENOSPC`);
      assert.ok(event, `${call}: no event`);
      assert.equal(
        { ...event, unique_id: undefined },
        {
          genl_cmd: Command.storageEvent, action: Action.enospc, syscall: call,
          path: fd ? '/tmp/st/blk' : '/tmp/st/ino', fs_type: 'tmpfs', source: 'none',
          pid: r.pid, uid: 0, comm: r.comm, ino: fd ? r.blk.fd_ino : r.ino.dir_ino, count: 1,
          mount_id: fd ? r.blk.mount_id : r.ino.mount_id, unique_id: undefined, missed: 0, listener_id: r.listener_id,
        },
        call,
      );
      assert.is(event.unique_id !== undefined, hasUniqueIds(release), `${call}: unique id only where the kernel has one`);
    }
    assert.equal(r.extra, [], 'no event beyond one per failure');
  });

  test('a storm of 10,000 failing writes is a bounded number of messages (one per interval and superblock, errno, uid) whose counts add up to every failure; the slot goes afterwards', () => {
    const r = report.get<{
      interval_ms: number; slots_during: number; failures: number; seconds: number;
      messages: number; counted: number; settled: Stats;
    }>('coalescing');
    assert.is(r.failures, 10_000);
    const bound = Math.ceil((r.seconds * 1000) / r.interval_ms) + 2;
    assert.ok(r.messages >= 1 && r.messages <= bound, `${r.messages} messages for ${r.seconds} s of storm (bound ${bound})`);
    assert.is(r.counted, r.failures, 'count adds up to the failures');
    assert.is(r.slots_during, 1);
    assert.equal([r.settled.coalesce_slots, r.settled.objects, r.settled.queued], [0, 0, 0]);
  });

  test('fallocate past the end of ext4, xfs and btrfs on a loop device gives an enospc event naming the file system, its source and the file', () => {
    const r = report.get<Record<string, { errno: string; source: string; mount_id: number; ino: number; path: string; event: StorageEvent | null; error?: string }>>('file-systems');
    for (const fs of ['ext4', 'xfs', 'btrfs']) {
      const one = r[fs];
      assert.ok(one && !one.error, `${fs}: ${one?.error}`);
      assert.is(one.errno, 'ENOSPC', fs);
      assert.ok(one.event, `${fs}: no event`);
      assert.equal(
        [one.event.action, one.event.syscall, one.event.fs_type, one.event.path, one.event.ino, one.event.mount_id],
        [Action.enospc, 'fallocate', fs, one.path, one.ino, one.mount_id], fs,
      );
      // btrfs shows its device in /proc/self/mounts but names no source in the mount.
      if (fs !== 'btrfs') assert.is(one.event.source, one.source, `${fs} source`);
    }
  });

  test('ext4 with user quota: uid 65534 over its soft and hard limits gives the kernel\'s warnings as quota events (type, id, warning) and an edquot event for the write that failed', () => {
    const r = report.get<{ pid: number; mount_id: number; path: string; first: string | null; second: string | null; ino: number; events: StorageEvent[] }>('quota');
    assert.is(r.first, null, 'over the soft limit: the write succeeds');
    assert.is(r.second, 'EDQUOT', 'past the hard limit: EDQUOT');
    const warnings = r.events.filter((e) => e.action === Action.quota);
    for (const e of warnings) {
      assert.equal([e.quota_type, e.quota_id, e.uid, e.pid, e.path, e.fs_type, e.mount_id], [QuotaType.user, NOBODY, NOBODY, r.pid, r.path, 'ext4', r.mount_id]);
    }
    const kinds = warnings.map((e) => e.quota_warning);
    for (const w of [QuotaWarning.bsoftwarn, QuotaWarning.bhardwarn, QuotaWarning.bhardbelow, QuotaWarning.bsoftbelow]) {
      assert.ok(kinds.includes(w), `warning ${w} in ${JSON.stringify(kinds)}`);
    }
    assert.ok(kinds.indexOf(QuotaWarning.bsoftwarn) < kinds.indexOf(QuotaWarning.bhardwarn), 'soft before hard');
    const edquot = r.events.filter((e) => e.action === Action.edquot);
    assert.is(edquot.length, 1, JSON.stringify(r.events));
    assert.equal([edquot[0]?.syscall, edquot[0]?.uid, edquot[0]?.pid, edquot[0]?.ino, edquot[0]?.path], ['write', NOBODY, r.pid, r.ino, r.path]);
  });

  test('an unprivileged enospc notifier is EPERM naming the privilege and the parameter (quota notifiers are not); with space_errors_unprivileged=1 uid 65534 hears of its own failures only, root of both', () => {
    const r = report.get<{
      nobody_without_param: { enospc: Answer; quota: Answer };
      root_errno: string; own_errno: string; nobody_pid: number; root_pid: number;
      nobody_events: StorageEvent[]; root_events: StorageEvent[];
    }>('scoping');
    assert.is(r.nobody_without_param.enospc.error, 'EPERM');
    assert.match(r.nobody_without_param.enospc.extack ?? '', /CAP_SYS_ADMIN.*space_errors_unprivileged=1/);
    assert.is(r.nobody_without_param.quota.errno, 0);
    assert.equal([r.root_errno, r.own_errno], ['ENOSPC', 'ENOSPC']);
    assert.equal(r.nobody_events.map((e) => [e.pid, e.uid]), [[r.nobody_pid, NOBODY]]);
    assert.equal(r.root_events.map((e) => [e.pid, e.uid]), [[r.root_pid, 0], [r.nobody_pid, NOBODY]]);
  });

  test('in a user and mount namespace of its own, uid 65534 hears of its own failure as uid 0 of that namespace, and root\'s listener of the initial mount namespace does not', () => {
    const r = report.get<{ container: { register: number; errno: string; pid: number; events: StorageEvent[] }; root_sees_container: StorageEvent[] }>('scoping');
    assert.is(r.container.register, 0);
    assert.is(r.container.errno, 'ENOSPC');
    assert.equal(r.container.events.map((e) => [e.pid, e.uid, e.path]), [[r.container.pid, 0, '/tmp/st/shared']]);
    assert.equal(r.root_sees_container, []);
  });

  test('as pid 1 of a pid namespace, in network, user and mount namespaces of its own (unshare -Urnpfm), it hears of its own failure as pid 1 and uid 0', () => {
    const r = report.get<{ container_pidns: { register: number; errno: string; pid: number; events: StorageEvent[] }; root_sees_container_pidns: StorageEvent[] }>('scoping');
    assert.is(r.container_pidns.register, 0);
    assert.is(r.container_pidns.pid, 1);
    assert.equal(r.container_pidns.events.map((e) => [e.pid, e.uid, e.path]), [[1, 0, '/tmp/st/shared']]);
    assert.equal(r.root_sees_container_pidns, []);
  });

  test('a listener in a chroot hears only of failures below its root, with paths from there', () => {
    const r = report.get<{ outside_errno: string; inside_errno: string; jail_events: StorageEvent[] }>('scoping');
    assert.equal([r.outside_errno, r.inside_errno], ['ENOSPC', 'ENOSPC']);
    assert.equal(r.jail_events.map((e) => e.path), ['/full']);
  });

  test('a listener killed in the middle of a storm leaves no listener, slot, queued event or object behind', () => {
    const r = report.get<{ failures: number; before: Stats; after: Stats }>('killed-mid-storm');
    assert.is(r.failures, 20_000);
    assert.equal(
      [r.after.listeners, r.after.coalesce_slots, r.after.queued, r.after.objects, r.after.storage_hooks],
      [r.before.listeners, 0, 0, 0, 0],
      JSON.stringify(r),
    );
  });

  test('unloading the module in the middle of a storm succeeds, and it loads again clean', () => {
    const r = report.get<{ rmmod: number; rmmod_stderr: string; failures: number; insmod: number; stats: Stats }>('unload-mid-storm');
    assert.is(r.rmmod, 0, r.rmmod_stderr);
    assert.is(r.failures, 40_000);
    assert.is(r.insmod, 0);
    assert.equal([r.stats.listeners, r.stats.objects, r.stats.storage_hooks], [0, 0, 0]);
  });

  test.run();
}
