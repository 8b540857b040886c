// The protocol reference (docs/reference/protocol.md), written from the spec's docs.
import type { Attribute, Checks, Family, Operation } from '../model.js';
import { camelCase, mcastJoinText } from '../model.js';
import { setInterfaceName } from './typescript.js';
import { generatedNotice, oneLine } from './common.js';

const cell = (text: string): string => oneLine(text).replace(/\|/g, '\\|');

function checksText(c: Checks): string {
  const parts: string[] = [];
  const limit = (l: { value: bigint; named: string | undefined }): string =>
    l.named === undefined ? String(l.value) : `${l.named} (${String(l.value)})`;
  const len = (l: { value: number; define: { name: string } | undefined }): string =>
    l.define === undefined ? String(l.value) : `${l.define.name} (${l.value})`;
  if (c.min !== undefined) parts.push(`min ${limit(c.min)}`);
  if (c.max !== undefined) parts.push(`max ${limit(c.max)}`);
  if (c.minLen !== undefined) parts.push(`min-len ${len(c.minLen)}`);
  if (c.maxLen !== undefined) parts.push(`max-len ${len(c.maxLen)}`);
  if (c.exactLen !== undefined) parts.push(`exact-len ${len(c.exactLen)}`);
  if (c.flagsMask !== undefined) parts.push(`flags-mask ${c.flagsMask.name}`);
  return parts.join(', ');
}

function typeText(attr: Attribute): string {
  let t: string = attr.type;
  if (attr.bigEndian) t += ' (big-endian)';
  if (attr.nested !== undefined) t += ` of [${attr.nested.name}](#attribute-set-${attr.nested.name})`;
  if (attr.enumDef !== undefined) t += ` (${attr.enumAsFlags ? 'flags' : 'enum'} [${attr.enumDef.name}](#${attr.enumDef.kind}-${attr.enumDef.name}))`;
  if (attr.multi) t += ', repeated';
  return t;
}

function attributeTable(attrs: readonly Attribute[]): string[] {
  const out = ['| id | attribute | C name | type | checks | description |', '|---|---|---|---|---|---|'];
  for (const a of attrs) {
    out.push(`| ${a.value} | \`${a.name}\` | \`${a.cName}\` | ${typeText(a)} | ${checksText(a.checks)} | ${cell(a.doc)} |`);
  }
  return out;
}

function permissionsText(op: Operation): string {
  if (op.permissions.length === 0) return 'none: any user may send it';
  return op.permissions
    .map((p) =>
      p === 'admin-perm'
        ? '`admin-perm` (GENL_ADMIN_PERM: CAP_NET_ADMIN in the initial user namespace)'
        : "`uns-admin-perm` (GENL_UNS_ADMIN_PERM: CAP_NET_ADMIN in the user namespace owning the socket's network namespace)",
    )
    .join(', ');
}

function messageSection(title: string, attrs: readonly Attribute[] | undefined): string[] {
  if (attrs === undefined) return [];
  if (attrs.length === 0) return [`${title}: no attributes.`, ''];
  return [`${title}:`, '', ...attributeTable(attrs), ''];
}

export function emitMarkdown(family: Family): string {
  const out: string[] = [
    `<!-- ${generatedNotice(family)} -->`,
    '',
    `# The \`${family.name}\` generic netlink protocol`,
    '',
    oneLine(family.doc),
    '',
    '| | |',
    '|---|---|',
    `| family name | \`${family.name}\` (\`${family.cPrefix}_FAMILY_NAME\`) |`,
    `| family version | 1 (\`${family.cPrefix}_FAMILY_VERSION\`) |`,
    `| protocol | generic netlink; the family id is resolved by name through \`nlctrl\` |`,
    `| uapi header | \`<${family.uapiHeader}>\` |`,
    '',
    'Strict validation: every request is checked against its operation\'s attribute policy; an',
    'unknown attribute, a value of the wrong size or one that fails a check is rejected with',
    '`EINVAL` and an extended-ack message naming the attribute. Integers are in host byte order',
    'unless marked big-endian; strings are NUL-terminated; 64-bit values may be preceded by a pad',
    'attribute that aligns them.',
    '',
    '## Operations',
    '',
  ];
  for (const op of family.operations) {
    out.push(`### ${op.name}`, '', oneLine(op.doc), '');
    out.push(`- command: ${op.value} (\`${op.cName}\`)`);
    if (op.do !== undefined || op.dump !== undefined) out.push(`- permissions: ${permissionsText(op)}`);
    if (op.attributeSet !== undefined) out.push(`- attribute set: [${op.attributeSet.name}](#attribute-set-${op.attributeSet.name})`);
    if (op.mcastGroup !== undefined) out.push(`- multicast group: [${op.mcastGroup.name}](#multicast-groups)`);
    if (op.notify !== undefined) out.push(`- notification in the format of the \`${op.notify}\` reply`);
    out.push('');
    if (op.do !== undefined) {
      out.push(...messageSection('Request (`do`)', op.do.request ?? []), ...messageSection('Reply', op.do.reply ?? []));
    }
    if (op.dump !== undefined) {
      out.push(...messageSection('Dump request', op.dump.request ?? []), ...messageSection('Each dumped message', op.dump.reply ?? []));
    }
    if (op.event !== undefined) out.push(...messageSection('Event', op.event));
  }
  out.push('## Multicast groups', '');
  if (family.mcastGroups.length === 0) out.push('None.', '');
  else {
    out.push('| group | C name | joining needs | carries |', '|---|---|---|---|');
    for (const g of family.mcastGroups) {
      const needs = g.permissions.length === 0 ? 'any user' : `${mcastJoinText(g.permissions)} (\`admin-perm\`: GENL_MCAST_CAP_SYS_ADMIN)`;
      const carries = g.operations.map((name) => `[${name}](#${name})`).join(', ');
      out.push(`| \`${g.name}\` | \`${g.cName}\` | ${needs} | ${carries} |`);
    }
    out.push('', 'The sections of the operations a group carries say what its messages are and when they are sent to it.', '');
  }
  out.push('## Attribute sets', '');
  for (const set of family.attributeSets) {
    out.push(`### Attribute set ${set.name}`, '', oneLine(set.doc), '');
    out.push(`TypeScript: \`${setInterfaceName(set)}\` (properties: ${set.attributes.filter((a) => a.type !== 'pad').map((a) => `\`${camelCase(a.name)}\``).join(', ')}).`, '');
    const numbers = set.attributes.filter((a) => a.safeNumber).map((a) => `\`${a.name}\``);
    if (numbers.length > 0) out.push(`64-bit attributes whose checks keep them below 2^53, a \`number\` in TypeScript: ${numbers.join(', ')}.`, '');
    out.push(...attributeTable(set.attributes), '');
  }
  out.push('## Definitions', '');
  for (const def of family.definitions) {
    if (def.kind === 'const') {
      out.push(`### const ${def.name}`, '', `\`${def.cName}\` = ${def.value}. ${oneLine(def.doc)}`, '');
      continue;
    }
    const inC = def.scope === 'uapi';
    const where = inC ? `C: \`enum ${def.cEnumName}\`.` : 'Not in the C header (scope user): for the TypeScript output and these docs.';
    out.push(`### ${def.kind} ${def.name}`, '', oneLine(def.doc), '', where, '');
    out.push(inC ? '| value | name | C name | description |' : '| value | name | description |', inC ? '|---|---|---|---|' : '|---|---|---|');
    for (const e of def.entries) {
      const v = def.kind === 'flags' ? `0x${e.value.toString(16)}` : String(e.value);
      const doc = e.doc === undefined ? '' : cell(e.doc);
      out.push(inC ? `| ${v} | \`${e.name}\` | \`${e.cName}\` | ${doc} |` : `| ${v} | \`${e.name}\` | ${doc} |`);
    }
    out.push('');
  }
  return `${out.join('\n').trimEnd()}\n`;
}
