// The clean Debian 12 root the packages are installed into by the tests: debootstrap'ed once and
// cached (tools/vm's build-root code, with its locks), then used through a throw-away overlay per
// test run so the cache itself never changes.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBuildRoot, inRoot, type BuildRootSpec, type Logger } from '../../vm/src/build-root.js';
import { exec, type ExecResult } from '../../vm/src/exec.js';

export type { Logger };

const APT = ['apt-get', '-o', 'DPkg::Lock::Timeout=600', '-o', 'APT::Sandbox::User=root'];

/**
 * Puts the host's own nodejs package into the root: bookworm's nodejs is 18, and a Debian 12
 * admin who runs USIP installs Node 20 from NodeSource, which is what the host has installed.
 */
async function addHostNodejs(root: string, log: Logger): Promise<void> {
  const work = mkdtempSync(join(root, 'tmp/nodejs-'));
  try {
    log('dpkg-repack nodejs (the host\'s NodeSource Node.js) into the bookworm root');
    await exec('dpkg-repack', ['nodejs'], { cwd: work });
    const deb = readdirSync(work).find((f) => f.startsWith('nodejs_') && f.endsWith('.deb'));
    if (!deb) throw new Error(`dpkg-repack nodejs left no nodejs_*.deb in ${work}`);
    const inside = `/tmp/${work.split('/').pop()}/${deb}`;
    await inRoot(root, [...APT, '-y', '-q', '--no-install-recommends', 'install', inside]);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** The kernel upgrade of the tests: bookworm-backports' current kernel (its image needs headers). */
export const UPGRADE_PACKAGE = 'linux-headers-amd64/bookworm-backports';

/**
 * Keeps (download only, in /var/cache/apt/archives, emptied first) the newest bookworm-backports
 * kernel and headers, which the tests install as the kernel upgrade without the network. Only
 * they come from backports (`pkg/release`): everything else they need is bookworm's.
 */
async function downloadUpgrade(root: string, log: Logger): Promise<void> {
  await inRoot(root, [...APT, 'clean']);
  log(`downloading ${UPGRADE_PACKAGE} and its kernel (the kernel upgrade of the tests)`);
  await inRoot(root, [...APT, '-y', '-q', '--no-install-recommends', '--download-only', 'install', UPGRADE_PACKAGE]);
}

/** Debian 12 with what DKMS needs, 6.1 headers, systemd, and Node >= 20 from the host. */
export const BOOKWORM_DKMS_ROOT: BuildRootSpec = {
  name: 'bookworm-dkms',
  suite: 'bookworm',
  sources: ['bookworm', 'bookworm-updates', 'bookworm-backports'],
  // linux-headers-amd64 from bookworm (backports are pinned lower) is the current 6.1 ABI: the
  // release is resolved when the root is made, and read back from the root by the tests.
  // man-db: systemd-analyze verify checks that the unit's Documentation=man: pages resolve.
  packages: ['dkms', 'gcc', 'make', 'libc6-dev', 'linux-headers-amd64', 'systemd', 'kmod', 'man-db'],
  format: 3,
  finish: async (root, log) => {
    await addHostNodejs(root, log);
    await downloadUpgrade(root, log);
  },
};

export function ensureBookwormRoot(log: Logger): Promise<string> {
  return ensureBuildRoot(log, BOOKWORM_DKMS_ROOT);
}

/** The `linux-headers-<release>` trees installed in a root, e.g. ['6.1.0-41-amd64']. */
export function headerReleases(root: string): string[] {
  const dir = join(root, 'usr/src');
  return readdirSync(dir)
    .filter((d) => /^linux-headers-.*-amd64$/.test(d) && existsSync(join(dir, d, 'Makefile')))
    .map((d) => d.slice('linux-headers-'.length));
}

/** A writable copy of the cached root: an overlay whose upper layer is thrown away. */
export interface Scratch {
  lower: string;
  dir: string;
  upper: string;
  work: string;
  merged: string;
}

export function makeScratch(lower: string): Scratch {
  const dir = mkdtempSync(join(tmpdir(), 'usip-deb-'));
  const s = { lower, dir, upper: join(dir, 'upper'), work: join(dir, 'work'), merged: join(dir, 'merged') };
  execFileSync('mkdir', ['-p', s.upper, s.work, s.merged]);
  return s;
}

export function dropScratch(s: Scratch): void {
  rmSync(s.dir, { recursive: true, force: true });
}

const ENV = {
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  LANG: 'C.UTF-8',
  DEBIAN_FRONTEND: 'noninteractive',
  HOME: '/root',
};

/**
 * Runs a shell script as root in the scratch root. Every mount (the overlay, /dev, /proc, /sys)
 * is made in a private mount namespace that dies with the command, so nothing stays mounted on
 * the host whatever happens.
 */
export function inScratch(s: Scratch, script: string, allowFailure = false): Promise<ExecResult> {
  const setup = [
    'set -e',
    `mount -t overlay usip-deb -o lowerdir="$1",upperdir="$2",workdir="$3" "$4"`,
    'mount --rbind /dev "$4/dev"',
    'mount -t proc proc "$4/proc"',
    'mount -t sysfs sysfs "$4/sys"',
    'exec chroot "$4" /bin/sh -ec "$5"',
  ].join('\n');
  return exec('unshare', ['--mount', '--propagation', 'private', '--pid', '--fork', 'sh', '-c', setup, 'sh', s.lower, s.upper, s.work, s.merged, script], {
    env: ENV,
    allowFailure,
  });
}
