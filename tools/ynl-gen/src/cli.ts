#!/usr/bin/env node
// usip-ynl-gen: writes the files generated from the YNL spec, or with --check reports stale ones.
import { relative, resolve } from 'node:path';
import { Command } from 'commander';
import { SpecError } from './errors.js';
import { DEFAULT_SPEC, findWorkspaceRoot, generateFiles, staleFiles, writeFiles } from './generate.js';
import { loadSpecFile } from './load.js';

const program = new Command()
  .name('usip-ynl-gen')
  .description('Generates the uapi header, kernel policies/ops, TypeScript tables and protocol docs from the YNL spec')
  .option('--root <dir>', 'workspace root (default: the nearest directory with nx.json)')
  .option('--spec <file>', `the YNL spec (default: <root>/${DEFAULT_SPEC})`)
  .option('--check', 'write nothing; exit 1 naming every generated file that is missing or out of date')
  .action((options: { root?: string; spec?: string; check?: boolean }) => {
    const root = options.root === undefined ? findWorkspaceRoot(process.cwd()) : resolve(options.root);
    const specPath = options.spec === undefined ? resolve(root, DEFAULT_SPEC) : resolve(options.spec);
    const label = relative(root, specPath);
    const family = loadSpecFile(specPath, { file: label, specLabel: label });
    const files = generateFiles(family);
    if (options.check) {
      const stale = staleFiles(root, files);
      for (const file of stale) {
        process.stderr.write(`usip-ynl-gen: ${file.path} is ${file.reason === 'missing' ? 'missing' : 'out of date'}; run usip-ynl-gen\n`);
      }
      if (stale.length > 0) process.exitCode = 1;
      else process.stdout.write(`usip-ynl-gen: ${files.length} generated files are up to date\n`);
      return;
    }
    const written = writeFiles(root, files);
    for (const path of written) process.stdout.write(`usip-ynl-gen: wrote ${path}\n`);
    if (written.length === 0) process.stdout.write(`usip-ynl-gen: ${files.length} generated files already up to date\n`);
  });

try {
  program.parse();
} catch (err) {
  if (err instanceof SpecError) {
    process.stderr.write(`usip-ynl-gen: invalid spec:\n${err.message}\n`);
  } else {
    process.stderr.write(`usip-ynl-gen: ${(err as Error).message}\n`);
  }
  process.exitCode = 2;
}
