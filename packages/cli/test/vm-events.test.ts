// End to end: usip listen / listeners / inject / stats and the @usip/client listener API against
// usip.ko in a real kernel. Boots each supported kernel once with the module loaded with
// allow_inject=1 and runs test/guest/events.sh there (which also runs guest/client-events.ts).
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { runInVm, type VmRunResult } from '@usip/vm';
import { read, step } from './vm-results.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));


/** A step that must have succeeded, its stdout parsed as JSON. */
function json<T = any>(run: VmRunResult, name: string): T {
  const { status, out, err } = step(run, name);
  assert.is(status, 0, `${name} failed: ${err}`);
  return JSON.parse(out) as T;
}

/** "usip: <operation>: <strerror> (<CODE>): <the module's extack message>". */
function assertRefusal(text: string, operation: string, code: string): void {
  assert.match(text, new RegExp(`${operation}: [^\\n]+ \\(${code}\\): \\S`), `refusal with the module's message: ${text}`);
}

for (const kernel of ['6.1', '6.12']) {
  const run = await runInVm({
    kernel,
    modules: [join(root, 'packages/kernel-module/build/{kver}/usip.ko')],
    params: ['usip.allow_inject=1'],
    command: ['sh', 'packages/cli/test/guest/events.sh'],
    cwd: root,
    timeoutMs: 240_000,
    stream: true,
  });
  const test = suite(`usip listen, listeners, inject and the client API in the ${kernel} guest (${run.kernel.release})`);
  const mntNs = () => Number(read(run, 'mnt-ns').trim());

  test('the guest ran the script to the end, the module unloaded, the kernel log is clean', () => {
    assert.is(run.timedOut, false, 'timed out');
    assert.equal(run.loadErrors, [], 'usip.ko loaded');
    assert.equal(run.problems, [], 'kernel log problems');
    assert.is(run.exitCode, 0, run.output);
    assert.is(run.unloaded, true, 'usip unloaded');
    assert.is(read(run, 'uname').trim(), run.kernel.release);
  });

  test('usip listen --notifier storage:enospc gets the real ENOSPC of dd filling a tmpfs: the call, the process, the file, the mount', () => {
    assert.is(read(run, 'dd.status').trim(), '1', `dd hit ENOSPC: ${read(run, 'dd.err')}`);
    assert.is(read(run, 'real-enospc.status').trim(), '0', read(run, 'real-enospc.err'));
    const event = JSON.parse(read(run, 'real-enospc.out').trim());
    assert.equal(
      [event.kind, event.type, event.action, event.syscall, event.comm, event.pid, event.uid, event.path, event.fsType, event.ino, event.count],
      ['storage-event', 'storage', 'enospc', 'write', 'dd', Number(read(run, 'dd.pid')), 0, '/tmp/full', 'tmpfs', read(run, 'dd.ino').trim(), 1],
    );
  });

  test('usip listeners --json shows the running usip listen: its pid, scope, namespace and notifiers', () => {
    assert.is(read(run, 'listen-ready.status').trim(), '0', `listen did not come up: ${read(run, 'listen.err')}`);
    const listeners = json(run, 'listeners-running');
    assert.is(listeners.length, 1, JSON.stringify(listeners));
    const [l] = listeners;
    assert.is(l.ownerPid, Number(read(run, 'listen.pid')), 'owner pid is the usip listen process');
    assert.is(l.ownerUid, 0);
    assert.is(l.scope, 'mnt-ns');
    assert.is(l.global, false);
    assert.is(l.mntNs, mntNs());
    assert.equal(l.groups, ['mtab']);
    assert.equal(l.notifiers, [
      { type: 'mtab', action: 'mount', flags: ['notify'] },
      { type: 'mtab', action: 'umount', flags: ['notify', 'kern-log'], cmd: 7 },
    ]);
    const table = step(run, 'listeners-table');
    assert.is(table.status, 0, table.err);
    const lines = table.out.trimEnd().split('\n');
    assert.match(lines[0]!, /^ID\s+SCOPE\s+MNT-NS\s+PID\s+UID\s+DELIVERED\s+MISSED\s+NOTIFIERS$/);
    assert.match(
      lines[1]!,
      new RegExp(`^${l.id}\\s+mnt-ns\\s+${l.mntNs}\\s+${l.ownerPid}\\s+0\\s+0\\s+0\\s+mtab/mount:notify mtab/umount:notify,kern-log\\[cmd=7\\]$`),
    );
  });

  test('usip listen --json --count 3 prints the three injected events and exits 0', () => {
    assert.is(read(run, 'listen.status').trim(), '0', read(run, 'listen.err'));
    const injected = ['inject-1', 'inject-2'].map((name) => json(run, name));
    for (const reply of injected) {
      assert.is(reply.queued, 1);
      assert.is(reply.dropped, 0);
    }
    const third = step(run, 'inject-3');
    assert.is(third.status, 0, third.err);
    const seq3 = /^injected mtab\/mount: seq (\d+), queued 1, dropped 0$/.exec(third.out.trim());
    assert.ok(seq3, third.out);
    const lines = read(run, 'listen.out').trimEnd().split('\n');
    assert.is(lines.length, 3, read(run, 'listen.out'));
    const events = lines.map((line) => JSON.parse(line));
    const id = json(run, 'listeners-running')[0].id;
    for (const e of events) {
      assert.is(e.kind, 'mtab-event');
      assert.is(e.listenerId, id);
      assert.is(e.type, 'mtab');
      assert.is(e.missed, 0);
      assert.is(e.mntNs, mntNs());
      assert.is(e.uid, 0);
      assert.ok(e.pid > 0, 'pid of the injecting process');
      assert.match(e.timestamp, /^\d{19}$/);
    }
    assert.equal(
      events.map((e) => [e.seq, e.action, e.path, e.mountId]),
      [
        [injected[0].seq, 'mount', '/mnt/a', 101],
        [injected[1].seq, 'umount', '/mnt/a', 101],
        [seq3![1], 'mount', '/mnt/b c', 102],
      ],
    );
    assert.equal([events[0].cmd, events[1].cmd], [undefined, 7], 'cmd of the matching notifier, when it has one');
    assert.equal([events[0].parentId, events[0].fsType, events[0].source, events[0].dev], [1, 'tmpfs', 'none', 42]);
  });

  test('the kern-log notifier wrote a kernel log line for the umount', () => {
    const id = json(run, 'listeners-running')[0].id;
    assert.match(run.kernelLog, new RegExp(`usip: listener ${id}: mtab umount`));
  });

  test('after --count is reached the listener is gone', () => {
    assert.equal(json(run, 'listeners-after-count'), []);
  });

  test('usip listen prints one line per event for people', () => {
    assert.is(read(run, 'human.status').trim(), '0', read(run, 'human.err'));
    const injected = step(run, 'inject-enospc');
    assert.is(injected.status, 0, injected.err);
    const seq = /^injected storage\/enospc: seq (\d+), queued 1, dropped 0\n$/.exec(injected.out)?.[1];
    assert.ok(seq, injected.out);
    assert.match(
      read(run, 'human.out'),
      new RegExp(
        `^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{9}Z storage/enospc seq=${seq} listener=\\d+ ` +
          `path=/srv dev=8:1 count=2 pid=\\d+ uid=0 mnt-ns=${mntNs()}\n$`,
      ),
    );
  });

  test('a usip listen killed with SIGKILL leaves no listener behind', () => {
    const before = json(run, 'listeners-before-kill');
    assert.is(before.length, 1);
    assert.is(before[0].ownerPid, Number(read(run, 'killed.pid')));
    assert.equal(before[0].notifiers, [{ type: 'mtab', action: 'move', flags: ['notify'] }]);
    assert.is(read(run, 'killed.status').trim(), '137', 'killed by SIGKILL');
    assert.equal(json(run, 'listeners-after-kill'), []);
  });

  test('SIGTERM stops usip listen with exit 0, unregistered', () => {
    assert.is(read(run, 'term.status').trim(), '0', read(run, 'term.err'));
    assert.equal(json(run, 'listeners-after-term'), []);
  });

  test('as an unprivileged user, inject and a global listener are refused with the module message', () => {
    const inject = step(run, 'nobody-inject');
    assert.is(inject.status, 1);
    assert.is(inject.out, '');
    assertRefusal(inject.err, 'usip inject', 'EPERM');
    const global = step(run, 'nobody-global');
    assert.is(global.status, 1);
    assert.is(global.out, '');
    assertRefusal(global.err, 'usip listener-register', 'EPERM');
  });

  test('client API: register, inject, typed events and the multicast copy', () => {
    assert.is(step(run, 'client-root').status, 0, step(run, 'client-root').err);
    const r = JSON.parse(read(run, 'client-root.out'));
    assert.is(r.registration.scope, 'mnt-ns');
    assert.is(r.registration.mntNs, mntNs(), 'mntNs is a number, the namespace inode');
    assert.equal(r.registration.groups.slice().sort(), ['mtab', 'storage']);
    const [mount, enospc] = r.events;
    assert.equal(mount, {
      kind: 'mtab-event',
      listenerId: r.registration.id,
      seq: r.injectMount.seq,
      missed: 0,
      type: 'mtab',
      action: 'mount',
      cmd: 5,
      timestamp: mount.timestamp,
      mntNs: mntNs(),
      pid: mount.pid,
      uid: 0,
      mountId: 7,
      parentId: 1,
      path: '/client/a',
      fsType: 'ext4',
      source: '/dev/vda',
      dev: 0x801,
    });
    assert.match(mount.timestamp, /^\d{19}n$/);
    assert.is(enospc.kind, 'storage-event');
    assert.is(enospc.seq, r.injectEnospc.seq);
    assert.equal([enospc.type, enospc.action, enospc.path, enospc.count], ['storage', 'enospc', '/client/full', 3]);
    // The multicast copy: same event, without the listener id and cmd.
    assert.is(r.watched.kind, 'mtab-event');
    assert.is(r.watched.seq, r.injectMount.seq);
    assert.is(r.watched.path, '/client/a');
    assert.is(r.watched.listenerId, undefined);
    assert.is(r.watched.cmd, undefined);
    assert.is(r.listed.id, r.registration.id);
    assert.is(r.listed.delivered, '2n');
    assert.equal(
      r.listed.notifiers.map((n: { type: string; action: string; cmd?: number; pathPrefix?: string }) => [n.type, n.action, n.cmd, n.pathPrefix]),
      [
        ['mtab', 'mount', 5, undefined],
        ['storage', 'enospc', undefined, '/client'],
      ],
    );
  });

  test('client API: a burst into a tiny receive buffer shows as overrun and missed, and every event is accounted for', () => {
    const { overrun } = JSON.parse(read(run, 'client-root.out'));
    assert.is(overrun.burst.queued + overrun.burst.dropped, 5000, JSON.stringify(overrun.burst));
    assert.ok(overrun.overruns > 0 || overrun.missedSum > 0, `an overrun item or missed > 0: ${JSON.stringify(overrun)}`);
    assert.ok(overrun.received < overrun.posted, `some events were lost: ${JSON.stringify(overrun)}`);
    // Lost in the kernel (queue full, socket buffer full) -> missed; lost in the binding's queue -> overrun.lost.
    assert.is(overrun.received + overrun.missedSum + overrun.lostKnown, overrun.posted, JSON.stringify(overrun));
    assert.is(overrun.listed.missed, `${overrun.missedSum}n`, 'listener-get missed matches the events');
  });

  test('client API: kernel refusals carry the module message; close() unregisters and ends the iteration', () => {
    const r = JSON.parse(read(run, 'client-root.out'));
    assert.is(r.tooManyNotifiers.ok, false);
    assert.is(r.tooManyNotifiers.error.code, 'E2BIG');
    assert.ok(r.tooManyNotifiers.error.extack, 'extack');
    assert.ok(r.tooManyNotifiers.error.message.endsWith(r.tooManyNotifiers.error.extack), r.tooManyNotifiers.error.message);
    assert.is(r.unknownId.error.code, 'ENOENT');
    assert.equal(r.afterClose, { listed: false, iterationDone: true, closed: true });
    assert.is(r.watchDone, true);
    assert.is(r.stats.listeners, 0);
    assert.is(r.stats.notifiers, 0);
  });

  test('client API as uid 65534: watch, global and inject are refused; the per-user limit is EMFILE', () => {
    assert.is(step(run, 'client-nobody').status, 0, step(run, 'client-nobody').err);
    const r = JSON.parse(read(run, 'client-nobody.out'));
    assert.is(r.watch.ok, false);
    assert.is(r.watch.error.code, 'EPERM');
    for (const name of ['global', 'inject', 'second']) {
      assert.is(r[name].ok, false, name);
      assert.ok(r[name].error.extack, `${name} has the module's message`);
      assert.ok(r[name].error.message.includes(r[name].error.extack), `${name}: ${r[name].error.message}`);
    }
    assert.equal([r.global.error.code, r.inject.error.code, r.second.error.code], ['EPERM', 'EPERM', 'EMFILE']);
    assert.is(r.first.ok, true, JSON.stringify(r.first));
    assert.equal(r.listed.map((l: { id: number; ownerUid: number }) => [l.id, l.ownerUid]), [[r.first.value.id, 65534]]);
    assert.equal(r.listedAfterClose, []);
  });

  test('usip stats as root: the whole module (host scope) with every counter, nothing left registered or queued, no live objects', () => {
    const stats = json(run, 'stats');
    assert.is(stats.scope, 'host');
    assert.equal([stats.listeners, stats.notifiers, stats.queued, stats.objects], [0, 0, 0, 0]);
    // The hooks are disarmed a second after the last mtab listener goes: maybe not yet.
    assert.ok(Number.isInteger(stats.mountHooks) && stats.mountHooks >= 0, `mountHooks ${stats.mountHooks}`);
    // The module parameter event_queue_len, as the guest read it.
    assert.is(stats.queueLimit, Number(read(run, 'event_queue_len')));
    assert.match(stats.posted, /^\d+$/);
    assert.match(stats.undeliverable, /^\d+$/);
    const human = step(run, 'stats-human');
    assert.is(human.status, 0);
    assert.match(human.out, /^scope\s+host$/m);
    assert.match(human.out, /^listeners\s+0$/m);
    assert.match(human.out, /^mount hooks armed\s+\d+$/m);
    assert.not.match(human.out, 'undefined');
  });

  test('usip stats as uid 65534: its own counters (user scope), without the host-wide ones', () => {
    const stats = json(run, 'nobody-stats');
    assert.equal(Object.keys(stats), ['scope', 'listeners', 'notifiers', 'queued', 'queueLimit', 'dropped', 'delivered', 'watchedMounts']);
    assert.is(stats.watchedMounts, 0);
    assert.equal([stats.scope, stats.listeners, stats.notifiers, stats.queued], ['user', 0, 0, 0]);
    const human = step(run, 'nobody-stats-human');
    assert.is(human.status, 0, human.err);
    assert.match(human.out, /^scope\s+your own$/m);
    assert.match(human.out, /^listeners\s+0$/m);
    for (const hostWide of ['events posted', 'undeliverable', 'live objects', 'mount hooks armed']) assert.not.match(human.out, hostWide);
    assert.not.match(human.out, 'undefined');
  });

  test.run();
}
