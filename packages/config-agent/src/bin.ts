#!/usr/bin/env node
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError, Option } from 'commander';
import { notifySystemd } from '@usip/netlink-native';
import { Agent, AgentStartError } from './agent.js';
import { DEFAULT_ACTION_LIMITS } from './actions.js';
import { connectUsip } from './kernel.js';
import { ENTRY_RULES } from './files.js';
import { NotifierConfig, formatProblem } from './load.js';
import { LOG_FORMATS, LOG_LEVELS, createLogger, stderrIsJournal, type LogFormat, type LogLevel } from './log.js';
import { SystemdNotifier, statusText, type AgentSummary } from './systemd.js';

const DEFAULT_CONFIG_DIR = '/etc/usip.d';
export const VERSION = '0.1.0';

export const program = new Command('usip-agent')
  .description('USIP notifier agent: declares notifiers from /etc/usip.d/*.json to the usip kernel module and runs their actions')
  .version(VERSION);

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
    // An entry that is not read (a FIFO, a directory, a file over 1 MiB...) is one problem.
    const skipped = problems.filter((p) => (ENTRY_RULES as readonly string[]).includes(p.rule)).length;
    process.stdout.write(
      `${options.configDir}: ${config.files.length} valid file(s), ${notifiers} notifier(s), ` +
        `${problems.length} problem(s), ${skipped} skipped\n`,
    );
    if (problems.length > 0) process.exitCode = 1;
  });

function positiveInteger(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('expected a whole number of at least 1');
  return n;
}

function wholeNumber(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) throw new InvalidArgumentError('expected a whole number');
  return n;
}

function positiveSeconds(value: string): number {
  const n = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value) || !(n > 0)) throw new InvalidArgumentError('expected a number of seconds greater than 0');
  return n;
}

interface RunOptions {
  configDir: string;
  logFormat?: LogFormat;
  logLevel: LogLevel;
  maxRunning: number;
  maxQueued: number;
  actionTimeout: number;
  debounce: number;
  retryInterval: number;
  checkInterval: number;
  retry: boolean;
}

program
  .command('run')
  .description(
    'register a listener with the usip module for each valid notifier file of the configuration directory, ' +
      'follow the files as they change, and run the actions they declare for each event, until SIGTERM or SIGINT ' +
      '(SIGHUP reads the directory again)',
  )
  .option('-c, --config-dir <dir>', 'directory of notifier files', DEFAULT_CONFIG_DIR)
  .addOption(
    new Option(
      '--log-format <format>',
      'log as JSON lines, as lines for people, or as lines with a syslog priority prefix for the journal ' +
        '(default: journal when standard error is the journal, as under systemd, else json)',
    ).choices(LOG_FORMATS),
  )
  .addOption(new Option('--log-level <level>', 'least important log level written').choices(LOG_LEVELS).default('info'))
  .option('--max-running <n>', 'commands running at once, over all files', positiveInteger, DEFAULT_ACTION_LIMITS.maxRunning)
  .option(
    '--max-queued <n>',
    'events waiting per file for its commands; more are counted, logged and not acted on',
    positiveInteger,
    DEFAULT_ACTION_LIMITS.maxQueuedPerFile,
  )
  .option(
    '--action-timeout <seconds>',
    'time limit of a command whose notifier sets no timeoutSeconds (then SIGTERM, SIGKILL 5 s later)',
    positiveSeconds,
    DEFAULT_ACTION_LIMITS.timeoutMs / 1000,
  )
  .option('--debounce <ms>', 'quiet time after a file changes before it is read', wholeNumber, 200)
  .option('--retry-interval <seconds>', 'pause between attempts to reach a usip module that is not loaded', positiveSeconds, 5)
  .option('--check-interval <seconds>', 'period of the check that the module still holds the listeners (it may be reloaded)', positiveSeconds, 10)
  .option('--no-retry', 'exit with status 1 when the usip module is not loaded, or goes away, instead of waiting for it')
  .action(async (options: RunOptions) => {
    const log = createLogger({ format: options.logFormat ?? (stderrIsJournal() ? 'journal' : 'json'), level: options.logLevel });
    // Under systemd (Type=notify): READY=1 once started, RELOADING=1 ... READY=1 around SIGHUP,
    // STOPPING=1, STATUS= lines and the watchdog. Outside it, these send nothing.
    const systemd = new SystemdNotifier({
      send: notifySystemd,
      log,
      // A module check that has run for a whole watchdog period is stuck: let systemd restart us.
      healthy: (watchdogMs) => agent.checkRunningMs < watchdogMs,
    });
    const summary = (): AgentSummary => {
      const files = agent.status();
      return {
        files: files.filter((f) => f.notifiers !== undefined).length,
        notifiers: files.reduce((sum, f) => sum + (f.notifiers ?? 0), 0),
        listeners: files.filter((f) => f.listenerId !== undefined).length,
        connected: agent.connected,
      };
    };
    let statusTimer: NodeJS.Timeout | undefined;
    let exitCode = 0;
    let stopping: Promise<void> | undefined;
    const stop = (code: number) => {
      exitCode = Math.max(exitCode, code);
      if (stopping === undefined) {
        clearInterval(statusTimer);
        systemd.stopping();
      }
      stopping ??= agent.stop().then(
        () => process.exit(exitCode),
        (error: unknown) => {
          log.fatal({ error: (error as Error).message, stack: (error as Error).stack }, 'stopping failed');
          process.exit(1);
        },
      );
    };
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping !== undefined) {
        log.warn({ signal }, 'second signal while stopping: exiting at once');
        process.exit(1);
      }
      log.info({ signal }, 'signal received');
      stop(0);
    };
    const agent = new Agent({
      configDir: options.configDir,
      connect: connectUsip,
      log,
      limits: { maxRunning: options.maxRunning, maxQueuedPerFile: options.maxQueued, timeoutMs: options.actionTimeout * 1000 },
      debounceMs: options.debounce,
      retryIntervalMs: options.retryInterval * 1000,
      checkIntervalMs: options.checkInterval * 1000,
      retry: options.retry,
      onFatal: (error) => {
        log.fatal({ error: error.message }, 'cannot go on without the usip module (--no-retry)');
        stop(1);
      },
    });
    let stdoutBroken = false;
    process.stdout.on('error', (error) => {
      if (!stdoutBroken) log.error({ error: error.message }, 'standard output failed: events of notifiers without "run" are lost');
      stdoutBroken = true;
    });
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    // SIGHUP (systemctl reload): one rescan at a time; a SIGHUP during one asks for another.
    let reloading: Promise<void> | undefined;
    let reloadAgain = false;
    const reload = () => {
      if (stopping !== undefined) return;
      if (reloading !== undefined) {
        reloadAgain = true;
        return;
      }
      systemd.reloading();
      reloading = agent.rescan().finally(() => {
        reloading = undefined;
        if (stopping !== undefined) return;
        if (reloadAgain) {
          reloadAgain = false;
          reload();
          return;
        }
        systemd.ready(statusText(summary()));
      });
    };
    process.on('SIGHUP', reload);
    log.info(
      {
        version: VERSION,
        configDir: agent.configDir,
        maxRunning: options.maxRunning,
        maxQueuedPerFile: options.maxQueued,
        actionTimeoutSeconds: options.actionTimeout,
      },
      'starting',
    );
    try {
      await agent.start();
    } catch (error) {
      if (!(error instanceof AgentStartError)) throw error;
      log.fatal({ error: error.message }, 'cannot start');
      systemd.status(`cannot start: ${error.message}`);
      stop(1);
      return;
    }
    if (stopping !== undefined) return;
    // Files read and listeners registered, or waiting for the module (the status says which).
    systemd.ready(statusText(summary()));
    systemd.startWatchdog();
    // The status follows file changes and the module coming and going; sent only when it changes.
    statusTimer = setInterval(() => {
      if (reloading === undefined) systemd.status(statusText(summary()));
    }, 2000);
  });

// Run as the command, not when imported (tools/man/generate.ts reads the definitions).
if (process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) await program.parseAsync();
