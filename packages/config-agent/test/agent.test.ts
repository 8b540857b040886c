// The agent with real notifier files in a temporary directory, real chokidar, real commands, and
// the registration side of the module in process (fake-kernel.ts). vm-agent.test.ts runs it
// against the real module.
import { execFileSync } from 'node:child_process';
import { chmod, chown, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ListenerItem } from '@usip/client';
import { Agent, AgentStartError, type ActionOutcome, type AgentOptions } from '../src/index.js';
import { FakeModule, eperm } from './fake-kernel.js';
import { memoryLog, sleep, waitFor, withTempDir, type MemoryLog } from './helpers.js';

interface Running extends MemoryLog {
  agent: Agent;
  output: string[];
  outcomes: ActionOutcome[];
}

async function withAgent(module: FakeModule, body: (dir: string, run: () => Promise<Running>) => Promise<void>, options: Partial<AgentOptions> = {}): Promise<void> {
  await withTempDir(async (dir) => {
    let agent: Agent | undefined;
    const run = async (): Promise<Running> => {
      const mem = memoryLog();
      const output: string[] = [];
      const outcomes: ActionOutcome[] = [];
      agent = new Agent({
        configDir: dir,
        connect: module.connect,
        log: mem.log,
        output: (line) => output.push(line),
        onOutcome: (o) => outcomes.push(o),
        debounceMs: 50,
        retryIntervalMs: 100,
        checkIntervalMs: 100,
        ...options,
      });
      await agent.start();
      return { agent, output, outcomes, ...mem };
    };
    try {
      await body(dir, run);
    } finally {
      await agent?.stop();
    }
  });
}

const write = (dir: string, name: string, content: unknown) =>
  writeFile(join(dir, name), typeof content === 'string' ? content : JSON.stringify(content, null, 2));

/** A command that appends "TAG ACTION PATH" to `record`, from its argument and environment. */
function recorder(record: string, tag: string): string[] {
  return ['/bin/sh', '-c', 'printf "%s %s %s\\n" "$1" "$USIP_EVENT_ACTION" "$USIP_EVENT_PATH" >> "$0"', record, tag];
}

async function lines(path: string): Promise<string[]> {
  try {
    return (await readFile(path, 'utf8')).trimEnd().split('\n').filter((l) => l !== '');
  } catch {
    return [];
  }
}

test('start: each valid file gets a listener with its scope and notifiers; an invalid one is named with pointer and rule', async () => {
  const module = new FakeModule();
  await withAgent(module, async (dir, run) => {
    await write(dir, '10-mounts.json', {
      notifiers: [
        { type: 'mtab', action: 'mount', run: ['/bin/true'] },
        { type: 'mtab', action: 'umount', pathPrefix: '/srv' },
      ],
    });
    await write(dir, '20-global.json', { scope: 'global', notifiers: [{ type: 'storage', action: 'enospc', kernLog: true }] });
    await write(dir, '30-bad.json', { notifiers: [{ type: 'mtab', action: 'enospc' }] });
    await write(dir, 'README.txt', 'not a notifier file');
    await write(dir, '.hidden.json', { notifiers: [{ type: 'mtab', action: 'move' }] });
    await mkdir(join(dir, 'sub.json'));
    await write(join(dir, 'sub.json'), 'inner.json', { notifiers: [{ type: 'mtab', action: 'move' }] });
    const { agent, find, records } = await run();

    assert.is(module.listeners.length, 2, module.ops.join(', '));
    const byScope = Object.fromEntries(module.listeners.map((l) => [l.scope, l.options]));
    assert.equal(byScope['mnt-ns'], {
      global: false,
      notifiers: [
        { type: 'mtab', action: 'mount', cmd: 0 },
        { type: 'mtab', action: 'umount', cmd: 1, pathPrefix: '/srv' },
      ],
    });
    assert.equal(byScope.global, { global: true, notifiers: [{ type: 'storage', action: 'enospc', cmd: 0, kernLog: true }] });

    const bad = join(dir, '30-bad.json');
    assert.equal(
      find('invalid notifier file', bad).map((r) => [r.level, r.pointer, r.rule, r.problem]),
      [['error', '/notifiers/0/action', 'enum', 'must be one of "mount", "umount", "move", "remount"']],
    );
    assert.is(find('nothing registered for this file: it has no valid version yet', bad).length, 1);
    const registered = find('registered');
    assert.equal(registered.map((r) => r.file).sort(), [join(dir, '10-mounts.json'), join(dir, '20-global.json')]);
    assert.equal(find('ready').map((r) => [r.valid, r.registered, r.connected]), [[2, 2, true]]);
    assert.not.ok(records.some((r) => String(r.file ?? '').includes('hidden') || String(r.file ?? '').includes('README') || String(r.file ?? '').includes('inner.json')));
    // A directory named *.json is not a notifier file: named, with why, and nothing in it is read.
    assert.equal(
      records.filter((r) => r.file === join(dir, 'sub.json')).map((r) => [r.level, r.msg, r.rule, r.problem]),
      [
        ['warn', 'skipped: this entry is not read', 'type', 'a directory, not a regular file'],
        ['warn', 'nothing registered for this file: it has no valid version yet', undefined, undefined],
      ],
    );
    assert.equal(
      agent.status().map((s) => [s.file, s.notifiers, s.listenerId === undefined ? 'none' : s.scope]),
      [
        [join(dir, '10-mounts.json'), 2, 'mnt-ns'],
        [join(dir, '20-global.json'), 1, 'global'],
      ],
    );
  });
});

test('events: a run notifier runs its command; one without run writes a JSON line; every matching notifier of the file acts', async () => {
  const module = new FakeModule();
  await withAgent(module, async (dir, run) => {
    const record = join(dir, 'record');
    await write(dir, '10-a.json', {
      notifiers: [
        { type: 'mtab', action: 'mount', run: recorder(record, 'all') },
        { type: 'mtab', action: 'mount', pathPrefix: '/srv', run: recorder(record, 'srv') },
        { type: 'mtab', action: 'umount' },
      ],
    });
    const { agent, output, outcomes } = await run();
    module.post({ type: 'mtab', action: 'mount', path: '/srv/x' });
    module.post({ type: 'mtab', action: 'mount', path: '/home' });
    const umountSeq = module.post({ type: 'mtab', action: 'umount', path: '/srv/x', mountId: 12 });
    module.post({ type: 'mtab', action: 'move', path: '/srv/x' });
    await waitFor('three commands', () => outcomes.length === 3);
    await agent.actions.idle();
    // One file's commands run in event order: the /srv/x mount's two, then the /home one.
    assert.equal(await lines(record), ['all mount /srv/x', 'srv mount /srv/x', 'all mount /home']);
    assert.is(output.length, 1);
    assert.ok(output[0]!.endsWith('\n'));
    const line = JSON.parse(output[0]!);
    assert.equal([line.file, line.notifier], [join(dir, '10-a.json'), 2]);
    assert.equal(
      [line.event.kind, line.event.type, line.event.action, line.event.path, line.event.mountId, line.event.seq],
      ['mtab-event', 'mtab', 'umount', '/srv/x', 12, String(umountSeq)],
    );
  });
});

test('a valid edit registers the new version first, then closes the old one; an event both got is acted on once', async () => {
  const module = new FakeModule();
  await withAgent(module, async (dir, run) => {
    const record = join(dir, 'record');
    const file = join(dir, '10-a.json');
    await write(dir, '10-a.json', { notifiers: [{ type: 'mtab', action: 'mount', run: recorder(record, 'v1') }] });
    const { agent, find } = await run();
    let overlapSeq: bigint | undefined;
    // While both listeners are registered, an event reaches both.
    module.onRegister = () => {
      overlapSeq = module.post({ type: 'mtab', action: 'mount', path: '/overlap' });
    };
    await write(dir, '10-a.json', {
      notifiers: [
        { type: 'mtab', action: 'mount', run: recorder(record, 'v2') },
        { type: 'mtab', action: 'umount', run: recorder(record, 'v2') },
      ],
    });
    await waitFor('the old listener to close', () => module.ops.includes('close 1'));
    assert.equal(module.ops, ['register 1', 'register 2', 'close 1']);
    assert.equal(module.listeners[1]!.options.notifiers.map((n) => n.action), ['mount', 'umount']);
    module.onRegister = undefined;
    module.post({ type: 'mtab', action: 'umount', path: '/after' });
    await waitFor('two commands', async () => (await lines(record)).length >= 2);
    await agent.actions.idle();
    const recorded = await lines(record);
    assert.is(recorded.filter((l) => l.endsWith('mount /overlap')).length, 1, `the overlap event once: ${recorded.join('; ')}`);
    assert.equal(recorded.filter((l) => !l.endsWith('/overlap')), ['v2 umount /after']);
    assert.ok(overlapSeq !== undefined);
    assert.equal(find('registered', file).map((r) => [r.listenerId, r.replaces]), [[1, undefined], [2, 1]]);
    assert.equal(find('listener closed', file).map((r) => [r.listenerId, r.reason]), [[1, 'replaced by the new version of the file']]);
  });
});

test('an invalid edit is logged with file, pointer and rule; the last good registration stays and keeps acting', async () => {
  const module = new FakeModule();
  await withAgent(module, async (dir, run) => {
    const record = join(dir, 'record');
    const file = join(dir, '10-a.json');
    await write(dir, '10-a.json', { notifiers: [{ type: 'mtab', action: 'mount', run: recorder(record, 'good') }] });
    const { agent, find } = await run();
    await write(dir, '10-a.json', { notifiers: [{ type: 'mtab', action: 'mount', run: [] }] });
    await waitFor('the problem', () => find('invalid notifier file', file).length === 1);
    assert.equal(find('invalid notifier file', file).map((r) => [r.pointer, r.rule]), [['/notifiers/0/run', 'minItems']]);
    await waitFor('the keeping', () => find('keeping the last good version of this file', file)[0]);
    assert.is(find('keeping the last good version of this file', file)[0]!.listenerId, 1);
    await write(dir, '10-a.json', '{ "notifiers": [ { "type": "mtab", ');
    await waitFor('the syntax error', () => find('invalid notifier file', file).length === 2);
    assert.is(find('invalid notifier file', file)[1]!.rule, 'json');
    assert.equal(module.ops, ['register 1']);
    module.post({ type: 'mtab', action: 'mount', path: '/still' });
    await waitFor('the command of the last good version', async () => (await lines(record)).length === 1);
    assert.equal(await lines(record), ['good mount /still']);
    assert.equal(agent.status().map((s) => [s.notifiers, s.listenerId]), [[1, 1]]);
  });
});

test('a file with run that others could write is refused (file and rule named), its last good version kept; other files and files without run are unaffected', async () => {
  const module = new FakeModule();
  await withAgent(module, async (dir, run) => {
    const record = join(dir, 'record');
    const runFile = join(dir, '10-run.json');
    const writable = join(dir, '20-writable.json');
    const plain = join(dir, '30-plain.json');
    await write(dir, '10-run.json', { notifiers: [{ type: 'mtab', action: 'mount', run: recorder(record, 'v1') }] });
    await write(dir, '20-writable.json', { notifiers: [{ type: 'mtab', action: 'umount', run: recorder(record, 'w') }] });
    await chmod(writable, 0o664);
    // No run: nothing is run as the agent, so neither owner nor mode matter.
    await write(dir, '30-plain.json', { notifiers: [{ type: 'mtab', action: 'move' }] });
    await chown(plain, 65534, 65534);
    await chmod(plain, 0o666);
    const { agent, find, output } = await run();
    assert.equal(
      find('refusing to run commands from this file').map((r) => [r.level, r.file, r.rule, r.problem]),
      [['error', writable, 'permissions', 'the file is writable by group (mode 0664)']],
    );
    assert.is(find('nothing registered for this file: it has no valid version yet', writable).length, 1);
    assert.equal(agent.status().map((s) => s.file), [runFile, plain]);

    // A new version, group-writable (saved by rename): refused; the last good one stays and acts.
    await write(dir, '.10-run.tmp', { notifiers: [{ type: 'mtab', action: 'mount', run: recorder(record, 'v2') }] });
    await chmod(join(dir, '.10-run.tmp'), 0o664);
    await rename(join(dir, '.10-run.tmp'), runFile);
    await waitFor('the refusal', () => find('refusing to run commands from this file', runFile)[0]);
    assert.equal(find('refusing to run commands from this file', runFile).map((r) => r.problem), ['the file is writable by group (mode 0664)']);
    await waitFor('the keeping', () => find('keeping the last good version of this file', runFile)[0]);
    module.post({ type: 'mtab', action: 'mount', path: '/p' });
    await waitFor('the command of the last good version', async () => (await lines(record)).length === 1);
    assert.equal(await lines(record), ['v1 mount /p']);

    // chmod alone is a change: 0644 now, the new version's command is taken.
    await chmod(runFile, 0o644);
    await waitFor('the update', () => find('actions updated; the listener is unchanged', runFile)[0]);
    await chmod(writable, 0o644);
    await waitFor('the registration of the other', () => find('registered', writable)[0]);
    module.post({ type: 'mtab', action: 'mount', path: '/q' });
    module.post({ type: 'mtab', action: 'umount', path: '/q' });
    module.post({ type: 'mtab', action: 'move', path: '/q' });
    await waitFor('both commands', async () => (await lines(record)).length === 3);
    await agent.actions.idle();
    assert.equal((await lines(record)).slice(1).sort(), ['v2 mount /q', 'w umount /q']);
    await waitFor('the plain file\'s events', () => output.length === 1);
    assert.equal(JSON.parse(output[0]!).file, plain);
  });
});

test('a file replaced by a FIFO is named and skipped, its last good registration kept; a FIFO and a directory named *.json made while running are named', async () => {
  const module = new FakeModule();
  await withAgent(module, async (dir, run) => {
    const file = join(dir, '10-a.json');
    await write(dir, '10-a.json', { notifiers: [{ type: 'mtab', action: 'mount' }] });
    await write(dir, '20-b.json', { notifiers: [{ type: 'mtab', action: 'umount' }] });
    const { agent, find, output } = await run();
    const registered = agent.status().map((s) => [s.file, s.listenerId]);
    // Replaced by a FIFO, as a rename over it (reading it would wait for a writer for ever).
    execFileSync('mkfifo', [join(dir, '.10-a.fifo')]);
    await rename(join(dir, '.10-a.fifo'), file);
    await waitFor('the skip', () => find('skipped: this entry is not read', file)[0]);
    assert.equal(find('skipped: this entry is not read', file).map((r) => [r.level, r.rule, r.problem]), [['warn', 'type', 'a FIFO (named pipe), not a regular file']]);
    await waitFor('the keeping', () => find('keeping the last good version of this file', file)[0]);
    assert.equal(module.ops, ['register 1', 'register 2']);
    // New entries that are not regular files, while the agent runs.
    execFileSync('mkfifo', [join(dir, '30-new-fifo.json')]);
    await mkdir(join(dir, '40-new-dir.json'));
    await waitFor('both named', () => find('skipped: this entry is not read').length === 3);
    assert.equal(
      find('skipped: this entry is not read').map((r) => [r.file, r.problem]).slice(1).sort(),
      [
        [join(dir, '30-new-fifo.json'), 'a FIFO (named pipe), not a regular file'],
        [join(dir, '40-new-dir.json'), 'a directory, not a regular file'],
      ],
    );
    // Every file still acts: the kept version of 10-a and 20-b.
    module.post({ type: 'mtab', action: 'mount', path: '/m' });
    module.post({ type: 'mtab', action: 'umount', path: '/m' });
    await waitFor('two events on stdout', () => output.length === 2);
    assert.equal(output.map((l) => JSON.parse(l).file).sort(), [file, join(dir, '20-b.json')]);
    // A regular file again (renamed over the FIFO): read, unchanged, nothing to do.
    await write(dir, '.10-a.tmp', { notifiers: [{ type: 'mtab', action: 'mount' }] });
    await rename(join(dir, '.10-a.tmp'), file);
    await agent.settled();
    await sleep(150);
    await agent.settled();
    assert.equal(agent.status().map((s) => [s.file, s.listenerId]), registered);
    assert.equal(module.ops, ['register 1', 'register 2']);
  });
});

test('a deleted file\'s listener is closed; the file written again is registered again', async () => {
  const module = new FakeModule();
  await withAgent(module, async (dir, run) => {
    const file = join(dir, '10-a.json');
    await write(dir, '10-a.json', { notifiers: [{ type: 'mtab', action: 'mount' }] });
    const { agent, find, output } = await run();
    await rm(file);
    await waitFor('the close', () => module.ops.includes('close 1'));
    assert.equal(agent.status(), []);
    assert.equal(find('listener closed', file).map((r) => r.reason), ['the file was removed']);
    assert.is(find('notifier file removed', file).length, 1);
    module.post({ type: 'mtab', action: 'mount', path: '/gone' });
    await sleep(100);
    assert.equal(output, []);
    await write(dir, '10-a.json', { notifiers: [{ type: 'mtab', action: 'mount' }] });
    await waitFor('the new registration', () => module.ops.includes('register 2'));
    assert.equal(module.open.map((l) => l.id), [2]);
  });
});

test('editors: writes in quick succession and a save by rename give one registration, of the final content', async () => {
  const module = new FakeModule();
  await withAgent(
    module,
    async (dir, run) => {
      const file = join(dir, '10-a.json');
      await write(dir, '10-a.json', { notifiers: [{ type: 'mtab', action: 'mount' }] });
      const { agent, records } = await run();
      // Half-written states in between must not count: they are invalid or superseded.
      for (const action of ['umount', 'move']) {
        await write(dir, '10-a.json', '{"notifiers": [');
        await write(dir, '10-a.json', { notifiers: [{ type: 'mtab', action }] });
      }
      await write(dir, '.10-a.json.swp', 'editor state');
      await write(dir, '10-a.json~', 'backup');
      await write(dir, '10-a.json.tmp', { notifiers: [{ type: 'mtab', action: 'remount' }] });
      await rename(join(dir, '10-a.json.tmp'), file);
      await agent.settled();
      await sleep(200);
      await agent.settled();
      assert.equal(module.ops, ['register 1', 'register 2', 'close 1']);
      assert.equal(module.open[0]!.options.notifiers.map((n) => n.action), ['remount']);
      assert.not.ok(records.some((r) => r.msg === 'invalid notifier file'), 'the half-written states were never read');
      assert.not.ok(records.some((r) => /swp|~|\.tmp/.test(String(r.file ?? ''))));
    },
    { debounceMs: 150 },
  );
});

test('a change of run only keeps the listener and uses the new command', async () => {
  const module = new FakeModule();
  await withAgent(module, async (dir, run) => {
    const record = join(dir, 'record');
    const file = join(dir, '10-a.json');
    await write(dir, '10-a.json', { notifiers: [{ type: 'mtab', action: 'mount', run: recorder(record, 'old') }] });
    const { find } = await run();
    await write(dir, '10-a.json', { notifiers: [{ type: 'mtab', action: 'mount', run: recorder(record, 'new'), timeoutSeconds: 5 }] });
    await waitFor('the update', () => find('actions updated; the listener is unchanged', file).length === 1);
    assert.equal(module.ops, ['register 1']);
    module.post({ type: 'mtab', action: 'mount', path: '/p' });
    await waitFor('the command', async () => (await lines(record)).length === 1);
    assert.equal(await lines(record), ['new mount /p']);
  });
});

test('a refused registration is logged for its file (EPERM: with what global needs); the others are registered; a registered version stays', async () => {
  const module = new FakeModule();
  module.refuse = (options) => (options.global === true ? eperm() : undefined);
  await withAgent(module, async (dir, run) => {
    const ns = join(dir, '10-ns.json');
    const global = join(dir, '20-global.json');
    await write(dir, '10-ns.json', { notifiers: [{ type: 'mtab', action: 'mount' }] });
    await write(dir, '20-global.json', { scope: 'global', notifiers: [{ type: 'mtab', action: 'mount' }] });
    const { agent, find, output } = await run();
    const [refused] = find("cannot register this file's listener", global);
    assert.ok(refused);
    assert.equal([refused!.level, refused!.code, refused!.scope], ['error', 'EPERM', 'global']);
    assert.match(String(refused!.error), 'Operation not permitted');
    assert.match(String(refused!.hint), 'CAP_SYS_ADMIN');
    assert.equal(agent.status().map((s) => [s.file, s.listenerId]), [[ns, 1], [global, undefined]]);

    // The namespace file turns global: refused too, and its namespace listener stays.
    await write(dir, '10-ns.json', { scope: 'global', notifiers: [{ type: 'mtab', action: 'mount' }] });
    await waitFor('the second refusal', () => find("cannot register this file's listener", ns).length === 1);
    await waitFor('the keeping', () => find('keeping the listener of the last version the module accepted', ns).length === 1);
    module.post({ type: 'mtab', action: 'mount', path: '/x' });
    await waitFor('the event of the kept listener', () => output.length === 1);

    // Allowed now (say the agent got the capability): SIGHUP's rescan registers both.
    module.refuse = undefined;
    await agent.rescan();
    assert.equal(agent.status().map((s) => [s.file, s.scope]), [[ns, 'global'], [global, 'global']]);
    assert.ok(module.ops.includes('close 1'));
  });
});

test('module not loaded at start: said once, with how to load it; retried; everything registered once it is there', async () => {
  const module = new FakeModule();
  module.loaded = false;
  await withAgent(module, async (dir, run) => {
    await write(dir, '10-a.json', { notifiers: [{ type: 'mtab', action: 'mount' }] });
    const { agent, find } = await run();
    assert.is(agent.connected, false);
    assert.equal(find('ready').map((r) => [r.valid, r.registered, r.connected]), [[1, 0, false]]);
    const missing = find('the usip module is not loaded; waiting for it');
    assert.is(missing.length, 1);
    assert.equal([missing[0]!.code, missing[0]!.retryIntervalSeconds], ['USIP_MODULE_NOT_LOADED', 0.1]);
    assert.match(String(missing[0]!.error), 'modprobe usip');
    assert.is(find('valid; to be registered when the usip module is loaded', join(dir, '10-a.json')).length, 1);
    await sleep(350);
    assert.is(find('the usip module is not loaded; waiting for it').length, 1, 'said once, not at every attempt');
    module.load();
    await waitFor('the registration', () => module.ops.includes('register 1'));
    assert.is(find('the usip module is loaded now: connected').length, 1);
    assert.is(agent.connected, true);
  });
});

test('module unloaded and loaded again: the dead listeners are dropped and every file registered again', async () => {
  const module = new FakeModule();
  await withAgent(module, async (dir, run) => {
    await write(dir, '10-a.json', { notifiers: [{ type: 'mtab', action: 'mount' }] });
    await write(dir, '20-b.json', { notifiers: [{ type: 'mtab', action: 'umount' }] });
    const { agent, find, output } = await run();
    assert.equal(module.ops.filter((o) => o.startsWith('register')).length, 2);
    const before = module.post({ type: 'mtab', action: 'umount', path: '/before' });
    await waitFor('an event before the unload', () => output.length === 1);
    module.unload();
    await waitFor('the loss to be noticed', () => find('the usip module went away (unloaded?): its listeners are gone').length === 1);
    await waitFor('the dead listeners closed', () => find('listener closed').length === 2);
    assert.equal(find('listener closed').map((r) => r.reason), ['the usip module went away', 'the usip module went away']);
    await waitFor('the wait', () => find('the usip module is not loaded; waiting for it').length === 1);
    assert.is(agent.connected, false);
    module.load();
    await waitFor('both registered again', () => module.open.length === 2);
    assert.equal(module.open.map((l) => l.generation), [2, 2]);
    // The module loaded again numbers its events from the start: the same seq is a new event.
    assert.is(module.post({ type: 'mtab', action: 'umount', path: '/back' }), before);
    await waitFor('an event after the reload', () => output.length === 2);
    assert.match(output[1]!, '"path":"/back"');
  });
});

test('a registration that finds the module gone (before the check did) waits for it, and is no refusal', async () => {
  const module = new FakeModule();
  await withAgent(
    module,
    async (dir, run) => {
      const { find } = await run();
      module.unload();
      await write(dir, '10-a.json', { notifiers: [{ type: 'mtab', action: 'mount' }] });
      await waitFor('the loss', () => find('the usip module went away (unloaded?): its listeners are gone').length === 1);
      assert.equal(find("cannot register this file's listener"), []);
      module.load();
      await waitFor('the registration', () => module.open.length === 1);
      assert.equal(find('registered').map((r) => r.file), [join(dir, '10-a.json')]);
    },
    { checkIntervalMs: 60_000 },
  );
});

test('with retry off, a module that goes away is fatal', async () => {
  const module = new FakeModule();
  const fatal: Error[] = [];
  await withAgent(
    module,
    async (dir, run) => {
      await write(dir, '10-a.json', { notifiers: [{ type: 'mtab', action: 'mount' }] });
      const { find } = await run();
      module.unload();
      await waitFor('onFatal', () => fatal.length === 1);
      assert.is(fatal[0]!.message, 'the usip module went away');
      assert.is(find('the usip module is not loaded; waiting for it').length, 0, 'no waiting');
    },
    { retry: false, onFatal: (error) => fatal.push(error) },
  );
});

test('a listener whose stream ends by itself is replaced by a new registration of its file', async () => {
  const module = new FakeModule();
  await withAgent(module, async (dir, run) => {
    const file = join(dir, '10-a.json');
    await write(dir, '10-a.json', { notifiers: [{ type: 'mtab', action: 'mount' }] });
    const { find, output } = await run();
    module.listeners[0]!.end();
    await waitFor('the new registration', () => module.ops.includes('register 2'));
    assert.equal(find('the listener stopped delivering events; registering the file again', file).map((r) => r.listenerId), [1]);
    assert.equal(find('listener closed', file).map((r) => r.reason), ['it stopped delivering events']);
    module.post({ type: 'mtab', action: 'mount', path: '/again' });
    await waitFor('an event on the new listener', () => output.length === 1);
  });
});

test('with retry off, start fails when the module is not loaded, with the client\'s message', async () => {
  const module = new FakeModule();
  module.loaded = false;
  await withTempDir(async (dir) => {
    const { log } = memoryLog();
    const agent = new Agent({ configDir: dir, connect: module.connect, log, retry: false });
    try {
      await agent.start();
      assert.unreachable('start should fail');
    } catch (error) {
      assert.instance(error, AgentStartError);
      assert.match((error as Error).message, /^The usip kernel module is not loaded.*modprobe usip/);
    } finally {
      await agent.stop();
    }
  });
});

test('a directory that does not exist is an error naming it', async () => {
  const { log } = memoryLog();
  const agent = new Agent({ configDir: '/nonexistent/usip.d', connect: new FakeModule().connect, log });
  try {
    await agent.start();
    assert.unreachable('start should fail');
  } catch (error) {
    assert.instance(error, AgentStartError);
    assert.match((error as Error).message, 'cannot read the configuration directory /nonexistent/usip.d: ENOENT');
  }
});

test('losses: socket overruns and missed events are logged with the file and counted', async () => {
  const module = new FakeModule();
  await withAgent(module, async (dir, run) => {
    const file = join(dir, '10-a.json');
    await write(dir, '10-a.json', { notifiers: [{ type: 'mtab', action: 'mount' }] });
    const { find, output } = await run();
    module.open[0]!.deliver({ kind: 'overrun' });
    module.post({ type: 'mtab', action: 'mount', path: '/a', missed: 7 });
    module.post({ type: 'mtab', action: 'mount', path: '/b', missed: 3 });
    await waitFor('both events', () => output.length === 2);
    // The module's report of losses with no event after them.
    module.open[0]!.deliver({ kind: 'missed', missed: 4 } as unknown as ListenerItem);
    const [overrun] = find(/socket overflowed/, file);
    assert.equal([overrun!.level, overrun!.overruns, overrun!.listenerId], ['warn', 1, 1]);
    // The first loss is logged at once, the rest in a summary a second later.
    await waitFor('the summary', () => find(/were lost in the module/, file).length === 2, 3000);
    assert.equal(find(/were lost in the module/, file).map((r) => [r.missed, r.reports, r.missedTotal]), [[7, 1, 7], [7, 2, 14]]);
    assert.is(output.length, 2, 'a missed report is no event');
  });
});

test('stop closes every listener, then the commands', async () => {
  const module = new FakeModule();
  await withTempDir(async (dir) => {
    await write(dir, '10-a.json', { notifiers: [{ type: 'mtab', action: 'mount', run: ['/bin/sleep', '0.2'] }] });
    await write(dir, '20-b.json', { notifiers: [{ type: 'mtab', action: 'umount' }] });
    const { log, find } = memoryLog();
    const outcomes: ActionOutcome[] = [];
    const agent = new Agent({ configDir: dir, connect: module.connect, log, onOutcome: (o) => outcomes.push(o), output: () => undefined });
    await agent.start();
    module.post({ type: 'mtab', action: 'mount', path: '/a' });
    await waitFor('the command to start', () => agent.actions.running === 1);
    await agent.stop();
    assert.equal(module.open, []);
    assert.equal(find('listener closed').map((r) => r.reason), ['the agent is stopping', 'the agent is stopping']);
    assert.equal(outcomes.map((o) => o.exitCode), [0], 'the running command finished within the grace');
    const stopped = find('stopped');
    assert.is(stopped.length, 1);
    assert.equal((stopped[0]!.actions as Record<string, number>).succeeded, 1);
  });
});

test.run();
