// JSON Schema (draft-07) of the subset of the kernel's genetlink YNL format that this generator
// understands. It follows Documentation/netlink/genetlink.yaml, minus what we do not generate
// (legacy structs, sub-messages, uint/sint), so that a key we would silently ignore is an error
// instead. `pre`/`post` hooks are accepted on a dump (they become the op's .start/.done); on a do
// the resolver rejects them, since struct genl_ops has no per-op pre_doit/post_doit. Multicast
// groups take only what the kernel's schema allows there, `name` and `flags: [admin-perm]` (no
// `doc`: the docs of the operations sent to a group say what it carries); `admin-perm` on a
// group is what this generator turns into GENL_MCAST_CAP_SYS_ADMIN.

const docString = { type: 'string', minLength: 1 } as const;

/** A name in the spec: lower-case words separated by dashes, as in the kernel's specs. */
const specName = { type: 'string', pattern: '^[a-z][a-z0-9]*(-[a-z0-9]+)*$' } as const;

const uint = { type: 'integer', minimum: 0 } as const;

/** A length: a literal, or the name of a const definition (the kernel's len-or-define). */
const lenOrDefine = {
  type: ['integer', 'string'],
  if: { type: 'string' },
  then: { pattern: '^[a-z][a-z0-9]*(-[a-z0-9]+)*$' },
  else: { minimum: 0 },
} as const;

/**
 * A limit: a literal, a fixed-width type's bound such as u32-max, or the name of a const
 * definition (the kernel's len-or-limit); the resolver tells the two names apart.
 */
const lenOrLimit = {
  type: ['integer', 'string'],
  if: { type: 'string' },
  then: { pattern: '^[a-z][a-z0-9]*(-[a-z0-9]+)*$' },
} as const;

export const ATTRIBUTE_TYPES = [
  'pad',
  'flag',
  'binary',
  'u8',
  'u16',
  'u32',
  'u64',
  's8',
  's16',
  's32',
  's64',
  'string',
  'nest',
] as const;

const attributeList = {
  type: 'object',
  additionalProperties: false,
  required: ['attributes'],
  properties: {
    attributes: { type: 'array', items: specName, uniqueItems: true },
  },
} as const;

/**
 * The name of a hook (a C function the module defines), in YNL's dash style:
 * usip-nl-mount-get-dump-start → usip_nl_mount_get_dump_start.
 */
const hookName = specName;

const subOperation = {
  type: 'object',
  additionalProperties: false,
  properties: {
    request: attributeList,
    reply: attributeList,
    // Hooks run before and after the main callback. Only a dump's are supported (the
    // resolver rejects them on a do, with the reason).
    pre: hookName,
    post: hookName,
  },
} as const;

export const specSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  title: 'USIP genetlink YNL spec',
  type: 'object',
  additionalProperties: false,
  required: ['name', 'protocol', 'doc', 'attribute-sets', 'operations'],
  properties: {
    // GENL_NAMSIZ is 16 bytes with the terminating NUL.
    name: { ...specName, maxLength: 15 },
    protocol: { const: 'genetlink' },
    doc: docString,
    'uapi-header': { type: 'string', pattern: '^[a-z0-9_/-]+\\.h$' },
    definitions: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['type', 'name', 'doc'],
        properties: {
          type: { enum: ['const', 'enum', 'flags'] },
          name: specName,
          doc: docString,
          value: { type: 'integer' },
          'value-start': uint,
          'name-prefix': { type: 'string', pattern: '^[a-z][a-z0-9-]*-$' },
          'enum-name': { type: 'string', pattern: '^[a-z][a-z0-9-]*$' },
          'render-max': { type: 'boolean' },
          // The kernel's schema also has "kernel" (a definition for the kernel's generated
          // header only); we generate none, so only "uapi" (the default) and "user" (the
          // TypeScript output and the docs, not the C files) are accepted.
          scope: { enum: ['uapi', 'user'] },
          entries: {
            type: 'array',
            minItems: 1,
            items: {
              type: ['string', 'object'],
              if: { type: 'string' },
              then: specName,
              else: {
                additionalProperties: false,
                required: ['name'],
                properties: { name: specName, value: uint, doc: docString },
              },
            },
          },
        },
      },
    },
    'attribute-sets': {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'doc', 'attributes'],
        properties: {
          name: specName,
          doc: docString,
          'name-prefix': { type: 'string', pattern: '^[a-z][a-z0-9-]*-$' },
          'enum-name': { type: 'string', pattern: '^[a-z][a-z0-9-]*$' },
          attributes: {
            type: 'array',
            minItems: 1,
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['name', 'type', 'doc'],
              properties: {
                name: specName,
                type: { enum: ATTRIBUTE_TYPES },
                doc: docString,
                value: { type: 'integer', minimum: 1, maximum: 16383 },
                'byte-order': { enum: ['little-endian', 'big-endian'] },
                'multi-attr': { type: 'boolean' },
                'nested-attributes': specName,
                enum: specName,
                'enum-as-flags': { type: 'boolean' },
                'display-hint': { enum: ['hex', 'mac', 'fddi', 'ipv4', 'ipv6', 'uuid'] },
                checks: {
                  type: 'object',
                  additionalProperties: false,
                  minProperties: 1,
                  properties: {
                    'flags-mask': specName,
                    min: lenOrLimit,
                    max: lenOrLimit,
                    'min-len': lenOrDefine,
                    'max-len': lenOrDefine,
                    'exact-len': lenOrDefine,
                  },
                },
              },
            },
          },
        },
      },
    },
    operations: {
      type: 'object',
      additionalProperties: false,
      required: ['list'],
      properties: {
        'enum-model': { const: 'unified' },
        'name-prefix': { type: 'string', pattern: '^[a-z][a-z0-9-]*-$' },
        'enum-name': { type: 'string', pattern: '^[a-z][a-z0-9-]*$' },
        list: {
          type: 'array',
          minItems: 1,
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['name', 'doc'],
            properties: {
              name: specName,
              doc: docString,
              value: { type: 'integer', minimum: 1, maximum: 255 },
              'attribute-set': specName,
              flags: {
                type: 'array',
                uniqueItems: true,
                items: { enum: ['admin-perm', 'uns-admin-perm'] },
              },
              do: subOperation,
              dump: subOperation,
              notify: specName,
              event: {
                type: 'object',
                additionalProperties: false,
                required: ['attributes'],
                properties: { attributes: { type: 'array', items: specName, uniqueItems: true } },
              },
              mcgrp: specName,
            },
          },
        },
      },
    },
    'mcast-groups': {
      type: 'object',
      additionalProperties: false,
      required: ['list'],
      properties: {
        list: {
          type: 'array',
          minItems: 1,
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['name'],
            properties: {
              name: { type: 'string', pattern: '^[a-z][a-z0-9-]*$', maxLength: 15 },
              // The kernel's schema allows admin-perm only (its ynl-gen-c ignores it). Here it
              // becomes GENL_MCAST_CAP_SYS_ADMIN: joining needs CAP_SYS_ADMIN in the user
              // namespace that owns the socket's network namespace.
              flags: {
                type: 'array',
                uniqueItems: true,
                items: { enum: ['admin-perm'] },
              },
            },
          },
        },
      },
    },
  },
} as const;
