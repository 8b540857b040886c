// Netlink attribute (TLV) codec driven by the tables that tools/ynl-gen generates from the spec.
//
// Wire format (include/uapi/linux/netlink.h): each attribute is a 4-byte header — u16 length
// (header + payload, without padding), u16 type — followed by the payload, padded to a multiple
// of 4 bytes. Nested attributes carry NLA_F_NESTED in their type. Integers are in host byte
// order unless the spec says big-endian.
//
// Decoding is on the hot path of large dumps (tens of thousands of messages), so it reads
// straight from the Buffer and allocates nothing but the decoded values.
import { endianness } from 'node:os';
import { integerProblem } from '@usip/netlink-native';
import type { AttributeSetSpec, AttributeSpec } from '../generated/usip.js';

export const NLA_HDRLEN = 4;
export const NLA_ALIGNTO = 4;
export const NLA_F_NESTED = 0x8000;
export const NLA_F_NET_BYTEORDER = 0x4000;
export const NLA_TYPE_MASK = 0xffff & ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER);
/** The length field is a u16 and counts the header. */
export const NLA_MAX_PAYLOAD = 0xffff - NLA_HDRLEN;

const HOST_IS_LITTLE_ENDIAN = endianness() === 'LE';

export function nlaAlign(length: number): number {
  return (length + NLA_ALIGNTO - 1) & ~(NLA_ALIGNTO - 1);
}

/** Malformed attributes, or a value that cannot be encoded: says which set, attribute and offset. */
export class AttributeError extends Error {
  constructor(
    message: string,
    readonly attributeSet: string,
    readonly attribute: string | undefined,
    /** Byte offset of the attribute in the buffer being decoded; undefined when encoding. */
    readonly offset: number | undefined,
  ) {
    super(message);
    this.name = 'AttributeError';
  }
}

const FIXED_SIZES: Partial<Record<AttributeSpec['type'], number>> = {
  flag: 0,
  u8: 1,
  s8: 1,
  u16: 2,
  s16: 2,
  u32: 4,
  s32: 4,
  u64: 8,
  s64: 8,
};

const INTEGER_RANGES: Partial<Record<AttributeSpec['type'], [number, number]>> = {
  u8: [0, 0xff],
  u16: [0, 0xffff],
  u32: [0, 0xffffffff],
  s8: [-0x80, 0x7f],
  s16: [-0x8000, 0x7fff],
  s32: [-0x80000000, 0x7fffffff],
};
const BIGINT_RANGES: Partial<Record<AttributeSpec['type'], [bigint, bigint]>> = {
  u64: [0n, 0xffffffffffffffffn],
  s64: [-0x8000000000000000n, 0x7fffffffffffffffn],
};

// Tables indexed by attribute id, built once per attribute set.
const byIdCache = new WeakMap<AttributeSetSpec<object>, (AttributeSpec | undefined)[]>();
const byKeyCache = new WeakMap<AttributeSetSpec<object>, Map<string, AttributeSpec>>();

function byId(set: AttributeSetSpec<object>): (AttributeSpec | undefined)[] {
  let table = byIdCache.get(set);
  if (table === undefined) {
    table = [];
    for (const attr of set.attributes) table[attr.id] = attr;
    byIdCache.set(set, table);
  }
  return table;
}

function byKey(set: AttributeSetSpec<object>): Map<string, AttributeSpec> {
  let table = byKeyCache.get(set);
  if (table === undefined) {
    table = new Map();
    for (const attr of set.attributes) if (attr.type !== 'pad') table.set(attr.key, attr);
    byKeyCache.set(set, table);
  }
  return table;
}

// The header's length and type are in host byte order, like every netlink header field.
function readHostU16(buf: Buffer, at: number): number {
  return HOST_IS_LITTLE_ENDIAN ? buf.readUInt16LE(at) : buf.readUInt16BE(at);
}

function writeHostU16(buf: Buffer, value: number, at: number): void {
  if (HOST_IS_LITTLE_ENDIAN) buf.writeUInt16LE(value, at);
  else buf.writeUInt16BE(value, at);
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

// ---------------------------------------------------------------------------------------------
// Decoding

/**
 * Decodes the attributes in buf[start, end) as members of `set`. Attributes whose id the set
 * does not know are skipped (a newer module may send more); anything malformed throws an
 * AttributeError naming the set, the attribute and its offset.
 */
export function decodeAttributes<T extends object>(
  set: AttributeSetSpec<T>,
  bytes: Uint8Array,
  start = 0,
  end = bytes.length,
): T {
  if (start < 0 || end > bytes.length || start > end) {
    throw new RangeError(`decodeAttributes(${set.name}): range [${start}, ${end}) is outside the ${bytes.length}-byte buffer`);
  }
  return decodeInto(set, asBuffer(bytes), start, end) as T;
}

/** Fewer bytes left at `offset` of buf[.., end) than an attribute header takes. */
export function truncatedHeaderError(setName: string, offset: number, end: number): AttributeError {
  return new AttributeError(
    `${setName}: truncated attribute header at offset ${offset}: ${end - offset} bytes left, a header needs ${NLA_HDRLEN}`,
    setName,
    undefined,
    offset,
  );
}

/** An attribute header whose length is shorter than the header or runs past `end`. */
export function badLengthError(setName: string, name: string | undefined, id: number, offset: number, length: number, end: number): AttributeError {
  return new AttributeError(
    `${setName}.${name ?? `#${id}`}: attribute at offset ${offset} has length ${length}, ` +
      (length < NLA_HDRLEN ? `less than its ${NLA_HDRLEN}-byte header` : `beyond the end of the buffer (${end - offset} bytes left)`),
    setName,
    name,
    offset,
  );
}

function decodeInto(set: AttributeSetSpec<object>, buf: Buffer, start: number, end: number): Record<string, unknown> {
  const table = byId(set);
  const out: Record<string, unknown> = {};
  let offset = start;
  while (offset < end) {
    if (end - offset < NLA_HDRLEN) throw truncatedHeaderError(set.name, offset, end);
    const length = readHostU16(buf, offset);
    const id = readHostU16(buf, offset + 2) & NLA_TYPE_MASK;
    const attr = table[id];
    if (length < NLA_HDRLEN || offset + length > end) throw badLengthError(set.name, attr?.name, id, offset, length, end);
    if (attr !== undefined && attr.type !== 'pad') {
      const value = decodeValue(set, attr, buf, offset, offset + NLA_HDRLEN, offset + length);
      if (attr.multi) {
        const list = out[attr.key] as unknown[] | undefined;
        if (list === undefined) out[attr.key] = [value];
        else list.push(value);
      } else {
        out[attr.key] = value;
      }
    }
    offset += nlaAlign(length);
  }
  return out;
}

function decodeValue(
  set: AttributeSetSpec<object>,
  attr: AttributeSpec,
  buf: Buffer,
  at: number,
  start: number,
  end: number,
): unknown {
  const size = end - start;
  const fixed = FIXED_SIZES[attr.type];
  if (fixed !== undefined && size !== fixed) {
    throw new AttributeError(
      `${set.name}.${attr.name}: ${attr.type} attribute at offset ${at} has a ${size}-byte payload, expected ${fixed}`,
      set.name,
      attr.name,
      at,
    );
  }
  const little = HOST_IS_LITTLE_ENDIAN && !attr.bigEndian;
  switch (attr.type) {
    case 'u8':
      return buf[start];
    case 's8':
      return buf.readInt8(start);
    case 'u16':
      return little ? buf.readUInt16LE(start) : buf.readUInt16BE(start);
    case 's16':
      return little ? buf.readInt16LE(start) : buf.readInt16BE(start);
    case 'u32':
      return little ? buf.readUInt32LE(start) : buf.readUInt32BE(start);
    case 's32':
      return little ? buf.readInt32LE(start) : buf.readInt32BE(start);
    case 'u64':
    case 's64': {
      const value =
        attr.type === 'u64'
          ? little ? buf.readBigUInt64LE(start) : buf.readBigUInt64BE(start)
          : little ? buf.readBigInt64LE(start) : buf.readBigInt64BE(start);
      return attr.safeNumber === true ? safeNumber(set, attr, value, at) : value;
    }
    case 'flag':
      return true;
    case 'string': {
      // The kernel NUL-terminates; stop at the first NUL, or at the end if there is none.
      const nul = buf.indexOf(0, start);
      return buf.toString('utf8', start, nul === -1 || nul > end ? end : nul);
    }
    case 'binary':
      // A copy, so that keeping the value does not keep the whole receive buffer alive.
      return Buffer.from(buf.subarray(start, end));
    case 'nest':
      if (attr.nested === undefined) {
        throw new AttributeError(`${set.name}.${attr.name}: nest without a nested attribute set in the table`, set.name, attr.name, at);
      }
      return decodeInto(attr.nested, buf, start, end);
    default:
      return undefined;
  }
}

/**
 * A 64-bit value the spec bounds below 2^53 (safeNumber), as a number; a value beyond the spec's
 * bounds is malformed rather than silently rounded.
 */
function safeNumber(set: AttributeSetSpec<object>, attr: AttributeSpec, value: bigint, at: number): number {
  const { min, max } = attr.checks ?? {};
  if ((max !== undefined && value > BigInt(max)) || (min !== undefined && value < BigInt(min))) {
    throw new AttributeError(
      `${set.name}.${attr.name}: ${String(value)} at offset ${at} is outside the spec's range ${String(min ?? 0)} to ${String(max)}`,
      set.name,
      attr.name,
      at,
    );
  }
  return Number(value);
}

// ---------------------------------------------------------------------------------------------
// Encoding

/**
 * Encodes `value` as attributes of `set`: one attribute per defined property, in the order of
 * the set, each padded to 4 bytes. A property the set does not have, a value of the wrong type,
 * out of range or failing the spec's checks throws an AttributeError naming it.
 */
export function encodeAttributes<T extends object>(set: AttributeSetSpec<T>, value: T): Buffer {
  const size = measure(set, value as Record<string, unknown>);
  const buf = Buffer.alloc(size);
  const written = write(set, value as Record<string, unknown>, buf, 0);
  if (written !== size) throw new Error(`encodeAttributes(${set.name}): wrote ${written} bytes, measured ${size}`);
  return buf;
}

function fail(set: AttributeSetSpec<object>, attr: AttributeSpec, message: string): never {
  throw new AttributeError(`${set.name}.${attr.name}: ${message}`, set.name, attr.name, undefined);
}

function present(set: AttributeSetSpec<object>, value: Record<string, unknown>): [AttributeSpec, unknown[]][] {
  if (value === null || typeof value !== 'object') {
    throw new AttributeError(`${set.name}: expected an object of attributes, got ${value === null ? 'null' : typeof value}`, set.name, undefined, undefined);
  }
  const keys = byKey(set);
  for (const key of Object.keys(value)) {
    if (value[key] !== undefined && !keys.has(key)) {
      throw new AttributeError(
        `${set.name}: unknown attribute "${key}"; the set has ${[...keys.keys()].join(', ')}`,
        set.name,
        key,
        undefined,
      );
    }
  }
  const out: [AttributeSpec, unknown[]][] = [];
  for (const attr of set.attributes) {
    if (attr.type === 'pad') continue;
    const v = value[attr.key];
    if (v === undefined) continue;
    if (attr.multi) {
      if (!Array.isArray(v)) fail(set, attr, `repeated attribute expects an array, got ${typeof v}`);
      out.push([attr, v]);
    } else {
      if (attr.type === 'flag' && v === false) continue;
      out.push([attr, [v]]);
    }
  }
  return out;
}

function payloadSize(set: AttributeSetSpec<object>, attr: AttributeSpec, v: unknown): number {
  const fixed = FIXED_SIZES[attr.type];
  if (fixed !== undefined) return fixed;
  switch (attr.type) {
    case 'string':
      if (typeof v !== 'string') fail(set, attr, `expects a string, got ${typeof v}`);
      return Buffer.byteLength(v) + 1;
    case 'binary':
      if (!(v instanceof Uint8Array)) fail(set, attr, `expects a Uint8Array, got ${typeof v}`);
      return v.byteLength;
    case 'nest':
      if (attr.nested === undefined) fail(set, attr, 'nest without a nested attribute set in the table');
      return measure(attr.nested, v as Record<string, unknown>);
    default:
      return fail(set, attr, `cannot encode attributes of type ${attr.type}`);
  }
}

function measure(set: AttributeSetSpec<object>, value: Record<string, unknown>): number {
  let size = 0;
  for (const [attr, values] of present(set, value)) {
    for (const v of values) {
      const payload = payloadSize(set, attr, v);
      if (payload > NLA_MAX_PAYLOAD) fail(set, attr, `payload of ${payload} bytes exceeds the ${NLA_MAX_PAYLOAD}-byte limit of an attribute`);
      size += nlaAlign(NLA_HDRLEN + payload);
    }
  }
  return size;
}

/** An integer attribute's value checked against its type's range: the rule of
 *  @usip/netlink-native's integerProblem, worded as an attribute error. */
function checkAttributeInteger(set: AttributeSetSpec<object>, attr: AttributeSpec, v: unknown): number | bigint {
  const bigRange = BIGINT_RANGES[attr.type];
  if (bigRange !== undefined && attr.safeNumber === true) {
    // Held as a number (the spec bounds it below 2^53); checkValue applies those bounds.
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) fail(set, attr, `${attr.type} held as a number expects a safe integer, got ${typeof v === 'number' ? String(v) : typeof v}`);
    return BigInt(v);
  }
  const problem = bigRange !== undefined ? integerProblem(v, bigRange[0], bigRange[1]) : integerProblem(v, ...(INTEGER_RANGES[attr.type] as [number, number]));
  if (problem === 'type') {
    if (bigRange !== undefined) fail(set, attr, `${attr.type} expects a bigint, got ${typeof v}`);
    fail(set, attr, `${attr.type} expects an integer number, got ${typeof v === 'number' ? String(v) : typeof v}`);
  }
  if (problem === 'range') fail(set, attr, `${String(v)} is out of the range of ${attr.type}`);
  return v as number | bigint;
}

function checkValue(set: AttributeSetSpec<object>, attr: AttributeSpec, v: unknown): void {
  const c = attr.checks;
  if (c === undefined) return;
  if (typeof v === 'number' || typeof v === 'bigint') {
    if (c.min !== undefined && v < c.min) fail(set, attr, `${String(v)} is below the minimum ${String(c.min)}`);
    if (c.max !== undefined && v > c.max) fail(set, attr, `${String(v)} is above the maximum ${String(c.max)}`);
    if (c.flagsMask !== undefined) {
      const extra = BigInt(v) & ~BigInt(c.flagsMask);
      if (extra !== 0n) fail(set, attr, `bits 0x${extra.toString(16)} are not among the allowed flags 0x${c.flagsMask.toString(16)}`);
    }
    return;
  }
  const length = typeof v === 'string' ? Buffer.byteLength(v) : v instanceof Uint8Array ? v.byteLength : undefined;
  if (length === undefined) return;
  if (c.maxLen !== undefined && length > c.maxLen) fail(set, attr, `${length} bytes is longer than the maximum ${c.maxLen}`);
  if (c.minLen !== undefined && length < c.minLen) fail(set, attr, `${length} bytes is shorter than the minimum ${c.minLen}`);
  if (c.exactLen !== undefined && length !== c.exactLen) fail(set, attr, `${length} bytes, expected exactly ${c.exactLen}`);
}

function write(set: AttributeSetSpec<object>, value: Record<string, unknown>, buf: Buffer, start: number): number {
  let offset = start;
  for (const [attr, values] of present(set, value)) {
    for (const v of values) {
      const at = offset;
      const payloadStart = at + NLA_HDRLEN;
      let payloadEnd: number;
      const little = HOST_IS_LITTLE_ENDIAN && !attr.bigEndian;
      switch (attr.type) {
        case 'flag':
          if (v !== true) fail(set, attr, `flag expects true or false, got ${typeof v}`);
          payloadEnd = payloadStart;
          break;
        case 'u8':
        case 's8':
        case 'u16':
        case 's16':
        case 'u32':
        case 's32': {
          const n = checkAttributeInteger(set, attr, v) as number;
          checkValue(set, attr, n);
          const width = FIXED_SIZES[attr.type] as number;
          if (attr.type.startsWith('u')) {
            if (little) buf.writeUIntLE(n, payloadStart, width);
            else buf.writeUIntBE(n, payloadStart, width);
          } else if (little) buf.writeIntLE(n, payloadStart, width);
          else buf.writeIntBE(n, payloadStart, width);
          payloadEnd = payloadStart + width;
          break;
        }
        case 'u64':
        case 's64': {
          const n = checkAttributeInteger(set, attr, v) as bigint;
          checkValue(set, attr, attr.safeNumber === true ? Number(n) : n);
          if (attr.type === 'u64') {
            if (little) buf.writeBigUInt64LE(n, payloadStart);
            else buf.writeBigUInt64BE(n, payloadStart);
          } else if (little) buf.writeBigInt64LE(n, payloadStart);
          else buf.writeBigInt64BE(n, payloadStart);
          payloadEnd = payloadStart + 8;
          break;
        }
        case 'string': {
          const s = v as string;
          if (s.includes('\0')) fail(set, attr, 'string contains a NUL character');
          checkValue(set, attr, s);
          payloadEnd = payloadStart + buf.write(s, payloadStart, 'utf8');
          buf[payloadEnd] = 0;
          payloadEnd += 1;
          break;
        }
        case 'binary': {
          const bytes = v as Uint8Array;
          checkValue(set, attr, bytes);
          buf.set(bytes, payloadStart);
          payloadEnd = payloadStart + bytes.byteLength;
          break;
        }
        case 'nest':
          payloadEnd = write(attr.nested as AttributeSetSpec<object>, v as Record<string, unknown>, buf, payloadStart);
          break;
        default:
          fail(set, attr, `cannot encode attributes of type ${attr.type}`);
      }
      const type = attr.id | (attr.type === 'nest' ? NLA_F_NESTED : 0);
      writeHostU16(buf, payloadEnd - at, at);
      writeHostU16(buf, type, at + 2);
      // Buffer.alloc zero-filled the padding already.
      offset = at + nlaAlign(payloadEnd - at);
    }
  }
  return offset;
}

/** The names of the bits set in `mask`, from a generated name table such as FEATURE_NAMES. */
export function flagNames(mask: number, names: Readonly<Record<number, string>>): string[] {
  const out: string[] = [];
  for (let bit = 1; bit !== 0 && bit <= mask; bit = (bit << 1) >>> 0) {
    if ((mask & bit) >>> 0 !== 0) out.push(names[bit] ?? `0x${bit.toString(16)}`);
  }
  return out;
}
