// Prometheus metrics of usip-agent (`usip-agent run --metrics ADDRESS`): what the agent received,
// what it ran, what it holds, and the usip module's own counters, served as text on GET /metrics
// over TCP or a unix socket. The agent calls the AgentMetrics hooks; everything else is here.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { chmodSync, lstatSync, unlinkSync, type Stats } from 'node:fs';
import { connect as netConnect, isIPv4, isIPv6, type AddressInfo } from 'node:net';
import { dirname, isAbsolute } from 'node:path';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { UsipClient, UsipModuleNotLoadedError, protocol, type ListenerItem, type StatsResult } from '@usip/client';
import type { Logger } from 'pino';
import type { ActionJob, ActionOutcome } from './actions.js';
import { connectLiveModule } from './kernel.js';
import type { NotifierFile } from './load.js';

/**
 * What the agent tells its metrics. Every method is a cheap, synchronous count: the agent calls
 * them on its hot paths. Optional for the agent (AgentOptions.metrics).
 */
export interface AgentMetrics {
  /** Any item a file's listener read: losses it reports (missed, overruns), unknown events. */
  item(file: string, item: ListenerItem): void;
  /** An event a file acts on (once per file, even when two of its listeners overlapped). */
  event(file: string, type: string, action: string): void;
  /** A matching notifier without `run`: the event was written to the agent's stdout. */
  output(file: string): void;
  /** A command started for an event. */
  actionStarted(job: ActionJob): void;
  /** How a command ended. */
  actionEnded(outcome: ActionOutcome): void;
  /** An event not acted on: the file's queue was full. */
  actionDropped(job: ActionJob): void;
  /** A notifier file was read: valid (with its content), invalid or skipped, or gone. */
  fileRead(file: string, state: 'valid' | 'invalid' | 'gone', content?: NotifierFile): void;
}

/** What the metrics read from the agent at scrape time. */
export interface AgentView {
  readonly connected: boolean;
  status(): readonly { listenerId: number | undefined }[];
  readonly actions: { readonly running: number; queued(): number };
}

/**
 * What a scrape learns of the module: not loaded; loaded, with its counters; or loaded, its
 * counters not read this time (an error, or `signal` aborted after the family was found).
 */
export type ModuleStatsReading = { present: false } | { present: true; stats: StatsResult } | { present: true; error: unknown };

/** Reads the module's counters; rejects when even its presence could not be told. */
export type ModuleStatsSource = (signal: AbortSignal) => Promise<ModuleStatsReading>;

/** The real source: a connection of its own per scrape (a reloaded module gets a new family id). */
export const readModuleStats: ModuleStatsSource = async (signal) => {
  let client: UsipClient;
  try {
    // A module being unloaded counts as absent (connectLiveModule says why).
    client = await connectLiveModule({ signal });
  } catch (error) {
    if (error instanceof UsipModuleNotLoadedError) return { present: false };
    throw error;
  }
  try {
    return { present: true, stats: await client.stats({ signal }) };
  } catch (error) {
    // The family exists: the module is there even though its counters could not be read.
    return { present: true, error };
  } finally {
    await client.close();
  }
};

/** The kind of an action, for the `kind` label: `unit` (systemctl starts a unit) or `run` (a command). */
export function actionKind(job: ActionJob): string {
  return job.unit !== undefined ? 'unit' : 'run';
}

type ModuleCounter = Exclude<keyof StatsResult, 'scope'>;

/**
 * The HELP of each of the module's counters, after the spec's docs (attribute set `stats`); the
 * compiler requires one for each counter StatsResult has, so that one the spec adds gets its own.
 */
const MODULE_STATS_HELP = {
  listeners: 'Listeners registered in the usip module, in all namespaces (user scope: the caller\'s)',
  notifiers: 'Notifiers of those listeners',
  queued: 'Events waiting in the module\'s event queue (user scope: for the caller\'s listeners)',
  queueLimit: 'The event queue\'s bound (module parameter event_queue_len; user scope: the share one user may hold, user_queue_len)',
  posted: 'Events accepted since the module was loaded (the last seq)',
  dropped: 'Events dropped because the queue was full, since the module was loaded (user scope: events the caller\'s listeners missed)',
  delivered: 'Event messages sent to listeners\' sockets since the module was loaded',
  undeliverable: 'Event messages a listener\'s socket could not take (receive buffer full) since the module was loaded',
  objects: 'Memory objects the module has allocated and not freed (listeners, notifiers, strings, queued events)',
  mountHooks: 'Kernel functions the module hooks now to see mount table changes (0 while no listener has an mtab notifier)',
  storageHooks: 'Storage hooks armed now (the sys_exit tracepoint for enospc and edquot, the quota warning probe)',
  coalesceSlots: 'enospc/edquot coalescing slots in use',
  watchedMounts: 'Mounts watched by low-space notifiers',
  statfsPending: 'statfs calls that outlived their timeout and still run in the background',
  spaceErrorsUnreported: 'Failures with ENOSPC or EDQUOT, and quota warnings, that the module saw but did not report, since it was loaded',
} as const satisfies Record<ModuleCounter, string>;

/** The module's stats attributes exported as usip_module_<name>: every counter of the spec's set. */
export const MODULE_STATS = protocol.STATS_ATTRIBUTE_SET.attributes
  .filter((a) => a.type !== 'pad' && a.name !== 'scope')
  .map((a) => {
    const key = a.key as ModuleCounter;
    return { key, metric: `usip_module_${a.name.replace(/-/g, '_')}`, spec: a.name, help: MODULE_STATS_HELP[key] };
  });

export interface PrometheusMetricsOptions {
  version: string;
  /** Where the module's counters come from (default: the real module, readModuleStats). */
  moduleStats?: ModuleStatsSource;
  /** Time limit of reading the module's counters at a scrape (default 2000 ms). */
  moduleStatsTimeoutMs?: number;
  /** The Node.js process metrics (CPU, memory, fds, event loop lag, GC), prefixed usip_agent_ (default true). */
  processMetrics?: boolean;
}

// Commands run from milliseconds (a logger call) to minutes (a backup); timeouts go to a day.
const DURATION_BUCKETS = [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800];

/** The agent's metrics in a registry of their own (not prom-client's global one). */
export class PrometheusMetrics implements AgentMetrics {
  readonly registry = new Registry();
  #agent: AgentView | undefined;
  readonly #files = new Map<string, 'valid' | 'invalid'>();
  readonly #moduleStats: ModuleStatsSource;
  readonly #timeoutMs: number;
  /** The module's counters of the scrape under way: every gauge that needs them shares one read. */
  #reading: Promise<ModuleStatsReading | undefined> | undefined;

  readonly #events: Counter<'file' | 'type' | 'action'>;
  readonly #missed: Counter<'file'>;
  readonly #overruns: Counter<'file'>;
  readonly #unknown: Counter<'file'>;
  readonly #started: Counter<'file' | 'kind'>;
  readonly #succeeded: Counter<'file' | 'kind'>;
  readonly #failed: Counter<'file' | 'kind'>;
  readonly #timedOut: Counter<'file' | 'kind'>;
  readonly #dropped: Counter<'file' | 'kind'>;
  readonly #duration: Histogram<'file' | 'kind'>;
  readonly #statsFailures: Counter;

  constructor(options: PrometheusMetricsOptions) {
    this.#moduleStats = options.moduleStats ?? readModuleStats;
    this.#timeoutMs = options.moduleStatsTimeoutMs ?? 2000;
    const registers = [this.registry];
    if (options.processMetrics ?? true) {
      collectDefaultMetrics({ register: this.registry, prefix: 'usip_agent_' });
      // Gauges named like counters (_total is for counters); each is the sum of the gauge of
      // the same name without _total, by type.
      for (const what of ['resources', 'handles', 'requests']) this.registry.removeSingleMetric(`usip_agent_nodejs_active_${what}_total`);
    }

    new Gauge({ name: 'usip_agent_info', help: 'Always 1; the agent version in the label', labelNames: ['version'], registers }).set({ version: options.version }, 1);
    this.#events = new Counter({
      name: 'usip_agent_events_received_total',
      help: "Events a notifier file's listener received and the agent acted on, by file, type and action (spec names)",
      labelNames: ['file', 'type', 'action'],
      registers,
    });
    this.#missed = new Counter({
      name: 'usip_agent_events_missed_total',
      help: "Events lost in the module before they reached a file's listener (the missed counts the module reports)",
      labelNames: ['file'],
      registers,
    });
    this.#overruns = new Counter({
      name: 'usip_agent_listener_overruns_total',
      help: "Times a file's listener socket overflowed (its events were lost; the next event's missed count says how many)",
      labelNames: ['file'],
      registers,
    });
    this.#unknown = new Counter({
      name: 'usip_agent_events_unknown_total',
      help: 'Events of a type, action or state this agent does not know (a newer module), skipped',
      labelNames: ['file'],
      registers,
    });
    const actionCounter = (name: string, help: string) => new Counter({ name, help, labelNames: ['file', 'kind'] as const, registers });
    this.#started = actionCounter('usip_agent_actions_started_total', 'Actions started for events: kind run (a command), unit (systemctl starts a unit), stdout (the event written to the agent\'s stdout)');
    this.#succeeded = actionCounter('usip_agent_actions_succeeded_total', 'Commands that exited with status 0');
    this.#failed = actionCounter(
      'usip_agent_actions_failed_total',
      'Commands that failed: a non-zero exit status, killed by a signal, could not be started, or stopped because the agent stopped',
    );
    this.#timedOut = actionCounter('usip_agent_actions_timed_out_total', 'Commands stopped because they ran past their time limit');
    this.#dropped = actionCounter('usip_agent_actions_dropped_total', "Events not acted on because the file's queue of waiting commands was full");
    this.#duration = new Histogram({
      name: 'usip_agent_action_duration_seconds',
      help: 'Run time of the commands, from start to exit',
      labelNames: ['file', 'kind'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    const agent = () => this.#agent;
    new Gauge({
      name: 'usip_agent_actions_running',
      help: 'Commands running now',
      registers,
      collect() {
        this.set(agent()?.actions.running ?? 0);
      },
    });
    new Gauge({
      name: 'usip_agent_actions_queued',
      help: 'Events waiting for their command, over all files',
      registers,
      collect() {
        this.set(agent()?.actions.queued() ?? 0);
      },
    });
    new Gauge({
      name: 'usip_agent_listeners',
      help: 'Listeners the agent holds registered in the usip module (one per notifier file acting)',
      registers,
      collect() {
        this.set(agent()?.status().filter((s) => s.listenerId !== undefined).length ?? 0);
      },
    });
    const files = this.#files;
    new Gauge({
      name: 'usip_agent_notifier_files',
      help: 'Notifier files by the state of their content as last read: valid, or invalid (with problems, or skipped: not a regular file, too large, unreadable, refused by the permission rule)',
      labelNames: ['state'],
      registers,
      collect() {
        let valid = 0;
        for (const state of files.values()) if (state === 'valid') valid++;
        this.set({ state: 'valid' }, valid);
        this.set({ state: 'invalid' }, files.size - valid);
      },
    });
    new Gauge({
      name: 'usip_agent_module_connected',
      help: "1 while the agent's connection to the usip module is up, else 0",
      registers,
      collect() {
        this.set(agent()?.connected === true ? 1 : 0);
      },
    });
    const read = () => this.#readModule();
    new Gauge({
      name: 'usip_agent_module_present',
      help: 'Whether the usip module is loaded (its generic netlink family exists), checked at each scrape: 1 or 0',
      registers,
      async collect() {
        const result = await read();
        // A read that failed before the family was found says nothing of presence: the agent's
        // own connection tells then.
        this.set((result?.present ?? agent()?.connected) === true ? 1 : 0);
      },
    });
    this.#statsFailures = new Counter({
      name: 'usip_agent_module_stats_failures_total',
      help: "Scrapes at which the module's counters could not be read (an error, or no answer in time)",
      registers,
      // This scrape's failure counts in this scrape.
      async collect() {
        await read();
      },
    });
    for (const { key, metric, spec, help } of MODULE_STATS) {
      new Gauge({
        name: metric,
        help: `${help}. The module's stats counter ${spec} (usip stats), read at each scrape; scope: host or user (the agent's own listeners)`,
        labelNames: ['scope'],
        registers,
        async collect() {
          const result = await read();
          this.reset();
          const stats = result !== undefined && 'stats' in result ? result.stats : undefined;
          const value = stats?.[key];
          if (stats !== undefined && value !== undefined) this.set({ scope: stats.scope }, Number(value));
        },
      });
    }
  }

  /** The agent whose state the gauges show (listeners, connection, commands running). */
  observe(agent: AgentView): void {
    this.#agent = agent;
  }

  /** The module's counters, read once per scrape, within the time limit; undefined when it failed. */
  #readModule(): Promise<ModuleStatsReading | undefined> {
    if (this.#reading !== undefined) return this.#reading;
    const reading = (async () => {
      try {
        const result = await this.#moduleStats(AbortSignal.timeout(this.#timeoutMs));
        if ('error' in result) this.#statsFailures.inc();
        return result;
      } catch {
        this.#statsFailures.inc();
        return undefined;
      }
    })();
    this.#reading = reading;
    // The gauges of one scrape all start collecting in the same tick: the next scrape reads again.
    void reading.finally(() => {
      if (this.#reading === reading) this.#reading = undefined;
    });
    return reading;
  }

  item(file: string, item: ListenerItem): void {
    if (item.kind === 'overrun') this.#overruns.inc({ file });
    else if (item.kind === 'unknown-event') this.#unknown.inc({ file });
    else if (item.missed > 0) this.#missed.inc({ file }, item.missed);
  }

  event(file: string, type: string, action: string): void {
    this.#events.inc({ file, type, action });
  }

  output(file: string): void {
    this.#started.inc({ file, kind: 'stdout' });
  }

  actionStarted(job: ActionJob): void {
    this.#started.inc({ file: job.file, kind: actionKind(job) });
  }

  actionEnded(outcome: ActionOutcome): void {
    const labels = { file: outcome.job.file, kind: actionKind(outcome.job) };
    if (outcome.error === undefined) this.#duration.observe(labels, outcome.durationMs / 1000);
    if (outcome.timedOut) this.#timedOut.inc(labels);
    else if (outcome.error === undefined && !outcome.stopped && outcome.exitCode === 0) this.#succeeded.inc(labels);
    else this.#failed.inc(labels);
  }

  actionDropped(job: ActionJob): void {
    this.#dropped.inc({ file: job.file, kind: actionKind(job) });
  }

  fileRead(file: string, state: 'valid' | 'invalid' | 'gone', content?: NotifierFile): void {
    if (state === 'gone') {
      this.#files.delete(file);
      return;
    }
    this.#files.set(file, state);
    // A file's series start at 0 once it is valid, so that the first event is an increase.
    for (const n of content?.notifiers ?? []) {
      this.#events.inc({ file, type: n.type, action: n.action }, 0);
      const kind = n.run !== undefined ? 'run' : n.unit !== undefined ? 'unit' : n.notify === false ? undefined : 'stdout';
      if (kind === undefined) continue;
      this.#started.inc({ file, kind }, 0);
      if (kind !== 'stdout') {
        for (const c of [this.#succeeded, this.#failed, this.#timedOut, this.#dropped]) c.inc({ file, kind }, 0);
      }
    }
    if (content !== undefined) for (const c of [this.#missed, this.#overruns]) c.inc({ file }, 0);
  }

  /** The text of a scrape. */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }
}

/** Where to serve the metrics: a TCP address, or a unix socket path. */
export type MetricsAddress = { kind: 'tcp'; host: string; port: number; text: string } | { kind: 'unix'; path: string; text: string };

const EXAMPLES = 'HOST:PORT (127.0.0.1:9464, [::1]:9464, localhost:9464) or a unix socket path (/run/usip-agent/metrics.sock, unix:/run/usip-agent/metrics.sock)';
// sun_path is 108 bytes, with its terminating NUL.
const MAX_SOCKET_PATH_BYTES = 107;
const HOSTNAME = /^(?=.{1,253}$)[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/;

/** Parses a --metrics address; throws an Error whose message says what is wrong with it. */
export function parseMetricsAddress(text: string): MetricsAddress {
  if (text.startsWith('unix:') || text.startsWith('/')) {
    const path = text.startsWith('unix:') ? text.slice('unix:'.length) : text;
    if (!isAbsolute(path)) throw new Error(`a unix socket path must be absolute, got "${path}"; expected ${EXAMPLES}`);
    if (path.endsWith('/')) throw new Error(`"${path}" names a directory, not a socket; expected ${EXAMPLES}`);
    if (path.includes('\0')) throw new Error('a unix socket path cannot contain a NUL byte');
    const bytes = Buffer.byteLength(path);
    if (bytes > MAX_SOCKET_PATH_BYTES) throw new Error(`the unix socket path "${path}" is ${bytes} bytes long; at most ${MAX_SOCKET_PATH_BYTES} fit in a socket address`);
    return { kind: 'unix', path, text };
  }
  const colon = text.lastIndexOf(':');
  if (colon < 0) throw new Error(`no port in "${text}"; expected ${EXAMPLES}`);
  let host = text.slice(0, colon);
  const portText = text.slice(colon + 1);
  if (host.startsWith('[') && host.endsWith(']')) {
    host = host.slice(1, -1);
    if (!isIPv6(host)) throw new Error(`"${host}" in brackets is not an IPv6 address; expected ${EXAMPLES}`);
  } else if (host.includes(':')) {
    throw new Error(`an IPv6 address goes in brackets, as in [::1]:9464; expected ${EXAMPLES}`);
  } else if (host === '') {
    throw new Error(`no host in "${text}": say which address to listen on (0.0.0.0:9464 or [::]:9464 for every interface); expected ${EXAMPLES}`);
  } else if (!isIPv4(host) && (/^[\d.]+$/.test(host) || !HOSTNAME.test(host))) {
    throw new Error(`"${host}" is not an IPv4 address or a host name; expected ${EXAMPLES}`);
  }
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) throw new Error(`"${portText}" is not a port number (0 to 65535); expected ${EXAMPLES}`);
  return { kind: 'tcp', host, port: Number(portText), text };
}

/** The metrics server could not start (the address is in use, not available, not permitted...). */
export class MetricsServerError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MetricsServerError';
  }
}

/** A running metrics server. */
export interface MetricsServer {
  /** Where it listens: `127.0.0.1:9464` (the port bound, for port 0), `[::1]:9464`, or the socket's path. */
  readonly address: string;
  close(): Promise<void>;
}

/** Whether something accepts connections on the unix socket at `path`. */
function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = netConnect(path);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * Serves `GET /metrics` (and HEAD) at `address`: 404 for another path, 405 for another method.
 * A unix socket is made mode 0660; a stale one (nobody answers on it) is replaced, one that
 * answers is refused (another agent serves there), and anything else at the path is left alone
 * and refused. The socket is removed when the server closes, and at exit.
 */
export async function serveMetrics(metrics: PrometheusMetrics, address: MetricsAddress, log: Logger): Promise<MetricsServer> {
  const server: Server = createServer((request: IncomingMessage, response: ServerResponse) => {
    void handle(metrics, request, response, log);
  });
  // A scraper that opens connections and sends nothing does not keep them forever.
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  let unixPath: string | undefined;
  if (address.kind === 'unix') {
    // bind() says EACCES for a directory that does not exist: say what it is.
    const directory = lstatOrUndefined(dirname(address.path));
    if (directory === undefined) throw new MetricsServerError(`cannot serve metrics on ${address.path}: the directory ${dirname(address.path)} does not exist`);
    const existing = lstatOrUndefined(address.path);
    if (existing !== undefined) {
      if (!existing.isSocket()) throw new MetricsServerError(`cannot serve metrics on ${address.path}: it exists and is not a socket (${describeKind(existing)}); it is left alone`);
      if (await socketAnswers(address.path)) throw new MetricsServerError(`cannot serve metrics on ${address.path}: another process serves on that socket`);
      // A socket left by an agent that did not exit cleanly: nobody listens on it.
      unlinkSync(address.path);
      log.info({ metrics: address.path }, 'replaced a stale metrics socket');
    }
  }
  await new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      reject(new MetricsServerError(`cannot serve metrics on ${address.text}: ${error.message}`, { cause: error }));
    };
    server.once('error', onError);
    if (address.kind === 'unix') {
      // bind() makes the socket with the umask's mode: never more open than 0660, even for a moment.
      const umask = process.umask(0o117);
      try {
        server.listen(address.path, () => {
          server.off('error', onError);
          resolve();
        });
      } finally {
        process.umask(umask);
      }
    } else {
      server.listen({ host: address.host, port: address.port }, () => {
        server.off('error', onError);
        resolve();
      });
    }
  });
  let bound: string;
  if (address.kind === 'unix') {
    unixPath = address.path;
    chmodSync(address.path, 0o660);
    bound = address.path;
  } else {
    const info = server.address() as AddressInfo;
    bound = info.family === 'IPv6' ? `[${info.address}]:${info.port}` : `${info.address}:${info.port}`;
  }
  const removeSocket = () => {
    if (unixPath === undefined) return;
    const path = unixPath;
    unixPath = undefined;
    try {
      unlinkSync(path);
    } catch {
      // Already gone.
    }
  };
  // Whatever way the agent exits (a second signal exits at once), the socket does not stay behind.
  process.once('exit', removeSocket);
  server.on('error', (error) => log.error({ metrics: bound, error: error.message }, 'the metrics server failed'));
  log.info({ metrics: bound }, `serving metrics on ${address.kind === 'unix' ? `unix:${bound}` : `http://${bound}`}/metrics`);
  return {
    address: bound,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      removeSocket();
      process.off('exit', removeSocket);
    },
  };
}

async function handle(metrics: PrometheusMetrics, request: IncomingMessage, response: ServerResponse, log: Logger): Promise<void> {
  const path = (request.url ?? '/').split('?')[0];
  if (path !== '/metrics') {
    response.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('not found: the metrics are at /metrics\n');
    return;
  }
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.writeHead(405, { 'Content-Type': 'text/plain; charset=utf-8', Allow: 'GET, HEAD' }).end(`method ${request.method} not allowed: GET or HEAD\n`);
    return;
  }
  try {
    const text = await metrics.metrics();
    response.writeHead(200, { 'Content-Type': metrics.registry.contentType, 'Content-Length': Buffer.byteLength(text) });
    response.end(request.method === 'HEAD' ? undefined : text);
  } catch (error) {
    log.error({ error: (error as Error).message }, 'collecting the metrics failed');
    response.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' }).end(`collecting the metrics failed: ${(error as Error).message}\n`);
  }
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new MetricsServerError(`cannot serve metrics on ${path}: ${(error as Error).message}`, { cause: error });
  }
}

function describeKind(stats: Stats): string {
  if (stats.isFile()) return 'a regular file';
  if (stats.isDirectory()) return 'a directory';
  if (stats.isSymbolicLink()) return 'a symbolic link';
  if (stats.isFIFO()) return 'a FIFO';
  return 'a device';
}
