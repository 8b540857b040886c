// Small text helpers shared by the command line (`usip`) and the agent (`usip-agent`), so that
// both print device numbers, JSON and names the same way.

/** The kernel's new_encode_dev(): the format of an event's dev attribute. */
export function encodeDev(major: number, minor: number): number {
  return ((minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12)) >>> 0;
}

/** new_decode_dev(): an encoded device number as MAJOR:MINOR. */
export function decodeDev(dev: number): string {
  const major = (dev & 0xfff00) >>> 8;
  const minor = (dev & 0xff) | ((dev >>> 12) & 0xfff00);
  return `${major}:${minor}`;
}

/** JSON text in which 64-bit values (bigint) are decimal strings, exact at any size. */
export function toJson(value: unknown, indent?: number): string {
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), indent);
}

/**
 * A name for people, as it is when it is plain, else quoted so it stays one word:
 * - `json` (the default): JSON-quoted, for `key value` lines (`usip listen`, `usip mount`);
 * - `shell`: in single quotes as a POSIX shell reads them, as coreutils quotes file names in
 *   its messages (`df: '/a b': No such file or directory`).
 */
export function quote(value: string, style: 'json' | 'shell' = 'json'): string {
  if (style === 'shell') return /^[\w./@%+,=:-]+$/.test(value) ? value : `'${value.replace(/'/g, "'\\''")}'`;
  return /^[\w./:@+,=-]+$/.test(value) ? value : JSON.stringify(value);
}
