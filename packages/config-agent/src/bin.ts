#!/usr/bin/env node
import { Command } from 'commander';
import { NotifierConfig, formatProblem } from './load.js';

const DEFAULT_CONFIG_DIR = '/etc/usip.d';

const program = new Command('usip-agent')
  .description('USIP notifier agent: declares notifiers from /etc/usip.d/*.json to the usip kernel module')
  .version('0.1.0');

program
  .command('check')
  .description('validate every notifier file of the configuration directory and exit')
  .option('-c, --config-dir <dir>', 'directory of notifier files', DEFAULT_CONFIG_DIR)
  .action(async (options: { configDir: string }) => {
    const config = new NotifierConfig();
    let problems;
    try {
      problems = await config.loadDirectory(options.configDir);
    } catch (error) {
      process.stderr.write(`usip-agent: cannot read ${options.configDir}: ${(error as Error).message}\n`);
      process.exitCode = 1;
      return;
    }
    for (const problem of problems) process.stderr.write(`${formatProblem(problem)}\n`);
    const notifiers = config.files.reduce((sum, file) => sum + file.notifiers.length, 0);
    process.stdout.write(
      `${options.configDir}: ${config.files.length} valid file(s), ${notifiers} notifier(s), ` +
        `${problems.length} problem(s)\n`,
    );
    if (problems.length > 0) process.exitCode = 1;
  });

await program.parseAsync();
