// Runs the commands notifiers declare (`run`), one child process per matching event, within
// bounds: so that a storm of events cannot fork-bomb the machine, and so that nothing is dropped
// without being counted and logged.
//
// - Commands of one file run one at a time, in the order of the events (a file is the unit of
//   ordering: a `mount` action never overtakes the `umount` before it). Put independent actions in
//   separate files to let them run side by side.
// - At most `maxRunning` commands run at once over all files; files take turns (round robin).
// - At most `maxQueuedPerFile` events wait per file; an event beyond that is not run: it is
//   counted, and the count is logged (the first at once, then at most once a second).
// - A command that runs longer than its timeout gets SIGTERM, and SIGKILL `killGraceMs` later.
// - Each command is the leader of a process group of its own; when it exits, whatever it left
//   running in that group is killed, so background children cannot escape the bounds either.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, constants, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { environmentFileText, eventEnvironment, toJsonText, type EventJson } from './event.js';
import type { AgentMetrics } from './metrics.js';
import { Tally } from './tally.js';

export interface ActionLimits {
  /** Commands running at once, over all files (default 4). */
  maxRunning: number;
  /** Events waiting for their command per file; beyond it they are counted and not run (default 64). */
  maxQueuedPerFile: number;
  /** A command's time limit when its notifier sets no timeoutSeconds, in ms (default 30 s). */
  timeoutMs: number;
  /** From SIGTERM to SIGKILL for a command past its time limit, in ms (default 5 s). */
  killGraceMs: number;
  /** Bytes of a command's stdout and of its stderr kept for the log (default 4096 each). */
  outputLimit: number;
}

export const DEFAULT_ACTION_LIMITS: ActionLimits = {
  maxRunning: 4,
  maxQueuedPerFile: 64,
  timeoutMs: 30_000,
  killGraceMs: 5_000,
  outputLimit: 4096,
};

/** One command to run for one event. */
export interface ActionJob {
  /** The notifier file that declared it. */
  file: string;
  /** The notifier's index in the file. */
  notifier: number;
  argv: readonly string[];
  /** Time limit in ms (default: the runner's). */
  timeoutMs?: number;
  event: EventJson;
  /** For a notifier's `unit`: the unit that argv (systemctl) starts, for the log. */
  unit?: string;
  /**
   * Written, atomically and mode 0600, with the event's variables (an EnvironmentFile= of systemd)
   * just before the command starts: systemctl does not hand its environment to the unit it starts.
   */
  eventFile?: string;
}

/**
 * Writes `text` to `path` as a new file of mode 0600, then renames it over `path`: a unit reading
 * it sees a whole event, the last one, never a half-written file. Its directory is made (0700) if
 * missing. Synchronous: a few hundred bytes on /run, and the command starts right after.
 */
export function writeEventFile(path: string, text: string): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const temporary = join(dir, `.${basename(path)}.${process.pid}.tmp`);
  rmSync(temporary, { force: true });
  // O_EXCL|O_NOFOLLOW: a file (or link) put there by someone else is not written through.
  const fd = openSync(temporary, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
  renameSync(temporary, path);
}

/** How a command ended. */
export interface ActionOutcome {
  job: ActionJob;
  pid: number | undefined;
  /** Exit status, or null when it was killed by a signal or could not start. */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** Stopped because it ran past its time limit. */
  timedOut: boolean;
  /** Stopped because the agent was stopping. */
  stopped: boolean;
  /** Why it could not be started (spawn error). */
  error?: NodeJS.ErrnoException;
  durationMs: number;
  stdout: string;
  stderr: string;
  stdoutTruncated: number;
  stderrTruncated: number;
}

export interface ActionCounters {
  started: number;
  succeeded: number;
  failed: number;
  timedOut: number;
  /** Not run: the file's queue was full. */
  dropped: number;
  /** Not run: the agent stopped before their turn. */
  discarded: number;
}

class Capture {
  readonly #chunks: Buffer[] = [];
  #kept = 0;
  truncated = 0;
  constructor(readonly limit: number) {}
  add(chunk: Buffer): void {
    const room = this.limit - this.#kept;
    if (room > 0) {
      const part = chunk.length <= room ? chunk : chunk.subarray(0, room);
      this.#chunks.push(part);
      this.#kept += part.length;
    }
    this.truncated += Math.max(0, chunk.length - Math.max(room, 0));
  }
  text(): string {
    return Buffer.concat(this.#chunks).toString('utf8').replace(/\n$/, '');
  }
}

interface FileQueue {
  file: string;
  jobs: ActionJob[];
  busy: boolean;
  ready: boolean;
  dropped: Tally;
}

interface Running {
  child: ChildProcess;
  terminate(reason: 'timeout' | 'stop'): void;
}

/** What a command gets of the event in its environment (and a unit in its event file). */
export function eventVariables(job: ActionJob): Record<string, string> {
  return { ...eventEnvironment(job.event), USIP_NOTIFIER_FILE: job.file, USIP_NOTIFIER_INDEX: String(job.notifier) };
}

function describeEvent(event: EventJson): string {
  return `${String(event.type)}/${String(event.action)}`;
}

export class ActionRunner {
  readonly limits: ActionLimits;
  readonly counters: ActionCounters = { started: 0, succeeded: 0, failed: 0, timedOut: 0, dropped: 0, discarded: 0 };
  readonly #log: Logger;
  readonly #onOutcome: ((outcome: ActionOutcome) => void) | undefined;
  readonly #metrics: Pick<AgentMetrics, 'actionStarted' | 'actionEnded' | 'actionDropped'> | undefined;
  readonly #queues = new Map<string, FileQueue>();
  readonly #ready: FileQueue[] = [];
  readonly #running = new Set<Running>();
  #idle: (() => void)[] = [];
  #stopping = false;

  constructor(
    log: Logger,
    limits: Partial<ActionLimits> = {},
    onOutcome?: (outcome: ActionOutcome) => void,
    metrics?: Pick<AgentMetrics, 'actionStarted' | 'actionEnded' | 'actionDropped'>,
  ) {
    this.limits = { ...DEFAULT_ACTION_LIMITS, ...limits };
    for (const key of ['maxRunning', 'maxQueuedPerFile', 'timeoutMs', 'killGraceMs'] as const) {
      if (!(this.limits[key] > 0)) throw new RangeError(`action limits: ${key} must be positive, got ${this.limits[key]}`);
    }
    this.#log = log;
    this.#onOutcome = onOutcome;
    this.#metrics = metrics;
  }

  /** Commands running now. */
  get running(): number {
    return this.#running.size;
  }

  /** Events waiting for their command (of one file, or of all). */
  queued(file?: string): number {
    if (file !== undefined) return this.#queues.get(file)?.jobs.length ?? 0;
    let n = 0;
    for (const q of this.#queues.values()) n += q.jobs.length;
    return n;
  }

  #queue(file: string): FileQueue {
    let q = this.#queues.get(file);
    if (q === undefined) {
      const queue: FileQueue = {
        file,
        jobs: [],
        busy: false,
        ready: false,
        dropped: new Tally(1000, (count, _occurrences, total) => {
          this.#log.warn(
            { file, dropped: count, droppedTotal: total, queueLimit: this.limits.maxQueuedPerFile },
            `${count} event(s) not acted on: ${this.limits.maxQueuedPerFile} events already wait for this file's commands`,
          );
        }),
      };
      this.#queues.set(file, queue);
      q = queue;
    }
    return q;
  }

  /**
   * Queues a command for an event. Returns false when it will not run: the file's queue is full
   * (counted as dropped and logged) or the runner is stopping (counted as discarded).
   */
  submit(job: ActionJob): boolean {
    if (this.#stopping) {
      this.counters.discarded++;
      this.#log.warn({ file: job.file, notifier: job.notifier, event: describeEvent(job.event), seq: job.event.seq }, 'event not acted on: the agent is stopping');
      return false;
    }
    const q = this.#queue(job.file);
    if (q.jobs.length >= this.limits.maxQueuedPerFile) {
      this.counters.dropped++;
      this.#metrics?.actionDropped(job);
      q.dropped.add();
      return false;
    }
    q.jobs.push(job);
    if (!q.busy && !q.ready) {
      q.ready = true;
      this.#ready.push(q);
    }
    this.#dispatch();
    return true;
  }

  #dispatch(): void {
    while (this.#running.size < this.limits.maxRunning && this.#ready.length > 0) {
      const q = this.#ready.shift()!;
      q.ready = false;
      const job = q.jobs.shift();
      if (job === undefined) continue;
      q.busy = true;
      this.#start(q, job);
    }
    if (this.#running.size === 0 && this.#ready.length === 0) {
      const waiters = this.#idle;
      this.#idle = [];
      for (const resolve of waiters) resolve();
    }
  }

  #start(q: FileQueue, job: ActionJob): void {
    this.counters.started++;
    this.#metrics?.actionStarted(job);
    const begin = performance.now();
    const stdout = new Capture(this.limits.outputLimit);
    const stderr = new Capture(this.limits.outputLimit);
    const env = { ...process.env, ...eventVariables(job) };
    let timedOut = false;
    let stopped = false;
    let spawnError: NodeJS.ErrnoException | undefined;
    let done = false;
    let timeoutTimer: NodeJS.Timeout | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    let drainTimer: NodeJS.Timeout | undefined;

    let child: ChildProcess;
    try {
      if (job.eventFile !== undefined) {
        try {
          writeEventFile(job.eventFile, environmentFileText(eventVariables(job)));
        } catch (error) {
          const e = error as NodeJS.ErrnoException;
          throw Object.assign(new Error(`cannot write the event file ${job.eventFile}: ${e.message}`), { code: e.code });
        }
      }
      // detached: the command leads a process group of its own (setsid), which is killed as a whole.
      child = spawn(job.argv[0]!, job.argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], env, detached: true, cwd: '/' });
    } catch (error) {
      // The event file could not be written, or arguments node refuses before forking (a NUL byte).
      spawnError = error as NodeJS.ErrnoException;
      queueMicrotask(() => this.#finish(q, job, undefined, null, null, { timedOut, stopped, spawnError, begin, stdout, stderr }));
      return;
    }

    const killGroup = (signal: NodeJS.Signals) => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, signal);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ESRCH') child.kill(signal);
      }
    };
    const running: Running = {
      child,
      terminate: (reason) => {
        if (done || killTimer !== undefined) return;
        if (reason === 'timeout') timedOut = true;
        else stopped = true;
        killGroup('SIGTERM');
        killTimer = setTimeout(() => killGroup('SIGKILL'), this.limits.killGraceMs);
      },
    };
    this.#running.add(running);
    const finish = (exitCode: number | null, signal: NodeJS.Signals | null) => {
      if (done) return;
      done = true;
      clearTimeout(timeoutTimer);
      clearTimeout(killTimer);
      clearTimeout(drainTimer);
      this.#running.delete(running);
      this.#finish(q, job, child.pid, exitCode, signal, { timedOut, stopped, spawnError, begin, stdout, stderr });
    };

    child.stdout!.on('data', (chunk: Buffer) => stdout.add(chunk));
    child.stderr!.on('data', (chunk: Buffer) => stderr.add(chunk));
    // A command that does not read its stdin is fine: EPIPE is not an error of the agent's.
    child.stdin!.on('error', () => undefined);
    child.on('error', (error: NodeJS.ErrnoException) => {
      spawnError = error;
      if (child.pid === undefined) finish(null, null);
    });
    child.on('exit', (code, signal) => {
      // Whatever the command left running in its group goes with it.
      killGroup('SIGKILL');
      // Its output is read to the end, unless something outside the group still holds the pipes.
      drainTimer = setTimeout(() => {
        child.stdout!.destroy();
        child.stderr!.destroy();
        finish(code, signal);
      }, 1000);
    });
    child.on('close', (code: number | null, signal: NodeJS.Signals | null) => finish(code, signal));
    if (child.pid !== undefined) {
      child.stdin!.end(`${toJsonText(job.event)}\n`);
      timeoutTimer = setTimeout(() => running.terminate('timeout'), job.timeoutMs ?? this.limits.timeoutMs);
    }
  }

  #finish(
    q: FileQueue,
    job: ActionJob,
    pid: number | undefined,
    exitCode: number | null,
    signal: NodeJS.Signals | null,
    state: { timedOut: boolean; stopped: boolean; spawnError: NodeJS.ErrnoException | undefined; begin: number; stdout: Capture; stderr: Capture },
  ): void {
    const outcome: ActionOutcome = {
      job,
      pid,
      exitCode,
      signal,
      timedOut: state.timedOut,
      stopped: state.stopped,
      durationMs: Math.round(performance.now() - state.begin),
      stdout: state.stdout.text(),
      stderr: state.stderr.text(),
      stdoutTruncated: state.stdout.truncated,
      stderrTruncated: state.stderr.truncated,
    };
    if (state.spawnError !== undefined && pid === undefined) outcome.error = state.spawnError;
    this.#report(outcome);
    q.busy = false;
    if (q.jobs.length > 0 && !q.ready) {
      q.ready = true;
      this.#ready.push(q);
    }
    this.#dispatch();
  }

  #report(outcome: ActionOutcome): void {
    const { job } = outcome;
    const fields: Record<string, unknown> = {
      file: job.file,
      notifier: job.notifier,
      event: describeEvent(job.event),
      seq: job.event.seq,
      command: job.argv[0],
      ...(job.unit !== undefined ? { unit: job.unit } : {}),
      pid: outcome.pid,
      durationMs: outcome.durationMs,
    };
    if (outcome.error !== undefined) {
      this.counters.failed++;
      this.#log.error({ ...fields, error: outcome.error.message, code: outcome.error.code }, 'the command could not be started');
    } else {
      fields.exitCode = outcome.exitCode;
      if (outcome.signal !== null) fields.signal = outcome.signal;
      if (outcome.stdout !== '') fields.stdout = outcome.stdout;
      if (outcome.stderr !== '') fields.stderr = outcome.stderr;
      if (outcome.stdoutTruncated > 0) fields.stdoutTruncated = outcome.stdoutTruncated;
      if (outcome.stderrTruncated > 0) fields.stderrTruncated = outcome.stderrTruncated;
      if (outcome.timedOut) {
        this.counters.timedOut++;
        this.#log.warn({ ...fields, timeoutMs: job.timeoutMs ?? this.limits.timeoutMs }, 'the command ran past its time limit and was stopped');
      } else if (outcome.stopped) {
        this.counters.failed++;
        this.#log.warn(fields, 'the command was stopped: the agent is stopping');
      } else if (outcome.exitCode === 0) {
        this.counters.succeeded++;
        this.#log.info(fields, 'command ran');
      } else {
        this.counters.failed++;
        this.#log.warn(fields, outcome.signal !== null ? `the command was killed by ${outcome.signal}` : `the command failed (exit status ${outcome.exitCode})`);
      }
    }
    this.#metrics?.actionEnded(outcome);
    this.#onOutcome?.(outcome);
  }

  /** Resolves when no command runs and none waits. */
  idle(): Promise<void> {
    if (this.#running.size === 0 && this.queued() === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /**
   * Stops: events still waiting are not run (counted and logged per file); running commands get
   * `graceMs` to finish, then SIGTERM (and SIGKILL after killGraceMs). Resolves when all ended.
   */
  async shutdown(graceMs: number): Promise<void> {
    this.#stopping = true;
    for (const q of this.#queues.values()) {
      q.dropped.flush();
      if (q.jobs.length > 0) {
        this.counters.discarded += q.jobs.length;
        this.#log.warn({ file: q.file, discarded: q.jobs.length }, `${q.jobs.length} event(s) not acted on: the agent is stopping`);
        q.jobs = [];
      }
    }
    this.#ready.length = 0;
    if (this.#running.size === 0) return;
    const timer = setTimeout(() => {
      for (const r of this.#running) r.terminate('stop');
    }, graceMs);
    await this.idle();
    clearTimeout(timer);
  }
}
