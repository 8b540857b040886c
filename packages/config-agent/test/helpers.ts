// Shared by the host tests: a logger that keeps its records, waiting for a condition, temp dirs.
import { mkdtemp, rm } from 'node:fs/promises';
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

export async function withTempDir<T>(body: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'usip-agent-test-'));
  try {
    return await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export { sleep };
