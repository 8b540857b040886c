// The TypeScript side: constants, per-set value interfaces, and the tables the attribute codec
// (packages/client/src/netlink/attributes.ts) walks to encode and decode messages.
import type { Attribute, AttributeSet, EnumDefinition, Family, Operation, SubOperation } from '../model.js';
import { camelCase, pascalCase, upperSnake } from '../model.js';
import { generatedNotice, oneLine } from './common.js';

function jsDoc(doc: string | undefined, indent = ''): string[] {
  if (doc === undefined) return [];
  return [`${indent}/** ${oneLine(doc).replace(/\*\//g, '*\\/')} */`];
}

function hex(value: number): string {
  return `0x${value.toString(16)}`;
}

function valueType(attr: Attribute): string {
  let t: string;
  switch (attr.type) {
    case 'u64':
    case 's64':
      t = attr.safeNumber ? 'number' : 'bigint';
      break;
    case 'string':
      t = 'string';
      break;
    case 'binary':
      t = 'Uint8Array';
      break;
    case 'flag':
      t = 'boolean';
      break;
    case 'nest':
      t = setInterfaceName(attr.nested as AttributeSet);
      break;
    default:
      t = 'number';
  }
  return attr.multi ? `${t}[]` : t;
}

export const setInterfaceName = (set: AttributeSet): string => `${pascalCase(set.name)}Attributes`;
export const setTableName = (set: AttributeSet): string => `${upperSnake(set.name)}_ATTRIBUTE_SET`;
export const setIdsName = (set: AttributeSet): string => `${pascalCase(set.name)}Attribute`;
export const operationTableName = (op: Operation): string => `${upperSnake(op.name)}_OPERATION`;
/** mtab-event → MtabEvent, ping → PingEvent. */
export const eventTypeName = (op: Operation): string => {
  const base = pascalCase(op.name);
  return base.endsWith('Event') ? base : `${base}Event`;
};

function literal(value: bigint | number, wide: boolean): string {
  return wide ? `${String(value)}n` : String(value);
}

function checksLiteral(attr: Attribute): string | undefined {
  const c = attr.checks;
  const wide = (attr.type === 'u64' || attr.type === 's64') && !attr.safeNumber;
  const parts: string[] = [];
  if (c.min !== undefined) parts.push(`min: ${literal(c.min.value, wide)}`);
  if (c.max !== undefined) parts.push(`max: ${literal(c.max.value, wide)}`);
  if (c.minLen !== undefined) parts.push(`minLen: ${c.minLen.value}`);
  if (c.maxLen !== undefined) parts.push(`maxLen: ${c.maxLen.value}`);
  if (c.exactLen !== undefined) parts.push(`exactLen: ${c.exactLen.value}`);
  if (c.flagsMask !== undefined) {
    parts.push(`flagsMask: ${hex(c.flagsMask.entries.reduce((m, e) => m | e.value, 0) >>> 0)}`);
  }
  return parts.length === 0 ? undefined : `{ ${parts.join(', ')} }`;
}

function enumBlock(def: EnumDefinition): string[] {
  const name = pascalCase(def.name);
  const table = `${upperSnake(def.name)}_NAMES`;
  const values = `${upperSnake(def.name)}_VALUES`;
  const value = (v: number): string => (def.kind === 'flags' ? hex(v) : String(v));
  const what = def.kind === 'flags' ? 'bits' : 'values';
  // The constant's keys are identifiers (camelCase); the names, as strings, are the spec's own.
  const out = [...jsDoc(def.doc), `export const ${name} = {`];
  for (const entry of def.entries) out.push(...jsDoc(entry.doc, '  '), `  ${camelCase(entry.name)}: ${value(entry.value)},`);
  out.push('} as const;');
  out.push(
    `/** The ${what} of ${name} by their names in the spec. */`,
    `export type ${name}Name = ${def.entries.map((e) => `'${e.name}'`).join(' | ')};`,
    `/** The spec names of the ${what} of ${name}, by ${def.kind === 'flags' ? 'bit' : 'value'}. */`,
    `export const ${table}: Readonly<Record<number, ${name}Name>> = {`,
  );
  for (const entry of def.entries) out.push(`  ${value(entry.value)}: '${entry.name}',`);
  out.push('};', `/** The ${what} of ${name} by spec name, in the spec's order. */`, `export const ${values}: Readonly<Record<${name}Name, number>> = {`);
  for (const entry of def.entries) out.push(`  '${entry.name}': ${value(entry.value)},`);
  out.push('};');
  if (def.kind === 'flags') {
    const mask = def.entries.reduce((m, e) => m | e.value, 0) >>> 0;
    out.push(`/** Every bit of ${name}. */`, `export const ${upperSnake(def.name)}_MASK = ${hex(mask)};`);
  }
  return out;
}

function keysType(set: AttributeSet, attrs: readonly Attribute[] | undefined): string {
  const keys = (attrs ?? []).map((a) => `'${camelCase(a.name)}'`);
  return `Pick<${setInterfaceName(set)}, ${keys.length === 0 ? 'never' : keys.join(' | ')}>`;
}

function keyList(attrs: readonly Attribute[] | undefined): string {
  return `[${(attrs ?? []).map((a) => `'${camelCase(a.name)}'`).join(', ')}]`;
}

function subOperationLiteral(sub: SubOperation): string {
  return `{ request: ${keyList(sub.request)}, reply: ${keyList(sub.reply)} }`;
}

export function emitTypeScript(family: Family): string {
  const out: string[] = [
    `// ${generatedNotice(family)}`,
    '',
    ...jsDoc(family.doc),
    `export const FAMILY_NAME = '${family.name}';`,
    '/** The generic netlink family version (CTRL_ATTR_VERSION). */',
    'export const FAMILY_VERSION = 1;',
  ];
  for (const def of family.consts) out.push('', ...jsDoc(def.doc), `export const ${upperSnake(def.name)} = ${def.value};`);
  for (const def of family.enums) out.push('', ...enumBlock(def));
  if (family.actionsOfType.length > 0) {
    out.push(
      '',
      '/** The actions of each event type (the spec\'s enums `<type>-action`). */',
      'export const ACTIONS_OF_TYPE = {',
      ...family.actionsOfType.map(({ type, actions }) => `  '${type.name}': [${actions.map((a) => `'${a.name}'`).join(', ')}],`),
      '} as const satisfies Readonly<Record<EventTypeName, readonly ActionName[]>>;',
      '/** The event type of each action. */',
      'export const TYPE_OF_ACTION = {',
      ...family.actionsOfType.flatMap(({ type, actions }) => actions.map((a) => `  '${a.name}': '${type.name}',`)),
      '} as const satisfies Readonly<Record<ActionName, EventTypeName>>;',
    );
  }

  out.push(
    '',
    '/** How an attribute\'s payload is encoded on the wire. */',
    "export type AttributeType = 'pad' | 'flag' | 'binary' | 'u8' | 'u16' | 'u32' | 'u64' | 's8' | 's16' | 's32' | 's64' | 'string' | 'nest';",
    '',
    '/** The kernel\'s input validation of an attribute (the spec\'s checks), also applied on encode. */',
    'export interface AttributeChecks {',
    '  readonly min?: number | bigint;',
    '  readonly max?: number | bigint;',
    '  readonly minLen?: number;',
    '  readonly maxLen?: number;',
    '  readonly exactLen?: number;',
    '  /** Only these bits may be set. */',
    '  readonly flagsMask?: number;',
    '}',
    '',
    'export interface AttributeSpec {',
    '  /** The attribute id (nla_type). */',
    '  readonly id: number;',
    '  /** The name in the spec. */',
    '  readonly name: string;',
    '  /** The property that holds the value in decoded objects. */',
    '  readonly key: string;',
    '  readonly type: AttributeType;',
    '  /** Network byte order instead of host order. */',
    '  readonly bigEndian: boolean;',
    '  /** May appear several times; the value is an array. */',
    '  readonly multi: boolean;',
    '  readonly nested?: AttributeSetSpec<object>;',
    '  readonly checks?: AttributeChecks;',
    '  /** A 64-bit attribute the spec bounds below 2^53: a number in JavaScript, converted by the codec. */',
    '  readonly safeNumber?: true;',
    '}',
    '',
    '/** An attribute set; T is the type of the objects it encodes and decodes. */',
    'export interface AttributeSetSpec<T extends object = object> {',
    '  readonly name: string;',
    '  readonly attributes: readonly AttributeSpec[];',
    '  /** Never present at run time: ties the table to its value type for the codec. */',
    '  readonly valueType?: T;',
    '}',
  );

  for (const set of family.attributeSets) {
    const iface = setInterfaceName(set);
    out.push('', ...jsDoc(`Attribute set "${set.name}": ${set.doc}`), `export interface ${iface} {`);
    for (const attr of set.attributes) {
      if (attr.type === 'pad') continue;
      out.push(...jsDoc(attr.doc, '  '), `  ${camelCase(attr.name)}?: ${valueType(attr)};`);
    }
    out.push('}');
    out.push('', `/** Attribute ids of the set "${set.name}". */`, `export const ${setIdsName(set)} = {`);
    for (const attr of set.attributes) out.push(`  ${camelCase(attr.name)}: ${attr.value},`);
    out.push('} as const;');
    out.push('', `export const ${setTableName(set)}: AttributeSetSpec<${iface}> = {`, `  name: '${set.name}',`, '  attributes: [');
    for (const attr of set.attributes) {
      const fields = [
        `id: ${attr.value}`,
        `name: '${attr.name}'`,
        `key: '${camelCase(attr.name)}'`,
        `type: '${attr.type}'`,
        `bigEndian: ${attr.bigEndian}`,
        `multi: ${attr.multi}`,
      ];
      if (attr.nested !== undefined) fields.push(`nested: ${setTableName(attr.nested)}`);
      if (attr.safeNumber) fields.push('safeNumber: true');
      const checks = checksLiteral(attr);
      if (checks !== undefined) fields.push(`checks: ${checks}`);
      out.push(`    { ${fields.join(', ')} },`);
    }
    out.push('  ],', '};');
  }
  out.push('', 'export const ATTRIBUTE_SETS = {');
  for (const set of family.attributeSets) out.push(`  ${camelCase(set.name)}: ${setTableName(set)},`);
  out.push('} as const;');

  out.push('', '/** Command numbers (genlmsghdr.cmd) of the operations. */', 'export const Command = {');
  for (const op of family.operations) out.push(...jsDoc(op.doc, '  '), `  ${camelCase(op.name)}: ${op.value},`);
  out.push('} as const;', 'export type CommandName = keyof typeof Command;');

  out.push('', '/** Multicast groups, by the name the kernel registers them under. */', 'export const MulticastGroup = {');
  for (const group of family.mcastGroups) out.push(...jsDoc(group.doc, '  '), `  ${camelCase(group.name)}: '${group.name}',`);
  out.push('} as const;', 'export type MulticastGroupName = (typeof MulticastGroup)[keyof typeof MulticastGroup];');

  out.push(
    '',
    "export type Permission = 'admin-perm' | 'uns-admin-perm';",
    '',
    '/** Which attributes (by key) a request and its reply carry. */',
    'export interface MessageSpec {',
    '  readonly request: readonly string[];',
    '  readonly reply: readonly string[];',
    '}',
    '',
    'export interface OperationSpec {',
    '  readonly name: string;',
    '  readonly command: number;',
    '  readonly attributeSet?: AttributeSetSpec<object>;',
    '  /** CAP_NET_ADMIN needed: admin-perm in the initial user namespace, uns-admin-perm in the socket\'s. */',
    '  readonly permissions: readonly Permission[];',
    '  readonly do?: MessageSpec;',
    '  readonly dump?: MessageSpec;',
    '  /** For events: the attributes the event carries. */',
    '  readonly event?: readonly string[];',
    '  /** For notifications: the operation whose reply they share. */',
    '  readonly notify?: string;',
    '  readonly mcastGroup?: MulticastGroupName;',
    '}',
  );
  for (const op of family.operations) {
    const fields = [`name: '${op.name}'`, `command: ${op.value}`];
    if (op.attributeSet !== undefined) fields.push(`attributeSet: ${setTableName(op.attributeSet)}`);
    fields.push(`permissions: [${op.permissions.map((p) => `'${p}'`).join(', ')}]`);
    if (op.do !== undefined) fields.push(`do: ${subOperationLiteral(op.do)}`);
    if (op.dump !== undefined) fields.push(`dump: ${subOperationLiteral(op.dump)}`);
    if (op.event !== undefined) fields.push(`event: ${keyList(op.event)}`);
    if (op.notify !== undefined) fields.push(`notify: '${op.notify}'`);
    if (op.mcastGroup !== undefined) fields.push(`mcastGroup: '${op.mcastGroup.name}'`);
    out.push('', ...jsDoc(op.doc), `export const ${operationTableName(op)} = {`);
    for (const f of fields) out.push(`  ${f},`);
    out.push('} as const satisfies OperationSpec;');
    const base = pascalCase(op.name);
    const set = op.attributeSet;
    if (set !== undefined) {
      if (op.do !== undefined) {
        out.push(`export type ${base}Request = ${keysType(set, op.do.request)};`);
        out.push(`export type ${base}Reply = ${keysType(set, op.do.reply)};`);
      }
      if (op.dump !== undefined) {
        out.push(`export type ${base}DumpRequest = ${keysType(set, op.dump.request)};`);
        out.push(`export type ${base}DumpReply = ${keysType(set, op.dump.reply)};`);
      }
      if (op.event !== undefined) out.push(`export type ${eventTypeName(op)} = ${keysType(set, op.event)};`);
    }
  }
  out.push('', 'export const OPERATIONS = {');
  for (const op of family.operations) out.push(`  ${camelCase(op.name)}: ${operationTableName(op)},`);
  out.push('} as const;');

  const events = family.operations.filter((op) => op.event !== undefined && op.attributeSet !== undefined);
  if (events.length > 0) {
    const union = `${pascalCase(family.name)}Event`;
    out.push(
      '',
      `/** Every event the family sends, told apart by \`kind\` (the name of its operation). */`,
      `export type ${union} =`,
      ...events.map((op, i) => `  | ({ readonly kind: '${op.name}' } & ${eventTypeName(op)})${i === events.length - 1 ? ';' : ''}`),
      `export type ${union}Kind = ${union}['kind'];`,
      '',
      '/** The event operations by command number, to decode an incoming notification. */',
      'export const EVENT_OPERATIONS: Readonly<Record<number, OperationSpec>> = {',
      ...events.map((op) => `  ${op.value}: ${operationTableName(op)},`),
      '};',
    );
  }
  out.push('');
  return out.join('\n');
}
