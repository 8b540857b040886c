// Pure parsing of apt's answers about Debian kernel packages, and of kernel selectors.
import { compareDebianVersions } from './debian-version.js';

/**
 * The kernel series USIP supports, in the order `all` runs them. A bare major (`7`) means the
 * newest X.Y of it that Debian has (7.x lives in trixie-backports).
 */
export const SUPPORTED_SERIES = ['6.1', '6.12', '7'] as const;

/** "7.3" -> 7, "7" -> 7, "6.12" -> 6. */
export function majorOf(series: string): number {
  return Number.parseInt(series, 10);
}

/**
 * A plain amd64 flavour release as `uname -r` prints it: 6.1.0-56-amd64, 6.12.117+deb12-amd64.
 * Flavours such as -cloud-amd64 and -rt-amd64 do not match.
 */
const RELEASE = /^(\d+\.\d+)(?:\.\d+)+(?:-\d+)?(?:\+[0-9a-z.~]+)?-amd64$/;

/**
 * A kernel to resolve: the newest of a series (its `rt` flavour: Debian's PREEMPT_RT build of
 * the same ABI), or an exact release.
 */
export type KernelSpec =
  | { kind: 'series'; series: string; flavour?: 'rt' }
  | { kind: 'release'; release: string };

/** The PREEMPT_RT flavour of a plain Debian release: 6.1.0-57-amd64 -> 6.1.0-57-rt-amd64. */
export function rtRelease(release: string): string {
  return release.replace(/-amd64$/, '-rt-amd64');
}

export interface HeadersCandidate {
  release: string;
  series: string;
  /** Debian version of linux-headers-<release>, when known. */
  version: string;
}

/** "6.12.117+deb12-amd64" -> "6.12"; null when it is not a plain amd64 release. */
export function seriesOfRelease(release: string): string | null {
  const m = RELEASE.exec(release);
  return m ? (m[1] ?? null) : null;
}

/**
 * Parses a kernel selector: `6.1`, `6.12` (or any X.Y series), `all` (every supported series),
 * an exact release such as `6.1.0-56-amd64`, or a comma-separated list of these.
 */
export function parseKernelSelector(selector: string): KernelSpec[] {
  const words = selector
    .split(',')
    .map((w) => w.trim())
    .filter((w) => w !== '');
  if (words.length === 0) throw new Error('empty kernel selector: use 6.1, 6.12, all, or a release such as 6.1.0-56-amd64');
  const specs: KernelSpec[] = [];
  const keyOf = (s: KernelSpec) => (s.kind === 'series' ? `${s.series}${s.flavour ? `-${s.flavour}` : ''}` : s.release);
  const add = (spec: KernelSpec) => {
    if (!specs.some((s) => keyOf(s) === keyOf(spec))) specs.push(spec);
  };
  for (const word of words) {
    const rt = /^(\d+(?:\.\d+)?)-rt$/.exec(word);
    if (word === 'all') for (const series of SUPPORTED_SERIES) add({ kind: 'series', series });
    else if (/^\d+(?:\.\d+)?$/.test(word)) add({ kind: 'series', series: word });
    else if (rt?.[1]) add({ kind: 'series', series: rt[1], flavour: 'rt' });
    else if (seriesOfRelease(word) !== null) add({ kind: 'release', release: word });
    else
      throw new Error(
        `unknown kernel selector "${word}": use ${SUPPORTED_SERIES.join(', ')} (the newest 7.x), all, a series' PREEMPT_RT flavour such as 6.1-rt, or an exact amd64 release such as 6.1.0-56-amd64`,
      );
  }
  return specs;
}

/** Splits `apt-cache show` output into stanzas of fields (continuation lines are joined). */
export function parseAptStanzas(text: string): Array<Record<string, string>> {
  const stanzas: Array<Record<string, string>> = [];
  let current: Record<string, string> = {};
  let lastField: string | null = null;
  for (const line of text.split('\n')) {
    if (line.trim() === '') {
      if (Object.keys(current).length > 0) stanzas.push(current);
      current = {};
      lastField = null;
      continue;
    }
    if (/^\s/.test(line)) {
      if (lastField !== null) current[lastField] += `\n${line.trim()}`;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    lastField = line.slice(0, colon);
    current[lastField] = line.slice(colon + 1).trim();
  }
  if (Object.keys(current).length > 0) stanzas.push(current);
  return stanzas;
}

/**
 * From `apt-cache show` stanzas of the headers meta packages (linux-headers-amd64,
 * linux-headers-6.12-amd64, ...), the versioned headers packages they point to.
 */
export function headersCandidatesFromMeta(stanzas: ReadonlyArray<Record<string, string>>): HeadersCandidate[] {
  const found: HeadersCandidate[] = [];
  for (const stanza of stanzas) {
    const depends = stanza.Depends ?? '';
    for (const alternative of depends.split(/[,|]/)) {
      const m = /^\s*linux-headers-(\S+)\s*(?:\(\s*=\s*([^)\s]+)\s*\))?\s*$/.exec(alternative);
      if (!m || m[1] === undefined) continue;
      const series = seriesOfRelease(m[1]);
      if (series === null) continue;
      const version = m[2] ?? stanza.Version ?? '';
      if (!found.some((c) => c.release === m[1] && c.version === version)) {
        found.push({ release: m[1], series, version });
      }
    }
  }
  return found;
}

/** Releases of a series among package names such as those `apt-cache pkgnames` prints. */
export function headersCandidatesFromNames(names: string, series: string): HeadersCandidate[] {
  const found: HeadersCandidate[] = [];
  for (const name of names.split('\n')) {
    const m = /^linux-headers-(\S+)$/.exec(name.trim());
    if (!m || m[1] === undefined) continue;
    if (seriesOfRelease(m[1]) !== series) continue;
    // Without a package version, the release itself orders them (6.1.0-9 < 6.1.0-56).
    found.push({ release: m[1], series, version: m[1].replace(/-amd64$/, '') });
  }
  return found;
}

/** True if a release's X.Y series belongs to a selector's series: `6.12`, or a bare major `7`. */
export function inSeries(releaseSeries: string, series: string): boolean {
  return releaseSeries === series || (!series.includes('.') && releaseSeries.startsWith(`${series}.`));
}

/** The newest candidate of the series (or of every X.Y of a bare major), or null. */
export function newestOfSeries(candidates: readonly HeadersCandidate[], series: string): HeadersCandidate | null {
  let best: HeadersCandidate | null = null;
  for (const c of candidates) {
    if (!inSeries(c.series, series)) continue;
    if (best === null || compareDebianVersions(c.version, best.version) > 0) best = c;
  }
  return best;
}
