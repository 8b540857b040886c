// Low-space notifiers for real, on each supported kernel: one QEMU boot per kernel loads usip.ko
// and runs test/guest/low_space_checks.py, which fills and empties small tmpfs mounts with
// fallocate and listens with raw netlink sockets (not our client), as root, as uid 65534 in a
// chroot, and unloads the module while checks run. The guest writes one JSON line per check to
// $USIP_VM_RESULTS/low-space-checks.jsonl; each test below judges one or a few of those lines.
//
// Latency is bounded generously (10 s) so that a slow TCG guest on a busy host does not fail the
// suite; the latencies measured are printed, and with the default interval of 1 s they are about
// one second.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { formatVerdict } from '@usip/vm';
import { runGuestChecks } from './helpers.js';

const STORAGE = 2;
const LOW_SPACE = 7;
const STORAGE_EVENT = 8;
const LOW = 1;
const RECOVERED = 2;
const MOUNT_GONE = 3;
const MIB = 1024 * 1024;
const BOUND_S = 10;

interface Ev {
  listener_id?: number;
  type?: number;
  action?: number;
  cmd?: number;
  pid?: number;
  uid?: number;
  mount_id?: number;
  unique_id?: number;
  path?: string;
  fs_type?: string;
  source?: string;
  dev?: number;
  space_state?: number;
  bytes_total?: number;
  bytes_available?: number;
  files_total?: number;
  files_free?: number;
  missed?: number;
  genl_cmd?: number;
  unknown_attributes?: number[];
}
interface Statvfs {
  blocks: number;
  bavail: number;
  files: number;
  ffree: number;
  frsize: number;
}
interface Crossing {
  event: Ev | null;
  latency_s: number;
  extra: Ev[];
  statvfs: Statvfs;
}
interface Answer {
  errno: number;
  error: string | null;
  extack: string | null;
  extack_offset: number | null;
  replies: number;
}
interface Stats {
  listeners: number;
  notifiers: number;
  objects: number;
  watched_mounts: number;
  queued: number;
}

const reports = await runGuestChecks({
  command: ['/usr/bin/python3', 'packages/kernel-module/test/guest/low_space_checks.py', '--module', '{ko}'],
  results: 'low-space-checks.jsonl',
  timeoutMs: 400_000,
});

/** One event of this crossing, within the bound, and nothing more after it. */
function once(c: Crossing, state: number, what: string): Ev {
  const shown = `${what}: ${JSON.stringify(c)}`;
  assert.ok(c.event, `${what}: no event within ${BOUND_S} s: ${shown}`);
  assert.is(c.event?.space_state, state, shown);
  assert.ok(c.latency_s < BOUND_S, shown);
  assert.equal(c.extra, [], `${what}: more events after the first: ${shown}`);
  return c.event as Ev;
}

/**
 * The usage in an event against what statvfs said once the change was done: the same sizes, and
 * free space on the way there (the check may read it while fallocate is still allocating).
 */
function usageMatches(ev: Ev, st: Statvfs, state: number, what: string): void {
  const shown = `${what}: ${JSON.stringify({ ev, st })}`;
  assert.equal({ bytes_total: ev.bytes_total, files_total: ev.files_total }, { bytes_total: st.blocks * st.frsize, files_total: st.files }, shown);
  const avail = st.bavail * st.frsize;
  if (state === LOW) {
    assert.ok((ev.bytes_available ?? -1) >= avail || (ev.files_free ?? -1) >= st.ffree, shown);
  } else {
    assert.is(ev.bytes_available, avail, shown);
    assert.is(ev.files_free, st.ffree, shown);
  }
}

for (const report of reports) {
  const { run } = report;
  const test = suite(`usip low-space notifiers in the ${run.kernel.series} guest (${run.kernel.release})`);

  test('the guest ran every group of checks to the end, with a clean kernel log', () => {
    assert.equal(run.loadErrors, [], formatVerdict(run));
    assert.is(run.timedOut, false, `timed out:\n${run.output}`);
    assert.is(run.exitCode, 0, `${formatVerdict(run)}\n${run.output}`);
    assert.equal(report.errors.map((e) => `${e.check}: ${e.error}`), []);
    assert.is(report.get<boolean>('end'), true);
  });

  test('max_watched_mounts_per_listener defaults to 256; a fresh module watches nothing', () => {
    const start = report.get<{ max_watched_mounts_per_listener: string; stats: Stats }>('start');
    assert.is(start.max_watched_mounts_per_listener, '256');
    assert.equal({ watched: start.stats.watched_mounts, objects: start.stats.objects }, { watched: 0, objects: 0 });
  });

  test('threshold 50% on a 16 MiB tmpfs: nothing while empty, one low event after fallocate, one recovered after unlink, with the numbers and no pid or uid', () => {
    const b = report.get<{
      id: number;
      mount_id: number;
      path: string;
      quiet: Ev[];
      low: Crossing;
      recovered: Crossing;
      stats: Stats;
      listed: { notifiers?: Record<string, unknown>[] };
    }>('blocks');
    assert.equal(b.quiet, [], 'an empty tmpfs is not low');
    const low = once(b.low, LOW, 'low');
    assert.equal(
      {
        genl_cmd: low.genl_cmd,
        listener_id: low.listener_id,
        type: low.type,
        action: low.action,
        cmd: low.cmd,
        mount_id: low.mount_id,
        path: low.path,
        fs_type: low.fs_type,
        source: low.source,
        pid: low.pid,
        uid: low.uid,
        missed: low.missed,
        unknown: low.unknown_attributes,
      },
      {
        genl_cmd: STORAGE_EVENT,
        listener_id: b.id,
        type: STORAGE,
        action: LOW_SPACE,
        cmd: 77,
        mount_id: b.mount_id,
        path: b.path,
        fs_type: 'tmpfs',
        source: 'ls-blocks',
        pid: undefined,
        uid: undefined,
        missed: 0,
        unknown: undefined,
      },
    );
    assert.is(low.bytes_total, 16 * MIB);
    usageMatches(low, b.low.statvfs, LOW, 'the low event carries the usage it was judged by');
    assert.ok((low.bytes_available ?? 0) * 100 < 50 * (low.bytes_total ?? 0), JSON.stringify(low));
    const recovered = once(b.recovered, RECOVERED, 'recovered');
    usageMatches(recovered, b.recovered.statvfs, RECOVERED, 'the recovered event carries the usage');
    assert.is(recovered.mount_id, b.mount_id);
    assert.is(b.stats.watched_mounts, 1, 'stats: one watched mount');
    assert.equal(b.listed.notifiers, [
      { type: STORAGE, action: LOW_SPACE, flags: 1, cmd: 77, mount_id: b.mount_id, threshold: 50, hysteresis: 5, interval_ms: 1000 },
    ]);
  });

  test('a mount already below the threshold fires low once at the first check', () => {
    const a = report.get<{ mount_id: number; event: Ev | null; latency_s: number; extra: Ev[] }>('already-low');
    assert.is(a.event?.space_state, LOW, JSON.stringify(a));
    assert.is(a.event?.mount_id, a.mount_id);
    assert.ok(a.latency_s < BOUND_S, JSON.stringify(a));
    assert.equal(a.extra, []);
  });

  test('hysteresis 20: back to 56% free (between 50 and 60) is silent, 68.75% free is recovered', () => {
    const h = report.get<{ low: Crossing; between: Crossing; recovered: Crossing }>('hysteresis');
    once(h.low, LOW, 'low');
    assert.is(h.between.event, null, JSON.stringify(h.between));
    assert.equal(h.between.extra, []);
    assert.is(h.between.statvfs.bavail * 100 > 50 * h.between.statvfs.blocks, true, 'the test did rise above 50%');
    const r = once(h.recovered, RECOVERED, 'recovered');
    usageMatches(r, h.recovered.statvfs, RECOVERED, 'recovered');
  });

  test('threshold-bytes 8 MiB and threshold-inodes 50% (nr_inodes=100): low and recovered once each', () => {
    const b = report.get<{ low: Crossing; recovered: Crossing }>('bytes');
    const low = once(b.low, LOW, 'bytes low');
    assert.ok((low.bytes_available ?? Infinity) < 8 * MIB, JSON.stringify(low));
    once(b.recovered, RECOVERED, 'bytes recovered');
    const i = report.get<{ low: Crossing; recovered: Crossing }>('inodes');
    const il = once(i.low, LOW, 'inodes low');
    assert.is(il.files_total, 100);
    assert.ok((il.files_free ?? 100) < 50, JSON.stringify(il));
    usageMatches(il, i.low.statvfs, LOW, 'inodes low');
    once(i.recovered, RECOVERED, 'inodes recovered');
  });

  test("a low-space event goes to its own notifier only: another listener's and another notifier's thresholds are not crossed by it", () => {
    const t = report.get<{
      a: number;
      b: number;
      b_first: Ev[];
      a_event: Ev | null;
      a_more: Ev[];
      b_after_a: Ev[];
      b_event: Ev | null;
      b_more: Ev[];
      a_later: Ev[];
    }>('targeted');
    assert.equal(t.b_first, []);
    assert.equal({ id: t.a_event?.listener_id, cmd: t.a_event?.cmd, state: t.a_event?.space_state }, { id: t.a, cmd: 1, state: LOW });
    assert.equal(t.a_more, []);
    // 37.5% free: b's 40% notifier (cmd 3) fires, its 20% one (cmd 2) does not.
    assert.equal(t.b_after_a.map((e) => ({ id: e.listener_id, cmd: e.cmd, state: e.space_state })), [{ id: t.b, cmd: 3, state: LOW }]);
    // 12.5% free: now the 20% one, and a (already low) says nothing more.
    assert.equal({ id: t.b_event?.listener_id, cmd: t.b_event?.cmd, state: t.b_event?.space_state }, { id: t.b, cmd: 2, state: LOW });
    assert.equal(t.b_more, []);
    assert.equal(t.a_later, []);
  });

  test('a path-prefix notifier watches the mounts below its prefix only; an every-mount one watches each mount of mountinfo', () => {
    const p = report.get<{
      x: number;
      y: number;
      p_events: Ev[];
      every_events: Ev[];
      mounts: number;
      host_watched: number;
      lp: number;
      le: number;
    }>('prefix-and-all');
    assert.equal(p.p_events.map((e) => ({ id: e.listener_id, mount: e.mount_id, state: e.space_state })), [{ id: p.lp, mount: p.x, state: LOW }]);
    const ours = p.every_events.filter((e) => e.mount_id === p.x || e.mount_id === p.y);
    assert.equal(ours.map((e) => e.mount_id).sort(), [p.x, p.y].sort(), JSON.stringify(p.every_events));
    assert.ok(ours.every((e) => e.space_state === LOW && e.listener_id === p.le), JSON.stringify(ours));
    assert.is(p.host_watched, p.mounts + 1, 'stats watched-mounts: each mount for the every-mount notifier, one for the prefix');
  });

  test('a mount-id notifier whose mount goes gets one mount-gone, then nothing; it wakes up for a mount with that id again', () => {
    const g = report.get<{
      mount_id: number;
      quiet: Ev[];
      event: Ev | null;
      latency_s: number;
      extra: Ev[];
      new_mount_id: number;
      again: Ev[];
      after: Ev[];
    }>('mount-gone');
    assert.equal(g.quiet, []);
    assert.equal({ state: g.event?.space_state, mount: g.event?.mount_id, path: g.event?.path, bytes: g.event?.bytes_total }, { state: MOUNT_GONE, mount: g.mount_id, path: undefined, bytes: undefined });
    assert.ok(g.latency_s < BOUND_S);
    assert.equal(g.extra, [], 'one mount-gone only');
    if (g.new_mount_id === g.mount_id) {
      assert.equal(g.again.map((e) => e.space_state), [LOW], JSON.stringify(g.again));
      assert.equal(g.after.map((e) => e.space_state), [MOUNT_GONE], JSON.stringify(g.after));
    } else {
      assert.equal(g.again, []);
      assert.equal(g.after, []);
    }
    const absent = report.get<{ events: Ev[] }>('mount-gone.absent');
    assert.equal(absent.events.map((e) => ({ state: e.space_state, mount: e.mount_id })), [{ state: MOUNT_GONE, mount: 999999 }]);
  });

  test('a path-prefix notifier tells mount-gone for a mount it reported low, and nothing for one it did not', () => {
    const g = report.get<{ low_id: number; ok_id: number; low: Ev | null; gone: Ev[] }>('prefix-gone');
    assert.equal({ state: g.low?.space_state, mount: g.low?.mount_id }, { state: LOW, mount: g.low_id });
    assert.equal(g.gone.map((e) => ({ state: e.space_state, mount: e.mount_id })), [{ state: MOUNT_GONE, mount: g.low_id }]);
  });

  test('uid 65534 in a chroot watches only the mounts below its root, with paths from its root', () => {
    const c = report.get<{ in_id: number; out_id: number; first: { watched: number }; events: Ev[]; watched: number }>('chroot-nobody');
    assert.equal(c.events.map((e) => ({ mount: e.mount_id, path: e.path, state: e.space_state })), [{ mount: c.in_id, path: '/in', state: LOW }]);
    assert.ok(!c.events.some((e) => e.mount_id === c.out_id), 'a mount outside its root is never reported');
    assert.is(c.watched, 1, 'its own stats: one watched mount');
  });

  test('a hung file system (FUSE, never answering) does not stall the others: the tmpfs beside it fires; the stuck statfs holds only its own watch, freed when it returns', () => {
    const h = report.get<{
      fuse: boolean;
      ok_id: number;
      watched: number;
      low: Crossing;
      while_hung: Stats;
      after: Stats;
    }>('hung');
    assert.ok(h.fuse, 'the guest has FUSE (built in on 6.12, the fuse module on 6.1)');
    assert.is(h.watched, 2, 'both mounts below the prefix are watched');
    const low = once(h.low, LOW, 'low beside the hung mount');
    assert.is(low.mount_id, h.ok_id);
    // Listener gone: its watch (2 records, itself, its path buffer) waits for the hung statfs.
    assert.equal({ listeners: h.while_hung.listeners, watched: h.while_hung.watched_mounts, objects: h.while_hung.objects }, { listeners: 0, watched: 2, objects: 4 });
    assert.equal({ watched: h.after.watched_mounts, objects: h.after.objects }, { watched: 0, objects: 0 });
  });

  test('refusals: low-space attributes elsewhere, no or two thresholds, 0, out of range; each with an extack message', () => {
    const e = report.get<Record<string, Answer>>('errors');
    for (const key of ['threshold-on-mount', 'hysteresis-on-enospc', 'interval-on-enospc']) {
      assert.is(e[key].error, 'EINVAL', `${key}: ${JSON.stringify(e[key])}`);
      assert.match(e[key].extack ?? '', /only a low-space notifier/, key);
      assert.ok(e[key].extack_offset !== null, `${key}: the extack points at the attribute`);
    }
    for (const key of ['two-thresholds', 'no-threshold']) {
      assert.is(e[key].error, 'EINVAL', `${key}: ${JSON.stringify(e[key])}`);
      assert.match(e[key].extack ?? '', /exactly one of threshold, threshold-inodes and threshold-bytes/, key);
    }
    assert.is(e['threshold-0'].error, 'EINVAL');
    assert.match(e['threshold-0'].extack ?? '', /threshold of 0/);
    assert.ok(e['threshold-0'].extack_offset !== null);
    for (const [key, message] of [
      ['threshold-101', /^threshold is a percentage of the blocks: 1 to 100$/],
      ['inodes-101', /^threshold-inodes is a percentage of the inodes: 1 to 100$/],
      ['interval-50', /^interval-ms must be 100 to 3600000$/],
    ] as const) {
      // Checked by the handler: EINVAL, the message names the attribute, the offset points at it.
      assert.is(e[key].error, 'EINVAL', `${key}: ${JSON.stringify(e[key])}`);
      assert.match(e[key].extack ?? '', message, key);
      assert.ok(e[key].extack_offset !== null, `${key}: the extack points at the attribute`);
    }
    for (const a of Object.values(e)) assert.is(a.replies, 0);
  });

  test('max_watched_mounts_per_listener=3: three mounts watched, and the kernel log says the rest are not', () => {
    const c = report.get<{ id: number; watched: number; mounts: number; log: string[] }>('cap');
    assert.ok(c.mounts > 3, JSON.stringify(c));
    assert.is(c.watched, 3);
    assert.is(c.log.length, 1, JSON.stringify(c.log));
    assert.match(c.log[0], new RegExp(`listener ${c.id}: its low-space notifiers select ${c.mounts - 3} more mounts than max_watched_mounts_per_listener \\(3\\)`));
  });

  test('with the listeners gone: no watched mount, no object left; latencies printed', () => {
    const c = report.get<{ stats: Stats; latencies_s: number[] }>('cleanup');
    assert.equal({ listeners: c.stats.listeners, watched: c.stats.watched_mounts, objects: c.stats.objects, queued: c.stats.queued }, { listeners: 0, watched: 0, objects: 0, queued: 0 });
    assert.ok(c.latencies_s.length >= 8);
    process.stdout.write(`  ${run.kernel.series}: low-space event latencies (s): ${c.latencies_s.join(', ')}\n`);
  });

  test('rmmod while a listener checks four mounts every 100 ms: unloads cleanly, loads again with nothing left', () => {
    const u = report.get<{ rmmod_exit: number; rmmod_stderr: string; still_loaded: boolean; insmod_exit: number; stats_after: Stats }>('unload');
    assert.equal({ rmmod: u.rmmod_exit, stderr: u.rmmod_stderr, still: u.still_loaded, insmod: u.insmod_exit }, { rmmod: 0, stderr: '', still: false, insmod: 0 });
    assert.equal({ watched: u.stats_after.watched_mounts, objects: u.stats_after.objects }, { watched: 0, objects: 0 });
  });

  test.run();
}
