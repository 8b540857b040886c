// @usip/netlink-native: generic netlink sockets for Node.js, backed by a Rust addon. Every call
// runs its socket I/O on the addon's tokio runtime and settles one promise, so the JS thread
// never blocks and a dump of thousands of messages crosses into JavaScript once.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { NetlinkError, fromNativeError, isNetlinkError } from './errors.js';
import type { NetlinkErrorDetails } from './errors.js';
import type { NativeBinding, NativeFamilyInfo, NativeGenlSocket, NativeMessageBatch } from './native.js';

export { NetlinkError, isNetlinkError };
export type { NetlinkErrorDetails };

export interface FamilyOperation {
  /** The command number. */
  id: number;
  /** CTRL_ATTR_OP_FLAGS: see OperationFlags. */
  flags: number;
}

export interface MulticastGroup {
  name: string;
  id: number;
}

export interface FamilyInfo {
  id: number;
  name: string;
  version: number;
  /** Size of the family's own header after genlmsghdr (0 for most families). */
  headerSize: number;
  maxAttr: number;
  operations: FamilyOperation[];
  multicastGroups: MulticastGroup[];
}

export interface GenlMessage {
  command: number;
  version: number;
  /** Everything after the genlmsghdr: the family header (if any), then the attributes as raw
   *  TLVs. The messages of one reply are views into one shared buffer. */
  attributes: Buffer;
}

export interface RequestOptions {
  /** Names the operation in errors, e.g. 'usip ping' gives "usip ping: Operation not
   *  permitted (EPERM): ...". By default: the family name (once resolved on this socket, else
   *  its id) and the command number. */
  label?: string;
}

/** Bits of FamilyOperation.flags (CTRL_ATTR_OP_FLAGS, include/uapi/linux/genetlink.h). */
export const OperationFlags = {
  adminPerm: 0x01,
  canDo: 0x02,
  canDump: 0x04,
  hasPolicy: 0x08,
  unsAdminPerm: 0x10,
} as const;

/** The generic netlink controller, present in every kernel (include/uapi/linux/genetlink.h). */
export const Nlctrl = {
  familyId: 0x10,
  name: 'nlctrl',
  version: 2,
  commands: { newFamily: 1, getFamily: 3 },
  attributes: {
    familyId: 1,
    familyName: 2,
    version: 3,
    headerSize: 4,
    maxAttr: 5,
    operations: 6,
    multicastGroups: 7,
  },
} as const;

const ADDON_FILE = 'usip-netlink.node';
let binding: NativeBinding | undefined;

/** Loads the addon on first use, so importing this module (for types, constants or error
 *  checks) works where the addon is not built or cannot load. */
function loadBinding(): NativeBinding {
  if (binding) return binding;
  // The addon sits in dist/ both for the built module (dist/index.js) and for the sources
  // (src/index.ts, run by the tests through tsx).
  const path = fileURLToPath(new URL(`../dist/${ADDON_FILE}`, import.meta.url));
  if (!existsSync(path)) {
    throw new Error(
      `@usip/netlink-native: the native addon ${path} is missing; build it with ` +
        '`npx nx build netlink-native` (needs Rust and cargo)',
    );
  }
  binding = createRequire(import.meta.url)(path) as NativeBinding;
  return binding;
}

function checkInteger(name: string, value: unknown, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new TypeError(`${name} must be an integer from 0 to ${max}, got ${describe(value)}`);
  }
  if (value < 0 || value > max) {
    throw new RangeError(`${name} must be an integer from 0 to ${max}, got ${value}`);
  }
  return value;
}

function checkAttributes(value: unknown): Uint8Array {
  if (value === undefined) return EMPTY;
  if (!(value instanceof Uint8Array)) {
    throw new TypeError(`attributes must be a Buffer or Uint8Array, got ${describe(value)}`);
  }
  return value;
}

function checkOptions(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null) {
    throw new TypeError(`options must be an object, got ${describe(value)}`);
  }
  const { label } = value as RequestOptions;
  if (label !== undefined && typeof label !== 'string') {
    throw new TypeError(`options.label must be a string, got ${describe(label)}`);
  }
  return label;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'object') return value.constructor?.name ?? 'object';
  return `${typeof value} ${String(value)}`;
}

const EMPTY = new Uint8Array(0);

function toFamily(native: NativeFamilyInfo): FamilyInfo {
  return {
    id: native.id,
    name: native.name,
    version: native.version,
    headerSize: native.headerSize,
    maxAttr: native.maxAttr,
    operations: native.operations.map(({ id, flags }) => ({ id, flags })),
    multicastGroups: native.multicastGroups.map(({ name, id }) => ({ name, id })),
  };
}

function toMessages({ payload, layout }: NativeMessageBatch): GenlMessage[] {
  const count = layout.length / 4;
  const messages = new Array<GenlMessage>(count);
  for (let index = 0; index < count; index++) {
    const base = index * 4;
    messages[index] = {
      command: layout[base]!,
      version: layout[base + 1]!,
      attributes: payload.subarray(layout[base + 2]!, layout[base + 3]!),
    };
  }
  return messages;
}

async function settle<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw fromNativeError(error);
  }
}

/**
 * A generic netlink socket (AF_NETLINK, NETLINK_GENERIC) with extended and capped acks.
 * Calls may be issued concurrently; the socket runs them one at a time, in call order.
 */
export class GenlSocket {
  readonly #native: NativeGenlSocket;

  /** Opens the socket; throws a NetlinkError (with `syscall`) if the kernel refuses. */
  constructor() {
    const { NativeGenlSocket } = loadBinding();
    try {
      this.#native = new NativeGenlSocket();
    } catch (error) {
      throw fromNativeError(error);
    }
  }

  /** The port id the kernel assigned to this socket. */
  get portId(): number {
    return this.#native.portId;
  }

  get closed(): boolean {
    return this.#native.closed;
  }

  /** Looks a family up by name; rejects with an ENOENT NetlinkError if none is registered. */
  async resolveFamily(name: string): Promise<FamilyInfo> {
    if (typeof name !== 'string') {
      throw new TypeError(`family name must be a string, got ${describe(name)}`);
    }
    return toFamily(await settle(() => this.#native.resolveFamily(name)));
  }

  /** Every generic netlink family the kernel has registered. */
  async listFamilies(): Promise<FamilyInfo[]> {
    return (await settle(() => this.#native.listFamilies())).map(toFamily);
  }

  /**
   * Sends a request (NLM_F_REQUEST | NLM_F_ACK) and resolves with the reply messages once
   * the kernel acks: none when the operation only acks.
   */
  async request(
    familyId: number,
    command: number,
    version: number,
    attributes?: Uint8Array,
    options?: RequestOptions,
  ): Promise<GenlMessage[]> {
    const args = this.#check(familyId, command, version, attributes, options);
    return toMessages(await settle(() => this.#native.request(...args)));
  }

  /**
   * Runs a dump (NLM_F_REQUEST | NLM_F_DUMP) and resolves with every message once the kernel
   * ends it. A dump that fails midway rejects (never a partial list); one the kernel flags as
   * interrupted rejects with code 'EINTR' and `dumpInterrupted: true`: retry it.
   */
  async dump(
    familyId: number,
    command: number,
    version: number,
    attributes?: Uint8Array,
    options?: RequestOptions,
  ): Promise<GenlMessage[]> {
    const args = this.#check(familyId, command, version, attributes, options);
    return toMessages(await settle(() => this.#native.dump(...args)));
  }

  /** Closes the socket. Idempotent. Pending calls reject with ECANCELED, later ones with
   *  EBADF. */
  close(): void {
    this.#native.close();
  }

  #check(
    familyId: unknown,
    command: unknown,
    version: unknown,
    attributes: unknown,
    options: unknown,
  ): [number, number, number, Uint8Array, string | undefined] {
    return [
      checkInteger('familyId', familyId, 0xffff),
      checkInteger('command', command, 0xff),
      checkInteger('version', version, 0xff),
      checkAttributes(attributes),
      checkOptions(options),
    ];
  }
}
