// Debian version ordering (Debian Policy 5.6.12): [epoch:]upstream[-revision], compared part by
// part; within a part, non-digit runs compare with '~' lowest (even below the end of the string),
// then the end, then letters, then everything else; digit runs compare as numbers.

function charOrder(code: number | undefined): number {
  if (code === undefined) return 0;
  if (code === 0x7e) return -1; // '~'
  if (code >= 0x30 && code <= 0x39) return 0; // digits end a non-digit run
  if ((code >= 0x41 && code <= 0x5a) || (code >= 0x61 && code <= 0x7a)) return code;
  return code + 256;
}

function isDigit(code: number | undefined): boolean {
  return code !== undefined && code >= 0x30 && code <= 0x39;
}

function comparePart(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    while ((i < a.length && !isDigit(a.charCodeAt(i))) || (j < b.length && !isDigit(b.charCodeAt(j)))) {
      const ca = charOrder(i < a.length ? a.charCodeAt(i) : undefined);
      const cb = charOrder(j < b.length ? b.charCodeAt(j) : undefined);
      if (ca !== cb) return ca - cb;
      i += 1;
      j += 1;
    }
    while (a[i] === '0') i += 1;
    while (b[j] === '0') j += 1;
    let firstDiff = 0;
    while (isDigit(a.charCodeAt(i)) && isDigit(b.charCodeAt(j))) {
      if (firstDiff === 0) firstDiff = a.charCodeAt(i) - b.charCodeAt(j);
      i += 1;
      j += 1;
    }
    if (isDigit(a.charCodeAt(i))) return 1; // a's number has more digits
    if (isDigit(b.charCodeAt(j))) return -1;
    if (firstDiff !== 0) return firstDiff;
  }
  return 0;
}

interface ParsedVersion {
  epoch: number;
  upstream: string;
  revision: string;
}

function parseVersion(version: string): ParsedVersion {
  const trimmed = version.trim();
  if (trimmed === '') throw new Error('empty Debian version');
  const colon = trimmed.indexOf(':');
  let epoch = 0;
  let rest = trimmed;
  if (colon >= 0) {
    const epochText = trimmed.slice(0, colon);
    if (!/^\d+$/.test(epochText)) throw new Error(`bad epoch "${epochText}" in Debian version "${version}"`);
    epoch = Number(epochText);
    rest = trimmed.slice(colon + 1);
  }
  const dash = rest.lastIndexOf('-');
  return dash >= 0
    ? { epoch, upstream: rest.slice(0, dash), revision: rest.slice(dash + 1) }
    : { epoch, upstream: rest, revision: '' };
}

/** Negative, zero or positive as Debian orders a before, equal to, or after b. */
export function compareDebianVersions(a: string, b: string): number {
  const pa = parseVersion(a);
  const pb = parseVersion(b);
  if (pa.epoch !== pb.epoch) return pa.epoch - pb.epoch;
  return comparePart(pa.upstream, pb.upstream) || comparePart(pa.revision, pb.revision);
}
