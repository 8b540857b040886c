#!/usr/bin/env node
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError, Option } from 'commander';
import { notifySystemd } from '@usip/netlink-native';
import { Agent, AgentStartError, DEFAULT_UNIT_EVENT_DIR } from './agent.js';
import { DEFAULT_ACTION_LIMITS } from './actions.js';
import { connectUsip } from './kernel.js';
import { ENTRY_RULES } from './files.js';
import { NotifierConfig, describeEntry, formatProblem } from './load.js';
import { DEFAULT_CONFIG_DIRS } from './schema.js';
import { LOG_FORMATS, LOG_LEVELS, createLogger, stderrIsJournal, type LogFormat, type LogLevel } from './log.js';
import { PrometheusMetrics, parseMetricsAddress, serveMetrics, type MetricsAddress } from './metrics.js';
import { SystemdNotifier, statusText, type AgentSummary } from './systemd.js';

/**
 * -c/--config-dir: repeatable; given at all, the list given replaces the default one (highest
 * precedence first, as the default /etc/usip.d, /run/usip.d, /usr/lib/usip.d).
 */
function configDirOption(): Option {
  return new Option(
    '-c, --config-dir <dir>',
    'directory of notifier files; repeat it for several, highest precedence first (a file overrides the one of the same name in the ' +
      'directories after it, a symbolic link to /dev/null masks it); given, the list replaces the default one',
  )
    .argParser((dir: string, previous: readonly string[]) => (previous === DEFAULT_CONFIG_DIRS ? [dir] : [...previous, dir]))
    .default(DEFAULT_CONFIG_DIRS, DEFAULT_CONFIG_DIRS.join(' '));
}
export const VERSION = '0.1.0';

export const program = new Command('usip-agent')
  .description('USIP notifier agent: declares notifiers from /etc/usip.d/*.json to the usip kernel module and runs their actions')
  .version(VERSION)
  // Usage errors exit 2, as usip's do (help and --version: 0).
  .exitOverride((error) => process.exit(error.exitCode === 0 ? 0 : 2));

program
  .command('check')
  .description('validate every notifier file of the configuration directory and exit')
  .addOption(configDirOption())
  .action(async (options: { configDir: readonly string[] }) => {
    const config = new NotifierConfig();
    const dirs = options.configDir.join(', ');
    let problems;
    let listing;
    try {
      ({ problems, listing } = await config.loadDirectories(options.configDir));
    } catch (error) {
      process.stderr.write(`usip-agent: ${(error as Error).message}\n`);
      process.exitCode = 1;
      return;
    }
    if (listing.missing.length === options.configDir.length) {
      process.stderr.write(`usip-agent: cannot read ${dirs}: no such directory\n`);
      process.exitCode = 1;
      return;
    }
    // A directory that does not exist is skipped, as systemd does; said, in case of a typo.
    for (const dir of listing.missing) process.stdout.write(`${dir}: no such directory, skipped\n`);
    // Which file counts for each name, when another directory has the same name.
    for (const entry of listing.entries) for (const line of describeEntry(entry)) process.stdout.write(`${line}\n`);
    for (const problem of problems) process.stderr.write(`${formatProblem(problem)}\n`);
    const notifiers = config.files.reduce((sum, file) => sum + file.notifiers.length, 0);
    // An entry that is not read (a FIFO, a directory, a file over 1 MiB...) is one problem.
    const skipped = problems.filter((p) => (ENTRY_RULES as readonly string[]).includes(p.rule)).length;
    const overridden = listing.entries.filter((e) => !e.masked).reduce((sum, e) => sum + e.overridden.length, 0);
    const masked = listing.entries.filter((e) => e.masked).length;
    process.stdout.write(
      `${dirs}: ${config.files.length} valid file(s), ${notifiers} notifier(s), ` +
        `${problems.length} problem(s), ${skipped} skipped` +
        `${overridden > 0 ? `, ${overridden} overridden` : ''}${masked > 0 ? `, ${masked} masked` : ''}\n`,
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

function metricsAddress(value: string): MetricsAddress {
  try {
    return parseMetricsAddress(value);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}

interface RunOptions {
  configDir: readonly string[];
  systemctl: string;
  unitEventDir: string;
  logFormat?: LogFormat;
  logLevel: LogLevel;
  maxRunning: number;
  maxQueued: number;
  actionTimeout: number;
  debounce: number;
  retryInterval: number;
  checkInterval: number;
  retry: boolean;
  metrics?: MetricsAddress;
}

program
  .command('run')
  .description(
    'register a listener with the usip module for each valid notifier file of the configuration directory, ' +
      'follow the files as they change, and run the actions they declare for each event, until SIGTERM or SIGINT ' +
      '(SIGHUP reads the directory again)',
  )
  .addOption(configDirOption())
  .option('--systemctl <path>', 'the systemctl that notifiers with "unit" run', 'systemctl')
  .option('--unit-event-dir <dir>', 'where the event of a notifier with "unit" is written for the unit, as UNIT.env', DEFAULT_UNIT_EVENT_DIR)
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
  .option(
    '--metrics <address>',
    'serve Prometheus metrics on GET /metrics at HOST:PORT (127.0.0.1:9464, [::1]:9464, localhost:9464) or a unix socket (/path or unix:/path, mode 0660); off by default',
    metricsAddress,
  )
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
    const metrics = options.metrics !== undefined ? new PrometheusMetrics({ version: VERSION }) : undefined;
    const agent = new Agent({
      metrics,
      configDirs: options.configDir,
      systemctl: options.systemctl,
      unitEventDir: options.unitEventDir,
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
        configDirs: agent.configDirs,
        maxRunning: options.maxRunning,
        maxQueuedPerFile: options.maxQueued,
        actionTimeoutSeconds: options.actionTimeout,
      },
      'starting',
    );
    if (metrics !== undefined && options.metrics !== undefined) {
      metrics.observe(agent);
      try {
        // Before the agent starts: an address that cannot be served is an error of its own, with
        // nothing registered yet. Served until the process exits (a unix socket is removed then).
        await serveMetrics(metrics, options.metrics, log);
      } catch (error) {
        log.fatal({ metrics: options.metrics.text, error: (error as Error).message }, 'cannot serve metrics');
        process.exit(1);
      }
    }
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
