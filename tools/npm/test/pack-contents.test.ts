// What `npm pack` puts in each published package: no tests, no TypeScript sources but
// declarations, source maps only beside their script and carrying their sources, the types
// `exports` points at, engines, executable bins with a shebang, LICENSE and README, the platform
// package's os/cpu/libc and its addon, no `private`, exact versions between the packages.
import { closeSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PACKAGES, packAndUnpack, type PackRun, type Unpacked } from './helpers.js';

const DUAL = 'LGPL-2.1-or-later OR BSD-2-Clause';
const PLATFORM = '@usip/netlink-native-linux-x64-gnu';
let run: PackRun;

test.before(() => {
  run = packAndUnpack();
});
test.after(() => run?.remove());

function each(check: (p: Unpacked) => void): void {
  assert.equal([...run.packages.keys()].sort(), PACKAGES.map((p) => p.name).sort());
  for (const p of run.packages.values()) {
    try {
      check(p);
    } catch (error) {
      if (error instanceof Error) error.message = `${p.name}: ${error.message}`;
      throw error;
    }
  }
}

function head(path: string, bytes: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const buffer = Buffer.alloc(bytes);
    return buffer.subarray(0, readSync(fd, buffer, 0, bytes, 0));
  } finally {
    closeSync(fd);
  }
}

test('every package is publishable: no private, a version, public access, the dual licence, Node >= 20.19', () => {
  each(({ manifest }) => {
    assert.is(manifest.private, undefined);
    assert.is(manifest.version, '0.1.0');
    assert.is(manifest.publishConfig?.access, 'public');
    assert.is(manifest.license, DUAL);
    assert.is(manifest.engines?.node, '>=20.19');
    assert.type(manifest.description, 'string');
    // No repository we could name honestly: none is invented.
    assert.is(manifest.repository, undefined);
    // The workspace's own fields do not matter to npm, but devDependencies must not leak into dependencies.
    assert.not.ok(Object.keys(manifest.dependencies ?? {}).includes('@usip/vm'));
  });
});

test('no tests, no sources but declarations, no stray build files', () => {
  each(({ paths }) => {
    for (const path of paths) {
      assert.not.ok(/(^|\/)(test|tests|__tests__)\//.test(path), `test directory: ${path}`);
      assert.not.ok(/\.(test|spec)\.[cm]?[jt]s$/.test(path), `test file: ${path}`);
      assert.not.ok(/\.[cm]?ts$/.test(path) && !/\.d\.[cm]?ts$/.test(path), `TypeScript source: ${path}`);
      assert.not.ok(/(^|\/)(src|crates|target|scripts|tsconfig[^/]*\.json|tsup\.config\.ts|metafile[^/]*\.json)($|\/)/.test(path), `build input: ${path}`);
    }
  });
});

test('LICENSE, both licence texts and README are in every package', () => {
  each(({ paths, dir }) => {
    for (const file of ['LICENSE', 'LICENSE.LGPL-2.1', 'LICENSE.BSD-2-Clause', 'README.md', 'package.json']) {
      assert.ok(paths.includes(file), `${file} missing`);
    }
    assert.match(readFileSync(join(dir, 'LICENSE'), 'utf8'), `SPDX-License-Identifier: ${DUAL}`);
    assert.match(readFileSync(join(dir, 'LICENSE.LGPL-2.1'), 'utf8'), 'GNU LESSER GENERAL PUBLIC LICENSE');
    assert.match(readFileSync(join(dir, 'LICENSE.BSD-2-Clause'), 'utf8'), 'Copyright (c) 2026, The USIP authors');
  });
});

// The rule for source maps: shipped, because each carries the sources it maps (sourcesContent),
// so `node --enable-source-maps` shows TypeScript lines in a daemon's stack traces without the
// sources in the package; a map never comes without its script, nor a script without the map it names.
test('source maps only beside their script, named by it, with every source embedded', () => {
  each(({ paths, dir }) => {
    for (const path of paths.filter((p) => p.endsWith('.map'))) {
      const script = path.slice(0, -'.map'.length);
      assert.ok(paths.includes(script), `${path} without ${script}`);
      const map = JSON.parse(readFileSync(join(dir, path), 'utf8')) as { sources: string[]; sourcesContent?: (string | null)[] };
      // (A map of no source is tsup's for a module of re-exports only: config-agent's index.js.)
      assert.is(map.sourcesContent?.length, map.sources.length, `${path}: sourcesContent`);
      assert.ok(map.sourcesContent!.every((s) => typeof s === 'string' && s.length > 0), `${path}: an empty source`);
    }
    for (const path of paths.filter((p) => p.endsWith('.js'))) {
      const named = /\/\/# sourceMappingURL=(\S+)\s*$/.exec(readFileSync(join(dir, path), 'utf8'))?.[1];
      assert.ok(named, `${path} names no source map`);
      assert.ok(paths.includes(join(path, '..', named!)), `${path} names ${named!}, which is not in the package`);
    }
  });
});

test('exports: types first and present, import present, package.json exported', () => {
  each(({ manifest, paths, name }) => {
    if (name === PLATFORM) return;
    const exports = manifest.exports as Record<string, string | Record<string, string>>;
    assert.is(exports['./package.json'], './package.json');
    for (const [key, target] of Object.entries(exports)) {
      if (typeof target === 'string') {
        assert.ok(paths.includes(target.replace(/^\.\//, '')), `exports[${key}] = ${target} is not in the package`);
        continue;
      }
      assert.equal(Object.keys(target)[0], 'types', `exports[${key}]: types must come first`);
      for (const [condition, file] of Object.entries(target)) {
        assert.ok(paths.includes(file.replace(/^\.\//, '')), `exports[${key}].${condition} = ${file} is not in the package`);
      }
      assert.ok(target.types!.endsWith('.d.ts'));
    }
    if (exports['.'] !== undefined) {
      assert.is(manifest.types, (exports['.'] as Record<string, string>).types);
    }
  });
  // The libraries have an entry point; the command line has only its bin.
  for (const name of ['@usip/netlink-native', '@usip/client', '@usip/config-agent']) {
    assert.ok(run.packages.get(name)!.manifest.exports!['.'], `${name} has no "." export`);
  }
});

test('bins: usip and usip-agent, executable, starting with a node shebang', () => {
  const bins = new Map<string, string>();
  each(({ manifest, files, dir }) => {
    for (const [command, path] of Object.entries(manifest.bin ?? {})) {
      const file = files.find((f) => f.path === path.replace(/^\.\//, ''));
      assert.ok(file, `bin ${command}: ${path} is not in the package`);
      assert.ok((file!.mode & 0o111) === 0o111, `bin ${command}: mode ${file!.mode.toString(8)}`);
      assert.ok((statSync(join(dir, path)).mode & 0o111) === 0o111, `bin ${command}: unpacked not executable`);
      assert.is(readFileSync(join(dir, path), 'utf8').split('\n')[0], '#!/usr/bin/env node');
      bins.set(command, manifest.name);
    }
  });
  assert.equal(Object.fromEntries(bins), { usip: '@usip/cli', 'usip-agent': '@usip/config-agent' });
});

test('the platform package: os, cpu, libc, and the addon as its main', () => {
  const { manifest, paths, dir } = run.packages.get(PLATFORM)!;
  assert.equal(manifest.os, ['linux']);
  assert.equal(manifest.cpu, ['x64']);
  assert.equal(manifest.libc, ['glibc']);
  assert.is(manifest.main, 'usip-netlink.linux-x64-gnu.node');
  assert.ok(paths.includes(manifest.main!), 'the addon is not in the package');
  const elf = head(join(dir, manifest.main!), 20);
  assert.equal([...elf.subarray(0, 4)], [0x7f, 0x45, 0x4c, 0x46], 'not an ELF file');
  assert.is(elf[4], 2, 'not a 64-bit ELF');
  assert.is(elf.readUInt16LE(18), 62, 'not an x86-64 ELF (e_machine)');
  assert.equal(paths.filter((p) => p.endsWith('.node')), [manifest.main!]);
  // The notices of the Rust crates the addon links.
  const notices = readFileSync(join(dir, 'THIRD-PARTY-LICENSES.txt'), 'utf8');
  for (const crate of ['napi', 'tokio', 'libc']) assert.match(notices, new RegExp(`^${crate} \\d+\\.\\d+\\.\\d+ \\(`, 'm'));
});

test('@usip/netlink-native: no binary of its own, the platform package as an exact optional dependency and napi target', () => {
  const { manifest, paths } = run.packages.get('@usip/netlink-native')!;
  assert.equal(paths.filter((p) => p.endsWith('.node')), []);
  assert.equal(manifest.optionalDependencies, { [PLATFORM]: manifest.version });
  assert.equal(manifest.napi, { binaryName: 'usip-netlink', targets: ['x86_64-unknown-linux-gnu'] });
  for (const p of run.packages.values()) {
    if (p.name !== '@usip/netlink-native') assert.equal(p.paths.filter((f) => f.endsWith('.node') && p.name !== PLATFORM), []);
  }
});

test('dependencies between the packages are exact versions of what is packed', () => {
  let seen = 0;
  each(({ manifest }) => {
    for (const deps of [manifest.dependencies, manifest.optionalDependencies]) {
      for (const [name, range] of Object.entries(deps ?? {})) {
        if (!name.startsWith('@usip/')) continue;
        assert.ok(run.packages.has(name), `depends on ${name}, which is not published`);
        assert.is(range, run.packages.get(name)!.manifest.version, `${name}@${range}`);
        seen++;
      }
    }
  });
  // netlink-native -> platform, client -> netlink-native, cli -> client, config-agent -> client.
  assert.ok(seen >= 4, `only ${seen} internal dependencies`);
});

test('the agent ships the notices of what it bundles', () => {
  const { paths, dir } = run.packages.get('@usip/config-agent')!;
  assert.ok(paths.includes('dist/THIRD-PARTY-LICENSES.txt'));
  const notices = readFileSync(join(dir, 'dist/THIRD-PARTY-LICENSES.txt'), 'utf8');
  for (const name of ['ajv', 'pino', 'commander', 'chokidar']) assert.match(notices, new RegExp(`^${name}@\\d`, 'm'));
});

test.run();
