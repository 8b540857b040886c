// Runs inside the QEMU guest with usip.ko loaded with allow_inject=1 (see ../vm.test.ts), as
// root: registers usip listeners through this addon, injects events from another socket, and
// writes what the notifications iterators yielded to $USIP_VM_RESULTS/usip-events.json. It
// reports facts and leaves judging them to the host test; it exits non-zero only if it cannot
// run. With --unprivileged (run as nobody through setpriv) it only tries to join groups and
// prints the outcomes as JSON on stdout.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GenlSocket, isNetlinkError } from '../../dist/index.js';

// From packages/kernel-module/include/uapi/linux/usip.h (generated from spec/usip.yaml).
const CMD = { ping: 1, listenerRegister: 2, listenerGet: 4, inject: 5, stats: 6, mtabEvent: 7, mountGet: 9 };
const LISTENER = { id: 1, flags: 2, notifier: 3, group: 4, scope: 5, mntNs: 6, delivered: 10, missed: 11 };
const NOTIFIER = { type: 1, action: 2, cmd: 3, flags: 4 };
const EVENT = {
  listenerId: 1, seq: 2, missed: 3, type: 4, action: 5, cmd: 6, timestamp: 7, mntNs: 8, pid: 9, uid: 10,
  mountId: 11, parentId: 12, path: 13, fsType: 14, source: 15, dev: 16, count: 17, repeat: 18,
  queued: 19, dropped: 20, uniqueId: 23,
};
const MOUNT = { mountId: 1, uniqueId: 3, mountPoint: 7 };
const TYPE_MTAB = 1;
const ACTION = { mount: 1, umount: 2, move: 3 };
const NOTIFY = 0x1;
const NLA_F_NESTED = 0x8000;
const LITTLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function attribute(type, payload) {
  const out = Buffer.alloc((4 + payload.length + 3) & ~3);
  if (LITTLE) {
    out.writeUInt16LE(4 + payload.length, 0);
    out.writeUInt16LE(type, 2);
  } else {
    out.writeUInt16BE(4 + payload.length, 0);
    out.writeUInt16BE(type, 2);
  }
  out.set(payload, 4);
  return out;
}
const u32 = (type, value) => {
  const out = Buffer.alloc(4);
  if (LITTLE) out.writeUInt32LE(value);
  else out.writeUInt32BE(value);
  return attribute(type, out);
};
const u64 = (type, value) => {
  const out = Buffer.alloc(8);
  if (LITTLE) out.writeBigUInt64LE(value);
  else out.writeBigUInt64BE(value);
  return attribute(type, out);
};
const string = (type, value) => attribute(type, Buffer.from(`${value}\0`));

/** Every attribute by type (flag bits removed): a list of payloads per type. */
function decode(bytes) {
  const found = new Map();
  for (let offset = 0; offset + 4 <= bytes.length; ) {
    const length = LITTLE ? bytes.readUInt16LE(offset) : bytes.readUInt16BE(offset);
    const type = (LITTLE ? bytes.readUInt16LE(offset + 2) : bytes.readUInt16BE(offset + 2)) & 0x3fff;
    if (length < 4 || offset + length > bytes.length) throw new Error(`attribute at offset ${offset} has length ${length}`);
    const list = found.get(type) ?? [];
    list.push(bytes.subarray(offset + 4, offset + length));
    found.set(type, list);
    offset += (length + 3) & ~3;
  }
  return found;
}
const readU32 = (found, type) => {
  const payload = found.get(type)?.[0];
  if (payload === undefined) return undefined;
  return LITTLE ? payload.readUInt32LE() : payload.readUInt32BE();
};
const readU64 = (found, type) => {
  const payload = found.get(type)?.[0];
  if (payload === undefined) return undefined;
  return String(LITTLE ? payload.readBigUInt64LE() : payload.readBigUInt64BE());
};
const readString = (found, type) => found.get(type)?.[0]?.toString('utf8').replace(/\0.*$/s, '');

/** The outcome of a call: its value, or the fields of its NetlinkError. */
async function outcome(promise) {
  try {
    return { ok: true, value: await promise };
  } catch (error) {
    if (!isNetlinkError(error)) throw error;
    const { errno, code, extack, operation, message } = error;
    return { ok: false, error: { errno, code, extack, operation, message } };
  }
}

/** A notification as JSON: its header fields and, for usip events, the decoded attributes. */
function describe(notification) {
  if (notification.kind === 'overrun') return { ...notification };
  const found = decode(notification.attributes);
  return {
    kind: 'message',
    familyId: notification.familyId,
    command: notification.command,
    version: notification.version,
    group: notification.group,
    listenerId: readU32(found, EVENT.listenerId),
    seq: readU64(found, EVENT.seq),
    missed: readU32(found, EVENT.missed),
    type: readU32(found, EVENT.type),
    action: readU32(found, EVENT.action),
    cmd: readU32(found, EVENT.cmd),
    mntNs: readU64(found, EVENT.mntNs),
    uid: readU32(found, EVENT.uid),
    mountId: readU64(found, EVENT.mountId),
    path: readString(found, EVENT.path),
    fsType: readString(found, EVENT.fsType),
    source: readString(found, EVENT.source),
  };
}

if (process.argv.includes('--unprivileged')) {
  const socket = new GenlSocket();
  const result = {
    uid: process.getuid(),
    usipMtab: await outcome(socket.joinGroup('usip', 'mtab')),
    usipStorage: await outcome(socket.joinGroup('usip', 'storage')),
    nlctrlNotify: await outcome(socket.joinGroup('nlctrl', 'notify')),
  };
  socket.close();
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}

const out = process.env.USIP_VM_RESULTS;
if (!out) throw new Error('USIP_VM_RESULTS is not set: this script runs in the @usip/vm guest');

const injector = new GenlSocket();
const family = await injector.resolveFamily('usip');
const mtabGroup = family.multicastGroups.find((group) => group.name === 'mtab')?.id;

async function register(socket, action, cmd) {
  const notifier = Buffer.concat([
    u32(NOTIFIER.type, TYPE_MTAB),
    u32(NOTIFIER.action, action),
    u32(NOTIFIER.cmd, cmd),
    u32(NOTIFIER.flags, NOTIFY),
  ]);
  const [reply] = await socket.request(
    family.id,
    CMD.listenerRegister,
    family.version,
    attribute(LISTENER.notifier | NLA_F_NESTED, notifier),
    { label: 'usip listener-register' },
  );
  const found = decode(reply.attributes);
  return {
    id: readU32(found, LISTENER.id),
    groups: (found.get(LISTENER.group) ?? []).map((payload) => payload.toString('utf8').replace(/\0.*$/s, '')),
    scope: readU32(found, LISTENER.scope),
    mntNs: readU64(found, LISTENER.mntNs),
  };
}

async function inject(socket, action, path, extra = []) {
  const [reply] = await socket.request(
    family.id,
    CMD.inject,
    family.version,
    Buffer.concat([u32(EVENT.type, TYPE_MTAB), u32(EVENT.action, action), string(EVENT.path, path), ...extra]),
    { label: 'usip inject' },
  );
  const found = decode(reply.attributes);
  return { seq: readU64(found, EVENT.seq), queued: readU32(found, EVENT.queued), dropped: readU32(found, EVENT.dropped) };
}

/** delivered + missed of a listener, from a listener-get dump on the injector's socket. */
async function accounted(id) {
  for (const message of await injector.dump(family.id, CMD.listenerGet, family.version)) {
    const found = decode(message.attributes);
    if (readU32(found, LISTENER.id) === id) {
      return Number(readU64(found, LISTENER.delivered)) + Number(readU64(found, LISTENER.missed));
    }
  }
  throw new Error(`listener ${id} is not listed`);
}

/** Polls until the module has delivered or counted as missed `count` events for a listener.
 *  The deadline only keeps a broken module from hanging the run; nothing is timed. */
async function settled(id, count) {
  const deadline = Date.now() + 90_000;
  for (;;) {
    const seen = await accounted(id);
    if (seen >= count) return seen;
    if (Date.now() > deadline) throw new Error(`listener ${id}: ${seen} of ${count} events accounted for`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Takes items until one satisfies `last` (included); at most `max`. */
async function takeUntil(iterator, last, max) {
  const items = [];
  while (items.length < max) {
    const next = await iterator.next();
    if (next.done) return { items, ended: true };
    const item = describe(next.value);
    items.push(item);
    if (last(item)) return { items, ended: false };
  }
  return { items, ended: false };
}

const report = { guestRelease: release(), familyId: family.id, mtabGroup };

// A: a listener's events arrive on the socket that registered it (unicast, group 0), whether
// a request is pending or not; a root socket that joined "mtab" gets the multicast copies.
{
  const listener = new GenlSocket();
  const watcher = new GenlSocket();
  report.registered = await register(listener, ACTION.mount, 42);
  report.ownMntNs = execFileSync('stat', ['-L', '-c', '%i', '/proc/self/ns/mnt'], { encoding: 'utf8' }).trim();
  report.watcherJoin = await outcome(watcher.joinGroup('usip', 'mtab'));
  const events = listener.notifications();
  const copies = watcher.notifications();
  // Waiting with no request pending on the listener's socket.
  const pending = events.next();
  report.firstInjected = await inject(injector, ACTION.mount, '/mnt/first', [
    string(EVENT.fsType, 'tmpfs'),
    string(EVENT.source, 'none'),
    u64(EVENT.mountId, 77n),
  ]);
  report.first = describe((await pending).value);
  report.firstCopy = describe((await copies.next()).value);
  // An event that is already waiting in the socket when a request is made on it: the request
  // reads it on the way to its reply, and the iterator yields it afterwards.
  report.secondInjected = await inject(injector, ACTION.mount, '/mnt/second');
  await settled(report.registered.id, 2);
  report.pingWhileEventWaits = await outcome(
    listener.request(family.id, CMD.ping, family.version, u64(1, 0xfeedn), { label: 'usip ping' }).then((replies) =>
      replies.map((reply) => ({ command: reply.command, cookie: readU64(decode(reply.attributes), 1) })),
    ),
  );
  report.second = describe((await events.next()).value);
  report.secondCopy = describe((await copies.next()).value);
  const waiting = copies.next();
  watcher.close();
  report.watcherAfterClose = await waiting;
  listener.close();
  report.listenerAfterClose = await events.next();
  report.closedIteratesNothing = await listener.notifications().next();
}

// B: joining usip's groups needs CAP_SYS_ADMIN; nobody gets EPERM (but may join nlctrl's).
{
  const output = execFileSync(
    'setpriv',
    ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, fileURLToPath(import.meta.url), '--unprivileged'],
    { encoding: 'utf8' },
  );
  report.unprivileged = JSON.parse(output);
}

// C: a full in-process queue drops and counts: overrun with lost.
{
  const socket = new GenlSocket({ notificationQueueLimit: 10 });
  const registered = await register(socket, ACTION.umount, 7);
  report.smallQueueInjected = await inject(injector, ACTION.umount, '/queue', [u32(EVENT.repeat, 30)]);
  report.smallQueueAccounted = await settled(registered.id, 30);
  report.smallQueueDelivered = Number(
    (await injector.dump(family.id, CMD.listenerGet, family.version))
      .map((message) => decode(message.attributes))
      .filter((found) => readU32(found, LISTENER.id) === registered.id)
      .map((found) => readU64(found, LISTENER.delivered))[0],
  );
  // The request reads the 30 waiting events on its way to its reply: 10 fit the queue.
  report.smallQueueStats = await outcome(socket.request(family.id, CMD.stats, family.version).then((r) => r.length));
  const iterator = socket.notifications();
  report.smallQueueItems = (await takeUntil(iterator, (item) => item.kind === 'overrun', 40)).items;
  await inject(injector, ACTION.umount, '/queue-after');
  report.smallQueueAfter = describe((await iterator.next()).value);
  socket.close();
}

// D: the kernel overruns a small receive buffer (ENOBUFS): an overrun item, then the stream
// goes on. The socket does not read during the burst.
{
  const socket = new GenlSocket();
  socket.setReceiveBufferSize(4096);
  report.burstReceiveBuffer = socket.receiveBufferSize;
  const registered = await register(socket, ACTION.move, 9);
  report.burstInjected = await inject(injector, ACTION.move, '/burst', [u32(EVENT.repeat, 5000)]);
  report.burstAccounted = await settled(registered.id, 5000);
  // A request on the overrun socket itself: it must get its reply although the kernel drops
  // everything for a socket whose buffer overflowed until that buffer is emptied.
  report.markerInjected = await outcome(inject(socket, ACTION.move, '/after-burst'));
  const iterator = socket.notifications();
  const taken = await takeUntil(iterator, (item) => item.path === '/after-burst', 10_000);
  report.burstEnded = taken.ended;
  report.burstItems = {
    count: taken.items.length,
    overruns: taken.items.filter((item) => item.kind === 'overrun'),
    firstOverrunAt: taken.items.findIndex((item) => item.kind === 'overrun'),
    burstMessages: taken.items.filter((item) => item.path === '/burst').length,
    marker: taken.items.at(-1),
  };
  await inject(injector, ACTION.move, '/later');
  report.afterBurst = describe((await iterator.next()).value);
  const waiting = iterator.next();
  socket.close();
  report.burstAfterClose = await waiting;
}

// F: nextNotificationsFollowed: a batch of events and, in the same call, the mount-get of each
// mount they name (by mount id: injected events have no unique id), none for an umount.
{
  const listener = new GenlSocket();
  const requests = new GenlSocket();
  const registered = await register(listener, ACTION.mount, 44);
  await register(listener, ACTION.umount, 45);
  // A mount of this namespace: mountinfo's first line, its id and its mount point.
  const [id, , , , mountPoint] = readFileSync('/proc/self/mountinfo', 'utf8').split('\n')[0].split(' ');
  const rootId = Number(id);
  report.followMount = { mountId: String(rootId), mountPoint };
  await inject(injector, ACTION.mount, '/mnt/f1', [u64(EVENT.mountId, BigInt(rootId))]);
  await inject(injector, ACTION.mount, '/mnt/f2', [u64(EVENT.mountId, 999_999n)]);
  await inject(injector, ACTION.umount, '/mnt/f3', [u64(EVENT.mountId, BigInt(rootId))]);
  await inject(injector, ACTION.mount, '/mnt/f4', [u64(EVENT.mountId, BigInt(rootId))]);
  await settled(registered.id, 3);
  const followUp = {
    socket: requests,
    familyId: family.id,
    eventCommand: CMD.mtabEvent,
    requestCommand: CMD.mountGet,
    version: family.version,
    keys: [
      [EVENT.uniqueId, MOUNT.uniqueId],
      [EVENT.mountId, MOUNT.mountId],
    ],
    skip: { attribute: EVENT.action, values: [ACTION.umount] },
    label: 'usip mount-get',
  };
  const items = [];
  while (items.length < 4) {
    const batch = await listener.nextNotificationsFollowed(followUp);
    batch.notifications.forEach((notification, index) => {
      const reply = batch.replies[index];
      const found = reply instanceof Uint8Array ? decode(reply) : undefined;
      items.push({
        path: describe(notification).path,
        reply: reply === undefined ? null : typeof reply === 'number' ? { errno: reply } : { mountId: readU64(found, MOUNT.mountId), mountPoint: readString(found, MOUNT.mountPoint) },
      });
    });
  }
  report.followed = items;
  const pending = listener.nextNotificationsFollowed(followUp);
  listener.close();
  report.followedAfterClose = (await pending) ?? null;
  requests.close();
}

injector.close();
writeFileSync(join(out, 'usip-events.json'), `${JSON.stringify(report, null, 2)}\n`);
