// usip-agent run: keeps one listener registered in the usip module per valid notifier file of a
// directory, follows the files as they change (chokidar), and acts on the events.
//
// Per file:
//   valid and new            -> register a listener
//   changed, still valid     -> register the new listener first, then close the old one (no
//                               window without a listener; an event both receive is acted on once,
//                               told apart by its module-wide seq); a change of `run` or
//                               `timeoutSeconds` only keeps the listener and swaps the actions
//   changed, now invalid     -> log every problem (file, JSON pointer, rule); the last good
//                               version stays registered
//   deleted                  -> close its listener
//   refused by the module    -> log it for that file (EPERM for scope "global" without
//                               CAP_SYS_ADMIN); a previous registration of the file stays
// The module: not loaded at start -> log how to load it and retry every retryIntervalMs (or fail,
// with retry: false); unloaded later (found by a check every checkIntervalMs, or by a refused
// registration) -> drop the dead listeners and register every file again once it is back.
import { readdir, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import { UsipModuleNotLoadedError, isNetlinkError, type ListenerItem } from '@usip/client';
import type { Logger } from 'pino';
import { ActionRunner, type ActionLimits, type ActionOutcome } from './actions.js';
import { eventJson, notifierMatches, registerOptions, toJsonText } from './event.js';
import { familyGone, type AgentKernel, type AgentListener, type KernelConnector } from './kernel.js';
import { isNotifierFileName, loadNotifierFile, resolveConfigEntry, type ConfigEntry, type NotifierFile } from './load.js';
import { DEFAULT_CONFIG_DIRS } from './schema.js';
import type { AgentMetrics } from './metrics.js';
import { Tally } from './tally.js';

export interface AgentOptions {
  /**
   * The directories of notifier files (*.json), highest precedence first, by systemd's `.d`
   * rules: for each name, the file of the highest directory that has it counts, and a symbolic
   * link to /dev/null there masks it (default DEFAULT_CONFIG_DIRS: /etc, /run, /usr/lib).
   */
  configDirs?: readonly string[];
  /** One directory only (configDirs: [configDir]). */
  configDir?: string;
  /** How to reach the module (connectUsip for the real one). */
  connect: KernelConnector;
  log: Logger;
  /** Where the events of notifiers without `run` go, one JSON line each (default: stdout). */
  output?: (line: string) => void;
  /** Bounds of the commands notifiers run. */
  limits?: Partial<ActionLimits>;
  /** Quiet time after the last change of a file before it is read (default 200 ms). */
  debounceMs?: number;
  /** Pause between attempts to reach a module that is not loaded (default 5 s). */
  retryIntervalMs?: number;
  /** Period of the check that the module still has the agent's listeners (default 10 s). */
  checkIntervalMs?: number;
  /**
   * Wait for the module when it is not loaded (default true). When false, start() rejects if it
   * is not loaded, and `onFatal` is called if it goes away later.
   */
  retry?: boolean;
  /** Time running commands get to finish when the agent stops, before SIGTERM (default 5 s). */
  shutdownGraceMs?: number;
  /** Called when the agent cannot go on (retry: false and the module went away). */
  onFatal?: (error: Error) => void;
  /** The systemctl that a notifier's `unit` runs (default "systemctl", looked up in PATH). */
  systemctl?: string;
  /** Where the event of a notifier's `unit` is written, as UNIT.env (default /run/usip-agent/events). */
  unitEventDir?: string;
  /** Called with the outcome of every command (tests, metrics). */
  onOutcome?: (outcome: ActionOutcome) => void;
  /** Counts what the agent receives, runs and holds (usip-agent run --metrics). */
  metrics?: AgentMetrics;
}

/** Where the event of a notifier's `unit` is written for the unit to read (UNIT.env). */
export const DEFAULT_UNIT_EVENT_DIR = '/run/usip-agent/events';

/** The agent could not start: the directory cannot be read, or (retry: false) no module. */
export class AgentStartError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AgentStartError';
  }
}

/** What the agent holds for one notifier file. */
export interface FileStatus {
  file: string;
  /** The last good version's notifier count (undefined: no valid version). */
  notifiers: number | undefined;
  /** The listener registered for it now, if any. */
  listenerId: number | undefined;
  scope: string | undefined;
}

interface Active {
  listener: AgentListener;
  content: NotifierFile;
  /** What the module was asked for: a change elsewhere in the file needs no new listener. */
  key: string;
  /** The file it was registered for: another directory's file of the name gets a listener of its own. */
  source: string;
  closing: boolean;
  pump: Promise<void>;
}

/** The last `size` seqs seen, to act once on an event that two listeners of a file received. */
class SeqWindow {
  readonly #set = new Set<bigint>();
  readonly #order: bigint[] = [];
  constructor(readonly size: number) {}
  /** Adds a seq; false when it was there already. */
  add(seq: bigint): boolean {
    if (this.#set.has(seq)) return false;
    this.#set.add(seq);
    this.#order.push(seq);
    if (this.#order.length > this.size) this.#set.delete(this.#order.shift()!);
    return true;
  }
}

class FileState {
  /** The entry that counts for this name now (the highest directory's), or the last one that did. */
  file: string;
  /** What it overrides or masks, as last logged ('' for nothing). */
  shadowing = '';
  /** Why its listener goes when it has no good version any more (the log's `reason`). */
  gone = 'the file was removed';
  good: NotifierFile | undefined;
  active: Active | undefined;
  chain: Promise<void> = Promise.resolve();
  /** Seqs acted on, within one lifetime of the module (a module loaded again counts from 1). */
  seen = new SeqWindow(4096);
  readonly missed: Tally;
  readonly overruns: Tally;

  constructor(readonly name: string, file: string, log: Logger) {
    this.file = file;
    this.missed = new Tally(1000, (count, occurrences, total) => {
      log.warn(
        { file: this.file, listenerId: this.active?.listener.id, missed: count, reports: occurrences, missedTotal: total },
        `${count} event(s) for this file were lost in the module (its queue or this listener's socket buffer was full)`,
      );
    });
    this.overruns = new Tally(1000, (count, occurrences, total) => {
      log.warn(
        { file: this.file, listenerId: this.active?.listener.id, overruns: occurrences, lost: count, overrunsTotal: total },
        `the listener's socket overflowed ${occurrences} time(s); events were lost (the next event's missed count says how many)`,
      );
    });
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function errorFields(error: unknown): Record<string, unknown> {
  const e = error as { message?: string; code?: unknown };
  return { error: e?.message ?? String(error), ...(typeof e?.code === 'string' ? { code: e.code } : {}) };
}

export class Agent {
  /** The configuration directories, highest precedence first. */
  readonly configDirs: readonly string[];
  readonly #connect: KernelConnector;
  readonly #log: Logger;
  readonly #output: (line: string) => void;
  readonly #runner: ActionRunner;
  readonly #debounceMs: number;
  readonly #retryIntervalMs: number;
  readonly #checkIntervalMs: number;
  readonly #retry: boolean;
  readonly #shutdownGraceMs: number;
  readonly #onFatal: ((error: Error) => void) | undefined;
  readonly #systemctl: string;
  readonly #unitEventDir: string;
  readonly #files = new Map<string, FileState>();
  readonly #debounce = new Map<string, NodeJS.Timeout>();
  #watcher: FSWatcher | undefined;
  #kernel: AgentKernel | undefined;
  /** Set when chokidar's initial scan is done; the paths it found before are in #initial. */
  #watching = false;
  /** The directories chokidar follows (those that existed at start or at a rescan). */
  #watched = new Set<string>();
  readonly #initial = new Set<string>();
  #stopping = false;
  #missingReported = false;
  #retryTimer: NodeJS.Timeout | undefined;
  #checkTimer: NodeJS.Timeout | undefined;
  #checking = false;
  #checkStartedAt: number | undefined;
  #lastConnectError: unknown;
  #outputFailed = false;
  readonly #metrics: AgentMetrics | undefined;

  constructor(options: AgentOptions) {
    const dirs = options.configDirs ?? (options.configDir !== undefined ? [options.configDir] : DEFAULT_CONFIG_DIRS);
    if (dirs.length === 0) throw new RangeError('configDirs: at least one directory');
    this.configDirs = [...new Set(dirs.map((d) => resolve(d)))];
    this.#connect = options.connect;
    this.#log = options.log;
    this.#output = options.output ?? ((line) => void process.stdout.write(line));
    this.#metrics = options.metrics;
    this.#runner = new ActionRunner(options.log, options.limits, options.onOutcome, options.metrics);
    this.#debounceMs = options.debounceMs ?? 200;
    this.#retryIntervalMs = options.retryIntervalMs ?? 5000;
    this.#checkIntervalMs = options.checkIntervalMs ?? 10_000;
    this.#retry = options.retry ?? true;
    this.#shutdownGraceMs = options.shutdownGraceMs ?? 5000;
    this.#onFatal = options.onFatal;
    this.#systemctl = options.systemctl ?? 'systemctl';
    this.#unitEventDir = resolve(options.unitEventDir ?? DEFAULT_UNIT_EVENT_DIR);
  }

  /** The configuration directory of highest precedence. */
  get configDir(): string {
    return this.configDirs[0]!;
  }

  /** The command runner (its counters and bounds). */
  get actions(): ActionRunner {
    return this.#runner;
  }

  /** True while a connection to the module is up. */
  get connected(): boolean {
    return this.#kernel !== undefined;
  }

  /** The files with a valid version or a listener, by name. */
  status(): FileStatus[] {
    return [...this.#files.values()]
      .filter((s) => s.good !== undefined || s.active !== undefined)
      .sort((a, b) => a.file.localeCompare(b.file))
      .map((s) => ({
        file: s.file,
        notifiers: s.good?.notifiers.length,
        listenerId: s.active?.listener.id,
        scope: s.active?.listener.scope,
      }));
  }

  /**
   * Connects to the module, reads every notifier file, registers the valid ones and starts
   * following the directory. Resolves once the files present at start are handled. Rejects with
   * AgentStartError when the directory cannot be read, or (retry: false) the module is not loaded.
   */
  async start(): Promise<void> {
    // A directory that does not exist is skipped (as systemd does: /run/usip.d often does not);
    // one that exists and cannot be read is an error, and so is none existing at all.
    const present = await this.#presentDirs(true);
    if (present.length === 0) {
      const which = this.configDirs.length === 1 ? 'directory' : 'directories';
      throw new AgentStartError(`cannot read the configuration ${which} ${this.configDirs.join(', ')}: ENOENT: no such directory`);
    }
    if (!(await this.#tryConnect())) {
      if (!this.#retry) {
        const cause = this.#lastConnectError;
        throw new AgentStartError(cause instanceof Error ? cause.message : String(cause), { cause });
      }
      this.#scheduleConnect();
    }
    if (this.#stopping) return;
    await this.#follow(present);
    // The entries present at start are read at once, without waiting out the debounce: those
    // chokidar reported and those it passes over (a symbolic link to nothing), listed here.
    for (const dir of present) {
      try {
        for (const name of await readdir(dir)) if (isNotifierFileName(name)) this.#initial.add(name);
      } catch (error) {
        this.#log.error({ configDir: dir, ...errorFields(error) }, 'cannot read the configuration directory');
      }
    }
    this.#watching = true;
    for (const path of this.#initial) this.#schedule(path);
    this.#initial.clear();
    await this.settled();
    const status = this.status();
    this.#log.info(
      {
        configDirs: this.configDirs,
        valid: status.filter((s) => s.notifiers !== undefined).length,
        registered: status.filter((s) => s.listenerId !== undefined).length,
        connected: this.connected,
      },
      'ready',
    );
    this.#checkTimer = setInterval(() => void this.#check(), this.#checkIntervalMs);
  }

  /** Follows the directories `present` with a new watcher (replacing the one before, if any). */
  async #follow(present: string[]): Promise<void> {
    const dirs = new Set(this.configDirs);
    const watcher = watch(present, {
      depth: 0,
      ignoreInitial: false,
      // Only the directories themselves and the entries named *.json in them (no dotfiles:
      // editors' temporary files). Whatever they are: a FIFO, a socket or a directory named
      // x.json is looked at, named in the log and skipped (loadNotifierFile), not passed over.
      ignored: (path) => !dirs.has(path) && !isNotifierFileName(basename(path)),
    });
    watcher.on('all', (event, path) => {
      const entry = resolve(path);
      // A configuration directory removed: followed again from the rescan that finds it back.
      if (dirs.has(entry) && event === 'unlinkDir') this.#watched.delete(entry);
      // depth 0 keeps chokidar out of subdirectories; this keeps their entries out anyway.
      if (dirs.has(entry) || !dirs.has(dirname(entry))) return;
      if (event === 'add' || event === 'change' || event === 'unlink' || event === 'addDir' || event === 'unlinkDir') this.#changed(basename(entry));
    });
    // A change of mode or owner alone (chmod, chown: it matters to the rule for files with
    // `run`) is no 'change' for chokidar once the file was read (it compares times, and reading
    // moved the access time past the modification time); the directory's raw event says it.
    watcher.on('raw', (event, name, details) => {
      const watched = (details as { watchedPath?: unknown }).watchedPath;
      if (event !== 'change' || typeof watched !== 'string' || !dirs.has(watched)) return;
      if (typeof name === 'string' && !name.includes('/') && isNotifierFileName(name)) this.#changed(name);
    });
    watcher.on('error', (error) => this.#log.error({ configDirs: this.configDirs, ...errorFields(error) }, 'watching the configuration directories failed'));
    // chokidar reads a directory before it watches it: an entry made in between is never
    // reported. 'ready' comes once every watch is in place, so the caller reads the
    // directories after this resolves and misses nothing.
    await new Promise<void>((r) => watcher.once('ready', () => r()));
    if (this.#stopping) {
      await watcher.close();
      return;
    }
    const previous = this.#watcher;
    this.#watcher = watcher;
    this.#watched = new Set(present);
    await previous?.close();
  }

  /** Resolves when every file change seen so far is handled (debounced ones included). */
  async settled(): Promise<void> {
    for (;;) {
      if (this.#debounce.size > 0) {
        await sleep(this.#debounceMs);
        continue;
      }
      const chains = [...this.#files.values()].map((s) => s.chain);
      await Promise.all(chains);
      if (this.#debounce.size === 0 && [...this.#files.values()].every((s, i) => s.chain === chains[i])) return;
    }
  }

  /**
   * The configuration directories that exist now; with `strict`, one that exists but cannot be
   * read throws AgentStartError, else it is logged and left out.
   */
  async #presentDirs(strict: boolean): Promise<string[]> {
    const present: string[] = [];
    for (const dir of this.configDirs) {
      try {
        if (!(await stat(dir)).isDirectory()) throw new Error('not a directory');
        await readdir(dir);
        present.push(dir);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
          this.#log.info({ configDir: dir }, 'this configuration directory does not exist: skipped (looked for again on SIGHUP)');
          continue;
        }
        const message = `cannot read the configuration directory ${dir}: ${(error as Error).message}`;
        if (strict) throw new AgentStartError(message, { cause: error });
        this.#log.error({ configDir: dir, ...errorFields(error) }, 'cannot read this configuration directory; what it held stays registered');
      }
    }
    return present;
  }

  /**
   * Reads every directory again (SIGHUP): every name present, and forgets the ones gone; a
   * directory that appeared since is followed from now on.
   */
  async rescan(): Promise<void> {
    this.#log.info({ configDirs: this.configDirs }, 'reading the configuration directories again');
    const present = await this.#presentDirs(false);
    const names = new Set<string>();
    // A directory made (or made again) since: a new watcher for all, in place before they are read.
    if (this.#watcher !== undefined && !this.#stopping && present.some((dir) => !this.#watched.has(dir))) await this.#follow(present);
    for (const dir of present) {
      try {
        for (const name of await readdir(dir)) if (isNotifierFileName(name)) names.add(name);
      } catch (error) {
        this.#log.error({ configDir: dir, ...errorFields(error) }, 'cannot read this configuration directory; what it held stays registered');
        // Its names are not forgotten: those known stay scheduled below, and read where they can be.
      }
    }
    for (const name of this.#files.keys()) names.add(name);
    for (const name of names) this.#schedule(name);
    await this.settled();
  }

  /** A change of the entry `name` in any of the directories. */
  #changed(path: string): void {
    if (this.#stopping) return;
    if (!this.#watching) {
      this.#initial.add(path);
      return;
    }
    clearTimeout(this.#debounce.get(path));
    // Editors save with a write to a temporary file and a rename, or in several writes: the file
    // is read once it has been quiet for debounceMs, and what is on disk then is what counts.
    this.#debounce.set(
      path,
      setTimeout(() => {
        this.#debounce.delete(path);
        this.#schedule(path);
      }, this.#debounceMs),
    );
  }

  #state(name: string): FileState {
    let state = this.#files.get(name);
    if (state === undefined) {
      state = new FileState(name, join(this.configDir, name), this.#log);
      this.#files.set(name, state);
    }
    return state;
  }

  /** Runs `work` after everything already queued for that file: a file is handled one step at a time. */
  #enqueue(state: FileState, work: () => Promise<void>): Promise<void> {
    const next = state.chain.then(work).catch((error: unknown) => {
      this.#log.error({ file: state.file, ...errorFields(error), stack: (error as Error)?.stack }, 'internal error while handling this file');
    });
    state.chain = next;
    return next;
  }

  #schedule(path: string): void {
    const state = this.#state(path);
    void this.#enqueue(state, () => this.#read(state));
  }

  async #read(state: FileState): Promise<void> {
    if (this.#stopping) return;
    // Which entry of the name counts now: a file added in /etc/usip.d overrides the vendor's of
    // /usr/lib/usip.d, removing it brings that back, a link to /dev/null masks the name.
    const entry = await resolveConfigEntry(this.configDirs, state.name);
    if (entry !== undefined && entry.masked) {
      this.#shadowing(state, entry);
      state.file = entry.path;
      if (state.good !== undefined || state.active !== undefined) {
        this.#log.info({ file: entry.path, listenerId: state.active?.listener.id, masks: entry.overridden }, 'notifier file masked (a symbolic link to /dev/null): its listener goes');
      }
      state.good = undefined;
      state.gone = 'the file was masked (a symbolic link to /dev/null)';
      await this.#reconcile(state);
      return;
    }
    if (entry !== undefined) {
      if (entry.path !== state.file && (state.good !== undefined || state.active !== undefined)) {
        this.#log.info({ file: entry.path, previous: state.file }, 'this name is now read from another directory');
      }
      state.file = entry.path;
      this.#shadowing(state, entry);
    }
    const { file } = state;
    const result = entry === undefined ? ({ kind: 'gone' } as const) : await loadNotifierFile(file);
    this.#metrics?.fileRead(file, result.kind === 'problems' ? 'invalid' : result.kind, result.kind === 'valid' ? result.content : undefined);
    if (result.kind === 'gone') {
      if (state.good !== undefined || state.active !== undefined) {
        this.#log.info({ file, listenerId: state.active?.listener.id }, 'notifier file removed');
      }
      state.good = undefined;
      state.gone = 'the file was removed';
      await this.#reconcile(state);
      return;
    }
    if (result.kind === 'problems') {
      for (const p of result.problems) {
        if (result.stage === 'entry') {
          // Not read at all: a FIFO, a socket, a directory, a file over the size limit...
          this.#log[p.rule === 'read' ? 'error' : 'warn']({ file, rule: p.rule, problem: p.message }, 'skipped: this entry is not read');
        } else if (result.stage === 'permissions') {
          this.#log.error({ file, rule: p.rule, problem: p.message }, 'refusing to run commands from this file');
        } else {
          // error, not warn: a file that does not do what it says is what `journalctl -p err` is for.
          this.#log.error({ file, pointer: p.pointer || '/', rule: p.rule, problem: p.message }, 'invalid notifier file');
        }
      }
      if (state.good !== undefined) {
        this.#log.warn(
          { file, listenerId: state.active?.listener.id, problems: result.problems.length },
          'keeping the last good version of this file',
        );
      } else {
        this.#log.warn({ file, problems: result.problems.length }, 'nothing registered for this file: it has no valid version yet');
      }
      return;
    }
    const content = result.content;
    // Unchanged, and registered as it is (or waiting for the module): nothing to do. A version the
    // module refused is tried again.
    const json = JSON.stringify(content);
    const unchanged = state.good !== undefined && JSON.stringify(state.good) === json;
    if (unchanged && (!this.connected || (state.active !== undefined && JSON.stringify(state.active.content) === json))) {
      this.#log.debug({ file }, 'notifier file unchanged');
      return;
    }
    state.good = content;
    await this.#reconcile(state);
  }

  /** Logs what the entry of a name overrides or masks, when that changed. */
  #shadowing(state: FileState, entry: ConfigEntry): void {
    const now = entry.overridden.length === 0 ? '' : `${entry.masked ? 'masks' : 'overrides'} ${entry.overridden.join(' ')}`;
    if (now === state.shadowing) return;
    state.shadowing = now;
    if (entry.overridden.length === 0) return;
    if (entry.masked) this.#log.info({ file: entry.path, masks: entry.overridden }, 'masked: the files of this name in the directories below are not read');
    else this.#log.info({ file: entry.path, overrides: entry.overridden }, 'this file overrides the files of the same name in the directories below');
  }

  /** Makes the module hold what the file's last good version asks for. */
  async #reconcile(state: FileState): Promise<void> {
    const { file } = state;
    const kernel = this.#kernel;
    const desired = this.#stopping ? undefined : state.good;
    const active = state.active;
    if (desired === undefined) {
      if (active !== undefined) {
        state.active = undefined;
        await this.#close(state, active, this.#stopping ? 'the agent is stopping' : state.gone);
      }
      return;
    }
    if (kernel === undefined) {
      this.#log.info({ file, notifiers: desired.notifiers.length }, 'valid; to be registered when the usip module is loaded');
      return;
    }
    const options = registerOptions(desired);
    const key = JSON.stringify(options);
    if (active !== undefined && active.key === key && active.source === file) {
      if (JSON.stringify(active.content) !== JSON.stringify(desired)) {
        active.content = desired;
        this.#log.info({ file, listenerId: active.listener.id }, 'actions updated; the listener is unchanged');
      }
      return;
    }
    let listener: AgentListener;
    try {
      listener = await kernel.register(options);
    } catch (error) {
      if (familyGone(error)) {
        // Unloaded before the periodic check noticed: the file is registered again when it is back.
        void this.#lost(kernel);
        return;
      }
      const fields: Record<string, unknown> = { file, scope: desired.scope ?? 'mnt-ns', ...errorFields(error) };
      if (isNetlinkError(error) && error.code === 'EPERM' && options.global) {
        fields.hint = 'scope "global" sees the mounts of every mount namespace: it needs CAP_SYS_ADMIN in the initial user namespace (run the agent as root, or use scope "mnt-ns")';
      }
      this.#log.error(fields, "cannot register this file's listener");
      if (active !== undefined) {
        this.#log.warn({ file, listenerId: active.listener.id }, 'keeping the listener of the last version the module accepted');
      }
      return;
    }
    const next: Active = { listener, content: desired, key, source: file, closing: false, pump: Promise.resolve() };
    state.active = next;
    next.pump = this.#pump(state, next);
    this.#log.info(
      {
        file,
        listenerId: listener.id,
        scope: listener.scope,
        notifiers: desired.notifiers.length,
        ...(active !== undefined ? { replaces: active.listener.id } : {}),
      },
      'registered',
    );
    if (active !== undefined) {
      await this.#close(state, active, active.source === file ? 'replaced by the new version of the file' : `replaced by ${file}`);
    }
  }

  async #close(state: FileState, active: Active, reason: string): Promise<void> {
    active.closing = true;
    try {
      await active.listener.close();
    } catch (error) {
      this.#log.warn({ file: state.file, listenerId: active.listener.id, ...errorFields(error) }, 'unregistering the listener failed; its socket is closed');
    }
    await active.pump;
    this.#log.info({ file: state.file, listenerId: active.listener.id, reason }, 'listener closed');
  }

  /** Reads a listener's items until it is closed; acts on each. */
  async #pump(state: FileState, active: Active): Promise<void> {
    let failures = 0;
    for (;;) {
      try {
        for await (const item of active.listener) {
          failures = 0;
          this.#item(state, active, item);
        }
        break;
      } catch (error) {
        if (active.closing) break;
        this.#log.error({ file: state.file, listenerId: active.listener.id, ...errorFields(error) }, 'a malformed event from the module was skipped');
        // Reading goes on where it stopped; errors in a row slow it down rather than flood the log.
        await sleep(Math.min(10 * 2 ** failures++, this.#retryIntervalMs));
      }
    }
    if (!active.closing) {
      // Its socket ended under it: register the file again (after a pause, so that a socket
      // that keeps failing does not make a tight loop).
      this.#log.error(
        { file: state.file, listenerId: active.listener.id, retryIntervalSeconds: this.#retryIntervalMs / 1000 },
        'the listener stopped delivering events; registering the file again',
      );
      await sleep(this.#retryIntervalMs);
      void this.#enqueue(state, async () => {
        if (state.active !== active || this.#stopping) return;
        state.active = undefined;
        await this.#close(state, active, 'it stopped delivering events');
        await this.#reconcile(state);
      });
    }
  }

  #item(state: FileState, active: Active, item: ListenerItem): void {
    this.#metrics?.item(state.file, item);
    // A count of lost events on its own, sent once the module's queue drained.
    if (item.kind === 'missed') {
      if (item.missed > 0) state.missed.add(item.missed);
      return;
    }
    if (item.kind === 'overrun') {
      state.overruns.add(item.lost ?? 0);
      return;
    }
    if (item.kind === 'unknown-event') {
      // A newer module's type, action or state: no notifier of a file (whose names this agent
      // validated) can mean it. Said once per event, and the loop goes on.
      this.#log.warn({ file: state.file, listenerId: active.listener.id, operation: item.operation, type: item.attributes.type, action: item.attributes.action }, 'an event this agent does not know (a newer module?): skipped');
      return;
    }
    if (item.missed > 0) state.missed.add(item.missed);
    if (!state.seen.add(item.seq)) return;
    this.#metrics?.event(state.file, item.type, item.action);
    const event = eventJson(item);
    const { content } = active;
    let matched = 0;
    content.notifiers.forEach((notifier, index) => {
      if (!notifierMatches(notifier, item, index)) return;
      matched++;
      if (notifier.unit !== undefined) {
        // systemctl hands the unit nothing of its own environment: the event goes in a file too.
        this.#runner.submit({
          file: state.file,
          notifier: index,
          argv: [this.#systemctl, 'start', '--no-block', '--', notifier.unit],
          ...(notifier.timeoutSeconds !== undefined ? { timeoutMs: notifier.timeoutSeconds * 1000 } : {}),
          event,
          unit: notifier.unit,
          eventFile: join(this.#unitEventDir, `${notifier.unit}.env`),
        });
      } else if (notifier.run === undefined) {
        this.#metrics?.output(state.file);
        this.#writeOutput(`${toJsonText({ file: state.file, notifier: index, event })}\n`);
      } else {
        this.#runner.submit({
          file: state.file,
          notifier: index,
          argv: notifier.run,
          ...(notifier.timeoutSeconds !== undefined ? { timeoutMs: notifier.timeoutSeconds * 1000 } : {}),
          event,
        });
      }
    });
    if (matched === 0) this.#log.debug({ file: state.file, listenerId: active.listener.id, seq: event.seq }, 'an event matched no notifier of the file');
  }

  #writeOutput(line: string): void {
    try {
      this.#output(line);
    } catch (error) {
      if (!this.#outputFailed) this.#log.error(errorFields(error), 'cannot write events to the output');
      this.#outputFailed = true;
    }
  }

  async #tryConnect(): Promise<boolean> {
    try {
      this.#kernel = await this.#connect();
    } catch (error) {
      this.#lastConnectError = error;
      // Without retry, start() fails with this error, and says so itself.
      if (!this.#retry) return false;
      if (error instanceof UsipModuleNotLoadedError) {
        if (!this.#missingReported) {
          this.#log.error({ ...errorFields(error), retryIntervalSeconds: this.#retryIntervalMs / 1000 }, 'the usip module is not loaded; waiting for it');
        }
        this.#missingReported = true;
      } else {
        this.#log.error(errorFields(error), 'cannot connect to the usip module');
      }
      return false;
    }
    this.#log.info({}, this.#missingReported ? 'the usip module is loaded now: connected' : 'connected to the usip module');
    this.#missingReported = false;
    return true;
  }

  #scheduleConnect(): void {
    if (this.#stopping) return;
    this.#retryTimer = setTimeout(async () => {
      this.#retryTimer = undefined;
      if (this.#stopping) return;
      if (await this.#tryConnect()) {
        for (const state of this.#files.values()) void this.#enqueue(state, () => this.#reconcile(state));
      } else {
        this.#scheduleConnect();
      }
    }, this.#retryIntervalMs);
  }

  /** Checks that the module still holds the agent's listeners. */
  async #check(): Promise<void> {
    const kernel = this.#kernel;
    if (kernel === undefined || this.#checking || this.#stopping) return;
    this.#checking = true;
    this.#checkStartedAt = performance.now();
    try {
      const listeners = [...this.#files.values()].flatMap((s) => (s.active !== undefined ? [s.active.listener] : []));
      if (!(await kernel.alive(listeners))) await this.#lost(kernel);
    } catch (error) {
      this.#log.warn(errorFields(error), 'cannot check the usip module');
    } finally {
      this.#checking = false;
      this.#checkStartedAt = undefined;
    }
  }

  /**
   * How long the module check under way has been running (ms), or 0 when none is: one that does
   * not end means the agent is stuck (the systemd watchdog stops being pinged).
   */
  get checkRunningMs(): number {
    return this.#checkStartedAt === undefined ? 0 : performance.now() - this.#checkStartedAt;
  }

  /** The module went away (unloaded): drop its dead listeners, wait for it to come back. */
  async #lost(kernel: AgentKernel): Promise<void> {
    if (this.#kernel !== kernel || this.#stopping) return;
    this.#kernel = undefined;
    this.#log.error({}, 'the usip module went away (unloaded?): its listeners are gone');
    const closing = [...this.#files.values()].map((state) =>
      this.#enqueue(state, async () => {
        state.seen = new SeqWindow(4096);
        const active = state.active;
        if (active === undefined) return;
        state.active = undefined;
        await this.#close(state, active, 'the usip module went away');
      }),
    );
    await Promise.all(closing);
    await kernel.close();
    if (!this.#retry) {
      this.#onFatal?.(new Error('the usip module went away'));
      return;
    }
    this.#missingReported = false;
    if (!(await this.#tryConnect())) {
      this.#scheduleConnect();
      return;
    }
    for (const state of this.#files.values()) void this.#enqueue(state, () => this.#reconcile(state));
  }

  /**
   * Stops: no more file changes are followed, every listener is closed, then the commands still
   * running get shutdownGraceMs to finish (events still waiting are not acted on: counted and logged).
   */
  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#log.info({}, 'stopping');
    clearTimeout(this.#retryTimer);
    clearInterval(this.#checkTimer);
    for (const timer of this.#debounce.values()) clearTimeout(timer);
    this.#debounce.clear();
    await this.#watcher?.close();
    await Promise.all([...this.#files.values()].map((state) => this.#enqueue(state, () => this.#reconcile(state))));
    await this.#kernel?.close();
    this.#kernel = undefined;
    for (const state of this.#files.values()) {
      state.missed.flush();
      state.overruns.flush();
    }
    await this.#runner.shutdown(this.#shutdownGraceMs);
    this.#log.info({ actions: { ...this.#runner.counters } }, 'stopped');
  }
}
