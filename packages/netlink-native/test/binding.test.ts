// Which addon the loader picks: the platform package for this machine's target, found by Node's
// own resolver in real node_modules trees under a temporary directory, else the source tree's
// build, else an error naming the target. The addon copied into those trees is the real build.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  NativeAddonMissingError,
  PREBUILT_TARGETS,
  detectLibc,
  libcFrom,
  loadBinding,
  locateAddon,
  nativeTarget,
  platformPackage,
} from '../src/binding.js';

const packageDir = dirname(dirname(fileURLToPath(import.meta.url)));
const builtAddon = join(packageDir, 'dist/usip-netlink.node');
const platformManifest = JSON.parse(readFileSync(join(packageDir, 'npm/linux-x64-gnu/package.json'), 'utf8')) as {
  name: string;
  main: string;
};

const roots: string[] = [];
test.after(() => {
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

/** An empty project with @usip/netlink-native's dist/index.js in node_modules (a placeholder file:
 *  resolution starts from its path). */
function project(): { root: string; from: URL; sourceTreeAddon: string } {
  const root = mkdtempSync(join(tmpdir(), 'usip-binding-'));
  roots.push(root);
  const dist = join(root, 'node_modules/@usip/netlink-native/dist');
  mkdirSync(dist, { recursive: true });
  writeFileSync(join(dist, 'index.js'), '');
  return { root, from: pathToFileURL(join(dist, 'index.js')), sourceTreeAddon: join(dist, 'usip-netlink.node') };
}

/** Installs the platform package (its real manifest) under `nodeModules`, with or without the addon. */
function installPlatformPackage(nodeModules: string, withAddon = true): string {
  const dir = join(nodeModules, platformManifest.name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify(platformManifest));
  if (withAddon) copyFileSync(builtAddon, join(dir, platformManifest.main));
  return join(dir, platformManifest.main);
}

function missing(run: () => unknown): NativeAddonMissingError {
  try {
    run();
  } catch (error) {
    if (error instanceof NativeAddonMissingError) return error;
    throw error;
  }
  throw new assert.Assertion({ message: 'expected NativeAddonMissingError', operator: 'throws', expects: 'an error', actual: 'no error' });
}

test('libc: /usr/bin/ldd decides when readable, else the diagnostic report', () => {
  assert.is(libcFrom({ ldd: readFileSync('/usr/bin/ldd', 'latin1') }), 'gnu');
  assert.is(libcFrom({ ldd: '#!/bin/sh\nexec /lib/ld-musl-x86_64.so.1 --list "$@"\n' }), 'musl');
  assert.is(libcFrom({ report: { header: { glibcVersionRuntime: '2.36' }, sharedObjects: [] } }), 'gnu');
  assert.is(libcFrom({ report: { header: {}, sharedObjects: ['/lib/ld-musl-aarch64.so.1', '/usr/lib/libstdc++.so.6'] } }), 'musl');
  assert.is(libcFrom({}), 'gnu');
});

test('libc of this machine agrees with its diagnostic report', () => {
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } }).header;
  assert.is(detectLibc(), header?.glibcVersionRuntime ? 'gnu' : 'musl');
});

test('target names are napi-rs names', () => {
  assert.is(nativeTarget('linux', 'x64', 'gnu'), 'linux-x64-gnu');
  assert.is(nativeTarget('linux', 'arm64', 'musl'), 'linux-arm64-musl');
  assert.is(nativeTarget('darwin', 'arm64'), 'darwin-arm64');
  assert.is(nativeTarget(), `linux-${process.arch}-${detectLibc()}`);
  assert.is(platformPackage('linux-x64-gnu'), '@usip/netlink-native-linux-x64-gnu');
  assert.equal([...PREBUILT_TARGETS], ['linux-x64-gnu']);
});

test('the platform package is picked when installed, and its addon loads', () => {
  const { root, from, sourceTreeAddon } = project();
  const addon = installPlatformPackage(join(root, 'node_modules'));
  // A source-tree build next to dist/ as well: the package still wins.
  copyFileSync(builtAddon, sourceTreeAddon);
  const location = locateAddon({ from, sourceTreeAddon, target: 'linux-x64-gnu' });
  assert.equal(location, { kind: 'package', path: realpathSync(addon) });
  const binding = createRequire(import.meta.url)(location.path) as { mountApiSupport: () => { listmount: boolean } };
  assert.type(binding.mountApiSupport().listmount, 'boolean');
});

test('a platform package hoisted to a parent node_modules is found', () => {
  const { root } = project();
  const nested = join(root, 'app/node_modules/@usip/netlink-native/dist');
  mkdirSync(nested, { recursive: true });
  writeFileSync(join(nested, 'index.js'), '');
  const addon = installPlatformPackage(join(root, 'node_modules'));
  const location = locateAddon({ from: join(nested, 'index.js'), sourceTreeAddon: join(nested, 'usip-netlink.node'), target: 'linux-x64-gnu' });
  assert.equal(location, { kind: 'package', path: realpathSync(addon) });
});

test('without the platform package the source-tree build is used', () => {
  const { from, sourceTreeAddon } = project();
  copyFileSync(builtAddon, sourceTreeAddon);
  assert.equal(locateAddon({ from, sourceTreeAddon, target: 'linux-x64-gnu' }), { kind: 'source-tree', path: sourceTreeAddon });
});

test('neither: the error names the target, the missing package and how to build', () => {
  const { from, sourceTreeAddon } = project();
  const error = missing(() => locateAddon({ from, sourceTreeAddon, target: 'linux-x64-gnu' }));
  assert.is(error.target, 'linux-x64-gnu');
  assert.is(
    error.message,
    'no @usip/netlink-native build for linux-x64-gnu; supported: linux-x64-gnu; its package @usip/netlink-native-linux-x64-gnu ' +
      'is not installed (npm install --omit=optional?): reinstall @usip/netlink-native, or build the addon from source ' +
      '(Rust: `npx nx build netlink-native` in a clone of USIP) and set USIP_NETLINK_ADDON to its dist/usip-netlink.node',
  );
});

test('a platform package without its addon (a broken install) is not taken', () => {
  const { root, from, sourceTreeAddon } = project();
  installPlatformPackage(join(root, 'node_modules'), false);
  const error = missing(() => locateAddon({ from, sourceTreeAddon, target: 'linux-x64-gnu' }));
  assert.match(error.message, 'no @usip/netlink-native build for linux-x64-gnu');
});

test('an unsupported target: the error names it and what is supported, even beside another package', () => {
  const { root, from, sourceTreeAddon } = project();
  installPlatformPackage(join(root, 'node_modules'));
  const error = missing(() => locateAddon({ from, sourceTreeAddon, target: 'linux-arm64-musl' }));
  assert.is(error.target, 'linux-arm64-musl');
  assert.is(
    error.message,
    'no @usip/netlink-native build for linux-arm64-musl; supported: linux-x64-gnu; build the addon from source ' +
      '(Rust: `npx nx build netlink-native` in a clone of USIP) and set USIP_NETLINK_ADDON to its dist/usip-netlink.node',
  );
});

test('USIP_NETLINK_ADDON names the addon to load, and must exist', () => {
  const { root, from, sourceTreeAddon } = project();
  const own = join(root, 'built-here.node');
  copyFileSync(builtAddon, own);
  assert.equal(locateAddon({ from, sourceTreeAddon, target: 'linux-arm64-musl', addonPath: own }), { kind: 'variable', path: own });
  const error = missing(() => locateAddon({ from, sourceTreeAddon, target: 'linux-arm64-musl', addonPath: join(root, 'nope.node') }));
  assert.match(error.message, `USIP_NETLINK_ADDON=${join(root, 'nope.node')} does not exist`);
});

test('in this source tree the addon loads', () => {
  const binding = loadBinding() as unknown as { listKernelMounts: unknown };
  assert.type(binding.listKernelMounts, 'function');
});

test.run();
