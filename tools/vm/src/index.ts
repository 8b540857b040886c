// @usip/vm: boots Debian kernels in QEMU to test kernel modules for real.
export {
  resolveKernels,
  ensureSystemDeps,
  DEBUG_KERNEL_SELECTOR,
  type Kernel,
  type Logger,
  type ResolveKernelsOptions,
} from './kernels.js';
export { buildModule, type BuildModuleOptions, type BuiltModule } from './build-module.js';
export { runInVm, formatVerdict, type VmModule, type VmRunOptions, type VmRunResult } from './run.js';
export { GUEST_INITS, type GuestInit } from './plan.js';
export { classifyKernelLog, KERNEL_LOG_RULES, type KernelLogRule, type KernelLogFinding } from './kernel-log.js';
export { parseKernelSelector, SUPPORTED_SERIES, type KernelSpec } from './apt.js';
export { compareDebianVersions } from './debian-version.js';
