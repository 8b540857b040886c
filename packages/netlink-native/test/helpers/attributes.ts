// A minimal netlink attribute codec for the tests (the typed codec for usip lives in
// @usip/client). Native byte order, as on the wire.
import { endianness } from 'node:os';

const LITTLE = endianness() === 'LE';
const NLA_TYPE_MASK = 0x3fff;

export function attribute(type: number, payload: Uint8Array): Buffer {
  const length = 4 + payload.length;
  const out = Buffer.alloc((length + 3) & ~3);
  if (LITTLE) {
    out.writeUInt16LE(length, 0);
    out.writeUInt16LE(type, 2);
  } else {
    out.writeUInt16BE(length, 0);
    out.writeUInt16BE(type, 2);
  }
  out.set(payload, 4);
  return out;
}

export function stringAttribute(type: number, value: string): Buffer {
  return attribute(type, Buffer.from(`${value}\0`));
}

export function u32Attribute(type: number, value: number): Buffer {
  const payload = Buffer.alloc(4);
  if (LITTLE) payload.writeUInt32LE(value);
  else payload.writeUInt32BE(value);
  return attribute(type, payload);
}

export function u64Attribute(type: number, value: bigint): Buffer {
  const payload = Buffer.alloc(8);
  if (LITTLE) payload.writeBigUInt64LE(value);
  else payload.writeBigUInt64BE(value);
  return attribute(type, payload);
}

/** Attribute payloads by type (flag bits removed); the first of each type wins. */
export function decodeAttributes(bytes: Buffer): Map<number, Buffer> {
  const found = new Map<number, Buffer>();
  let offset = 0;
  while (offset + 4 <= bytes.length) {
    const length = LITTLE ? bytes.readUInt16LE(offset) : bytes.readUInt16BE(offset);
    const type = (LITTLE ? bytes.readUInt16LE(offset + 2) : bytes.readUInt16BE(offset + 2)) & NLA_TYPE_MASK;
    if (length < 4 || offset + length > bytes.length) {
      throw new Error(`malformed attribute at offset ${offset}: length ${length}`);
    }
    if (!found.has(type)) found.set(type, bytes.subarray(offset + 4, offset + length));
    offset += (length + 3) & ~3;
  }
  return found;
}

export function readString(payload: Buffer | undefined): string | undefined {
  if (payload === undefined) return undefined;
  const end = payload.indexOf(0);
  return payload.toString('utf8', 0, end < 0 ? payload.length : end);
}

export function readU32(payload: Buffer | undefined): number | undefined {
  if (payload === undefined) return undefined;
  return LITTLE ? payload.readUInt32LE(0) : payload.readUInt32BE(0);
}

export function readU64(payload: Buffer | undefined): bigint | undefined {
  if (payload === undefined) return undefined;
  return LITTLE ? payload.readBigUInt64LE(0) : payload.readBigUInt64BE(0);
}
