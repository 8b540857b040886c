// Boots one kernel in QEMU, loads modules, runs a command in the guest (whose root is the
// host's root, shared read-only over 9p) and judges the run: exit status, module unload, and
// the kernel log.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { buildModule } from './build-module.js';
import { exec } from './exec.js';
import { guestOpenDirs, guestTmpEntries } from './guest-paths.js';
import { ensureInitramfs } from './initramfs.js';
import { classifyKernelLog } from './kernel-log.js';
import { resolveKernels, type Kernel, type Logger } from './kernels.js';
import { checkInit, renderPlan, type GuestInit, type GuestModule } from './plan.js';
import { guestStage2Script, runsRootDir, workspaceRoot } from './paths.js';

export interface VmModule {
  /** Host path of a .ko (or .ko.xz/.ko.zst); `{kver}` is replaced by the kernel release. */
  path: string;
  /** insmod parameters of this module, as key=value. */
  params?: string[];
}

export interface VmRunOptions {
  /** A selector that names exactly one kernel ("6.1", "6.12", a release), or a resolved Kernel. */
  kernel: string | Kernel;
  /** The command and its arguments, run in the guest with the host's files. */
  command: string[];
  /** Modules to load before the command, in order (and unload after it, in reverse). */
  modules?: Array<string | VmModule>;
  /** A module source directory (Kbuild + Makefile) to build for this kernel and load first. */
  moduleSrc?: string;
  /** Where moduleSrc is built (default: <runDir>/build); a <release>/ directory is made in it. */
  moduleBuildDir?: string;
  /** Module parameters as "module.key=value". */
  params?: string[];
  /** The command's working directory (default: process.cwd()); read-only in the guest. */
  cwd?: string;
  /** Extra environment for the command (CI, NO_COLOR, FORCE_COLOR, TZ, LANG, USIP_* pass through). */
  env?: Record<string, string>;
  /** Wall-clock limit for the whole VM, boot included (default 300 000 ms). */
  timeoutMs?: number;
  /** Guest memory (default 2048 MB). */
  memoryMb?: number;
  /** Guest CPUs (default 2: multi-threaded TCG boots faster than 1). */
  cpus?: number;
  /**
   * Kernel command-line arguments appended to the harness's own (console, loglevel, panic,
   * log_buf_len), one per element, e.g. ["slab_nomerge", "slub_debug=FZPU"].
   */
  kernelArgs?: string[];
  /**
   * What runs the command in the guest (default "sh": the harness's second stage, as pid 1).
   * "systemd": the host's systemd as pid 1 on the guest's root, booted to a small target whose
   * service runs the command (see README: systemd as pid 1).
   */
  init?: GuestInit;
  /** Unload the modules after the command and fail the run if that fails (default true). */
  unload?: boolean;
  /** Copy the command's output here as it arrives (true: process.stdout). */
  stream?: boolean | NodeJS.WritableStream;
  /** Host directory the guest may write to, at $USIP_VM_RESULTS (default <runDir>/results). */
  resultsDir?: string;
  /** Where this run's files go (default ${TMPDIR:-/tmp}/usip-vm/<run-id>/<release>). */
  runDir?: string;
  /** Progress messages (default: none). */
  log?: Logger;
}

export interface VmRunResult {
  kernel: { selector: string; series: string; release: string };
  /** True when the command exited 0, the modules loaded and unloaded, and the kernel log is clean. */
  ok: boolean;
  /** Why the run failed, one sentence each (empty when ok). */
  failures: string[];
  /** The command's exit status; null if it did not run or the VM died first. */
  exitCode: number | null;
  /** The command's stdout and stderr, interleaved as written. */
  output: string;
  /** The guest-side timeout killed the command, or the host killed the VM. */
  timedOut: boolean;
  /** Every loaded module was unloaded and is gone (false if unloading was not asked for). */
  unloaded: boolean;
  /** insmod failures, with insmod's own message. */
  loadErrors: string[];
  /** Offending kernel-log lines, as logged ("WARNING: CPU: 0 PID: 1 at ...", "BUG: ...", lockdep, hung task...). */
  problems: string[];
  /** The guest's kernel log (dmesg; the serial console if the guest died before dmesg). */
  kernelLog: string;
  kernelLogPath: string;
  /** The serial console (ttyS0): kernel messages up to level WARNING, even if the guest died. */
  consoleLogPath: string;
  /** Modules that were loaded (name and host path). */
  modules: Array<{ name: string; path: string }>;
  /** Host path of the guest-writable results directory. */
  resultsDir: string;
  runDir: string;
  durationMs: number;
}

const DEFAULT_TIMEOUT_MS = 300_000;
const DEFAULT_MEMORY_MB = 2048;
const DEFAULT_CPUS = 2;
/** Guest-side time kept after the command's deadline to unload modules and save the log. */
const TEARDOWN_RESERVE_S = 5;
/** The host's systemd, run as the guest's pid 1 with init "systemd". */
const GUEST_SYSTEMD = '/lib/systemd/systemd';
const GUEST_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const PASSED_ENV = /^(CI|NO_COLOR|FORCE_COLOR|TZ|LANG|LC_[A-Z]+|USIP_[A-Z0-9_]*)$/;

/** Run directories are kept for inspection, then pruned after this long. */
const RUN_DIR_LIFETIME_MS = 3 * 24 * 60 * 60 * 1000;

function pruneOldRuns(): void {
  const root = runsRootDir();
  let entries: string[] = [];
  try {
    entries = readdirSync(root);
  } catch {
    return;
  }
  const cutoff = Date.now() - RUN_DIR_LIFETIME_MS;
  for (const entry of entries) {
    const dir = join(root, entry);
    try {
      if (statSync(dir).mtimeMs < cutoff) rmSync(dir, { recursive: true, force: true });
    } catch {
      // pruned by a concurrent run
    }
  }
}

export function newRunId(): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '');
  return `${stamp}-${process.pid}-${randomBytes(3).toString('hex')}`;
}

async function moduleName(path: string): Promise<string> {
  const r = await exec('modinfo', ['-F', 'name', path], { allowFailure: true });
  const name = r.stdout.trim();
  if (r.code === 0 && /^[A-Za-z0-9_]+$/.test(name)) return name;
  return basename(path).replace(/\.ko(?:\.(?:xz|zst|gz))?$/, '').replace(/-/g, '_');
}

/** Parses "module.key=value" into module and "key=value". */
export function parseModuleParam(param: string): { module: string; assignment: string } {
  const m = /^([A-Za-z0-9_-]+)\.([A-Za-z0-9_.-]+)=(.*)$/s.exec(param);
  if (!m || m[1] === undefined || m[2] === undefined || m[3] === undefined) {
    throw new Error(`module parameter "${param}" is not of the form module.key=value`);
  }
  return { module: m[1].replace(/-/g, '_'), assignment: `${m[2]}=${m[3]}` };
}

function readIfExists(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

async function resolveOneKernel(kernel: string | Kernel, log: Logger): Promise<Kernel> {
  if (typeof kernel !== 'string') return kernel;
  const kernels = await resolveKernels(kernel, { log });
  if (kernels.length !== 1 || kernels[0] === undefined) {
    throw new Error(
      `runInVm boots one kernel, but "${kernel}" selects ${kernels.length} (${kernels.map((k) => k.release).join(', ')}); ` +
        'call it once per kernel',
    );
  }
  return kernels[0];
}

/** The harness's own kernel command line; VmRunOptions.kernelArgs come after it. */
const BASE_KERNEL_ARGS: readonly string[] = ['console=ttyS0', 'loglevel=5', 'panic=-1', 'log_buf_len=8M'];

/**
 * Checks kernel command-line arguments: each must be one word of printable ASCII without
 * quotes (the kernel would split or unquote it), and not "--" (what follows goes to init).
 */
function checkKernelArgs(args: unknown): string[] {
  if (!Array.isArray(args)) throw new Error('runInVm: kernelArgs must be an array of strings');
  for (const arg of args) {
    if (typeof arg !== 'string' || !/^[!#-~]+$/.test(arg) || arg === '--') {
      throw new Error(
        `runInVm: kernel argument ${JSON.stringify(arg)} is not one word of printable ASCII without quotes (or it is "--")`,
      );
    }
  }
  return [...(args as string[])];
}

function qemuArgs(kernel: Kernel, initramfs: string, runDir: string, guestDir: string, resultsDir: string, memoryMb: number, cpus: number, kernelArgs: readonly string[]): string[] {
  const share = (path: string, tag: string, readonly: boolean) =>
    `local,path=${path},mount_tag=${tag},security_model=none,multidevs=remap${readonly ? ',readonly=on' : ''}`;
  for (const p of [runDir, guestDir, resultsDir]) {
    // QEMU's option parser splits on commas.
    if (p.includes(',')) throw new Error(`a path shared with the guest cannot contain a comma: ${p}`);
  }
  return [
    // KVM does not work nested here (it aborts on MSR 0x10a or hangs); TCG works everywhere.
    // One host thread for all vCPUs: with multi-threaded TCG a vCPU can run code another vCPU
    // has just patched (kprobes, ftrace, static keys) from a stale translation, which crashed
    // guests with "Oops: int3" at a function entry being unpatched.
    '-accel', 'tcg,thread=single',
    '-cpu', 'max',
    '-m', String(memoryMb),
    '-smp', String(cpus),
    // No default NIC (its option ROM costs boot time), VGA, floppy or monitor.
    '-nodefaults',
    '-display', 'none',
    '-no-reboot',
    '-kernel', kernel.vmlinux ?? kernel.vmlinuz,
    '-initrd', initramfs,
    '-append', [...BASE_KERNEL_ARGS, ...kernelArgs].join(' '),
    '-serial', `file:${join(runDir, 'console.log')}`,
    '-device', 'virtio-serial-pci,id=vser',
    '-chardev', 'stdio,id=usipout,signal=off',
    '-device', 'virtserialport,bus=vser.0,chardev=usipout,name=usip.out',
    '-virtfs', share('/', 'hostroot', true),
    '-virtfs', share(guestDir, 'usiprun', false),
    '-virtfs', share(resultsDir, 'usipresults', false),
  ];
}

/** Boots one kernel, runs the command in it, and judges the run. Never throws for a failed run; throws for bad options. */
export async function runInVm(options: VmRunOptions): Promise<VmRunResult> {
  const started = Date.now();
  const log = options.log ?? (() => {});
  if (!Array.isArray(options.command) || options.command.length === 0) {
    throw new Error('runInVm: command must be a non-empty array of strings (the program and its arguments)');
  }
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!Number.isFinite(timeoutMs) || timeoutMs < 5000) throw new Error(`runInVm: timeoutMs must be at least 5000 (got ${timeoutMs})`);
  const memoryMb = options.memoryMb ?? DEFAULT_MEMORY_MB;
  if (!Number.isInteger(memoryMb) || memoryMb < 256) throw new Error(`runInVm: memoryMb must be an integer of at least 256 (got ${memoryMb})`);
  const cpus = options.cpus ?? DEFAULT_CPUS;
  if (!Number.isInteger(cpus) || cpus < 1 || cpus > 16) throw new Error(`runInVm: cpus must be an integer from 1 to 16 (got ${cpus})`);
  const kernelArgs = checkKernelArgs(options.kernelArgs ?? []);
  const unload = options.unload ?? true;
  const init = (() => {
    try {
      return checkInit(options.init ?? 'sh');
    } catch (error) {
      throw new Error(`runInVm: ${(error as Error).message}`);
    }
  })();
  if (init === 'systemd' && !existsSync(GUEST_SYSTEMD)) throw new Error(`runInVm: init "systemd" needs ${GUEST_SYSTEMD} on the host (apt-get install systemd)`);
  const cwd = resolve(options.cwd ?? process.cwd());
  if (!existsSync(cwd)) throw new Error(`runInVm: the working directory ${cwd} does not exist`);

  const kernel = await resolveOneKernel(options.kernel, log);
  const runDir = resolve(options.runDir ?? join(runsRootDir(), newRunId(), kernel.release));

  // The given modules and all parameters are checked before anything is built or written.
  const given: Array<{ path: string; name: string; params: string[] }> = [];
  for (const m of options.modules ?? []) {
    const spec = typeof m === 'string' ? { path: m } : m;
    const path = resolve(spec.path.replaceAll('{kver}', kernel.release));
    if (!existsSync(path)) throw new Error(`runInVm: module ${path} does not exist`);
    if (!/\.ko(?:\.(?:xz|zst|gz))?$/.test(path)) throw new Error(`runInVm: ${path} is not a kernel module (.ko)`);
    for (const p of spec.params ?? []) {
      if (!/^[A-Za-z0-9_.-]+(?:=.*)?$/s.test(p)) throw new Error(`runInVm: parameter "${p}" of ${path} is not of the form key=value`);
    }
    const realPath = realpathSync(path);
    given.push({ path: realPath, name: await moduleName(realPath), params: [...(spec.params ?? [])] });
  }
  const params = (options.params ?? []).map((param) => ({ param, ...parseModuleParam(param) }));
  if (options.moduleSrc !== undefined && !existsSync(options.moduleSrc)) {
    throw new Error(`runInVm: module source directory ${resolve(options.moduleSrc)} does not exist`);
  }

  if (options.runDir === undefined) pruneOldRuns();
  const guestDir = join(runDir, 'guest');
  const resultsDir = resolve(options.resultsDir ?? join(runDir, 'results'));
  mkdirSync(guestDir, { recursive: true });
  mkdirSync(resultsDir, { recursive: true });

  // Built modules load first, then the given ones, in order.
  const modules: Array<{ path: string; name: string; params: string[] }> = [];
  if (options.moduleSrc !== undefined) {
    const built = await buildModule({
      kernel: [kernel],
      src: options.moduleSrc,
      out: options.moduleBuildDir ?? join(runDir, 'build'),
      log,
    });
    for (const path of built[0]?.modules ?? []) modules.push({ path, name: await moduleName(path), params: [] });
  }
  modules.push(...given);
  const guestModules: GuestModule[] = [];
  const loadedModules: Array<{ name: string; path: string }> = [];
  for (const { path, name, params: moduleParams } of modules) {
    if (guestModules.some((g) => g.name === name)) throw new Error(`runInVm: module ${name} is given twice`);
    let hostPath = path;
    if (!hostPath.endsWith('.ko')) {
      // busybox insmod reads only plain modules.
      const plain = join(runDir, `${name}.ko`);
      const tool = hostPath.endsWith('.xz') ? 'xz' : hostPath.endsWith('.zst') ? 'zstd' : 'gzip';
      await exec('sh', ['-c', '"$1" -dc -- "$2" > "$3"', 'sh', tool, hostPath, plain]);
      hostPath = plain;
    }
    guestModules.push({ name, guestPath: hostPath, params: [...moduleParams] });
    loadedModules.push({ name, path: hostPath });
  }
  for (const { param, module, assignment } of params) {
    const target = guestModules.find((g) => g.name === module);
    if (!target) {
      throw new Error(
        `module parameter "${param}" names module ${module}, which is not loaded ` +
          `(loaded: ${guestModules.map((g) => g.name).join(', ') || 'none'})`,
      );
    }
    target.params.push(assignment);
  }

  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (PASSED_ENV.test(k) && v !== undefined) env[k] = v;
  Object.assign(env, {
    HOME: '/root',
    PATH: GUEST_PATH,
    USIP_VM: '1',
    USIP_VM_KERNEL: kernel.release,
    USIP_VM_SERIES: kernel.series,
    USIP_VM_RESULTS: '/run/usip-vm/results',
  });
  Object.assign(env, options.env ?? {});

  const initramfs = await ensureInitramfs(kernel);
  // The guest kills the command a little before the host would kill the VM, so a hung command
  // still leaves a complete kernel log and a module unload check.
  const deadlineSeconds = Math.max(1, Math.floor(timeoutMs / 1000) - TEARDOWN_RESERVE_S);
  // What a process of any uid must reach: the command's working directory and this workspace
  // (its node_modules, built artefacts, and this package).
  const reachable = [cwd, workspaceRoot];
  writeFileSync(
    join(guestDir, 'plan.sh'),
    renderPlan({
      release: kernel.release,
      modulesTree: kernel.modulesDir,
      deadlineSeconds,
      unload,
      init,
      modules: guestModules,
      env,
      cwd,
      command: options.command,
      tmpBinds: guestTmpEntries(reachable),
      openDirs: guestOpenDirs(reachable),
    }),
  );
  // The second stage runs from the run's share, so the guest runs the script this run was made for.
  copyFileSync(guestStage2Script, join(guestDir, 'stage2.sh'));

  const streamTo = options.stream === true ? process.stdout : options.stream || null;
  const args = qemuArgs(kernel, initramfs, runDir, guestDir, resultsDir, memoryMb, cpus, kernelArgs);
  writeFileSync(join(runDir, 'qemu-command.txt'), `${['qemu-system-x86_64', ...args].join(' ')}\n`);
  log(`booting ${kernel.release} (run directory ${runDir})`);

  const output: Buffer[] = [];
  let qemuStderr = '';
  let hostTimedOut = false;
  const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((done) => {
    // stdin stays an open pipe: at EOF the stdio chardev reports the port closed, and the
    // guest's writes to it would block.
    const qemu = spawn('qemu-system-x86_64', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const timer = setTimeout(() => {
      hostTimedOut = true;
      qemu.kill('SIGKILL');
    }, timeoutMs);
    qemu.stdout.on('data', (chunk: Buffer) => {
      output.push(chunk);
      streamTo?.write(chunk);
    });
    qemu.stderr.on('data', (chunk: Buffer) => (qemuStderr += chunk.toString()));
    qemu.on('error', (error) => {
      clearTimeout(timer);
      done({ code: null, signal: null, error });
    });
    qemu.on('close', (code, signal) => {
      clearTimeout(timer);
      done({ code, signal });
    });
  });

  const outputText = Buffer.concat(output).toString('utf8');
  writeFileSync(join(runDir, 'output.log'), outputText);
  const guestFile = (name: string) => readIfExists(join(guestDir, name));
  const finished = guestFile('done') !== null;
  const exitText = guestFile('exit-status');
  const exitCode = exitText !== null && /^\d+\s*$/.test(exitText) ? Number(exitText) : null;
  const guestTimedOut = guestFile('timed-out') !== null;
  const loadErrors = (guestFile('load-errors') ?? '').split('\n').filter((l) => l.trim() !== '');
  const harnessErrors = (guestFile('harness-errors') ?? '').split('\n').filter((l) => l.trim() !== '');
  const unloadedText = guestFile('unloaded');
  const unloadErrors = (guestFile('unload-errors') ?? '')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .join('; ');
  const consoleLogPath = join(runDir, 'console.log');
  const consoleLog = readIfExists(consoleLogPath) ?? '';
  const dmesg = guestFile('dmesg.txt');
  const kernelLog = dmesg ?? consoleLog;
  const kernelLogPath = join(runDir, 'kernel.log');
  if (dmesg !== null) copyFileSync(join(guestDir, 'dmesg.txt'), kernelLogPath);
  else writeFileSync(kernelLogPath, consoleLog);
  // dmesg holds everything the console does; the console is all there is if the guest died.
  const findings = classifyKernelLog(kernelLog);
  const problems = findings.map((f) => f.line);

  const failures: string[] = [];
  if (exit.error) failures.push(`qemu-system-x86_64 could not be started: ${exit.error.message}`);
  if (hostTimedOut) {
    failures.push(`the VM did not finish within ${timeoutMs / 1000} s and was killed (host timeout); the guest hung or was too slow`);
  } else if (!finished && !exit.error) {
    const how = exit.signal ? `was killed by ${exit.signal}` : `exited with status ${exit.code}`;
    failures.push(
      `the guest stopped before the run finished (qemu ${how}; a kernel panic or a crash?)` +
        (qemuStderr.trim() ? `: ${qemuStderr.trim()}` : ''),
    );
  }
  if (!finished) {
    const lastLines = consoleLog.trimEnd().split('\n').slice(-12).join('\n    ');
    if (lastLines.trim() !== '') failures.push(`the console's last lines were:\n    ${lastLines}`);
  }
  for (const e of harnessErrors) failures.push(`the guest's /init failed: ${e}`);
  for (const e of loadErrors) failures.push(`loading a module failed: ${e}`);
  if (guestTimedOut) {
    failures.push(`the command did not finish within ${deadlineSeconds} s of guest uptime and was killed (guest timeout)`);
  } else if (exitCode !== null && exitCode !== 0) {
    failures.push(exitCode > 128 ? `the command was killed by signal ${exitCode - 128}` : `the command exited with status ${exitCode}`);
  }
  const unloaded = unload && unloadedText?.trim() === '1';
  if (unload && finished && !unloaded) {
    failures.push(`unloading the modules failed: ${unloadErrors || 'no reason given'}`);
  }
  if (findings.length > 0) {
    const kinds = [...new Set(findings.map((f) => f.label))].join(', ');
    failures.push(`the kernel log shows ${findings.length} problem line(s) (${kinds}), first: ${findings[0]?.line}`);
  }
  const ok = failures.length === 0 && finished && exitCode === 0;
  if (!ok && failures.length === 0) failures.push('the command did not run');

  const result: VmRunResult = {
    kernel: { selector: kernel.selector, series: kernel.series, release: kernel.release },
    ok,
    failures,
    exitCode,
    output: outputText,
    timedOut: hostTimedOut || guestTimedOut,
    unloaded,
    loadErrors,
    problems,
    kernelLog,
    kernelLogPath,
    consoleLogPath,
    modules: loadedModules,
    resultsDir,
    runDir,
    durationMs: Date.now() - started,
  };
  writeFileSync(
    join(runDir, 'result.json'),
    `${JSON.stringify({ ...result, output: undefined, kernelLog: undefined }, null, 2)}\n`,
  );
  return result;
}

/** A human verdict for a result: one headline, the failures, and where the logs are. */
export function formatVerdict(result: VmRunResult): string {
  const name = `${result.kernel.selector} (${result.kernel.release})`;
  const seconds = (result.durationMs / 1000).toFixed(1);
  const lines: string[] = [];
  if (result.ok) {
    lines.push(`usip-vm: ${name}: ok in ${seconds} s`);
  } else {
    lines.push(`usip-vm: ${name}: FAILED in ${seconds} s`);
    for (const f of result.failures) lines.push(`  - ${f}`);
    if (result.problems.length > 0) {
      lines.push('  kernel log problems:');
      for (const p of result.problems.slice(0, 40)) lines.push(`    ${p}`);
      if (result.problems.length > 40) lines.push(`    ... and ${result.problems.length - 40} more`);
    }
  }
  lines.push(`  kernel log: ${result.kernelLogPath}`);
  return lines.join('\n');
}
