// Stats replies as the module sends them: attribute bytes built with the real codec and the
// generated tables (the same bytes UsipClient.stats() gets from its socket), decoded by
// decodeStats(), the function stats() uses. Both scopes: the whole module's (host) and the
// caller's own (user), where the host-wide counters are absent.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  STATS_ATTRIBUTE_SET,
  STATS_OPERATION,
  StatsAttribute,
  StatsScope,
  type StatsAttributes,
} from '../src/generated/usip.js';
import { UsipProtocolError } from '../src/errors.js';
import { encodeAttributes } from '../src/netlink/attributes.js';
import { decodeStats, type StatsResult } from '../src/replies.js';
import { decodeStats as exported } from '../src/index.js';

const encode = (reply: StatsAttributes): Buffer => encodeAttributes(STATS_ATTRIBUTE_SET, reply);

/** One attribute written out by hand (x86 is little-endian): a value the encoder would refuse. */
function rawU32(type: number, value: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt16LE(8, 0);
  b.writeUInt16LE(type, 2);
  b.writeUInt32LE(value, 4);
  return b;
}

/** What the module's host-scope reply holds today (every counter; scope from the new spec on). */
const host: StatsAttributes = {
  listeners: 2,
  notifiers: 5,
  queued: 1,
  queueLimit: 1024,
  posted: 10_000_000_000n,
  dropped: 7n,
  delivered: 9_999n,
  undeliverable: 3n,
  objects: 17,
  mountHooks: 11,
  scope: StatsScope.host,
};

/** A user-scope reply: the caller's own counters, without the host-wide ones. */
const user: StatsAttributes = {
  listeners: 1,
  notifiers: 2,
  queued: 0,
  queueLimit: 64,
  dropped: 4n,
  delivered: 12n,
  scope: StatsScope.user,
};

test('every attribute of the stats reply, as the generated tables list them, is decoded with its value', () => {
  // A distinct value for each attribute the operation's reply has, of its wire type.
  const reply: Record<string, number | bigint> = {};
  for (const key of STATS_OPERATION.do.reply) {
    const spec = STATS_ATTRIBUTE_SET.attributes.find((a) => a.key === key)!;
    reply[key] = key === 'scope' ? StatsScope.host : spec.type === 'u64' ? BigInt(spec.id) * 1_000_000_000_000n : spec.id * 100;
  }
  const stats = decodeStats(encode(reply as StatsAttributes)) as unknown as Record<string, unknown>;
  for (const key of STATS_OPERATION.do.reply) {
    if (key === 'scope') assert.is(stats.scope, 'host');
    else assert.is(stats[key], reply[key], key);
  }
  assert.equal(Object.keys(stats).sort(), [...STATS_OPERATION.do.reply].sort());
  assert.is(stats.mountHooks, StatsAttribute.mountHooks * 100);
});

test('host scope: every counter, mount hooks included, and scope "host"', () => {
  const stats = decodeStats(encode(host));
  assert.equal(stats, { ...host, scope: 'host' });
  assert.is(stats.mountHooks, 11);
  // The scope comes first, then the counters in the reply's order (how --json prints them).
  assert.equal(Object.keys(stats), ['scope', 'listeners', 'notifiers', 'queued', 'queueLimit', 'posted', 'dropped', 'delivered', 'undeliverable', 'objects', 'mountHooks']);
});

test('a module that sends no scope (it predates it) reports the whole module: host', () => {
  const { scope: _, ...older } = host;
  assert.equal(decodeStats(encode(older)), { ...older, scope: 'host' });
});

test('user scope: the caller\'s counters, the host-wide ones absent (not undefined, not 0)', () => {
  const stats = decodeStats(encode(user));
  assert.equal(stats, { ...user, scope: 'user' });
  for (const key of ['posted', 'undeliverable', 'objects', 'mountHooks']) assert.not.ok(key in stats, key);
  // The types say so: the counters of both scopes are there, the host-wide ones may not be.
  const listeners: number = stats.listeners;
  const dropped: bigint = stats.dropped;
  const posted: bigint | undefined = stats.posted;
  const hooks: number | undefined = stats.mountHooks;
  assert.equal([listeners, dropped, posted, hooks], [1, 4n, undefined, undefined]);
});

test('a reply without a counter of both scopes is refused, naming what it lacks', () => {
  const { delivered: _, queueLimit: __, ...partial } = user;
  assert.throws(() => decodeStats(encode(partial)), (e: unknown) => e instanceof UsipProtocolError && /^usip stats: the reply lacks queueLimit, delivered$/.test(e.message));
});

test('a scope this client does not know is refused; attributes of a newer module are skipped', () => {
  const bytes = Buffer.concat([encode({ ...user, scope: undefined }), rawU32(StatsAttribute.scope, 3)]);
  assert.throws(() => decodeStats(bytes), (e: unknown) => e instanceof UsipProtocolError && /usip stats: unknown stats scope 3 in the reply/.test(e.message));
  const newer = Buffer.concat([encode(host), rawU32(200, 5)]);
  const expected: StatsResult = { listeners: 2, notifiers: 5, queued: 1, queueLimit: 1024, posted: 10_000_000_000n, dropped: 7n, delivered: 9_999n, undeliverable: 3n, objects: 17, mountHooks: 11, scope: 'host' };
  assert.equal(decodeStats(newer), expected);
});

test('decodeStats is exported by the package', () => {
  assert.is(exported, decodeStats);
});

test.run();
