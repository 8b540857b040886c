// The registration side of the usip module, in process, for the host tests: listeners are
// registered, refused, closed, lose the module; events are posted to the listeners whose
// notifiers match them (the module's matching rules: type, action, whole-component path prefix).
// Everything else the agent does (files, chokidar, commands) is real in those tests; the real
// module is exercised by vm-agent.test.ts.
import {
  NetlinkError,
  UsipModuleNotLoadedError,
  actionFromName,
  eventItem,
  protocol,
  type ListenerEvent,
  type ListenerItem,
  type NotifierOptions,
  type RegisterOptions,
} from '@usip/client';
import type { AgentKernel, AgentListener, KernelConnector } from '../src/index.js';

export class FakeListener implements AgentListener {
  readonly #items: ListenerItem[] = [];
  #waiters: ((result: IteratorResult<ListenerItem>) => void)[] = [];
  closed = false;
  /** The module was unloaded: nothing arrives any more, but the socket stays open. */
  dead = false;
  /** The stream ended without a close() (end()). */
  ended = false;

  constructor(
    readonly id: number,
    readonly portId: number,
    readonly scope: string,
    readonly options: RegisterOptions,
    readonly generation: number,
    readonly ops: string[],
  ) {}

  deliver(item: ListenerItem): void {
    if (this.closed || this.dead || this.ended) return;
    const waiter = this.#waiters.shift();
    if (waiter !== undefined) waiter({ value: item, done: false });
    else this.#items.push(item);
  }

  [Symbol.asyncIterator](): AsyncIterator<ListenerItem> {
    return {
      next: () => {
        const item = this.#items.shift();
        if (item !== undefined) return Promise.resolve({ value: item, done: false });
        if (this.closed || this.ended) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => this.#waiters.push(resolve));
      },
    };
  }

  /** Ends the stream without a close(), as a socket that fails would. */
  end(): void {
    this.ended = true;
    this.#items.length = 0;
    for (const waiter of this.#waiters) waiter({ value: undefined, done: true });
    this.#waiters = [];
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.ops.push(`close ${this.id}`);
    for (const waiter of this.#waiters) waiter({ value: undefined, done: true });
    this.#waiters = [];
  }
}

export interface PostOptions {
  type: 'mtab' | 'storage';
  action: string;
  path?: string;
  missed?: number;
  mountId?: number;
}

function within(path: string, prefix: string): boolean {
  const p = prefix.length > 1 ? prefix.replace(/\/+$/, '') : prefix;
  return path === p || path.startsWith(p === '/' ? '/' : `${p}/`);
}

function matches(n: NotifierOptions, type: string, action: string, path: string | undefined): boolean {
  if (n.notify === false || n.type !== type || n.action !== action) return false;
  return n.pathPrefix === undefined || (path !== undefined && within(path, n.pathPrefix));
}

export class FakeModule {
  loaded = true;
  generation = 1;
  /** What happened, in order: `register N`, `close N`, `refused`. */
  readonly ops: string[] = [];
  readonly listeners: FakeListener[] = [];
  /** Return an error to refuse a registration. */
  refuse: ((options: RegisterOptions) => Error | undefined) | undefined;
  /** Called when a listener is registered, before register() resolves. */
  onRegister: ((listener: FakeListener) => void) | undefined;
  #nextId = 1;
  #seq = 100n;

  get open(): FakeListener[] {
    return this.listeners.filter((l) => !l.closed && !l.dead && !l.ended);
  }

  readonly connect: KernelConnector = async () => {
    if (!this.loaded) throw new UsipModuleNotLoadedError();
    const generation = this.generation;
    const kernel: AgentKernel = {
      register: async (options) => {
        if (!this.loaded || generation !== this.generation) {
          throw new NetlinkError('usip listener-register: No such file or directory (ENOENT)', { errno: 2, code: 'ENOENT', operation: 'usip listener-register', dumpInterrupted: false });
        }
        const refusal = this.refuse?.(options);
        if (refusal !== undefined) {
          this.ops.push('refused');
          throw refusal;
        }
        const id = this.#nextId++;
        const listener = new FakeListener(id, 1000 + id, options.global === true ? 'global' : 'mnt-ns', options, generation, this.ops);
        this.listeners.push(listener);
        this.ops.push(`register ${id}`);
        this.onRegister?.(listener);
        return listener;
      },
      alive: async (listeners) =>
        this.loaded && generation === this.generation && listeners.every((l) => (l as FakeListener).generation === this.generation && !(l as FakeListener).closed),
      close: async () => undefined,
    };
    return kernel;
  };

  /** Posts an event: the module's next seq, to every open listener with a matching notifier. */
  post(options: PostOptions): bigint {
    const seq = this.#seq++;
    const action = actionFromName(options.action)!;
    for (const listener of this.open) {
      const first = listener.options.notifiers.find((n) => matches(n, options.type, action, options.path));
      if (first === undefined) continue;
      listener.deliver(this.event(listener, seq, options, first.cmd));
    }
    return seq;
  }

  /** The event as the module would send it, decoded by the client's own eventItem(). */
  event(listener: FakeListener, seq: bigint, options: PostOptions, cmd: number | undefined): ListenerEvent {
    const action = actionFromName(options.action)!;
    const lowSpace = action === 'low-space';
    const item = eventItem(
      options.type === 'mtab' ? 'mtab-event' : 'storage-event',
      {
        listenerId: listener.id,
        seq,
        missed: options.missed ?? 0,
        type: protocol.EVENT_TYPE_VALUES[options.type],
        action: protocol.ACTION_VALUES[action],
        ...(cmd !== undefined ? { cmd } : {}),
        timestamp: 1_767_225_600_123_456_789n,
        mntNs: 4026531841,
        // A low-space check is no process's doing: no pid or uid, a space-state instead.
        ...(lowSpace ? { spaceState: protocol.SpaceState.low } : { pid: 4242, uid: 0 }),
        mountId: options.mountId ?? 77,
        ...(options.type === 'mtab' ? { parentId: 1 } : { count: 1 }),
        ...(options.path !== undefined ? { path: options.path } : {}),
        fsType: 'tmpfs',
        source: 'none',
        dev: 0x2a,
      },
      true,
    );
    if (item.kind === 'unknown-event') throw new Error(`fake kernel: cannot make a ${options.type}/${options.action} event`);
    return item;
  }

  /** Unloads the module: its listeners are gone (their sockets stay open, silent). */
  unload(): void {
    this.loaded = false;
    // A module loaded again numbers its events from the start.
    this.#seq = 100n;
    this.generation++;
    for (const l of this.listeners) l.dead = true;
  }

  load(): void {
    this.loaded = true;
  }
}

export function eperm(): NetlinkError {
  return new NetlinkError(
    'usip listener-register: Operation not permitted (EPERM): a global listener needs CAP_SYS_ADMIN in the initial user namespace',
    { errno: 1, code: 'EPERM', operation: 'usip listener-register', dumpInterrupted: false, extack: 'a global listener needs CAP_SYS_ADMIN in the initial user namespace' },
  );
}
