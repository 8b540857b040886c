// The mount table's lean decoders against the generic codec and the generated tables: a
// mount-get reply becomes the MountInfo that parseMountinfo makes of the same mountinfo line,
// events decode to what the generic decoder reads, and malformed or incomplete messages are
// refused with the module's attribute named.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  EVENT_ATTRIBUTE_SET,
  MOUNT_ATTRIBUTE_SET,
  MountAttr,
  MountAttribute,
  type EventAttributes,
  type MountAttributes,
} from '../src/generated/usip.js';
import { UsipProtocolError } from '../src/errors.js';
import { decodeMount, decodeMountEvent, decodeMountKeeping, dumpNsSeq, encodeDev, leadingMountId, mountGetRequest, payloadText, sameSource } from '../src/mount-codec.js';
import { readMountTable } from '../src/client.js';
import type { GenlSocket } from '@usip/netlink-native';
import { parseMountinfo } from '../src/mounts.js';
import { decodeAttributes, encodeAttributes } from '../src/netlink/attributes.js';

const reply: MountAttributes = {
  mountId: 65,
  parentId: 64,
  uniqueId: 0x80000041n,
  devMajor: 0,
  devMinor: 43,
  root: '/',
  mountPoint: '/mnt/my disk/tab\tand\nnewline\\back',
  attr: MountAttr.relatime,
  fsType: 'tmpfs',
  source: 'my tmpfs',
  superOptions: 'rw,size=1024k,inode64',
  shared: 20,
  master: 7,
  unbindable: true,
  mntNs: 4026531841,
  nsSeq: 12n,
};
const line = '65 64 0:43 / /mnt/my\\040disk/tab\\011and\\012newline\\134back rw,relatime shared:20 master:7 unbindable - tmpfs my\\040tmpfs rw,size=1024k,inode64';

test('a mount-get reply decodes into the MountInfo that parseMountinfo makes of its mountinfo line', () => {
  const mount = decodeMount('usip mount-get', encodeAttributes(MOUNT_ATTRIBUTE_SET, reply));
  const [parsed] = parseMountinfo(line, { mntNs: 4026531841 });
  assert.equal(mount, { ...parsed, uniqueId: 0x80000041n });
});

test('propagate_from only with master; unique id only when sent; numbers for ids', () => {
  const { uniqueId: _u, unbindable: _b, shared: _s, ...rest } = reply;
  const mount = decodeMount('usip mount-get', encodeAttributes(MOUNT_ATTRIBUTE_SET, { ...rest, propagateFrom: 3 }));
  assert.is(mount.optionalFields, 'master:7 propagate_from:3');
  assert.equal([mount.master, mount.propagateFrom, mount.unbindable], [7, 3, false]);
  assert.not.ok('uniqueId' in mount);
  assert.is(typeof mount.id, 'number');
  const alone = decodeMount('usip mount-get', encodeAttributes(MOUNT_ATTRIBUTE_SET, { ...rest, master: undefined, propagateFrom: 3 }));
  assert.is(alone.optionalFields, '');
  assert.not.ok('propagateFrom' in alone);
});

test('the lean decoder agrees with the generic one on every attribute it reads', () => {
  const bytes = encodeAttributes(MOUNT_ATTRIBUTE_SET, reply);
  const generic = decodeAttributes(MOUNT_ATTRIBUTE_SET, bytes);
  const mount = decodeMount('usip mount-get', bytes);
  assert.equal(
    [mount.id, mount.parentId, mount.uniqueId, mount.major, mount.minor, mount.root, mount.mountPoint, mount.fsType, mount.source, mount.superOptions, mount.mntNs],
    [
      Number(generic.mountId),
      Number(generic.parentId),
      generic.uniqueId,
      generic.devMajor,
      generic.devMinor,
      generic.root,
      generic.mountPoint,
      generic.fsType,
      generic.source,
      generic.superOptions,
      generic.mntNs,
    ],
  );
  assert.is(dumpNsSeq('usip mount-get', bytes), 12n);
  assert.is(dumpNsSeq('usip mount-get', encodeAttributes(MOUNT_ATTRIBUTE_SET, { ...reply, nsSeq: undefined })), undefined);
});

test('strings read through a payload text are the same, UTF-8 and embedded NULs included', () => {
  // Messages back to back in one buffer, as a dump's or a batch's replies are.
  const parts = [
    reply,
    { ...reply, mountId: 66, mountPoint: '/mnt/café/日本', source: 'naïve' },
    { ...reply, mountId: 67, root: '/a\u0001b' },
    { ...reply, mountId: 68, mountPoint: '/' },
  ].map((r) => encodeAttributes(MOUNT_ATTRIBUTE_SET, r));
  // A NUL inside a string (the encoder refuses to make one): the string ends there.
  const third = parts[2]!;
  third[third.indexOf('/a\u0001b') + 2] = 0;
  const payload = Buffer.concat([Buffer.from('padding before'), ...parts]);
  let offset = 'padding before'.length;
  const views = parts.map((p) => {
    const view = payload.subarray(offset, offset + p.length);
    offset += p.length;
    return view;
  });
  const text = payloadText(views[0]!);
  for (const view of views) assert.equal(decodeMount('usip mount-get', view, text), decodeMount('usip mount-get', view));
  assert.is(decodeMount('usip mount-get', views[1]!, text).mountPoint, '/mnt/café/日本');
  assert.is(decodeMount('usip mount-get', views[2]!, text).root, '/a', 'up to the first NUL, as from the bytes');
  // A text of other memory is not used for this buffer.
  const other = payloadText(Buffer.from(parts[1]!));
  assert.equal(decodeMount('usip mount-get', views[0]!, other), decodeMount('usip mount-get', views[0]!));
});

test('a mount decoded keeping its bytes is known again from the same bytes, whatever the ns-seq', () => {
  const bytes = (change: Partial<MountAttributes>) => encodeAttributes(MOUNT_ATTRIBUTE_SET, { ...reply, ...change });
  const kept = decodeMountKeeping('usip mount-get', bytes({ nsSeq: 5n }));
  assert.equal(kept, decodeMount('usip mount-get', bytes({ nsSeq: 5n })));
  assert.is(leadingMountId(bytes({})), 65);
  assert.is(leadingMountId(encodeAttributes(MOUNT_ATTRIBUTE_SET, { parentId: 1 })), -1, 'a message that does not start with mount-id');
  assert.ok(sameSource(kept, bytes({ nsSeq: 9n })), 'another read of the unchanged mount');
  assert.ok(sameSource(kept, bytes({ nsSeq: undefined })), 'a reply without ns-seq');
  assert.not.ok(sameSource(kept, bytes({ attr: MountAttr.ro, nsSeq: 9n })), 'remounted');
  assert.not.ok(sameSource(kept, bytes({ mountPoint: '/elsewhere', nsSeq: 9n })), 'moved');
  assert.not.ok(sameSource(decodeMount('usip mount-get', bytes({})), bytes({})), 'decoded without keeping');
});

test('readMountTable for a watcher reuses the entries whose bytes are unchanged, and decodes the rest', async () => {
  let seq = 0n;
  let table: MountAttributes[] = [reply, { ...reply, mountId: 66, mountPoint: '/b' }, { ...reply, mountId: 67, mountPoint: '/c' }];
  // As the binding gives a dump: the messages in one payload.
  const socket = {
    async dumpPacked() {
      seq++;
      const parts = table.map((m) => encodeAttributes(MOUNT_ATTRIBUTE_SET, { ...m, nsSeq: seq }));
      const payload = Buffer.concat(parts);
      const count = parts.length;
      const starts = new Uint32Array(count);
      const ends = new Uint32Array(count);
      let offset = 0;
      parts.forEach((p, i) => {
        starts[i] = offset;
        ends[i] = offset += p.length;
      });
      return { payload, count, commands: new Uint32Array(count).fill(7), versions: new Uint32Array(count).fill(1), starts, ends };
    },
  } as unknown as GenlSocket;
  const first = await readMountTable(socket, 0x22, 1, new Map());
  table = [table[0]!, { ...table[1]!, attr: MountAttr.ro }, table[2]!, { ...reply, mountId: 68, mountPoint: '/d' }];
  const previous = new Map(first.mounts.map((m) => [m.id, m]));
  const second = await readMountTable(socket, 0x22, 1, previous);
  assert.is(second.nsSeq, 2n);
  assert.is(second.mounts[0], first.mounts[0], 'unchanged: the same entry');
  assert.is(second.mounts[2], first.mounts[2]);
  assert.is.not(second.mounts[1], first.mounts[1], 'remounted: decoded again');
  assert.is(second.mounts[1]!.options, 'ro');
  assert.is(second.mounts[3]!.mountPoint, '/d');
  // Without previous (mounts()), everything is decoded afresh.
  const plain = await readMountTable(socket, 0x22, 1);
  assert.is.not(plain.mounts[0], first.mounts[0]);
  assert.equal(plain.mounts[0], first.mounts[0]);
});

test('attributes a newer module adds, and pads, are skipped', () => {
  const extra = Buffer.from([8, 0, 99, 0, 1, 2, 3, 4]);
  const pad = Buffer.from([4, 0, 18, 0]);
  const bytes = Buffer.concat([pad, encodeAttributes(MOUNT_ATTRIBUTE_SET, reply), extra]);
  assert.is(decodeMount('usip mount-get', bytes).mountPoint, reply.mountPoint);
});

function protocolError(fn: () => unknown, pattern: RegExp): void {
  try {
    fn();
  } catch (error) {
    assert.instance(error, UsipProtocolError);
    assert.match((error as Error).message, pattern);
    return;
  }
  assert.unreachable('expected a UsipProtocolError');
}

test('a reply without what every mount has, or malformed, is a protocol error naming it', () => {
  const { root: _r, mntNs: _, ...partial } = reply;
  protocolError(() => decodeMount('usip mount-get', encodeAttributes(MOUNT_ATTRIBUTE_SET, partial)), /^usip mount-get: the reply lacks root, mntNs$/);
  const bytes = encodeAttributes(MOUNT_ATTRIBUTE_SET, reply);
  protocolError(() => decodeMount('usip mount-get', bytes.subarray(0, bytes.length - 2)), /malformed reply from the module: mount\.\w[\w-]*: attribute at offset \d+ has length \d+, beyond the end/);
  const wrongSize = Buffer.from(bytes);
  wrongSize.writeUInt16LE(6, 0); // mount-id, first, with a 2-byte payload
  protocolError(() => decodeMount('usip mount-get', wrongSize), /mount\.mount-id: attribute at offset 0 has a 2-byte payload, expected 8/);
  // Beyond what the spec allows (mount-id-max): the encoder refuses it, so patch the bytes.
  const huge = Buffer.from(bytes);
  huge.writeBigUInt64LE(1n << 60n, 4); // mount-id is the first attribute
  protocolError(() => decodeMount('x', huge), /^x: mount-id 1152921504606846976 is too large/);
  const wideNs = Buffer.from(bytes);
  const nsAt = wideNs.indexOf(Buffer.from([12, 0, MountAttribute.mntNs, 0])); // mnt-ns: length 12
  assert.ok(nsAt >= 0);
  wideNs.writeBigUInt64LE(1n << 33n, nsAt + 4);
  protocolError(() => decodeMount('x', wideNs), /^x: mnt-ns 8589934592 is larger than the spec's u32-max/);
});

test('mount-get requests are the attribute the generic encoder makes', () => {
  assert.equal(mountGetRequest({ mountId: 42 }), encodeAttributes(MOUNT_ATTRIBUTE_SET, { mountId: 42 }));
  assert.equal(mountGetRequest({ uniqueId: 0x80000001n }), encodeAttributes(MOUNT_ATTRIBUTE_SET, { uniqueId: 0x80000001n }));
});

const event: EventAttributes = {
  listenerId: 3,
  seq: 17n,
  missed: 2,
  type: 1,
  action: 3,
  timestamp: 1_700_000_000_123_456_789n,
  mntNs: 4026531841,
  pid: 1234,
  uid: 0,
  mountId: 59,
  parentId: 37,
  path: '/tmp/c',
  fsType: 'tmpfs',
  source: 't2',
  dev: encodeDev(0, 33),
  nsSeq: 4n,
  uniqueId: 2147483692n,
};

test('an mtab event decodes into what a watcher reads of it', () => {
  assert.equal(decodeMountEvent(encodeAttributes(EVENT_ATTRIBUTE_SET, event)), {
    action: 3,
    nsSeq: 4,
    missed: 2,
    mountId: 59,
    parentId: 37,
    uniqueId: 2147483692n,
    path: '/tmp/c',
    dev: 33,
    subtree: false,
  });
  // A tree changed at once.
  assert.is(decodeMountEvent(encodeAttributes(EVENT_ATTRIBUTE_SET, { ...event, subtree: true })).subtree, true);
  // An injected event: no ns-seq, no unique id, no path.
  assert.equal(decodeMountEvent(encodeAttributes(EVENT_ATTRIBUTE_SET, { type: 1, action: 1, mountId: 5 })), {
    action: 1,
    nsSeq: 0,
    missed: 0,
    mountId: 5,
    parentId: -1,
    uniqueId: undefined,
    path: undefined,
    dev: -1,
    subtree: false,
  });
  const bytes = encodeAttributes(EVENT_ATTRIBUTE_SET, event);
  protocolError(() => decodeMountEvent(bytes.subarray(0, 10)), /^usip mtab-event: malformed event from the module: event: truncated attribute header/);
});

test('encodeDev is the kernel\'s new_encode_dev', () => {
  assert.is(encodeDev(8, 1), 0x801);
  assert.is(encodeDev(259, 0x12345), 0x12310345);
  assert.is(encodeDev(0, 300), 0x10002c);
});

test.run();
