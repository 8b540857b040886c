// Semantic checks that a JSON Schema cannot express (references between parts of the spec,
// unique names and values, which checks fit which types) and resolution into the model.
import { joinPointer, type SpecProblem } from './errors.js';
import {
  cIdentifier,
  cMacro,
  integerBounds,
  isIntegerType,
  isSignedType,
  mcastJoinText,
  MAX_SAFE_INTEGER,
  type Attribute,
  type AttributeSet,
  type AttributeType,
  type Checks,
  type ConstDefinition,
  type Definition,
  type EnumDefinition,
  type EnumEntry,
  type Family,
  type IntegerType,
  type LengthCheck,
  type LimitCheck,
  type McastGroup,
  type Operation,
  type Permission,
  type SubOperation,
} from './model.js';

// The shapes below are what the JSON Schema has already guaranteed.
interface RawEntry {
  name: string;
  value?: number;
  doc?: string;
}
interface RawDefinition {
  type: 'const' | 'enum' | 'flags';
  name: string;
  doc: string;
  value?: number;
  'value-start'?: number;
  'name-prefix'?: string;
  'enum-name'?: string;
  'render-max'?: boolean;
  scope?: 'uapi' | 'user';
  entries?: (string | RawEntry)[];
}
interface RawChecks {
  'flags-mask'?: string;
  min?: number | string;
  max?: number | string;
  'min-len'?: number | string;
  'max-len'?: number | string;
  'exact-len'?: number | string;
}
interface RawAttribute {
  name: string;
  type: AttributeType;
  doc: string;
  value?: number;
  'byte-order'?: 'little-endian' | 'big-endian';
  'multi-attr'?: boolean;
  'nested-attributes'?: string;
  enum?: string;
  'enum-as-flags'?: boolean;
  'display-hint'?: string;
  checks?: RawChecks;
}
interface RawAttributeSet {
  name: string;
  doc: string;
  'name-prefix'?: string;
  'enum-name'?: string;
  attributes: RawAttribute[];
}
interface RawAttributeList {
  attributes: string[];
}
interface RawSubOperation {
  request?: RawAttributeList;
  reply?: RawAttributeList;
  pre?: string;
  post?: string;
}
interface RawOperation {
  name: string;
  doc: string;
  value?: number;
  'attribute-set'?: string;
  flags?: Permission[];
  do?: RawSubOperation;
  dump?: RawSubOperation;
  notify?: string;
  event?: RawAttributeList;
  mcgrp?: string;
}
export interface RawSpec {
  name: string;
  protocol: 'genetlink';
  doc: string;
  'uapi-header'?: string;
  definitions?: RawDefinition[];
  'attribute-sets': RawAttributeSet[];
  operations: {
    'name-prefix'?: string;
    'enum-name'?: string;
    list: RawOperation[];
  };
  'mcast-groups'?: { list: { name: string; flags?: 'admin-perm'[] }[] };
}

export type ResolveResult = { ok: true; family: Family } | { ok: false; problems: SpecProblem[] };

/** Largest flag bit: flags travel in u32 attributes and must stay exact as JS numbers. */
const MAX_FLAG_BIT = 31;

class Resolver {
  readonly problems: SpecProblem[] = [];

  constructor(readonly file: string) {}

  fail(pointer: string, rule: string, message: string): void {
    this.problems.push({ file: this.file, pointer, rule, message });
  }

  /** Reports every name that appears more than once in a list. */
  unique<T>(items: readonly T[], name: (item: T) => string, base: string, what: string, key = 'name'): void {
    const first = new Map<string, number>();
    items.forEach((item, index) => {
      const n = name(item);
      const before = first.get(n);
      if (before === undefined) first.set(n, index);
      else this.fail(joinPointer(base, index, key), 'unique-name', `${what} "${n}" is already defined at ${joinPointer(base, before)}`);
    });
  }
}

const TYPE_LIMIT = /^[su](8|16|32|64)-(min|max)$/;

/** A 64-bit attribute whose checks keep it within Number.MAX_SAFE_INTEGER either way. */
function safeNumber(type: AttributeType, checks: Checks): boolean {
  if (type !== 'u64' && type !== 's64') return false;
  const max = checks.max?.value;
  const min = type === 'u64' ? 0n : checks.min?.value;
  return max !== undefined && max <= MAX_SAFE_INTEGER && min !== undefined && min >= -MAX_SAFE_INTEGER;
}

export function resolveSpec(raw: RawSpec, options: { file: string; specLabel: string }): ResolveResult {
  const r = new Resolver(options.file);
  const prefix = cMacro(raw.name);
  const symbolPrefix = cIdentifier(raw.name);

  // Definitions.
  const rawDefinitions = raw.definitions ?? [];
  r.unique(rawDefinitions, (d) => d.name, '/definitions', 'definition');
  const definitions: Definition[] = [];
  const definitionsByName = new Map<string, Definition>();
  rawDefinitions.forEach((d, index) => {
    const at = joinPointer('/definitions', index);
    let def: Definition;
    if (d.type === 'const') {
      if (d.value === undefined) r.fail(at, 'const-value', `const "${d.name}" needs a value`);
      for (const key of ['entries', 'value-start', 'render-max', 'name-prefix', 'enum-name'] as const) {
        if (d[key] !== undefined) r.fail(joinPointer(at, key), 'const-keys', `"${key}" is for enum and flags definitions, not for const "${d.name}"`);
      }
      def = { kind: 'const', name: d.name, doc: d.doc, value: d.value ?? 0, cName: `${prefix}_${cMacro(d.name)}`, scope: d.scope ?? 'uapi' };
    } else {
      if (d.value !== undefined) r.fail(joinPointer(at, 'value'), 'enum-keys', `"value" is for const definitions; ${d.type} "${d.name}" takes "entries"`);
      if (d.entries === undefined) r.fail(at, 'enum-entries', `${d.type} "${d.name}" needs "entries"`);
      const entryPrefix = d['name-prefix'] !== undefined ? cMacro(d['name-prefix']) : `${prefix}_${cMacro(d.name)}_`;
      const rawEntries = (d.entries ?? []).map((e) => (typeof e === 'string' ? { name: e } : e));
      r.unique(rawEntries, (e) => e.name, joinPointer(at, 'entries'), 'entry');
      let next = d['value-start'] ?? 0;
      const seenValues = new Map<number, number>();
      const entries: EnumEntry[] = rawEntries.map((e, entryIndex) => {
        const position = e.value ?? next;
        next = position + 1;
        const entryAt = joinPointer(at, 'entries', entryIndex);
        const before = seenValues.get(position);
        if (before !== undefined) r.fail(entryAt, 'unique-value', `entry "${e.name}" has the value ${position} of entry ${before}`);
        seenValues.set(position, entryIndex);
        if (d.type === 'flags' && position > MAX_FLAG_BIT) r.fail(entryAt, 'flag-bit', `flag "${e.name}" would be bit ${position}; flags must fit in 32 bits`);
        const value = d.type === 'flags' ? 2 ** position : position;
        return { name: e.name, doc: e.doc, value, cName: `${entryPrefix}${cMacro(e.name)}` };
      });
      def = {
        kind: d.type,
        name: d.name,
        doc: d.doc,
        cEnumName: cIdentifier(d['enum-name'] ?? `${raw.name}-${d.name}`),
        entries,
        renderMax: d['render-max'] ?? false,
        cMaxName: d.type === 'flags' ? `${entryPrefix}MASK` : `${entryPrefix}MAX`,
        cCountName: `__${entryPrefix}MAX`,
        scope: d.scope ?? 'uapi',
      };
    }
    definitions.push(def);
    if (!definitionsByName.has(d.name)) definitionsByName.set(d.name, def);
  });

  const lookupEnum = (name: string, at: string, wantFlags: boolean): EnumDefinition | undefined => {
    const def = definitionsByName.get(name);
    if (def === undefined || def.kind === 'const') {
      r.fail(at, 'reference', `"${name}" is not an enum or flags definition`);
      return undefined;
    }
    if (wantFlags && def.kind !== 'flags') {
      r.fail(at, 'reference', `"${name}" is an enum; a flags-mask needs a flags definition`);
      return undefined;
    }
    return def;
  };
  const parseLimit = (raw: number | string, at: string): LimitCheck => {
    if (typeof raw === 'number') return { value: BigInt(raw), named: undefined };
    if (TYPE_LIMIT.test(raw)) {
      const [type, bound] = raw.split('-') as [IntegerType, 'min' | 'max'];
      const bounds = integerBounds(type);
      return { value: bound === 'min' ? bounds.min : bounds.max, named: raw };
    }
    const def = definitionsByName.get(raw);
    if (def === undefined || def.kind !== 'const') {
      r.fail(at, 'reference', `"${raw}" is neither a type limit (such as u32-max) nor a const definition`);
      return { value: 0n, named: undefined };
    }
    if (def.scope !== 'uapi') r.fail(at, 'reference', `const "${raw}" bounds a kernel policy, so it must be in the uapi header (scope uapi)`);
    return { value: BigInt(def.value), named: raw, define: def };
  };
  const lookupLength = (rawLen: number | string, at: string): LengthCheck => {
    if (typeof rawLen === 'number') return { value: rawLen, define: undefined };
    const def = definitionsByName.get(rawLen);
    if (def === undefined || def.kind !== 'const') {
      r.fail(at, 'reference', `"${rawLen}" is not a const definition`);
      return { value: 0, define: undefined };
    }
    if (def.value < 0) r.fail(at, 'length', `const "${rawLen}" is negative and cannot be a length`);
    return { value: def.value, define: def };
  };

  // Attribute sets: first their names (nests may point forward), then their attributes.
  const rawSets = raw['attribute-sets'];
  r.unique(rawSets, (s) => s.name, '/attribute-sets', 'attribute set');
  const rawSetIndex = new Map<string, number>();
  rawSets.forEach((s, i) => {
    if (!rawSetIndex.has(s.name)) rawSetIndex.set(s.name, i);
  });

  const resolvedSets = new Map<string, AttributeSet>();
  const visiting = new Set<string>();
  const ordered: AttributeSet[] = [];

  const resolveSet = (index: number, chain: string[]): AttributeSet | undefined => {
    const s = rawSets[index];
    if (s === undefined) return undefined;
    const done = resolvedSets.get(s.name);
    if (done !== undefined) return done;
    const at = joinPointer('/attribute-sets', index);
    if (visiting.has(s.name)) {
      r.fail(at, 'nest-cycle', `attribute sets nest in a cycle: ${[...chain, s.name].join(' → ')}`);
      return undefined;
    }
    visiting.add(s.name);
    const namePrefix = cMacro(s['name-prefix'] ?? `${raw.name}-a-${s.name}-`);
    r.unique(s.attributes, (a) => a.name, joinPointer(at, 'attributes'), 'attribute');
    let next = 1;
    const seenIds = new Map<number, string>();
    let pads = 0;
    const attributes: Attribute[] = [];
    s.attributes.forEach((a, attrIndex) => {
      const attrAt = joinPointer(at, 'attributes', attrIndex);
      const value = a.value ?? next;
      next = value + 1;
      const clash = seenIds.get(value);
      if (clash !== undefined) r.fail(attrAt, 'unique-value', `attribute "${a.name}" has id ${value}, already used by "${clash}"`);
      seenIds.set(value, a.name);

      let nested: AttributeSet | undefined;
      if (a.type === 'nest') {
        const target = a['nested-attributes'];
        const targetIndex = target === undefined ? undefined : rawSetIndex.get(target);
        if (target === undefined) r.fail(attrAt, 'nested-attributes', `nest "${a.name}" needs "nested-attributes" naming an attribute set`);
        else if (targetIndex === undefined) r.fail(joinPointer(attrAt, 'nested-attributes'), 'reference', `"${target}" is not an attribute set`);
        else nested = resolveSet(targetIndex, [...chain, s.name]);
      } else if (a['nested-attributes'] !== undefined) {
        r.fail(joinPointer(attrAt, 'nested-attributes'), 'nested-attributes', `only nest attributes have nested attributes, "${a.name}" is ${a.type}`);
      }

      if (a.type === 'pad') {
        pads += 1;
        for (const key of ['checks', 'multi-attr', 'enum', 'byte-order'] as const) {
          if (a[key] !== undefined) r.fail(joinPointer(attrAt, key), 'pad', `pad attribute "${a.name}" carries no value and takes no "${key}"`);
        }
      }
      const bigEndian = a['byte-order'] === 'big-endian';
      if (bigEndian && a.type !== 'u16' && a.type !== 'u32') {
        r.fail(joinPointer(attrAt, 'byte-order'), 'byte-order', `big-endian is supported for u16 and u32 only (NLA_BE16/NLA_BE32), "${a.name}" is ${a.type}`);
      }
      let enumDef: EnumDefinition | undefined;
      if (a.enum !== undefined) {
        if (!isIntegerType(a.type) || isSignedType(a.type)) r.fail(joinPointer(attrAt, 'enum'), 'enum', `only unsigned integer attributes can use an enum, "${a.name}" is ${a.type}`);
        enumDef = lookupEnum(a.enum, joinPointer(attrAt, 'enum'), false);
      }
      if (a['enum-as-flags'] !== undefined && a.enum === undefined) {
        r.fail(joinPointer(attrAt, 'enum-as-flags'), 'enum-as-flags', `"enum-as-flags" needs "enum" on attribute "${a.name}"`);
      }
      const checks = resolveChecks(a, attrAt);
      attributes.push({
        name: a.name,
        doc: a.doc,
        type: a.type,
        value,
        cName: `${namePrefix}${cMacro(a.name)}`,
        bigEndian,
        multi: a['multi-attr'] ?? false,
        nested,
        enumDef,
        enumAsFlags: a['enum-as-flags'] ?? enumDef?.kind === 'flags',
        displayHint: a['display-hint'],
        checks,
        safeNumber: safeNumber(a.type, checks),
      });
    });
    if (pads > 1) r.fail(at, 'pad', `attribute set "${s.name}" has ${pads} pad attributes; one is enough`);
    const wide = attributes.find((a) => a.type === 'u64' || a.type === 's64');
    if (wide !== undefined && pads === 0) {
      r.fail(at, 'u64-needs-pad', `attribute set "${s.name}" has the 64-bit attribute "${wide.name}" but no pad attribute; the kernel aligns 64-bit attributes with one (nla_put_u64_64bit)`);
    }
    visiting.delete(s.name);
    const set: AttributeSet = {
      name: s.name,
      doc: s.doc,
      cEnumName: s['enum-name'] === undefined ? undefined : cIdentifier(s['enum-name']),
      cMaxName: `${namePrefix}MAX`,
      cCountName: `__${namePrefix}MAX`,
      attributes,
      maxValue: Math.max(0, ...attributes.map((a) => a.value)),
    };
    resolvedSets.set(s.name, set);
    ordered.push(set);
    return set;
  };

  function resolveChecks(a: RawAttribute, attrAt: string): Checks {
    const c = a.checks ?? {};
    const at = joinPointer(attrAt, 'checks');
    const integer = isIntegerType(a.type);
    const onlyFor = (key: keyof RawChecks, ok: boolean, what: string): boolean => {
      if (c[key] === undefined) return false;
      if (!ok) {
        r.fail(joinPointer(at, key), 'checks', `"${key}" applies to ${what}, not to ${a.type} attribute "${a.name}"`);
        return false;
      }
      return true;
    };
    let min: LimitCheck | undefined;
    let max: LimitCheck | undefined;
    if (onlyFor('min', integer, 'integer attributes')) min = parseLimit(c.min as number | string, joinPointer(at, 'min'));
    if (onlyFor('max', integer, 'integer attributes')) max = parseLimit(c.max as number | string, joinPointer(at, 'max'));
    if (integer) {
      const bounds = integerBounds(a.type as IntegerType);
      for (const [key, limit] of [['min', min], ['max', max]] as const) {
        if (limit !== undefined && (limit.value < bounds.min || limit.value > bounds.max)) {
          r.fail(joinPointer(at, key), 'checks', `${key} ${limit.named ?? String(limit.value)} is outside the range of ${a.type}`);
        }
      }
      if (min !== undefined && max !== undefined && min.value > max.value) {
        r.fail(at, 'checks', `min ${String(min.value)} is larger than max ${String(max.value)} on "${a.name}"`);
      }
    }
    let minLen: LengthCheck | undefined;
    let maxLen: LengthCheck | undefined;
    let exactLen: LengthCheck | undefined;
    if (onlyFor('min-len', a.type === 'binary', 'binary attributes')) minLen = lookupLength(c['min-len'] as number | string, joinPointer(at, 'min-len'));
    if (onlyFor('max-len', a.type === 'binary' || a.type === 'string', 'string and binary attributes')) {
      maxLen = lookupLength(c['max-len'] as number | string, joinPointer(at, 'max-len'));
    }
    if (onlyFor('exact-len', a.type === 'binary', 'binary attributes')) exactLen = lookupLength(c['exact-len'] as number | string, joinPointer(at, 'exact-len'));
    if (exactLen !== undefined && (minLen !== undefined || maxLen !== undefined)) {
      r.fail(joinPointer(at, 'exact-len'), 'checks', `"exact-len" cannot be combined with "min-len" or "max-len" on "${a.name}"`);
    }
    if (minLen !== undefined && maxLen !== undefined && minLen.value > maxLen.value) {
      r.fail(at, 'checks', `min-len ${minLen.value} is larger than max-len ${maxLen.value} on "${a.name}"`);
    }
    let flagsMask: EnumDefinition | undefined;
    if (onlyFor('flags-mask', integer && !isSignedType(a.type as IntegerType), 'unsigned integer attributes')) {
      flagsMask = lookupEnum(c['flags-mask'] as string, joinPointer(at, 'flags-mask'), true);
      if (flagsMask !== undefined && (min !== undefined || max !== undefined)) {
        r.fail(joinPointer(at, 'flags-mask'), 'checks', `"flags-mask" cannot be combined with "min" or "max" on "${a.name}"`);
      }
    }
    // An enum attribute accepts only its entries, as the kernel's own generator has it: a range
    // check is implied when the entries are contiguous and the spec gives no bounds itself.
    if (integer && a.enum !== undefined && min === undefined && max === undefined && a['enum-as-flags'] !== true) {
      const def = definitionsByName.get(a.enum);
      if (def !== undefined && def.kind === 'enum') {
        const values = def.entries.map((e) => e.value).sort((x, y) => x - y);
        const lowest = values[0] ?? 0;
        const highest = values[values.length - 1] ?? 0;
        if (highest - lowest + 1 === values.length) {
          min = { value: BigInt(lowest), named: undefined };
          max = { value: BigInt(highest), named: undefined };
        }
      }
    }
    return { min, max, minLen, maxLen, exactLen, flagsMask };
  }

  rawSets.forEach((_, index) => resolveSet(index, []));

  // Multicast groups.
  const rawGroups = raw['mcast-groups']?.list ?? [];
  r.unique(rawGroups, (g) => g.name, '/mcast-groups/list', 'multicast group');
  const mcastGroups: McastGroup[] = rawGroups.map((g, index) => {
    // The kernel's schema has no doc on a group: what it carries is told by the docs of the
    // operations sent to it, so a group no operation names would go undocumented.
    const operations = raw.operations.list.filter((o) => o.mcgrp === g.name).map((o) => o.name);
    if (operations.length === 0) {
      r.fail(
        joinPointer('/mcast-groups/list', index),
        'mcgrp-unused',
        `multicast group "${g.name}" carries no operation: name it in the "mcgrp" of the events or notifications sent to it, whose docs say what it carries`,
      );
    }
    const permissions = g.flags ?? [];
    return {
      name: g.name,
      doc: `Carries ${operations.join(', ')}. ${permissions.length === 0 ? 'Any user may join.' : `Joining needs ${mcastJoinText(permissions)}.`}`,
      operations,
      permissions,
      index,
      cName: `${prefix}_MCGRP_${cMacro(g.name)}`,
      cIndexName: `${prefix}_NLGRP_${cMacro(g.name)}`,
    };
  });

  // Operations.
  const rawOps = raw.operations.list;
  r.unique(rawOps, (o) => o.name, '/operations/list', 'operation');
  const cmdPrefix = cMacro(raw.operations['name-prefix'] ?? `${raw.name}-cmd-`);
  let nextCmd = 1;
  const seenCmds = new Map<number, string>();
  const operations: Operation[] = rawOps.map((o, index) => {
    const at = joinPointer('/operations/list', index);
    const value = o.value ?? nextCmd;
    nextCmd = value + 1;
    if (value > 255) r.fail(at, 'command-value', `operation "${o.name}" would have command ${value}; genetlink commands are 8 bits`);
    const clash = seenCmds.get(value);
    if (clash !== undefined) r.fail(at, 'unique-value', `operation "${o.name}" has command ${value}, already used by "${clash}"`);
    seenCmds.set(value, o.name);

    const setName = o['attribute-set'];
    const set = setName === undefined ? undefined : resolvedSets.get(setName);
    if (setName !== undefined && set === undefined && !rawSetIndex.has(setName)) {
      r.fail(joinPointer(at, 'attribute-set'), 'reference', `"${setName}" is not an attribute set`);
    }
    const needsSet = o.do !== undefined || o.dump !== undefined || o.event !== undefined;
    if (needsSet && setName === undefined) r.fail(at, 'attribute-set', `operation "${o.name}" has messages and needs an "attribute-set"`);

    const attributeList = (list: RawAttributeList | undefined, listAt: string): Attribute[] | undefined => {
      if (list === undefined) return undefined;
      return list.attributes.flatMap((name, i) => {
        const attr = set?.attributes.find((a) => a.name === name);
        if (attr === undefined) {
          if (set !== undefined) r.fail(joinPointer(listAt, 'attributes', i), 'reference', `"${name}" is not an attribute of set "${set.name}"`);
          return [];
        }
        if (attr.type === 'pad') {
          r.fail(joinPointer(listAt, 'attributes', i), 'reference', `"${name}" is a pad attribute and cannot be listed in a message`);
          return [];
        }
        return [attr];
      });
    };
    const sub = (raw: RawSubOperation | undefined, subAt: string): SubOperation | undefined =>
      raw === undefined
        ? undefined
        : {
            request: attributeList(raw.request, joinPointer(subAt, 'request')),
            reply: attributeList(raw.reply, joinPointer(subAt, 'reply')),
          };
    const doOp = sub(o.do, joinPointer(at, 'do'));
    const dumpOp = sub(o.dump, joinPointer(at, 'dump'));
    const event = attributeList(o.event, joinPointer(at, 'event'));

    if (o.do === undefined && o.dump === undefined && o.event === undefined && o.notify === undefined) {
      r.fail(at, 'operation-kind', `operation "${o.name}" needs "do", "dump", "event" or "notify"`);
    }
    if ((o.event !== undefined || o.notify !== undefined) && (o.do !== undefined || o.dump !== undefined)) {
      r.fail(at, 'operation-kind', `operation "${o.name}" is a notification ("event"/"notify") and cannot also have "do" or "dump"`);
    }
    if (o.event !== undefined && o.notify !== undefined) {
      r.fail(at, 'operation-kind', `operation "${o.name}" cannot have both "event" and "notify"`);
    }
    if (o.notify !== undefined) {
      const target = rawOps.find((t) => t.name === o.notify);
      if (target === undefined || (target.do?.reply === undefined && target.dump?.reply === undefined)) {
        r.fail(joinPointer(at, 'notify'), 'reference', `"${o.notify}" is not an operation with a reply to share`);
      }
    }
    let mcastGroup: McastGroup | undefined;
    if (o.mcgrp !== undefined) {
      mcastGroup = mcastGroups.find((g) => g.name === o.mcgrp);
      if (mcastGroup === undefined) r.fail(joinPointer(at, 'mcgrp'), 'reference', `"${o.mcgrp}" is not a multicast group`);
      if (o.event === undefined && o.notify === undefined) r.fail(joinPointer(at, 'mcgrp'), 'mcgrp', `only notifications ("event"/"notify") are sent to a multicast group`);
    }
    const permissions = o.flags ?? [];
    if (permissions.length > 0 && o.do === undefined && o.dump === undefined) {
      r.fail(joinPointer(at, 'flags'), 'flags', `permission flags apply to requests; "${o.name}" has no "do" or "dump"`);
    }
    // A do's pre/post would be the op's pre_doit/post_doit, which only struct genl_split_ops
    // has (Linux 6.2+); the struct genl_ops we emit so that one table builds on 6.1 has none.
    for (const key of ['pre', 'post'] as const) {
      if (o.do?.[key] !== undefined) {
        r.fail(
          joinPointer(at, 'do', key),
          'do-pre-post',
          `"${key}" is supported on "dump" only (where it becomes the op's .${key === 'pre' ? 'start' : 'done'}): struct genl_ops has no per-op pre_doit/post_doit on Linux 6.1 (they came with struct genl_split_ops in 6.2), and this generator emits genl_ops so that one table builds on 6.1 and later; call the code from the doit handler instead`,
        );
      }
    }
    const opSymbol = `${symbolPrefix}_nl_${cIdentifier(o.name)}`;
    return {
      name: o.name,
      doc: o.doc,
      value,
      cName: `${cmdPrefix}${cMacro(o.name)}`,
      attributeSet: set,
      permissions,
      do: doOp,
      dump: dumpOp,
      notify: o.notify,
      event,
      mcastGroup,
      cDoit: o.do === undefined ? undefined : `${opSymbol}_doit`,
      cDumpit: o.dump === undefined ? undefined : `${opSymbol}_dumpit`,
      cDumpStart: o.dump?.pre === undefined ? undefined : cIdentifier(o.dump.pre),
      cDumpDone: o.dump?.post === undefined ? undefined : cIdentifier(o.dump.post),
    };
  });

  // A hook is a C function beside the generated handlers: it must not be one of them (their
  // prototypes differ). Ops may share a hook, and a dump may use one function for both.
  const handlers = new Map<string, string>();
  for (const op of operations) {
    if (op.cDoit !== undefined) handlers.set(op.cDoit, op.name);
    if (op.cDumpit !== undefined) handlers.set(op.cDumpit, op.name);
  }
  operations.forEach((op, index) => {
    for (const [key, hook] of [['pre', op.cDumpStart], ['post', op.cDumpDone]] as const) {
      const owner = hook === undefined ? undefined : handlers.get(hook);
      if (owner !== undefined) {
        r.fail(
          joinPointer('/operations/list', index, 'dump', key),
          'hook-name',
          `hook "${hook as string}" is the generated handler of operation "${owner}"; a ${key} hook takes only the struct netlink_callback and needs a name of its own`,
        );
      }
    }
  });

  // The actions of each event type: an enum `<type>-action` per entry of `event-type`, whose
  // entries are entries of `action` with the same values, every action in exactly one of them.
  // The kernel's schema has no way to say "this enum is a subset of that one", so the subsets are
  // enums of their own, found by name; the TypeScript output derives ACTIONS_OF_TYPE from them.
  const actionsOfType: { type: EnumEntry; actions: EnumEntry[] }[] = [];
  const typeEnum = definitionsByName.get('event-type');
  const actionEnum = definitionsByName.get('action');
  if (typeEnum?.kind === 'enum' && actionEnum?.kind === 'enum') {
    const owner = new Map<string, string>();
    for (const type of typeEnum.entries) {
      const name = `${type.name}-action`;
      const index = rawDefinitions.findIndex((d) => d.name === name);
      const subset = definitionsByName.get(name);
      if (subset === undefined || subset.kind !== 'enum') {
        r.fail('/definitions', 'actions-of-type', `event type "${type.name}" needs an enum definition "${name}" listing its actions (entries of "action", same values)`);
        continue;
      }
      const actions: EnumEntry[] = [];
      subset.entries.forEach((entry, entryIndex) => {
        const at = joinPointer('/definitions', index, 'entries', entryIndex);
        const action = actionEnum.entries.find((a) => a.name === entry.name);
        if (action === undefined) r.fail(at, 'actions-of-type', `"${entry.name}" is not an entry of the enum "action"`);
        else if (action.value !== entry.value) r.fail(at, 'actions-of-type', `"${entry.name}" is ${entry.value} here but ${action.value} in the enum "action"`);
        else if (owner.has(entry.name)) r.fail(at, 'actions-of-type', `action "${entry.name}" is already an action of type "${owner.get(entry.name) as string}"`);
        else {
          owner.set(entry.name, type.name);
          actions.push(action);
        }
      });
      actionsOfType.push({ type, actions });
    }
    const orphans = actionEnum.entries.filter((a) => !owner.has(a.name)).map((a) => a.name);
    if (orphans.length > 0 && actionsOfType.length === typeEnum.entries.length) {
      r.fail('/definitions', 'actions-of-type', `action ${orphans.map((o) => `"${o}"`).join(', ')} belongs to no event type (add it to a "<type>-action" enum)`);
    }
  }

  if (r.problems.length > 0) return { ok: false, problems: r.problems };
  return {
    ok: true,
    family: {
      name: raw.name,
      doc: raw.doc,
      specLabel: options.specLabel,
      uapiHeader: raw['uapi-header'] ?? `linux/${raw.name}.h`,
      cPrefix: prefix,
      cSymbolPrefix: symbolPrefix,
      consts: definitions.filter((d): d is ConstDefinition => d.kind === 'const'),
      enums: definitions.filter((d): d is EnumDefinition => d.kind !== 'const'),
      definitions,
      attributeSets: ordered,
      operations,
      cCmdMaxName: `${cmdPrefix}MAX`,
      cCmdCountName: `__${cmdPrefix}MAX`,
      cCmdEnumName: raw.operations['enum-name'] === undefined ? undefined : cIdentifier(raw.operations['enum-name']),
      mcastGroups,
      actionsOfType,
    },
  };
}
