#!/usr/bin/env node
// @ts-check
// Prints "N passed, N failed" over every dist/test-results/*.json, and exits non-zero if any
// test failed or if a project expected to report did not.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const workspaceRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const dir = join(workspaceRoot, 'dist', 'test-results');
const expected = process.argv.slice(2);

/** @type {string[]} */
let files = [];
try {
  files = readdirSync(dir).filter((f) => f.endsWith('.json'));
} catch {
  files = [];
}
let passed = 0;
let failed = 0;
const seen = new Set();
for (const file of files.sort()) {
  const record = JSON.parse(readFileSync(join(dir, file), 'utf8'));
  seen.add(record.name);
  passed += record.passed;
  failed += record.failed;
  process.stderr.write(`  ${record.name}: ${record.passed} passed, ${record.failed} failed\n`);
}
for (const name of expected) {
  if (!seen.has(name)) {
    process.stderr.write(`  ${name}: no test result recorded (its tests did not run)\n`);
    failed += 1;
  }
}
process.stdout.write(`${passed} passed, ${failed} failed\n`);
process.exit(failed > 0 ? 1 : 0);
