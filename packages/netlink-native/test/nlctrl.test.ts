// Against the host kernel's own generic netlink controller (nlctrl): no module needed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GenlSocket, NetlinkError, Nlctrl, OperationFlags, isNetlinkError } from '../src/index.js';
import { attribute, decodeAttributes, readString, stringAttribute } from './helpers/attributes.js';

const sockets: GenlSocket[] = [];
function open(): GenlSocket {
  const socket = new GenlSocket();
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

test('opens a socket with a kernel-assigned port id', () => {
  const first = open();
  const second = open();
  assert.ok(Number.isInteger(first.portId) && first.portId > 0, `port ${first.portId}`);
  assert.is.not(first.portId, second.portId);
  assert.is(first.closed, false);
});

test('resolveFamily("nlctrl") gives id 0x10, CTRL_CMD_GETFAMILY and the notify group', async () => {
  const family = await open().resolveFamily('nlctrl');
  assert.is(family.id, 0x10);
  assert.is(family.name, 'nlctrl');
  assert.is(family.version, 2);
  assert.is(family.headerSize, 0);
  const getFamily = family.operations.find((op) => op.id === Nlctrl.commands.getFamily);
  assert.ok(getFamily, `operations: ${JSON.stringify(family.operations)}`);
  assert.ok(getFamily.flags & OperationFlags.canDo);
  assert.ok(getFamily.flags & OperationFlags.canDump);
  const notify = family.multicastGroups.find((group) => group.name === 'notify');
  assert.ok(notify && notify.id > 0, `groups: ${JSON.stringify(family.multicastGroups)}`);
});

test('a raw dump of CTRL_CMD_GETFAMILY lists every family, nlctrl included', async () => {
  const socket = open();
  const messages = await socket.dump(Nlctrl.familyId, Nlctrl.commands.getFamily, Nlctrl.version);
  assert.ok(messages.length >= 1);
  const names = messages.map((message) => {
    assert.is(message.command, Nlctrl.commands.newFamily);
    return readString(decodeAttributes(message.attributes).get(Nlctrl.attributes.familyName));
  });
  assert.ok(names.includes('nlctrl'), `families: ${names.join(', ')}`);
  const listed = await socket.listFamilies();
  assert.equal(listed.map((family) => family.name).sort(), [...names].sort());
});

test('dumpPacked gives the messages of the same dump in one payload, with their commands, versions and bounds', async () => {
  const socket = open();
  const messages = await socket.dump(Nlctrl.familyId, Nlctrl.commands.getFamily, Nlctrl.version);
  const packed = await socket.dumpPacked(Nlctrl.familyId, Nlctrl.commands.getFamily, Nlctrl.version);
  assert.is(packed.count, messages.length);
  for (const array of [packed.commands, packed.versions, packed.starts, packed.ends]) assert.is(array.length, packed.count);
  for (let i = 0; i < packed.count; i++) {
    assert.is(packed.commands[i], messages[i]!.command);
    assert.is(packed.versions[i], messages[i]!.version);
    assert.ok(packed.starts[i]! <= packed.ends[i]! && packed.ends[i]! <= packed.payload.length, `message ${i}: ${packed.starts[i]}..${packed.ends[i]} of ${packed.payload.length}`);
    assert.ok(i === 0 || packed.starts[i]! >= packed.ends[i - 1]!, 'one after another');
    assert.equal(packed.payload.subarray(packed.starts[i], packed.ends[i]), messages[i]!.attributes);
  }
  // Bad input is refused as by dump().
  const error = await netlinkRejection(socket.dumpPacked(Nlctrl.familyId, Nlctrl.commands.getFamily, Nlctrl.version, Buffer.from([4, 0, 2, 0])));
  assert.match(error.message, /Invalid argument \(EINVAL\)/);
});

test('an unknown family rejects with ENOENT', async () => {
  const error = await netlinkRejection(open().resolveFamily('no-such-family'));
  assert.instance(error, Error);
  assert.instance(error, NetlinkError);
  assert.is(error.name, 'NetlinkError');
  assert.is(error.errno, 2);
  assert.is(error.code, 'ENOENT');
  assert.is(error.operation, 'resolve generic netlink family "no-such-family"');
  assert.is(
    error.message,
    'resolve generic netlink family "no-such-family": No such file or directory (ENOENT)',
  );
  assert.not.ok('extack' in error);
  assert.is(error.dumpInterrupted, false);
  // The error is re-created where the caller awaits, so the caller shows in its stack.
  assert.match(error.stack ?? '', /resolveFamily/);
});

test('an attribute that fails policy gives EINVAL with the kernel extack and offset', async () => {
  // CTRL_ATTR_FAMILY_NAME must be NUL-terminated; this one is not.
  const unterminated = attribute(Nlctrl.attributes.familyName, Buffer.from('nlctrl'));
  const error = await netlinkRejection(
    open().request(Nlctrl.familyId, Nlctrl.commands.getFamily, Nlctrl.version, unterminated, {
      label: 'nlctrl get-family',
    }),
  );
  assert.is(error.errno, 22);
  assert.is(error.code, 'EINVAL');
  assert.type(error.extack, 'string');
  assert.ok(error.extack!.length > 0);
  assert.is(error.extackOffset, 20, 'the first attribute follows nlmsghdr + genlmsghdr');
  assert.is(error.message, `nlctrl get-family: Invalid argument (EINVAL): ${error.extack}`);
  assert.is(error.operation, 'nlctrl get-family');
});

test('an attribute of the wrong size gives ERANGE with the kernel extack', async () => {
  const oneByteFamilyId = attribute(Nlctrl.attributes.familyId, Buffer.from([1]));
  const error = await netlinkRejection(
    open().request(Nlctrl.familyId, Nlctrl.commands.getFamily, Nlctrl.version, oneByteFamilyId),
  );
  assert.is(error.code, 'ERANGE');
  assert.ok(error.extack, 'the kernel explains');
  assert.match(error.message, /^family 0x10 request of command 3: /);
});

test('a request names the family in errors once it was resolved on the socket', async () => {
  const socket = open();
  await socket.resolveFamily('nlctrl');
  const error = await netlinkRejection(
    socket.dump(Nlctrl.familyId, Nlctrl.commands.getFamily, Nlctrl.version, Buffer.from([4, 0, 2, 0])),
  );
  assert.match(error.message, /^nlctrl dump of command 3: Invalid argument \(EINVAL\)/);
});

test('a request returns the reply messages of a do', async () => {
  const messages = await open().request(
    Nlctrl.familyId,
    Nlctrl.commands.getFamily,
    Nlctrl.version,
    stringAttribute(Nlctrl.attributes.familyName, 'nlctrl'),
  );
  assert.is(messages.length, 1);
  const attributes = decodeAttributes(messages[0]!.attributes);
  assert.is(readString(attributes.get(Nlctrl.attributes.familyName)), 'nlctrl');
  assert.is(attributes.get(Nlctrl.attributes.familyId)?.length, 2);
});

test('the attributes buffer is copied when the call is made', async () => {
  const name = stringAttribute(Nlctrl.attributes.familyName, 'nlctrl');
  const pending = open().request(Nlctrl.familyId, Nlctrl.commands.getFamily, Nlctrl.version, name);
  name.fill(0);
  const [reply] = await pending;
  assert.is(readString(decodeAttributes(reply!.attributes).get(Nlctrl.attributes.familyName)), 'nlctrl');
});

test('a request to a family id nobody registered is ENOENT', async () => {
  const error = await netlinkRejection(open().request(0xfff0, 1, 1));
  assert.is(error.code, 'ENOENT');
});

test('concurrent calls on one socket each get their own reply', async () => {
  const socket = open();
  const families = await socket.listFamilies();
  const calls: Promise<void>[] = [];
  for (let round = 0; round < 10; round++) {
    for (const family of families) {
      calls.push(
        socket.resolveFamily(family.name).then((found) => {
          assert.is(found.name, family.name);
          assert.is(found.id, family.id);
        }),
      );
    }
    calls.push(
      socket.dump(Nlctrl.familyId, Nlctrl.commands.getFamily, Nlctrl.version).then((messages) => {
        assert.is(messages.length, families.length);
      }),
    );
    calls.push(
      netlinkRejection(socket.resolveFamily('no-such-family')).then((error) => {
        assert.is(error.code, 'ENOENT');
      }),
    );
  }
  await Promise.all(calls);
});

test('the JS thread keeps running timers while dumps are in flight', async () => {
  const socket = open();
  let inFlight = 0;
  let ticksWhileInFlight = 0;
  let dumps = 0;
  const ticker = setInterval(() => {
    if (inFlight > 0) ticksWhileInFlight += 1;
  }, 1);
  // Chains of dumps that stop once the timer has fired a few times during them. If socket I/O
  // blocked the JS thread, each dump would finish before any timer could run and the chains
  // would only stop at the cap.
  const chain = async (): Promise<void> => {
    while (ticksWhileInFlight < 5 && dumps < 20_000) {
      dumps += 1;
      inFlight += 1;
      try {
        await socket.dump(Nlctrl.familyId, Nlctrl.commands.getFamily, Nlctrl.version);
      } finally {
        inFlight -= 1;
      }
    }
  };
  try {
    await Promise.all([chain(), chain(), chain(), chain()]);
  } finally {
    clearInterval(ticker);
  }
  assert.ok(ticksWhileInFlight >= 5, `timers fired ${ticksWhileInFlight} times over ${dumps} dumps`);
});

test('close() is idempotent and later calls reject with EBADF', async () => {
  const socket = open();
  socket.close();
  socket.close();
  assert.is(socket.closed, true);
  const error = await netlinkRejection(socket.resolveFamily('nlctrl'));
  assert.is(error.code, 'EBADF');
  assert.is(error.errno, 9);
  assert.is(error.message, 'resolve generic netlink family "nlctrl": the socket is closed (EBADF)');
  const dumpError = await netlinkRejection(socket.dump(Nlctrl.familyId, 3, 2));
  assert.is(dumpError.code, 'EBADF');
});

test('calls pending at close() settle: with their reply or with ECANCELED', async () => {
  const socket = open();
  const pending = Array.from({ length: 100 }, () =>
    socket.dump(Nlctrl.familyId, Nlctrl.commands.getFamily, Nlctrl.version),
  );
  socket.close();
  const outcomes = await Promise.allSettled(pending);
  for (const outcome of outcomes) {
    if (outcome.status === 'fulfilled') {
      assert.ok(outcome.value.length > 0);
    } else {
      assert.ok(isNetlinkError(outcome.reason), String(outcome.reason));
      assert.is(outcome.reason.code, 'ECANCELED');
      assert.match(outcome.reason.message, /the socket was closed before the reply arrived/);
    }
  }
});

test('bad arguments are rejected with errors that name them', async () => {
  const socket = open();
  const cases: [Promise<unknown>, ErrorConstructor, RegExp][] = [
    [socket.request(-1, 1, 1), RangeError, /^familyId must be an integer from 0 to 65535, got -1$/],
    [socket.request(0x10000, 1, 1), RangeError, /^familyId .* got 65536$/],
    [socket.request(0x10, 256, 1), RangeError, /^command must be an integer from 0 to 255, got 256$/],
    [socket.dump(0x10, 3, 1.5), TypeError, /^version must be an integer from 0 to 255, got number 1\.5$/],
    [socket.dump(0x10, 3, '2' as unknown as number), TypeError, /^version .* got "2"$/],
    [
      socket.request(0x10, 3, 2, 'abc' as unknown as Buffer),
      TypeError,
      /^attributes must be a Buffer or Uint8Array, got "abc"$/,
    ],
    [
      socket.request(0x10, 3, 2, undefined, { label: 5 as unknown as string }),
      TypeError,
      /^options\.label must be a string, got number 5$/,
    ],
    [socket.resolveFamily(7 as unknown as string), TypeError, /^family name must be a string, got number 7$/],
  ];
  for (const [promise, type, message] of cases) {
    const error = await rejection(promise);
    assert.instance(error, type);
    assert.match((error as Error).message, message);
  }
});

test('family names the kernel cannot take are refused with EINVAL before sending', async () => {
  const socket = open();
  const empty = await netlinkRejection(socket.resolveFamily(''));
  assert.is(empty.code, 'EINVAL');
  assert.match(empty.message, /the family name is empty/);
  const long = await netlinkRejection(socket.resolveFamily('a-name-longer-than-fifteen'));
  assert.is(long.code, 'EINVAL');
  assert.match(long.message, /at most 15/);
});

test.run();
