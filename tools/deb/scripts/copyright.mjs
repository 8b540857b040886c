#!/usr/bin/env node
// @ts-check
// Appends to a DEP-5 debian/copyright one Files paragraph per Node package in a node_modules tree,
// with the licence its package.json declares (SPDX, turned into DEP-5 short names) and the
// copyright lines of its licence file, then one stand-alone License paragraph per licence used:
// a pointer to /usr/share/common-licenses, the licence file of a package under that licence
// alone, or tools/deb/licenses/<short name> (for licences only dual-licensed packages use).
//   node copyright.mjs <source-dir> <node_modules relative to it> <debian/copyright>
import { appendFileSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const licencesDir = join(dirname(fileURLToPath(import.meta.url)), '../licenses');

const [srcDir, modulesRel, copyrightFile] = process.argv.slice(2);
if (!srcDir || !modulesRel || !copyrightFile) {
  process.stderr.write('usage: copyright.mjs <source-dir> <node_modules-relative-path> <debian/copyright>\n');
  process.exit(2);
}

/** SPDX identifiers to DEP-5 short names (https://dep-team.pages.debian.net/deps/dep5/#license-short-name). */
const DEP5 = {
  MIT: 'Expat',
  ISC: 'ISC',
  'Apache-2.0': 'Apache-2.0',
  'BSD-2-Clause': 'BSD-2-clause',
  'BSD-3-Clause': 'BSD-3-clause',
  'GPL-2.0-only': 'GPL-2',
  'GPL-2.0': 'GPL-2',
  'GPL-2.0-or-later': 'GPL-2+',
  'LGPL-2.1-only': 'LGPL-2.1',
  'LGPL-2.1-or-later': 'LGPL-2.1+',
  '0BSD': '0BSD',
  'BlueOak-1.0.0': 'BlueOak-1.0.0',
};
/** Licences whose text Debian ships in /usr/share/common-licenses. */
const COMMON = { 'Apache-2.0': 'Apache-2.0', 'GPL-2': 'GPL-2', 'GPL-2+': 'GPL-2', 'LGPL-2.1': 'LGPL-2.1', 'LGPL-2.1+': 'LGPL-2.1' };

/** @param {string} spdx */
function dep5(spdx) {
  const expr = spdx.replace(/^\((.*)\)$/, '$1');
  return expr
    .split(/\s+OR\s+/)
    .map((alt) => alt.split(/\s+AND\s+/).map((id) => DEP5[/** @type {keyof typeof DEP5} */ (id.trim())] ?? id.trim()).join(' and '))
    .join(' or ');
}

/** @param {string} dir @returns {string[]} package dirs, scoped ones included, nested node_modules too */
function packages(dir) {
  /** @type {string[]} */
  const out = [];
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir).sort()) {
    if (name.startsWith('.')) continue;
    const path = join(dir, name);
    if (name.startsWith('@')) {
      for (const sub of readdirSync(path).sort()) out.push(join(path, sub), ...packages(join(path, sub, 'node_modules')));
    } else {
      out.push(path, ...packages(join(path, 'node_modules')));
    }
  }
  return out;
}

/** @param {string} dir */
function licenceFile(dir) {
  const name = readdirSync(dir).find((f) => /^(licen[cs]e|copying)(\.md|\.txt)?$/i.test(f));
  return name ? readFileSync(join(dir, name), 'utf8') : '';
}

/** @param {string} text continuation lines of a DEP-5 field */
function field(text) {
  return text
    .trim()
    .split('\n')
    .map((l) => (l.trim() === '' ? ' .' : ` ${l.trimEnd()}`))
    .join('\n');
}

const root = join(srcDir, modulesRel);
/** @type {Map<string, string>} licence short name -> its text, from the first package that has it */
const texts = new Map();
let paragraphs = '';
for (const dir of packages(root)) {
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  const spdx = typeof pkg.license === 'string' ? pkg.license : pkg.license?.type;
  if (!spdx) throw new Error(`${dir}/package.json declares no "license": cannot write debian/copyright`);
  const licence = dep5(spdx);
  const text = licenceFile(dir);
  const holders = [...new Set(text.split('\n').filter((l) => /^\s*copyright\s*(\(c\)|©|\d)/i.test(l)).map((l) => l.replace(/^\s*copyright\s*(\(c\)|©)?\s*/i, '').trim()))];
  const author = typeof pkg.author === 'string' ? pkg.author : pkg.author?.name;
  const copyright = holders.length > 0 ? holders.join('\n') : author ? author : pkg.name.startsWith('@usip/') ? '2026 USIP maintainers' : `the authors of ${pkg.name}`;
  for (const id of licence.split(/ or | and /)) if (text && !COMMON[/** @type {keyof typeof COMMON} */ (id)] && !texts.has(id) && licence === id) texts.set(id, text);
  paragraphs += `\nFiles: ${join(modulesRel, dir.slice(root.length + 1))}/*\nCopyright:\n${field(copyright)}\nLicense: ${licence}\n`;
}
/** @type {Set<string>} */
const used = new Set();
for (const m of paragraphs.matchAll(/^License: (.*)$/gm)) for (const id of (m[1] ?? '').split(/ or | and /)) used.add(id);
const existing = readFileSync(copyrightFile, 'utf8');
for (const id of [...used].sort()) {
  if (new RegExp(`^License: ${id.replace(/[.+]/g, '\\$&')}$`, 'm').test(existing)) continue;
  const common = COMMON[/** @type {keyof typeof COMMON} */ (id)];
  const body = common
    ? `On Debian systems, the complete text of this licence can be found in\n"/usr/share/common-licenses/${common}".`
    : (texts.get(id) ?? (existsSync(join(licencesDir, id)) ? readFileSync(join(licencesDir, id), 'utf8') : undefined));
  if (!body) throw new Error(`no text found for the licence ${id}: no package declaring only it has a LICENSE file, and there is no tools/deb/licenses/${id}`);
  paragraphs += `\nLicense: ${id}\n${field(body)}\n`;
}
appendFileSync(copyrightFile, paragraphs);
