import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  FEATURE_MASK,
  FEATURE_NAMES,
  Feature,
  PING_ATTRIBUTE_SET,
  PingAttribute,
  type AttributeSetSpec,
  type PingAttributes,
} from '../src/generated/usip.js';
import {
  AttributeError,
  NLA_F_NESTED,
  NLA_F_NET_BYTEORDER,
  decodeAttributes,
  encodeAttributes,
  flagNames,
} from '../src/netlink/attributes.js';

// Expected bytes are written out by hand (x86 is little-endian), independently of the codec.
function attr(type: number, payload: number[]): number[] {
  const length = 4 + payload.length;
  const padding = (4 - (length % 4)) % 4;
  return [length & 0xff, length >> 8, type & 0xff, type >> 8, ...payload, ...new Array<number>(padding).fill(0)];
}
const u32le = (n: number): number[] => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
const ascii = (s: string): number[] => [...Buffer.from(s, 'utf8')];
const bytes = (...parts: number[][]): Buffer => Buffer.from(parts.flat());

function throwsAttributeError(fn: () => unknown, pattern: RegExp, offset?: number): void {
  try {
    fn();
  } catch (err) {
    assert.instance(err, AttributeError);
    assert.match((err as Error).message, pattern);
    if (offset !== undefined) assert.is((err as AttributeError).offset, offset);
    return;
  }
  assert.unreachable(`expected an AttributeError matching ${String(pattern)}`);
}

// A table with every type the codec supports, for tests beyond the ping set.
interface Inner {
  port?: number;
  label?: string;
}
const INNER: AttributeSetSpec<Inner> = {
  name: 'inner',
  attributes: [
    { id: 1, name: 'port', key: 'port', type: 'u16', bigEndian: true, multi: false },
    { id: 2, name: 'label', key: 'label', type: 'string', bigEndian: false, multi: false },
  ],
};
interface Outer {
  small?: number;
  half?: number;
  signedHalf?: number;
  word?: number;
  signedWord?: number;
  bigSigned?: bigint;
  enabled?: boolean;
  blob?: Uint8Array;
  ids?: number[];
  inner?: Inner;
  inners?: Inner[];
  mode?: number;
  name?: string;
}
const OUTER: AttributeSetSpec<Outer> = {
  name: 'outer',
  attributes: [
    { id: 1, name: 'small', key: 'small', type: 'u8', bigEndian: false, multi: false, checks: { min: 1, max: 200 } },
    { id: 2, name: 'half', key: 'half', type: 'u16', bigEndian: false, multi: false },
    { id: 3, name: 'signed-half', key: 'signedHalf', type: 's16', bigEndian: false, multi: false },
    { id: 4, name: 'word', key: 'word', type: 'u32', bigEndian: true, multi: false },
    { id: 5, name: 'signed-word', key: 'signedWord', type: 's32', bigEndian: false, multi: false },
    { id: 6, name: 'big-signed', key: 'bigSigned', type: 's64', bigEndian: false, multi: false },
    { id: 7, name: 'enabled', key: 'enabled', type: 'flag', bigEndian: false, multi: false },
    { id: 8, name: 'blob', key: 'blob', type: 'binary', bigEndian: false, multi: false, checks: { minLen: 1, maxLen: 8 } },
    { id: 9, name: 'ids', key: 'ids', type: 'u32', bigEndian: false, multi: true },
    { id: 10, name: 'inner', key: 'inner', type: 'nest', bigEndian: false, multi: false, nested: INNER },
    { id: 11, name: 'inners', key: 'inners', type: 'nest', bigEndian: false, multi: true, nested: INNER },
    { id: 12, name: 'pad', key: 'pad', type: 'pad', bigEndian: false, multi: false },
    { id: 13, name: 'mode', key: 'mode', type: 'u32', bigEndian: false, multi: false, checks: { flagsMask: 0x5 } },
    { id: 14, name: 'name', key: 'name', type: 'string', bigEndian: false, multi: false, checks: { maxLen: 4 } },
  ],
};

test('ping: a cookie encodes as one 12-byte u64 attribute', () => {
  const buf = encodeAttributes(PING_ATTRIBUTE_SET, { cookie: 0x1122334455667788n });
  assert.equal([...buf], attr(PingAttribute.cookie, [0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]));
  assert.equal(decodeAttributes(PING_ATTRIBUTE_SET, buf), { cookie: 0x1122334455667788n });
});

test('ping: decodes a reply laid out as the kernel sends it, pad attribute included', () => {
  const reply = bytes(
    attr(PingAttribute.protocolVersion, u32le(1)),
    attr(PingAttribute.moduleVersion, [...ascii('0.1.0'), 0]),
    attr(PingAttribute.features, u32le(Feature.netns)),
    attr(PingAttribute.kernelRelease, [...ascii('6.1.0-56-amd64'), 0]),
    attr(PingAttribute.pad, []),
    attr(PingAttribute.cookie, [1, 0, 0, 0, 0, 0, 0, 0x80]),
  );
  const decoded: PingAttributes = decodeAttributes(PING_ATTRIBUTE_SET, reply);
  assert.equal(decoded, {
    protocolVersion: 1,
    moduleVersion: '0.1.0',
    features: Feature.netns,
    kernelRelease: '6.1.0-56-amd64',
    cookie: 0x8000000000000001n,
  });
});

test('ping: u64 bounds survive a round trip', () => {
  for (const cookie of [0n, 1n, 0xffffffffn, 0x100000000n, 0xffffffffffffffffn]) {
    assert.equal(decodeAttributes(PING_ATTRIBUTE_SET, encodeAttributes(PING_ATTRIBUTE_SET, { cookie })), { cookie });
  }
});

test('strings: NUL-terminated on encode, padded to 4 bytes with zeros, NUL stripped on decode', () => {
  // "abc" + NUL fills the 4 payload bytes exactly; "abcd" + NUL needs 3 bytes of padding.
  const exact = encodeAttributes(OUTER, { name: 'abc' });
  assert.equal([...exact], [8, 0, 14, 0, 0x61, 0x62, 0x63, 0]);
  const padded = encodeAttributes(OUTER, { name: 'abcd' });
  assert.equal([...padded], [9, 0, 14, 0, 0x61, 0x62, 0x63, 0x64, 0, 0, 0, 0]);
  assert.equal(decodeAttributes(OUTER, padded), { name: 'abcd' });
  const empty = encodeAttributes(OUTER, { name: '' });
  assert.equal([...empty], [5, 0, 14, 0, 0, 0, 0, 0]);
  assert.equal(decodeAttributes(OUTER, empty), { name: '' });
});

test('strings: a string without a NUL decodes up to the end of its payload, UTF-8 intact', () => {
  const buf = bytes(attr(14, ascii('ab')), attr(5, u32le(7)));
  assert.equal(decodeAttributes(OUTER, buf), { name: 'ab', signedWord: 7 });
  const utf8 = encodeAttributes(INNER, { label: 'größe' });
  assert.equal(decodeAttributes(INNER, utf8), { label: 'größe' });
});

test('every type round-trips, with alignment after odd-sized payloads', () => {
  const value: Outer = {
    small: 200,
    half: 0xbeef,
    signedHalf: -2,
    word: 0x01020304,
    signedWord: -123456,
    bigSigned: -0x7000000000000000n,
    enabled: true,
    blob: Uint8Array.from([1, 2, 3]),
    ids: [7, 8, 9],
    inner: { port: 443, label: 'x' },
    inners: [{ port: 1 }, { label: 'two' }],
    mode: 0x5,
    name: 'ok',
  };
  const buf = encodeAttributes(OUTER, value);
  assert.is(buf.length % 4, 0);
  const decoded = decodeAttributes(OUTER, buf);
  assert.equal({ ...decoded, blob: [...(decoded.blob ?? [])] }, { ...value, blob: [1, 2, 3] });
  // u8 is 5 bytes long and padded to 8, so the next attribute starts at offset 8.
  assert.equal([...buf.subarray(0, 8)], [5, 0, 1, 0, 200, 0, 0, 0]);
  assert.equal([...buf.subarray(8, 10)], [6, 0]);
});

test('big-endian attributes are written in network byte order', () => {
  const buf = encodeAttributes(OUTER, { word: 0x01020304 });
  assert.equal([...buf], [8, 0, 4, 0, 1, 2, 3, 4]);
  const inner = encodeAttributes(INNER, { port: 0x1234 });
  assert.equal([...inner], [6, 0, 1, 0, 0x12, 0x34, 0, 0]);
});

test('nests carry NLA_F_NESTED on encode; type flag bits are ignored on decode', () => {
  const buf = encodeAttributes(OUTER, { inner: { port: 80 } });
  assert.is(buf.readUInt16LE(2), 10 | NLA_F_NESTED);
  assert.is(buf.readUInt16LE(0), 4 + 8);
  // The kernel may mark a u32 with NLA_F_NET_BYTEORDER; the id underneath is still 5.
  const flagged = bytes(attr(5 | NLA_F_NET_BYTEORDER, u32le(42)));
  assert.equal(decodeAttributes(OUTER, flagged), { signedWord: 42 });
});

test('flags: true encodes an empty attribute, false and undefined encode nothing', () => {
  assert.equal([...encodeAttributes(OUTER, { enabled: true })], [4, 0, 7, 0]);
  assert.is(encodeAttributes(OUTER, { enabled: false }).length, 0);
  assert.is(encodeAttributes(OUTER, {}).length, 0);
  assert.equal(decodeAttributes(OUTER, bytes(attr(7, []))), { enabled: true });
});

test('unknown attribute ids are skipped, nested or not, and decoding carries on', () => {
  const buf = bytes(
    attr(99, [1, 2, 3, 4, 5]),
    attr(2, [0x34, 0x12]),
    attr(100 | NLA_F_NESTED, attr(1, u32le(1))),
    attr(12, []), // outer's pad attribute
    attr(5, u32le(9)),
  );
  assert.equal(decodeAttributes(OUTER, buf), { half: 0x1234, signedWord: 9 });
  const decoded = decodeAttributes(PING_ATTRIBUTE_SET, bytes(attr(60, u32le(5)), attr(PingAttribute.protocolVersion, u32le(1))));
  assert.equal(decoded, { protocolVersion: 1 });
});

test('the last attribute may end without padding', () => {
  const buf = Buffer.from([6, 0, 2, 0, 0x01, 0x02]);
  assert.equal(decodeAttributes(OUTER, buf), { half: 0x0201 });
});

test('a sub-range decodes only its own attributes, and errors give offsets in the whole buffer', () => {
  const header = [0xde, 0xad, 0xbe, 0xef];
  const buf = bytes(header, attr(PingAttribute.protocolVersion, u32le(3)), [0xff, 0xff]);
  assert.equal(decodeAttributes(PING_ATTRIBUTE_SET, buf, 4, 12), { protocolVersion: 3 });
  throwsAttributeError(() => decodeAttributes(PING_ATTRIBUTE_SET, buf, 4), /ping: truncated attribute header at offset 12: 2 bytes left/, 12);
  assert.throws(() => decodeAttributes(PING_ATTRIBUTE_SET, buf, 4, 99), /outside the 14-byte buffer/);
});

test('malformed: truncated header', () => {
  throwsAttributeError(() => decodeAttributes(PING_ATTRIBUTE_SET, Buffer.from([8, 0, 2])), /ping: truncated attribute header at offset 0: 3 bytes left, a header needs 4/, 0);
});

test('malformed: length smaller than the header', () => {
  const buf = bytes(attr(PingAttribute.protocolVersion, u32le(1)), [2, 0, PingAttribute.cookie, 0]);
  throwsAttributeError(() => decodeAttributes(PING_ATTRIBUTE_SET, buf), /ping\.cookie: attribute at offset 8 has length 2, less than its 4-byte header/, 8);
});

test('malformed: length beyond the buffer', () => {
  const buf = Buffer.from([12, 0, PingAttribute.cookie, 0, 1, 2, 3, 4]);
  throwsAttributeError(() => decodeAttributes(PING_ATTRIBUTE_SET, buf), /ping\.cookie: attribute at offset 0 has length 12, beyond the end of the buffer \(8 bytes left\)/, 0);
  // An unknown id cannot be skipped past the end either.
  throwsAttributeError(() => decodeAttributes(PING_ATTRIBUTE_SET, Buffer.from([40, 0, 77, 0])), /ping\.#77: attribute at offset 0 has length 40/, 0);
});

test('malformed: wrong payload size for fixed-size types', () => {
  throwsAttributeError(
    () => decodeAttributes(PING_ATTRIBUTE_SET, bytes(attr(PingAttribute.cookie, u32le(1)))),
    /ping\.cookie: u64 attribute at offset 0 has a 4-byte payload, expected 8/,
    0,
  );
  throwsAttributeError(
    () => decodeAttributes(PING_ATTRIBUTE_SET, bytes(attr(PingAttribute.moduleVersion, [0x30, 0]), attr(PingAttribute.features, [1, 0]))),
    /ping\.features: u32 attribute at offset 8 has a 2-byte payload, expected 4/,
    8,
  );
  throwsAttributeError(() => decodeAttributes(OUTER, bytes(attr(7, [1]))), /outer\.enabled: flag attribute at offset 0 has a 1-byte payload, expected 0/);
  throwsAttributeError(() => decodeAttributes(OUTER, bytes(attr(1, [1, 2]))), /outer\.small: u8 attribute at offset 0 has a 2-byte payload, expected 1/);
});

test('malformed: errors inside a nest name the nested set and the absolute offset', () => {
  const buf = bytes(attr(5, u32le(1)), attr(10 | NLA_F_NESTED, attr(1, [0, 80, 0])));
  throwsAttributeError(() => decodeAttributes(OUTER, buf), /inner\.port: u16 attribute at offset 12 has a 3-byte payload, expected 2/, 12);
});

test('encode: bad values are rejected with the set and attribute named', () => {
  const outer = OUTER as AttributeSetSpec<Record<string, unknown>>;
  throwsAttributeError(() => encodeAttributes(outer, { colour: 1 }), /outer: unknown attribute "colour"; the set has small, half/);
  throwsAttributeError(() => encodeAttributes(outer, { pad: 1 }), /outer: unknown attribute "pad"/);
  throwsAttributeError(() => encodeAttributes(outer, { half: '7' }), /outer\.half: u16 expects an integer number, got string/);
  throwsAttributeError(() => encodeAttributes(outer, { half: 1.5 }), /outer\.half: u16 expects an integer number, got 1\.5/);
  throwsAttributeError(() => encodeAttributes(outer, { half: 0x10000 }), /outer\.half: 65536 is out of the range of u16/);
  throwsAttributeError(() => encodeAttributes(outer, { signedHalf: -40000 }), /outer\.signed-half: -40000 is out of the range of s16/);
  throwsAttributeError(() => encodeAttributes(outer, { bigSigned: 5 }), /outer\.big-signed: s64 expects a bigint, got number/);
  throwsAttributeError(() => encodeAttributes(PING_ATTRIBUTE_SET, { cookie: -1n }), /ping\.cookie: -1 is out of the range of u64/);
  throwsAttributeError(() => encodeAttributes(PING_ATTRIBUTE_SET, { cookie: 1n << 64n }), /ping\.cookie: 18446744073709551616 is out of the range of u64/);
  throwsAttributeError(() => encodeAttributes(outer, { name: 'a\0b' }), /outer\.name: string contains a NUL character/);
  throwsAttributeError(() => encodeAttributes(outer, { name: 7 }), /outer\.name: expects a string, got number/);
  throwsAttributeError(() => encodeAttributes(outer, { enabled: 'yes' }), /outer\.enabled: flag expects true or false, got string/);
  throwsAttributeError(() => encodeAttributes(outer, { ids: 7 }), /outer\.ids: repeated attribute expects an array, got number/);
  throwsAttributeError(() => encodeAttributes(outer, { inner: { port: 1, speed: 2 } }), /inner: unknown attribute "speed"/);
  throwsAttributeError(() => encodeAttributes(outer, { blob: 'xyz' }), /outer\.blob: expects a Uint8Array, got string/);
  throwsAttributeError(() => encodeAttributes(outer, null as unknown as Record<string, unknown>), /outer: expected an object of attributes, got null/);
});

test('encode: the spec checks apply before anything is sent', () => {
  throwsAttributeError(() => encodeAttributes(OUTER, { small: 0 }), /outer\.small: 0 is below the minimum 1/);
  throwsAttributeError(() => encodeAttributes(OUTER, { small: 201 }), /outer\.small: 201 is above the maximum 200/);
  throwsAttributeError(() => encodeAttributes(OUTER, { name: 'abcde' }), /outer\.name: 5 bytes is longer than the maximum 4/);
  throwsAttributeError(() => encodeAttributes(OUTER, { blob: new Uint8Array(0) }), /outer\.blob: 0 bytes is shorter than the minimum 1/);
  throwsAttributeError(() => encodeAttributes(OUTER, { mode: 0x7 }), /outer\.mode: bits 0x2 are not among the allowed flags 0x5/);
  // The first bit beyond the spec's features (from the generated mask, which grows with the spec).
  const beyond = FEATURE_MASK + 1;
  throwsAttributeError(
    () => encodeAttributes(PING_ATTRIBUTE_SET, { features: beyond | Feature.netns }),
    new RegExp(`ping\\.features: bits 0x${beyond.toString(16)} are not among the allowed flags 0x${FEATURE_MASK.toString(16)}$`),
  );
  throwsAttributeError(() => encodeAttributes(OUTER, { blob: new Uint8Array(70000) }), /outer\.blob: payload of 70000 bytes exceeds the 65531-byte limit/);
});

test('decoded binary values are copies, independent of the receive buffer', () => {
  const buf = bytes(attr(8, [9, 8, 7]));
  const decoded = decodeAttributes(OUTER, buf);
  buf[4] = 0;
  assert.equal([...(decoded.blob ?? [])], [9, 8, 7]);
});

test('a plain Uint8Array decodes like a Buffer', () => {
  const view = new Uint8Array(12);
  view.set(bytes([0, 0, 0, 0], attr(PingAttribute.protocolVersion, u32le(2))));
  assert.not.ok(Buffer.isBuffer(view.subarray(4)));
  assert.equal(decodeAttributes(PING_ATTRIBUTE_SET, view.subarray(4)), { protocolVersion: 2 });
});

test('flagNames lists the names of the set bits and shows unknown bits in hex', () => {
  assert.equal(flagNames(Feature.netns | Feature.nativeMountNotify, FEATURE_NAMES), ['netns', 'native-mount-notify']);
  assert.equal(flagNames(0, FEATURE_NAMES), []);
  assert.equal(flagNames(0x80000001, FEATURE_NAMES), ['netns', '0x80000000']);
});

test.run();
