import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

// Both src/*.ts (tests, through tsx) and dist/*.js (the build) sit one level below the package.
export const packageRoot = fileURLToPath(new URL('..', import.meta.url));
export const workspaceRoot = resolve(packageRoot, '../..');
export const systemDepsScript = join(workspaceRoot, 'tools/setup/system-deps.sh');
export const guestInitScript = join(packageRoot, 'guest/init.sh');
export const guestStage2Script = join(packageRoot, 'guest/stage2.sh');

/** The same lock tools/setup/system-deps.sh takes around apt-get. */
export const aptLockFile = process.env.USIP_APT_LOCK ?? '/var/lock/usip-apt.lock';

/** `${XDG_CACHE_HOME:-$HOME/.cache}/usip/kernels`: one directory per kernel release. */
export function kernelsCacheDir(): string {
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'usip', 'kernels');
}

/** `${TMPDIR:-/tmp}/usip-vm`: one directory per run. */
export function runsRootDir(): string {
  return join(process.env.TMPDIR || '/tmp', 'usip-vm');
}
