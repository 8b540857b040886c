// The agent's log: one JSON object per line (pino), or one line for people with --log-format human.
// Everything about a notifier file carries its path in `file`.
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger } from 'pino';

export const LOG_FORMATS = ['json', 'human'] as const;
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

export function createLogger(options: LoggerOptions = {}): Logger {
  const format = options.format ?? 'json';
  const target = options.destination ?? pino.destination({ fd: 2, sync: true });
  const destination: DestinationStream =
    format === 'json'
      ? (target as DestinationStream)
      : {
          write(line: string) {
            target.write(humanLine(JSON.parse(line) as Record<string, unknown>));
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
