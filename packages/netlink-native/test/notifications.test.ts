// Multicast groups, the receive buffer and the notifications iterator against the host kernel
// (nlctrl's "notify" group): no module needed. Real events are tested in the VM (vm.test.ts).
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  DEFAULT_NOTIFICATION_QUEUE_LIMIT,
  GenlSocket,
  NetlinkError,
  isNetlinkError,
  type GenlNotification,
} from '../src/index.js';

const sockets: GenlSocket[] = [];
function open(options?: ConstructorParameters<typeof GenlSocket>[0]): GenlSocket {
  const socket = new GenlSocket(options);
  sockets.push(socket);
  return socket;
}
test.after(() => {
  for (const socket of sockets) socket.close();
});

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new assert.Assertion({
    message: 'expected the promise to reject',
    operator: 'rejects',
    expects: 'a rejection',
    actual: 'a resolved promise',
  });
}

async function netlinkRejection(promise: Promise<unknown>): Promise<NetlinkError> {
  const error = await rejection(promise);
  if (!isNetlinkError(error)) throw error;
  return error;
}

function thrown(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  throw new assert.Assertion({
    message: 'expected the call to throw',
    operator: 'throws',
    expects: 'an exception',
    actual: 'a return',
  });
}

test('joinGroup and leaveGroup take nlctrl\'s notify group by name, and are idempotent', async () => {
  const socket = open();
  assert.is(await socket.joinGroup('nlctrl', 'notify'), undefined);
  await socket.joinGroup('nlctrl', 'notify');
  await socket.leaveGroup('nlctrl', 'notify');
  await socket.leaveGroup('nlctrl', 'notify');
  // The socket still answers requests after membership changes.
  assert.is((await socket.resolveFamily('nlctrl')).name, 'nlctrl');
});

test('an unknown group is ENOENT naming the group, the family and the groups it has', async () => {
  const error = await netlinkRejection(open().joinGroup('nlctrl', 'no-such-group'));
  assert.instance(error, NetlinkError);
  assert.is(error.errno, 2);
  assert.is(error.code, 'ENOENT');
  assert.is(error.operation, 'join multicast group "no-such-group" of generic netlink family "nlctrl"');
  assert.is(
    error.message,
    'join multicast group "no-such-group" of generic netlink family "nlctrl": ' +
      'family "nlctrl" has no multicast group "no-such-group" (it has "notify") (ENOENT)',
  );
  // The error is re-created where the caller awaits, so the caller shows in its stack.
  assert.match(error.stack ?? '', /joinGroup/);
});

test('an unknown family is ENOENT naming it, for join and leave', async () => {
  const socket = open();
  const join = await netlinkRejection(socket.joinGroup('no-such-family', 'mtab'));
  assert.is(join.code, 'ENOENT');
  assert.match(join.message, /: no generic netlink family "no-such-family" is registered \(ENOENT\)$/);
  const leave = await netlinkRejection(socket.leaveGroup('no-such-family', 'mtab'));
  assert.is(leave.code, 'ENOENT');
  assert.match(leave.message, /^leave multicast group "mtab" of generic netlink family "no-such-family": /);
  const invalid = await netlinkRejection(socket.joinGroup('', 'mtab'));
  assert.is(invalid.code, 'EINVAL');
  assert.match(invalid.message, /the family name is empty/);
});

test('setReceiveBufferSize with force goes past net.core.rmem_max for CAP_NET_ADMIN (root here), EPERM otherwise', () => {
  const socket = new GenlSocket();
  try {
    const rmemMax = Number(readFileSync('/proc/sys/net/core/rmem_max', 'utf8'));
    const wanted = rmemMax * 4;
    socket.setReceiveBufferSize(wanted);
    assert.is(socket.receiveBufferSize, rmemMax * 2, 'SO_RCVBUF is capped by rmem_max');
    if (process.geteuid?.() === 0) {
      socket.setReceiveBufferSize(wanted, { force: true });
      assert.is(socket.receiveBufferSize, wanted * 2, 'SO_RCVBUFFORCE is not');
    } else {
      const error = thrown(() => socket.setReceiveBufferSize(wanted, { force: true }));
      assert.ok(isNetlinkError(error) && error.code === 'EPERM', String(error));
    }
    assert.throws(() => socket.setReceiveBufferSize(wanted, { force: 'yes' as unknown as boolean }), /options\.force must be a boolean, got "yes"/);
  } finally {
    socket.close();
  }
});

test('setReceiveBufferSize sets SO_RCVBUF, which the kernel doubles', () => {
  const socket = open();
  socket.setReceiveBufferSize(8192);
  assert.is(socket.receiveBufferSize, 16384);
  socket.setReceiveBufferSize(65536);
  assert.is(socket.receiveBufferSize, 131072);
});

test('bad arguments are rejected with errors that name them', async () => {
  const socket = open();
  const cases: [() => unknown, ErrorConstructor, RegExp][] = [
    [() => socket.setReceiveBufferSize(0), RangeError, /^bytes must be an integer from 1 to 2147483647, got 0$/],
    [() => socket.setReceiveBufferSize(2 ** 31), RangeError, /^bytes .* got 2147483648$/],
    [() => socket.setReceiveBufferSize(1.5), TypeError, /^bytes must be an integer .* got number 1\.5$/],
    [() => new GenlSocket(5 as never), TypeError, /^options must be an object, got number 5$/],
    [
      () => new GenlSocket({ notificationQueueLimit: 0 }),
      RangeError,
      /^options\.notificationQueueLimit must be an integer from 1 to 1048576, got 0$/,
    ],
    [
      () => new GenlSocket({ notificationQueueLimit: '10' as never }),
      TypeError,
      /^options\.notificationQueueLimit .* got "10"$/,
    ],
  ];
  for (const [run, type, message] of cases) {
    const error = thrown(run);
    assert.instance(error, type);
    assert.match((error as Error).message, message);
  }
  const joins: [Promise<unknown>, RegExp][] = [
    [socket.joinGroup(7 as never, 'notify'), /^family must be a string, got number 7$/],
    [socket.joinGroup('nlctrl', null as never), /^group must be a string, got null$/],
    [socket.leaveGroup('nlctrl', undefined as never), /^group must be a string, got undefined undefined$/],
  ];
  for (const [promise, message] of joins) {
    const error = await rejection(promise);
    assert.instance(error, TypeError);
    assert.match((error as Error).message, message);
  }
  assert.is(DEFAULT_NOTIFICATION_QUEUE_LIMIT, 4096);
  open({ notificationQueueLimit: 1 });
  open({});
});

test('close() ends a pending next() with done, and a closed socket iterates nothing', async () => {
  const socket = open();
  await socket.joinGroup('nlctrl', 'notify');
  const iterator = socket.notifications();
  const pending = iterator.next();
  const second = iterator.next();
  socket.close();
  assert.equal(await pending, { done: true, value: undefined });
  assert.equal(await second, { done: true, value: undefined });
  assert.equal(await iterator.next(), { done: true, value: undefined });
  const seen: GenlNotification[] = [];
  for await (const notification of socket.notifications()) seen.push(notification);
  assert.equal(seen, []);
  // Any number of iterators of a closed socket: each ends at once.
  assert.equal(await socket.notifications().next(), { done: true, value: undefined });
});

test('a closed socket refuses group and buffer changes with EBADF', async () => {
  const socket = open();
  socket.close();
  const error = await netlinkRejection(socket.joinGroup('nlctrl', 'notify'));
  assert.is(error.code, 'EBADF');
  assert.match(error.message, /^join multicast group "notify" of generic netlink family "nlctrl": /);
  const sizing = thrown(() => socket.setReceiveBufferSize(4096));
  assert.ok(isNetlinkError(sizing), String(sizing));
  assert.is(sizing.code, 'EBADF');
  assert.is(sizing.message, 'set the receive buffer size: the socket is closed (EBADF)');
});

test('one consumer at a time; ending one lets the next start', async () => {
  const socket = open();
  const first = socket.notifications();
  const error = thrown(() => socket.notifications());
  assert.instance(error, Error);
  assert.match((error as Error).message, /^notifications\(\): this socket already has a consumer/);
  assert.equal(await first.return!(), { done: true, value: undefined });
  assert.equal(await first.next(), { done: true, value: undefined }, 'an ended iterator stays ended');
  const second = socket.notifications();
  assert.is(second[Symbol.asyncIterator](), second);
  // Requests keep working while a consumer waits for notifications on the same socket.
  const waiting = second.next();
  const family = await socket.resolveFamily('nlctrl');
  assert.is(family.name, 'nlctrl');
  const dumped = await socket.listFamilies();
  assert.ok(dumped.some((entry) => entry.name === 'nlctrl'));
  socket.close();
  assert.equal(await waiting, { done: true, value: undefined });
});

test.run();
