/**
 * Counts something that can happen in storms (events lost, actions dropped) and reports it
 * without flooding the log: the first occurrence at once, then at most one report per interval
 * with what happened since the previous report. Nothing is left uncounted: `flush()` reports the
 * rest (at shutdown), and `total` has everything.
 */
export class Tally {
  #pending = 0;
  #occurrences = 0;
  #timer: NodeJS.Timeout | undefined;
  total = 0;

  constructor(
    readonly intervalMs: number,
    /** Called with how many since the previous report, in how many occurrences, and the total. */
    readonly report: (count: number, occurrences: number, total: number) => void,
  ) {}

  add(count = 1): void {
    this.total += count;
    this.#pending += count;
    this.#occurrences++;
    if (this.#timer === undefined) {
      this.#emit();
      this.#arm();
    }
  }

  #arm(): void {
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#occurrences > 0) {
        this.#emit();
        this.#arm();
      }
    }, this.intervalMs);
    this.#timer.unref();
  }

  #emit(): void {
    const count = this.#pending;
    const occurrences = this.#occurrences;
    this.#pending = 0;
    this.#occurrences = 0;
    this.report(count, occurrences, this.total);
  }

  /** Reports what is pending now and stops the timer. */
  flush(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#occurrences > 0) this.#emit();
  }
}
