// What one user may impose on others through usip.ko, and that the module fails closed, on each
// supported kernel: one QEMU boot per kernel loads the module with allow_inject=1 and runs
// test/guest/hardening_checks.py (raw netlink from Python; children as uid 65534, in a user and
// mount namespace of their own, under setpriv with CAP_SYSLOG, in a memory cgroup). The guest
// writes one JSON line per check to $USIP_VM_RESULTS/hardening-checks.jsonl; each test below judges
// one or a few of them:
//   - ping's feature-status and features mask, and a failed arm (inject_arm_failures=1) that takes
//     mount-events out until the next mtab listener arms it again;
//   - a kern-log notifier needs CAP_SYS_ADMIN or CAP_SYSLOG in the initial user namespace;
//   - stats: the host scope for root, the user scope (own listeners only) for uid 65534;
//   - max_listeners_per_user is checked before any mount hook is armed;
//   - listeners are charged to the registering process's memory cgroup;
//   - a closed socket's events never reach a new socket that took its port id;
//   - a user churning mounts with listeners it never reads cannot make root's listener miss.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { formatVerdict } from '@usip/vm';
import { Action, Command, EventType, Feature, FEATURE_NAMES, StatsScope, UnavailableReason } from '../../client/src/generated/usip.js';
import { runGuestChecks } from './helpers.js';

const NOBODY = 65534;
/** CAP_SYSLOG (34) as /proc/PID/status shows a capability set. */
const CAP_SYSLOG_ONLY = '0000000400000000';

interface Answer {
  errno: number;
  error: string | null;
  extack: string | null;
  replies: number;
  attrs?: { id?: number; [key: string]: unknown };
}
interface Stats {
  listeners?: number;
  notifiers?: number;
  queued?: number;
  queue_limit?: number;
  posted?: number;
  dropped?: number;
  delivered?: number;
  undeliverable?: number;
  objects?: number;
  mount_hooks?: number;
  scope?: number;
}
interface FeatureStatus {
  feature: number;
  name: string;
  available: number;
  reason: number | null;
}
interface PingView {
  features: number;
  status: FeatureStatus[];
}
interface ListenerEntry {
  id: number;
  owner_uid?: number;
  delivered?: number;
  missed?: number;
}

function accepted(answer: Answer, what: string): void {
  assert.is(answer.errno, 0, `${what}: ${JSON.stringify(answer)}`);
}

function refused(answer: Answer, error: string, message: RegExp, what: string): void {
  const shown = `${what}: ${JSON.stringify(answer)}`;
  assert.is(answer.error, error, shown);
  assert.match(answer.extack ?? '', message, shown);
  assert.is(answer.replies, 0, shown);
}

/** Does the kernel release have fanotify mount events (FAN_MNT_ATTACH, 6.15+)? */
function hasNativeMountNotify(release: string): boolean {
  const [major = 0, minor = 0] = release.split(/[.-]/).map(Number);
  return major > 6 || (major === 6 && minor >= 15);
}

const statusOf = (view: PingView, flag: number) => view.status.find((s) => s.feature === flag);
const allFlags = Object.values(Feature) as number[];
const eventFeatures = [Feature.mountEvents, Feature.remountEvents, Feature.propagationEvents, Feature.setattrEvents];

const reports = await runGuestChecks({
  command: ['/usr/bin/python3', 'packages/kernel-module/test/guest/hardening_checks.py'],
  results: 'hardening-checks.jsonl',
  params: ['allow_inject=1'],
  timeoutMs: 280_000,
});

for (const report of reports) {
  const { run } = report;
  const test = suite(`usip hardening in the ${run.kernel.series} guest (${run.kernel.release})`);

  test('the guest loaded usip.ko with allow_inject=1 and ran every group of checks to the end', () => {
    assert.equal(run.loadErrors, [], formatVerdict(run));
    assert.is(run.timedOut, false, `timed out:\n${run.output}`);
    assert.is(run.exitCode, 0, `${formatVerdict(run)}\n${run.output}`);
    assert.equal(report.errors.map((e) => `${e.check}: ${e.error}`), []);
    assert.is(report.get<boolean>('end'), true);
  });

  // Features

  test('ping lists every feature of the spec once, available on this kernel (native-mount-notify only from 6.15; low-space not built yet), and features is the mask of the available ones', () => {
    const fresh = report.get<PingView & { spec_flags: Record<string, string>; release: string }>('features.fresh');
    // The uapi header the guest read and the generated TypeScript name the same features.
    assert.equal(fresh.spec_flags, Object.fromEntries(Object.entries(FEATURE_NAMES).map(([k, v]) => [String(Number(k)), v])));
    assert.equal(fresh.status.map((s) => s.feature).sort((a, b) => a - b), [...allFlags].sort((a, b) => a - b));
    for (const s of fresh.status) {
      if (s.feature === Feature.nativeMountNotify && !hasNativeMountNotify(fresh.release)) {
        assert.equal({ available: s.available, reason: s.reason }, { available: 0, reason: UnavailableReason.notBuilt }, s.name);
      } else {
        assert.equal({ available: s.available, reason: s.reason }, { available: 1, reason: null }, s.name);
      }
    }
    const mask = fresh.status.filter((s) => s.available).reduce((m, s) => m | s.feature, 0);
    assert.is(fresh.features, mask, 'features is the mask of the available features');
  });

  test('inject_arm_failures=1: the first mtab listener leaves mount-events unavailable (arm-failed) and out of the mask, the other event features armed, and the kernel log says so', () => {
    const fresh = report.get<PingView>('features.fresh');
    const r = report.get<{
      hooks_disarmed_before: boolean;
      param_write_error: string | null;
      param_after: string | null;
      ping: PingView;
      mount_hooks: number;
      log: string[];
    }>('features.arm-failed');
    assert.ok(r.hooks_disarmed_before, 'no hook was armed before');
    assert.is(r.param_write_error, null, 'inject_arm_failures is writable');
    assert.is(r.param_after, '0', 'the one failure asked for was used up');
    const status = statusOf(r.ping, Feature.mountEvents);
    assert.equal({ available: status?.available, reason: status?.reason }, { available: 0, reason: UnavailableReason.armFailed },
      JSON.stringify(r.ping));
    assert.is(r.ping.features, fresh.features & ~Feature.mountEvents);
    for (const f of eventFeatures.filter((f) => f !== Feature.mountEvents)) {
      assert.is(statusOf(r.ping, f)?.available, 1, `feature ${FEATURE_NAMES[f]} stays available`);
    }
    assert.ok(r.mount_hooks > 0, `the other features' hooks are armed: ${r.mount_hooks}`);
    const log = r.log.join('\n');
    assert.match(log, /usip: failing to arm the hooks of mount-events, as asked/);
    assert.match(log, /usip: mount-events is off until its hooks can be armed/);
    assert.match(run.kernelLog, /usip: mount-events is off until its hooks can be armed/);
  });

  test('the next mtab listener arms mount-events again (available, back in the mask), and a real tmpfs mount reaches both listeners', () => {
    const fresh = report.get<PingView>('features.fresh');
    const failed = report.get<{ mount_hooks: number }>('features.arm-failed');
    const r = report.get<{ ping: PingView; mount_hooks: number; log: string[] }>('features.rearmed');
    assert.equal(statusOf(r.ping, Feature.mountEvents)?.available, 1, JSON.stringify(r.ping));
    assert.is(statusOf(r.ping, Feature.mountEvents)?.reason, null);
    assert.is(r.ping.features, fresh.features);
    assert.ok(r.mount_hooks > failed.mount_hooks, `more hooks armed: ${failed.mount_hooks} -> ${r.mount_hooks}`);
    assert.match(r.log.join('\n'), /usip: mount-events armed now/);
    const m = report.get<{
      events: Record<string, { genl_cmd: number; listener_id: number; action: number; path: string; fs_type: string; missed: number } | null>;
      ids: Record<string, number>;
      path: string;
    }>('features.real-mount-event');
    for (const name of ['first', 'second']) {
      assert.equal(m.events[name], {
        genl_cmd: Command.mtabEvent, listener_id: m.ids[name], type: EventType.mtab, action: Action.mount, path: m.path, fs_type: 'tmpfs', missed: 0,
      }, `${name} listener`);
    }
  });

  test('after the last mtab listener goes, stats says 0 mount hooks only once the kernel\'s kprobes list has none of them left', () => {
    const r = report.get<{ rounds: { armed: number; zero_after_s: number; reached_zero: boolean; kprobes_then: string[] | string }[] }>('disarm.stats-match-kprobes');
    for (const round of r.rounds) {
      assert.ok(round.armed > 0 && round.reached_zero, JSON.stringify(round));
      assert.equal(round.kprobes_then, [], `stats said 0 after ${round.zero_after_s} s while these were registered`);
    }
  });

  // kern-log

  test('kern-log: uid 65534 without capabilities is EPERM naming CAP_SYS_ADMIN or CAP_SYSLOG, alone or next to a notify notifier; without kern-log it may register', () => {
    const r = report.get<{ kern_log_only: Answer; mixed: Answer; without_kern_log: Answer; caps: Record<string, string> }>('kern-log.nobody');
    assert.is(r.caps.CapEff, '0000000000000000');
    refused(r.kern_log_only, 'EPERM', /CAP_SYS_ADMIN|CAP_SYSLOG/, 'kern-log notifier');
    refused(r.mixed, 'EPERM', /CAP_SYS_ADMIN|CAP_SYSLOG/, 'notify notifier and kern-log notifier');
    accepted(r.without_kern_log, 'notify notifier only');
  });

  test('kern-log: uid 65534 with every capability of a user namespace of its own is refused too (the initial user namespace\'s count)', () => {
    const r = report.get<{ reply: Answer; caps: Record<string, string>; uid: number }>('kern-log.nobody-userns');
    assert.is(r.uid, 0, 'root in its own user namespace');
    assert.not.equal(r.caps.CapEff, '0000000000000000', 'with capabilities there');
    refused(r.reply, 'EPERM', /CAP_SYS_ADMIN|CAP_SYSLOG/, 'kern-log notifier from a user namespace');
  });

  test('kern-log: the socket\'s opener and the sender must both hold it: a socket root opened, used by uid 65534, and one uid 65534 opened, used by root, are EPERM', () => {
    const r = report.get<{ opened_by_root_sent_by_nobody: Answer; opened_by_nobody_sent_by_root: Answer }>('kern-log.passed-sockets');
    refused(r.opened_by_root_sent_by_nobody, 'EPERM', /CAP_SYS_ADMIN|CAP_SYSLOG/, 'root\'s socket, uid 65534 sending');
    refused(r.opened_by_nobody_sent_by_root, 'EPERM', /CAP_SYS_ADMIN|CAP_SYSLOG/, 'uid 65534\'s socket, root sending');
  });

  test('refused kern-log registrations leave no listener, notifier or object behind', () => {
    const { before, after } = report.get<{ before: Stats; after: Stats }>('kern-log.nothing-left');
    assert.equal(
      { listeners: after.listeners, notifiers: after.notifiers, objects: after.objects, queued: after.queued },
      { listeners: before.listeners, notifiers: before.notifiers, objects: before.objects, queued: before.queued },
    );
  });

  test('kern-log: root may; uid 65534 holding CAP_SYSLOG (setpriv, ambient) may, and its line reaches the kernel log; under setpriv without it, EPERM', () => {
    accepted(report.get<Answer>('kern-log.root'), 'root');
    const withCap = report.get<{ uid: number; caps: Record<string, string>; reply: Answer; log: string[]; exit: number }>('kern-log.nobody-cap-syslog');
    assert.is(withCap.uid, NOBODY);
    assert.is(withCap.caps.CapEff, CAP_SYSLOG_ONLY, 'CAP_SYSLOG and nothing else');
    accepted(withCap.reply, 'uid 65534 with CAP_SYSLOG');
    const id = withCap.reply.attrs?.id;
    assert.ok(withCap.log.some((l) => l.startsWith(`usip: listener ${id}: storage quota `)), `no kernel log line of listener ${id}: ${withCap.log}`);
    assert.is(withCap.exit, 0);
    const without = report.get<{ uid: number; caps: Record<string, string>; reply: Answer }>('kern-log.nobody-setpriv-no-caps');
    assert.is(without.uid, NOBODY);
    assert.is(without.caps.CapEff, '0000000000000000');
    refused(without.reply, 'EPERM', /CAP_SYS_ADMIN|CAP_SYSLOG/, 'uid 65534 under setpriv without capabilities');
  });

  // stats

  interface StatsScopes {
    param_write_errors: Record<string, string | null>;
    user_queue_len: number;
    event_queue_len: string;
    root_ids: number[];
    nobody_ids: number[];
    nobody: { stats: Stats; dump: ListenerEntry[] };
    root: { stats: Stats; dump: ListenerEntry[] };
  }

  test('stats as root (CAP_SYS_ADMIN in the initial user namespace): scope host, every listener, and the host-wide posted, undeliverable, objects and mount-hooks', () => {
    const r = report.get<StatsScopes>('stats.scopes');
    const s = r.root.stats;
    assert.is(s.scope, StatsScope.host);
    assert.equal({ listeners: s.listeners, notifiers: s.notifiers }, { listeners: 4, notifiers: 5 });
    assert.is(s.queue_limit, Number(r.event_queue_len), 'queue-limit is event_queue_len');
    for (const key of ['posted', 'undeliverable', 'objects', 'mount_hooks'] as const) {
      assert.type(s[key], 'number', `${key} is present`);
    }
    assert.ok((s.mount_hooks ?? 0) > 0, 'mtab listeners are registered: hooks armed');
    assert.ok((s.objects ?? 0) > 0);
  });

  test('stats as uid 65534: scope user, its own listeners\' listeners, notifiers, delivered and dropped (their missed), queue-limit = user_queue_len, no host-wide counters', () => {
    const r = report.get<StatsScopes>('stats.scopes');
    assert.equal(r.param_write_errors, { user_queue_len: null });
    const s = r.nobody.stats;
    const own = r.root.dump.filter((e) => r.nobody_ids.includes(e.id));
    assert.equal(own.map((e) => e.owner_uid), [NOBODY, NOBODY]);
    const sum = (key: 'delivered' | 'missed') => own.reduce((n, e) => n + (e[key] ?? 0), 0);
    assert.equal(s, {
      listeners: 2,
      notifiers: 3,
      queued: 0,
      queue_limit: r.user_queue_len,
      delivered: sum('delivered'),
      dropped: sum('missed'),
      scope: StatsScope.user,
      // Its own listeners' low-space records (none): per user, like the listeners.
      watched_mounts: 0,
    }, 'only these attributes, with its own listeners\' counts');
    assert.ok(sum('missed') > 0, 'its listener with a tiny receive buffer missed events');
    // Root's listeners had events too: the host counts are not the user's.
    assert.ok((r.root.stats.delivered ?? 0) > (s.delivered ?? 0));
    assert.equal(r.nobody.dump.map((e) => e.id).sort(), [...r.nobody_ids].sort(), 'listener-get shows it its own');
  });

  // Limits before hooks

  test('max_listeners_per_user=1: uid 65534\'s mtab listener next to its storage listener is EMFILE, and right after no mount hook is armed (stats mount-hooks 0, no kprobe of the module)', () => {
    const r = report.get<{
      hooks_disarmed_before: boolean;
      param_write_errors: Record<string, string | null>;
      param: string;
      replies: { storage: Answer; mtab: Answer };
      mount_hooks: number;
      kprobes: string[] | string;
      read_within_s: number;
      before: Stats;
      after: Stats;
    }>('limits.refused-before-arming');
    assert.ok(r.hooks_disarmed_before, 'no hook was armed before');
    assert.is(r.param, '1');
    accepted(r.replies.storage, 'the first listener');
    refused(r.replies.mtab, 'EMFILE', /max_listeners_per_user/, 'the second listener, with an mtab notifier');
    assert.ok(r.read_within_s < 0.5, `read ${r.read_within_s} s after the refusal (a late disarm comes after 1 s)`);
    assert.is(r.mount_hooks, 0, 'stats mount-hooks right after the refusal');
    assert.equal(r.kprobes, [], 'the kernel\'s kprobes list right after the refusal');
    assert.equal({ listeners: r.after.listeners, objects: r.after.objects }, { listeners: r.before.listeners, objects: r.before.objects });
  });

  test('a global mtab listener refused to uid 65534 (EPERM) arms no mount hook either', () => {
    const r = report.get<{ hooks_disarmed_before: boolean; reply: Answer; mount_hooks: number; kprobes: string[] | string }>('limits.global-refused-before-arming');
    assert.ok(r.hooks_disarmed_before);
    refused(r.reply, 'EPERM', /global listener needs CAP_SYS_ADMIN/, 'global listener as uid 65534');
    assert.is(r.mount_hooks, 0);
    assert.equal(r.kprobes, []);
  });

  test('control: with max_listeners_per_user=2 the same mtab listener arms the hooks, and stats and the kprobes list show them', () => {
    const r = report.get<{ param: string; replies: { storage: Answer; mtab: Answer }; mount_hooks: number; kprobes: string[] }>('limits.control');
    assert.is(r.param, '2');
    accepted(r.replies.mtab, 'the mtab listener with room for it');
    assert.ok(r.mount_hooks > 0);
    assert.is(r.kprobes.length, r.mount_hooks, r.kprobes.join('\n'));
  });

  test('max_listeners_per_user=0: uid 65534 may not register even its first listener (EMFILE)', () => {
    const r = report.get<{ param: string; write_error: string | null; replies: Answer[] }>('limits.zero');
    assert.is(r.write_error, null);
    assert.is(r.param, '0');
    refused(r.replies[0] as Answer, 'EMFILE', /max_listeners_per_user/, 'the first listener with the limit at 0');
    refused(r.replies[1] as Answer, 'EMFILE', /max_listeners_per_user/, 'the second listener with the limit at 0');
  });

  // Memory accounting

  test('listeners are charged to the registering process\'s memory cgroup: its slab grows by what 64 listeners of 32 path-prefix notifiers take, and falls back when they go', () => {
    const r = report.get<{
      controllers: string[];
      child_cgroup: string;
      registered: { ids: number };
      takes_at_least: number;
      baseline: Record<string, number>;
      loaded: Record<string, number>;
      freed: Record<string, number>;
      objects_before: number;
      objects_after: number;
    }>('memcg.listeners-charged');
    assert.ok(r.controllers.includes('memory'));
    assert.is(r.child_cgroup, '0::/usip-hardening');
    assert.is(r.registered.ids, 64);
    assert.ok(r.objects_after - r.objects_before >= 64 * 34, `objects ${r.objects_before} -> ${r.objects_after}`);
    const grew = (r.loaded.slab ?? 0) - (r.baseline.slab ?? 0);
    assert.ok(grew >= r.takes_at_least / 2,
      `the cgroup's slab grew by ${grew} bytes; the listeners take at least ${r.takes_at_least}: ${JSON.stringify(r)}`);
    assert.ok((r.freed.slab ?? 0) - (r.baseline.slab ?? 0) < grew / 4, `freed again: ${JSON.stringify(r.freed)}`);
  });

  // Port id reuse

  test('a new socket that takes a closed listener socket\'s port id (bound while the close runs, in most rounds) receives none of its events, and its own listener gets its own', () => {
    const r = report.get<{
      rounds: number;
      concurrent_rounds: number;
      seconds: number;
      rounds_with_foreign_messages: number;
      foreign_messages: number;
      hits: unknown[];
      own_failure_count: number;
      own_failures: unknown[];
      bind_failure_count: number;
      stats: Stats;
    }>('port-reuse');
    assert.ok(r.rounds >= 300, `only ${r.rounds} rounds in ${r.seconds} s`);
    assert.ok(r.concurrent_rounds >= r.rounds / 2, `${r.concurrent_rounds} of ${r.rounds} rounds raced the close`);
    assert.is(r.bind_failure_count, 0, 'the port id could always be taken');
    assert.is(r.foreign_messages, 0, `messages for the closed socket's listener: ${JSON.stringify(r.hits)}`);
    assert.is(r.own_failure_count, 0, JSON.stringify(r.own_failures));
    assert.equal({ listeners: r.stats.listeners, objects: r.stats.objects }, { listeners: 0, objects: 0 });
  });

  // One user's churn against another's listener

  interface Fairness {
    param_write_errors: Record<string, string | null>;
    shares: Record<string, number>;
    params: Record<string, string | null>;
    churner: {
      ids: number[];
      processes: number;
      mnt_ns: number;
      init_mnt_ns: number;
      uid_map: string[];
      cycles: number;
      dump: ListenerEntry[];
      stats: Stats;
    };
    sampler: { samples: number; max_queued: number; queue_limits: number[]; scopes: number[] };
    root: {
      id: number;
      posted: number;
      received: number;
      missing: number[];
      missing_count: number;
      in_order: boolean;
      missed_sum: number;
      missed_notices: number[];
      dropped_in_replies: number;
      foreign: number[];
      dump: { delivered?: number; missed?: number };
    };
    host_before: Stats;
    host_after: Stats;
  }

  test('uid 65534 churning tmpfs mounts in its own user and mount namespace, with listeners it never reads, cannot make root\'s listener miss an injected event', () => {
    const r = report.get<Fairness>('fairness');
    assert.ok(r.root.posted >= 50, `a steady series: ${r.root.posted} events injected`);
    assert.equal(
      { received: r.root.received, missing: r.root.missing, missed: r.root.missed_sum, notices: r.root.missed_notices, dropped: r.root.dropped_in_replies },
      { received: r.root.posted, missing: [], missed: 0, notices: [], dropped: 0 },
      'every injected event reached root\'s listener, none reported missed',
    );
    assert.ok(r.root.in_order);
    assert.equal(r.root.foreign, []);
    assert.equal(r.root.dump, { delivered: r.root.posted, missed: 0 });
    // The setting: small shares, and the churner in namespaces of its own.
    assert.equal(r.param_write_errors, { event_queue_len: null, user_queue_len: null, listener_queue_len: null });
    assert.equal(r.params, Object.fromEntries(Object.entries(r.shares).map(([k, v]) => [k, String(v)])));
    assert.equal(r.churner.uid_map, ['0', String(NOBODY), '1'], 'root in a user namespace of its own, uid 65534 outside');
    assert.not.equal(r.churner.mnt_ns, r.churner.init_mnt_ns);
  });

  test('the churn was real pressure: the churner\'s listeners missed events, the module dropped events for it, and its stats (user scope) never showed more queued than user_queue_len', () => {
    const r = report.get<Fairness>('fairness');
    assert.ok(r.churner.cycles > 0);
    assert.is(r.churner.dump.length, r.churner.ids.length);
    for (const e of r.churner.dump) assert.ok((e.missed ?? 0) > 0, `churner listener ${e.id} missed nothing: ${JSON.stringify(e)}`);
    const dropped = (r.host_after.dropped ?? 0) - (r.host_before.dropped ?? 0);
    assert.ok(dropped > 0, 'events dropped for want of room in the churner\'s shares');
    assert.is(r.churner.stats.scope, StatsScope.user);
    assert.is(r.churner.stats.queue_limit, r.shares.user_queue_len);
    assert.ok(r.sampler.samples > 20, `${r.sampler.samples} samples`);
    assert.equal({ limits: r.sampler.queue_limits, scopes: r.sampler.scopes }, { limits: [r.shares.user_queue_len], scopes: [StatsScope.user] });
    assert.ok(r.sampler.max_queued <= (r.shares.user_queue_len ?? 0), `queued reached ${r.sampler.max_queued}`);
  });

  // The end

  test('with every socket closed: no listeners, nothing queued, no objects', () => {
    const { stats } = report.get<{ stats: Stats }>('cleanup');
    assert.equal({ listeners: stats.listeners, queued: stats.queued, objects: stats.objects }, { listeners: 0, queued: 0, objects: 0 });
  });

  test('the harness unloads the module and the kernel log has no warning, oops or BUG', () => {
    assert.ok(run.unloaded, formatVerdict(run));
    assert.equal(run.problems, []);
    assert.ok(run.ok, formatVerdict(run));
  });

  test.run();
}
