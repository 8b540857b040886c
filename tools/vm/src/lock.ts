import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * Runs fn while holding an exclusive flock(1) on lockFile, so concurrent processes (several Nx
 * tasks, tools/setup/system-deps.sh) serialize. A child `flock` process holds the lock and
 * releases it when its stdin closes, which also happens if this process dies.
 */
export async function withFileLock<T>(
  lockFile: string,
  what: string,
  fn: () => Promise<T>,
  timeoutSeconds = 1800,
): Promise<T> {
  mkdirSync(dirname(lockFile), { recursive: true });
  const holder = spawn(
    'flock',
    ['--exclusive', '--wait', String(timeoutSeconds), lockFile, 'sh', '-c', 'echo locked; exec cat >/dev/null'],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  const exited = new Promise<void>((resolve) => holder.on('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    let stderr = '';
    holder.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    holder.stdout.once('data', () => resolve());
    holder.on('error', (error) => reject(new Error(`cannot run flock for ${what}: ${error.message}`)));
    holder.on('close', (code) =>
      reject(new Error(`could not lock ${lockFile} for ${what} (flock exited with ${code}) ${stderr.trim()}`)),
    );
  });
  try {
    return await fn();
  } finally {
    holder.stdin.end();
    await exited;
  }
}
