// An event as the agent hands it on: to a notifier's command (one JSON line on stdin and USIP_EVENT_*
// environment variables) or to stdout (a notifier without `run`). The JSON has the shape of
// `usip listen --json`: type and action by their spec names, 64-bit values as decimal strings.
import { actionFromName, decodeDev, protocol, toJson, type ListenerEvent, type NotifierOptions } from '@usip/client';
import type { NotifierDeclaration, NotifierFileContent } from './schema.js';

/** An event in JSON form: what a command reads on stdin. */
export type EventJson = Record<string, unknown> & { kind: string; type?: string | number; action?: string | number };

/** JSON text in which bigints are decimal strings (exact at any size): the client's, shared with usip. */
export const toJsonText = (value: unknown): string => toJson(value);

/**
 * The event as JSON data: its fields as the client decoded them (type, action and the storage
 * events' enums already by their spec names), bigints as strings.
 */
export function eventJson(event: ListenerEvent): EventJson {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(event)) {
    if (value === undefined) continue;
    out[key] = typeof value === 'bigint' ? value.toString() : value;
  }
  return out as EventJson;
}

/** new_decode_dev(): the client's, re-exported for the agent's users. */
export { decodeDev };

/** `mountId` -> `USIP_EVENT_MOUNT_ID`. */
export function environmentName(key: string): string {
  return `USIP_EVENT_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
}

/**
 * The event as environment variables: one USIP_EVENT_<NAME> per attribute it carries
 * (USIP_EVENT_KIND, _TYPE, _ACTION, _PATH, _MOUNT_ID, _PARENT_ID, _UNIQUE_ID, _FS_TYPE, _SOURCE,
 * _DEV as MAJOR:MINOR, _SEQ, _NS_SEQ, _MISSED, _PID, _UID, _MNT_NS, _TIMESTAMP in ns since the
 * epoch, _COUNT, _CMD, _LISTENER_ID; storage events also _COMM, _SYSCALL, _INO, _QUOTA_TYPE,
 * _QUOTA_ID, _QUOTA_WARNING, _SPACE_STATE (low, recovered, mount-gone), _BYTES_TOTAL,
 * _BYTES_AVAILABLE, _FILES_TOTAL, _FILES_FREE). Attributes the event lacks are not set.
 */
export function eventEnvironment(event: EventJson): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(event)) {
    if (value === undefined || value === null) continue;
    env[environmentName(key)] = key === 'dev' && typeof value === 'number' ? decodeDev(value) : String(value);
  }
  return env;
}

/**
 * Variables as a systemd EnvironmentFile= (and POSIX sh) reads them: one `NAME="value"` line each,
 * the value double-quoted with `\`, `"`, `$` and `` ` `` escaped, which both read back as they
 * were (a newline inside the quotes is kept as it is by both). Names are the agent's own
 * (USIP_[A-Z_]+): nothing to quote there.
 */
export function environmentFileText(env: Readonly<Record<string, string>>): string {
  return Object.entries(env)
    .map(([name, value]) => `${name}="${value.replace(/[\\"$`]/g, (c) => `\\${c}`)}"\n`)
    .join('');
}

/** Whole path components, as the module matches them: /mnt matches /mnt and /mnt/a, not /mnta. */
export function pathWithin(path: string, prefix: string): boolean {
  let p = prefix;
  while (p.length > 1 && p.endsWith('/')) p = p.slice(0, -1);
  if (p === '/') return path.startsWith('/');
  return path === p || path.startsWith(`${p}/`);
}

/**
 * Whether a notifier of a file matches an event its listener received. The module sends a
 * listener one message per event, however many of its notifiers match, so the agent finds the
 * matching ones itself, with the module's rules: type, action, and the path prefix.
 */
export function notifierMatches(notifier: NotifierDeclaration, event: ListenerEvent, index?: number): boolean {
  if (notifier.notify === false) return false;
  if (event.type !== notifier.type) return false;
  if (event.action !== notifier.action) return false;
  // The module sends a low-space event for one notifier only (its threshold was crossed), with
  // that notifier's cmd, which is its index in the file (registerOptions).
  if (event.action === 'low-space' && index !== undefined && event.cmd !== index) return false;
  if (notifier.pathPrefix !== undefined && (event.path === undefined || !pathWithin(event.path, notifier.pathPrefix))) return false;
  return true;
}

/**
 * What register() gets for a file: its scope, and each notifier with its index in the file as
 * `cmd` (so `usip listeners` shows which notifier of the file is which).
 */
export function registerOptions(content: NotifierFileContent): { global: boolean; notifiers: NotifierOptions[] } {
  return {
    global: content.scope === 'global',
    notifiers: content.notifiers.map((n, index) => {
      const action = actionFromName(n.action);
      if (action === undefined) throw new Error(`notifier ${index}: unknown action ${n.action}`);
      const options = { type: n.type, action, cmd: index } as NotifierOptions;
      if (n.notify !== undefined) options.notify = n.notify;
      if (n.kernLog !== undefined) options.kernLog = n.kernLog;
      if (n.pathPrefix !== undefined) options.pathPrefix = n.pathPrefix;
      if (n.threshold !== undefined) options.threshold = n.threshold;
      if (n.thresholdInodes !== undefined) options.thresholdInodes = n.thresholdInodes;
      if (n.thresholdBytes !== undefined) options.thresholdBytes = BigInt(n.thresholdBytes);
      if (n.hysteresis !== undefined) options.hysteresis = n.hysteresis;
      if (n.intervalMs !== undefined) options.intervalMs = n.intervalMs;
      return options;
    }),
  };
}
