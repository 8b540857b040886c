import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { abortable, checkSignal, Lifetime, onAbort, takeSignal, whileNotAborted } from '../src/lifetime.js';
import { UsipArgumentError } from '../src/errors.js';

test('checkSignal takes an AbortSignal or nothing and names the option otherwise', () => {
  const controller = new AbortController();
  assert.is(checkSignal('op', controller.signal), controller.signal);
  assert.is(checkSignal('op', undefined), undefined);
  assert.throws(() => checkSignal('usip connect', 'soon'), (e: unknown) => e instanceof UsipArgumentError && /usip connect: signal must be an AbortSignal/.test(e.message));
});

test('abortable settles as the promise does when the signal stays quiet', async () => {
  const controller = new AbortController();
  assert.is(await abortable(Promise.resolve(7), controller.signal), 7);
  await abortable(Promise.reject(new Error('boom')), controller.signal).then(
    () => assert.unreachable(),
    (e: Error) => assert.is(e.message, 'boom'),
  );
});

test('abortable rejects with the reason at once and releases what arrives later', async () => {
  const controller = new AbortController();
  let resolveLater!: (value: string) => void;
  const later = new Promise<string>((resolve) => (resolveLater = resolve));
  const released: string[] = [];
  const waiting = abortable(later, controller.signal, (value) => released.push(value));
  controller.abort(new Error('stop'));
  await waiting.then(
    () => assert.unreachable(),
    (e: Error) => assert.is(e.message, 'stop'),
  );
  resolveLater('socket');
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(released, ['socket']);
});

test('abortable with a signal already aborted rejects without waiting', async () => {
  const released: number[] = [];
  await abortable(Promise.resolve(1), AbortSignal.abort(), (v) => released.push(v)).then(
    () => assert.unreachable(),
    (e: DOMException) => assert.is(e.name, 'AbortError'),
  );
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(released, [1]);
});

test('onAbort fires once, at once for an aborted signal, and can be stopped', () => {
  const seen: unknown[] = [];
  onAbort(AbortSignal.abort('early'), (r) => seen.push(r));
  const controller = new AbortController();
  const stop = onAbort(controller.signal, (r) => seen.push(r));
  const quiet = new AbortController();
  onAbort(quiet.signal, (r) => seen.push(r))();
  controller.abort('late');
  controller.abort('again');
  quiet.abort('never seen');
  stop();
  assert.equal(seen, ['early', 'late']);
});

test('Lifetime closes once, and a signal ends it with its reason', async () => {
  let releases = 0;
  const lifetime = new Lifetime(async () => {
    releases++;
  });
  const first = lifetime.close();
  assert.is(lifetime.close(), first);
  await first;
  assert.is(releases, 1);
  assert.is(lifetime.abortReason, undefined);

  const controller = new AbortController();
  const ended = new Lifetime(async () => {
    releases++;
  }, controller.signal);
  assert.not.ok(ended.closed);
  controller.abort(new Error('enough'));
  assert.ok(ended.closed);
  await ended.close();
  assert.is(releases, 2);
  assert.throws(() => ended.throwIfAborted(), /enough/);
});

test('takeSignal splits the signal off the options, checks it, and leaves what is not an object to the validator', () => {
  const { signal } = new AbortController();
  assert.equal(takeSignal('op', { timeoutMs: 5, signal }), { signal, rest: { timeoutMs: 5 } });
  assert.equal(takeSignal('op', { timeoutMs: 5 }), { signal: undefined, rest: { timeoutMs: 5 } });
  assert.equal(takeSignal('op', undefined), { signal: undefined, rest: undefined });
  assert.equal(takeSignal('op', 'fast' as unknown as object), { signal: undefined, rest: 'fast' });
  assert.throws(
    () => takeSignal('usip statfs', { signal: 'stop' }),
    (e: unknown) => e instanceof UsipArgumentError && e.field === 'signal' && /usip statfs: signal must be an AbortSignal/.test(e.message),
  );
});

test('whileNotAborted does not start the operation for an aborted signal, and gives up on a running one at the abort', async () => {
  let started = 0;
  const reason = new Error('stop');
  await whileNotAborted(AbortSignal.abort(reason), async () => started++).then(
    () => assert.unreachable(),
    (e: unknown) => assert.is(e, reason),
  );
  assert.is(started, 0, 'not started');
  assert.is(await whileNotAborted(undefined, async () => ++started), 1);
  const controller = new AbortController();
  let finish!: (value: string) => void;
  const released: string[] = [];
  const running = whileNotAborted(controller.signal, () => new Promise<string>((resolve) => (finish = resolve)), (value) => released.push(value));
  controller.abort(reason);
  await running.then(
    () => assert.unreachable(),
    (e: unknown) => assert.is(e, reason),
  );
  finish('socket');
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(released, ['socket'], 'what the abandoned operation made is released');
});

test.run();
