// The uapi header: what user space and the kernel share (family name, constants, enums,
// attribute ids, commands, multicast group names), laid out like the kernel's generated headers.
import type { EnumDefinition, Family } from '../model.js';
import { generatedNotice, tabTo, wrap } from './common.js';

function docComment(doc: string | undefined, indent: string): string[] {
  if (doc === undefined) return [];
  const lines = wrap(doc, 72 - indent.length);
  if (lines.length === 1) return [`${indent}/* ${lines[0]} */`];
  return [`${indent}/*`, ...lines.map((l) => `${indent} * ${l}`), `${indent} */`];
}

function guardName(family: Family): string {
  return `_UAPI_${family.uapiHeader.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
}

function enumBlock(def: EnumDefinition): string[] {
  const out = [...docComment(def.doc, ''), `enum ${def.cEnumName} {`];
  for (const entry of def.entries) {
    out.push(...docComment(entry.doc, '\t'));
    out.push(`\t${entry.cName} = ${def.kind === 'flags' ? `0x${entry.value.toString(16)}` : entry.value},`);
  }
  if (def.renderMax) {
    if (def.kind === 'flags') {
      const mask = def.entries.reduce((m, e) => m | e.value, 0) >>> 0;
      out.push('', '\t/* every flag above */', `\t${def.cMaxName} = 0x${mask.toString(16)},`);
    } else {
      out.push('', `\t/* private: */`, `\t${def.cCountName},`, `\t${def.cMaxName} = (${def.cCountName} - 1)`);
    }
  }
  out.push('};');
  return out;
}

export function emitUapiHeader(family: Family): string {
  const guard = guardName(family);
  const out: string[] = [
    '/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */',
    `/* ${generatedNotice(family)} */`,
    '',
    `#ifndef ${guard}`,
    `#define ${guard}`,
    '',
    ...docComment(family.doc, ''),
    `#define ${tabTo(`${family.cPrefix}_FAMILY_NAME`, 4)}"${family.name}"`,
    `#define ${tabTo(`${family.cPrefix}_FAMILY_VERSION`, 4)}1`,
  ];
  // scope: user definitions are for the TypeScript output and the docs only.
  for (const def of family.consts.filter((d) => d.scope === 'uapi')) {
    out.push('', ...docComment(def.doc, ''), `#define ${tabTo(def.cName, 4)}${def.value}`);
  }
  for (const def of family.enums.filter((d) => d.scope === 'uapi')) out.push('', ...enumBlock(def));
  for (const set of family.attributeSets) {
    out.push('', ...docComment(`Attribute set "${set.name}": ${set.doc}`, ''));
    out.push(set.cEnumName === undefined ? 'enum {' : `enum ${set.cEnumName} {`);
    set.attributes.forEach((attr, i) => {
      out.push(...docComment(`${attr.type}: ${attr.doc}`, '\t'));
      const previous = set.attributes[i - 1];
      const implicit = previous === undefined ? attr.value === 0 : attr.value === previous.value + 1;
      out.push(`\t${attr.cName}${implicit ? '' : ` = ${attr.value}`},`);
    });
    out.push('', '\t/* private: */', `\t${set.cCountName},`, `\t${set.cMaxName} = (${set.cCountName} - 1)`, '};');
  }
  out.push('', '/* Commands */');
  out.push(family.cCmdEnumName === undefined ? 'enum {' : `enum ${family.cCmdEnumName} {`);
  family.operations.forEach((op, i) => {
    out.push(...docComment(op.doc, '\t'));
    const previous = family.operations[i - 1];
    const implicit = previous === undefined ? op.value === 0 : op.value === previous.value + 1;
    out.push(`\t${op.cName}${implicit ? '' : ` = ${op.value}`},`);
  });
  out.push('', '\t/* private: */', `\t${family.cCmdCountName},`, `\t${family.cCmdMaxName} = (${family.cCmdCountName} - 1)`, '};');
  if (family.mcastGroups.length > 0) {
    out.push('', '/* Multicast groups, by name */');
    for (const group of family.mcastGroups) {
      out.push(...docComment(group.doc, ''), `#define ${tabTo(group.cName, 4)}"${group.name}"`);
    }
  }
  out.push('', `#endif /* ${guard} */`, '');
  return out.join('\n');
}
