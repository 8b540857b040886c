// The agent as a Type=notify systemd service: sd_notify(3) messages (READY=1, RELOADING=1,
// STOPPING=1, STATUS=, WATCHDOG=1) sent through the native addon, since Node cannot send on a
// unix datagram socket. Outside systemd (no NOTIFY_SOCKET) every call is a no-op.
import type { Logger } from 'pino';

/** Sends one sd_notify datagram; false when there is no NOTIFY_SOCKET. */
export type NotifySend = (state: string) => boolean;

/** What the agent holds, for STATUS=. */
export interface AgentSummary {
  /** Notifier files with a valid version. */
  files: number;
  /** Their notifiers, summed. */
  notifiers: number;
  /** Listeners registered in the module now. */
  listeners: number;
  /** Connected to the usip module. */
  connected: boolean;
}

/** The STATUS= text for a summary: "3 files, 5 notifiers, 2 listeners; module present". */
export function statusText(summary: AgentSummary): string {
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  const counts = `${plural(summary.files, 'file')}, ${plural(summary.notifiers, 'notifier')}, ${plural(summary.listeners, 'listener')}`;
  return summary.connected ? `${counts}; module present` : `waiting for the usip module (not loaded); ${counts} valid`;
}

/** CLOCK_MONOTONIC in µs, as systemd wants it with RELOADING=1 (libuv's hrtime reads that clock). */
export function monotonicUsec(): bigint {
  return process.hrtime.bigint() / 1000n;
}

/**
 * The watchdog period systemd asks for, in µs, from WATCHDOG_USEC, or undefined when there is
 * none or it is meant for another process (WATCHDOG_PID names another pid), as
 * sd_watchdog_enabled(3) decides. A malformed value is an error naming it.
 */
export function watchdogUsec(env: NodeJS.ProcessEnv, pid: number = process.pid): number | undefined {
  const usec = env.WATCHDOG_USEC;
  if (usec === undefined || usec === '') return undefined;
  if (!/^\d+$/.test(usec) || Number(usec) === 0 || !Number.isSafeInteger(Number(usec))) {
    throw new Error(`WATCHDOG_USEC=${JSON.stringify(usec)} is not a whole number of microseconds greater than 0`);
  }
  const owner = env.WATCHDOG_PID;
  if (owner !== undefined && owner !== '') {
    if (!/^\d+$/.test(owner)) throw new Error(`WATCHDOG_PID=${JSON.stringify(owner)} is not a process id`);
    if (Number(owner) !== pid) return undefined;
  }
  return Number(usec);
}

function oneLine(text: string): string {
  // An assignment ends at a newline: a status with one would cut the message.
  return text.replace(/\s*\n\s*/g, ' ');
}

export interface SystemdNotifierOptions {
  send: NotifySend;
  log: Logger;
  env?: NodeJS.ProcessEnv;
  /**
   * Asked before each WATCHDOG=1: false withholds it, so systemd restarts an agent that is
   * stuck rather than merely slow to die (default: always healthy while the loop runs).
   */
  healthy?: (watchdogMs: number) => boolean;
}

export class SystemdNotifier {
  readonly #send: NotifySend;
  readonly #log: Logger;
  readonly #env: NodeJS.ProcessEnv;
  readonly #healthy: (watchdogMs: number) => boolean;
  #failed = false;
  #lastStatus: string | undefined;
  #watchdog: NodeJS.Timeout | undefined;
  #withheld = false;

  constructor(options: SystemdNotifierOptions) {
    this.#send = options.send;
    this.#log = options.log;
    this.#env = options.env ?? process.env;
    this.#healthy = options.healthy ?? (() => true);
  }

  /** True when started by systemd with a notify socket. */
  get enabled(): boolean {
    return (this.#env.NOTIFY_SOCKET ?? '') !== '';
  }

  /** Sends assignments, e.g. ['READY=1', 'STATUS=...']; a failure is logged once, never thrown. */
  notify(...assignments: string[]): boolean {
    if (!this.enabled) return false;
    try {
      const sent = this.#send(assignments.join('\n'));
      if (sent && this.#failed) this.#log.info({}, 'notifying systemd works again');
      this.#failed = !sent;
      return sent;
    } catch (error) {
      if (!this.#failed) this.#log.error({ error: (error as Error).message, state: assignments.join(' ') }, 'cannot notify systemd');
      this.#failed = true;
      return false;
    }
  }

  ready(status: string): void {
    this.#lastStatus = oneLine(status);
    this.notify('READY=1', `STATUS=${this.#lastStatus}`);
  }

  /** RELOADING=1 with the time systemd 253+ requires for Type=notify-reload (ignored by older ones). */
  reloading(status = 'reading the configuration directory again'): void {
    this.#lastStatus = oneLine(status);
    this.notify('RELOADING=1', `MONOTONIC_USEC=${monotonicUsec()}`, `STATUS=${this.#lastStatus}`);
  }

  stopping(status = 'stopping'): void {
    this.stopWatchdog();
    this.#lastStatus = oneLine(status);
    this.notify('STOPPING=1', `STATUS=${this.#lastStatus}`);
  }

  /** STATUS= alone, sent only when the text changed. */
  status(text: string): void {
    const line = oneLine(text);
    if (line === this.#lastStatus) return;
    this.#lastStatus = line;
    this.notify(`STATUS=${line}`);
  }

  /**
   * Starts WATCHDOG=1 every half of the period systemd asks for (WATCHDOG_USEC, for this pid),
   * each time the agent is healthy. Returns the interval in ms, or undefined when systemd asks
   * for no watchdog.
   */
  startWatchdog(): number | undefined {
    if (!this.enabled || this.#watchdog !== undefined) return undefined;
    let usec: number | undefined;
    try {
      usec = watchdogUsec(this.#env);
    } catch (error) {
      this.#log.error({ error: (error as Error).message }, 'ignoring the watchdog systemd asks for');
      return undefined;
    }
    if (usec === undefined) return undefined;
    const intervalMs = Math.max(1, Math.floor(usec / 2000));
    const tick = () => {
      if (this.#healthy(usec / 1000)) {
        if (this.#withheld) this.#log.info({}, 'healthy again: pinging the systemd watchdog');
        this.#withheld = false;
        this.notify('WATCHDOG=1');
      } else if (!this.#withheld) {
        this.#withheld = true;
        this.#log.error({ watchdogSeconds: usec / 1e6 }, 'unhealthy: not pinging the systemd watchdog (systemd will restart the agent if this lasts)');
      }
    };
    tick();
    this.#watchdog = setInterval(tick, intervalMs);
    this.#log.debug({ intervalMs }, 'pinging the systemd watchdog');
    return intervalMs;
  }

  stopWatchdog(): void {
    clearInterval(this.#watchdog);
    this.#watchdog = undefined;
  }
}
