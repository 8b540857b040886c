// Shared by the kernel-module tests: where things are, and the kernels to test on.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveKernels, runInVm, type Kernel, type VmRunOptions, type VmRunResult } from '@usip/vm';

export const moduleRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const workspaceRoot = resolve(moduleRoot, '../..');

/** The module version, from the one file that defines it. */
export const moduleVersion = readFileSync(join(moduleRoot, 'VERSION'), 'utf8').trim();

/** The kernels the module is built and tested for (the same selector as the build target). */
export function supportedKernels(): Promise<Kernel[]> {
  return resolveKernels('all', { log: (message) => process.stderr.write(`${message}\n`) });
}

/**
 * The kernels a VM suite (listeners, mounts, fuzz) runs on: USIP_TEST_KERNELS, a selector such
 * as 6.12-debug (the lockdep + KASAN kernel of tools/debug-kernel), or all the supported ones.
 */
export function testKernels(): Promise<Kernel[]> {
  const selector = process.env.USIP_TEST_KERNELS?.trim() || 'all';
  return resolveKernels(selector, { log: (message) => process.stderr.write(`${message}\n`) });
}

/** A VM timeout times USIP_TEST_TIMEOUT_FACTOR (default 1): the debug kernel runs several times slower. */
export function vmTimeout(ms: number): number {
  const factor = Number(process.env.USIP_TEST_TIMEOUT_FACTOR ?? '1');
  if (!Number.isFinite(factor) || factor < 1) {
    throw new Error(`USIP_TEST_TIMEOUT_FACTOR must be a number of at least 1, not ${process.env.USIP_TEST_TIMEOUT_FACTOR}`);
  }
  return Math.round(ms * factor);
}

/** Whether a kernel series ('6.1', '6.12', '7.3') has unique mount ids: Linux 6.8 and later. */
export function hasUniqueMountIds(series: string): boolean {
  const [major, minor] = series.split('.').map(Number);
  if (!Number.isInteger(major) || !Number.isInteger(minor)) throw new Error(`not a kernel series: ${series}`);
  return major > 6 || (major === 6 && minor >= 8);
}

/** The usip.ko that `nx run kernel-module:build` made for a kernel. */
export function builtModule(release: string): string {
  return join(moduleRoot, 'build', release, 'usip.ko');
}

interface GuestLine {
  check: string;
  value?: unknown;
  error?: string;
}

/**
 * What a guest check script (listener_checks.py, mount_checks.py) recorded: one JSON line per
 * check, {"check", "value"}, or {"check", "error"} for a group of checks that could not run.
 */
export class GuestReport {
  readonly values = new Map<string, unknown>();
  readonly errors: { check: string; error: string }[] = [];

  constructor(
    readonly run: VmRunResult,
    text: string | null,
  ) {
    for (const line of (text ?? '').split('\n')) {
      if (!line.trim()) continue;
      const parsed = JSON.parse(line) as GuestLine;
      if (parsed.error !== undefined) this.errors.push({ check: parsed.check, error: parsed.error });
      else this.values.set(parsed.check, parsed.value);
    }
  }

  /** One check's value; a missing one fails with the groups of checks that broke. */
  get<T>(check: string): T {
    if (!this.values.has(check)) {
      const why = this.errors.length
        ? this.errors.map((e) => `group "${e.check}" failed:\n${e.error}`).join('\n')
        : `guest output:\n${this.run.output}`;
      throw new Error(`the guest did not record the check "${check}".\n${why}`);
    }
    return this.values.get(check) as T;
  }
}

export interface GuestChecksOptions {
  /** The guest script, relative to the workspace, and its arguments ({ko}: the module's path). */
  command: string[];
  /** The JSON-lines file the script writes in $USIP_VM_RESULTS. */
  results: string;
  /** insmod parameters of usip.ko. */
  params?: string[];
  /** The VM's time limit before USIP_TEST_TIMEOUT_FACTOR. */
  timeoutMs: number;
  memoryMb?: number;
  kernelArgs?: string[];
}

/**
 * Boots each test kernel with the usip.ko that `nx run kernel-module:build` made for it, runs a
 * guest check script (Python, raw netlink) in the workspace, and reads what it recorded.
 */
export async function runGuestChecks(options: GuestChecksOptions): Promise<GuestReport[]> {
  const reports: GuestReport[] = [];
  for (const kernel of await testKernels()) {
    const ko = builtModule(kernel.release);
    if (!existsSync(ko)) throw new Error(`${ko} is missing: run NX_DAEMON=false npx nx run kernel-module:build`);
    const run = await runInVm({
      kernel,
      modules: [{ path: ko, params: options.params ?? [] }],
      command: options.command.map((word) => word.replaceAll('{ko}', ko)),
      cwd: workspaceRoot,
      timeoutMs: vmTimeout(options.timeoutMs),
      ...(options.memoryMb === undefined ? {} : { memoryMb: options.memoryMb }),
      ...(options.kernelArgs === undefined ? {} : { kernelArgs: options.kernelArgs }),
    } satisfies VmRunOptions);
    const file = join(run.resultsDir, options.results);
    reports.push(new GuestReport(run, existsSync(file) ? readFileSync(file, 'utf8') : null));
  }
  return reports;
}
