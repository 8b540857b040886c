// Events and replies as the module sends them, built with the real codec and generated tables:
// decoding into the typed union, overruns as items, what a stream skips, malformed input. The
// iteration/close semantics of Listener and Watch: listener.test.ts.
import type { GenlNotification } from '@usip/netlink-native';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  Action,
  Command,
  QuotaType,
  QuotaWarning,
  EVENT_ATTRIBUTE_SET,
  LISTENER_ATTRIBUTE_SET,
  type EventAttributes,
  type ListenerAttributes,
} from '../src/generated/usip.js';
import { UsipProtocolError } from '../src/errors.js';
import { isLowSpaceEvent, notificationItem } from '../src/events.js';
import { decodeAttributes, encodeAttributes } from '../src/netlink/attributes.js';
import { injectResult, listenerInfo, registrationFromReply } from '../src/replies.js';

const FAMILY = 0x22;
const MTAB_GROUP = 5;

function message(command: number, attributes: EventAttributes, group = 0, familyId = FAMILY): GenlNotification {
  return { kind: 'message', familyId, command, version: 1, attributes: encodeAttributes(EVENT_ATTRIBUTE_SET, attributes), group };
}

const mount: EventAttributes = {
  listenerId: 3,
  seq: 17n,
  missed: 0,
  type: 1,
  action: 1,
  cmd: 9,
  timestamp: 1_700_000_000_123_456_789n,
  mntNs: 4026531841,
  pid: 1234,
  uid: 0,
  mountId: 0x7ffffff1,
  parentId: 1,
  path: '/mnt/a',
  fsType: 'tmpfs',
  source: 'none',
  dev: 0x2a,
};

/** What every event carries (the module's builder puts these on each one). */
const always = { seq: 2n, missed: 0, timestamp: 5n, mntNs: 4026531841 };

test('a unicast mtab event decodes into the mtab-event member, type and action by their spec names', () => {
  const item = notificationItem(message(Command.mtabEvent, mount), FAMILY, 0);
  assert.equal(item, { kind: 'mtab-event', ...mount, type: 'mtab', action: 'mount' });
  if (item?.kind !== 'mtab-event') throw new Error('not an mtab event');
  // Typed: the compiler knows the fields of this member, and which are always there.
  const action: 'mount' | 'umount' | 'move' | 'remount' = item.action;
  const pid: number = item.pid;
  const mountId: number | undefined = item.mountId;
  assert.equal([action, pid, mountId], ['mount', 1234, 0x7ffffff1]);
});

test('a storage event keeps its count; an mtab event drops attributes its operation does not carry', () => {
  const storage = notificationItem(
    message(Command.storageEvent, { ...always, listenerId: 1, type: 2, action: 5, pid: 1, uid: 2, path: '/', count: 3, parentId: 5 }),
    FAMILY,
    0,
  );
  assert.equal(storage, { kind: 'storage-event', ...always, listenerId: 1, type: 'storage', action: 'enospc', pid: 1, uid: 2, path: '/', count: 3 });
  const mtab = notificationItem(message(Command.mtabEvent, { ...always, listenerId: 1, type: 1, action: 2, pid: 1, uid: 2, count: 2, queued: 1 }), FAMILY, 0);
  assert.equal(mtab, { kind: 'mtab-event', ...always, listenerId: 1, type: 'mtab', action: 'umount', pid: 1, uid: 2 });
});

test('enospc and quota events carry the failing process, the call, the inode and the quota, typed and named', () => {
  const enospc = { ...always, listenerId: 1, type: 2, action: Action.enospc, pid: 42, uid: 65534, comm: 'dd', syscall: 'write', ino: 12n, count: 9999, mountId: 36, uniqueId: 0x80000025n, path: '/var', fsType: 'ext4', source: '/dev/vda2', dev: 0x800002 };
  const item = notificationItem(message(Command.storageEvent, enospc), FAMILY, 0);
  assert.equal(item, { kind: 'storage-event', ...enospc, type: 'storage', action: 'enospc' });
  if (item?.kind !== 'storage-event' || item.action !== 'enospc') throw new Error('not an enospc event');
  const call: string | undefined = item.syscall;
  const inode: bigint | undefined = item.ino;
  assert.equal([call, inode], ['write', 12n]);
  const quota = { ...always, listenerId: 1, type: 2, action: Action.quota, pid: 42, uid: 65534, comm: 'dd', quotaType: QuotaType.user, quotaId: 65534, quotaWarning: QuotaWarning.bhardwarn, path: '/home' };
  assert.equal(notificationItem(message(Command.storageEvent, quota), FAMILY, 0), {
    kind: 'storage-event',
    ...quota,
    type: 'storage',
    action: 'quota',
    quotaType: 'user',
    quotaWarning: 'bhardwarn',
  });
});

test('a low-space event: the space state by name, the usage, no process; isLowSpaceEvent() tells it from other items', () => {
  const attrs = {
    ...always, listenerId: 4, type: 2, action: 7, mountId: 36, uniqueId: 7n, path: '/var', fsType: 'tmpfs',
    source: 'tmpfs', dev: 31, spaceState: 1, bytesTotal: 16n << 20n, bytesAvailable: 6n << 20n, filesTotal: 100n, filesFree: 39n,
  };
  const item = notificationItem(message(Command.storageEvent, attrs), FAMILY, 0);
  assert.equal(item, { kind: 'storage-event', ...attrs, type: 'storage', action: 'low-space', spaceState: 'low' });
  if (item === undefined || !isLowSpaceEvent(item)) throw new Error('not a low-space event');
  // Typed: mountId and spaceState are always there, the usage fields are bigints.
  const available: bigint | undefined = item.bytesAvailable;
  const mountId: number = item.mountId;
  assert.is(available, 6n << 20n);
  assert.is(mountId, 36);
  const gone = notificationItem(message(Command.storageEvent, { ...always, listenerId: 4, type: 2, action: 7, mountId: 36, spaceState: 3 }), FAMILY, 0);
  assert.is(gone !== undefined && isLowSpaceEvent(gone) ? gone.spaceState : 'no', 'mount-gone');
  // Other storage events and mtab events are not low-space events.
  const enospc = notificationItem(message(Command.storageEvent, { ...always, listenerId: 4, type: 2, action: 5, pid: 1, uid: 1, mountId: 1 }), FAMILY, 0);
  assert.ok(enospc !== undefined && !isLowSpaceEvent(enospc));
  const mtab = notificationItem(message(Command.mtabEvent, mount), FAMILY, 0);
  assert.ok(mtab !== undefined && !isLowSpaceEvent(mtab));
  assert.not.ok(isLowSpaceEvent({ kind: 'overrun' }));
});

test('an event lacking what the protocol guarantees is a UsipProtocolError naming the attribute', () => {
  const lacking = (command: number, attributes: EventAttributes, group: number, pattern: RegExp): void => {
    assert.throws(() => notificationItem(message(command, attributes, group), FAMILY, group), (e: unknown) => e instanceof UsipProtocolError && pattern.test((e as Error).message));
  };
  const { timestamp: _t, mntNs: _n, ...noTime } = mount;
  lacking(Command.mtabEvent, noTime, 0, /^usip mtab-event: the event lacks timestamp, mnt-ns$/);
  // A listener's events always name the listener; a multicast copy never does.
  const { listenerId: _l, ...copy } = mount;
  lacking(Command.mtabEvent, copy, 0, /lacks listener-id$/);
  assert.equal(notificationItem(message(Command.mtabEvent, copy, MTAB_GROUP), FAMILY, MTAB_GROUP), { kind: 'mtab-event', ...copy, type: 'mtab', action: 'mount' });
  const { pid: _p, ...noPid } = mount;
  lacking(Command.mtabEvent, noPid, 0, /lacks pid$/);
  // A low-space event has no process but always its mount and state.
  lacking(Command.storageEvent, { ...always, listenerId: 4, type: 2, action: 7, mountId: 36 }, 0, /lacks space-state$/);
  lacking(Command.storageEvent, { ...always, listenerId: 4, type: 2, action: 7, spaceState: 1 }, 0, /lacks mount-id$/);
  // The type must be the operation's, the action one of the type's.
  lacking(Command.mtabEvent, { ...mount, type: 2 }, 0, /^usip mtab-event: the event has type storage, not mtab$/);
  lacking(Command.mtabEvent, { ...mount, action: Action.enospc }, 0, /^usip mtab-event: action enospc is not an mtab action$/);
});

test('missed > 0 is there to see on the event', () => {
  const item = notificationItem(message(Command.mtabEvent, { ...mount, missed: 250 }), FAMILY, 0);
  assert.is(item?.kind === 'mtab-event' ? item.missed : undefined, 250);
});

test('overruns are items of their own, with the loss count when known', () => {
  assert.equal(notificationItem({ kind: 'overrun' }, FAMILY, 0), { kind: 'overrun' });
  assert.equal(notificationItem({ kind: 'overrun', lost: 12 }, FAMILY, MTAB_GROUP), { kind: 'overrun', lost: 12 });
  assert.not.ok('lost' in (notificationItem({ kind: 'overrun' }, FAMILY, 0) as object));
});

test('a stream takes only its family, its group (0 = unicast) and event commands', () => {
  assert.is(notificationItem(message(Command.mtabEvent, mount, 0, 0x10), FAMILY, 0), undefined, 'another family');
  assert.is(notificationItem(message(Command.mtabEvent, mount, MTAB_GROUP), FAMILY, 0), undefined, 'multicast on a listener');
  assert.is(notificationItem(message(Command.mtabEvent, mount, 0), FAMILY, MTAB_GROUP), undefined, 'unicast on a watch');
  assert.ok(notificationItem(message(Command.mtabEvent, mount, MTAB_GROUP), FAMILY, MTAB_GROUP), 'the watched group');
  assert.is(notificationItem(message(Command.ping, {}), FAMILY, 0), undefined, 'not an event command');
  assert.is(notificationItem(message(42, mount), FAMILY, 0), undefined, 'an event this client does not know');
});

test('a type, action or state this client does not know (a newer module) is an unknown-event item, not an error', () => {
  const unknown = (attributes: Record<string, number>, command: number = Command.mtabEvent): void => {
    const placeholders = Object.fromEntries(Object.keys(attributes).map((key) => [key, 1]));
    const encoded = encodeAttributes(EVENT_ATTRIBUTE_SET, { ...mount, ...placeholders });
    // The encoder checks the spec's ranges, so write the newer values into the bytes.
    const bytes = Buffer.from(encoded);
    for (const [key, value] of Object.entries(attributes)) {
      const id = EVENT_ATTRIBUTE_SET.attributes.find((a) => a.key === key)!.id;
      const at = bytes.indexOf(Buffer.from([8, 0, id, 0]));
      if (at < 0) throw new Error(`no ${key} in the message`);
      bytes.writeUInt32LE(value, at + 4);
    }
    const item = notificationItem({ kind: 'message', familyId: FAMILY, command, version: 1, attributes: bytes, group: 0 }, FAMILY, 0);
    assert.is(item?.kind, 'unknown-event');
    if (item?.kind !== 'unknown-event') return;
    assert.is(item.operation, command === Command.mtabEvent ? 'mtab-event' : 'storage-event');
    for (const [key, value] of Object.entries(attributes)) assert.is((item.attributes as Record<string, unknown>)[key], value);
  };
  unknown({ action: 99 });
  unknown({ type: 3 });
  unknown({ type: 2, action: 7, spaceState: 9 }, Command.storageEvent);
});

test('a malformed event is a UsipProtocolError naming the event and the attribute', () => {
  const attributes = Buffer.from([6, 0, 2, 0, 1, 0, 0, 0]); // seq (u64) with a 2-byte payload
  try {
    notificationItem({ kind: 'message', familyId: FAMILY, command: Command.mtabEvent, version: 1, attributes, group: 0 }, FAMILY, 0);
    assert.unreachable('should throw');
  } catch (error) {
    assert.instance(error, UsipProtocolError);
    assert.match((error as Error).message, 'usip mtab-event: malformed event from the module: event.seq');
  }
});

function listenerBytes(attributes: ListenerAttributes): ListenerAttributes {
  return decodeAttributes(LISTENER_ATTRIBUTE_SET, encodeAttributes(LISTENER_ATTRIBUTE_SET, attributes));
}

test('the register reply gives id, groups, scope and mount namespace; a short one is a protocol error', () => {
  assert.equal(registrationFromReply(listenerBytes({ id: 4, group: ['mtab', 'storage'], scope: 2, mntNs: 4026531840 })), {
    id: 4,
    groups: ['mtab', 'storage'],
    scope: 'global',
    mntNs: 4026531840,
  });
  assert.throws(() => registrationFromReply(listenerBytes({ id: 4, group: ['mtab'] })), /listener-register: the reply lacks scope, mntNs/);
});

test('a dumped listener decodes with its notifiers as registered', () => {
  const info = listenerInfo(
    listenerBytes({
      id: 7,
      flags: 1,
      scope: 2,
      mntNs: 4026531840,
      ownerPid: 321,
      ownerUid: 65534,
      portId: 99,
      notifier: [
        { type: 1, action: 3, cmd: 5, flags: 3, pathPrefix: '/srv', mountId: 8 },
        { type: 2, action: 7, flags: 2, threshold: 15 },
      ],
      group: ['mtab', 'storage'],
      delivered: 10n,
      missed: 2n,
    }),
  );
  assert.equal(info, {
    id: 7,
    global: true,
    flags: 1,
    scope: 'global',
    mntNs: 4026531840,
    ownerPid: 321,
    ownerUid: 65534,
    portId: 99,
    notifiers: [
      { type: 'mtab', action: 'move', cmd: 5, notify: true, kernLog: true, flags: 3, mountId: 8, pathPrefix: '/srv' },
      { type: 'storage', action: 'low-space', notify: false, kernLog: true, flags: 2, threshold: 15 },
    ],
    groups: ['mtab', 'storage'],
    delivered: 10n,
    missed: 2n,
  });
  // A value beyond the spec's range (the encoder would refuse to make it): a newer module.
  const newer = { id: 7, flags: 0, scope: 1, mntNs: 1, ownerPid: 1, ownerUid: 0, portId: 1, delivered: 0n, missed: 0n };
  assert.throws(() => listenerInfo({ ...newer, notifier: [{ type: 1, action: 9, flags: 1 }] }), /listener-get: unknown notifier action 9 in the reply/);
  assert.throws(() => listenerInfo(listenerBytes({ id: 7, scope: 1 })), /listener-get: the reply lacks flags, mntNs, ownerPid, ownerUid, portId, delivered, missed/);
});

test('inject replies (stats replies: stats.test.ts)', () => {
  assert.equal(injectResult({ seq: 9n, queued: 3, dropped: 1 }), { seq: 9n, queued: 3, dropped: 1 });
  assert.throws(() => injectResult({ seq: 9n }), /usip inject: the reply lacks queued, dropped/);
});

test.run();
