// The life of UserSpaceMountWatcher (the watchers without the module) over scripted streams:
// open() with a signal (already aborted, aborted while it waits for the first batch, not a
// signal), leaving a for-await loop closes the streams, close() async and idempotent, `await
// using`, and the signal ending the watcher (a pending next() rejects with its reason). The real
// streams on this machine's kernel: mount-lifecycle.test.ts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { UsipArgumentError } from '../src/errors.js';
import type { MountinfoBatch } from '../src/kernel-api.js';
import type { MountChange } from '../src/mount-watcher.js';
import { UserSpaceMountWatcher, type UserWatcherIo } from '../src/user-watcher.js';

/** A mountinfo stream the test feeds; counts its close() calls. */
class Feed implements AsyncIterable<MountinfoBatch> {
  closes = 0;
  #items: MountinfoBatch[] = [];
  #waiting: ((r: IteratorResult<MountinfoBatch>) => void) | undefined;
  push(item: MountinfoBatch): void {
    if (this.#waiting !== undefined) {
      const resolve = this.#waiting;
      this.#waiting = undefined;
      resolve({ done: false, value: item });
    } else this.#items.push(item);
  }
  close(): void {
    this.closes++;
    this.#waiting?.({ done: true, value: undefined });
    this.#waiting = undefined;
  }
  [Symbol.asyncIterator](): AsyncIterator<MountinfoBatch> {
    return {
      next: () => {
        if (this.#items.length > 0) return Promise.resolve({ done: false, value: this.#items.shift()! });
        if (this.closes > 0) return Promise.resolve({ done: true, value: undefined });
        return new Promise((resolve) => (this.#waiting = resolve));
      },
    };
  }
}

const line = (id: number, mountPoint: string) => `${id} 1 0:${id} / ${mountPoint} rw,relatime - tmpfs none rw`;
const ROOT = '1 1 0:1 / / rw,relatime - tmpfs none rw';

function batch(added: string[], lines: number): MountinfoBatch {
  return { generation: 1, added, removed: [], changed: [], lines };
}

function io(feed: Feed): UserWatcherIo {
  return { mountinfo: feed, readMountinfo: async () => `${ROOT}\n`, mntNs: 7 };
}

async function opened(signal?: AbortSignal): Promise<{ feed: Feed; watcher: UserSpaceMountWatcher }> {
  const feed = new Feed();
  feed.push(batch([ROOT], 1));
  const watcher = await UserSpaceMountWatcher.open('mountinfo', io(feed), { checkIntervalMs: 0, ...(signal === undefined ? {} : { signal }) });
  return { feed, watcher };
}

const failure = (promise: Promise<unknown>) =>
  promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (error: unknown) => error,
  );
const settle = () => new Promise((resolve) => setImmediate(resolve));

test('open() with an aborted signal rejects with its reason and closes the streams it was given', async () => {
  const feed = new Feed();
  feed.push(batch([ROOT], 1));
  const reason = new Error('not now');
  assert.is(await failure(UserSpaceMountWatcher.open('mountinfo', io(feed), { signal: AbortSignal.abort(reason) })), reason);
  assert.ok(feed.closes >= 1, 'the mountinfo stream is closed');
});

test('an abort while open() waits for the first batch rejects with the reason and closes the streams', async () => {
  const feed = new Feed();
  const controller = new AbortController();
  const opening = UserSpaceMountWatcher.open('mountinfo', io(feed), { signal: controller.signal });
  await settle();
  controller.abort();
  const error = await failure(opening);
  assert.instance(error, DOMException);
  assert.is((error as DOMException).name, 'AbortError');
  assert.ok(feed.closes >= 1);
});

test('open() refuses a signal that is not an AbortSignal, naming it, and closes the streams', async () => {
  const feed = new Feed();
  const error = await failure(UserSpaceMountWatcher.open('mountinfo', io(feed), { signal: {} as AbortSignal }));
  assert.instance(error, UsipArgumentError);
  assert.is((error as UsipArgumentError).field, 'signal');
  assert.match((error as Error).message, 'usip watch-mounts: signal must be an AbortSignal');
  assert.is(feed.closes, 1);
});

test('break out of a for-await loop closes the watcher and its streams; iterating again yields nothing', async () => {
  const { feed, watcher } = await opened();
  feed.push({ generation: 2, added: [line(20, '/a')], removed: [], changed: [], lines: 2 });
  const seen: MountChange[] = [];
  for await (const change of watcher) {
    seen.push(change);
    break;
  }
  assert.equal(
    seen.map((c) => c.kind !== 'resync' && `${c.kind} ${c.mount.mountPoint}`),
    ['mount /a'],
  );
  assert.is(watcher.closed, true);
  assert.is(feed.closes, 1);
  assert.is(watcher.table.get(20)?.mountPoint, '/a', 'the table stays readable');
  for await (const _change of watcher) assert.unreachable('a closed watcher yields nothing');
  assert.equal(await watcher.next(), { done: true, value: undefined });
});

test('close() is idempotent (one promise, streams closed once) and ends a pending next() quietly', async () => {
  const { feed, watcher } = await opened();
  const pending = watcher.next();
  await settle();
  const first = watcher.close();
  assert.is(watcher.close(), first);
  assert.is(watcher[Symbol.asyncDispose](), first);
  await first;
  assert.equal(await pending, { done: true, value: undefined });
  assert.is(feed.closes, 1);
});

test('the signal ends the watcher: a pending next() rejects with its reason, so does a later one', async () => {
  const controller = new AbortController();
  const { feed, watcher } = await opened(controller.signal);
  const pending = watcher.next();
  await settle();
  const reason = new Error('shutting down');
  controller.abort(reason);
  assert.is(await failure(pending), reason);
  assert.is(watcher.closed, true);
  assert.is(feed.closes, 1);
  assert.is(await failure(watcher.next()), reason);
});

test('await using closes the watcher at the end of the block, also when the block throws', async () => {
  const feeds: Feed[] = [];
  {
    const { feed, watcher } = await opened();
    feeds.push(feed);
    await using _watcher = watcher;
  }
  assert.is(feeds[0]!.closes, 1);
  const error = await failure(
    (async () => {
      const { feed, watcher } = await opened();
      feeds.push(feed);
      await using _watcher = watcher;
      throw new Error('in the block');
    })(),
  );
  assert.is((error as Error).message, 'in the block');
  assert.is(feeds[1]!.closes, 1);
});

test.run();
