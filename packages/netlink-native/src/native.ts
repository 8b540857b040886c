// The shape of the Rust addon (crates/binding/src/lib.rs), written by hand so the TypeScript
// compiles without a build. napi-rs generates the same declarations from the Rust when it
// builds the addon (dist/native.generated.d.ts); test/native-types.test.ts compiles
// types-check/native.ts, which fails when the two disagree.

export interface NativeOperation {
  id: number;
  flags: number;
}

export interface NativeMulticastGroup {
  name: string;
  id: number;
}

export interface NativeFamilyInfo {
  id: number;
  name: string;
  version: number;
  headerSize: number;
  maxAttr: number;
  operations: NativeOperation[];
  multicastGroups: NativeMulticastGroup[];
}

/** One reply: every message's bytes in `payload`; `layout` has four numbers per message:
 *  command, version, start and end of its attributes in `payload`. */
export interface NativeMessageBatch {
  payload: Buffer;
  layout: Uint32Array;
}

/** Notifications taken together: seven numbers per notification in `layout`: kind (0 message,
 *  1 overrun with a known count, 2 overrun reported by the kernel), then for a message: family
 *  id, command, version, group, start and end of its attributes in `payload`; for a kind-1
 *  overrun: 0, 0, 0, 0, and the count's low and high 32 bits; for kind 2: zeros. */
export interface NativeNotificationBatch {
  payload: Buffer;
  layout: Uint32Array;
}

export interface NativeGenlSocket {
  readonly portId: number;
  readonly closed: boolean;
  readonly receiveBufferSize: number;
  close(): void;
  resolveFamily(name: string): Promise<NativeFamilyInfo>;
  listFamilies(): Promise<NativeFamilyInfo[]>;
  request(
    familyId: number,
    command: number,
    version: number,
    attributes: Uint8Array,
    label?: string,
  ): Promise<NativeMessageBatch>;
  dump(
    familyId: number,
    command: number,
    version: number,
    attributes: Uint8Array,
    label?: string,
  ): Promise<NativeMessageBatch>;
  /** Resolves with the group's id. */
  joinGroup(family: string, group: string): Promise<number>;
  leaveGroup(family: string, group: string): Promise<number>;
  setReceiveBufferSize(bytes: number, force: boolean): void;
  /** The notifications queued by then (at least one), or null once the socket is closed. */
  nextNotifications(): Promise<NativeNotificationBatch | null>;
  /** As nextNotifications, with the replies to the follow-up requests made on `requester`. */
  nextNotificationsFollowed(requester: NativeGenlSocket, followUp: NativeFollowUp, limit: number): Promise<NativeFollowedBatch | null>;
}

/** Which events get a request: `keys` are [event attribute, request attribute] pairs, flat. */
export interface NativeFollowUp {
  familyId: number;
  eventCommand: number;
  requestCommand: number;
  version: number;
  keys: number[];
  skipAttribute?: number;
  skipValues: number[];
  minimumAttribute?: number;
  minimum?: number;
  label: string;
}

/** A NativeNotificationBatch, and in `replyLayout` three numbers per notification: 0 (no
 *  request); 1, start and end of its reply's attributes in `replies`; 2 and the errno. */
export interface NativeFollowedBatch {
  payload: Buffer;
  layout: Uint32Array;
  replies: Buffer;
  replyLayout: Int32Array;
}

export interface NativeBinding extends NativeMountBinding, NativeSystemdBinding {
  NativeGenlSocket: new (notificationQueueLimit?: number) => NativeGenlSocket;
}

// The mount APIs (crates/binding/src/mounts.rs). Fields the kernel did not answer are undefined.
export interface NativeKernelMount {
  id?: number;
  parentId?: number;
  uniqueId?: bigint;
  parentUniqueId?: bigint;
  major?: number;
  minor?: number;
  root?: string;
  mountPoint?: string;
  mountAttr?: bigint;
  propagation?: bigint;
  peerGroup?: number;
  master?: number;
  propagateFrom?: number;
  fsType?: string;
  source?: string;
  mountOptions?: string;
  sbFlags?: number;
  sbMagic?: bigint;
  mntNsId?: bigint;
}

export interface NativeMountApiSupport {
  listmount: boolean;
  statmount: boolean;
  statmountMask: bigint;
  fanotifyMount: { available: boolean; reason?: string };
}

export interface NativeMountinfoBatch {
  generation: number;
  added: string[];
  removed: number[];
  changed: string[];
  lines: number;
  wakeups: number;
  reread: boolean;
}

export interface NativeMountinfoWatch {
  readonly closed: boolean;
  close(): void;
  requestRead(): void;
  next(): Promise<NativeMountinfoBatch | null>;
}

export interface NativeMountEventBatch {
  events: Array<{ kind: string; uniqueId: bigint }>;
  overflow: boolean;
  mounts?: Array<NativeKernelMount | undefined | null>;
}

export interface NativeFanotifyMountWatch {
  readonly closed: boolean;
  close(): void;
  next(): Promise<NativeMountEventBatch | null>;
}

export interface NativeStatfs {
  type: bigint;
  blockSize: bigint;
  fragmentSize: bigint;
  blocks: bigint;
  blocksFree: bigint;
  blocksAvailable: bigint;
  files: bigint;
  filesFree: bigint;
  fsid: bigint;
  nameMax: bigint;
  flags: bigint;
}

export interface NativeMountBinding {
  mountApiSupport(): NativeMountApiSupport;
  listKernelMounts(): Promise<NativeKernelMount[]>;
  statKernelMount(uniqueId: bigint): Promise<NativeKernelMount | null>;
  NativeMountinfoWatch: new (path: string, onRequest?: boolean) => NativeMountinfoWatch;
  NativeFanotifyMountWatch: new (nsPath?: string, statmount?: boolean) => NativeFanotifyMountWatch;
  statfsPath(path: string, timeoutMs?: number): Promise<NativeStatfs>;
}

// sd_notify(3) (crates/binding/src/systemd.rs): Node cannot send on a unix datagram socket.
export interface NativeSystemdBinding {
  notifySystemd(state: string): boolean;
}
