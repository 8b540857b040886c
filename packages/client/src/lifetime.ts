// How the client's objects end: one idempotent async close, `Symbol.asyncDispose` for
// `await using`, and AbortSignals that cancel a wait or end an object's life. Every class that
// holds a socket, a thread or a kernel listener uses these, so that they all behave alike.
import { UsipArgumentError } from './errors.js';

/** The `signal` option of an operation: an AbortSignal or nothing; anything else is refused. */
export function checkSignal(operation: string, signal: unknown): AbortSignal | undefined {
  if (signal === undefined) return undefined;
  if (signal instanceof AbortSignal) return signal;
  throw new UsipArgumentError('signal', `${operation}: signal must be an AbortSignal`);
}

/**
 * Settles as `promise` does, unless `signal` aborts first: then rejects with the signal's reason
 * at once, and `release` receives what `promise` resolves to later (a socket, a listener), so
 * that nothing opened for an abandoned caller stays open.
 */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined, release?: (value: T) => unknown): Promise<T> {
  if (signal === undefined) return promise;
  if (signal.aborted) {
    abandon(promise, release);
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      abandon(promise, release);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

function abandon<T>(promise: Promise<T>, release: ((value: T) => unknown) | undefined): void {
  promise.then(
    (value) => {
      if (release === undefined) return;
      // A failure to release what nobody waits for any more has nobody to report to.
      Promise.resolve()
        .then(() => release(value))
        .catch(() => undefined);
    },
    () => undefined,
  );
}

/**
 * Calls `action` once when `signal` aborts (at once if it already has). Returns what stops
 * listening: call it when the object closes for another reason, so that a long-lived signal
 * does not keep the object reachable.
 */
export function onAbort(signal: AbortSignal | undefined, action: (reason: unknown) => void): () => void {
  if (signal === undefined) return () => undefined;
  if (signal.aborted) {
    action(signal.reason);
    return () => undefined;
  }
  const listener = () => action(signal.reason);
  signal.addEventListener('abort', listener, { once: true });
  return () => signal.removeEventListener('abort', listener);
}

/**
 * The end of one object's life: `close()` runs `release` once, and every call (and
 * `Symbol.asyncDispose`) returns the same promise. `reason` is set when a signal ended it, so
 * that waits that were pending reject with it rather than end quietly.
 */
export class Lifetime {
  readonly #release: () => Promise<void>;
  #closing: Promise<void> | undefined;
  #abortReason: { reason: unknown } | undefined;
  #stopListening: () => void = () => undefined;

  constructor(release: () => Promise<void>, signal?: AbortSignal) {
    this.#release = release;
    this.#stopListening = onAbort(signal, (reason) => {
      this.#abortReason = { reason };
      void this.close().catch(() => undefined);
    });
  }

  /** True once close() was called, or the signal aborted. */
  get closed(): boolean {
    return this.#closing !== undefined;
  }

  /** Set when the object was ended by its signal: what its pending and later waits reject with. */
  get abortReason(): { reason: unknown } | undefined {
    return this.#abortReason;
  }

  /** Throws the signal's reason if the signal ended the object. */
  throwIfAborted(): void {
    if (this.#abortReason !== undefined) throw this.#abortReason.reason;
  }

  close(): Promise<void> {
    if (this.#closing === undefined) {
      this.#stopListening();
      this.#closing = Promise.resolve().then(() => this.#release());
    }
    return this.#closing;
  }
}

/** The option of every operation that can wait. */
export interface AbortOptions {
  /** Cancels the wait: the operation rejects with the signal's reason (an AbortError unless
   *  the signal says otherwise) and releases what it had opened. */
  signal?: AbortSignal;
}

/**
 * Takes `signal` out of an operation's options (checked with checkSignal), so that the rest can
 * go to a validator that does not know it. Options that are not an object are passed on as they
 * are, for that validator to name.
 */
export function takeSignal<T extends object>(operation: string, options: T | undefined): { signal: AbortSignal | undefined; rest: Omit<T, 'signal'> } {
  if (typeof options !== 'object' || options === null || !('signal' in options)) {
    return { signal: undefined, rest: options as Omit<T, 'signal'> };
  }
  const { signal, ...rest } = options as T & { signal?: unknown };
  return { signal: checkSignal(operation, signal), rest: rest as Omit<T, 'signal'> };
}

/** Runs `operation` unless `signal` has aborted, and gives up on it (rejecting with the reason)
 *  if the signal aborts while it runs; what it resolves to later goes to `release`. */
export function whileNotAborted<T>(signal: AbortSignal | undefined, operation: () => Promise<T>, release?: (value: T) => unknown): Promise<T> {
  if (signal?.aborted === true) return Promise.reject(signal.reason);
  return abortable(operation(), signal, release);
}
