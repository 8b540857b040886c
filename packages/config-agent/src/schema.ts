// JSON Schema of one notifier file in /etc/usip.d. It is the contract with admins: every rule
// here is reported by name (ajv keyword) with the JSON pointer of the offending value.
export const MTAB_ACTIONS = ['mount', 'umount', 'move', 'remount'] as const;
export const STORAGE_ACTIONS = ['enospc', 'edquot', 'low-space', 'quota'] as const;

export type MtabAction = (typeof MTAB_ACTIONS)[number];
export type StorageAction = (typeof STORAGE_ACTIONS)[number];

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
  /** Ask the kernel to log matching events to the kernel log. */
  kernelLog?: boolean;
  /** Command (argv, no shell) the agent runs for each matching event. */
  run?: string[];
  /** How long `run` may take before it is stopped (default: the agent's --action-timeout). */
  timeoutSeconds?: number;
}

export interface NotifierFileContent {
  $schema?: string;
  description?: string;
  scope?: 'namespace' | 'global';
  notifiers: NotifierDeclaration[];
}

/** Patterns of the schema, with what they mean in words (ajv only knows the regular expression). */
export const PATTERN_MEANINGS: Readonly<Record<string, string>> = {
  '^(/.*|[^/]*)$': 'must be an absolute path or a command name looked up in PATH (the agent runs in /, so a relative path would be ambiguous)',
  '^/': 'must be an absolute path',
};

const notifierCommon = {
  pathPrefix: {
    type: 'string',
    description: 'Match only events whose mount point is this path or lies below it (whole path components).',
    pattern: '^/',
    maxLength: 4095,
  },
  notify: { type: 'boolean', description: 'Deliver matching events to the agent (default true).' },
  kernelLog: { type: 'boolean', description: 'Also write a rate-limited line to the kernel log.' },
  run: {
    type: 'array',
    description:
      'Command to run for each matching event, as an argument vector (no shell). The event is on its ' +
      'standard input as one JSON line and in USIP_EVENT_* environment variables.',
    minItems: 1,
    items: [{ type: 'string', minLength: 1, pattern: '^(/.*|[^/]*)$' }],
    additionalItems: { type: 'string' },
  },
  timeoutSeconds: {
    type: 'number',
    description: 'Seconds the command may run before it is stopped (SIGTERM, then SIGKILL). Default: the agent\'s --action-timeout.',
    exclusiveMinimum: 0,
    maximum: MAX_TIMEOUT_SECONDS,
  },
} as const;

export const notifierFileSchema = {
  $id: 'https://usip.invalid/schemas/notifier-file.json',
  title: 'USIP notifier file',
  description: 'One file of /etc/usip.d: the notifiers a listener registers with the usip module.',
  type: 'object',
  additionalProperties: false,
  required: ['notifiers'],
  properties: {
    $schema: { type: 'string' },
    description: { type: 'string' },
    scope: {
      enum: ['namespace', 'global'],
      description: 'namespace: events of the agent\'s mount namespace; global: of every namespace.',
    },
    notifiers: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        required: ['type'],
        // ajv's discriminator picks the branch by `type`, so an error names the rule of that
        // branch only instead of every branch of a plain oneOf.
        discriminator: { propertyName: 'type' },
        properties: { type: { type: 'string' } },
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
            },
          },
        ],
      },
    },
  },
} as const;
