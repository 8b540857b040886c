// Builds an out-of-tree kernel module for each selected kernel, each in its own copy of the
// source tree, so two kernels never share object files.
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, resolve, sep } from 'node:path';
import { inRoot } from './build-root.js';
import { exec, tail, type ExecResult } from './exec.js';
import { resolveKernels, type Kernel, type Logger } from './kernels.js';

export interface BuildModuleOptions {
  /** A selector ("6.1", "6.12", "all", a release) or resolved kernels. */
  kernel: string | Kernel[];
  /** The module's source directory: holds Kbuild and/or Makefile. */
  src: string;
  /** The build goes to <out>/<release>/. */
  out: string;
  /** Where make's output goes as it runs (default process.stderr, so warnings are seen). */
  echo?: NodeJS.WritableStream | null;
  log?: Logger;
}

export interface BuiltModule {
  kernel: Kernel;
  /** The build directory (<out>/<release>). */
  dir: string;
  /** Absolute paths of the built .ko files. */
  modules: string[];
  /** make's complete output (compiler warnings included). */
  output: string;
}

/**
 * make in a build root (chroot): the tree is copied into the root (the root cannot see the
 * host's files), built there, and the result copied back over `dir`, timestamps kept so the
 * next build is incremental in both places. The copy in the root is keyed by `dir`.
 */
async function makeInRoot(kernel: Kernel, root: string, dir: string, echo: NodeJS.WritableStream | null): Promise<ExecResult> {
  const key = createHash('sha256').update(dir).digest('hex').slice(0, 16);
  const inside = `/var/tmp/usip-build/${key}`;
  const there = join(root, inside);
  mkdirSync(there, { recursive: true });
  cpSync(dir, there, { recursive: true, preserveTimestamps: true });
  const headers = kernel.headersDir.startsWith(root + sep) ? kernel.headersDir.slice(root.length) : kernel.headersDir;
  const r = await inRoot(root, ['make', '-C', headers, `M=${inside}`, `-j${Math.max(1, cpus().length)}`, 'modules'], {
    echo: echo ?? undefined,
    allowFailure: true,
  });
  cpSync(there, dir, { recursive: true, preserveTimestamps: true });
  // Paths in make's messages are the root's: say where the files really are.
  const host = (text: string) => text.split(inside).join(dir);
  return { code: r.code, stdout: host(r.stdout), stderr: host(r.stderr) };
}

/** Top-level entries of a source tree never copied into a build tree. */
const EXCLUDED = new Set(['build', 'test', 'node_modules', '.git']);

/** The .ko files a build made, from modules.order (which lists .o or .ko paths), or found. */
function builtModules(dir: string): string[] {
  const order = join(dir, 'modules.order');
  if (existsSync(order)) {
    const listed = readFileSync(order, 'utf8')
      .split('\n')
      .map((l) => l.trim().replace(/^kernel\//, ''))
      .filter((l) => l !== '')
      .map((l) => join(dir, l.replace(/\.o$/, '.ko')));
    if (listed.length > 0 && listed.every((p) => existsSync(p))) return listed;
  }
  const found: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else if (e.name.endsWith('.ko')) found.push(join(d, e.name));
    }
  };
  walk(dir);
  return found.sort();
}

export async function buildModule(options: BuildModuleOptions): Promise<BuiltModule[]> {
  const log = options.log ?? (() => {});
  const src = resolve(options.src);
  const out = resolve(options.out);
  if (!existsSync(src) || !statSync(src).isDirectory()) throw new Error(`module source directory ${src} does not exist`);
  if (!existsSync(join(src, 'Kbuild')) && !existsSync(join(src, 'Makefile'))) {
    throw new Error(`${src} has neither a Kbuild nor a Makefile: it is not a kernel module source directory`);
  }
  const kernels = typeof options.kernel === 'string' ? await resolveKernels(options.kernel, { log }) : options.kernel;
  const echo = options.echo === undefined ? process.stderr : options.echo;
  const results: BuiltModule[] = [];
  for (const kernel of kernels) {
    const dir = join(out, kernel.release);
    // Timestamps are kept, so make rebuilds only what changed since the last copy. Entry by
    // entry: the output directory may lie inside the source (cpSync refuses a copy into itself).
    mkdirSync(dir, { recursive: true });
    for (const entry of readdirSync(src)) {
      const from = join(src, entry);
      if (EXCLUDED.has(entry) || resolve(from) === out || out.startsWith(resolve(from) + sep)) continue;
      cpSync(from, join(dir, entry), {
        recursive: true,
        preserveTimestamps: true,
        filter: (path) => {
          const abs = resolve(path);
          return abs !== out && !abs.startsWith(out + sep);
        },
      });
    }
    log(`building ${src} for ${kernel.release} in ${dir}${kernel.buildRoot ? ` (in the build root ${kernel.buildRoot})` : ''}`);
    const r = kernel.buildRoot ? await makeInRoot(kernel, kernel.buildRoot, dir, echo) : await exec(
      'make',
      ['-C', kernel.headersDir, `M=${dir}`, `-j${Math.max(1, cpus().length)}`, 'modules'],
      { echo: echo ?? undefined, allowFailure: true },
    );
    const output = r.stdout + r.stderr;
    if (r.code !== 0) {
      throw new Error(`building the module in ${src} for ${kernel.release} failed (make exited with ${r.code}):\n${tail(output, 30)}`);
    }
    const modules = builtModules(dir);
    if (modules.length === 0) throw new Error(`make built no .ko for ${kernel.release} in ${dir} (is obj-m set in Kbuild?)`);
    results.push({ kernel, dir, modules, output });
  }
  return results;
}
