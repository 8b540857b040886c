#!/usr/bin/env node
// usip-vm: the command-line face of @usip/vm. Harness messages go to stderr; in `run`, stdout
// carries the guest command's output and nothing else, so test runners can parse it.
import { Command, InvalidArgumentError, Option } from 'commander';
import { buildModule } from './build-module.js';
import { resolveKernels, type Logger } from './kernels.js';
import { GUEST_INITS, type GuestInit } from './plan.js';
import { formatVerdict, runInVm } from './run.js';

const log: Logger = (message) => process.stderr.write(`usip-vm: ${message}\n`);

// A reader that goes away (`usip-vm kernels | head -1`) is not an error: `run` still finishes
// its VM, judges it and sets the exit status.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE' && error.code !== 'ERR_STREAM_DESTROYED') throw error;
});

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function positiveInteger(name: string) {
  return (value: string): number => {
    if (!/^\d+$/.test(value) || Number(value) <= 0) {
      throw new InvalidArgumentError(`${name} must be a positive integer (got "${value}")`);
    }
    return Number(value);
  };
}

const program = new Command('usip-vm')
  .description('Boots Debian kernels in QEMU to build, load and test kernel modules for real')
  .enablePositionalOptions()
  .showHelpAfterError();

program
  .command('kernels')
  .description('resolve the kernels (from apt), install their headers, fetch and cache their images')
  .option('-k, --kernel <selector>', '6.1, 6.12, all, or an exact release such as 6.1.0-56-amd64', 'all')
  .option('--json', 'print JSON instead of a table')
  .action(async (opts: { kernel: string; json?: boolean }) => {
    const kernels = await resolveKernels(opts.kernel, { log });
    if (opts.json) {
      process.stdout.write(`${JSON.stringify(kernels, null, 2)}\n`);
      return;
    }
    for (const k of kernels) {
      process.stdout.write(
        `${k.selector}\t${k.release}\t${k.packageVersion}\n\tvmlinuz: ${k.vmlinuz}\n\tvmlinux: ${k.vmlinux ?? '(none: boots vmlinuz)'}\n\theaders: ${k.headersDir}\n\tmodules: ${k.modulesDir}\n`,
      );
    }
  });

program
  .command('build-module')
  .description('build an out-of-tree module (a directory with Kbuild/Makefile) for each selected kernel, into OUT/<release>/')
  .requiredOption('-k, --kernel <selector>', '6.1, 6.12, all, or an exact release')
  .requiredOption('--src <dir>', 'the module source directory')
  .requiredOption('--out <dir>', 'the build directory; each kernel builds in OUT/<release>/')
  .option('--json', 'print JSON instead of one .ko path per line')
  .action(async (opts: { kernel: string; src: string; out: string; json?: boolean }) => {
    const built = await buildModule({ kernel: opts.kernel, src: opts.src, out: opts.out, log });
    if (opts.json) {
      const summary = built.map((b) => ({ release: b.kernel.release, selector: b.kernel.selector, dir: b.dir, modules: b.modules }));
      process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
      return;
    }
    for (const b of built) for (const m of b.modules) process.stdout.write(`${m}\n`);
  });

interface RunCliOptions {
  kernel: string;
  module: string[];
  moduleSrc?: string;
  param: string[];
  timeout: number;
  memory: number;
  cpus: number;
  kernelArg: string[];
  unload: boolean;
  results?: string;
  init: GuestInit;
}

program
  .command('run')
  .description('boot each selected kernel, load modules, run COMMAND in the guest, unload, and check the kernel log')
  .requiredOption('-k, --kernel <selector>', '6.1, 6.12, all, or an exact release')
  .option('-m, --module <path>', 'a .ko to load (repeatable); {kver} is replaced by the kernel release', collect, [])
  .option('--module-src <dir>', 'build this module source for each kernel and load its modules first')
  .option('-p, --param <module.key=value>', 'a module parameter (repeatable)', collect, [])
  .option('-t, --timeout <seconds>', 'wall-clock limit per VM, boot included', positiveInteger('--timeout'), 300)
  .option('--memory <mb>', 'guest memory', positiveInteger('--memory'), 2048)
  .option('--cpus <n>', 'guest CPUs', positiveInteger('--cpus'), 2)
  .option('--kernel-arg <arg>', 'append an argument to the kernel command line (repeatable), e.g. slab_nomerge', collect, [])
  .option('--no-unload', 'leave the modules loaded (and do not check unloading)')
  .addOption(new Option('--init <init>', "what runs the command: the harness's shell as pid 1, or the host's systemd as pid 1 (the command as a service)").choices(GUEST_INITS).default('sh'))
  .option('--results <dir>', 'host directory the guest writes to ($USIP_VM_RESULTS), as DIR/<release>/')
  .argument('<command...>', 'the command to run in the guest (put it after --)')
  .passThroughOptions()
  .action(async (command: string[], opts: RunCliOptions) => {
    const kernels = await resolveKernels(opts.kernel, { log });
    let failed = 0;
    for (const kernel of kernels) {
      const result = await runInVm({
        kernel,
        command,
        modules: opts.module,
        ...(opts.moduleSrc !== undefined ? { moduleSrc: opts.moduleSrc } : {}),
        params: opts.param,
        timeoutMs: opts.timeout * 1000,
        memoryMb: opts.memory,
        cpus: opts.cpus,
        kernelArgs: opts.kernelArg,
        unload: opts.unload,
        init: opts.init,
        ...(opts.results !== undefined ? { resultsDir: `${opts.results}/${kernel.release}` } : {}),
        stream: process.stdout,
        log,
      });
      process.stderr.write(`${formatVerdict(result)}\n`);
      if (!result.ok) failed += 1;
    }
    if (kernels.length > 1) process.stderr.write(`usip-vm: ${kernels.length - failed} of ${kernels.length} kernels ok\n`);
    process.exitCode = failed > 0 ? 1 : 0;
  });

program.parseAsync(process.argv).catch((error: unknown) => {
  process.stderr.write(`usip-vm: error: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(2);
});
