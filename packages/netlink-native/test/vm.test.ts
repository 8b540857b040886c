// The binding against the real usip family: on each supported kernel, one QEMU guest loads the
// freshly built usip.ko (with allow_inject=1) and runs guest/usip-probe.mjs (requests) and
// guest/usip-events.mjs (groups and notifications) with this addon; the host judges the
// reports the guest wrote. Needs `nx build kernel-module` (the test target depends on it).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { runInVm, type VmRunResult } from '@usip/vm';
import { OperationFlags } from '../src/index.js';

const packageDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const workspaceRoot = resolve(packageDir, '../..');
const moduleVersion = readFileSync(join(workspaceRoot, 'packages/kernel-module/VERSION'), 'utf8').trim();
// Where usip.ko is, `{kver}` standing for the kernel release: what `nx build kernel-module`
// makes, unless USIP_VM_MODULE names another build (e.g. one made by hand elsewhere).
const modulePath =
  process.env.USIP_VM_MODULE ?? join(workspaceRoot, 'packages/kernel-module/build/{kver}/usip.ko');
const USIP_CMD_PING = 1;
// Every feature bit the spec defines, read from the uapi header generated from it.
const uapiHeader = readFileSync(join(workspaceRoot, 'packages/kernel-module/include/uapi/linux/usip.h'), 'utf8');
const FEATURE_MASK = Number(/USIP_FEATURE_MASK = (0x[0-9a-f]+)/.exec(uapiHeader)?.[1] ?? NaN);

interface ErrorFields {
  errno: number;
  code: string;
  extack?: string;
  extackOffset?: number;
  operation: string;
  message: string;
}
type Outcome<T> = { ok: true; value: T } | { ok: false; error: ErrorFields };
interface PingReply {
  command: number;
  cookie?: string;
  protocolVersion?: number;
  moduleVersion?: string;
  features?: number;
  kernelRelease?: string;
}
interface ProbeReport {
  guestRelease: string;
  family: {
    id: number;
    name: string;
    version: number;
    headerSize: number;
    operations: { id: number; flags: number }[];
    multicastGroups: { name: string; id: number }[];
  };
  ping: { ok: true; replies: PingReply[] } | { ok: false; error: ErrorFields };
  sentCookie: string;
  shortCookie: Outcome<unknown>;
  unknownAttribute: Outcome<unknown>;
  dumpOfPing: Outcome<unknown>;
  concurrentPings: { sent: number; matched: number };
  afterClose: Outcome<unknown>;
}

function failure(outcome: Outcome<unknown>, what: string): ErrorFields {
  if (outcome.ok) throw new assert.Assertion({
    message: `${what} should have failed but succeeded`,
    operator: 'rejects',
    expects: 'a NetlinkError',
    actual: JSON.stringify(outcome.value),
  });
  return outcome.error;
}

interface EventItem {
  kind: 'message' | 'overrun';
  lost?: number;
  familyId?: number;
  command?: number;
  version?: number;
  group?: number;
  listenerId?: number;
  seq?: string;
  missed?: number;
  type?: number;
  action?: number;
  cmd?: number;
  mntNs?: string;
  uid?: number;
  mountId?: string;
  path?: string;
  fsType?: string;
  source?: string;
}
interface Injected {
  seq: string;
  queued: number;
  dropped: number;
}
interface EventsReport {
  guestRelease: string;
  familyId: number;
  mtabGroup: number;
  registered: { id: number; groups: string[]; scope: number; mntNs: string };
  ownMntNs: string;
  watcherJoin: Outcome<unknown>;
  firstInjected: Injected;
  first: EventItem;
  firstCopy: EventItem;
  secondInjected: Injected;
  pingWhileEventWaits: Outcome<{ command: number; cookie: string }[]>;
  second: EventItem;
  secondCopy: EventItem;
  watcherAfterClose: IteratorResult<unknown>;
  listenerAfterClose: IteratorResult<unknown>;
  closedIteratesNothing: IteratorResult<unknown>;
  unprivileged: {
    uid: number;
    usipMtab: Outcome<unknown>;
    usipStorage: Outcome<unknown>;
    nlctrlNotify: Outcome<unknown>;
  };
  smallQueueInjected: Injected;
  smallQueueAccounted: number;
  smallQueueDelivered: number;
  smallQueueStats: Outcome<number>;
  smallQueueItems: EventItem[];
  smallQueueAfter: EventItem;
  followMount: { mountId: string; mountPoint: string };
  followed: { path: string; reply: null | { errno: number } | { mountId: string; mountPoint: string } }[];
  followedAfterClose: null;
  burstReceiveBuffer: number;
  burstInjected: Injected;
  burstAccounted: number;
  markerInjected: Outcome<Injected>;
  burstEnded: boolean;
  burstItems: {
    count: number;
    overruns: EventItem[];
    firstOverrunAt: number;
    burstMessages: number;
    marker: EventItem;
  };
  afterBurst: EventItem;
  burstAfterClose: IteratorResult<unknown>;
}

interface MountApiReport {
  guestRelease: string;
  support: {
    listmount: boolean;
    statmount: boolean;
    statmountMask: string;
    fanotifyMount: { available: boolean; reason?: string };
  };
  listed: Outcome<[number, string][]>;
  mountinfo: [number, string][];
  fanotify: Outcome<unknown>;
  watch: Outcome<{
    firstLines: number;
    firstAdded: number;
    mounted: string;
    linesAfterUmount: number;
    afterClose: IteratorResult<unknown>;
  }>;
}

interface Probe {
  run: VmRunResult;
  report?: ProbeReport;
  events?: EventsReport;
  mountApi?: MountApiReport;
}

/** Runs each guest script, whatever the others' status; fails if any failed. */
const GUEST_SCRIPT =
  'node "$1"; probe=$?; node "$2"; events=$?; node "$3"; mounts=$?; ' +
  '[ "$probe" -eq 0 ] && [ "$events" -eq 0 ] && [ "$mounts" -eq 0 ]';

/** Boots the guest once per kernel; every test of that kernel reads the same run. A failure to
 *  boot fails each test with the reason (uvu would swallow an error thrown in a `before` hook). */
const probes = new Map<string, Promise<Probe>>();
function probe(series: string): Promise<Probe> {
  let pending = probes.get(series);
  if (!pending) {
    pending = (async () => {
      const run = await runInVm({
        kernel: series,
        modules: [{ path: modulePath, params: ['allow_inject=1'] }],
        command: [
          'sh',
          '-c',
          GUEST_SCRIPT,
          'sh',
          join(packageDir, 'test/guest/usip-probe.mjs'),
          join(packageDir, 'test/guest/usip-events.mjs'),
          join(packageDir, 'test/guest/mount-api.mjs'),
        ],
        cwd: workspaceRoot,
        timeoutMs: 300_000,
      });
      const read = <T>(name: string): T | undefined => {
        const path = join(run.resultsDir, name);
        return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as T) : undefined;
      };
      return {
        run,
        report: read<ProbeReport>('usip-probe.json'),
        events: read<EventsReport>('usip-events.json'),
        mountApi: read<MountApiReport>('mount-api.json'),
      };
    })();
    probes.set(series, pending);
  }
  return pending;
}

async function report(series: string): Promise<ProbeReport> {
  const { run, report } = await probe(series);
  if (!report) {
    throw new Error(
      `the guest wrote no report (${run.failures.join('; ')}); guest output:\n${run.output}`,
    );
  }
  return report;
}

async function events(series: string): Promise<EventsReport> {
  const { run, events } = await probe(series);
  if (!events) {
    throw new Error(
      `the guest wrote no events report (${run.failures.join('; ')}); guest output:\n${run.output}`,
    );
  }
  return events;
}

async function mountApi(series: string): Promise<MountApiReport> {
  const { run, mountApi } = await probe(series);
  if (!mountApi) {
    throw new Error(
      `the guest wrote no mount-api report (${run.failures.join('; ')}); guest output:\n${run.output}`,
    );
  }
  return mountApi;
}

function message(item: EventItem | undefined, what: string): EventItem {
  assert.ok(item, `${what}: no item`);
  assert.is(item.kind, 'message', `${what}: ${JSON.stringify(item)}`);
  return item;
}

const DONE = { done: true };
const USIP_CMD_MTAB_EVENT = 7;
const TYPE_MTAB = 1;
const ACTION = { mount: 1, umount: 2, move: 3 };

for (const series of ['6.1', '6.12']) {
  const vm = suite(`usip in a ${series} guest`);

  vm('the guest run is clean: probe exited 0, module unloaded, no kernel warnings', async () => {
    const { run } = await probe(series);
    assert.equal(run.failures, [], `guest output:\n${run.output}`);
    assert.ok(run.ok);
    assert.is(run.exitCode, 0);
  });

  vm('resolves usip with its ping operation and its two multicast groups', async () => {
    const { family, guestRelease } = await report(series);
    assert.ok(guestRelease.startsWith(series), `guest kernel ${guestRelease}`);
    assert.is(family.name, 'usip');
    assert.is(family.version, 1);
    assert.is(family.headerSize, 0);
    assert.ok(family.id >= 0x10, `dynamic family id ${family.id}`);
    const ping = family.operations.find((op) => op.id === USIP_CMD_PING);
    assert.ok(ping, `operations: ${JSON.stringify(family.operations)}`);
    assert.ok(ping.flags & OperationFlags.canDo, 'ping has a do handler');
    assert.not.ok(ping.flags & OperationFlags.canDump, 'ping has no dump handler');
    assert.not.ok(ping.flags & OperationFlags.adminPerm, 'any user may ping');
    assert.equal(family.multicastGroups.map((group) => group.name).sort(), ['mtab', 'storage']);
    for (const group of family.multicastGroups) assert.ok(group.id > 0);
  });

  vm('ping answers with the protocol, module and kernel versions and echoes the cookie', async () => {
    const { ping, sentCookie, guestRelease } = await report(series);
    assert.ok(ping.ok, `ping failed: ${JSON.stringify(ping)}`);
    assert.is(ping.replies.length, 1);
    const [reply] = ping.replies;
    assert.is(reply!.command, USIP_CMD_PING);
    assert.is(reply!.cookie, sentCookie);
    assert.is(reply!.protocolVersion, 1);
    assert.is(reply!.moduleVersion, moduleVersion);
    assert.is(reply!.kernelRelease, guestRelease);
    assert.type(reply!.features, 'number');
    assert.ok(Number.isInteger(FEATURE_MASK), 'USIP_FEATURE_MASK found in the uapi header');
    assert.is(reply!.features! & ~FEATURE_MASK, 0, `features ${reply!.features}`);
  });

  vm('a cookie of the wrong size is EINVAL with the kernel extack pointing at it', async () => {
    const error = failure((await report(series)).shortCookie, 'a ping with a 4-byte cookie');
    assert.is(error.errno, 22);
    assert.is(error.code, 'EINVAL');
    assert.type(error.extack, 'string');
    assert.ok(error.extack!.length > 0);
    assert.is(error.extackOffset, 20, 'the cookie is the first attribute, after the 20 header bytes');
    assert.is(error.message, `usip ping: Invalid argument (EINVAL): ${error.extack}`);
  });

  vm('an attribute type beyond the policy is EINVAL with an extack', async () => {
    const error = failure((await report(series)).unknownAttribute, 'a ping with attribute 99');
    assert.is(error.code, 'EINVAL');
    assert.ok(error.extack, 'the kernel explains');
    assert.is(error.extackOffset, 20);
  });

  vm('a dump of ping, which has no dump handler, is EOPNOTSUPP', async () => {
    const error = failure((await report(series)).dumpOfPing, 'a dump of ping');
    assert.is(error.code, 'EOPNOTSUPP');
    assert.match(error.message, /^usip dump of command 1: /);
  });

  vm('concurrent pings on one socket each get their own cookie back', async () => {
    const { concurrentPings } = await report(series);
    assert.ok(concurrentPings.sent > 1);
    assert.is(concurrentPings.matched, concurrentPings.sent);
  });

  vm('calls after close() are EBADF', async () => {
    const { afterClose } = await report(series);
    assert.is(failure(afterClose, 'resolveFamily after close').code, 'EBADF');
  });

  vm('a listener registered through the socket gets its events there as unicast notifications', async () => {
    const report = await events(series);
    const { registered, firstInjected, familyId } = report;
    assert.ok(registered.id >= 1, JSON.stringify(registered));
    assert.equal(registered.groups, ['mtab']);
    assert.is(registered.mntNs, report.ownMntNs, 'the listener is in the caller\'s mount namespace');
    const first = message(report.first, 'the first event');
    assert.is(first.familyId, familyId);
    assert.is(first.command, USIP_CMD_MTAB_EVENT);
    assert.is(first.version, 1);
    assert.is(first.group, 0, 'a unicast to the socket');
    assert.is(first.listenerId, registered.id);
    assert.is(first.seq, firstInjected.seq);
    assert.is(first.type, TYPE_MTAB);
    assert.is(first.action, ACTION.mount);
    assert.is(first.cmd, 42);
    assert.is(first.missed, 0);
    assert.is(first.path, '/mnt/first');
    assert.is(first.fsType, 'tmpfs');
    assert.is(first.source, 'none');
    assert.is(first.mountId, '77');
    assert.is(first.mntNs, report.ownMntNs);
    assert.is(first.uid, 0);
  });

  vm('a request on the listener socket reads through a waiting event to its own reply', async () => {
    const report = await events(series);
    const ping = report.pingWhileEventWaits;
    assert.ok(ping.ok, JSON.stringify(ping));
    assert.equal(ping.value, [{ command: 1, cookie: String(0xfeed) }]);
    const second = message(report.second, 'the event that waited');
    assert.is(second.path, '/mnt/second');
    assert.is(second.seq, report.secondInjected.seq);
    assert.is(second.listenerId, report.registered.id);
  });

  vm('a root socket that joined "mtab" gets the multicast copies, on the resolved group id', async () => {
    const report = await events(series);
    assert.ok(report.watcherJoin.ok, JSON.stringify(report.watcherJoin));
    assert.ok(report.mtabGroup > 0);
    for (const [copy, injected, path] of [
      [report.firstCopy, report.firstInjected, '/mnt/first'],
      [report.secondCopy, report.secondInjected, '/mnt/second'],
    ] as const) {
      const item = message(copy, `the copy of ${path}`);
      assert.is(item.group, report.mtabGroup);
      assert.is(item.familyId, report.familyId);
      assert.is(item.command, USIP_CMD_MTAB_EVENT);
      assert.is(item.seq, injected.seq);
      assert.is(item.path, path);
      assert.is(item.listenerId, undefined, 'the group copy names no listener');
      assert.is(item.cmd, undefined, 'nor a notifier cmd');
    }
  });

  vm('close() ends a pending next(), and a closed socket iterates nothing', async () => {
    const report = await events(series);
    assert.equal(report.watcherAfterClose, DONE);
    assert.equal(report.listenerAfterClose, DONE);
    assert.equal(report.closedIteratesNothing, DONE);
    assert.equal(report.burstAfterClose, DONE);
  });

  vm('nextNotificationsFollowed brings the events and the mount-get of each mount they name in one call', async () => {
    const report = await events(series);
    const root = report.followMount;
    assert.match(root.mountPoint, /^\//);
    assert.equal(report.followed, [
      { path: '/mnt/f1', reply: root },
      { path: '/mnt/f2', reply: { errno: 2 } },
      { path: '/mnt/f3', reply: null },
      { path: '/mnt/f4', reply: root },
    ]);
    assert.is(report.followedAfterClose, null, 'closing the socket ends a pending call with undefined');
  });

  vm('nobody cannot join usip\'s groups (EPERM) but can join nlctrl\'s', async () => {
    const { unprivileged } = await events(series);
    assert.is(unprivileged.uid, 65534);
    for (const [outcome, group] of [
      [unprivileged.usipMtab, 'mtab'],
      [unprivileged.usipStorage, 'storage'],
    ] as const) {
      const error = failure(outcome, `joining ${group} as nobody`);
      assert.is(error.code, 'EPERM');
      assert.is(error.errno, 1);
      assert.match(error.message, new RegExp(`^join multicast group "${group}" of generic netlink family "usip": `));
    }
    assert.ok(unprivileged.nlctrlNotify.ok, JSON.stringify(unprivileged.nlctrlNotify));
  });

  vm('a full in-process queue drops and reports the count as an overrun, then goes on', async () => {
    const report = await events(series);
    assert.equal(report.smallQueueInjected.queued, 30);
    assert.is(report.smallQueueAccounted, 30);
    assert.is(report.smallQueueDelivered, 30, 'every event reached the socket');
    assert.ok(report.smallQueueStats.ok, JSON.stringify(report.smallQueueStats));
    const items = report.smallQueueItems;
    assert.is(items.length, 11, JSON.stringify(items));
    for (const item of items.slice(0, 10)) assert.is(message(item, 'a queued event').path, '/queue');
    assert.equal(items[10], { kind: 'overrun', lost: 20 });
    assert.is(message(report.smallQueueAfter, 'the event after').path, '/queue-after');
  });

  vm('a kernel overrun (ENOBUFS) of a small receive buffer is an overrun item, then events go on', async () => {
    const report = await events(series);
    assert.ok(report.burstReceiveBuffer >= 4096 && report.burstReceiveBuffer <= 8192, String(report.burstReceiveBuffer));
    assert.is(report.burstInjected.queued + report.burstInjected.dropped, 5000);
    assert.is(report.burstAccounted, 5000);
    assert.ok(report.markerInjected.ok, `a request on the overrun socket: ${JSON.stringify(report.markerInjected)}`);
    assert.not.ok(report.burstEnded);
    const { burstItems } = report;
    assert.ok(burstItems.overruns.length >= 1, `items: ${JSON.stringify(burstItems)}`);
    for (const overrun of burstItems.overruns) assert.equal(overrun, { kind: 'overrun' }, 'the count is unknown');
    assert.ok(burstItems.burstMessages < 5000, 'the small buffer could not hold the burst');
    assert.is(burstItems.count, burstItems.burstMessages + burstItems.overruns.length + 1);
    const marker = message(burstItems.marker, 'the event after the burst');
    assert.is(marker.path, '/after-burst');
    assert.ok(burstItems.firstOverrunAt < burstItems.count - 1, 'the overrun comes before it');
    assert.ok((marker.missed ?? 0) > 0, `the module counted the lost events: ${JSON.stringify(marker)}`);
    assert.is(marker.seq, report.markerInjected.ok ? report.markerInjected.value.seq : undefined);
    const after = message(report.afterBurst, 'the next event');
    assert.is(after.path, '/later');
    assert.is(after.missed, 0);
  });

  vm('the kernel\'s own mount APIs: what this kernel has, and MountinfoWatch sees a mount and its umount', async () => {
    const report = await mountApi(series);
    const { support } = report;
    const noMountEvents = 'EINVAL: the kernel has no fanotify mount events (Linux 6.15+)';
    assert.equal(support.fanotifyMount, { available: false, reason: noMountEvents });
    const fanotify = failure(report.fanotify, 'FanotifyMountWatch before 6.15');
    assert.is(fanotify.code, 'EINVAL');
    assert.is((fanotify as ErrorFields & { syscall?: string }).syscall, 'fanotify_init');
    if (series === '6.1') {
      assert.equal([support.listmount, support.statmount, support.statmountMask], [false, false, '0n']);
      assert.is(failure(report.listed, 'listKernelMounts on 6.1').code, 'ENOSYS');
    } else {
      assert.equal([support.listmount, support.statmount], [true, true]);
      // 6.12 answers SB_BASIC..MNT_OPTS (0xff) at most; the root may leave MNT_OPTS out.
      const mask = BigInt(support.statmountMask.slice(0, -1));
      assert.is(mask & 0x7fn, 0x7fn, support.statmountMask);
      assert.is(mask & ~0xffn, 0n, support.statmountMask);
      assert.ok(report.listed.ok, JSON.stringify(report.listed));
      const byId = (rows: [number, string][]) => [...rows].sort((a, b) => a[0] - b[0]);
      assert.equal(byId(report.listed.value), byId(report.mountinfo), 'the same mounts as mountinfo');
    }
    assert.ok(report.watch.ok, JSON.stringify(report.watch));
    const watch = report.watch.value;
    assert.is(watch.firstAdded, watch.firstLines, 'the first batch is the whole table');
    assert.ok(watch.firstLines >= report.mountinfo.length);
    assert.match(watch.mounted, / - tmpfs usip-guest rw/);
    assert.is(watch.linesAfterUmount, watch.firstLines);
    assert.equal(watch.afterClose, DONE);
  });

  vm.run();
}
