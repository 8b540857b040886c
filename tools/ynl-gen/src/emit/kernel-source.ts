// The kernel side: attribute policies, the ops table and the multicast group table
// (usip-nl-gen.c) and their declarations with the handler prototypes (usip-nl-gen.h).
//
// The ops are `struct genl_ops` with a per-op .policy/.maxattr, not `struct genl_split_ops`:
// split ops only exist from Linux 6.2, per-op policies from 5.10, so this one form builds on
// every kernel we support (6.1 and later) without #if.
import type { Attribute, AttributeSet, Family, IntegerType, LengthCheck, LimitCheck, Operation } from '../model.js';
import { integerBits, isIntegerType, isSignedType } from '../model.js';
import { generatedNotice, tabTo } from './common.js';

const NLA_TYPES: Record<IntegerType, string> = {
  u8: 'NLA_U8',
  u16: 'NLA_U16',
  u32: 'NLA_U32',
  u64: 'NLA_U64',
  s8: 'NLA_S8',
  s16: 'NLA_S16',
  s32: 'NLA_S32',
  s64: 'NLA_S64',
};

/** NLA_POLICY_RANGE/MIN/MAX keep their bounds in an s16. */
const S16_MIN = -32768n;
const S16_MAX = 32767n;
const fitsS16 = (v: bigint): boolean => v >= S16_MIN && v <= S16_MAX;

function cLimit(limit: LimitCheck, type: IntegerType): string {
  const { value, named, define } = limit;
  if (define !== undefined) return define.cName;
  if (named !== undefined) return named.toUpperCase().replace('-', '_');
  const suffix = integerBits(type) === 64 ? (isSignedType(type) ? 'LL' : 'ULL') : isSignedType(type) ? '' : 'U';
  return `${String(value)}${value < 0n ? '' : suffix}`;
}

function cLength(len: LengthCheck): string {
  return len.define === undefined ? String(len.value) : len.define.cName;
}

export function policyName(family: Family, owner: string): string {
  return `${family.cSymbolPrefix}_${owner.replace(/-/g, '_')}_nl_policy`;
}

interface PolicyEntry {
  /** Static definitions the entry refers to (range structs). */
  readonly before: string[];
  readonly value: string;
}

function policyEntry(family: Family, owner: string, attr: Attribute): PolicyEntry {
  const c = attr.checks;
  if (attr.type === 'flag') return { before: [], value: '{ .type = NLA_FLAG, }' };
  if (attr.type === 'nest') {
    return { before: [], value: `NLA_POLICY_NESTED(${policyName(family, (attr.nested as AttributeSet).name)})` };
  }
  if (attr.type === 'string') {
    return { before: [], value: c.maxLen === undefined ? '{ .type = NLA_NUL_STRING, }' : `{ .type = NLA_NUL_STRING, .len = ${cLength(c.maxLen)}, }` };
  }
  if (attr.type === 'binary') {
    if (c.exactLen !== undefined) return { before: [], value: `NLA_POLICY_EXACT_LEN(${cLength(c.exactLen)})` };
    if (c.minLen !== undefined && c.maxLen !== undefined) {
      return { before: [], value: `NLA_POLICY_RANGE(NLA_BINARY, ${cLength(c.minLen)}, ${cLength(c.maxLen)})` };
    }
    if (c.minLen !== undefined) return { before: [], value: `NLA_POLICY_MIN_LEN(${cLength(c.minLen)})` };
    if (c.maxLen !== undefined) return { before: [], value: `{ .type = NLA_BINARY, .len = ${cLength(c.maxLen)}, }` };
    return { before: [], value: '{ .type = NLA_BINARY, }' };
  }
  if (!isIntegerType(attr.type)) throw new Error(`no policy for ${attr.type} attribute ${attr.name}`);
  const type = attr.type;
  const nla = attr.bigEndian ? (type === 'u16' ? 'NLA_BE16' : 'NLA_BE32') : NLA_TYPES[type];
  if (c.flagsMask !== undefined) {
    const mask = c.flagsMask.renderMax
      ? c.flagsMask.cMaxName
      : `0x${(c.flagsMask.entries.reduce((m, e) => m | e.value, 0) >>> 0).toString(16)}`;
    return { before: [], value: `NLA_POLICY_MASK(${nla}, ${mask})` };
  }
  const { min, max } = c;
  if (min === undefined && max === undefined) return { before: [], value: `{ .type = ${nla}, }` };
  const small = (min === undefined || fitsS16(min.value)) && (max === undefined || fitsS16(max.value));
  if (small) {
    if (min !== undefined && max !== undefined) {
      return { before: [], value: `NLA_POLICY_RANGE(${nla}, ${cLimit(min, type)}, ${cLimit(max, type)})` };
    }
    if (min !== undefined) return { before: [], value: `NLA_POLICY_MIN(${nla}, ${cLimit(min, type)})` };
    return { before: [], value: `NLA_POLICY_MAX(${nla}, ${cLimit(max as LimitCheck, type)})` };
  }
  // Bounds beyond an s16 need a range struct the policy points to.
  const signed = isSignedType(type);
  const rangeName = `${family.cSymbolPrefix}_${owner.replace(/-/g, '_')}_${attr.name.replace(/-/g, '_')}_range`;
  const lowest: LimitCheck = min ?? { value: signed ? -(1n << BigInt(integerBits(type) - 1)) : 0n, named: signed ? `${type}-min` : undefined };
  const highest: LimitCheck = max ?? { value: (1n << BigInt(integerBits(type) - (signed ? 1 : 0))) - 1n, named: `${type}-max` };
  const before = [
    // Not const: Linux 6.1's struct nla_policy points to a non-const range.
    `static struct netlink_range_validation${signed ? '_signed' : ''} ${rangeName} = {`,
    `\t.min\t= ${cLimit(lowest, type)},`,
    `\t.max\t= ${cLimit(highest, type)},`,
    '};',
    '',
  ];
  return { before, value: `NLA_POLICY_FULL_RANGE${signed ? '_SIGNED' : ''}(${nla}, &${rangeName})` };
}

/** Attributes an op accepts in requests (do and dump share one policy in struct genl_ops). */
export function requestAttributes(op: Operation): Attribute[] {
  const all = [...(op.do?.request ?? []), ...(op.dump?.request ?? [])];
  const unique = [...new Map(all.map((a) => [a.name, a])).values()];
  return unique.sort((a, b) => a.value - b.value);
}

/** Sets whose set-wide policy is needed because a request attribute nests them. */
function nestedPolicySets(family: Family): AttributeSet[] {
  const needed = new Set<string>();
  const visit = (attrs: readonly Attribute[]): void => {
    for (const attr of attrs) {
      if (attr.nested !== undefined && !needed.has(attr.nested.name)) {
        needed.add(attr.nested.name);
        visit(attr.nested.attributes);
      }
    }
  };
  for (const op of family.operations) visit(requestAttributes(op));
  // attributeSets is in dependency order, so nested policies are defined before their users.
  return family.attributeSets.filter((s) => needed.has(s.name));
}

function policyBlock(family: Family, owner: string, name: string, attrs: Attribute[], isStatic: boolean): string[] {
  const last = attrs[attrs.length - 1] as Attribute;
  const before: string[] = [];
  const rows: string[] = [];
  for (const attr of attrs) {
    if (attr.type === 'pad') continue;
    const entry = policyEntry(family, owner, attr);
    before.push(...entry.before);
    const row = `\t[${attr.cName}] = ${entry.value},`;
    // checkpatch --strict wants lines of at most 100 columns (a tab counts 8).
    rows.push(row.length + 7 > 100 ? `\t[${attr.cName}] =\n\t\t${entry.value},` : row);
  }
  return [...before, `${isStatic ? 'static ' : ''}const struct nla_policy ${name}[${last.cName} + 1] = {`, ...rows, '};'];
}

function opComment(op: Operation): string {
  const kinds = [op.do === undefined ? undefined : 'do', op.dump === undefined ? undefined : 'dump'].filter(Boolean);
  return `/* ${op.cName} - ${kinds.join(', ')} */`;
}

const kernelOps = (family: Family): Operation[] => family.operations.filter((op) => op.cDoit !== undefined || op.cDumpit !== undefined);

export function emitKernelSource(family: Family, headerName: string): string {
  const p = family.cSymbolPrefix;
  const out: string[] = [
    '// SPDX-License-Identifier: GPL-2.0',
    `/* ${generatedNotice(family)} */`,
    '',
    '#include <net/netlink.h>',
    '#include <net/genetlink.h>',
    '',
    `#include "${headerName}"`,
  ];
  for (const set of nestedPolicySets(family)) {
    out.push('', `/* Attribute set "${set.name}", when nested in a request */`);
    // Not static: a handler that walks repeated nests parses each one with this policy.
    out.push(...policyBlock(family, set.name, policyName(family, set.name), [...set.attributes].sort((a, b) => a.value - b.value), false));
  }
  const ops = kernelOps(family);
  for (const op of ops) {
    const attrs = requestAttributes(op);
    if (attrs.length === 0) continue;
    out.push('', opComment(op), ...policyBlock(family, op.name, policyName(family, op.name), attrs, true));
  }
  out.push('', `/* Ops table for ${family.name} */`, `const struct genl_ops ${p}_nl_ops[${ops.length}] = {`);
  for (const op of ops) {
    const attrs = requestAttributes(op);
    const last = attrs[attrs.length - 1];
    const fields: [string, string][] = [['.cmd', op.cName]];
    if (op.cDoit !== undefined) fields.push(['.doit', op.cDoit]);
    // A dump's pre/post hooks, in the order of struct genl_ops: start, dumpit, done.
    if (op.cDumpStart !== undefined) fields.push(['.start', op.cDumpStart]);
    if (op.cDumpit !== undefined) fields.push(['.dumpit', op.cDumpit]);
    if (op.cDumpDone !== undefined) fields.push(['.done', op.cDumpDone]);
    if (last !== undefined) {
      fields.push(['.policy', policyName(family, op.name)]);
      fields.push(['.maxattr', last.cName]);
    }
    const flags = op.permissions.map((perm) => (perm === 'admin-perm' ? 'GENL_ADMIN_PERM' : 'GENL_UNS_ADMIN_PERM'));
    if (flags.length > 0) fields.push(['.flags', flags.join(' | ')]);
    out.push('\t{', ...fields.map(([k, v]) => `\t\t${tabTo(k, 2)}= ${v},`), '\t},');
  }
  out.push('};');
  if (family.mcastGroups.length > 0) {
    out.push('', `/* Multicast groups for ${family.name} */`);
    out.push(`const struct genl_multicast_group ${p}_nl_mcgrps[${family.mcastGroups.length}] = {`);
    for (const group of family.mcastGroups) {
      // admin-perm on a group: joining needs CAP_SYS_ADMIN (see McastPermission).
      const flags = group.permissions.includes('admin-perm') ? ['GENL_MCAST_CAP_SYS_ADMIN'] : [];
      const flagsField = flags.length === 0 ? '' : ` .flags = ${flags.join(' | ')},`;
      out.push(`\t[${group.cIndexName}] = { .name = ${group.cName},${flagsField} },`);
    }
    out.push('};');
  }
  out.push('');
  return out.join('\n');
}

export function emitKernelHeader(family: Family, headerName: string): string {
  const p = family.cSymbolPrefix;
  const guard = `_${headerName.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
  const ops = kernelOps(family);
  const out: string[] = [
    '/* SPDX-License-Identifier: GPL-2.0 */',
    `/* ${generatedNotice(family)} */`,
    '',
    `#ifndef ${guard}`,
    `#define ${guard}`,
    '',
    '#include <net/netlink.h>',
    '#include <net/genetlink.h>',
    '',
    `#include <${family.uapiHeader}>`,
  ];
  if (family.mcastGroups.length > 0) {
    out.push('', `/* Indexes into ${p}_nl_mcgrps, as genlmsg_multicast() takes them */`, 'enum {');
    for (const group of family.mcastGroups) out.push(`\t${group.cIndexName},`);
    out.push('};');
  }
  const nested = nestedPolicySets(family);
  if (nested.length > 0) out.push('', '/* Policies of attribute sets nested in requests */');
  for (const set of nested) {
    const last = [...set.attributes].sort((a, b) => a.value - b.value).at(-1) as Attribute;
    out.push(`extern const struct nla_policy ${policyName(family, set.name)}[${last.cName} + 1];`);
  }
  out.push('', `extern const struct genl_ops ${p}_nl_ops[${ops.length}];`);
  if (family.mcastGroups.length > 0) {
    out.push(`extern const struct genl_multicast_group ${p}_nl_mcgrps[${family.mcastGroups.length}];`);
  }
  out.push('');
  // Ops may share a dump hook: each is declared once, with the first op that uses it.
  const declared = new Set<string>();
  const hook = (name: string | undefined): void => {
    if (name === undefined || declared.has(name)) return;
    declared.add(name);
    out.push(`int ${name}(struct netlink_callback *cb);`);
  };
  for (const op of ops) {
    if (op.cDoit !== undefined) out.push(`int ${op.cDoit}(struct sk_buff *skb, struct genl_info *info);`);
    hook(op.cDumpStart);
    if (op.cDumpit !== undefined) out.push(`int ${op.cDumpit}(struct sk_buff *skb, struct netlink_callback *cb);`);
    hook(op.cDumpDone);
  }
  out.push('', `#endif /* ${guard} */`, '');
  return out.join('\n');
}
