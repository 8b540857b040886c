// usip.ko's mount table and mount events, on each supported kernel: one QEMU boot per kernel runs
// test/guest/mount_checks.py, an independent client (raw netlink from Python), which compares
// mount-get with the kernel's own /proc/self/mountinfo field by field (5,000 mounts of several
// kinds; as root, as nobody, from a chroot, from a second namespace), dumps 20,000 mounts across
// many receive buffers and next to a busy mounter, records the events of real mount changes, and
// watches the hooks being armed and disarmed. Each test below judges some of its JSON lines.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { formatVerdict } from '@usip/vm';
import { hasUniqueMountIds, runGuestChecks } from './helpers.js';

/** How many mounts the large dump makes (the issue asks for 20,000). */
const BIG = 20_000;
/** Hooks the module arms for mount events (usip-mount-events.c). */
const MOUNT_HOOKS = 11;

interface Mountinfo {
  mount_id: number;
  parent_id: number;
  major: number;
  minor: number;
  root: string;
  mount_point: string;
  options: string;
  optional: string;
  fs_type: string;
  source: string;
  super_options: string;
}
interface Truth {
  dumped: number;
  mountinfo: number;
  duplicates: number[];
  only_dump: number[];
  only_mountinfo: number[];
  mismatches: number;
  first_mismatches: unknown[];
  datagrams: number;
  interrupted: boolean;
  errno: string | null;
  extack: string | null;
  ns_seqs: number[];
  mnt_ns: number[];
  own_mnt_ns: number;
}
interface Answer {
  errno: number;
  error: string | null;
  extack: string | null;
  mount?: Record<string, unknown>;
}
interface MountEvent {
  seq: number;
  missed: number;
  type: number;
  action_name: string;
  mount_id: number;
  parent_id: number;
  path?: string;
  fs_type?: string;
  source?: string;
  ns_seq?: number;
  unique_id?: number | string;
  mnt_ns: number;
  unknown_attributes?: number[];
}
interface Step {
  step: string;
  events: MountEvent[];
  added: Mountinfo[];
  removed: Mountinfo[];
  mountinfo: Record<string, Mountinfo>;
}

/** A dump that equals mountinfo: same mounts, every field, nothing twice, not interrupted. */
function sameTruth(truth: Truth, what: string): void {
  const shown = `${what}: ${JSON.stringify(truth).slice(0, 3000)}`;
  assert.is(truth.errno, null, shown);
  assert.is(truth.interrupted, false, shown);
  assert.ok(truth.mountinfo > 0, shown);
  assert.is(truth.dumped, truth.mountinfo, shown);
  assert.equal(truth.duplicates, [], shown);
  assert.equal(truth.only_dump, [], shown);
  assert.equal(truth.only_mountinfo, [], shown);
  assert.is(truth.mismatches, 0, shown);
  // Every message is about the caller's own namespace.
  assert.equal(truth.mnt_ns, [truth.own_mnt_ns], shown);
}

function rejected(answer: Answer, error: string, message: RegExp, what: string): void {
  const shown = `${what}: ${JSON.stringify(answer)}`;
  assert.is(answer.error, error, shown);
  assert.match(answer.extack ?? '', message, shown);
}

/** An event that describes a mountinfo line: ids, mount point, type and source. */
function describes(event: MountEvent, line: Mountinfo, action: string, what: string): void {
  const shown = `${what}: ${JSON.stringify({ event, line })}`;
  assert.is(event.action_name, action, shown);
  assert.is(event.mount_id, line.mount_id, shown);
  assert.is(event.parent_id, line.parent_id, shown);
  assert.is(event.path, line.mount_point, shown);
  assert.is(event.fs_type, line.fs_type, shown);
  assert.is(event.source, line.source, shown);
  assert.is(event.missed, 0, shown);
  assert.equal(event.unknown_attributes, undefined, shown);
}

const reports = await runGuestChecks({
  command: ['/usr/bin/python3', 'packages/kernel-module/test/guest/mount_checks.py', '--big', String(BIG)],
  results: 'mount-checks.jsonl',
  timeoutMs: 900_000,
  memoryMb: 3072,
});

for (const report of reports) {
  const { run } = report;
  // The namespace's mounts in an rbtree by unique id (6.8+), not a list (6.1).
  const rebuilt = hasUniqueMountIds(run.kernel.series);
  const test = suite(`usip mount table and mount events in the ${run.kernel.series} guest (${run.kernel.release})`);

  test('the guest ran every group of checks, the module unloaded, the kernel log is clean', () => {
    assert.equal(run.loadErrors, [], formatVerdict(run));
    assert.is(run.timedOut, false, `timed out:\n${run.output}`);
    assert.is(run.exitCode, 0, `${formatVerdict(run)}\n${run.output}`);
    assert.equal(run.problems, [], 'kernel log problems');
    assert.is(run.unloaded, true, 'usip unloaded');
    assert.equal(report.errors.map((e) => `${e.check}: ${e.error}`), []);
    assert.is(report.get<boolean>('end'), true);
  });

  test('the dump equals /proc/self/mountinfo field by field: 5,000 mounts of tmpfs, binds, nested, shared, slave, unbindable, odd names', () => {
    assert.ok(report.get<{ mounts: number }>('truth.built').mounts >= 5000);
    const truth = report.get<Truth>('truth.root');
    sameTruth(truth, 'as root');
    assert.ok(truth.mountinfo >= 5000, `${truth.mountinfo} mounts`);
    // Nobody listens in that namespace: its event number is 0.
    assert.equal(truth.ns_seqs, [0]);
  });

  test('the same for an unprivileged process (uid 65534)', () => {
    sameTruth(report.get<Truth>('truth.nobody'), 'as nobody');
  });

  test('from a chroot: mounts outside it are left out and paths are relative to it, as in its mountinfo', () => {
    const root = report.get<Truth>('truth.root');
    const chroot = report.get<Truth>('truth.chroot');
    sameTruth(chroot, 'chrooted');
    assert.ok(chroot.mountinfo < root.mountinfo, 'the mounts outside the chroot are not shown');
  });

  test('from a second mount namespace: its own copies, with ids of their own', () => {
    const root = report.get<Truth>('truth.root');
    const second = report.get<Truth>('truth.second-namespace');
    sameTruth(second, 'second namespace');
    assert.not.equal(second.own_mnt_ns, root.own_mnt_ns);
  });

  test('mount-get of single mounts equals their mountinfo lines; unique ids where the kernel has them', () => {
    const gets = report.get<{ mount_id: number; errno: string | null; record: Mountinfo; truth: Mountinfo; unique_id: unknown }[]>(
      'get.many',
    );
    assert.ok(gets.length >= 40, `${gets.length} gets`);
    for (const g of gets) {
      assert.is(g.errno, null, JSON.stringify(g));
      assert.equal(g.record, g.truth, `mount ${g.mount_id}`);
    }
    const byUnique = report.get<{ unique_id: unknown; mount_id: number; got: Answer }[]>('get.by-unique-id');
    for (const b of byUnique) {
      if (rebuilt) {
        assert.ok(b.unique_id, `${run.kernel.series} has unique mount ids`);
        assert.is(b.got.errno, 0, JSON.stringify(b));
        assert.is(b.got.mount?.mount_id, b.mount_id, JSON.stringify(b));
      } else {
        assert.is(b.unique_id, null, '6.1 has no unique mount ids');
        rejected(b.got, 'EOPNOTSUPP', /no unique mount ids \(Linux 6\.8\+\); use mount-id/, 'unique-id on 6.1');
      }
    }
  });

  test('mount-get refusals: a mount of another namespace is ENOENT; no id, both ids, a short id, a dump with attributes are EINVAL; each says why', () => {
    rejected(report.get<Answer>('get.not-in-namespace'), 'ENOENT', /no such mount in the caller's mount namespace/, 'foreign id');
    rejected(report.get<Answer>('get.no-id'), 'EINVAL', /by mount-id or by unique-id/, 'no id');
    rejected(report.get<Answer>('get.both-ids'), 'EINVAL', /by mount-id or by unique-id/, 'both ids');
    rejected(report.get<Answer>('get.wrong-size'), 'EINVAL', /invalid attribute length/, 'u32 mount id');
    const dump = report.get<{ errno: string; extack: string | null; replies: number }>('dump.with-attributes');
    assert.is(dump.errno, 'EINVAL', JSON.stringify(dump));
    assert.match(dump.extack ?? '', /dump takes no attributes/, JSON.stringify(dump));
    assert.is(dump.replies, 0);
  });

  test(`a dump of ${BIG.toLocaleString('en')} mounts resumes across many receive buffers and equals mountinfo`, () => {
    const big = report.get<Truth & { wanted: number; dump_seconds: number }>('dump.big');
    sameTruth(big, 'big dump');
    assert.ok(big.mountinfo >= BIG, `${big.mountinfo} mounts`);
    assert.ok(big.datagrams > 50, `${big.datagrams} datagrams: the dump went on across receive buffers`);
    const small = report.get<{ records: number; datagrams: number; errno: string | null; unique_ids: number; mountinfo: number }>(
      'dump.big-small-buffer',
    );
    assert.is(small.errno, null);
    assert.is(small.records, small.mountinfo);
    assert.is(small.unique_ids, small.records, 'no mount twice');
  });

  test('a dump that runs while the table changes is flagged interrupted (NLM_F_DUMP_INTR), never silently torn', () => {
    const concurrent = report.get<{
      dumps: { interrupted: boolean; errno: string | null; records: number; duplicates: number }[];
      mounter_cycles: number;
    }>('dump.concurrent');
    assert.ok(concurrent.mounter_cycles > 0, 'the mounter ran');
    assert.ok(
      concurrent.dumps.some((d) => d.interrupted),
      `some dump saw a change: ${JSON.stringify(concurrent.dumps)}`,
    );
    for (const d of concurrent.dumps) {
      assert.is(d.errno, null, JSON.stringify(d));
      assert.is(d.duplicates, 0, JSON.stringify(d));
    }
    sameTruth(report.get<Truth>('dump.after-concurrent'), 'after the mounter stopped');
  });

  const steps = (): Map<string, Step> => new Map(report.get<Step[]>('events.steps').map((s) => [s.step, s]));

  test('mount: one mount event with the new mount\'s id, parent, mount point, type and source', () => {
    const step = steps().get('mount')!;
    assert.is(step.events.length, 1, JSON.stringify(step.events));
    describes(step.events[0]!, step.added[0]!, 'mount', 'mount');
  });

  test('mount --move: one move event with the new mount point', () => {
    const step = steps().get('move')!;
    const line = Object.values(step.mountinfo).find((l) => l.mount_point.endsWith('/ev/b'))!;
    assert.is(step.events.length, 1, JSON.stringify(step.events));
    describes(step.events[0]!, line, 'move', 'move');
  });

  test('mount -o remount,ro and remount,bind,nosuid: remount events for the mount', () => {
    for (const name of ['remount-ro', 'remount-bind-nosuid']) {
      const step = steps().get(name)!;
      const line = Object.values(step.mountinfo).find((l) => l.mount_point.endsWith('/ev/b'))!;
      assert.ok(step.events.length >= 1, `${name}: ${JSON.stringify(step.events)}`);
      for (const event of step.events) describes(event, line, 'remount', name);
    }
    const ro = Object.values(steps().get('remount-ro')!.mountinfo).find((l) => l.mount_point.endsWith('/ev/b'))!;
    assert.match(ro.super_options, /^ro/, 'the superblock was remounted read-only');
  });

  test('umount, and umount -l of a tree and of an rbind copy: one umount event per mount that left', () => {
    for (const name of ['umount', 'umount-lazy', 'umount-lazy-rbind']) {
      const step = steps().get(name)!;
      assert.ok(step.removed.length >= 1, name);
      const byId = new Map(step.events.map((e) => [e.mount_id, e]));
      assert.is(step.events.length, step.removed.length, `${name}: ${JSON.stringify(step.events)}`);
      for (const line of step.removed) describes(byId.get(line.mount_id)!, line, 'umount', name);
    }
  });

  test('mount of a tree and mount --rbind: one mount event per mount of the tree', () => {
    for (const name of ['mount-tree', 'rbind']) {
      const step = steps().get(name)!;
      assert.is(step.added.length, 3, name);
      const byId = new Map(step.events.map((e) => [e.mount_id, e]));
      assert.is(step.events.length, 3, `${name}: ${JSON.stringify(step.events)}`);
      for (const line of step.added) describes(byId.get(line.mount_id)!, line, 'mount', name);
    }
  });

  test('make-shared is a propagation change: a remount event', () => {
    const step = steps().get('make-shared')!;
    const line = step.added[0]!;
    assert.equal(
      step.events.map((e) => e.action_name),
      ['mount', 'remount'],
    );
    assert.match(line.optional, /^shared:\d+$/);
  });

  test('mount_setattr(2) with AT_RECURSIVE: a remount event for each mount it changed', () => {
    const step = steps().get('mount-setattr-recursive')!;
    const changed = Object.values(step.mountinfo).filter((l) => /\/ev\/s(\/|$)/.test(l.mount_point));
    assert.ok(changed.length >= 2, JSON.stringify(changed));
    for (const line of changed) assert.match(line.options, /noexec/, line.mount_point);
    const byId = new Map(step.events.map((e) => [e.mount_id, e]));
    assert.is(step.events.length, changed.length, JSON.stringify(step.events));
    for (const line of changed) describes(byId.get(line.mount_id)!, line, 'remount', 'mount_setattr');
  });

  test('fsconfig(FSCONFIG_CMD_RECONFIGURE) of a superblock: a remount event for its mount', () => {
    const step = steps().get('fsconfig-reconfigure')!;
    const line = Object.values(step.mountinfo).find((l) => l.mount_point.endsWith('/ev/s/p'))!;
    assert.match(line.super_options, /^ro/);
    assert.is(step.events.length, 1, JSON.stringify(step.events));
    describes(step.events[0]!, line, 'remount', 'fsconfig reconfigure');
  });

  test('a shared mount unmounted while its slave stays: a umount event for it, a remount event for the slave (its master is gone)', () => {
    const setup = steps().get('master-and-slave')!;
    const slaveBefore = Object.values(setup.mountinfo).find((l) => l.mount_point.endsWith('/ev/sl'))!;
    assert.match(slaveBefore.optional, /master:\d+/, 'a slave of the shared mount');
    const step = steps().get('umount-master')!;
    assert.is(step.removed.length, 1, JSON.stringify(step.removed));
    const slave = Object.values(step.mountinfo).find((l) => l.mount_point.endsWith('/ev/sl'))!;
    assert.not.match(slave.optional, /master:/, 'the slave has no master left');
    assert.equal(step.events.map((e) => e.action_name), ['umount', 'remount'], JSON.stringify(step.events));
    describes(step.events[0]!, step.removed[0]!, 'umount', 'the master');
    describes(step.events[1]!, slave, 'remount', 'the slave');
  });

  test('a tree moved under a shared mount: a move event for its top, a remount event for each mount below it (now shared too)', () => {
    const step = steps().get('move-into-shared')!;
    const top = Object.values(step.mountinfo).find((l) => l.mount_point.endsWith('/ev/s/in'))!;
    const below = Object.values(step.mountinfo).find((l) => l.mount_point.endsWith('/ev/s/in/c'))!;
    assert.match(top.optional, /shared:\d+/);
    assert.match(below.optional, /shared:\d+/);
    assert.is(step.events.length, 2, JSON.stringify(step.events));
    describes(step.events[0]!, top, 'move', 'the moved top');
    describes(step.events[1]!, below, 'remount', 'the mount below it');
  });

  test('ns-seq numbers every change of the namespace from 1, with no hole, in order; unique ids from 6.8 on', () => {
    const all = [...steps().values()].flatMap((s) => s.events);
    assert.ok(all.length >= 20, `${all.length} events`);
    assert.equal(
      all.map((e) => e.ns_seq),
      all.map((_, i) => i + 1),
    );
    const ns = report.get<number>('events.mnt-ns');
    for (const e of all) {
      assert.is(e.mnt_ns, ns);
      assert.is(e.type, 1);
      assert.is(e.unique_id !== undefined, rebuilt, JSON.stringify(e));
    }
  });

  test('propagation into a slave namespace reaches that namespace\'s listener with its own ids and ns-seq; a mount in the slave does not come back', () => {
    const slave = report.get<{ propagated: { events: MountEvent[]; mountinfo: Record<string, Mountinfo> }; own: { events: MountEvent[] } }>(
      'events.slave',
    );
    const propagate = steps().get('propagate')!;
    assert.is(propagate.events.length, 1, 'the master namespace sees its own mount');
    assert.is(slave.propagated.events.length, 1, JSON.stringify(slave.propagated.events));
    const copy = slave.propagated.events[0]!;
    const line = Object.values(slave.propagated.mountinfo).find((l) => l.mount_point === copy.path)!;
    assert.ok(line, `the propagated copy is in the slave's mountinfo: ${copy.path}`);
    describes(copy, line, 'mount', 'propagated copy');
    assert.not.equal(copy.mnt_ns, propagate.events[0]!.mnt_ns);
    assert.is(copy.ns_seq, 1, 'the slave namespace counts its own events');
    assert.equal(
      slave.own.events.map((e) => [e.action_name, e.ns_seq]),
      [['mount', 2]],
    );
    assert.is(steps().get('slave-mounted')!.events.length, 0, 'nothing came back to the master');
  });

  test('pivot_root(2): move events for the two mounts it moved (global listener), none of the new root for the old root\'s listener; the dump still equals mountinfo', () => {
    const pivot = report.get<{
      events: MountEvent[];
      own_root_events: MountEvent[];
      before: Record<string, Mountinfo>;
      after: Record<string, Mountinfo>;
    }>('pivot.events');
    const moved = Object.values(pivot.after).filter((l) => {
      const was = pivot.before[String(l.mount_id)];
      return was && (was.mount_point !== l.mount_point || was.parent_id !== l.parent_id);
    });
    assert.ok(moved.length >= 2, JSON.stringify(moved));
    const movedIds = new Set(pivot.events.filter((e) => e.action_name === 'move').map((e) => e.mount_id));
    const newRoot = moved.find((l) => l.mount_point === '/');
    const oldRoot = moved.find((l) => l.mount_point === '/old');
    assert.ok(newRoot && oldRoot, JSON.stringify(moved));
    for (const line of [newRoot!, oldRoot!]) {
      assert.ok(movedIds.has(line.mount_id), `a move event for ${line.mount_point}: ${JSON.stringify(pivot.events)}`);
    }
    // The listener whose root was the old root keeps it: the new root lies outside it.
    assert.not.ok(pivot.own_root_events.some((e) => e.mount_id === newRoot!.mount_id),
      `the old root's listener was told of the new root: ${JSON.stringify(pivot.own_root_events)}`);
    sameTruth(report.get<Truth>('pivot.truth'), 'after pivot_root');
  });

  test('a listener of an unrelated mount namespace got none of these events', () => {
    assert.equal(report.get<unknown[]>('events.bystander'), []);
  });

  test('the hooks are armed only while a listener has an mtab notifier, and disarmed within seconds after', () => {
    const hooks = report.get<Record<string, number>>('hooks.armed');
    assert.is(hooks.idle, 0);
    assert.is(hooks['storage-listener'], 0, 'a storage listener does not arm them');
    assert.is(hooks['mtab-listener'], MOUNT_HOOKS);
    assert.is(hooks['after-close'], 0);
    assert.ok(hooks['seconds-to-disarm']! < 5, JSON.stringify(hooks));
  });

  test.run();
}
