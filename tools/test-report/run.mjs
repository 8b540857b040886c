#!/usr/bin/env node
// @ts-check
// Runs one project's test command, streams its output, and records how many tests passed and
// failed in dist/test-results/<name>.json, so that .ci/run can print one total for every package.
// It understands uvu's summary block and cargo's "test result:" line; a command that fails
// without any counted failure, or that ran no counted test at all, is recorded as one failure.
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { countTests } from './count.mjs';

const workspaceRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** @param {string} message @returns {never} */
function usage(message) {
  process.stderr.write(`test-report: ${message}\nusage: run.mjs --name NAME -- COMMAND [ARG...]\n`);
  process.exit(2);
}

const argv = process.argv.slice(2);
const separator = argv.indexOf('--');
if (separator < 0 || separator === argv.length - 1) usage('missing "-- COMMAND"');
const nameIndex = argv.indexOf('--name');
if (nameIndex < 0 || nameIndex + 1 >= separator) usage('missing --name NAME');
const name = /** @type {string} */ (argv[nameIndex + 1]);
const [command, ...args] = /** @type {[string, ...string[]]} */ (argv.slice(separator + 1));

const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
let output = '';
child.stdout.on('data', (/** @type {Buffer} */ chunk) => {
  output += chunk;
  process.stdout.write(chunk);
});
child.stderr.on('data', (/** @type {Buffer} */ chunk) => {
  output += chunk;
  process.stderr.write(chunk);
});
child.on('error', (err) => {
  process.stderr.write(`test-report: cannot run ${command}: ${err.message}\n`);
});
child.on('close', (code, signal) => {
  const counts = countTests(output);
  const notes = [];
  const exitCode = code ?? 128;
  if (exitCode !== 0 && counts.failed === 0) {
    counts.failed += 1;
    notes.push(`${command} exited with ${signal ?? code} without a counted test failure`);
  }
  if (counts.passed + counts.failed === 0) {
    counts.failed += 1;
    notes.push(`${command} ran no test that could be counted`);
  }
  const record = { name, command: [command, ...args], exitCode, signal, ...counts, notes };
  const outDir = join(workspaceRoot, 'dist', 'test-results');
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, `${name}.json`), JSON.stringify(record, null, 2) + '\n');
  for (const note of notes) process.stderr.write(`test-report: ${name}: ${note}\n`);
  process.stdout.write(`test-report: ${name}: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped\n`);
  process.exit(counts.failed > 0 ? 1 : 0);
});
