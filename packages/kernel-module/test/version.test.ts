// The module version is written once (VERSION); everything that repeats it must agree.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { builtModule, moduleRoot, moduleVersion, supportedKernels } from './helpers.js';

const kernels = await supportedKernels();

test('VERSION holds a plain version number', () => {
  assert.match(moduleVersion, /^\d+\.\d+\.\d+$/);
});

test('dkms.conf PACKAGE_VERSION and PACKAGE_NAME agree with VERSION and the module name', () => {
  const conf = readFileSync(join(moduleRoot, 'dkms.conf'), 'utf8');
  assert.is(/^PACKAGE_VERSION="([^"]*)"$/m.exec(conf)?.[1], moduleVersion);
  assert.is(/^PACKAGE_NAME="([^"]*)"$/m.exec(conf)?.[1], 'usip');
  assert.is(/^BUILT_MODULE_NAME\[0\]="([^"]*)"$/m.exec(conf)?.[1], 'usip');
});

test('package.json version agrees with VERSION', () => {
  const pkg = JSON.parse(readFileSync(join(moduleRoot, 'package.json'), 'utf8')) as { version: string };
  assert.is(pkg.version, moduleVersion);
});

test('there is a kernel of each supported series to test on', () => {
  assert.equal(kernels.map((k) => k.selector), ['6.1', '6.12', '7']);
});

for (const kernel of kernels) {
  test(`${kernel.release}: the built usip.ko carries VERSION, the GPL licence, the family alias and this kernel's vermagic`, () => {
    const ko = builtModule(kernel.release);
    assert.ok(existsSync(ko), `${ko} is missing: run NX_DAEMON=false npx nx run kernel-module:build`);
    const field = (name: string): string => execFileSync('modinfo', ['-F', name, ko], { encoding: 'utf8' }).trim();
    assert.is(field('version'), moduleVersion);
    assert.is(field('license'), 'GPL');
    assert.is(field('name'), 'usip');
    assert.ok(field('alias').split('\n').includes('net-pf-16-proto-16-family-usip'), field('alias'));
    assert.match(field('description'), /Universal Storage Information Provider/);
    assert.is(field('vermagic').split(' ')[0], kernel.release);
  });
}

test.run();
