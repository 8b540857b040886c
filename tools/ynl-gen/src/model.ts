// The resolved form of a spec that the emitters work from: every name looked up, every implicit
// value (attribute ids, command numbers, flag bits) made explicit, every C and TS name computed
// once here so that all outputs agree.
import type { ATTRIBUTE_TYPES } from './schema.js';

export type AttributeType = (typeof ATTRIBUTE_TYPES)[number];

export type IntegerType = 'u8' | 'u16' | 'u32' | 'u64' | 's8' | 's16' | 's32' | 's64';

export const INTEGER_TYPES: readonly IntegerType[] = ['u8', 'u16', 'u32', 'u64', 's8', 's16', 's32', 's64'];

export function isIntegerType(type: AttributeType): type is IntegerType {
  return (INTEGER_TYPES as readonly string[]).includes(type);
}

export function isSignedType(type: IntegerType): boolean {
  return type.startsWith('s');
}

export function integerBits(type: IntegerType): number {
  return Number(type.slice(1));
}

/** The smallest and largest value of a fixed-width integer type. */
export function integerBounds(type: IntegerType): { min: bigint; max: bigint } {
  const bits = BigInt(integerBits(type));
  if (isSignedType(type)) return { min: -(1n << (bits - 1n)), max: (1n << (bits - 1n)) - 1n };
  return { min: 0n, max: (1n << bits) - 1n };
}

export interface ConstDefinition {
  readonly kind: 'const';
  readonly name: string;
  readonly doc: string;
  readonly value: number;
  /** The C macro, e.g. USIP_PROTOCOL_VERSION. */
  readonly cName: string;
  /** uapi: in every output; user: in the TypeScript output and the docs, not in the C files. */
  readonly scope: DefinitionScope;
}

export type DefinitionScope = 'uapi' | 'user';

export interface EnumEntry {
  readonly name: string;
  readonly doc: string | undefined;
  /** The numeric value; for flags the bit mask (1 << position), not the position. */
  readonly value: number;
  readonly cName: string;
}

export interface EnumDefinition {
  readonly kind: 'enum' | 'flags';
  readonly name: string;
  readonly doc: string;
  /** The C enum tag without `enum `, e.g. usip_feature. */
  readonly cEnumName: string;
  readonly entries: readonly EnumEntry[];
  readonly renderMax: boolean;
  /** With render-max: the C names of the max (enum) or mask (flags) members. */
  readonly cMaxName: string;
  readonly cCountName: string;
  readonly scope: DefinitionScope;
}

export type Definition = ConstDefinition | EnumDefinition;

/** A length from the checks: a number, possibly written as the name of a const definition. */
export interface LengthCheck {
  readonly value: number;
  readonly define: ConstDefinition | undefined;
}

/**
 * A bound from the checks: a number, possibly written as a type limit such as u32-max or as the
 * name of a const definition such as mount-id-max.
 */
export interface LimitCheck {
  readonly value: bigint;
  /** The spelling in the spec when it was a named limit (u32-max, mount-id-max), for the docs and C. */
  readonly named: string | undefined;
  /** The const definition it names, if it names one. */
  readonly define?: ConstDefinition | undefined;
}

/** The largest integer a JavaScript number holds exactly (Number.MAX_SAFE_INTEGER). */
export const MAX_SAFE_INTEGER = 2n ** 53n - 1n;

export interface Checks {
  readonly min: LimitCheck | undefined;
  readonly max: LimitCheck | undefined;
  readonly minLen: LengthCheck | undefined;
  readonly maxLen: LengthCheck | undefined;
  readonly exactLen: LengthCheck | undefined;
  readonly flagsMask: EnumDefinition | undefined;
}

export interface Attribute {
  readonly name: string;
  readonly doc: string;
  readonly type: AttributeType;
  /** The attribute id (nla_type). */
  readonly value: number;
  readonly cName: string;
  readonly bigEndian: boolean;
  readonly multi: boolean;
  readonly nested: AttributeSet | undefined;
  readonly enumDef: EnumDefinition | undefined;
  readonly enumAsFlags: boolean;
  readonly displayHint: string | undefined;
  readonly checks: Checks;
  /**
   * A 64-bit attribute whose checks bound it within Number.MAX_SAFE_INTEGER (e.g. `max:
   * mount-id-max`): TypeScript holds it as a number, not a bigint, and the codec converts.
   */
  readonly safeNumber: boolean;
}

export interface AttributeSet {
  readonly name: string;
  readonly doc: string;
  /** Anonymous when undefined (the kernel's default). */
  readonly cEnumName: string | undefined;
  readonly cMaxName: string;
  readonly cCountName: string;
  readonly attributes: readonly Attribute[];
  /** The largest attribute id of the set. */
  readonly maxValue: number;
}

export type Permission = 'admin-perm' | 'uns-admin-perm';

export interface SubOperation {
  readonly request: readonly Attribute[] | undefined;
  readonly reply: readonly Attribute[] | undefined;
}

export interface Operation {
  readonly name: string;
  readonly doc: string;
  readonly value: number;
  readonly cName: string;
  readonly attributeSet: AttributeSet | undefined;
  readonly permissions: readonly Permission[];
  readonly do: SubOperation | undefined;
  readonly dump: SubOperation | undefined;
  /** For notifications: the operation whose reply format this notification shares. */
  readonly notify: string | undefined;
  /** For events: the attributes the event carries. */
  readonly event: readonly Attribute[] | undefined;
  readonly mcastGroup: McastGroup | undefined;
  /** C names of the kernel handlers, present when the op has do/dump. */
  readonly cDoit: string | undefined;
  readonly cDumpit: string | undefined;
  /**
   * C names of the dump's `pre` and `post` hooks (the op's .start and .done callbacks, which
   * take the struct netlink_callback), e.g. usip_nl_mount_get_dump_start; present when given.
   */
  readonly cDumpStart: string | undefined;
  readonly cDumpDone: string | undefined;
}

/**
 * A multicast group's `flags`, as the kernel's schema allows them. This generator maps
 * `admin-perm` on a group to GENL_MCAST_CAP_SYS_ADMIN: joining needs CAP_SYS_ADMIN in the user
 * namespace that owns the socket's network namespace (the kernel's own ynl-gen-c ignores group
 * flags).
 */
export type McastPermission = 'admin-perm';

export interface McastGroup {
  readonly name: string;
  /**
   * Written by the generator, not the spec (the kernel's schema has no doc on a group): the
   * operations the group carries and who may join it. What the events are is in those
   * operations' docs.
   */
  readonly doc: string;
  /** Names of the operations (events, notifications) whose `mcgrp` is this group, in spec order. */
  readonly operations: readonly string[];
  /** Capabilities (in the user namespace owning the socket's network namespace) needed to join. */
  readonly permissions: readonly McastPermission[];
  /** Index into the family's multicast group table. */
  readonly index: number;
  /** The uapi macro with the group's name string, e.g. USIP_MCGRP_MTAB. */
  readonly cName: string;
  /** The kernel-side index enum member, e.g. USIP_NLGRP_MTAB. */
  readonly cIndexName: string;
}

export interface Family {
  readonly name: string;
  readonly doc: string;
  /** The spec's path as written in the generated notices, relative to the package root. */
  readonly specLabel: string;
  /** Where the uapi header is included from, e.g. linux/usip.h. */
  readonly uapiHeader: string;
  /** Upper-case C prefix, e.g. USIP. */
  readonly cPrefix: string;
  /** Lower-case C prefix for kernel symbols, e.g. usip. */
  readonly cSymbolPrefix: string;
  readonly consts: readonly ConstDefinition[];
  readonly enums: readonly EnumDefinition[];
  readonly definitions: readonly Definition[];
  /** In dependency order: a set comes after every set nested in it. */
  readonly attributeSets: readonly AttributeSet[];
  readonly operations: readonly Operation[];
  readonly cCmdMaxName: string;
  readonly cCmdCountName: string;
  readonly cCmdEnumName: string | undefined;
  readonly mcastGroups: readonly McastGroup[];
  /**
   * Which actions belong to which event type, read from the enums `<type>-action` (one per entry
   * of the enum `event-type`, each a subset of the enum `action` with the same values); empty
   * when the spec has no `event-type` and `action` enums.
   */
  readonly actionsOfType: readonly { readonly type: EnumEntry; readonly actions: readonly EnumEntry[] }[];
}

/** usip-a-ping- → USIP_A_PING_ */
/** Who may join a multicast group with these flags: "any user", or the capability it needs. */
export function mcastJoinText(permissions: readonly McastPermission[]): string {
  return permissions.includes('admin-perm') ? "CAP_SYS_ADMIN in the user namespace that owns the socket's network namespace" : 'any user';
}

export function cMacro(name: string): string {
  return name.toUpperCase().replace(/-/g, '_');
}

/** usip-feature → usip_feature */
export function cIdentifier(name: string): string {
  return name.toLowerCase().replace(/-/g, '_');
}

/** protocol-version → protocolVersion */
export function camelCase(name: string): string {
  return name.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** protocol-version → ProtocolVersion */
export function pascalCase(name: string): string {
  const camel = camelCase(name);
  return camel.charAt(0).toUpperCase() + camel.slice(1);
}

/** protocol-version → PROTOCOL_VERSION */
export function upperSnake(name: string): string {
  return cMacro(name);
}
