// Loads the native addon on first use, so importing the package (for types, constants or error
// checks) works where the addon is not built or cannot load.
//
// Where the addon comes from, the napi-rs way: an installed package ships no binary of its own;
// npm installs the one optional dependency @usip/netlink-native-<target> whose os, cpu and libc
// match the machine, and this loader asks Node's resolver for it. In this workspace that package
// is linked to npm/<target>/, where the build copies the addon; where no package is found (a
// copy of dist/, a target nothing is published for) the addon next to dist/index.js is used.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { NativeBinding } from './native.js';

/** The targets published as @usip/netlink-native-<target> (napi.targets in package.json). */
export const PREBUILT_TARGETS: readonly string[] = ['linux-x64-gnu'];

/** Names the addon to load instead of the package's (a build from source on another target). */
export const ADDON_PATH_VARIABLE = 'USIP_NETLINK_ADDON';

const PACKAGE = '@usip/netlink-native';
const SOURCE_TREE_ADDON = 'usip-netlink.node';
const FROM_SOURCE = `build the addon from source (Rust: \`npx nx build netlink-native\` in a clone of USIP) and set ${ADDON_PATH_VARIABLE} to its dist/${SOURCE_TREE_ADDON}`;

export type Libc = 'gnu' | 'musl';

/** What tells glibc from musl: /usr/bin/ldd, or process.report.getReport(). */
export interface LibcEvidence {
  report?: { header?: { glibcVersionRuntime?: string }; sharedObjects?: unknown };
  /** The text of /usr/bin/ldd. */
  ldd?: string;
}

/**
 * glibc or musl, from the evidence napi-rs's generated loaders use: /usr/bin/ldd (glibc's is a
 * script, musl's is musl's loader: either way it names its libc, and reading it is cheap); failing
 * that, the process's diagnostic report, whose header has glibcVersionRuntime under glibc and
 * whose shared objects include musl's loader under musl. glibc when nothing says musl.
 */
export function libcFrom(evidence: LibcEvidence): Libc {
  if (evidence.ldd !== undefined) return evidence.ldd.includes('musl') ? 'musl' : 'gnu';
  if (evidence.report?.header?.glibcVersionRuntime) return 'gnu';
  const objects = evidence.report?.sharedObjects;
  if (Array.isArray(objects) && objects.some((o) => typeof o === 'string' && (o.includes('ld-musl-') || o.includes('libc.musl-')))) {
    return 'musl';
  }
  return 'gnu';
}

/** The running process's libc (Linux only). */
export function detectLibc(): Libc {
  try {
    return libcFrom({ ldd: readFileSync('/usr/bin/ldd', 'latin1') });
  } catch {
    // No ldd (a minimal container): ask the diagnostic report.
  }
  // excludeNetwork (Node 20.13+) is missing from @types/node 20.
  const report = process.report as (NodeJS.ProcessReport & { excludeNetwork?: boolean }) | undefined;
  if (typeof report?.getReport !== 'function') return 'gnu';
  // Without excludeNetwork the report resolves the host's network interfaces: slow, and needless.
  const excludeNetwork = report.excludeNetwork;
  report.excludeNetwork = true;
  try {
    return libcFrom({ report: report.getReport() as LibcEvidence['report'] });
  } finally {
    report.excludeNetwork = excludeNetwork;
  }
}

/** The napi-rs target name of a machine: linux-x64-gnu, linux-arm64-musl, darwin-arm64, ... */
export function nativeTarget(platform: string = process.platform, arch: string = process.arch, libc?: Libc): string {
  if (platform !== 'linux') return `${platform}-${arch}`;
  return `${platform}-${arch}-${libc ?? detectLibc()}`;
}

/** The platform package of a target. */
export function platformPackage(target: string): string {
  return `${PACKAGE}-${target}`;
}

/** No addon can be found for this machine: names its target, what exists, and what to do. */
export class NativeAddonMissingError extends Error {
  readonly target: string;
  constructor(target: string, detail: string) {
    super(`no ${PACKAGE} build for ${target}; supported: ${PREBUILT_TARGETS.join(', ')}; ${detail}`);
    this.name = 'NativeAddonMissingError';
    this.target = target;
  }
}

export interface AddonLocation {
  /** Where it was found: the env variable, the platform package, or the source tree's dist/. */
  kind: 'variable' | 'package' | 'source-tree';
  path: string;
}

export interface LocateOptions {
  /** The module the platform package is resolved from (a file path or file: URL). */
  from: string | URL;
  /** The source tree's build of the addon, used when no platform package is installed. */
  sourceTreeAddon: string;
  target: string;
  /** The value of USIP_NETLINK_ADDON, if set. */
  addonPath?: string | undefined;
}

/** Where the addon for `target` is, resolving the platform package as Node would from `from`. */
export function locateAddon(options: LocateOptions): AddonLocation {
  if (options.addonPath !== undefined && options.addonPath !== '') {
    if (!existsSync(options.addonPath)) {
      throw new NativeAddonMissingError(options.target, `${ADDON_PATH_VARIABLE}=${options.addonPath} does not exist`);
    }
    return { kind: 'variable', path: options.addonPath };
  }
  const name = platformPackage(options.target);
  try {
    // The package's main is the .node file, so resolving the package finds the binary itself.
    return { kind: 'package', path: createRequire(options.from).resolve(name) };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw error;
  }
  if (existsSync(options.sourceTreeAddon)) return { kind: 'source-tree', path: options.sourceTreeAddon };
  const detail = PREBUILT_TARGETS.includes(options.target)
    ? `its package ${name} is not installed (npm install --omit=optional?): reinstall ${PACKAGE}, or ${FROM_SOURCE}`
    : FROM_SOURCE;
  throw new NativeAddonMissingError(options.target, detail);
}

let binding: NativeBinding | undefined;

export function loadBinding(): NativeBinding {
  if (binding) return binding;
  const target = nativeTarget();
  const location = locateAddon({
    from: import.meta.url,
    // dist/ for both the built module (dist/index.js) and the sources (src/index.ts, run by the
    // tests through tsx).
    sourceTreeAddon: fileURLToPath(new URL(`../dist/${SOURCE_TREE_ADDON}`, import.meta.url)),
    target,
    addonPath: process.env[ADDON_PATH_VARIABLE],
  });
  try {
    binding = createRequire(import.meta.url)(location.path) as NativeBinding;
  } catch (error) {
    throw new Error(`${PACKAGE}: cannot load the addon ${location.path} (${location.kind}, for ${target}): ${(error as Error).message}`, {
      cause: error,
    });
  }
  return binding;
}
