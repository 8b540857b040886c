// What is generated from the notifier file schema (src/schema.ts) is up to date: the schema file
// the package ships and docs/reference/notifier-files.md (nx run config-agent:generate writes
// them); the schema file's $id is where the published package serves it; the file, as a JSON
// schema on its own, accepts the examples and refuses a bad file.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Ajv } from 'ajv';
import { AJV_OPTIONS, SCHEMA_ID } from '../src/index.js';
import { SCHEMA_FILE, generateSchemaFile } from '../scripts/generate-schema.js';
import { REFERENCE_FILE, generateReference } from '../scripts/generate-reference.js';

const stale = 'stale: run node --import tsx packages/config-agent/scripts/generate.ts (or nx run config-agent:generate)';

test('schema/notifier-file.schema.json is up to date', async () => {
  assert.is(await readFile(SCHEMA_FILE, 'utf8'), generateSchemaFile(), stale);
});

test('docs/reference/notifier-files.md is up to date, and names every key of the schema', async () => {
  const text = await readFile(REFERENCE_FILE, 'utf8');
  assert.is(text, generateReference(), stale);
  for (const key of ['$schema', 'scope', 'notifiers', 'type', 'action', 'pathPrefix', 'notify', 'kernLog', 'run', 'unit', 'timeoutSeconds', 'threshold', 'thresholdInodes', 'thresholdBytes', 'hysteresis', 'intervalMs']) {
    assert.match(text, `\n| \`${key}\` |`, key);
  }
});

test('the $id is the unpkg URL of the package version', async () => {
  const { version } = JSON.parse(await readFile(fileURLToPath(new URL('../package.json', import.meta.url)), 'utf8')) as { version: string };
  const schema = JSON.parse(await readFile(SCHEMA_FILE, 'utf8')) as { $id: string };
  assert.is(schema.$id, `https://unpkg.com/@usip/config-agent@${version}/schema/notifier-file.schema.json`);
  assert.is(SCHEMA_ID, schema.$id);
});

test('the schema file, compiled on its own, accepts the examples and refuses a bad unit name', async () => {
  const validate = new Ajv({ ...AJV_OPTIONS }).compile(JSON.parse(await readFile(SCHEMA_FILE, 'utf8')) as object);
  const dir = fileURLToPath(new URL('../../../examples/usip.d', import.meta.url));
  for (const name of (await readdir(dir)).filter((n) => n.endsWith('.json'))) {
    assert.ok(validate(JSON.parse(await readFile(join(dir, name), 'utf8'))), `${name}: ${JSON.stringify(validate.errors)}`);
  }
  assert.not.ok(validate({ notifiers: [{ type: 'mtab', action: 'mount', unit: '--force.service' }] }));
});

test.run();
