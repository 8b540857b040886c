// What usip.ko must not show, and the work it must not do, on each supported kernel: one QEMU
// boot per kernel runs test/guest/mount_hardening_checks.py (raw netlink from Python, not our
// client), which checks, against the kernel's own /proc/self/mountinfo, that a chrooted reader
// (a root path over 2 KiB long; a root on a detached mount) learns only of mounts below its root,
// by events and by dumps; that a dump answers for the task that started it whoever reads the
// rest; that a process in its own user, network, pid and mount namespaces (unshare -Urnpfm) gets
// only its own namespace's events, in its own terms, and no multicast copies; that trees of mounts
// changed at once are reported as one subtree event and a superblock remounted in many places as
// a missed message; and that a dump left unread pins no mount.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { formatVerdict } from '@usip/vm';
import { runGuestChecks } from './helpers.js';

interface Seen {
  kind: 'mount' | 'umount' | 'move' | 'remount' | 'missed' | null;
  path?: string | null;
  mount_id?: number;
  ns_seq?: number | null;
  subtree?: boolean;
  pid?: number;
  uid?: number;
  mnt_ns?: number;
  missed?: number | null;
}
interface Compared {
  dumped: number;
  mountinfo: number;
  duplicates: number[];
  only_dump: number[];
  only_mountinfo: number[];
  mismatches: number;
  first_mismatches: unknown[];
  errno?: string | null;
}
interface ContainerRun {
  pid: number;
  uid: number;
  mnt_ns: number;
  join: string;
  events: Seen[];
  copies: unknown[];
  error?: string;
}

const brief = (seen: Seen[]) => seen.map((s) => `${s.kind} ${s.path ?? '(no path)'}${s.subtree ? ' subtree' : ''}`);

function sameTable(c: Compared, what: string): void {
  const shown = `${what}: ${JSON.stringify(c).slice(0, 3000)}`;
  assert.equal(c.only_dump, [], `${shown}: mounts the dump has and mountinfo has not`);
  assert.equal(c.only_mountinfo, [], `${shown}: mounts mountinfo has and the dump has not`);
  assert.equal(c.duplicates, [], shown);
  assert.is(c.mismatches, 0, shown);
  assert.is(c.dumped, c.mountinfo, shown);
}

const reports = await runGuestChecks({
  command: ['/usr/bin/python3', 'packages/kernel-module/test/guest/mount_hardening_checks.py'],
  results: 'mount-hardening-checks.jsonl',
  timeoutMs: 600_000,
});

for (const report of reports) {
  const { run } = report;
  const test = suite(`usip scope and bounded hooks in the ${run.kernel.series} guest (${run.kernel.release})`);

  test('the guest ran every group of checks to the end, and the kernel log is clean', () => {
    assert.equal(run.loadErrors, [], formatVerdict(run));
    assert.is(run.timedOut, false, `timed out:\n${run.output}`);
    assert.is(run.exitCode, 0, `${formatVerdict(run)}\n${run.output}`);
    assert.equal(report.errors.map((e) => `${e.check}: ${e.error}`), []);
    assert.is(report.get<boolean>('end'), true);
    assert.ok(run.ok, formatVerdict(run));
  });

  test('a chroot whose path is over 2 KiB: events only of mounts below it, with its own paths; nothing of mounts outside', () => {
    const r = report.get<{ root_length: number; ready: { mountinfo_paths: string[] }; events: Seen[]; truth: Compared }>(
      'scope.long-root',
    );
    assert.ok(r.root_length > 2048, `root path of ${r.root_length} bytes`);
    assert.equal(r.ready.mountinfo_paths, ['/in0'], 'what mountinfo shows in the chroot');
    // out1 was mounted, remounted, moved and unmounted too, outside: nothing of it, with a path or without.
    assert.equal(brief(r.events), ['mount /in1', 'remount /in1', 'umount /in1']);
  });

  test('a chroot whose path is over 2 KiB: its dump equals its mountinfo', () => {
    sameTable(report.get<{ truth: Compared }>('scope.long-root').truth, 'dump in the long chroot');
  });

  test('a root on a detached mount: told that its own mounts went, then nothing; its dump is as empty as its mountinfo', () => {
    const r = report.get<{ ready: { mountinfo: number }; before: Seen[]; after: Seen[]; truth: Compared }>(
      'scope.detached-root',
    );
    // Registered while its root was attached: the umount of its root ("/") and of the mount in it.
    assert.equal(brief(r.before).sort(), ['umount /', 'umount /dir']);
    // Registered after: no mount of the namespace is below its root.
    assert.equal(brief(r.after), []);
    assert.is(r.ready.mountinfo, 0, 'mountinfo of a process whose root was detached');
    sameTable(r.truth, 'dump with a detached root');
    assert.is(r.truth.dumped, 0);
  });

  test('a dump answers for the namespace and root of the task that started it, whoever reads the rest', () => {
    const r = report.get<{
      first_batch: number;
      done_after_first: boolean;
      rest: number;
      rest_datagrams: number;
      errno: string | null;
      compare: Compared;
    }>('scope.dump-fixed');
    assert.ok(r.first_batch > 0 && !r.done_after_first && r.rest > 0, `the dump did not span receives: ${JSON.stringify(r)}`);
    assert.is(r.errno, null);
    // The rest was read by a task at the namespace's root, in another mount namespace.
    sameTable(r.compare, 'a dump started in a chroot and read on elsewhere');
  });

  test('a container (unshare -Urnpfm, as nobody and as root) gets its own mounts\' events, with its pids, uids and paths', () => {
    const r = report.get<{ runs: Record<string, ContainerRun> }>('containers');
    for (const label of ['own-netns', 'own-netns-root', 'host-netns']) {
      const c = r.runs[label];
      assert.ok(c && !c.error, `${label}: ${JSON.stringify(c)}`);
      assert.equal(brief(c!.events), ['mount /tmp/c1', 'umount /tmp/c1'], label);
      for (const e of c!.events) {
        assert.is(e.pid, c!.pid, `${label}: pid in the container's pid namespace`);
        assert.is(e.uid, 0, `${label}: uid in the container's user namespace`);
        assert.is(e.mnt_ns, c!.mnt_ns, `${label}: its own mount namespace`);
      }
    }
  });

  test('a container gets no multicast copies: none in its own netns, and it may not join the initial one\'s groups', () => {
    const r = report.get<{ runs: Record<string, ContainerRun> }>('containers');
    assert.is(r.runs['own-netns']!.join, 'ok');
    assert.equal(r.runs['own-netns']!.copies, [], 'copies in a container\'s own network namespace');
    assert.equal(r.runs['own-netns-root']!.copies, []);
    assert.is(r.runs['host-netns']!.join, 'EPERM', 'joining the initial netns\' group from a user namespace');
  });

  test('the initial mount namespace\'s listener gets nothing of the containers\' mounts', () => {
    const r = report.get<{ host_events: Seen[] }>('containers');
    assert.equal(brief(r.host_events), []);
  });

  test('a tree of 40 bound at once is one subtree mount event; a tree of 4, four events', () => {
    const t = report.get<Record<string, Seen[]>>('trees');
    assert.equal(brief(t['rbind-big']!), ['mount /tmp/big-copy subtree']);
    assert.equal(brief(t['rbind-small']!).sort(), [
      'mount /tmp/small-copy', 'mount /tmp/small-copy/t0', 'mount /tmp/small-copy/t1', 'mount /tmp/small-copy/t2',
    ]);
  });

  test('a recursive mount_setattr(2) of 40 mounts is one subtree remount event', () => {
    const t = report.get<Record<string, Seen[]>>('trees');
    assert.equal(brief(t['setattr-recursive-big']!), ['remount /tmp/big-copy subtree']);
  });

  test('a tree of 40 moved under a shared mount: its move, and one subtree remount for the mounts below it', () => {
    const t = report.get<Record<string, Seen[]>>('trees');
    const seen = brief(t['move-under-shared-big']!);
    assert.ok(seen.includes('move /tmp/shared/in'), JSON.stringify(seen));
    assert.ok(seen.includes('remount /tmp/shared/in subtree'), JSON.stringify(seen));
    assert.ok(seen.length <= 4, `bounded: ${JSON.stringify(seen)}`);
  });

  test('a tree of 40 detached at once (umount -l) is one subtree umount event; a tree of 4, four events', () => {
    const t = report.get<Record<string, Seen[]>>('trees');
    assert.equal(brief(t['umount-lazy-big']!), ['umount /tmp/shared/in subtree']);
    assert.equal(brief(t['umount-lazy-small']!).sort(), [
      'umount /tmp/small-copy', 'umount /tmp/small-copy/t0', 'umount /tmp/small-copy/t1', 'umount /tmp/small-copy/t2',
    ]);
  });

  test('a superblock remounted in 20 places is a missed message (read the table again); in 3 places, three remount events', () => {
    const t = report.get<Record<string, Seen[]>>('trees');
    const big = t['remount-sb20']!;
    assert.ok(big.some((s) => s.kind === 'missed' && (s.missed ?? 0) > 0), JSON.stringify(big));
    assert.equal(big.filter((s) => s.kind === 'remount'), [], 'no event one by one');
    assert.equal(brief(t['remount-sb3']!).sort(), ['remount /tmp/sb3', 'remount /tmp/sb3-b0', 'remount /tmp/sb3-b1']);
  });

  test('after all of it, the dump still equals mountinfo', () => {
    sameTable(report.get<{ truth: Compared }>('trees').truth, 'after the tree checks');
  });

  test('a dump left unread pins no mount: every mount below a directory unmounts without MNT_DETACH', () => {
    const r = report.get<{ first_batch: number; done: boolean; failures: unknown[] }>('unpinned');
    assert.ok(r.first_batch > 0 && !r.done, JSON.stringify(r));
    assert.equal(r.failures, []);
  });

  test.run();
}
