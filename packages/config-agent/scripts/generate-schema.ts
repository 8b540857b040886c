// Writes the notifier file schema (src/schema.ts) as the JSON file the package ships:
//   schema/notifier-file.schema.json   (its $id: where the published package serves it, on unpkg)
// Run after changing the schema:  node --import tsx packages/config-agent/scripts/generate.ts
// (a test fails while the file is stale).
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { notifierFileSchema } from '../src/schema.js';

export const SCHEMA_FILE = fileURLToPath(new URL('../schema/notifier-file.schema.json', import.meta.url));

/** The schema file's text. */
export function generateSchemaFile(): string {
  return `${JSON.stringify(notifierFileSchema, null, 2)}\n`;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  mkdirSync(dirname(SCHEMA_FILE), { recursive: true });
  writeFileSync(SCHEMA_FILE, generateSchemaFile());
  process.stdout.write(`wrote ${SCHEMA_FILE}\n`);
}
