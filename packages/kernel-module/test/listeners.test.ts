// usip.ko's listeners and events, on each supported kernel: one QEMU boot per kernel loads the
// module with allow_inject=1 and runs test/guest/listener_checks.py, an independent client (raw
// netlink sockets from Python, forked children that change uid or unshare their mount and network
// namespaces, /dev/kmsg, rmmod/insmod). The guest writes one JSON line per check to
// $USIP_VM_RESULTS/listener-checks.jsonl; each test below judges one or a few of those lines.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { formatVerdict } from '@usip/vm';
import { runGuestChecks } from './helpers.js';

const MTAB = 1;
const STORAGE = 2;
const MOUNT = 1;
const UMOUNT = 2;
const MOVE = 3;
const REMOUNT = 4;
const ENOSPC = 5;
const LOW_SPACE = 7;
const NOTIFY = 0x1;
const KERN_LOG = 0x2;
const GLOBAL = 0x1;
const SCOPE_MNT_NS = 1;
const SCOPE_GLOBAL = 2;
const MTAB_EVENT = 7;
const STORAGE_EVENT = 8;
const NOBODY = 65534;

/** What a request got back (Reply.summary() in the guest). */
interface Answer {
  errno: number;
  error: string | null;
  extack: string | null;
  extack_offset: number | null;
  missing_attribute: { type?: number; nest_offset?: number } | null;
  replies: number;
  attrs?: Record<string, unknown>;
}
interface Notifier {
  type?: number;
  action?: number;
  cmd?: number;
  flags?: number;
  mount_id?: number;
  path_prefix?: string;
  threshold?: number;
  hysteresis?: number;
  interval_ms?: number;
}
interface Listener {
  id?: number;
  flags?: number;
  notifiers?: Notifier[];
  groups?: string[];
  scope?: number;
  mnt_ns?: number;
  owner_pid?: number;
  owner_uid?: number;
  port_id?: number;
  delivered?: number;
  missed?: number;
}
interface UsipEvent {
  genl_cmd: number;
  nlmsg_pid: number;
  nlmsg_seq: number;
  listener_id?: number;
  seq?: number;
  missed?: number;
  type?: number;
  action?: number;
  cmd?: number;
  timestamp?: string | number;
  mnt_ns?: number;
  pid?: number;
  uid?: number;
  mount_id?: number;
  parent_id?: number;
  path?: string;
  fs_type?: string;
  source?: string;
  dev?: number;
  count?: number;
  unknown_attributes?: number[];
}
interface Stats {
  listeners: number;
  notifiers: number;
  queued: number;
  queue_limit: number;
  posted: number;
  dropped: number;
  delivered: number;
  undeliverable: number;
  objects: number;
}
interface Burst {
  repeat: number;
  reply: { seq: number; queued: number; dropped: number };
  sentinel_seq: number;
  received: number;
  sum_missed: number;
  max_missed: number;
  notices: { missed: number; listener_id: number; unknown_attributes?: number[] }[];
  sentinel_missed: number;
  last_seq: number;
  mismatches: { seq: number; missed: number; gap: number }[];
  underreports: { seq: number; missed_so_far: number; lost_so_far: number }[];
  foreign_listener_ids: number[];
  enobufs: number;
  dump: { delivered?: number; missed?: number };
  stats_before: Stats;
  stats_after: Stats;
}

/** An error answer: the errno name, and an extack message that says what was wrong. */
function rejected(answer: Answer, error: string, message: RegExp, what: string): void {
  const shown = `${what}: ${JSON.stringify(answer)}`;
  assert.is(answer.error, error, shown);
  assert.ok(answer.extack, `${what}: no extack message: ${JSON.stringify(answer)}`);
  assert.match(answer.extack ?? '', message, shown);
  assert.is(answer.replies, 0, shown);
}

function accepted(answer: Answer, what: string): void {
  assert.is(answer.errno, 0, `${what}: ${JSON.stringify(answer)}`);
}

const pathsOf = (events: { path?: string }[]) => events.map((e) => e.path);

const reports = await runGuestChecks({
  command: ['/usr/bin/python3', 'packages/kernel-module/test/guest/listener_checks.py', '--module', '{ko}'],
  results: 'listener-checks.jsonl',
  params: ['allow_inject=1'],
  timeoutMs: 300_000,
});

for (const report of reports) {
  const { run } = report;
  const test = suite(`usip listeners and events in the ${run.kernel.series} guest (${run.kernel.release})`);

  test('the guest loaded usip.ko with allow_inject=1 and ran every group of checks to the end', () => {
    assert.equal(run.loadErrors, [], formatVerdict(run));
    assert.is(run.timedOut, false, `timed out:\n${run.output}`);
    assert.is(run.exitCode, 0, `${formatVerdict(run)}\n${run.output}`);
    assert.equal(report.errors.map((e) => `${e.check}: ${e.error}`), []);
    assert.is(report.get<boolean>('end'), true);
  });

  test('module parameters: defaults, allow_inject, statfs_max_running and fail_check set at load only, the others writable by root', () => {
    const start = report.get<{
      params: Record<string, string>;
      param_modes: Record<string, string>;
      stats: Stats;
    }>('start');
    assert.equal(start.params, {
      allow_inject: 'Y',
      event_queue_len: '4096',
      fail_check: '',
      inject_arm_failures: '0',
      listener_queue_len: '1024',
      max_coalesce_slots: '1024',
      max_coalesce_slots_per_user: '64',
      max_listeners_per_user: '64',
      max_coalesce_slots: '1024',
      max_coalesce_slots_per_user: '64',
      max_notifiers_per_listener: '32',
      max_watched_mounts_per_listener: '256',
      space_error_interval_ms: '1000',
      space_errors_unprivileged: 'N',
      statfs_max_running: '32',
      statfs_timeout_ms: '1000',
      user_queue_len: '1024',
    });
    assert.equal(start.param_modes, {
      allow_inject: '0o444',
      event_queue_len: '0o644',
      fail_check: '0o444',
      inject_arm_failures: '0o644',
      listener_queue_len: '0o644',
      max_coalesce_slots: '0o644',
      max_coalesce_slots_per_user: '0o644',
      max_listeners_per_user: '0o644',
      max_coalesce_slots: '0o644',
      max_coalesce_slots_per_user: '0o644',
      max_notifiers_per_listener: '0o644',
      max_watched_mounts_per_listener: '0o644',
      space_error_interval_ms: '0o644',
      space_errors_unprivileged: '0o644',
      statfs_max_running: '0o444',
      statfs_timeout_ms: '0o644',
      user_queue_len: '0o644',
    });
    const write = report.get<{ write_error: string | null; value_after: string }>('params.allow-inject-read-only');
    assert.is(write.write_error, 'EACCES', 'writing allow_inject at run time should be refused');
    assert.is(write.value_after, 'Y');
  });

  test('a freshly loaded module has no listeners, nothing queued and no objects', () => {
    const { stats } = report.get<{ stats: Stats }>('start');
    assert.equal(
      {
        listeners: stats.listeners,
        notifiers: stats.notifiers,
        queued: stats.queued,
        objects: stats.objects,
        limit: stats.queue_limit,
      },
      { listeners: 0, notifiers: 0, queued: 0, objects: 0, limit: 4096 },
    );
  });

  // 1. Registration

  test('listener-register answers id, one group per type, scope mnt-ns and the caller\'s mount namespace', () => {
    const { reply, mnt_ns } = report.get<{ reply: Answer; mnt_ns: number }>('register.reply');
    accepted(reply, 'register');
    const attrs = reply.attrs as Listener;
    assert.ok((attrs.id ?? 0) >= 1, `id ${attrs.id}`);
    assert.equal([...(attrs.groups ?? [])].sort(), ['mtab', 'storage']);
    assert.is(attrs.scope, SCOPE_MNT_NS);
    assert.is(attrs.mnt_ns, mnt_ns, 'mnt-ns is the inode of /proc/self/ns/mnt');
  });

  test('listener-get shows the listener as registered: owner, port, scope, notifiers with cmd, flags and selectors', () => {
    const r = report.get<{
      entry: Listener | null;
      pid: number;
      uid: number;
      port: number;
      mnt_ns: number;
      id: number;
    }>('register.dump');
    assert.ok(r.entry, `listener ${r.id} is not in the dump`);
    assert.equal(
      { ...r.entry, groups: [...(r.entry.groups ?? [])].sort() },
      {
        id: r.id,
        flags: 0,
        scope: SCOPE_MNT_NS,
        mnt_ns: r.mnt_ns,
        owner_pid: r.pid,
        owner_uid: r.uid,
        port_id: r.port,
        notifiers: [
          { type: MTAB, action: MOUNT, cmd: 0x11, flags: NOTIFY, mount_id: 77, path_prefix: '/mnt/data' },
          // A low-space notifier is listed with its hysteresis and interval, the defaults here.
          { type: STORAGE, action: LOW_SPACE, cmd: 0x22, flags: NOTIFY | KERN_LOG, threshold: 10, hysteresis: 5, interval_ms: 1000 },
        ],
        groups: ['mtab', 'storage'],
        delivered: 0,
        missed: 0,
      },
    );
  });

  test('the registering socket sees its listener in listener-get', () => {
    const r = report.get<{ ids: number[]; id: number }>('register.dump-own-socket');
    assert.ok(r.ids.includes(r.id), `ids ${r.ids}`);
  });

  test('a second listener gets its own id and only the groups of its types', () => {
    const { first, second } = report.get<{ first: number; second: Answer }>('register.second');
    accepted(second, 'second register');
    const attrs = second.attrs as Listener;
    assert.ok((attrs.id ?? 0) >= 1 && attrs.id !== first, `ids ${first} and ${attrs.id}`);
    assert.equal(attrs.groups, ['mtab']);
  });

  test('stats count the registered listeners and notifiers', () => {
    const { stats } = report.get<{ stats: Stats }>('register.stats');
    assert.is(stats.listeners, 2);
    assert.is(stats.notifiers, 3);
    assert.ok(stats.objects > 0, `objects ${stats.objects} with two listeners registered`);
  });

  test('listener-unregister by the registering socket removes the listener', () => {
    accepted(report.get<Answer>('unregister.own'), 'unregister');
    const { ids, id, stats } = report.get<{ ids: number[]; id: number; stats: Stats }>('unregister.gone');
    assert.not.ok(ids.includes(id), `listener ${id} is still listed: ${ids}`);
    assert.is(stats.listeners, 1);
    assert.is(stats.notifiers, 1);
  });

  test('unregistering an id that is gone or never existed is ENOENT with a message; without an id, EINVAL', () => {
    rejected(report.get<Answer>('unregister.again'), 'ENOENT', /listener|id/i, 'unregister twice');
    rejected(report.get<Answer>('unregister.unknown'), 'ENOENT', /listener|id/i, 'unregister unknown id');
    const missing = report.get<Answer>('unregister.missing-id');
    assert.is(missing.error, 'EINVAL', JSON.stringify(missing));
    assert.ok(/id/i.test(missing.extack ?? '') || missing.missing_attribute?.type === 1,
      `the error names neither the id nor the missing attribute: ${JSON.stringify(missing)}`);
  });

  const registerErrors: [string, string, RegExp][] = [
    ['no-notifier', 'EINVAL', /notifier/i],
    ['flags-only', 'EINVAL', /notifier/i],
    ['action-of-other-type', 'EINVAL', /action/i],
    ['storage-action-of-mtab', 'EINVAL', /action/i],
    ['one-bad-of-two', 'EINVAL', /action/i],
    ['missing-type', 'EINVAL', /type/i],
    ['missing-action', 'EINVAL', /action/i],
    ['missing-flags', 'EINVAL', /flag/i],
    ['zero-flags', 'EINVAL', /flag|notify|kern-log/i],
    ['unknown-notifier-flag', 'EINVAL', /reserved bit/],
    ['unknown-listener-flag', 'EINVAL', /reserved bit/],
    ['threshold-101', 'EINVAL', /threshold is a percentage of the blocks: 1 to 100/],
    ['type-3', 'ERANGE', /out of range/],
    ['action-9', 'ERANGE', /out of range/],
    ['not-nested', 'EINVAL', /NLA_F_NESTED/],
    ['unknown-notifier-attribute', 'EINVAL', /Unknown attribute type/],
    ['short-mount-id', 'EINVAL', /invalid attribute length/],
  ];
  test('listener-register refuses bad notifiers with EINVAL/ERANGE and an extack message naming the problem', () => {
    for (const [name, error, message] of registerErrors) {
      rejected(report.get<Answer>(`register.error.${name}`), error, message, name);
    }
  });

  test('refused registrations leave no listener, notifier or object behind', () => {
    const { before, after } = report.get<{ before: Stats; after: Stats }>('register.error.nothing-left');
    assert.equal(
      { listeners: after.listeners, notifiers: after.notifiers, objects: after.objects },
      { listeners: before.listeners, notifiers: before.notifiers, objects: before.objects },
    );
  });

  test('another uid (65534) cannot unregister root\'s listener: EPERM with a message', () => {
    rejected(report.get<Answer>('unregister.other-uid'), 'EPERM', /owner|CAP_SYS_ADMIN/, 'unregister as nobody');
  });

  test('a socket of the same uid may unregister a listener of another socket', () => {
    const r = report.get<{ reply: Answer; id: number; dump_after: number[] }>('unregister.same-uid');
    accepted(r.reply, 'unregister by the same uid');
    assert.not.ok(r.dump_after.includes(r.id));
  });

  test('listener-get shows an unprivileged user only the listeners it could unregister', () => {
    const r = report.get<{ ids: number[]; own: number[]; root_id: number }>('get.unprivileged');
    assert.equal([...r.ids].sort(), [...r.own].sort(), `root's listener ${r.root_id} must not be listed to nobody`);
  });

  test('listener-get shows root every listener, with the owner uid and pid of another user\'s', () => {
    const r = report.get<{
      ids: number[];
      root_id: number;
      nobody_id: number;
      nobody_entry: Listener | null;
      nobody_pid: number;
    }>('get.admin');
    assert.ok(r.ids.includes(r.root_id) && r.ids.includes(r.nobody_id), JSON.stringify(r));
    assert.is(r.nobody_entry?.owner_uid, NOBODY);
    assert.is(r.nobody_entry?.owner_pid, r.nobody_pid);
  });

  test('CAP_SYS_ADMIN may unregister another user\'s listener', () => {
    const r = report.get<{ reply: Answer; ids_after: number[]; id: number }>('unregister.by-admin');
    accepted(r.reply, 'unregister by root');
    assert.not.ok(r.ids_after.includes(r.id));
  });

  // 2. Lifetime

  test('a listener dies with its process: SIGKILL, and it is gone from listener-get', () => {
    const r = report.get<{
      id: number;
      pid: number;
      entry_before: Listener | null;
      killed_by: number | null;
      gone: boolean;
      dumps_until_gone: number;
    }>('lifetime.sigkill');
    assert.is(r.entry_before?.owner_pid, r.pid, 'listed with its owner before the kill');
    assert.is(r.killed_by, 9);
    assert.ok(r.gone, `listener ${r.id} is still listed after its process was killed and reaped`);
  });

  test('closing the socket removes its listener', () => {
    const r = report.get<{ id: number; listed_before: boolean; gone: boolean }>('lifetime.close');
    assert.ok(r.listed_before);
    assert.ok(r.gone, `listener ${r.id} is still listed after its socket was closed`);
  });

  test('a new socket bound to the port id of a closed one keeps its own listener and gets its events', () => {
    const r = report.get<{
      port: number;
      first_port: number;
      second_port: number;
      old: number;
      new: number;
      old_gone: boolean;
      new_entry: Listener | null;
      event: UsipEvent;
      posted_seq: number;
    }>('lifetime.port-reuse');
    assert.is(r.first_port, r.port);
    assert.is(r.second_port, r.port);
    assert.ok(r.old_gone, `the closed socket's listener ${r.old} is still listed`);
    assert.ok(r.new_entry, `the new socket's listener ${r.new} was removed`);
    assert.is(r.new_entry?.port_id, r.port);
    assert.is(r.event.listener_id, r.new);
    assert.is(r.event.seq, r.posted_seq);
  });

  // 3. Scope

  test('a listener in another mount namespace is scoped to it (scope mnt-ns, its namespace\'s inode)', () => {
    const r = report.get<{ reply: Answer; child_mnt_ns: number; init_mnt_ns: number }>('scope.mntns.reply');
    accepted(r.reply, 'register in a new mount namespace');
    assert.is.not(r.child_mnt_ns, r.init_mnt_ns);
    assert.is((r.reply.attrs as Listener).scope, SCOPE_MNT_NS);
    assert.is((r.reply.attrs as Listener).mnt_ns, r.child_mnt_ns);
  });

  test('it gets the events of its own mount namespace and not those of the initial one', () => {
    const r = report.get<{
      first: UsipEvent;
      in_init_seq: number;
      in_child_seq: number;
      child_mnt_ns: number;
      child_pid: number;
    }>('scope.mntns.events');
    assert.is(r.first.path, '/in-child', `its first event is ${JSON.stringify(r.first)}, posted before: seq ${r.in_init_seq}`);
    assert.is(r.first.seq, r.in_child_seq);
    assert.is(r.first.mnt_ns, r.child_mnt_ns);
    assert.is(r.first.pid, r.child_pid);
  });

  test('a listener of the initial mount namespace does not get the other namespace\'s events', () => {
    const r = report.get<{ events: UsipEvent[]; id: number; init_mnt_ns: number }>('scope.mntns.init-listener');
    assert.equal(pathsOf(r.events), ['/in-init', '/in-init-2']);
    for (const e of r.events) {
      assert.is(e.listener_id, r.id);
      assert.is(e.mnt_ns, r.init_mnt_ns);
    }
  });

  test('a global listener (root) has scope global and gets the events of every mount namespace', () => {
    const { reply } = report.get<{ reply: Answer }>('scope.global.reply');
    accepted(reply, 'global register');
    assert.is((reply.attrs as Listener).scope, SCOPE_GLOBAL);
    const r = report.get<{
      events: UsipEvent[];
      id: number;
      init_mnt_ns: number;
      child_mnt_ns: number;
    }>('scope.global.events');
    assert.equal(pathsOf(r.events), ['/in-init', '/in-child', '/in-init-2']);
    assert.equal(r.events.map((e) => e.mnt_ns), [r.init_mnt_ns, r.child_mnt_ns, r.init_mnt_ns]);
    assert.ok(r.events.every((e) => e.listener_id === r.id && e.cmd === 0x61), JSON.stringify(r.events));
  });

  test('global as an unprivileged user is EPERM with a message; a scoped listener is allowed', () => {
    rejected(report.get<Answer>('scope.global.unprivileged'), 'EPERM', /CAP_SYS_ADMIN/, 'global as nobody');
    accepted(report.get<Answer>('scope.local.unprivileged'), 'scoped listener as nobody');
  });

  test('a listener in another network namespace gets its events by unicast; that namespace\'s group gets no copies', () => {
    const r = report.get<{
      child_id: number;
      child_net_ns: number;
      init_net_ns: number;
      family_in_child: number;
      family: number;
      event: UsipEvent;
      posted_seq: number;
      child_copies: UsipEvent[];
    }>('netns.isolated');
    assert.is.not(r.child_net_ns, r.init_net_ns);
    assert.is(r.family_in_child, r.family);
    assert.is(r.event.path, '/netns-only');
    assert.is(r.event.listener_id, r.child_id);
    assert.is(r.event.seq, r.posted_seq);
    assert.is(r.event.genl_cmd, MTAB_EVENT);
    // A copy cannot be fitted to each member's namespaces: only the initial netns gets them.
    assert.equal(r.child_copies, [], 'a group outside the initial network namespace got copies');
  });

  test('the initial netns\' group gets a copy of its own listeners\' events only, without listener-id and cmd', () => {
    const r = report.get<{
      init_id: number;
      init_posted_seq: number;
      event: UsipEvent;
      first_copy: UsipEvent;
    }>('netns.init-side');
    assert.is(r.event.path, '/init-1');
    assert.is(r.event.listener_id, r.init_id);
    assert.is(r.first_copy.path, '/init-1', `the initial namespace's subscriber got ${JSON.stringify(r.first_copy)} first`);
    assert.is(r.first_copy.seq, r.init_posted_seq);
    // (The guest records a missing attribute as null.)
    assert.is(r.first_copy.listener_id ?? null, null, 'multicast copies carry no listener-id');
    assert.is(r.first_copy.cmd ?? null, null, 'multicast copies carry no cmd');
  });

  test('the other netns\' listener does not get the initial namespaces\' events', () => {
    const r = report.get<{ later_event: UsipEvent; later_posted_seq: number }>('netns.isolated');
    assert.is(r.later_event.path, '/netns-only-2', JSON.stringify(r.later_event));
    assert.is(r.later_event.seq, r.later_posted_seq);
  });

  test('listener-get and listener-unregister see only the caller\'s network namespace', () => {
    const r = report.get<{ ids: number[]; child_id: number; init_id: number }>('netns.dump-isolated');
    assert.equal(r.ids, [r.child_id], `the other netns lists ${r.ids}`);
    rejected(report.get<Answer>('netns.unregister-foreign'), 'ENOENT', /listener/i, 'unregister from another netns');
  });

  test('an event of a mount namespace shared by two netns reaches both listeners, and one copy in the initial netns only', () => {
    const r = report.get<{
      child_id: number;
      init_id: number;
      seqs: number[];
      child_events: UsipEvent[];
      child_copies: UsipEvent[];
      init_events: UsipEvent[];
      init_copies: UsipEvent[];
    }>('netns.same-mntns');
    const expected = ['/shared', '/shared-2'];
    assert.equal(pathsOf(r.child_events), expected, 'listener in the other netns');
    assert.ok(r.child_events.every((e) => e.listener_id === r.child_id));
    assert.equal(r.child_copies, [], 'group in the other netns');
    assert.equal(pathsOf(r.init_events), expected, 'listener in the initial netns');
    assert.ok(r.init_events.every((e) => e.listener_id === r.init_id));
    assert.equal(pathsOf(r.init_copies), expected, 'group in the initial netns');
    assert.equal(r.init_copies.map((e) => e.seq), r.seqs);
  });

  // 4. Delivery

  test('every listener with a matching notify notifier gets the event, and only those (action, mount-id, path-prefix)', () => {
    type Brief = Pick<UsipEvent, 'seq' | 'genl_cmd' | 'type' | 'action' | 'cmd' | 'listener_id'>;
    const r = report.get<{
      ids: Record<string, number>;
      seqs: Record<string, number>;
      received: Record<string, Brief[]>;
    }>('delivery.received');
    const s = r.seqs as { mount: number; enospc: number; move: number; sentinel: number };
    const brief = (seq: number, genl_cmd: number, type: number, action: number, cmd: number, name: string): Brief => ({
      seq, genl_cmd, type, action, cmd, listener_id: r.ids[name],
    });
    const sentinel = (name: string) => brief(s.sentinel, MTAB_EVENT, MTAB, REMOUNT, 99, name);
    const mount = (name: string, cmd: number) => brief(s.mount, MTAB_EVENT, MTAB, MOUNT, cmd, name);
    const expected: Record<string, Brief[]> = {
      mount: [mount('mount', 11), sentinel('mount')],
      umount: [sentinel('umount')],
      prefix_and_id: [mount('prefix_and_id', 13), sentinel('prefix_and_id')],
      partial_component: [sentinel('partial_component')],
      other_mount_id: [sentinel('other_mount_id')],
      exact_path: [mount('exact_path', 16), sentinel('exact_path')],
      enospc: [brief(s.enospc, STORAGE_EVENT, STORAGE, ENOSPC, 21, 'enospc'), sentinel('enospc')],
      kern_log_only: [sentinel('kern_log_only')],
    };
    for (const [name, events] of Object.entries(expected)) {
      assert.equal(r.received[name], events, `listener "${name}"`);
    }
  });

  test('an mtab event carries listener-id, seq, missed, type, action, cmd, time, namespace, pid, uid and the mount', () => {
    const r = report.get<{
      event: UsipEvent;
      id: number;
      seq: number;
      pid: number;
      uid: number;
      mnt_ns: number;
      timestamp_within: boolean;
    }>('delivery.mtab-event');
    const { timestamp, ...rest } = r.event;
    assert.ok(timestamp !== undefined, 'timestamp is missing');
    assert.ok(r.timestamp_within, `timestamp ${timestamp} is not between the times before and after the inject`);
    assert.equal(rest, {
      genl_cmd: MTAB_EVENT,
      nlmsg_pid: 0,
      nlmsg_seq: 0,
      listener_id: r.id,
      seq: r.seq,
      missed: 0,
      type: MTAB,
      action: MOUNT,
      cmd: 11,
      mnt_ns: r.mnt_ns,
      pid: r.pid,
      uid: r.uid,
      mount_id: 42,
      parent_id: 7,
      path: '/mnt/data/x',
      fs_type: 'ext4',
      source: '/dev/vdz',
      dev: 0x800001,
    });
  });

  test('a storage event is a storage-event message with the count', () => {
    const r = report.get<{
      event: UsipEvent;
      id: number;
      seq: number;
      pid: number;
      mnt_ns: number;
      timestamp_within: boolean;
    }>('delivery.storage-event');
    const e = r.event;
    assert.ok(r.timestamp_within, `timestamp ${e.timestamp}`);
    const { timestamp: _, ...rest } = e;
    assert.equal(rest, {
      genl_cmd: STORAGE_EVENT,
      nlmsg_pid: 0,
      nlmsg_seq: 0,
      listener_id: r.id,
      seq: r.seq,
      missed: 0,
      type: STORAGE,
      action: ENOSPC,
      cmd: 21,
      mnt_ns: r.mnt_ns,
      pid: r.pid,
      uid: 0,
      mount_id: 42,
      path: '/mnt/data',
      fs_type: 'ext4',
      source: '/dev/vdz',
      dev: 0x800001,
      count: 3,
    });
  });

  test('a passive root subscriber of mtab and storage gets one copy per delivered event, without listener-id and cmd', () => {
    interface Copy {
      seq: number;
      genl_cmd: number;
      path: string;
      has_listener_id: boolean;
      has_cmd: boolean;
      mnt_ns: number;
      pid: number;
      count?: number;
    }
    const r = report.get<{
      seqs: Record<string, number>;
      copies: Copy[];
      pid: number;
      mnt_ns: number;
    }>('delivery.multicast');
    const s = r.seqs as { mount: number; enospc: number; move: number; sentinel: number };
    const copy = (seq: number, genl_cmd: number, path: string, count?: number): Copy => ({
      seq, genl_cmd, path, has_listener_id: false, has_cmd: false, mnt_ns: r.mnt_ns, pid: r.pid, count,
    });
    // The move event matched only a kern-log notifier: delivered to no socket, so no copy.
    assert.equal(
      r.copies.map((c) => ({ ...c, count: c.count ?? undefined })),
      [copy(s.mount, MTAB_EVENT, '/mnt/data/x'), copy(s.enospc, STORAGE_EVENT, '/mnt/data', 3), copy(s.sentinel, MTAB_EVENT, '/')],
    );
  });

  test('a kern-log notifier writes a line naming the listener and the action to the kernel log', () => {
    const r = report.get<{ lines: string[]; id: number }>('delivery.kern-log');
    const line = new RegExp(`^usip: listener ${r.id}: mtab move\\b`);
    assert.ok(r.lines.some((l) => line.test(l)), `no line matching ${line} in:\n${r.lines.join('\n')}`);
  });

  test('listener-get counts what each listener was delivered', () => {
    const r = report.get<Record<string, { delivered?: number; missed?: number; received: number }>>('delivery.counters');
    for (const [name, c] of Object.entries(r)) {
      assert.equal({ delivered: c.delivered, missed: c.missed }, { delivered: c.received, missed: 0 }, `listener "${name}"`);
    }
  });

  test('an unprivileged user cannot join the mtab or storage group (EPERM)', () => {
    assert.equal(report.get<Record<string, string | null>>('delivery.unprivileged-join'), { mtab: 'EPERM', storage: 'EPERM' });
  });

  // 5. Inject

  test('inject as an unprivileged user is EPERM with a message', () => {
    rejected(report.get<Answer>('inject.unprivileged'), 'EPERM', /CAP_SYS_ADMIN/, 'inject as nobody');
  });

  test('inject refuses an action of another type, a missing action and a repeat above 65536', () => {
    rejected(report.get<Answer>('inject.action-of-other-type'), 'EINVAL', /action/i, 'inject mtab enospc');
    const missing = report.get<Answer>('inject.missing-action');
    assert.is(missing.error, 'EINVAL', JSON.stringify(missing));
    assert.ok(/action/i.test(missing.extack ?? '') || missing.missing_attribute?.type === 5,
      `the error names neither the action nor the missing attribute: ${JSON.stringify(missing)}`);
    rejected(report.get<Answer>('inject.repeat-too-large'), 'ERANGE', /out of range/, 'repeat 65537');
  });

  test('inject with repeat=3 answers the seq of the last event and 3 queued, and the listener gets all three', () => {
    const reply = report.get<Answer>('inject.reply');
    accepted(reply, 'inject repeat=3');
    const attrs = reply.attrs as { seq: number; queued?: number; dropped?: number };
    assert.equal({ queued: attrs.queued, dropped: attrs.dropped }, { queued: 3, dropped: 0 });
    const r = report.get<{ seqs: number[]; id: number; ids: number[]; stats: Stats }>('inject.repeat');
    assert.equal(r.seqs, [attrs.seq - 2, attrs.seq - 1, attrs.seq]);
    assert.equal(r.ids, [r.id, r.id, r.id]);
    assert.is(r.stats.posted, attrs.seq, 'stats posted is the last seq');
  });

  test('without allow_inject (module loaded again without it), inject is EOPNOTSUPP with a message', () => {
    const reload = report.get<{ exit: number; stderr: string; allow_inject: string }>('reload.insmod');
    assert.is(reload.exit, 0, reload.stderr);
    assert.is(reload.allow_inject, 'N');
    rejected(report.get<Answer>('inject.not-allowed'), 'EOPNOTSUPP', /allow_inject/, 'inject without allow_inject');
  });

  // 6. Bounds

  test('max_listeners_per_user=2: an unprivileged user\'s third listener is EMFILE with a message', () => {
    const r = report.get<{ replies: Answer[]; param: string }>('bounds.max-listeners');
    assert.is(r.param, '2');
    accepted(r.replies[0] as Answer, 'first');
    accepted(r.replies[1] as Answer, 'second');
    rejected(r.replies[2] as Answer, 'EMFILE', /listeners/, 'third');
  });

  test('more notifiers than max_notifiers_per_listener is E2BIG with a message (default 32, and after writing 3)', () => {
    const r = report.get<{ limit: string; at_limit: Answer; over_limit: Answer }>('bounds.max-notifiers');
    assert.is(r.limit, '32');
    accepted(r.at_limit, '32 notifiers');
    rejected(r.over_limit, 'E2BIG', /notifiers/, '33 notifiers');
    const p = report.get<{ at_limit: Answer; over_limit: Answer }>('bounds.max-notifiers-param');
    accepted(p.at_limit, '3 notifiers with the limit at 3');
    rejected(p.over_limit, 'E2BIG', /notifiers/, '4 notifiers with the limit at 3');
  });

  /** The burst's accounting: every event the listener lost shows up in missed (of an event, or of
   *  a missed message sent once the queue drained), no later than in the first event it got after
   *  the loss, and the missed values add up to what it lost. */
  function checkBurst(b: Burst, label: string): void {
    for (const n of b.notices) {
      assert.ok(n.missed > 0, `${label}: a missed message reports losses: ${JSON.stringify(n)}`);
      // (The guest records a missing attribute as null.)
      assert.is(n.unknown_attributes ?? null, null, `${label}: a missed message has listener-id and missed only`);
    }
    const posted = b.repeat + 1; // the burst and the sentinel after it
    assert.is(b.last_seq, b.sentinel_seq, `${label}: the last event received is the sentinel`);
    assert.equal(b.foreign_listener_ids, [], `${label}: events of other listeners`);
    assert.is(b.sum_missed, posted - b.received,
      `${label}: missed values add up to the events not received (${posted} posted, ${b.received} received)`);
    assert.equal(b.underreports, [], `${label}: by each event, the missed so far cover the seq numbers skipped so far`);
    assert.equal(b.dump, { delivered: b.received, missed: b.sum_missed }, `${label}: listener-get counters`);
    const grew = (counter: keyof Stats) => b.stats_after[counter] - b.stats_before[counter];
    assert.is(grew('posted'), posted, `${label}: stats posted`);
    assert.is(grew('dropped'), b.reply.dropped, `${label}: stats dropped grows by the inject's dropped`);
    assert.is(grew('undeliverable'), b.sum_missed - b.reply.dropped, `${label}: stats undeliverable counts the unicasts that failed`);
    assert.is(grew('delivered'), b.received, `${label}: stats delivered`);
  }

  test('event_queue_len=4 and a burst of 2000: drops are counted in the reply, stats, and a missed message or the missed of the next event', () => {
    const b = report.get<Burst & { queue_limit: number }>('bounds.queue');
    assert.is(b.queue_limit, 4, 'stats queue-limit follows the parameter');
    assert.ok(b.reply.dropped > 0, `nothing dropped: ${JSON.stringify(b.reply)}`);
    assert.is(b.reply.queued + b.reply.dropped, 2000);
    assert.ok(b.max_missed > 0);
    checkBurst(b, 'queue of 4');
    // The queue drained before the sentinel was posted: every loss was told by then, by the events
    // after it or by a missed message, without waiting for the sentinel.
    assert.is(b.sentinel_missed, 0, `the sentinel reported losses told late: ${JSON.stringify(b.notices)}`);
    // Queue drops are not tied to seq order: an event dropped while an earlier one waited in the
    // queue is counted in that earlier one's missed, so b.mismatches may be non-empty here.
    assert.is(report.get<{ queue_limit: number }>('bounds.queue-limit-restored').queue_limit, 4096);
  });

  test('a full receive buffer: recv reports ENOBUFS and a later event reports the missed ones', () => {
    const b = report.get<Burst & { rcvbuf: number }>('bounds.rcvbuf');
    assert.is(b.reply.dropped, 0, 'the queue itself dropped nothing');
    assert.ok(b.enobufs > 0, `recv never failed with ENOBUFS (SO_RCVBUF ${b.rcvbuf}, ${b.received} of ${b.repeat + 1} received)`);
    assert.ok(b.sum_missed > 0 && b.max_missed > 0, `no event reported missed ones: ${JSON.stringify(b)}`);
    checkBurst(b, 'small receive buffer');
    // Unicast failures happen in delivery order: each missed (with the missed messages since the
    // event before) is exactly the seq gap before the event.
    assert.equal(b.mismatches, [], 'each event\'s missed is the gap in seq before it');
  });

  // 7. Clean-up and unload

  test('with every socket closed: no listeners, no notifiers, nothing queued, no objects', () => {
    const r = report.get<{ stats: Stats }>('cleanup.stats');
    assert.equal(
      { listeners: r.stats.listeners, notifiers: r.stats.notifiers, queued: r.stats.queued, objects: r.stats.objects },
      { listeners: 0, notifiers: 0, queued: 0, objects: 0 },
    );
  });

  test('rmmod succeeds while a process holds a socket with a listener, which then closes cleanly', () => {
    const r = report.get<{
      stats_before: Stats;
      rmmod_exit: number;
      rmmod_stderr: string;
      still_loaded: boolean;
      holder_after: string;
      holder_exit: number;
    }>('unload.with-listener');
    assert.is(r.stats_before.listeners, 1, 'the holder\'s listener was registered');
    assert.is(r.rmmod_exit, 0, r.rmmod_stderr);
    assert.not.ok(r.still_loaded);
    assert.is(r.holder_after, 'nothing');
    assert.is(r.holder_exit, 0);
  });

  test('loaded again, the module works and starts clean', () => {
    const works = report.get<{ id: number; stats: Stats }>('reload.works');
    assert.ok(works.id >= 1);
    assert.is(works.stats.listeners, 1);
    const { stats } = report.get<{ stats: Stats }>('reload.clean');
    assert.equal({ listeners: stats.listeners, objects: stats.objects }, { listeners: 0, objects: 0 });
  });

  test('the harness unloads the module and the kernel log has no warning, oops or BUG', () => {
    assert.ok(run.unloaded, formatVerdict(run));
    assert.equal(run.problems, []);
    assert.ok(run.ok, formatVerdict(run));
  });

  test.run();
}
