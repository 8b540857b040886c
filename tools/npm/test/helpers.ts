// Packs the published packages into a temporary directory (outside the repository) and unpacks
// each tarball, so the tests look at exactly what `npm publish` would upload.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PACKAGES, packAll, workspaceRoot, type Packed } from '../pack.mjs';

export { PACKAGES, workspaceRoot };

export interface Manifest {
  name: string;
  version: string;
  private?: boolean;
  license?: string;
  engines?: Record<string, string>;
  main?: string;
  types?: string;
  bin?: Record<string, string>;
  exports?: Record<string, unknown>;
  os?: string[];
  cpu?: string[];
  libc?: string[];
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  publishConfig?: { access?: string };
  napi?: { binaryName?: string; targets?: string[] };
  [key: string]: unknown;
}

export interface Unpacked extends Packed {
  /** Where the tarball was unpacked (its package/ directory). */
  dir: string;
  manifest: Manifest;
  /** Paths inside the package, from npm's report. */
  paths: string[];
}

export interface PackRun {
  root: string;
  packages: Map<string, Unpacked>;
  remove(): void;
}

export function packAndUnpack(): PackRun {
  const root = mkdtempSync(join(tmpdir(), 'usip-npm-'));
  const packed = packAll(join(root, 'tarballs'));
  const packages = new Map<string, Unpacked>();
  for (const p of packed) {
    const dir = join(root, 'unpacked', p.name.replace('/', '+'));
    mkdirSync(dir, { recursive: true });
    execFileSync('tar', ['-xzf', p.filename, '-C', dir]);
    const packageDir = join(dir, 'package');
    packages.set(p.name, {
      ...p,
      dir: packageDir,
      manifest: JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8')) as Manifest,
      paths: p.files.map((f) => f.path).sort(),
    });
  }
  return { root, packages, remove: () => rmSync(root, { recursive: true, force: true }) };
}
