#!/usr/bin/env node
// @ts-check
// Packs the five published packages (what `npm publish` would upload) into dist/npm/, or into
// the directory given with --destination; prints one line per tarball. Run after the builds:
//   npx nx run-many -t build -p netlink-native client cli config-agent && node tools/npm/pack.mjs
// Imported, it gives the list and the function (the tests and the Debian packaging use them).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const workspaceRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** The published packages, dependencies first. */
export const PACKAGES = [
  { name: '@usip/netlink-native-linux-x64-gnu', dir: 'packages/netlink-native/npm/linux-x64-gnu' },
  { name: '@usip/netlink-native', dir: 'packages/netlink-native' },
  { name: '@usip/client', dir: 'packages/client' },
  { name: '@usip/cli', dir: 'packages/cli' },
  { name: '@usip/config-agent', dir: 'packages/config-agent' },
];

/**
 * @typedef {{ path: string, size: number, mode: number }} PackedFile
 * @typedef {{ name: string, version: string, filename: string, files: PackedFile[] }} Packed
 */

/** The files a package's manifest points at (main, bin, exports), which must be built. */
function entryFiles(/** @type {any} */ manifest) {
  const files = [];
  if (typeof manifest.main === 'string') files.push(manifest.main);
  for (const path of Object.values(manifest.bin ?? {})) files.push(path);
  const walk = (/** @type {unknown} */ value) => {
    if (typeof value === 'string') files.push(value);
    else if (value && typeof value === 'object') Object.values(value).forEach(walk);
  };
  walk(manifest.exports);
  return files;
}

/** Throws, naming the file and the build to run, when a package is not built. */
export function checkBuilt() {
  for (const { name, dir } of PACKAGES) {
    const manifest = JSON.parse(readFileSync(join(workspaceRoot, dir, 'package.json'), 'utf8'));
    if (manifest.name !== name) throw new Error(`${dir}/package.json: expected name ${name}, got ${manifest.name}`);
    for (const file of entryFiles(manifest)) {
      if (!existsSync(join(workspaceRoot, dir, file))) {
        throw new Error(
          `${name}: ${join(dir, file)} is missing: build first (npx nx run-many -t build -p netlink-native client cli config-agent)`,
        );
      }
    }
  }
}

/**
 * Packs every package into `destination` (made if needed); with dryRun, only lists what would
 * go in. Returns npm's own report of each tarball, with `filename` made absolute.
 * @param {string} destination
 * @param {{ dryRun?: boolean }} [options]
 * @returns {Packed[]}
 */
export function packAll(destination, options = {}) {
  checkBuilt();
  mkdirSync(destination, { recursive: true });
  const args = ['pack', '--json', '--pack-destination', destination, ...(options.dryRun ? ['--dry-run'] : [])];
  const output = execFileSync('npm', [...args, ...PACKAGES.map((p) => `./${p.dir}`)], {
    cwd: workspaceRoot,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  /** @type {Packed[]} */
  const packed = JSON.parse(output);
  if (packed.length !== PACKAGES.length) throw new Error(`npm pack made ${packed.length} tarballs, expected ${PACKAGES.length}`);
  return packed.map((p) => ({ ...p, filename: join(destination, p.filename) }));
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const at = process.argv.indexOf('--destination');
  const destination = resolve((at > 0 && process.argv[at + 1]) || join(workspaceRoot, 'dist/npm'));
  try {
    for (const p of packAll(destination)) console.log(`${p.name}@${p.version}  ${p.filename}  (${p.files.length} files)`);
  } catch (error) {
    console.error(`pack: ${/** @type {Error} */ (error).message}`);
    process.exit(1);
  }
}
