// The batch path of the wrapper on the host: the one integer rule (integerProblem and
// checkInteger), and nextNotificationsFollowed's checks and lifecycle. Its planning and the
// requests made together are tested in Rust (crates/genl: follow_up, client); real events and
// their mount-get replies come through it in the client's VM tests (watchMounts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GenlSocket, checkInteger, integerProblem, type FollowUp } from '../src/index.js';

const sockets: GenlSocket[] = [];
function open(): GenlSocket {
  const socket = new GenlSocket();
  sockets.push(socket);
  return socket;
}
test.after(() => {
  for (const socket of sockets) socket.close();
});

function followUp(socket: GenlSocket, change: Partial<Record<keyof FollowUp, unknown>> = {}): FollowUp {
  return { socket, familyId: 0x10, eventCommand: 1, requestCommand: 3, version: 2, keys: [[2, 2]], ...change } as FollowUp;
}

test('integerProblem: numbers must be integers, bigint bounds want bigints, and both bounds are inclusive', () => {
  assert.is(integerProblem(0, 0, 255), undefined);
  assert.is(integerProblem(255, 0, 255), undefined);
  assert.is(integerProblem(256, 0, 255), 'range');
  assert.is(integerProblem(-1, 0, 255), 'range');
  assert.is(integerProblem(1.5, 0, 255), 'type');
  assert.is(integerProblem(Number.NaN, 0, 255), 'type');
  assert.is(integerProblem('1', 0, 255), 'type');
  assert.is(integerProblem(1n, 0, 255), 'type');
  assert.is(integerProblem(-(2n ** 63n), -(2n ** 63n), 2n ** 63n - 1n), undefined);
  assert.is(integerProblem(2n ** 64n, 0n, 2n ** 64n - 1n), 'range');
  assert.is(integerProblem(5, 0n, 10n), 'type');
});

test('checkInteger names the value and its range, with a TypeError or a RangeError', () => {
  assert.is(checkInteger('limit', 7, 1, 9), 7);
  assert.throws(() => checkInteger('limit', 0, 1, 9), (e: unknown) => e instanceof RangeError && e.message === 'limit must be an integer from 1 to 9, got 0');
  assert.throws(() => checkInteger('limit', 'x', 1, 9), (e: unknown) => e instanceof TypeError && e.message === 'limit must be an integer from 1 to 9, got "x"');
  assert.throws(() => checkInteger('limit', 2.5, 1, 9), (e: unknown) => e instanceof TypeError && e.message === 'limit must be an integer from 1 to 9, got number 2.5');
});

test('nextNotificationsFollowed rejects a bad follow-up, naming what is wrong', async () => {
  const listener = open();
  const requester = open();
  const cases: [unknown, ErrorConstructor, RegExp][] = [
    [null, TypeError, /^followUp must be an object, got null$/],
    [followUp({} as GenlSocket), TypeError, /^followUp\.socket must be a GenlSocket, got Object$/],
    [followUp(requester, { keys: [] }), TypeError, /^followUp\.keys must be a non-empty array/],
    [followUp(requester, { keys: [[1]] }), TypeError, /^followUp\.keys\[0\] must be an \[event attribute, request attribute\] pair/],
    [followUp(requester, { keys: [[1, 0x4000]] }), RangeError, /^followUp\.keys\[0\]\[1\] must be an integer from 0 to 16383, got 16384$/],
    [followUp(requester, { familyId: 0x10000 }), RangeError, /^followUp\.familyId must be an integer from 0 to 65535/],
    [followUp(requester, { eventCommand: -1 }), RangeError, /^followUp\.eventCommand/],
    [followUp(requester, { skip: { attribute: 1, values: [-1] } }), RangeError, /^followUp\.skip\.values\[0\] must be an integer from 0 to 4294967295, got -1$/],
    [followUp(requester, { skip: { attribute: 1 } }), TypeError, /^followUp\.skip\.values must be an array/],
    [followUp(requester, { label: 3 }), TypeError, /^followUp\.label must be a string, got number 3$/],
    [followUp(requester, { minimum: { attribute: 5, value: -1 } }), RangeError, /^followUp\.minimum\.value must be an integer from 0 to 9007199254740991, got -1$/],
    [followUp(requester, { minimum: 4 }), TypeError, /^followUp\.minimum must be an object, got number 4$/],
  ];
  for (const [spec, type, message] of cases) {
    try {
      await listener.nextNotificationsFollowed(spec as FollowUp);
      assert.unreachable(`accepted ${message}`);
    } catch (error) {
      assert.instance(error, type);
      assert.match((error as Error).message, message);
    }
  }
  try {
    await listener.nextNotificationsFollowed(followUp(requester), -1);
    assert.unreachable('accepted a negative limit');
  } catch (error) {
    assert.instance(error, RangeError);
    assert.match((error as Error).message, /^limit must be an integer from 0 to 4294967295, got -1$/);
  }
});

test('nextNotificationsFollowed waits until the socket closes, then says undefined; not beside an iterator', async () => {
  const listener = open();
  const requester = open();
  const pending = listener.nextNotificationsFollowed(followUp(requester));
  setTimeout(() => listener.close(), 20);
  assert.is(await pending, undefined);
  assert.is(await listener.nextNotificationsFollowed(followUp(requester)), undefined);

  const busy = open();
  const iterator = busy.notifications();
  try {
    await busy.nextNotificationsFollowed(followUp(requester));
    assert.unreachable('ran beside an iterator');
  } catch (error) {
    assert.match((error as Error).message, /has a notifications\(\) consumer; end it first/);
  }
  await iterator.return?.();
  const after = busy.nextNotificationsFollowed(followUp(requester));
  busy.close();
  assert.is(await after, undefined);
});

test.run();
