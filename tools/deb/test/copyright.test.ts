// scripts/copyright.mjs on a made-up node_modules: the DEP-5 paragraphs it appends.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const script = fileURLToPath(new URL('../scripts/copyright.mjs', import.meta.url));
const HEADER = 'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nCopyright: 2026 USIP maintainers\nLicense: GPL-2\n\nLicense: GPL-2\n Text.\n';

function tree(packages: Record<string, { license?: string; author?: string; licenceFile?: string }>): { dir: string; copyright: string } {
  const dir = mkdtempSync(join(tmpdir(), 'usip-deb-copyright-'));
  for (const [name, p] of Object.entries(packages)) {
    const pkg = join(dir, 'usip/node_modules', name);
    mkdirSync(pkg, { recursive: true });
    writeFileSync(join(pkg, 'package.json'), JSON.stringify({ name: name.replace(/\/node_modules\//g, '/').split('/').slice(-2).join('/'), license: p.license, author: p.author }));
    if (p.licenceFile) writeFileSync(join(pkg, 'LICENSE'), p.licenceFile);
  }
  const copyright = join(dir, 'copyright');
  writeFileSync(copyright, HEADER);
  return { dir, copyright };
}

function run(dir: string, copyright: string): string {
  execFileSync('node', [script, dir, 'usip/node_modules', copyright], { stdio: ['ignore', 'ignore', 'pipe'] });
  return readFileSync(copyright, 'utf8');
}

test('one paragraph per package, scoped and nested ones too, with DEP-5 names and each licence once', () => {
  const { dir, copyright } = tree({
    '@usip/client': { license: 'LGPL-2.1-or-later OR BSD-2-Clause' },
    'left-pad': { license: 'MIT', licenceFile: 'MIT License\n\nCopyright (c) 2019 Some One\n\nPermission is hereby granted.\n' },
    'left-pad/node_modules/inner': { license: 'ISC', author: 'Inner Author', licenceFile: 'ISC licence text.\n' },
    apache: { license: 'Apache-2.0' },
  });
  try {
    const text = run(dir, copyright);
    assert.ok(text.startsWith(HEADER));
    assert.match(text, '\nFiles: usip/node_modules/@usip/client/*\nCopyright:\n 2026 USIP maintainers\nLicense: LGPL-2.1+ or BSD-2-clause\n');
    assert.match(text, '\nFiles: usip/node_modules/left-pad/*\nCopyright:\n 2019 Some One\nLicense: Expat\n');
    assert.match(text, '\nFiles: usip/node_modules/left-pad/node_modules/inner/*\nCopyright:\n Inner Author\nLicense: ISC\n');
    assert.match(text, '\nLicense: Expat\n MIT License\n .\n Copyright (c) 2019 Some One\n .\n Permission is hereby granted.\n');
    assert.match(text, '\nLicense: ISC\n ISC licence text.\n');
    assert.match(text, '\nLicense: LGPL-2.1+\n On Debian systems, the complete text of this licence can be found in\n "/usr/share/common-licenses/LGPL-2.1".\n');
    assert.match(text, '\nLicense: Apache-2.0\n On Debian systems');
    assert.match(text, '\nLicense: BSD-2-clause\n Redistribution and use in source and binary forms');
    // GPL-2 already has its paragraph in the header part: not repeated.
    assert.not.match(text.slice(HEADER.length), /^License: GPL-2$/m);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a package without a licence, or a licence without text, stops the build with its name', () => {
  for (const [packages, message] of [
    [{ nolicence: {} }, /nolicence\/package\.json declares no "license"/],
    [{ odd: { license: 'WTFPL' } }, /no text found for the licence WTFPL/],
  ] as const) {
    const { dir, copyright } = tree(packages);
    try {
      assert.throws(() => run(dir, copyright), (e: Error & { stderr?: Buffer }) => message.test(String(e.stderr)));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
});

test.run();
