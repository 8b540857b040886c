#!/usr/bin/env node
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Argument, Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { MOUNT_BACKENDS, mountOfPath, UsipModuleNotLoadedError, protocol, type BlockDevice, type MountBackend, type NotifierOptions } from '@usip/client';
import pkg from '../package.json' with { type: 'json' };
import { actionsOf, BACKEND_HELP, EXIT_FAILURE, EXIT_USAGE, TYPE_NAMES, backendName, deviceNumber, integer, mountId, reportError, toJson, typedAction, u64, withClient, withMounts } from './common.js';
import {
  DEFAULT_DEVICE_COLUMNS,
  DEVICE_COLUMNS,
  devicesJson,
  devicesOfSysroot,
  formatDevices,
  parseColumns,
  selectNamed,
  shownByDefault,
  type DevicesCommandOptions,
} from './devices.js';
import { completionScript, SHELLS, type Shell, type ValueSet, type ValueTable } from './completion.js';
import { DF_FIELDS, df, parseOutputFields, type DfField, type DfOptions } from './df.js';
import { inject, type InjectCommandOptions } from './inject.js';
import { listen, parseNotifier } from './listen.js';
import { formatListeners, listenerJson } from './listeners.js';
import {
  columnParser,
  DEFAULT_MOUNT_COLUMNS,
  DEFAULT_POLL_COLUMNS,
  formatMounts,
  matchesTypes,
  MOUNT_COLUMNS,
  mountUsage,
  mountsJson,
  POLL_ACTIONS,
  POLL_COLUMNS,
  USAGE_COLUMN_NAMES,
  pollActions,
  type MountColumn,
} from './findmnt.js';
import { formatMount, mountJson, watch, type WatchCommandOptions } from './mounts.js';
import { terminalWidth } from './table.js';
import { formatStats, formatStatsJson } from './stats.js';
import { collectStatus, formatStatus } from './status.js';

interface MountsCommandOptions {
  output?: MountColumn[];
  noheadings?: boolean;
  raw?: boolean;
  json?: boolean;
  list?: boolean;
  types?: string;
  target?: string;
  dump?: boolean;
  bytes?: boolean;
  backend?: MountBackend;
}

const program = new Command('usip')
  .description('USIP: storage information and events from the Linux kernel (usip module)')
  .version(pkg.version)
  .showHelpAfterError('(run "usip --help" for usage)')
  // Every error as "usip: message" on stderr, commander's usage errors too.
  .configureOutput({ outputError: (text, write) => write(`usip: ${text.replace(/^error: /, '')}`) })
  .exitOverride();

program
  .command('status')
  .description('check that the usip module is loaded and show its versions and features, and which backend serves each feature')
  .option('--json', 'print the status as JSON')
  .option('--backend <backend>', `show the choice with this backend forced: ${'module, kernel, mountinfo'}`, backendName)
  .action(async (options: { json?: boolean; backend?: MountBackend }) => {
    const report = await collectStatus(pkg.version, options.backend);
    if (options.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else process.stdout.write(formatStatus(report));
    if (report.error) {
      process.stderr.write(`usip: ${report.error.message}\n`);
      process.exitCode = EXIT_FAILURE;
    }
  });

program
  .command('listeners')
  .description('list the listeners of this network namespace that you may unregister (root: all of them)')
  .option('--json', 'print them as JSON (64-bit values as strings)')
  .action(async (options: { json?: boolean }) => {
    await withClient(async (client) => {
      const listeners = (await client.listeners()).map(listenerJson);
      process.stdout.write(options.json ? `${toJson(listeners, 2)}\n` : formatListeners(listeners));
    });
  });

program
  .command('listen')
  .description('register a listener and print its events, one per line, until interrupted')
  .option(
    '--notifier <spec>',
    'what to listen to, repeatable: TYPE:ACTION[:OPTION]..., e.g. mtab:mount, mtab:umount:kern-log, ' +
      'storage:low-space,threshold=10%,path-prefix=/var; options: kern-log, cmd=N, mount-id=N, path-prefix=PATH (last), ' +
      'and for low-space exactly one of threshold=N%, threshold-inodes=N%, threshold-bytes=SIZE (1G), ' +
      'with hysteresis=N (percent of the threshold, default 5) and interval-ms=N (default 1000)',
    (value: string, previous: NotifierOptions[] | undefined) => [...(previous ?? []), parseNotifier(value)],
  )
  .option('--global', 'events of every mount namespace, not only this one (needs CAP_SYS_ADMIN)')
  .option('--json', 'print each event as one JSON line (64-bit values as strings)')
  .option('--count <n>', 'stop after n events', integer(1, Number.MAX_SAFE_INTEGER))
  .option('--receive-buffer-size <bytes>', 'SO_RCVBUF of the listener socket', integer(1, 0x7fffffff))
  .action(
    async (
      options: { notifier?: NotifierOptions[]; global?: boolean; json?: boolean; count?: number; receiveBufferSize?: number },
      command: Command,
    ) => {
      const { notifier } = options;
      if (notifier === undefined) {
        command.error("error: required option '--notifier <spec>' not specified", { exitCode: EXIT_USAGE });
      }
      await withClient((client) => listen(client, { ...options, notifier }), (error) => {
        // Storage events have no backend but the module: say so.
        const storage = notifier.find((n) => n.type === 'storage');
        if (!(error instanceof UsipModuleNotLoadedError) || storage === undefined) return error;
        const what = storage.action === 'low-space' ? 'low-space notifications need' : 'storage events need';
        return new UsipModuleNotLoadedError({ needs: `${what} the usip kernel module: no other backend provides them`, cause: error });
      });
    },
  );

program
  .command('inject')
  .description('post a synthetic event, for tests (module loaded with allow_inject=1; needs CAP_SYS_ADMIN)')
  .addOption(new Option('--type <type>', 'event type').choices(TYPE_NAMES).makeOptionMandatory())
  .requiredOption('--action <action>', `mtab: ${actionsOf('mtab').join(', ')}; storage: ${actionsOf('storage').filter((a) => a !== 'low-space').join(', ')} (low-space events come from the module's checks only)`)
  .option('--path <path>', 'mount point')
  .option('--mount-id <id>', `mount id (0 to ${protocol.MOUNT_ID_MAX})`, mountId)
  .option('--parent-id <id>', `parent mount id (0 to ${protocol.MOUNT_ID_MAX})`, mountId)
  .option('--fs-type <type>', 'file system type, e.g. ext4')
  .option('--source <source>', 'mount source, e.g. /dev/sda1')
  .option('--dev <dev>', 'device number, MAJOR:MINOR (or encoded)', deviceNumber)
  .option('--count <n>', 'occurrences the event stands for', integer(1, 0xffffffff))
  .option('--repeat <n>', 'post it n times in a burst', integer(1, 65536))
  .option('--json', 'print the result as JSON')
  .action(async (options: InjectCommandOptions & { type: string; action: string }, command: Command) => {
    const { type, action, ...rest } = options;
    const event = typedAction(type, action);
    if (typeof event === 'string') {
      command.error(`error: option '--action <action>' argument '${action}' is invalid. ${event}`, { exitCode: EXIT_USAGE });
    }
    await withClient((client) => inject(client, event, rest));
  });

program
  .command('stats')
  .description("show the module's counters: the whole module's as root (CAP_SYS_ADMIN), your own listeners' otherwise")
  .option('--json', 'print them as JSON (64-bit values as strings)')
  .action(async (options: { json?: boolean }) => {
    await withClient(async (client) => {
      const stats = await client.stats();
      process.stdout.write(options.json ? formatStatsJson(stats) : formatStats(stats));
    });
  });

program
  .command('mounts')
  .description("list the mounts of this mount namespace, as seen from this process's root, as findmnt does (a tree; -l a list)")
  .addOption(
    new Option('-o, --output <list>', `the columns, comma-separated, any case (+LIST adds to the default): ${Object.keys(MOUNT_COLUMNS).join(', ')}; default ${DEFAULT_MOUNT_COLUMNS.join(',')}`).argParser(
      columnParser(MOUNT_COLUMNS, DEFAULT_MOUNT_COLUMNS),
    ),
  )
  .option('-n, --noheadings', 'no header line')
  .option('-r, --raw', 'one line per mount, columns one space apart, blanks, backslashes and unusual bytes as \\xHH (implies -l)')
  .option('-J, --json', 'print findmnt -J\'s JSON: {"filesystems": [...]}, submounts as "children" in the tree')
  .option('-l, --list', 'a list, not a tree')
  .option('-b, --bytes', 'SIZE, AVAIL and USED in bytes (JSON numbers), not for people')
  .option('-t, --types <list>', 'only these file system types, comma-separated; "no" before the list negates it (nosysfs,proc)')
  .option('-T, --target <path>', 'only the mount that holds PATH (implies -l)')
  .addOption(new Option('--dump', 'print {"mounts": [...], "nsSeq": ...} with every field of each mount (ids as numbers, 64-bit values as strings)').conflicts(['json', 'raw', 'output']))
  .option('--backend <backend>', BACKEND_HELP, backendName)
  .action(async (options: MountsCommandOptions) => {
    await withMounts(options.backend, async (source) => {
      const { mounts, nsSeq } = await source.mounts();
      if (options.dump) {
        process.stdout.write(`${toJson({ mounts: mounts.map(mountJson), nsSeq }, 2)}\n`);
        return;
      }
      let shown = options.types === undefined ? mounts : mounts.filter((m) => matchesTypes(m.fsType, options.types!));
      if (options.target !== undefined) shown = [await mountOfPath('mounts', shown, options.target)];
      // A mount whose parent was filtered out is a root of the tree, as in findmnt.
      const tree = !options.list && !options.raw;
      // No match: findmnt's list prints nothing and exits 1; its tree exits 0 (-J: no filesystems).
      if (shown.length === 0) {
        if (!tree) process.exitCode = EXIT_FAILURE;
        else if (options.json) process.stdout.write('{\n   "filesystems": [\n\n   ]\n}\n');
        return;
      }
      const columns = options.output ?? DEFAULT_MOUNT_COLUMNS;
      // statfs only when a usage column asks for it (one statfs per mount).
      const usage = columns.some((c) => (USAGE_COLUMN_NAMES as readonly string[]).includes(c)) ? { usage: await mountUsage(source), bytes: options.bytes } : undefined;
      if (options.json) process.stdout.write(mountsJson(shown, { columns, tree, table: mounts, usage }));
      else process.stdout.write(formatMounts(shown, { columns, tree, table: mounts, usage, raw: options.raw, noHeadings: options.noheadings, width: options.raw ? undefined : terminalWidth() }));
    });
  });

program
  .command('mount')
  .description('show one mount of this mount namespace, by mount id (or --unique-id), with every field')
  .argument('[id]', 'the mount id (mountinfo\'s first field)', integer(0, Number.MAX_SAFE_INTEGER))
  .option('--unique-id <id>', "the mount's 64-bit unique id instead (Linux 6.8 and later)", u64)
  .option('--json', 'print it as JSON (ids as numbers, 64-bit values as strings)')
  .option('--backend <backend>', BACKEND_HELP, backendName)
  .action(async (id: number | undefined, options: { uniqueId?: bigint; json?: boolean; backend?: MountBackend }, command: Command) => {
    if ((id === undefined) === (options.uniqueId === undefined)) {
      command.error(
        id === undefined ? 'error: give a mount id or --unique-id <id>' : `error: give a mount id (${id}) or --unique-id, not both`,
        { exitCode: EXIT_USAGE },
      );
    }
    await withMounts(options.backend, async (source) => {
      const mount = await source.mount(id ?? { uniqueId: options.uniqueId! });
      process.stdout.write(options.json ? `${toJson(mountJson(mount), 2)}\n` : formatMount(mount));
    });
  });

// df's -h, -H and -k: the last one given wins, as in df.
let dfScale: 'human' | 'si' | 'k' | undefined;

program
  .command('df')
  .description('file system usage of the mounts of this mount namespace, like df (or of the mounts FILEs are on)')
  .helpOption('--help', 'display help for command')
  .argument('[file...]', 'show the file system each FILE is on (the mount, its usage read at FILE)')
  .option('-a, --all', 'include pseudo, duplicate and zero-size file systems')
  .option('-h, --human-readable', 'print sizes in powers of 1024 (e.g. 1023M)')
  .option('-H, --si', 'print sizes in powers of 1000 (e.g. 1.1G)')
  .addOption(new Option('-i, --inodes', 'list inode information instead of block usage').conflicts(['output']))
  .option('-k', 'sizes in 1K blocks (the default)')
  .option('-l, --local', 'only local file systems')
  .addOption(new Option('-P, --portability', 'use the POSIX output format').conflicts(['output']))
  .option('--total', 'a last row with the sums of the others')
  .addOption(new Option('-T, --print-type', 'print the file system type').conflicts(['output']))
  .option('-t, --type <type>', 'only file systems of this type (repeatable)', (v: string, prev: string[] | undefined) => [...(prev ?? []), v])
  .option('-x, --exclude-type <type>', 'no file systems of this type (repeatable)', (v: string, prev: string[] | undefined) => [...(prev ?? []), v])
  .addOption(
    new Option('--output [fields]', `the columns, comma-separated, of ${DF_FIELDS.join(',')} (all without a list)`).argParser(
      (value: string) => {
        try {
          return parseOutputFields(value);
        } catch (error) {
          throw new InvalidArgumentError((error as Error).message);
        }
      },
    ),
  )
  .option('--timeout <ms>', "how long to wait for each file system, in milliseconds (1 to 60000; default: the module's statfs_timeout_ms)", integer(1, 60_000))
  .addOption(new Option('--json', 'print {"filesystems": [...]}: sizes in bytes, 64-bit values as strings').conflicts(['output']))
  .option('--backend <backend>', BACKEND_HELP, backendName)
  .on('option:human-readable', () => (dfScale = 'human'))
  .on('option:si', () => (dfScale = 'si'))
  .on('option:k', () => (dfScale = 'k'))
  .action(
    async (
      files: string[],
      options: {
        all?: boolean;
        inodes?: boolean;
        local?: boolean;
        portability?: boolean;
        total?: boolean;
        printType?: boolean;
        type?: string[];
        excludeType?: string[];
        output?: DfField[] | true;
        timeout?: number;
        json?: boolean;
        backend?: MountBackend;
      },
    ) => {
      const dfOptions: DfOptions = {
        all: options.all,
        human: dfScale === 'human',
        si: dfScale === 'si',
        inodes: options.inodes,
        local: options.local,
        portability: options.portability,
        total: options.total,
        printType: options.printType,
        output: options.output === true ? [...DF_FIELDS] : options.output,
        types: options.type,
        excludeTypes: options.excludeType,
        timeoutMs: options.timeout,
        json: options.json,
      };
      await withMounts(options.backend, async (source) => {
        process.exitCode = await df(source, files, dfOptions);
      });
    },
  );

program
  .command('watch')
  .description("print the changes of this mount namespace's mount table as they happen, until interrupted (like findmnt --poll)")
  .addOption(
    new Option('-p, --poll [actions]', `only these actions, comma-separated: ${POLL_ACTIONS.join(', ')} (default all; findmnt --poll's)`).argParser(pollActions),
  )
  .addOption(
    new Option('-o, --output <list>', `the columns, comma-separated, any case (+LIST adds to the default): ${Object.keys(POLL_COLUMNS).join(', ')}; default ${DEFAULT_POLL_COLUMNS.join(',')}`).argParser(
      columnParser(POLL_COLUMNS, DEFAULT_POLL_COLUMNS),
    ),
  )
  .option('-n, --noheadings', 'no header line')
  .option('-r, --raw', 'blanks, backslashes and unusual bytes as \\xHH, as findmnt -r')
  .option('-J, --json', 'print each change as one JSON line of its columns (lower-case names as keys)')
  .addOption(new Option('--dump', 'print each change as one JSON line with every field: {"kind", "nsSeq", "mount", "previous"?}').conflicts(['json', 'raw', 'output']))
  .option('--count <n>', 'stop after n changes', integer(1, Number.MAX_SAFE_INTEGER))
  .option('--receive-buffer-size <bytes>', 'SO_RCVBUF of the listener socket (default 4 MiB)', integer(1, 0x7fffffff))
  .option('--backend <backend>', BACKEND_HELP, backendName)
  .action(async (options: WatchCommandOptions & { noheadings?: boolean; backend?: MountBackend }) => {
    const { backend, noheadings, ...rest } = options;
    await withMounts(backend, (source) => watch(source, { ...rest, noHeadings: noheadings }));
  });

program
  .command('devices')
  .description('list the block devices, partitions under their disk, with the mounts that use them (like lsblk); no module needed')
  .argument('[device...]', 'only these: a device node or a path to one (/dev/sda), a kernel name (sda1) or MAJ:MIN')
  .option('-a, --all', 'also unbound loop devices, RAM disks and hidden devices')
  .option('-b, --bytes', 'sizes in bytes')
  .option('-l, --list', 'a list, not a tree')
  .option('-n, --noheadings', 'no header line')
  .option('-p, --paths', 'device paths (/dev/sda1) as names')
  .option('-r, --raw', 'no tree, columns one space apart, blanks, backslashes and unusual bytes as \\xHH')
  .option('-J, --json', 'print lsblk -J\'s JSON: {"blockdevices": [...]}, partitions as "children"')
  .option(
    '-o, --output <list>',
    `the columns, comma-separated (+LIST adds to the default): ${DEVICE_COLUMNS.join(', ')}; default ${DEFAULT_DEVICE_COLUMNS.join(',')}`,
    parseColumns,
  )
  .option('--sysroot <dir>', "read DIR/sys, DIR/proc/self/mountinfo, DIR/proc/swaps and DIR/run/udev/data instead of the system's (as lsblk --sysroot)")
  .option('--backend <backend>', BACKEND_HELP, backendName)
  .action(async (names: string[], options: DevicesCommandOptions & { backend?: MountBackend }) => {
    if (options.sysroot === undefined) {
      await withMounts(options.backend, async (source) => showDevices(await source.devices(), names, options));
      return;
    }
    try {
      await showDevices(await devicesOfSysroot(options.sysroot), names, options);
    } catch (error) {
      reportError(error);
    }
  });

/** `usip devices`: the devices named (or all that lsblk would show), as a tree, list or JSON. */
async function showDevices(all: BlockDevice[], names: string[], options: DevicesCommandOptions): Promise<void> {
  const shown = names.length > 0 ? await selectNamed(all, names) : options.all ? all : all.filter(shownByDefault).map((d) => ({ ...d, partitions: d.partitions.filter(shownByDefault) }));
  const view = {
    columns: options.output ?? DEFAULT_DEVICE_COLUMNS,
    bytes: options.bytes === true,
    list: options.list === true,
    raw: options.raw === true,
    noHeadings: options.noheadings === true,
    paths: options.paths === true,
  };
  process.stdout.write(options.json ? devicesJson(shown, view) : formatDevices(shown, view));
}

program
  .command('completion')
  .description('print a completion script for bash, zsh or fish, generated from these command definitions')
  .addArgument(new Argument('<shell>', `the shell: ${SHELLS.join(', ')}`).choices(SHELLS))
  .addHelpText(
    'after',
    '\nLoad it:\n  bash: source <(usip completion bash)\n  zsh:  source <(usip completion zsh)\n  fish: usip completion fish | source',
  )
  .action((shell: Shell) => {
    process.stdout.write(completionScript(shell, program, completionValues()));
  });

/** What the completion scripts offer for option values that are a known set. */
export function completionValues(): ValueTable {
  const table: Record<string, Record<string, ValueSet>> = {
    mounts: { '--output': { values: Object.keys(MOUNT_COLUMNS), list: true } },
    watch: { '--output': { values: Object.keys(POLL_COLUMNS), list: true }, '--poll': { values: POLL_ACTIONS, list: true } },
    devices: { '--output': { values: DEVICE_COLUMNS, list: true } },
    df: { '--output': { values: DF_FIELDS, list: true } },
    listen: { '--notifier': { values: TYPE_NAMES.flatMap((type) => actionsOf(type).map((action) => `${type}:${action}`)) } },
  };
  for (const command of program.commands) {
    if (command.options.some((o) => o.long === '--backend')) (table[command.name()] ??= {})['--backend'] = { values: MOUNT_BACKENDS };
  }
  return table;
}

export { program };

/** Parses the command line and runs the command; the exit status is process.exitCode. */
export async function main(argv: readonly string[] = process.argv): Promise<void> {
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (!(error instanceof CommanderError)) throw error;
    // Help and --version "fail" with exit code 0; everything else commander rejects is usage.
    process.exitCode = error.exitCode === 0 ? 0 : EXIT_USAGE;
  }
}

// Run as the command, not when imported (the man page generator reads the definitions).
if (process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
