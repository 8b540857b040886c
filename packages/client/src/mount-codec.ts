// The mount table's hot paths, decoded without the generic codec's intermediate objects: a
// mount-get reply (one per mount of a dump, one per change a watcher applies) straight into a
// MountInfo, an mtab event into the few fields a watcher needs, a mount-get request into its
// 12 bytes. The attribute ids and payload sizes come from the generated tables; the checks are
// the generic decoder's (header, bounds, fixed sizes), and test/mount-codec.test.ts holds both
// decoders to the same results.
import { endianness } from 'node:os';
import {
  EVENT_ATTRIBUTE_SET,
  EventAttribute,
  MOUNT_ATTRIBUTE_SET,
  MountAttribute,
  type AttributeSetSpec,
} from './generated/usip.js';
import { UsipProtocolError } from './errors.js';
import { AttributeError, badLengthError, NLA_HDRLEN, NLA_TYPE_MASK, nlaAlign, truncatedHeaderError } from './netlink/attributes.js';
import { mountAttributeNames, mountOptions, optionalFields, type MountInfo } from './mounts.js';

const LITTLE = endianness() === 'LE';

const FIXED: Partial<Record<string, number>> = { flag: 0, u8: 1, s8: 1, u16: 2, s16: 2, u32: 4, s32: 4, u64: 8, s64: 8 };

interface SetLayout {
  /** By attribute id: the payload size it must have, -1 for any (strings), undefined if unknown. */
  readonly sizes: (number | undefined)[];
  readonly names: (string | undefined)[];
  readonly bigEndian: boolean[];
}

function layout(set: AttributeSetSpec<object>): SetLayout {
  const sizes: (number | undefined)[] = [];
  const names: (string | undefined)[] = [];
  const bigEndian: boolean[] = [];
  for (const attr of set.attributes) {
    sizes[attr.id] = FIXED[attr.type] ?? -1;
    names[attr.id] = attr.name;
    bigEndian[attr.id] = attr.bigEndian;
    if (attr.bigEndian) throw new Error(`mount-codec: ${set.name}.${attr.name} is big-endian, which this decoder does not read`);
  }
  return { sizes, names, bigEndian };
}

const MOUNT = layout(MOUNT_ATTRIBUTE_SET);
const EVENT = layout(EVENT_ATTRIBUTE_SET);

function u16(buf: Buffer, at: number): number {
  return LITTLE ? buf.readUInt16LE(at) : buf.readUInt16BE(at);
}

function u32(buf: Buffer, at: number): number {
  return LITTLE ? buf.readUInt32LE(at) : buf.readUInt32BE(at);
}

function u64(buf: Buffer, at: number): bigint {
  return LITTLE ? buf.readBigUInt64LE(at) : buf.readBigUInt64BE(at);
}

/** A u64 as a number, or -1 when it does not fit in one exactly. */
function u64Number(buf: Buffer, at: number): number {
  const lo = u32(buf, LITTLE ? at : at + 4);
  const hi = u32(buf, LITTLE ? at + 4 : at);
  return hi >= 0x200000 ? -1 : hi * 0x100000000 + lo;
}

function string(buf: Buffer, start: number, end: number, text: PayloadText | undefined): string {
  if (text !== undefined && text.buffer === buf.buffer) {
    // Offsets in the shared payload; substring stays on the JS side (no call into C++ per field).
    const from = buf.byteOffset + start;
    const to = from + (end - start);
    const nul = text.text.indexOf('\0', from);
    const value = text.text.substring(from, nul === -1 || nul > to ? to : nul);
    // Latin-1 is the bytes themselves: right for ASCII; anything else is UTF-8 to decode.
    if (!NON_ASCII.test(value)) return value;
  }
  const nul = buf.indexOf(0, start);
  return buf.toString('utf8', start, nul === -1 || nul > end ? end : nul);
}

const NON_ASCII = /[^\x00-\x7f]/;

/**
 * A payload that many messages share (a dump's, a batch's replies) as one Latin-1 string (a
 * character per byte): a string field that is ASCII (nearly all are) is then a substring of it,
 * far cheaper than one UTF-8 decode per field; others are decoded from the bytes. Made by
 * whoever owns the payload, once, and only while its bytes do not change.
 */
export interface PayloadText {
  readonly buffer: ArrayBufferLike;
  readonly text: string;
}

/** The PayloadText of the memory `view` is part of (all of it: the messages of one payload
 *  are views into it). Use it only while that memory does not change: at once. */
export function payloadText(view: Buffer): PayloadText {
  return { buffer: view.buffer, text: Buffer.from(view.buffer, 0, view.buffer.byteLength).toString('latin1') };
}

/**
 * Checks the attribute header at `offset` of buf[.., end) against `set` and returns its type
 * id; throws AttributeError (as the generic decoder does) when it is malformed.
 */
function header(set: AttributeSetSpec<object>, l: SetLayout, buf: Buffer, offset: number, end: number): number {
  if (end - offset < NLA_HDRLEN) throw truncatedHeaderError(set.name, offset, end);
  const length = u16(buf, offset);
  const id = u16(buf, offset + 2) & NLA_TYPE_MASK;
  const name = l.names[id];
  if (length < NLA_HDRLEN || offset + length > end) throw badLengthError(set.name, name, id, offset, length, end);
  const size = l.sizes[id];
  if (size !== undefined && size >= 0 && length - NLA_HDRLEN !== size) {
    throw new AttributeError(
      `${set.name}.${name}: attribute at offset ${offset} has a ${length - NLA_HDRLEN}-byte payload, expected ${size}`,
      set.name,
      name,
      offset,
    );
  }
  return id;
}

function malformed(operation: string, error: unknown): never {
  if (error instanceof AttributeError) {
    throw new UsipProtocolError(`${operation}: malformed reply from the module: ${error.message}`, { cause: error });
  }
  throw error;
}

const A = MountAttribute;

/**
 * A mount-get reply (do or dump message) as a MountInfo. Throws UsipProtocolError when it is
 * malformed or lacks an attribute every mount has.
 */
export function decodeMount(operation: string, buf: Buffer, text?: PayloadText): MountInfo {
  let id = -1;
  let parentId = -1;
  let uniqueId: bigint | undefined;
  let major = -1;
  let minor = -1;
  let root: string | undefined;
  let mountPoint: string | undefined;
  let attr = -1;
  let fsType: string | undefined;
  let source: string | undefined;
  let superOptions: string | undefined;
  let shared: number | undefined;
  let master: number | undefined;
  let propagateFrom: number | undefined;
  let unbindable = false;
  let mntNs: number | undefined;
  const end = buf.length;
  let offset = 0;
  try {
    while (offset < end) {
      const type = header(MOUNT_ATTRIBUTE_SET, MOUNT, buf, offset, end);
      const start = offset + NLA_HDRLEN;
      const stop = offset + u16(buf, offset);
      switch (type) {
        case A.mountId:
          id = u64Number(buf, start);
          if (id === -1) throw new UsipProtocolError(`${operation}: mount-id ${u64(buf, start)} is too large for this client`);
          break;
        case A.parentId:
          parentId = u64Number(buf, start);
          if (parentId === -1) throw new UsipProtocolError(`${operation}: parent-id ${u64(buf, start)} is too large for this client`);
          break;
        case A.uniqueId:
          uniqueId = u64(buf, start);
          break;
        case A.devMajor:
          major = u32(buf, start);
          break;
        case A.devMinor:
          minor = u32(buf, start);
          break;
        case A.root:
          root = string(buf, start, stop, text);
          break;
        case A.mountPoint:
          mountPoint = string(buf, start, stop, text);
          break;
        case A.attr:
          attr = u32(buf, start);
          break;
        case A.fsType:
          fsType = string(buf, start, stop, text);
          break;
        case A.source:
          source = string(buf, start, stop, text);
          break;
        case A.superOptions:
          superOptions = string(buf, start, stop, text);
          break;
        case A.shared:
          shared = u32(buf, start);
          break;
        case A.master:
          master = u32(buf, start);
          break;
        case A.propagateFrom:
          propagateFrom = u32(buf, start);
          break;
        case A.unbindable:
          unbindable = true;
          break;
        case A.mntNs:
          // An unsigned int in the kernel (ns_common.inum), bounded so by the spec.
          mntNs = u64Number(buf, start);
          if (mntNs === -1 || mntNs > 0xffffffff) throw new UsipProtocolError(`${operation}: mnt-ns ${u64(buf, start)} is larger than the spec's u32-max`);
          break;
        default:
          // ns-seq (read by dumpNsSeq), pad, and attributes of a newer module.
          break;
      }
      offset += nlaAlign(stop - offset);
    }
  } catch (error) {
    malformed(operation, error);
  }
  if (
    id === -1 ||
    parentId === -1 ||
    major === -1 ||
    minor === -1 ||
    root === undefined ||
    mountPoint === undefined ||
    attr === -1 ||
    fsType === undefined ||
    source === undefined ||
    superOptions === undefined ||
    mntNs === undefined
  ) {
    const missing = Object.entries({ mountId: id, parentId, devMajor: major, devMinor: minor, root, mountPoint, attr, fsType, source, superOptions, mntNs })
      .filter(([, value]) => value === undefined || value === -1)
      .map(([key]) => key);
    throw new UsipProtocolError(`${operation}: the reply lacks ${missing.join(', ')}`);
  }
  // The same property order everywhere (here and in parseMountinfo), for one object shape.
  const mount: MountInfo = {
    id,
    parentId,
    major,
    minor,
    root,
    mountPoint,
    attributes: mountAttributeNames(attr),
    options: mountOptions(attr),
    unbindable,
    optionalFields: shared === undefined && master === undefined && !unbindable ? '' : optionalFields({ shared, master, propagateFrom, unbindable }),
    fsType,
    source,
    superOptions,
  };
  if (uniqueId !== undefined) mount.uniqueId = uniqueId;
  if (shared !== undefined) mount.shared = shared;
  if (master !== undefined) {
    mount.master = master;
    if (propagateFrom !== undefined) mount.propagateFrom = propagateFrom;
  }
  mount.mntNs = mntNs;
  return mount;
}

// The bytes each mount was decoded from (up to its ns-seq), for the decoders asked to keep them (a watcher's):
// a later read of the same bytes is the same mount in the same state, with no decoding. Views
// of the payload they came in (which they keep alive, about as large as the table's text).
const SOURCES = new WeakMap<MountInfo, Buffer>();

/** The length of a mount-get message without its trailing ns-seq (which differs from read to
 *  read of an unchanged mount). */
function withoutNsSeq(buf: Buffer, start = 0, end = buf.length): number {
  const at = end - NS_SEQ_ATTRIBUTE;
  return at >= start && u16(buf, at) === NS_SEQ_ATTRIBUTE && (u16(buf, at + 2) & NLA_TYPE_MASK) === A.nsSeq ? at - start : end - start;
}
const NS_SEQ_ATTRIBUTE = NLA_HDRLEN + 8;

/** decodeMount, remembering the bytes it decoded (see sameSource). */
export function decodeMountKeeping(operation: string, buf: Buffer, text?: PayloadText): MountInfo {
  const mount = decodeMount(operation, buf, text);
  // Kept without the ns-seq, which is what sameSource compares.
  SOURCES.set(mount, buf.subarray(0, withoutNsSeq(buf)));
  return mount;
}

/** The mount id a mount-get message starts with (the module puts it first), or -1. */
export function leadingMountId(buf: Buffer, start = 0, end = buf.length): number {
  if (end - start < NLA_HDRLEN + 8 || u16(buf, start) !== NLA_HDRLEN + 8 || (u16(buf, start + 2) & NLA_TYPE_MASK) !== A.mountId) return -1;
  return u64Number(buf, start + NLA_HDRLEN);
}

/** Whether `mount` was decoded (by decodeMountKeeping) from these very bytes, ns-seq aside. */
export function sameSource(mount: MountInfo, buf: Buffer, start = 0, end = buf.length): boolean {
  const source = SOURCES.get(mount);
  if (source === undefined) return false;
  const length = withoutNsSeq(buf, start, end);
  return length === source.length && source.compare(buf, start, start + length) === 0;
}

/** The ns-seq attribute of a mount-get dump message; undefined when it has none. */
export function dumpNsSeq(operation: string, buf: Buffer): bigint | undefined {
  const end = buf.length;
  let offset = 0;
  try {
    while (offset < end) {
      const type = header(MOUNT_ATTRIBUTE_SET, MOUNT, buf, offset, end);
      if (type === A.nsSeq) return u64(buf, offset + NLA_HDRLEN);
      offset += nlaAlign(u16(buf, offset));
    }
  } catch (error) {
    malformed(operation, error);
  }
  return undefined;
}

/** A mount-get do request: mount-id or unique-id, 12 bytes. */
export function mountGetRequest(key: { mountId: number } | { uniqueId: bigint }): Buffer {
  const buf = Buffer.allocUnsafe(NLA_HDRLEN + 8);
  const [type, value] = 'uniqueId' in key ? [A.uniqueId, key.uniqueId] : [A.mountId, BigInt(key.mountId)];
  if (LITTLE) {
    buf.writeUInt16LE(NLA_HDRLEN + 8, 0);
    buf.writeUInt16LE(type, 2);
    buf.writeBigUInt64LE(value, 4);
  } else {
    buf.writeUInt16BE(NLA_HDRLEN + 8, 0);
    buf.writeUInt16BE(type, 2);
    buf.writeBigUInt64BE(value, 4);
  }
  return buf;
}

/** What a mount watcher reads of an mtab event. Absent numbers are -1 (nsSeq: 0). */
export interface MountEvent {
  action: number;
  /** 0 for an event without ns-seq (injected). */
  nsSeq: number;
  missed: number;
  mountId: number;
  parentId: number;
  uniqueId: bigint | undefined;
  /** The mount point relative to the listener's root; undefined when it lies outside. */
  path: string | undefined;
  /** new_encode_dev() of the file system's device. */
  dev: number;
  /** The event stands for the mount and every mount below it (a tree that changed at once). */
  subtree: boolean;
}

const E = EventAttribute;

/** An mtab event's attributes as a MountEvent; throws UsipProtocolError when malformed. */
export function decodeMountEvent(buf: Buffer): MountEvent {
  const event: MountEvent = {
    action: 0,
    nsSeq: 0,
    missed: 0,
    mountId: -1,
    parentId: -1,
    uniqueId: undefined,
    path: undefined,
    dev: -1,
    subtree: false,
  };
  const end = buf.length;
  let offset = 0;
  try {
    while (offset < end) {
      const type = header(EVENT_ATTRIBUTE_SET, EVENT, buf, offset, end);
      const start = offset + NLA_HDRLEN;
      const stop = offset + u16(buf, offset);
      switch (type) {
        case E.action:
          event.action = u32(buf, start);
          break;
        case E.nsSeq:
          event.nsSeq = u64Number(buf, start);
          if (event.nsSeq === -1) throw new UsipProtocolError(`usip mtab-event: ns-seq ${u64(buf, start)} is too large for this client`);
          break;
        case E.missed:
          event.missed = u32(buf, start);
          break;
        case E.mountId:
          event.mountId = u64Number(buf, start);
          break;
        case E.parentId:
          event.parentId = u64Number(buf, start);
          break;
        case E.uniqueId:
          event.uniqueId = u64(buf, start);
          break;
        case E.path:
          event.path = string(buf, start, stop, undefined);
          break;
        case E.dev:
          event.dev = u32(buf, start);
          break;
        case E.subtree:
          event.subtree = true;
          break;
        default:
          break;
      }
      offset += nlaAlign(stop - offset);
    }
  } catch (error) {
    if (error instanceof AttributeError) {
      throw new UsipProtocolError(`usip mtab-event: malformed event from the module: ${error.message}`, { cause: error });
    }
    throw error;
  }
  return event;
}

/**
 * The ns-seq of an mtab event (0 when it has none), read without decoding the rest: a watcher
 * skips the events it has passed (after a resync, a storm leaves thousands in the socket) for
 * the price of a walk over the attribute headers. -1 when the bytes are malformed (or the
 * ns-seq too large): decodeMountEvent then says what is wrong.
 */
export function mountEventNsSeq(buf: Buffer): number {
  const end = buf.length;
  let offset = 0;
  while (offset < end) {
    if (offset + NLA_HDRLEN > end) return -1;
    const length = u16(buf, offset);
    if (length < NLA_HDRLEN || offset + length > end) return -1;
    if ((u16(buf, offset + 2) & NLA_TYPE_MASK) === E.nsSeq) return length === NLA_HDRLEN + 8 ? u64Number(buf, offset + NLA_HDRLEN) : -1;
    offset += nlaAlign(length);
  }
  return 0;
}

/** The kernel's new_encode_dev() (one copy, in text.ts, shared with usip and the agent). */
export { encodeDev } from './text.js';
