// Shared by the host tests: a logger that keeps its records, waiting for a condition, temp dirs.
import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, type Logger } from '../src/index.js';

export type LogRecord = Record<string, unknown> & { level: string; msg: string };

export interface MemoryLog {
  log: Logger;
  records: LogRecord[];
  /** Records with this message (and, optionally, this file). */
  find(msg: string | RegExp, file?: string): LogRecord[];
}

/** A real pino logger whose JSON lines are parsed and kept. */
export function memoryLog(level: 'info' | 'debug' = 'info'): MemoryLog {
  const records: LogRecord[] = [];
  const log = createLogger({
    level,
    destination: {
      write(line: string) {
        records.push(JSON.parse(line) as LogRecord);
      },
    },
  });
  return {
    log,
    records,
    find: (msg, file) =>
      records.filter((r) => (typeof msg === 'string' ? r.msg === msg : msg.test(r.msg)) && (file === undefined || r.file === file)),
  };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `condition` until it holds; fails naming `what` after `timeoutMs`. */
export async function waitFor<T>(what: string, condition: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

// Files the tests write are not group- or world-writable whatever umask they were started with:
// the agent refuses to run the commands of a file that is.
process.umask(0o022);

/**
 * Where the tests make their directories: one the agent's permission rule accepts for files with
 * `run` (owned by root or by the user running the tests, no directory up to / writable by group
 * or others). Not /tmp, which is writable by everybody (1777): a file with `run` below it is
 * refused, and a test says so. As root /run (0755), else $XDG_RUNTIME_DIR (/run/user/UID, 0700).
 */
export async function safeBase(): Promise<string> {
  const base = process.geteuid?.() === 0 ? '/run/usip-agent-test' : join(process.env.XDG_RUNTIME_DIR ?? tmpdir(), 'usip-agent-test');
  await mkdir(base, { recursive: true, mode: 0o755 });
  await chmod(base, 0o755);
  return base;
}

/** Runs `body` with a new empty directory under `base` (default safeBase()), removed after. */
export async function withTempDir<T>(body: (dir: string) => Promise<T>, base?: string): Promise<T> {
  const dir = await mkdtemp(join(base ?? (await safeBase()), 'usip-agent-test-'));
  await chmod(dir, 0o755);
  try {
    return await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export { sleep };
