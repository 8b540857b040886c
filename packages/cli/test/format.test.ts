// The pure parts of the commands: notifier specs, event lines and JSON, the listeners table,
// device numbers. The commands themselves run as child processes in cli.test.ts (host) and
// vm-events.test.ts (guest, against the module).
import { InvalidArgumentError } from 'commander';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeStats, encodeAttributes, eventItem, protocol, type ListenerInfo, type ListenerItem } from '@usip/client';
import { decodeDev, deviceNumber, encodeDev, toJson, typedAction, u64 } from '../src/common.js';
import { formatItem, isoTime, itemJson, parseNotifier } from '../src/listen.js';
import { formatListeners, formatNotifier, listenerJson } from '../src/listeners.js';
import { formatStats, formatStatsJson } from '../src/stats.js';

function invalid(fn: () => unknown, pattern: string | RegExp): void {
  try {
    fn();
  } catch (error) {
    assert.instance(error, InvalidArgumentError);
    assert.match((error as Error).message, pattern);
    return;
  }
  assert.unreachable('expected an InvalidArgumentError');
}

test('notifier specs: type, action (spec spelling), flags and selectors', () => {
  assert.equal(parseNotifier('mtab:mount'), { type: 'mtab', action: 'mount' });
  assert.equal(parseNotifier('mtab:umount:kern-log:cmd=7'), { type: 'mtab', action: 'umount', kernLog: true, cmd: 7 });
  assert.equal(parseNotifier('storage:low-space:threshold=10:mount-id=0x10'), {
    type: 'storage',
    action: 'low-space',
    threshold: 10,
    mountId: 16,
  });
  assert.equal(parseNotifier('mtab:move:path-prefix=/srv/a:b:kern-log'), { type: 'mtab', action: 'move', pathPrefix: '/srv/a:b:kern-log' });
});

test('low-space notifier specs: thresholds in percent, inodes or bytes, hysteresis, interval, and "," between options', () => {
  assert.equal(parseNotifier('storage:low-space,threshold=10%'), { type: 'storage', action: 'low-space', threshold: 10 });
  assert.equal(parseNotifier('storage:low-space:threshold-inodes=5%:hysteresis=20:interval-ms=500'), {
    type: 'storage',
    action: 'low-space',
    thresholdInodes: 5,
    hysteresis: 20,
    intervalMs: 500,
  });
  assert.equal(parseNotifier('storage:low-space,threshold-bytes=1G,path-prefix=/var/a,b:c'), {
    type: 'storage',
    action: 'low-space',
    thresholdBytes: 1n << 30n,
    pathPrefix: '/var/a,b:c',
  });
  assert.is(parseNotifier('storage:low-space:threshold-bytes=512').thresholdBytes, 512n);
  assert.is(parseNotifier('storage:low-space:threshold-bytes=3MiB').thresholdBytes, 3n << 20n);
  assert.is(parseNotifier('storage:low-space:threshold-bytes=2t').thresholdBytes, 2n << 40n);
  invalid(() => parseNotifier('storage:low-space:threshold-bytes=16E'), 'expected a size');
  assert.is(parseNotifier('storage:low-space:threshold-bytes=15E').thresholdBytes, 15n << 60n);
});

test('bad low-space notifier specs name what is wrong', () => {
  invalid(() => parseNotifier('storage:low-space'), 'needs exactly one of threshold=N%, threshold-inodes=N%, threshold-bytes=SIZE');
  invalid(() => parseNotifier('storage:low-space:threshold=10:threshold-bytes=1G'), 'needs exactly one of');
  invalid(() => parseNotifier('storage:low-space:threshold=0'), 'threshold: expected an integer from 1 to 100');
  invalid(() => parseNotifier('storage:low-space:threshold=101%'), 'threshold: expected an integer from 1 to 100');
  invalid(() => parseNotifier('storage:low-space:threshold-inodes=x'), 'threshold-inodes: expected an integer from 1 to 100');
  invalid(() => parseNotifier('storage:low-space:threshold-bytes=0'), 'threshold-bytes: expected a size of at least 1 byte');
  invalid(() => parseNotifier('storage:low-space:threshold-bytes=17E'), 'threshold-bytes: expected a size');
  invalid(() => parseNotifier('storage:low-space:threshold-bytes=1X'), 'threshold-bytes: expected a size');
  invalid(() => parseNotifier('storage:low-space:threshold=5:interval-ms=99'), 'interval-ms: expected an integer from 100 to 3600000');
  invalid(() => parseNotifier('storage:low-space:threshold=5:hysteresis=1001'), 'hysteresis: expected an integer from 0 to 1000');
  invalid(() => parseNotifier('storage:enospc:threshold=5'), 'threshold is for low-space notifiers only');
  invalid(() => parseNotifier('mtab:mount,interval-ms=500'), 'interval-ms is for low-space notifiers only');
});

test('bad notifier specs name what is wrong', () => {
  invalid(() => parseNotifier('mtab'), 'expected TYPE:ACTION');
  invalid(() => parseNotifier(':mount'), 'expected TYPE:ACTION');
  invalid(() => parseNotifier('disk:mount'), 'unknown event type "disk"; the types are mtab, storage');
  invalid(() => parseNotifier('storage:mount'), '"mount" is not a storage action; storage actions are enospc, edquot, low-space');
  invalid(() => parseNotifier('mtab:mount:kern-log=1'), 'kern-log takes no value');
  invalid(() => parseNotifier('mtab:mount:cmd'), 'cmd needs a value');
  invalid(() => parseNotifier('mtab:mount:cmd=x'), 'cmd: expected an integer from 0 to 4294967295');
  invalid(() => parseNotifier('mtab:mount:path-prefix=srv'), 'path-prefix must be an absolute path');
  invalid(() => parseNotifier('mtab:mount:notify'), 'unknown notifier option "notify"');
  // Mount ids are ints in the kernel: the spec's mount-id-max bounds them.
  invalid(() => parseNotifier('mtab:mount:mount-id=2147483648'), 'mount-id: expected an integer from 0 to 2147483647');
});

test('typedAction accepts the spec spelling of low-space, names it for the old one, and refuses mixed pairs', () => {
  assert.equal(typedAction('storage', 'low-space'), { type: 'storage', action: 'low-space' });
  assert.is(typedAction('storage', 'lowSpace'), 'unknown action "lowSpace" (it is called "low-space"); storage actions are enospc, edquot, low-space, quota');
  assert.is(typedAction('mtab', 'edquot'), '"edquot" is not an mtab action; mtab actions are mount, umount, move, remount');
});

test('64-bit and device numbers', () => {
  assert.is(u64('18446744073709551615'), 0xffffffffffffffffn);
  invalid(() => u64('18446744073709551616'), 'from 0 to 18446744073709551615');
  invalid(() => u64('1e3'), 'expected an integer');
  // new_encode_dev: minor's low byte, major, then minor's high bits.
  assert.is(encodeDev(8, 1), 0x801);
  assert.is(encodeDev(259, 0x12345), 0x12310345);
  assert.is(decodeDev(0x12310345), '259:74565');
  assert.is(deviceNumber('8:1'), 0x801);
  assert.is(deviceNumber('2049'), 2049);
  invalid(() => deviceNumber('4096:0'), 'major up to 4095');
  assert.is(toJson({ a: 1n << 63n, b: [2n] }), '{"a":"9223372036854775808","b":["2"]}');
});

/** An event as the client decodes the module's attributes. */
function decoded(operation: 'mtab-event' | 'storage-event', attributes: protocol.EventAttributes): ListenerItem {
  return eventItem(operation, attributes, true);
}

const eventAttributes: protocol.EventAttributes = {
  listenerId: 3,
  seq: 17n,
  missed: 0,
  type: 1,
  action: 4,
  cmd: 9,
  timestamp: 1_700_000_000_012_345_678n,
  mntNs: 4026531841,
  pid: 1234,
  uid: 0,
  mountId: 42,
  parentId: 1,
  path: '/mnt/my disk',
  fsType: 'ext4',
  source: '/dev/sda1',
  dev: 0x801,
};
const event = decoded('mtab-event', eventAttributes);

test('an event as a line for people and as a JSON line', () => {
  assert.is(isoTime(1_700_000_000_012_345_678n), '2023-11-14T22:13:20.012345678Z');
  assert.is(
    formatItem(event),
    '2023-11-14T22:13:20.012345678Z mtab/remount seq=17 listener=3 cmd=9 path="/mnt/my disk" mount-id=42 parent-id=1 ' +
      'fs-type=ext4 source=/dev/sda1 dev=8:1 pid=1234 uid=0 mnt-ns=4026531841\n',
  );
  const missed = decoded('mtab-event', { ...eventAttributes, missed: 12 });
  assert.match(formatItem(missed), ' seq=17 missed=12 ');
  const json = JSON.parse(toJson(itemJson(missed)));
  assert.equal(json, {
    kind: 'mtab-event',
    listenerId: 3,
    seq: '17',
    missed: 12,
    type: 'mtab',
    action: 'remount',
    cmd: 9,
    timestamp: '1700000000012345678',
    mntNs: 4026531841,
    pid: 1234,
    uid: 0,
    mountId: 42,
    parentId: 1,
    path: '/mnt/my disk',
    fsType: 'ext4',
    source: '/dev/sda1',
    dev: 0x801,
  });
  const storage = decoded('storage-event', { listenerId: 1, seq: 2n, missed: 0, timestamp: 0n, mntNs: 1, type: 2, action: 5, pid: 7, uid: 0, count: 4 });
  assert.is(formatItem(storage), '1970-01-01T00:00:00.000000000Z storage/enospc seq=2 listener=1 count=4 pid=7 uid=0 mnt-ns=1\n');
  assert.equal(JSON.parse(toJson(itemJson(storage))), {
    kind: 'storage-event', listenerId: 1, seq: '2', missed: 0, timestamp: '0', mntNs: 1, type: 'storage', action: 'enospc', pid: 7, uid: 0, count: 4,
  });
  // An event of a newer module: a line that says so, and its attributes as numbers in JSON.
  const unknown = eventItem('mtab-event', { listenerId: 1, seq: 3n, missed: 0, timestamp: 0n, mntNs: 1, type: 1, action: 99 }, true);
  assert.is(formatItem(unknown), 'unknown event: a mtab-event of type mtab and action 99 (seq 3) that this usip does not know (a newer module?)\n');
  assert.equal(JSON.parse(toJson(itemJson(unknown))), {
    kind: 'unknown-event', operation: 'mtab-event', attributes: { listenerId: 1, seq: '3', missed: 0, timestamp: '0', mntNs: 1, type: 1, action: 99 },
  });
});

test('a low-space event: its space state by name, the usage it was judged by, no pid or uid', () => {
  const low = decoded('storage-event', {
    listenerId: 4,
    seq: 9n,
    missed: 0,
    type: 2,
    action: 7,
    timestamp: 1_700_000_000_012_345_678n,
    mntNs: 4026531841,
    mountId: 36,
    uniqueId: 2147483685n,
    path: '/var',
    fsType: 'tmpfs',
    source: 'tmpfs',
    dev: 31,
    spaceState: 1,
    bytesTotal: 16777216n,
    bytesAvailable: 6291456n,
    filesTotal: 100n,
    filesFree: 39n,
  });
  assert.is(
    formatItem(low),
    '2023-11-14T22:13:20.012345678Z storage/low-space seq=9 listener=4 path=/var mount-id=36 fs-type=tmpfs source=tmpfs dev=0:31 ' +
      'space-state=low bytes-available=6291456 bytes-total=16777216 files-free=39 files-total=100 mnt-ns=4026531841\n',
  );
  const json = JSON.parse(toJson(itemJson(low)));
  assert.is(json.spaceState, 'low');
  assert.is(json.bytesAvailable, '6291456');
  assert.is(json.pid, undefined);
  const gone = decoded('storage-event', { listenerId: 4, seq: 10n, missed: 0, type: 2, action: 7, timestamp: 1n, mntNs: 1, mountId: 36, spaceState: 3 });
  assert.match(formatItem(gone), ' space-state=mount-gone ');
});

test('overruns are lines of their own', () => {
  assert.equal(itemJson({ kind: 'overrun' }), { kind: 'overrun' });
  assert.equal(itemJson({ kind: 'overrun', lost: 3 }), { kind: 'overrun', lost: 3 });
  assert.match(formatItem({ kind: 'overrun', lost: 3 }), /^overrun: messages to this listener were lost \(3\)/);
});

const info: ListenerInfo = {
  id: 12,
  global: false,
  flags: 0,
  scope: 'mnt-ns',
  mntNs: 4026531841,
  ownerPid: 456,
  ownerUid: 0,
  portId: 3000,
  notifiers: [
    { type: 'mtab', action: 'mount', notify: true, kernLog: true, flags: 3 },
    { type: 'storage', action: 'low-space', notify: true, kernLog: false, flags: 1, cmd: 2, pathPrefix: '/srv', threshold: 5 },
  ],
  groups: ['mtab', 'storage'],
  delivered: 1000n,
  missed: 3n,
};

test('listeners as JSON and as a table', () => {
  const json = listenerJson(info);
  assert.equal(JSON.parse(toJson(json)), {
    id: 12,
    scope: 'mnt-ns',
    global: false,
    mntNs: 4026531841,
    ownerPid: 456,
    ownerUid: 0,
    portId: 3000,
    groups: ['mtab', 'storage'],
    delivered: '1000',
    missed: '3',
    notifiers: [
      { type: 'mtab', action: 'mount', flags: ['notify', 'kern-log'] },
      { type: 'storage', action: 'low-space', flags: ['notify'], cmd: 2, pathPrefix: '/srv', threshold: 5 },
    ],
  });
  assert.is(formatNotifier(json.notifiers[1]!), 'storage/low-space:notify[cmd=2,path-prefix=/srv,threshold=5%]');
  const global = listenerJson({ ...info, id: 7, global: true, flags: 1, scope: 'global', ownerPid: 0, notifiers: [info.notifiers[0]!] });
  assert.is(
    formatListeners([json, global]),
    [
      'ID  SCOPE   MNT-NS      PID  UID  DELIVERED  MISSED  NOTIFIERS',
      '12  mnt-ns  4026531841  456  0    1000       3       mtab/mount:notify,kern-log storage/low-space:notify[cmd=2,path-prefix=/srv,threshold=5%]',
      '7   global  4026531841  0    0    1000       3       mtab/mount:notify,kern-log',
      '',
    ].join('\n'),
  );
  assert.match(formatListeners([]), /^no listeners/);
});


// Stats replies as bytes, built with the client's codec and the generated tables, and decoded by
// the client as `usip stats` gets them: the whole module's (host), and a user's own, without
// the host-wide counters.
const hostReply = encodeAttributes(protocol.STATS_ATTRIBUTE_SET, {
  listeners: 1, notifiers: 2, queued: 3, queueLimit: 1024, posted: 10_000_000_005n, dropped: 6n,
  delivered: 7n, undeliverable: 8n, objects: 9, mountHooks: 11, scope: protocol.StatsScope.host,
});
const userReply = encodeAttributes(protocol.STATS_ATTRIBUTE_SET, {
  listeners: 1, notifiers: 2, queued: 0, queueLimit: 64, dropped: 4n, delivered: 12n, scope: protocol.StatsScope.user,
});
/** As a module that predates the scope attribute sends it: every counter, no scope. */
const olderReply = encodeAttributes(protocol.STATS_ATTRIBUTE_SET, {
  listeners: 0, notifiers: 0, queued: 0, queueLimit: 1024, posted: 5n, dropped: 0n,
  delivered: 0n, undeliverable: 0n, objects: 0, mountHooks: 0,
});

test('usip stats for people, host scope: the scope, then every counter the module reported, mount hooks included', () => {
  assert.is(
    formatStats(decodeStats(hostReply)),
    [
      'scope               host',
      'listeners           1',
      'notifiers           2',
      'events queued       3',
      'queue limit         1024',
      'events posted       10000000005',
      'events dropped      6',
      'messages delivered  7',
      'undeliverable       8',
      'live objects        9',
      'mount hooks armed   11',
      '',
    ].join('\n'),
  );
  const older = formatStats(decodeStats(olderReply));
  assert.match(older, /^scope {15}host\n/);
  assert.match(older, /^mount hooks armed {3}0$/m);
  assert.not.match(older, 'undefined');
});

test('usip stats for people: statfs calls pending (a hung file system), when the module reports it', () => {
  const reply = encodeAttributes(protocol.STATS_ATTRIBUTE_SET, {
    listeners: 0, notifiers: 0, queued: 0, queueLimit: 4096, posted: 0n, dropped: 0n,
    delivered: 0n, undeliverable: 0n, objects: 1, mountHooks: 0, statfsPending: 1, scope: protocol.StatsScope.host,
  });
  const text = formatStats(decodeStats(reply));
  assert.match(text, /^statfs pending {6}1$/m);
  assert.match(text, /^live objects {8}1$/m);
  assert.equal(JSON.parse(formatStatsJson(decodeStats(reply))).statfsPending, 1);
});

test('usip stats for people, user scope: "your own", and no line for the host-wide counters it lacks', () => {
  assert.is(
    formatStats(decodeStats(userReply)),
    [
      'scope               your own',
      'listeners           1',
      'notifiers           2',
      'events queued       0',
      'queue limit         64',
      'events dropped      4',
      'messages delivered  12',
      '',
    ].join('\n'),
  );
});

test('usip stats --json: the counters reported, scope by its spec name, 64-bit values as strings, absent ones absent', () => {
  assert.equal(JSON.parse(formatStatsJson(decodeStats(hostReply))), {
    scope: 'host', listeners: 1, notifiers: 2, queued: 3, queueLimit: 1024, posted: '10000000005', dropped: '6',
    delivered: '7', undeliverable: '8', objects: 9, mountHooks: 11,
  });
  const user = formatStatsJson(decodeStats(userReply));
  assert.equal(JSON.parse(user), { scope: 'user', listeners: 1, notifiers: 2, queued: 0, queueLimit: 64, dropped: '4', delivered: '12' });
  assert.ok(user.startsWith('{\n  "scope": "user",\n'), user);
  assert.equal(JSON.parse(formatStatsJson(decodeStats(olderReply))).scope, 'host');
});

test.run();
