// Writes everything generated from the notifier file schema (src/schema.ts): the compiled
// validator, the JSON schema file and the reference page. `nx run config-agent:generate` runs it.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { GENERATED, generateValidator } from './generate-validator.js';
import { SCHEMA_FILE, generateSchemaFile } from './generate-schema.js';
import { REFERENCE_FILE, generateReference } from './generate-reference.js';

const { js, dts } = generateValidator();
const files: [string, string][] = [
  [GENERATED.js, js],
  [GENERATED.dts, dts],
  [SCHEMA_FILE, generateSchemaFile()],
  [REFERENCE_FILE, generateReference()],
];
for (const [path, text] of files) {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
  process.stdout.write(`wrote ${path}\n`);
}
