import type { StatsResult } from '@usip/client';
import { toJson } from './common.js';

type Counter = Exclude<keyof StatsResult, 'scope'>;

/** A label for every counter of StatsResult (the compiler requires one for each, so a counter
 *  the spec adds cannot be left out), in the order they are printed. */
const LABELS = {
  listeners: 'listeners',
  notifiers: 'notifiers',
  queued: 'events queued',
  queueLimit: 'queue limit',
  posted: 'events posted',
  dropped: 'events dropped',
  delivered: 'messages delivered',
  undeliverable: 'undeliverable',
  objects: 'live objects',
  // kprobes on the mount paths, registered only while an mtab listener exists.
  mountHooks: 'mount hooks armed',
  // The sys_exit tracepoint and the quota warning probe, only while a listener wants them.
  storageHooks: 'storage hooks armed',
  coalesceSlots: 'coalescing slots',
  watchedMounts: 'watched mounts',
  statfsPending: 'statfs pending',
} as const satisfies Record<Counter, string>;

/** What the scope is called for people: the whole module's counters, or the caller's own. */
export const SCOPE_LABELS = { host: 'host', user: 'your own' } as const satisfies Record<StatsResult['scope'], string>;

/**
 * `usip stats` for people: whose counters they are, then one counter per line, each that the
 * module reported (in the user scope it leaves out the host-wide ones: no line for them).
 */
export function formatStats(stats: StatsResult): string {
  const rows: [string, string][] = [['scope', SCOPE_LABELS[stats.scope]]];
  for (const [key, label] of Object.entries(LABELS) as [Counter, string][]) {
    const value = stats[key];
    if (value !== undefined) rows.push([label, String(value)]);
  }
  const width = Math.max(...rows.map(([label]) => label.length));
  return rows.map(([label, value]) => `${label.padEnd(width)}  ${value}`).join('\n') + '\n';
}

/** `usip stats --json`: the counters the module reported, scope as its spec name ("host" or
 *  "user"), 64-bit values as decimal strings; absent counters are absent. */
export function formatStatsJson(stats: StatsResult): string {
  return `${toJson(stats, 2)}\n`;
}
