// NetlinkError: what every failed call of this package rejects with.

/** The fields of a netlink failure, as the native addon reports them. */
export interface NetlinkErrorDetails {
  /** Positive errno, as in C: EPERM is 1. */
  errno: number;
  /** The errno's symbolic name: 'EPERM', 'ENOENT', 'EINTR' for an interrupted dump, ... */
  code: string;
  /** What was being done: the request's label, or e.g. 'resolve generic netlink family "usip"'. */
  operation: string;
  /** The failing system call, when a system call failed (e.g. 'socket', 'recvfrom'). */
  syscall?: string;
  /** The kernel's extended ack message (NLMSGERR_ATTR_MSG). */
  extack?: string;
  /** Byte offset of the offending attribute in the request message (NLMSGERR_ATTR_OFFS);
   *  the message's attributes start at offset 20 (nlmsghdr + genlmsghdr). */
  extackOffset?: number;
  /** Type of a required attribute that was missing (NLMSGERR_ATTR_MISS_TYPE). */
  missingAttribute?: number;
  /** Offset of the nest that misses it (NLMSGERR_ATTR_MISS_NEST). */
  missingNest?: number;
  /** The kernel flagged the dump NLM_F_DUMP_INTR: its data changed meanwhile; retry the dump. */
  dumpInterrupted?: boolean;
}

export class NetlinkError extends Error implements NetlinkErrorDetails {
  override readonly name = 'NetlinkError';
  readonly errno: number;
  readonly code: string;
  readonly operation: string;
  // `declare`: optional fields are only set when present, so `'extack' in error` is meaningful.
  declare readonly syscall?: string;
  declare readonly extack?: string;
  declare readonly extackOffset?: number;
  declare readonly missingAttribute?: number;
  declare readonly missingNest?: number;
  readonly dumpInterrupted: boolean;

  constructor(message: string, details: NetlinkErrorDetails) {
    super(message);
    this.errno = details.errno;
    this.code = details.code;
    this.operation = details.operation;
    this.dumpInterrupted = details.dumpInterrupted === true;
    if (details.syscall !== undefined) this.syscall = details.syscall;
    if (details.extack !== undefined) this.extack = details.extack;
    if (details.extackOffset !== undefined) this.extackOffset = details.extackOffset;
    if (details.missingAttribute !== undefined) this.missingAttribute = details.missingAttribute;
    if (details.missingNest !== undefined) this.missingNest = details.missingNest;
  }
}

export function isNetlinkError(value: unknown): value is NetlinkError {
  return value instanceof NetlinkError;
}

function isNativeNetlinkError(value: unknown): value is Error & NetlinkErrorDetails {
  return (
    value instanceof Error &&
    value.name === 'NetlinkError' &&
    typeof (value as Partial<NetlinkErrorDetails>).errno === 'number' &&
    typeof (value as Partial<NetlinkErrorDetails>).code === 'string'
  );
}

/**
 * Re-creates an error thrown by the addon as a NetlinkError. The addon's error is created on a
 * callback with no JavaScript caller on the stack; the new one is created where the caller's
 * `await` resumes, so its stack shows the caller. Anything else is returned unchanged.
 */
export function fromNativeError(value: unknown): unknown {
  if (!isNativeNetlinkError(value)) return value;
  return new NetlinkError(value.message, value);
}

/** The fields of a failed system call of the mount APIs (mounts.ts), as the addon reports them. */
export interface SyscallErrorDetails {
  /** Positive errno, as in C: EPERM is 1. */
  errno: number;
  /** The errno's symbolic name: 'EPERM', 'ENOENT', 'ETIMEDOUT', ... */
  code: string;
  /** The system call that failed: 'statmount', 'fanotify_mark', 'read', 'statfs', ... */
  syscall: string;
  /** What was being done, e.g. 'watch the mounts of /proc/self/ns/mnt'. */
  operation: string;
  /** More words when there are some, e.g. why fanotify refused:
   *  'EPERM: marking a mount namespace needs CAP_SYS_ADMIN in its user namespace'. */
  detail?: string;
}

/** What the mount APIs (listKernelMounts, MountinfoWatch, FanotifyMountWatch, statfsPath, ...)
 *  throw or reject with when a system call fails. */
export class SyscallError extends Error implements SyscallErrorDetails {
  override readonly name = 'SyscallError';
  readonly errno: number;
  readonly code: string;
  readonly syscall: string;
  readonly operation: string;
  declare readonly detail?: string;

  constructor(message: string, details: SyscallErrorDetails) {
    super(message);
    this.errno = details.errno;
    this.code = details.code;
    this.syscall = details.syscall;
    this.operation = details.operation;
    if (details.detail !== undefined) this.detail = details.detail;
  }
}

export function isSyscallError(value: unknown): value is SyscallError {
  return value instanceof SyscallError;
}

/** Re-creates an addon's SyscallError where the caller's `await` resumes (see fromNativeError);
 *  anything else is returned unchanged. */
export function fromNativeSyscallError(value: unknown): unknown {
  if (
    value instanceof Error &&
    value.name === 'SyscallError' &&
    typeof (value as Partial<SyscallErrorDetails>).errno === 'number' &&
    typeof (value as Partial<SyscallErrorDetails>).code === 'string'
  ) {
    return new SyscallError(value.message, value as Error & SyscallErrorDetails);
  }
  return value;
}
