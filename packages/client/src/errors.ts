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

/** The usip family is not registered: the module is not loaded (or not in this kernel at all). */
export class UsipModuleNotLoadedError extends UsipError {
  constructor(options?: { cause?: unknown }) {
    super('USIP_MODULE_NOT_LOADED', MODULE_NOT_LOADED_HELP, options);
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
