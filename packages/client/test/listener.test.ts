// The life of Listener and Watch over a scripted socket: iteration, leaving a loop (break, return,
// throw) closes and unregisters, close() is async and idempotent, `await using`, and AbortSignals
// (the object's own and a loop's). The real socket and module: test/vm-lifecycle.test.ts.
import { NetlinkError, type GenlNotification, type GenlSocket } from '@usip/netlink-native';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Command, EVENT_ATTRIBUTE_SET, LISTENER_ATTRIBUTE_SET, type EventAttributes } from '../src/generated/usip.js';
import { UsipArgumentError } from '../src/errors.js';
import type { ListenerItem } from '../src/events.js';
import { Listener, Watch } from '../src/listener.js';
import { decodeAttributes, encodeAttributes } from '../src/netlink/attributes.js';

const FAMILY = 0x22;
const MTAB_GROUP = 5;

const mount: EventAttributes = { listenerId: 3, seq: 1n, missed: 0, type: 1, action: 1, cmd: 0, timestamp: 1n, mntNs: 1, pid: 1, uid: 0, mountId: 7, parentId: 1, path: '/mnt/a', fsType: 'tmpfs', source: 'none', dev: 0x2a, nsSeq: 1n };

function message(seq: bigint, group = 0): GenlNotification {
  return { kind: 'message', familyId: FAMILY, command: Command.mtabEvent, version: 1, attributes: encodeAttributes(EVENT_ATTRIBUTE_SET, { ...mount, seq }), group };
}

/** A socket whose notifications are pushed by the test, recording requests and close(). */
class ScriptedSocket {
  readonly requests: { command: number; attributes: Buffer }[] = [];
  closed = false;
  readonly portId = 1234;
  readonly #queue: GenlNotification[] = [];
  #wake: (() => void) | undefined;
  unregisterError: Error | undefined;
  /** When set, unregister requests wait for it. */
  hold: Promise<void> | undefined;

  push(notification: GenlNotification): void {
    this.#queue.push(notification);
    this.#wake?.();
  }

  notifications(): AsyncIterableIterator<GenlNotification> {
    const self = this;
    return (async function* () {
      for (;;) {
        while (self.#queue.length > 0 && !self.closed) yield self.#queue.shift()!;
        if (self.closed) return;
        await new Promise<void>((resolve) => (self.#wake = resolve));
      }
    })();
  }

  async request(_family: number, command: number, _version: number, attributes: Buffer): Promise<[]> {
    this.requests.push({ command, attributes });
    if (this.hold !== undefined) await this.hold;
    if (this.unregisterError) throw this.unregisterError;
    return [];
  }

  close(): void {
    this.closed = true;
    this.#wake?.();
  }

  get unregistered(): number {
    return this.requests.filter((r) => r.command === Command.listenerUnregister).length;
  }
}

function scriptedListener(signal?: AbortSignal): { socket: ScriptedSocket; listener: Listener } {
  const socket = new ScriptedSocket();
  const listener = new Listener(socket as unknown as GenlSocket, FAMILY, { id: 3, groups: ['mtab'], scope: 'mnt-ns', mntNs: 1 }, signal);
  return { socket, listener };
}

const seqOf = (item: ListenerItem) => (item.kind === 'overrun' || item.kind === 'missed' || item.kind === 'unknown-event' ? item.kind : item.seq);
/** Lets pending promise callbacks run. */
const settle = () => new Promise((resolve) => setImmediate(resolve));
const failure = (promise: Promise<unknown>) =>
  promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (error: unknown) => error,
  );

test('a listener yields events and overruns in order; break closes it: unregistered, socket closed, nothing more', async () => {
  const { socket, listener } = scriptedListener();
  socket.push(message(1n));
  socket.push({ kind: 'overrun' });
  socket.push(message(2n));
  socket.push(message(3n));
  const seen: ListenerItem[] = [];
  for await (const item of listener) {
    seen.push(item);
    if (seen.length === 3) break;
  }
  assert.equal(seen.map(seqOf), [1n, 'overrun', 2n]);
  assert.is(listener.closed, true);
  assert.is(socket.closed, true, 'break closed the socket');
  assert.is(socket.requests.length, 1);
  assert.is(socket.requests[0]!.command, Command.listenerUnregister);
  assert.equal(decodeAttributes(LISTENER_ATTRIBUTE_SET, socket.requests[0]!.attributes), { id: 3 });
  const again: ListenerItem[] = [];
  for await (const item of listener) again.push(item);
  assert.equal(again, [], 'iterating again yields nothing');
  assert.equal(await listener.next(), { done: true, value: undefined });
  assert.is(socket.unregistered, 1, 'unregistered once');
});

test('a throw or a return out of the loop closes the listener too, before the loop is left', async () => {
  const thrown = scriptedListener();
  thrown.socket.push(message(1n));
  const error = await failure(
    (async () => {
      for await (const _item of thrown.listener) throw new Error('handler failed');
    })(),
  );
  assert.is((error as Error).message, 'handler failed');
  assert.is(thrown.socket.closed, true);
  assert.is(thrown.socket.unregistered, 1);

  const returned = scriptedListener();
  returned.socket.push(message(5n));
  const first = await (async () => {
    for await (const item of returned.listener) return item;
    return undefined;
  })();
  assert.is(first && seqOf(first), 5n);
  assert.is(returned.socket.closed, true, 'closed once return() resolved');
  assert.is(returned.socket.unregistered, 1);
});

test('close() is async and idempotent: every call returns the same promise, one unregister; a pending next() ends', async () => {
  const { socket, listener } = scriptedListener();
  let release!: () => void;
  socket.hold = new Promise<void>((resolve) => (release = resolve));
  const pending = listener.next();
  const first = listener.close();
  const second = listener.close();
  assert.is(first, second, 'the same promise');
  assert.is(listener[Symbol.asyncDispose](), first, 'asyncDispose is close()');
  await settle();
  assert.is(socket.closed, false, 'the socket stays until the unregister request is answered');
  assert.equal(await pending, { done: true, value: undefined }, 'a pending next() resolves done without waiting for it');
  release();
  await first;
  assert.is(socket.closed, true);
  assert.is(socket.unregistered, 1);
});

test('close() tolerates a listener that is already gone (ENOENT)', async () => {
  const { socket, listener } = scriptedListener();
  socket.unregisterError = new NetlinkError('usip listener-unregister: No such file or directory (ENOENT)', { errno: 2, code: 'ENOENT', operation: 'usip listener-unregister' });
  await listener.close();
  await listener.close();
  assert.is(socket.closed, true);
  assert.is(socket.unregistered, 1);
});

test('close() passes other unregister errors on (every call), and closes the socket all the same', async () => {
  const { socket, listener } = scriptedListener();
  socket.unregisterError = new NetlinkError('usip listener-unregister: Operation not permitted (EPERM): not yours', {
    errno: 1,
    code: 'EPERM',
    operation: 'usip listener-unregister',
    extack: 'not yours',
  });
  const error = await failure(listener.close());
  assert.instance(error, NetlinkError);
  assert.match((error as Error).message, 'not yours');
  assert.is(await failure(listener.close()), error, 'a later call reports the same failure');
  assert.is(socket.closed, true);
  assert.is(socket.unregistered, 1);
});

test('the signal given at registration ends the listener: a pending next() rejects with its reason, so do later ones', async () => {
  const controller = new AbortController();
  const { socket, listener } = scriptedListener(controller.signal);
  socket.push(message(1n));
  const first = await listener.next();
  assert.is(first.done !== true && seqOf(first.value), 1n);
  const pending = listener.next();
  const reason = new Error('shutting down');
  controller.abort(reason);
  assert.is(await failure(pending), reason);
  assert.is(listener.closed, true);
  await listener.close();
  assert.is(socket.closed, true);
  assert.is(socket.unregistered, 1, 'the abort unregistered it');
  assert.is(await failure(listener.next()), reason, 'a later next() rejects too');
});

test('an abort without a reason rejects with an AbortError; a listener made with an aborted signal is closed at once', async () => {
  const controller = new AbortController();
  const { listener } = scriptedListener(controller.signal);
  const pending = listener.next();
  controller.abort();
  const error = await failure(pending);
  assert.instance(error, DOMException);
  assert.is((error as DOMException).name, 'AbortError');

  const late = scriptedListener(AbortSignal.abort(new Error('too late')));
  await late.listener.close();
  assert.is(late.socket.closed, true);
  assert.is(late.socket.unregistered, 1);
  assert.match(String(await failure(late.listener.next())), 'too late');
});

test('a plain close() of a listener with a signal ends iteration quietly; aborting afterwards changes nothing', async () => {
  const controller = new AbortController();
  const { socket, listener } = scriptedListener(controller.signal);
  const pending = listener.next();
  await listener.close();
  assert.equal(await pending, { done: true, value: undefined });
  controller.abort();
  assert.equal(await listener.next(), { done: true, value: undefined });
  assert.is(socket.unregistered, 1);
});

test('await using closes at the end of the block, also when the block throws', async () => {
  const kept: ScriptedSocket[] = [];
  {
    const { socket, listener } = scriptedListener();
    kept.push(socket);
    await using _listener = listener;
    assert.is(socket.closed, false);
  }
  assert.is(kept[0]!.closed, true);
  assert.is(kept[0]!.unregistered, 1);
  const error = await failure(
    (async () => {
      const { socket, listener } = scriptedListener();
      kept.push(socket);
      await using _listener = listener;
      throw new Error('in the block');
    })(),
  );
  assert.is((error as Error).message, 'in the block');
  assert.is(kept[1]!.closed, true);
  assert.is(kept[1]!.unregistered, 1);
});

test("a loop's own signal: its abort rejects the pending next() with the reason and closes the listener", async () => {
  const { socket, listener } = scriptedListener();
  socket.push(message(1n));
  const controller = new AbortController();
  const seen: ListenerItem[] = [];
  const loop = (async () => {
    for await (const item of listener.iterate({ signal: controller.signal })) seen.push(item);
  })();
  await settle();
  const reason = new Error('loop cancelled');
  controller.abort(reason);
  assert.is(await failure(loop), reason);
  assert.equal(seen.map(seqOf), [1n]);
  await listener.close();
  assert.is(socket.closed, true);
  assert.is(socket.unregistered, 1);
  assert.throws(
    () => listener.iterate({ signal: 'soon' as unknown as AbortSignal }),
    (e: unknown) => e instanceof UsipArgumentError && e.field === 'signal' && /usip iterate: signal must be an AbortSignal/.test(e.message),
  );
});

test('a watch yields only its group, and leaving its loop closes its socket without an unregister request', async () => {
  const socket = new ScriptedSocket();
  const watch = new Watch(socket as unknown as GenlSocket, FAMILY, 'mtab', MTAB_GROUP);
  socket.push(message(1n, 0));
  socket.push(message(2n, MTAB_GROUP));
  for await (const item of watch) {
    assert.is(seqOf(item), 2n, 'the unicast message is not for a watch');
    break;
  }
  assert.is(socket.closed, true);
  assert.is(socket.requests.length, 0);
  assert.is(watch.close(), watch.close());
});

test.run();
