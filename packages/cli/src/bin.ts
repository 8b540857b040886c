#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import pkg from '../package.json' with { type: 'json' };
import { collectStatus, formatStatus } from './status.js';

/** Exit codes: 0 success, 1 the operation failed (e.g. module not loaded), 2 bad usage. */
const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;

const program = new Command('usip')
  .description('USIP: storage information and events from the Linux kernel (usip module)')
  .version(pkg.version)
  .showHelpAfterError('(run "usip --help" for usage)')
  .exitOverride();

program
  .command('status')
  .description('check that the usip module is loaded and show its versions and features')
  .option('--json', 'print the status as JSON')
  .action(async (options: { json?: boolean }) => {
    const report = await collectStatus(pkg.version);
    if (options.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else process.stdout.write(formatStatus(report));
    if (report.error) {
      process.stderr.write(`usip: ${report.error.message}\n`);
      process.exitCode = EXIT_FAILURE;
    }
  });

try {
  await program.parseAsync();
} catch (error) {
  if (!(error instanceof CommanderError)) throw error;
  // Help and --version "fail" with exit code 0; everything else commander rejects is usage.
  process.exitCode = error.exitCode === 0 ? 0 : EXIT_USAGE;
}
