// JSON Schema of one notifier file in /etc/usip.d. It is the contract with admins: every rule
// here is reported by name (ajv keyword) with the JSON pointer of the offending value. Keys are
// the spec's names camelCased (kernLog, pathPrefix), values the spec's names as they are
// ('low-space', scope 'mnt-ns'), as in the client and in `usip listen --json`.
import { ACTIONS_OF_TYPE, type MtabActionName, type protocol, type StorageActionName } from '@usip/client';
import packageJson from '../package.json' with { type: 'json' };

/**
 * Where the published package serves the schema file (schema/notifier-file.schema.json, written
 * by scripts/generate.ts): a real URL, so that a file naming it in `$schema` gets completion and
 * checks in an editor. It carries the package's version: a file names the schema it was written for.
 */
export const SCHEMA_ID = `https://unpkg.com/@usip/config-agent@${packageJson.version}/schema/notifier-file.schema.json`;

/** The directories notifier files are read from, highest precedence first (systemd's order). */
export const DEFAULT_CONFIG_DIRS: readonly string[] = ['/etc/usip.d', '/run/usip.d', '/usr/lib/usip.d'];

/** The types of unit `unit` may start: those `systemctl start` can start (not device or scope units). */
export const STARTABLE_UNIT_TYPES = ['service', 'socket', 'target', 'path', 'timer', 'mount', 'automount', 'swap', 'slice'] as const;

/**
 * A unit name as systemd accepts it (unit_name_is_valid: at most 255 characters of [A-Za-z0-9:_.\\-],
 * an optional @instance, a type suffix), narrowed to what may be started and cannot be mistaken
 * for anything else: not starting with "-" (an option) or "." (a hidden file name: the event file
 * is named after the unit), no "/" (a path), a template only with its instance.
 */
export const UNIT_NAME_PATTERN = `^[A-Za-z0-9:_\\\\][A-Za-z0-9:_.\\\\-]*(@[A-Za-z0-9:_.\\\\-]+)?\\.(${STARTABLE_UNIT_TYPES.join('|')})$`;

/** The actions of each type, from the spec (through the client's generated tables). */
export const MTAB_ACTIONS = ACTIONS_OF_TYPE.mtab;
export const STORAGE_ACTIONS = ACTIONS_OF_TYPE.storage;

export type MtabAction = MtabActionName;
export type StorageAction = StorageActionName;

/** Keys and values the files once spelt otherwise, and their names now: refused with a hint. */
export const RENAMED_KEYS: Readonly<Record<string, string>> = { kernelLog: 'kernLog' };
export const RENAMED_VALUES: Readonly<Record<string, string>> = { namespace: 'mnt-ns' };

/**
 * The options of ajv the schema is compiled with (by scripts/generate-validator.ts). strictTuples
 * off: `run` is an open tuple on purpose (argv[0] has rules of its own, the arguments are any
 * strings), which ajv's strict mode would otherwise refuse.
 */
export const AJV_OPTIONS = { allErrors: true, discriminator: true, strict: true, strictTuples: false } as const;

/** The longest run timeout a file may ask for: one day. */
export const MAX_TIMEOUT_SECONDS = 86_400;

export interface NotifierDeclaration {
  type: 'mtab' | 'storage';
  action: MtabAction | StorageAction;
  /** Match only events at or below this absolute path (whole path components). */
  pathPrefix?: string;
  /** Deliver matching events to this agent (default true). */
  notify?: boolean;
  /** Ask the kernel to log matching events to the kernel log (the notifier flag kern-log). */
  kernLog?: boolean;
  /** Command (argv, no shell) the agent runs for each matching event. */
  run?: string[];
  /** A systemd unit the agent starts for each matching event (`systemctl start --no-block`). */
  unit?: string;
  /** How long `run` (or systemctl, for `unit`) may take before it is stopped (default: the agent's --action-timeout). */
  timeoutSeconds?: number;
  /** low-space only, exactly one of these three: percent of blocks available, of inodes free, bytes available. */
  threshold?: number;
  thresholdInodes?: number;
  thresholdBytes?: number;
  /** low-space only: how far above the threshold free space must rise to recover, in percent of it. */
  hysteresis?: number;
  /** low-space only: how often the module reads the watched mounts, in milliseconds. */
  intervalMs?: number;
}

export interface NotifierFileContent {
  $schema?: string;
  description?: string;
  scope?: protocol.ScopeName;
  notifiers: NotifierDeclaration[];
}

/** Patterns of the schema, with what they mean in words (ajv only knows the regular expression). */
export const PATTERN_MEANINGS: Readonly<Record<string, string>> = {
  '^(/.*|[^/]*)$': 'must be an absolute path or a command name looked up in PATH (the agent runs in /, so a relative path would be ambiguous)',
  '^/': 'must be an absolute path',
  [UNIT_NAME_PATTERN]:
    `must be a unit name systemctl can start: NAME.TYPE or NAME@INSTANCE.TYPE, of letters, digits and ":_.\\-", ` +
    `not starting with "-" or ".", TYPE one of ${STARTABLE_UNIT_TYPES.join(', ')}`,
};

/**
 * The agent's rules beyond the schema (load.ts checks them), by the rule name its problems carry:
 * for the reference documentation.
 */
export const AGENT_RULES: readonly { rule: string; text: string }[] = [
  { rule: 'action', text: 'A notifier has at most one action: "run" or "unit", not both. With neither, its events are written to the agent\'s standard output.' },
  { rule: 'notify', text: 'A notifier with "notify": false must have "kernLog": true (else it does nothing) and neither "run" nor "unit" (the agent would receive no event to act on).' },
  { rule: 'run', text: '"timeoutSeconds" needs a "run" or a "unit": it is their time limit.' },
  { rule: 'permissions', text: 'The commands of a file with "run" or "unit" are run only if nobody but root and the agent\'s user could have written it: the file and every directory above it owned by root or the agent\'s user, not writable by group or others.' },
];

const notifierCommon = {
  pathPrefix: {
    type: 'string',
    description: 'Match only events whose mount point is this path or lies below it (whole path components).',
    pattern: '^/',
    maxLength: 4095,
  },
  notify: { type: 'boolean', default: true, description: 'Deliver matching events to the agent.' },
  kernLog: { type: 'boolean', default: false, description: 'Also write a rate-limited line to the kernel log.' },
  run: {
    type: 'array',
    description:
      'Command to run for each matching event, as an argument vector (no shell). The event is on its ' +
      'standard input as one JSON line and in USIP_EVENT_* environment variables.',
    minItems: 1,
    items: [{ type: 'string', minLength: 1, pattern: '^(/.*|[^/]*)$' }],
    additionalItems: { type: 'string' },
  },
  unit: {
    type: 'string',
    description:
      'A systemd unit to start for each matching event: the agent runs `systemctl start --no-block -- UNIT` with the event in ' +
      'its USIP_EVENT_* environment, and first writes the event to /run/usip-agent/events/UNIT.env for the unit to read ' +
      '(EnvironmentFile=-/run/usip-agent/events/UNIT.env). Instead of "run".',
    maxLength: 255,
    pattern: UNIT_NAME_PATTERN,
  },
  timeoutSeconds: {
    type: 'number',
    description:
      'Seconds the command (for "unit": systemctl) may run before it is stopped (SIGTERM, then SIGKILL). Default: the agent\'s --action-timeout (30).',
    exclusiveMinimum: 0,
    maximum: MAX_TIMEOUT_SECONDS,
  },
} as const;

/** The options of a low-space notifier, with the module's ranges (spec: notifier attributes). */
const lowSpaceOptions = {
  threshold: {
    type: 'integer',
    description: 'low-space: fire when the blocks available to unprivileged users fall below this percentage (1..100).',
    minimum: 1,
    maximum: 100,
  },
  thresholdInodes: {
    type: 'integer',
    description: 'low-space: fire when the free inodes fall below this percentage (1..100).',
    minimum: 1,
    maximum: 100,
  },
  thresholdBytes: {
    type: 'integer',
    description: 'low-space: fire when the bytes available to unprivileged users fall below this number.',
    minimum: 1,
    maximum: Number.MAX_SAFE_INTEGER,
  },
  hysteresis: {
    type: 'integer',
    description: 'low-space: recover only above the threshold plus this percentage of it (0..1000).',
    default: 5,
    minimum: 0,
    maximum: 1000,
  },
  intervalMs: {
    type: 'integer',
    description: 'low-space: how often the module reads the watched mounts, in ms (100..3600000).',
    default: 1000,
    minimum: 100,
    maximum: 3_600_000,
  },
} as const;

/** A subschema that holds when the notifier has `key` (ajv's strict mode wants it defined there too). */
function has<K extends keyof typeof lowSpaceOptions>(key: K) {
  return { required: [key], properties: { [key]: lowSpaceOptions[key] } as { [P in K]: (typeof lowSpaceOptions)[K] } };
}

export const notifierFileSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: SCHEMA_ID,
  title: 'USIP notifier file',
  description: 'One file of /etc/usip.d (or /run/usip.d, /usr/lib/usip.d): the notifiers a listener registers with the usip module.',
  type: 'object',
  additionalProperties: false,
  required: ['notifiers'],
  properties: {
    $schema: { type: 'string', description: `The schema the file follows, for editors: "${SCHEMA_ID}". Not checked by the agent.` },
    description: { type: 'string', description: 'What the file is for, for people.' },
    scope: {
      enum: ['mnt-ns', 'global'],
      default: 'mnt-ns',
      description: 'mnt-ns: events of the agent\'s mount namespace; global: of every mount namespace (needs CAP_SYS_ADMIN).',
    },
    notifiers: {
      type: 'array',
      description: 'What to listen for: one or more notifiers (the module allows 32 per listener by default).',
      minItems: 1,
      items: {
        type: 'object',
        required: ['type'],
        // ajv's discriminator picks the branch by `type`, so an error names the rule of that
        // branch only instead of every branch of a plain oneOf.
        discriminator: { propertyName: 'type' },
        properties: { type: { type: 'string', description: 'What to listen for: mount table changes (mtab) or storage events (storage).' } },
        oneOf: [
          {
            additionalProperties: false,
            required: ['action'],
            properties: {
              type: { const: 'mtab' },
              action: { enum: MTAB_ACTIONS },
              ...notifierCommon,
            },
          },
          {
            additionalProperties: false,
            required: ['action'],
            properties: {
              type: { const: 'storage' },
              action: { enum: STORAGE_ACTIONS },
              ...notifierCommon,
              ...lowSpaceOptions,
            },
            // A low-space notifier has exactly one threshold; no other action has any of these.
            if: { properties: { action: { const: 'low-space' } } },
            then: { oneOf: [has('threshold'), has('thresholdInodes'), has('thresholdBytes')] },
            else: {
              not: {
                anyOf: [has('threshold'), has('thresholdInodes'), has('thresholdBytes'), has('hysteresis'), has('intervalMs')],
              },
            },
          },
        ],
      },
    },
  },
} as const;
