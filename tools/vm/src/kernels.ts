// Resolves kernel selectors to Debian kernel releases (at run time, from apt), installs their
// headers with apt (Kbuild needs them installed: their Makefile includes the -common package by
// absolute path) and caches each kernel image, unpacked but not installed, under
// ${XDG_CACHE_HOME:-~/.cache}/usip/kernels/<release>/.
import { existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';
import {
  headersCandidatesFromMeta,
  headersCandidatesFromNames,
  majorOf,
  newestOfSeries,
  parseAptStanzas,
  parseKernelSelector,
  rtRelease,
  seriesOfRelease,
  type HeadersCandidate,
  type KernelSpec,
} from './apt.js';
import { compareDebianVersions } from './debian-version.js';
import { BUILD_ROOT_SUITE, ensureBuildRoot, inRoot, installInRoot, rootListsFresh, updateRootLists } from './build-root.js';
import { exec } from './exec.js';
import { withFileLock } from './lock.js';
import { aptLockFile, kernelsCacheDir, systemDepsScript, workspaceRoot } from './paths.js';
import { extractVmlinux } from './vmlinux.js';

export type Logger = (message: string) => void;

/** A kernel ready to build modules for and to boot. */
export interface Kernel {
  /** The selector word that chose it: "6.1", "6.12" or the exact release. */
  selector: string;
  /** "6.1" or "6.12". */
  series: string;
  /** As `uname -r` prints it, e.g. 6.1.0-56-amd64. */
  release: string;
  /** Debian version of its packages, e.g. 6.1.192-2 ("" when not known). */
  packageVersion: string;
  /** The compressed kernel from the Debian package. */
  vmlinuz: string;
  /** The uncompressed kernel (PVH ELF), booted instead of vmlinuz because it starts 4 s faster; null if it cannot be used. */
  vmlinux: string | null;
  /** The kernel's modules (depmod run), e.g. <cacheDir>/lib/modules/<release>. */
  modulesDir: string;
  /** Installed headers: the Kbuild directory (`/usr/src/linux-headers-<release>`). */
  headersDir: string;
  /** Where the kernel is cached. */
  cacheDir: string;
  /**
   * The Debian build root (chroot) whose toolchain builds modules for this kernel, when the
   * host's cannot (7.x); headersDir is then inside it. null: build on the host.
   */
  buildRoot: string | null;
}

export interface ResolveKernelsOptions {
  log?: Logger;
}

const noLog: Logger = () => {};

// Meta data format of <cacheDir>/kernel.json; bump when the cache layout changes.
const CACHE_FORMAT = 1;

interface CachedKernel {
  format: number;
  release: string;
  packageVersion: string;
  package: string;
  vmlinux: boolean;
}

let systemDeps: Promise<void> | null = null;

/** Runs tools/setup/system-deps.sh once per process (about 0.1 s when nothing is missing). */
export function ensureSystemDeps(): Promise<void> {
  systemDeps ??= exec('bash', [systemDepsScript], { echo: process.stderr }).then(
    () => undefined,
    (error: Error) => {
      systemDeps = null;
      throw new Error(`installing the system packages failed (${systemDepsScript}): ${error.message}`);
    },
  );
  return systemDeps;
}

async function withAptLock<T>(what: string, fn: () => Promise<T>): Promise<T> {
  return withFileLock(aptLockFile, what, fn);
}

const APT_ENV = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
const APT_OPTIONS = ['-o', 'DPkg::Lock::Timeout=600'];

let listsUpdated = false;
/** How many times this process ran apt-get update. */
let aptUpdates = 0;

/** Marks when this tool last refreshed apt's lists (apt's own file times are the mirror's). */
function updateMarker(): string {
  return join(kernelsCacheDir(), '.apt-updated');
}

function updatedRecently(): boolean {
  try {
    return Date.now() - statSync(updateMarker()).mtimeMs < 60 * 60 * 1000;
  } catch {
    return false;
  }
}

/**
 * Refreshes apt's lists, at most once per process; with `unlessRecent`, not if this tool did
 * so in the last hour (asking again for a series apt does not have should not hit the network).
 */
async function aptUpdate(log: Logger, unlessRecent = false): Promise<void> {
  if (listsUpdated || (unlessRecent && updatedRecently())) return;
  await withAptLock('apt-get update', () => aptUpdateLocked(log, 'apt-get update'));
}

/** apt-get update, for a caller that holds the apt lock. */
async function aptUpdateLocked(log: Logger, why: string): Promise<void> {
  log(why);
  await exec('apt-get', [...APT_OPTIONS, '-qq', 'update'], { env: APT_ENV });
  listsUpdated = true;
  aptUpdates += 1;
  mkdirSync(kernelsCacheDir(), { recursive: true });
  writeFileSync(updateMarker(), `${new Date().toISOString()}\n`);
}

// ---- version resolution ---------------------------------------------------------------------

/**
 * Identifies the state of apt's package lists and sources, so a resolution can be reused until
 * apt learns something new (resolving costs about a second of apt-cache; this costs a few stats).
 */
function aptListsFingerprint(): string {
  const parts: string[] = [];
  const add = (dir: string, keep: (name: string) => boolean) => {
    let names: string[] = [];
    try {
      names = readdirSync(dir).filter(keep).sort();
    } catch {
      return;
    }
    for (const name of names) {
      try {
        const st = statSync(join(dir, name));
        parts.push(`${dir}/${name}:${st.size}:${st.mtimeMs}`);
      } catch {
        // vanished while we looked: the fingerprint simply differs next time
      }
    }
  };
  add('/var/lib/apt/lists', (n) => n.includes('Packages'));
  add('/etc/apt/sources.list.d', () => true);
  add('/etc/apt/preferences.d', () => true);
  add('/etc/apt', (n) => n === 'sources.list' || n === 'preferences');
  return parts.join('\n');
}

interface ResolutionCache {
  fingerprint: string;
  series: Record<string, HeadersCandidate>;
}

function resolutionCachePath(): string {
  return join(kernelsCacheDir(), 'resolved.json');
}

function readResolutionCache(fingerprint: string): ResolutionCache {
  try {
    const cache = JSON.parse(readFileSync(resolutionCachePath(), 'utf8')) as ResolutionCache;
    if (cache.fingerprint === fingerprint && typeof cache.series === 'object') return cache;
  } catch {
    // absent or unreadable: resolve again
  }
  return { fingerprint, series: {} };
}

function writeAtomically(path: string, content: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, content);
  renameSync(tmp, path);
}

async function queryNewestOfSeries(series: string): Promise<HeadersCandidate | null> {
  // The meta packages say which ABI each suite currently supports: linux-headers-amd64 (one
  // version per suite: bookworm, -security, -backports) and linux-headers-<series>-amd64.
  const show = await exec('apt-cache', ['show', 'linux-headers-amd64', `linux-headers-${series}-amd64`], {
    allowFailure: true,
  });
  const fromMeta = newestOfSeries(headersCandidatesFromMeta(parseAptStanzas(show.stdout)), series);
  if (fromMeta) return fromMeta;
  // A suite that moved on to a newer series no longer points at this one: look at the names.
  const names = await exec('apt-cache', ['pkgnames', `linux-headers-${series}.`], { allowFailure: true });
  const candidates = headersCandidatesFromNames(names.stdout, series);
  while (candidates.length > 0) {
    const best = newestOfSeries(candidates, series);
    if (best === null) break;
    const shown = await exec('apt-cache', ['show', `linux-headers-${best.release}`], { allowFailure: true });
    const stanza = parseAptStanzas(shown.stdout)[0];
    if (stanza?.Version) return { ...best, version: stanza.Version };
    candidates.splice(candidates.indexOf(best), 1);
  }
  return null;
}

async function resolveSeries(series: string, log: Logger): Promise<HeadersCandidate> {
  const fingerprint = aptListsFingerprint();
  const cache = readResolutionCache(fingerprint);
  const cached = cache.series[series];
  if (cached) return cached;
  let found = await queryNewestOfSeries(series);
  if (found === null) {
    // Missing or stale lists (a fresh machine): refresh once, then ask again.
    await aptUpdate(log, true);
    found = await queryNewestOfSeries(series);
  }
  if (found === null) {
    throw new Error(
      `no Debian kernel of series ${series} is available from apt (looked at linux-headers-amd64, ` +
        `linux-headers-${series}-amd64 and linux-headers-${series}.*-amd64); 6.12 needs the ` +
        `bookworm-backports suite, which tools/setup/system-deps.sh adds`,
    );
  }
  // Re-read: apt-get update may have changed the lists, and another process may have written.
  const fresh = readResolutionCache(aptListsFingerprint());
  fresh.series[series] = found;
  mkdirSync(kernelsCacheDir(), { recursive: true });
  writeAtomically(resolutionCachePath(), `${JSON.stringify(fresh, null, 2)}\n`);
  return found;
}

// ---- headers --------------------------------------------------------------------------------

async function packageInstalled(name: string): Promise<string | null> {
  const r = await exec('dpkg-query', ['-W', '-f=${db:Status-Abbrev} ${Version}', name], { allowFailure: true });
  if (r.code !== 0 || !r.stdout.startsWith('ii')) return null;
  return r.stdout.slice(4).trim();
}

async function ensureHeaders(release: string, log: Logger): Promise<{ dir: string; version: string }> {
  const pkg = `linux-headers-${release}`;
  const buildLink = `/lib/modules/${release}/build`;
  let version = await packageInstalled(pkg);
  if (version === null || !existsSync(buildLink)) {
    await withAptLock(`installing ${pkg}`, async () => {
      if ((await packageInstalled(pkg)) !== null && existsSync(buildLink)) return;
      log(`installing ${pkg}`);
      const install = () =>
        exec('apt-get', [...APT_OPTIONS, '-y', '-q', '--no-install-recommends', 'install', pkg], {
          env: APT_ENV,
          allowFailure: true,
        });
      let r = await install();
      if (r.code !== 0) {
        await aptUpdateLocked(log, 'apt-get update (the install failed; the lists may be stale)');
        r = await install();
      }
      if (r.code !== 0) throw new Error(`apt-get install ${pkg} failed:\n${(r.stderr || r.stdout).trim()}`);
    });
    version = await packageInstalled(pkg);
    if (version === null || !existsSync(buildLink)) {
      throw new Error(`${pkg} is not installed after apt-get install (no ${buildLink})`);
    }
  }
  return { dir: realpathSync(buildLink), version };
}

// ---- image ----------------------------------------------------------------------------------

function readCachedKernel(cacheDir: string, release: string): CachedKernel | null {
  try {
    const meta = JSON.parse(readFileSync(join(cacheDir, 'kernel.json'), 'utf8')) as CachedKernel;
    if (meta.format !== CACHE_FORMAT || meta.release !== release) return null;
    if (!existsSync(join(cacheDir, 'vmlinuz'))) return null;
    if (!existsSync(join(cacheDir, 'lib/modules', release, 'modules.dep'))) return null;
    if (!existsSync(join(cacheDir, 'lib/modules', release, 'modules.builtin'))) return null;
    return meta;
  } catch {
    return null;
  }
}

/** Downloads a kernel's packages into `dir`; returns the .deb files (the image first). */
type ImageDownloader = (release: string, dir: string, log: Logger) => Promise<string[]>;

async function downloadImage(release: string, dir: string, log: Logger): Promise<string[]> {
  // The unsigned and the signed package hold the same modules; the unsigned one needs no shim.
  const names = [`linux-image-${release}-unsigned`, `linux-image-${release}`];
  const attempt = async (): Promise<string | null> => {
    for (const name of names) {
      // APT::Sandbox::User=root: the cache may be under /root, where the _apt user cannot write.
      const r = await exec('apt-get', [...APT_OPTIONS, '-q', '-o', 'APT::Sandbox::User=root', 'download', name], {
        cwd: dir,
        env: APT_ENV,
        allowFailure: true,
      });
      const deb = readdirSync(dir).find((f) => f.startsWith(`${name}_`) && f.endsWith('.deb'));
      if (r.code === 0 && deb) return join(dir, deb);
    }
    return null;
  };
  log(`downloading linux-image-${release}`);
  let deb = await attempt();
  if (deb === null) {
    // The lists name a .deb the mirror no longer has: refresh them, even if done before.
    listsUpdated = false;
    await aptUpdate(log);
    deb = await attempt();
  }
  if (deb === null) throw new Error(`apt-get download found neither ${names.join(' nor ')}`);
  return [deb];
}

/**
 * Downloads a 7.x kernel with the build root's apt (the host's knows no trixie): Debian now
 * splits the image into linux-binary-<release> (the kernel, at usr/lib/modules/<release>/vmlinuz),
 * linux-modules-<release> and linux-base-<release>; a release packaged the old way has
 * linux-image-<release>-unsigned.
 */
function rootImageDownloader(root: string): ImageDownloader {
  return async (release, dir, log) => {
    const inside = `/var/tmp/usip-download-${process.pid}`;
    const where = join(root, inside);
    rmSync(where, { recursive: true, force: true });
    mkdirSync(where, { recursive: true });
    try {
      // linux-base-<release> holds config and modules.builtin (the initramfs needs the latter).
      const sets = [[`linux-binary-${release}`, `linux-modules-${release}`, `linux-base-${release}`], [`linux-image-${release}-unsigned`]];
      const attempt = async (): Promise<string[] | null> => {
        for (const names of sets) {
          const r = await inRoot(root, ['sh', '-c', `cd ${inside} && exec apt-get -q -o APT::Sandbox::User=root download ${names.join(' ')}`], {
            allowFailure: true,
          });
          const debs = names.map((name) => readdirSync(where).find((f) => f.startsWith(`${name}_`) && f.endsWith('.deb')));
          if (r.code === 0 && debs.every((d) => d !== undefined)) {
            return debs.map((d) => {
              renameSync(join(where, d!), join(dir, d!));
              return join(dir, d!);
            });
          }
        }
        return null;
      };
      log(`downloading linux-binary-${release}, linux-modules-${release} and linux-base-${release} (${BUILD_ROOT_SUITE} build root)`);
      let debs = await attempt();
      if (debs === null) {
        await updateRootLists(root, log);
        debs = await attempt();
      }
      if (debs === null) throw new Error(`apt-get download in ${root} found neither ${sets.map((s) => s.join(' + ')).join(' nor ')}`);
      return debs;
    } finally {
      rmSync(where, { recursive: true, force: true });
    }
  };
}

async function fetchImage(
  release: string,
  packageVersion: string,
  cacheDir: string,
  log: Logger,
  download: ImageDownloader = downloadImage,
  configFallback: string | null = null,
): Promise<CachedKernel> {
  const cached = readCachedKernel(cacheDir, release);
  if (cached) return cached;
  const lockFile = join(kernelsCacheDir(), `.${release}.lock`);
  return withFileLock(lockFile, `caching kernel ${release}`, async () => {
    const again = readCachedKernel(cacheDir, release);
    if (again) return again;
    const work = `${cacheDir}.tmp-${process.pid}`;
    rmSync(work, { recursive: true, force: true });
    mkdirSync(join(work, 'download'), { recursive: true });
    try {
      const debs = await download(release, join(work, 'download'), log);
      const deb = debs[0]!;
      const unpacked = join(work, 'unpacked');
      for (const file of debs) {
        log(`unpacking ${file.slice(file.lastIndexOf('/') + 1)}`);
        await exec('dpkg-deb', ['-x', file, unpacked]);
      }
      // The classic layout (boot/vmlinuz-<release>, lib/modules) or the split one of 7.x
      // (usr/lib/modules/<release>/vmlinuz, and its modules beside it).
      const merged = join(unpacked, 'usr/lib/modules', release);
      const vmlinuz = [join(unpacked, 'boot', `vmlinuz-${release}`), join(merged, 'vmlinuz')].find((p) => existsSync(p));
      const modules = [join(unpacked, 'lib/modules', release), merged].find((p) => existsSync(join(p, 'kernel')));
      const names = debs.map((f) => f.slice(f.lastIndexOf('/') + 1)).join(', ');
      if (vmlinuz === undefined) throw new Error(`${names}: no boot/vmlinuz-${release} nor usr/lib/modules/${release}/vmlinuz`);
      if (modules === undefined) throw new Error(`${names}: no lib/modules/${release}/kernel nor usr/lib/modules/${release}/kernel`);
      const staged = join(work, 'kernel');
      mkdirSync(join(staged, 'lib/modules'), { recursive: true });
      renameSync(vmlinuz, join(staged, 'vmlinuz'));
      const config = [join(unpacked, 'boot', `config-${release}`), join(merged, 'config'), configFallback].find(
        (p): p is string => p !== null && existsSync(p),
      );
      if (config !== undefined) writeFileSync(join(staged, 'config'), readFileSync(config));
      renameSync(modules, join(staged, 'lib/modules', release));
      // The package leaves depmod to its postinst; the guest's modprobe and our module
      // dependency resolution need modules.dep.
      await exec('depmod', ['-b', staged, release]);
      const pvh = existsSync(join(staged, 'config')) && /^CONFIG_PVH=y$/m.test(readFileSync(join(staged, 'config'), 'utf8'));
      let vmlinux = false;
      if (pvh) {
        try {
          await extractVmlinux(join(staged, 'vmlinuz'), join(staged, 'vmlinux'));
          vmlinux = true;
        } catch (error) {
          log(`booting the compressed kernel: ${(error as Error).message}`);
        }
      }
      const meta: CachedKernel = {
        format: CACHE_FORMAT,
        release,
        packageVersion,
        package: debs.map((f) => f.slice(f.lastIndexOf('/') + 1)).join(' '),
        vmlinux,
      };
      writeFileSync(join(staged, 'kernel.json'), `${JSON.stringify(meta, null, 2)}\n`);
      rmSync(cacheDir, { recursive: true, force: true });
      renameSync(staged, cacheDir);
      log(`cached kernel ${release} in ${cacheDir}`);
      return meta;
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });
}

// ---- public ---------------------------------------------------------------------------------

/**
 * Resolves a selector (`6.1`, `6.12`, `all`, an exact release like `6.1.0-56-amd64`, or a
 * comma-separated list) to kernels whose headers are installed and whose image is cached,
 * installing and downloading what is missing. A second call does no network I/O.
 */
export async function resolveKernels(selector: string, options: ResolveKernelsOptions = {}): Promise<Kernel[]> {
  const log = options.log ?? noLog;
  // The debug kernel (tools/debug-kernel) is a word of its own, in its place in the list.
  const words = selector.split(',').map((w) => w.trim());
  const groups: Array<KernelSpec[] | typeof DEBUG_KERNEL_SELECTOR> = words.includes(DEBUG_KERNEL_SELECTOR)
    ? words.filter((w) => w !== '').map((w) => (w === DEBUG_KERNEL_SELECTOR ? DEBUG_KERNEL_SELECTOR : parseKernelSelector(w)))
    : [parseKernelSelector(selector)];
  await ensureSystemDeps();
  const kernels: Kernel[] = [];
  for (const group of groups) {
    if (group !== DEBUG_KERNEL_SELECTOR) for (const spec of group) kernels.push(await prepareKernel(spec, log));
    else if (!kernels.some((k) => k.selector === DEBUG_KERNEL_SELECTOR)) kernels.push(debugKernel(log));
  }
  return kernels;
}

// ---- the debug kernel -----------------------------------------------------------------------

/** The selector of the lockdep + KASAN kernel that tools/debug-kernel/build.sh builds. */
export const DEBUG_KERNEL_SELECTOR = '6.12-debug';

/** Its Kconfig fragment: the cache key is the source version plus a hash of this file. */
export const debugKernelConfig = join(workspaceRoot, 'tools/debug-kernel/usip-debug.config');
export const debugKernelBuildScript = join(workspaceRoot, 'tools/debug-kernel/build.sh');

interface DebugKernelMeta {
  format: number;
  release: string;
  sourceVersion: string;
  configHash: string;
}

/** `${USIP_CACHE_DIR:-${XDG_CACHE_HOME:-~/.cache}/usip}/debug-kernel`, as build.sh has it. */
function debugKernelCacheRoot(): string {
  return join(process.env.USIP_CACHE_DIR || dirname(kernelsCacheDir()), 'debug-kernel');
}

/**
 * The newest complete build of the current usip-debug.config (build.sh writes kernel.json
 * last). It is never built from here: that takes most of an hour on 2 cores.
 */
function debugKernel(log: Logger): Kernel {
  const hash = createHash('sha256').update(readFileSync(debugKernelConfig)).digest('hex').slice(0, 12);
  const root = debugKernelCacheRoot();
  let best: { dir: string; meta: DebugKernelMeta } | null = null;
  let names: string[] = [];
  try {
    names = readdirSync(root).filter((n) => n.endsWith(`-${hash}`));
  } catch {
    // nothing built yet
  }
  for (const name of names) {
    const dir = join(root, name);
    try {
      const meta = JSON.parse(readFileSync(join(dir, 'kernel.json'), 'utf8')) as DebugKernelMeta;
      if (meta.format !== 1 || meta.configHash !== hash) continue;
      if (best === null || compareDebianVersions(meta.sourceVersion, best.meta.sourceVersion) > 0) best = { dir, meta };
    } catch {
      // an unfinished build
    }
  }
  if (best === null) {
    throw new Error(
      `the debug kernel (${DEBUG_KERNEL_SELECTOR}) of ${debugKernelConfig} (hash ${hash}) is not built in ${root}: ` +
        `build it with ${debugKernelBuildScript} (about an hour on 2 cores; see tools/debug-kernel/README.md)`,
    );
  }
  const { dir, meta } = best;
  const kernel: Kernel = {
    selector: DEBUG_KERNEL_SELECTOR,
    series: '6.12',
    release: meta.release,
    packageVersion: meta.sourceVersion,
    vmlinuz: join(dir, 'vmlinuz'),
    vmlinux: existsSync(join(dir, 'vmlinux')) ? join(dir, 'vmlinux') : null,
    modulesDir: join(dir, 'root/lib/modules', meta.release),
    headersDir: join(dir, 'linux'),
    cacheDir: dir,
    buildRoot: null,
  };
  for (const path of [kernel.vmlinuz, join(kernel.modulesDir, 'modules.dep'), join(kernel.headersDir, 'Module.symvers')]) {
    if (!existsSync(path)) throw new Error(`the debug kernel in ${dir} is incomplete (no ${path}): remove the directory and run ${debugKernelBuildScript}`);
  }
  log(`debug kernel ${meta.release} (linux-source-6.12 ${meta.sourceVersion}) from ${dir}`);
  return kernel;
}

async function prepareKernel(spec: KernelSpec, log: Logger): Promise<Kernel> {
  if (needsBuildRoot(spec)) return prepareRootKernel(spec, log);
  for (let attempt = 0; ; attempt += 1) {
    const updatesBefore = aptUpdates;
    let release: string;
    let version = '';
    if (spec.kind === 'series') {
      const found = await resolveSeries(spec.series, log);
      // The RT flavour of the same ABI: its own headers and image packages.
      release = spec.flavour === 'rt' ? rtRelease(found.release) : found.release;
      version = spec.flavour === 'rt' ? '' : found.version;
    } else {
      release = spec.release;
    }
    try {
      const headers = await ensureHeaders(release, log);
      const cacheDir = join(kernelsCacheDir(), release);
      const meta = await fetchImage(release, version || headers.version, cacheDir, log);
      return {
        selector: spec.kind === 'series' ? `${spec.series}${spec.flavour ? `-${spec.flavour}` : ''}` : spec.release,
        series: spec.kind === 'series' ? spec.series : (seriesOfRelease(release) ?? release),
        release,
        packageVersion: meta.packageVersion || headers.version,
        vmlinuz: join(cacheDir, 'vmlinuz'),
        vmlinux: meta.vmlinux ? join(cacheDir, 'vmlinux') : null,
        modulesDir: join(cacheDir, 'lib/modules', release),
        headersDir: headers.dir,
        cacheDir,
        buildRoot: null,
      };
    } catch (error) {
      if (spec.kind !== 'series' || attempt > 0) throw error;
      // Old lists can name a kernel the mirror has since dropped: with fresh lists, the series
      // may resolve to its successor.
      if (aptUpdates === updatesBefore) {
        listsUpdated = false;
        await aptUpdate(log);
      }
      log(`${(error as Error).message.split('\n')[0]}; resolving ${spec.series} again with fresh lists`);
    }
  }
}

// ---- kernels built in the trixie root (7.x) ---------------------------------------------------

/** 7.x and later: Debian 12's toolchain cannot build for them. */
function needsBuildRoot(spec: KernelSpec): boolean {
  const series = spec.kind === 'series' ? spec.series : seriesOfRelease(spec.release);
  return series !== null && majorOf(series) >= 7;
}

/** The newest release of a series (`7` or `7.3`) that the build root's apt knows. */
async function resolveInRoot(root: string, series: string, log: Logger): Promise<HeadersCandidate> {
  const query = async (): Promise<HeadersCandidate | null> => {
    const show = await inRoot(root, ['apt-cache', 'show', 'linux-headers-amd64'], { allowFailure: true });
    return newestOfSeries(headersCandidatesFromMeta(parseAptStanzas(show.stdout)), series);
  };
  let found = rootListsFresh(root) ? await query() : null;
  if (found === null) {
    await updateRootLists(root, log);
    found = await query();
  }
  if (found === null) {
    throw new Error(
      `no Debian kernel of series ${series} is available from ${BUILD_ROOT_SUITE}, ${BUILD_ROOT_SUITE}-updates or ` +
        `${BUILD_ROOT_SUITE}-backports (looked at linux-headers-amd64 in the build root ${root})`,
    );
  }
  return found;
}

async function prepareRootKernel(spec: KernelSpec, log: Logger): Promise<Kernel> {
  const root = await ensureBuildRoot(log);
  let release: string;
  let version = '';
  if (spec.kind === 'series') {
    const cacheKey = `root:${spec.series}`;
    const fingerprint = `${aptListsFingerprint()}\n${rootListsStamp(root)}`;
    const cache = readResolutionCache(fingerprint);
    let found = cache.series[cacheKey];
    if (!found) {
      found = await resolveInRoot(root, spec.series, log);
      const fresh = readResolutionCache(`${aptListsFingerprint()}\n${rootListsStamp(root)}`);
      fresh.series[cacheKey] = found;
      mkdirSync(kernelsCacheDir(), { recursive: true });
      writeAtomically(resolutionCachePath(), `${JSON.stringify(fresh, null, 2)}\n`);
    }
    release = spec.flavour === 'rt' ? rtRelease(found.release) : found.release;
    version = spec.flavour === 'rt' ? '' : found.version;
  } else {
    release = spec.release;
  }
  const headersInRoot = `/usr/src/linux-headers-${release}`;
  await withFileLock(join(kernelsCacheDir(), `.root-headers-${release}.lock`), `installing linux-headers-${release}`, async () => {
    if (!existsSync(join(root, headersInRoot, 'Makefile'))) await installInRoot(root, [`linux-headers-${release}`], log, true);
  });
  if (!existsSync(join(root, headersInRoot, 'Makefile'))) throw new Error(`linux-headers-${release} is not installed in ${root} (no ${headersInRoot}/Makefile)`);
  if (version === '') {
    const r = await inRoot(root, ['dpkg-query', '-W', '-f=${Version}', `linux-headers-${release}`], { allowFailure: true });
    version = r.code === 0 ? r.stdout.trim() : '';
  }
  const cacheDir = join(kernelsCacheDir(), release);
  // The split packages carry no config: the headers' .config is the kernel's.
  const meta = await fetchImage(release, version, cacheDir, log, rootImageDownloader(root), join(root, headersInRoot, '.config'));
  return {
    selector: spec.kind === 'series' ? `${spec.series}${spec.flavour ? `-${spec.flavour}` : ''}` : spec.release,
    series: seriesOfRelease(release) ?? (spec.kind === 'series' ? spec.series : release),
    release,
    packageVersion: meta.packageVersion || version,
    vmlinuz: join(cacheDir, 'vmlinuz'),
    vmlinux: meta.vmlinux ? join(cacheDir, 'vmlinux') : null,
    modulesDir: join(cacheDir, 'lib/modules', release),
    headersDir: join(root, headersInRoot),
    cacheDir,
    buildRoot: root,
  };
}

/** Changes when the build root's apt lists do (resolutions are cached until then). */
function rootListsStamp(root: string): string {
  try {
    return `${root}:${statSync(join(root, '.usip-apt-updated')).mtimeMs}`;
  } catch {
    return `${root}:never`;
  }
}
