// Shared by the kernel-module tests: where things are, and the kernels to test on.
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveKernels, type Kernel } from '@usip/vm';

export const moduleRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const workspaceRoot = resolve(moduleRoot, '../..');

/** The module version, from the one file that defines it. */
export const moduleVersion = readFileSync(join(moduleRoot, 'VERSION'), 'utf8').trim();

/** The kernels the module is built and tested for (the same selector as the build target). */
export function supportedKernels(): Promise<Kernel[]> {
  return resolveKernels('all', { log: (message) => process.stderr.write(`${message}\n`) });
}

/** The usip.ko that `nx run kernel-module:build` made for a kernel. */
export function builtModule(release: string): string {
  return join(moduleRoot, 'build', release, 'usip.ko');
}
