// A Debian build root for kernels the host cannot build for: Linux 7.x headers need trixie's
// compiler and libc, which Debian 12 does not have. The root is made once with debootstrap
// (from Debian's own packages), cached next to the kernels, and used with chroot for apt
// (resolving, downloading and installing 7.x packages from trixie-backports) and for Kbuild.
// The host's apt is never pointed at trixie, so nothing on the host is upgraded by accident.
// Other cached roots (tools/deb's clean bookworm root) are made the same way from their own
// BuildRootSpec.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { exec, type ExecOptions, type ExecResult } from './exec.js';
import { withFileLock } from './lock.js';
import { kernelsCacheDir } from './paths.js';

export type Logger = (message: string) => void;

/** The Debian release whose toolchain builds 7.x modules, and the suites the root uses. */
export const BUILD_ROOT_SUITE = 'trixie';
const SUITES = ['trixie', 'trixie-updates', 'trixie-backports'];
/** What Kbuild needs in the root besides the headers (which pull in linux-kbuild). */
const BUILD_PACKAGES = ['gcc', 'make', 'libc6-dev', 'bc', 'ca-certificates'];

/** What a cached root is made of. */
export interface BuildRootSpec {
  /** Its directory under `<cache>/usip/build-roots/` (and the name of its locks). */
  name: string;
  /** The release debootstrap installs. */
  suite: string;
  /** The suites of the root's apt sources. */
  sources: readonly string[];
  /** Installed after debootstrap (without recommends). */
  packages: readonly string[];
  /** Bump when the root's contents or sources change: an old root is then made again. */
  format: number;
  /** Last step before the root is marked made (and moved into place): extra set-up. */
  finish?: (root: string, log: Logger) => Promise<void>;
}

/** The trixie root that builds 7.x modules. */
export const TRIXIE_BUILD_ROOT: BuildRootSpec = {
  name: BUILD_ROOT_SUITE,
  suite: BUILD_ROOT_SUITE,
  sources: SUITES,
  packages: BUILD_PACKAGES,
  format: 1,
};

interface BuildRootMeta {
  format: number;
  suite: string;
  mirror: string;
  created: string;
}

/** `<cache>/usip/build-roots/<name>` (next to `<cache>/usip/kernels`). */
export function buildRootDir(name = BUILD_ROOT_SUITE): string {
  return join(dirname(kernelsCacheDir()), 'build-roots', name);
}

/** The Debian mirror the host's own apt sources use for the distribution itself. */
export function hostMirror(): string {
  const candidates = ['/etc/apt/sources.list.d/debian.sources', '/etc/apt/sources.list'];
  for (const file of candidates) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    const deb822 = /^URIs:\s*(\S+)/m.exec(text);
    if (deb822?.[1] && !/security/.test(deb822[1])) return deb822[1];
    const oneLine = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+\S+/m.exec(text);
    if (oneLine?.[1] && !/security/.test(oneLine[1])) return oneLine[1];
  }
  return 'http://deb.debian.org/debian';
}

function readMeta(root: string, spec: BuildRootSpec): BuildRootMeta | null {
  try {
    const meta = JSON.parse(readFileSync(join(root, '.usip-build-root.json'), 'utf8')) as BuildRootMeta;
    return meta.format === spec.format && meta.suite === spec.suite ? meta : null;
  } catch {
    return null;
  }
}

const ENV = {
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  LANG: 'C.UTF-8',
  DEBIAN_FRONTEND: 'noninteractive',
  HOME: '/root',
};

/**
 * Runs a command inside the root: chroot, a clean environment, and a /proc of its own (objtool
 * and apt read it) in a private mount namespace, so nothing stays mounted on the host.
 */
export function inRoot(root: string, args: readonly string[], options: Omit<ExecOptions, 'env'> = {}): Promise<ExecResult> {
  return exec('unshare', ['--mount', '--propagation', 'private', '--pid', '--fork', `--mount-proc=${join(root, 'proc')}`, 'chroot', root, ...args], {
    ...options,
    env: ENV,
  });
}

/** A root being made lives in `<root>.tmp-<pid>`: its locks and messages are the root's. */
function rootHome(root: string): string {
  return root.replace(/\.tmp-\d+$/, '');
}
function rootName(root: string): string {
  return basename(rootHome(root));
}

const APT = ['apt-get', '-o', 'DPkg::Lock::Timeout=600', '-o', 'APT::Sandbox::User=root'];

/**
 * Serializes apt in the root across processes: Nx runs a module build and the harness's own tests
 * at once, and two `apt-get update`s in one root corrupt its package cache (apt's own locks do
 * not cover the cache files).
 */
function withAptLock<T>(root: string, what: string, fn: () => Promise<T>): Promise<T> {
  return withFileLock(`${rootHome(root)}.apt.lock`, `${what} in the ${rootName(root)} build root`, fn);
}

/** When this tool last refreshed the root's apt lists (ms since the epoch), or 0. */
function listsUpdatedAt(root: string): number {
  try {
    return statSync(join(root, '.usip-apt-updated')).mtimeMs;
  } catch {
    return 0;
  }
}

/** apt-get update in the root, the caller holding the apt lock; marks when it was done. */
async function refreshLists(root: string, log: Logger): Promise<void> {
  log(`apt-get update in the ${rootName(root)} build root`);
  await inRoot(root, [...APT, '-qq', 'update']);
  writeFileSync(join(root, '.usip-apt-updated'), `${new Date().toISOString()}\n`);
}

/**
 * apt-get update in the root; marks when it was done (the lists' own times are the mirror's).
 * A process that waited for another one's update does not repeat it.
 */
export async function updateRootLists(root: string, log: Logger): Promise<void> {
  const asked = Date.now();
  await withAptLock(root, 'apt-get update', async () => {
    if (listsUpdatedAt(root) >= asked) return;
    await refreshLists(root, log);
  });
}

/** True when this tool refreshed the root's apt lists in the last hour. */
export function rootListsFresh(root: string): boolean {
  return Date.now() - listsUpdatedAt(root) < 60 * 60 * 1000;
}

/**
 * Installs packages in the root, if missing: from trixie-backports when `backports` is true,
 * from the release it names when it is a string.
 */
export async function installInRoot(root: string, packages: readonly string[], log: Logger, backports: boolean | string = false): Promise<void> {
  const missing: string[] = [];
  for (const name of packages) {
    const r = await inRoot(root, ['dpkg-query', '-W', '-f=${db:Status-Abbrev}', name], { allowFailure: true });
    if (!(r.code === 0 && r.stdout.startsWith('ii'))) missing.push(name);
  }
  if (missing.length === 0) return;
  await withAptLock(root, `apt-get install ${missing.join(' ')}`, async () => {
    log(`installing ${missing.join(' ')} in the ${rootName(root)} build root`);
    const target = backports === true ? `${BUILD_ROOT_SUITE}-backports` : backports;
    const args = [...APT, '-y', '-q', '--no-install-recommends', ...(target ? ['-t', target] : []), 'install', ...missing];
    let r = await inRoot(root, args, { allowFailure: true });
    if (r.code !== 0) {
      await refreshLists(root, log);
      r = await inRoot(root, args, { allowFailure: true });
    }
    if (r.code !== 0) throw new Error(`apt-get install ${missing.join(' ')} in ${root} failed:\n${(r.stderr || r.stdout).trim().split('\n').slice(-15).join('\n')}`);
  });
}

/**
 * The cached build root, made with debootstrap on first use (about 20 s from a near mirror for
 * the trixie one). Safe to call from several processes at once: the making is serialized on a
 * lock file, and a root is moved into place only when complete.
 */
export async function ensureBuildRoot(log: Logger, spec: BuildRootSpec = TRIXIE_BUILD_ROOT): Promise<string> {
  const root = buildRootDir(spec.name);
  if (readMeta(root, spec) !== null) return root;
  mkdirSync(dirname(root), { recursive: true });
  return withFileLock(`${root}.lock`, `making the ${spec.name} build root`, async () => {
    if (readMeta(root, spec) !== null) return root;
    const mirror = hostMirror();
    const work = `${root}.tmp-${process.pid}`;
    rmSync(work, { recursive: true, force: true });
    try {
      log(`debootstrap --variant=minbase ${spec.suite} ${work} ${mirror}`);
      const r = await exec('debootstrap', ['--variant=minbase', spec.suite, work, mirror], { allowFailure: true });
      if (r.code !== 0) {
        const detail = existsSync(join(work, 'debootstrap/debootstrap.log'))
          ? readFileSync(join(work, 'debootstrap/debootstrap.log'), 'utf8').trim().split('\n').slice(-15).join('\n')
          : (r.stderr || r.stdout).trim();
        throw new Error(`debootstrap of ${spec.suite} from ${mirror} failed (exit ${r.code}):\n${detail}`);
      }
      writeFileSync(join(work, 'etc/apt/sources.list'), spec.sources.map((s) => `deb ${mirror} ${s} main\n`).join(''));
      await updateRootLists(work, log);
      await installInRoot(work, spec.packages, log);
      await spec.finish?.(work, log);
      const meta: BuildRootMeta = { format: spec.format, suite: spec.suite, mirror, created: new Date().toISOString() };
      writeFileSync(join(work, '.usip-build-root.json'), `${JSON.stringify(meta, null, 2)}\n`);
      rmSync(root, { recursive: true, force: true });
      renameSync(work, root);
      log(`made the ${spec.name} build root in ${root}`);
      return root;
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });
}
