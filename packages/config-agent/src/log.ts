// The agent's log: one JSON object per line (pino), one line for people with --log-format human,
// or, for the journal (--log-format journal, the default when stderr is the journal), lines with
// a syslog priority prefix `<N>` that journald reads as the entry's PRIORITY, so that
// `journalctl -p err` works. Everything about a notifier file carries its path in `file`.
import { fstatSync } from 'node:fs';
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger } from 'pino';

export const LOG_FORMATS = ['json', 'human', 'journal'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface LoggerOptions {
  format?: LogFormat;
  level?: LogLevel;
  /** Where lines go (default: stderr, written synchronously so nothing is lost at exit). */
  destination?: { write(line: string): unknown };
}

/** Keys every record has, left out of the human form's key=value list. */
const FRAME_KEYS = new Set(['level', 'time', 'msg', 'file']);

function humanValue(value: unknown): string {
  if (typeof value === 'string') return /^[\w./:@+,=-]+$/.test(value) ? value : JSON.stringify(value);
  return JSON.stringify(value);
}

/** A JSON log record as one line for people: `TIME LEVEL FILE: message key=value ...`. */
export function humanLine(record: Record<string, unknown>): string {
  const level = String(record.level ?? '').toUpperCase().padEnd(5);
  const file = typeof record.file === 'string' ? `${record.file}: ` : '';
  const rest = Object.entries(record)
    .filter(([key, value]) => !FRAME_KEYS.has(key) && value !== undefined)
    .map(([key, value]) => `${key}=${humanValue(value)}`);
  return `${String(record.time ?? '')} ${level} ${file}${String(record.msg ?? '')}${rest.length > 0 ? ` ${rest.join(' ')}` : ''}\n`;
}

/** syslog priorities (sd-daemon(3)) of the log levels. */
export const JOURNAL_PRIORITY: Readonly<Record<LogLevel, number>> = { fatal: 2, error: 3, warn: 4, info: 6, debug: 7, trace: 7 };

/**
 * A JSON log record as one line for the journal: `<N>FILE: message key=value ...`, with no time
 * (journald stamps each entry) and no level word (the priority is the prefix). A newline would
 * start a new entry without a prefix: it is written `\n`.
 */
export function journalLine(record: Record<string, unknown>): string {
  const priority = JOURNAL_PRIORITY[record.level as LogLevel] ?? 6;
  const file = typeof record.file === 'string' ? `${record.file}: ` : '';
  const rest = Object.entries(record)
    .filter(([key, value]) => !FRAME_KEYS.has(key) && value !== undefined)
    .map(([key, value]) => `${key}=${humanValue(value)}`);
  const text = `${file}${String(record.msg ?? '')}${rest.length > 0 ? ` ${rest.join(' ')}` : ''}`;
  return `<${priority}>${text.replace(/\r?\n/g, '\\n')}\n`;
}

/**
 * True when standard error is connected to the journal: systemd sets JOURNAL_STREAM to the
 * device and inode ("dev:ino") of the stream it gives the service, and they match stderr's
 * (sd_journal_stream_fd(3)); a redirected stderr no longer matches.
 */
export function stderrIsJournal(env: NodeJS.ProcessEnv = process.env, fd = 2): boolean {
  const match = /^(\d+):(\d+)$/.exec(env.JOURNAL_STREAM ?? '');
  if (match === null) return false;
  try {
    const stats = fstatSync(fd, { bigint: true });
    return stats.dev === BigInt(match[1]!) && stats.ino === BigInt(match[2]!);
  } catch {
    return false;
  }
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const format = options.format ?? 'json';
  const target = options.destination ?? pino.destination({ fd: 2, sync: true });
  const toLine = format === 'human' ? humanLine : format === 'journal' ? journalLine : undefined;
  const destination: DestinationStream =
    toLine === undefined
      ? (target as DestinationStream)
      : {
          write(line: string) {
            target.write(toLine(JSON.parse(line) as Record<string, unknown>));
          },
        };
  return pino(
    {
      level: options.level ?? 'info',
      base: null,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}
