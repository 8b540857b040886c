import { FAMILY_NAME } from './generated/usip.js';

/** Base class of the errors the client raises itself (kernel errors keep their errno/code). */
export class UsipError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

export const MODULE_NOT_LOADED_HELP =
  `The usip kernel module is not loaded: the generic netlink family "${FAMILY_NAME}" does not exist ` +
  `in this network namespace. Load it with "modprobe usip" (installed with DKMS, see docs/install.md) ` +
  `or, from a build tree, "insmod packages/kernel-module/build/$(uname -r)/usip.ko"; both need root.`;

/**
 * The usip family is not registered: the module is not loaded (or not in this kernel at all).
 * With `needs`, the message first says what needed it (e.g. "storage events need the usip kernel
 * module: no other backend provides them"), then how to load it.
 */
export class UsipModuleNotLoadedError extends UsipError {
  /** What needed the module, when the caller said. */
  readonly needs?: string;
  constructor(options?: { cause?: unknown; needs?: string }) {
    const needs = options?.needs;
    super(
      'USIP_MODULE_NOT_LOADED',
      needs === undefined ? MODULE_NOT_LOADED_HELP : `${needs}. ${MODULE_NOT_LOADED_HELP}`,
      options?.cause === undefined ? undefined : { cause: options.cause },
    );
    if (needs !== undefined) this.needs = needs;
  }
}

/** The module answered with something this client cannot use (missing or unexpected data). */
export class UsipProtocolError extends UsipError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('USIP_PROTOCOL', message, options);
  }
}

/**
 * An option passed to the client is wrong (unknown, of the wrong type, out of range, or not
 * allowed together with another one). Raised before anything is sent; `field` names the option
 * as the caller spelled it, e.g. `notifiers[0].action`.
 */
export class UsipArgumentError extends UsipError {
  readonly field: string;
  constructor(field: string, message: string) {
    super('USIP_INVALID_ARGUMENT', message);
    this.field = field;
  }
}

/**
 * Every attempt to dump the mount table was interrupted: the namespace changed while each ran
 * (the kernel flagged the dump NLM_F_DUMP_INTR). `cause` is the last attempt's NetlinkError.
 */
export class UsipDumpInterruptedError extends UsipError {
  readonly attempts: number;
  constructor(operation: string, attempts: number, options?: { cause?: unknown }) {
    super(
      'USIP_DUMP_INTERRUPTED',
      `${operation}: the mount table changed while it was read, ${attempts} times in a row ` +
        '(dump interrupted); it is changing too fast to read consistently now, try again',
      options,
    );
    this.attempts = attempts;
  }
}

/** The loaded module lacks a feature the call needs (see ping's features). */
export class UsipUnsupportedError extends UsipError {
  /** The missing feature's spec name, e.g. 'mount-events'. */
  readonly feature: string;
  constructor(feature: string, message: string) {
    super('USIP_UNSUPPORTED', message);
    this.feature = feature;
  }
}
