import type { StatsResult } from '@usip/client';

const LABELS: [keyof StatsResult, string][] = [
  ['listeners', 'listeners'],
  ['notifiers', 'notifiers'],
  ['queued', 'events queued'],
  ['queueLimit', 'queue limit'],
  ['posted', 'events posted'],
  ['dropped', 'events dropped'],
  ['delivered', 'messages delivered'],
  ['undeliverable', 'undeliverable'],
  ['objects', 'live objects'],
  // kprobes on the mount paths, registered only while an mtab listener exists.
  ['mountHooks', 'mount hooks armed'],
];

/** `usip stats` for people: one counter per line. */
export function formatStats(stats: StatsResult): string {
  const width = Math.max(...LABELS.map(([, label]) => label.length));
  return LABELS.map(([key, label]) => `${label.padEnd(width)}  ${stats[key]}`).join('\n') + '\n';
}
