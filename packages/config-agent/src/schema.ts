// JSON Schema of one notifier file in /etc/usip.d. It is the contract with admins: every rule
// here is reported by name (ajv keyword) with the JSON pointer of the offending value.
export const MTAB_ACTIONS = ['mount', 'umount', 'move', 'remount'] as const;
export const STORAGE_ACTIONS = ['enospc', 'edquot', 'low-space'] as const;

export type MtabAction = (typeof MTAB_ACTIONS)[number];
export type StorageAction = (typeof STORAGE_ACTIONS)[number];

export interface NotifierDeclaration {
  type: 'mtab' | 'storage';
  action: MtabAction | StorageAction;
  /** Deliver matching events to this agent (default true). */
  notify?: boolean;
  /** Ask the kernel to log matching events to the kernel log. */
  kernelLog?: boolean;
  /** Command (argv) the agent runs for each matching event. */
  run?: string[];
}

export interface NotifierFileContent {
  $schema?: string;
  description?: string;
  scope?: 'namespace' | 'global';
  notifiers: NotifierDeclaration[];
}

const notifierCommon = {
  notify: { type: 'boolean', description: 'Deliver matching events to the agent (default true).' },
  kernelLog: { type: 'boolean', description: 'Also write a rate-limited line to the kernel log.' },
  run: {
    type: 'array',
    description: 'Command to run for each event, as an argument vector (no shell).',
    minItems: 1,
    items: { type: 'string', minLength: 1 },
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
