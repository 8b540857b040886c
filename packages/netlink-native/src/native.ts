// The shape of the Rust addon (crates/binding/src/lib.rs), written by hand so the TypeScript
// compiles without a build; the tests exercise every member, so a mismatch fails them.

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

export interface NativeGenlSocket {
  readonly portId: number;
  readonly closed: boolean;
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
}

export interface NativeBinding {
  NativeGenlSocket: new () => NativeGenlSocket;
}
