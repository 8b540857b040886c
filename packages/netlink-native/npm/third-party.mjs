// The notices of the Rust crates linked into the addon (normal dependencies of the binding
// crate, not proc-macros or build scripts), for THIRD-PARTY-LICENSES.txt in the platform
// package: their licences (MIT, Apache-2.0, ISC, ...) ask that copies of them carry them.
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';

const MIT = `Permission is hereby granted, free of charge, to any person obtaining a copy of this software
and associated documentation files (the "Software"), to deal in the Software without
restriction, including without limitation the rights to use, copy, modify, merge, publish,
distribute, sublicense, and/or sell copies of the Software, and to permit persons to whom the
Software is furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or
substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING
BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND
NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM,
DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.`;

/**
 * @param {string} packageDir packages/netlink-native
 * @returns {string} the text of THIRD-PARTY-LICENSES.txt
 */
export function rustNotices(packageDir) {
  const cargo = (/** @type {string[]} */ args) => execFileSync('cargo', [...args, '--offline'], { cwd: packageDir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const linked = new Set(
    cargo(['tree', '-p', 'usip-netlink-native', '-e', 'normal,no-proc-macro', '--prefix', 'none', '--format', '{p}'])
      .split('\n')
      .map((line) => /^(\S+) v(\S+)/.exec(line))
      .filter((m) => m !== null)
      .map((m) => `${m[1]} ${m[2]}`),
  );
  /** @type {{ packages: { name: string, version: string, license: string | null, authors: string[], manifest_path: string, source: string | null }[] }} */
  const metadata = JSON.parse(cargo(['metadata', '--format-version', '1']));
  const sections = metadata.packages
    .filter((p) => p.source !== null && linked.has(`${p.name} ${p.version}`))
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((p) => {
      const dir = dirname(p.manifest_path);
      const files = readdirSync(dir).filter((f) => /^(licen[cs]e|copying|notice)/i.test(f)).sort();
      // Offered under "MIT OR ...": taken under MIT, whose notice is the one to keep.
      const mitFile = files.find((f) => /mit/i.test(f));
      const chosen = mitFile && / OR /.test(p.license ?? '') ? [mitFile] : files;
      const texts = chosen.map((f) => readFileSync(join(dir, f), 'utf8').trim());
      if (texts.length === 0) {
        if (p.license !== 'MIT') throw new Error(`crate ${p.name} ${p.version} (${p.license}) has no licence file to ship`);
        // The napi crates publish none: their Cargo.toml says MIT; the MIT terms, with its authors.
        texts.push(`Copyright (c) ${p.authors.join(', ') || `the authors of ${p.name}`}\n\n${MIT}`);
      }
      return `${p.name} ${p.version} (${p.license})\n\n${texts.join('\n\n')}\n`;
    });
  const rule = `\n${'-'.repeat(78)}\n\n`;
  return `The addon links these Rust crates; each is under its own licence, reproduced here.${rule}${sections.join(rule)}`;
}
