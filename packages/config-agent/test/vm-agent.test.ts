// End to end: usip-agent run against usip.ko in a real kernel. Boots each supported kernel once
// and runs test/guest/agent.sh there: real tmpfs mounts run a notifier file's command, the file is
// edited while the agent runs (valid, invalid, removed), the module is unloaded and loaded again,
// an unprivileged agent is refused its global file, and a group-writable file with a command is
// refused (the files are in /run/usip.d: /tmp is writable by all). The host checks the commands' output,
// the agent's log and stdout, and `usip listeners --json` taken at each stage.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { runInVm, type VmRunResult } from '@usip/vm';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const conf = '/run/usip.d';
const mountsFile = `${conf}/10-mounts.json`;
const globalFile = `${conf}/20-global.json`;
const writableFile = `${conf}/30-writable.json`;

type Json = Record<string, any>;

function read(run: VmRunResult, file: string): string {
  return readFileSync(join(run.resultsDir, file), 'utf8');
}

function jsonLines(text: string): Json[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Json);
}

/** `usip listeners --json` of a stage (it must have succeeded). */
function listeners(run: VmRunResult, stage: string): Json[] {
  assert.is(read(run, `listeners-${stage}.status`).trim(), '0', read(run, `listeners-${stage}.err`));
  return JSON.parse(read(run, `listeners-${stage}.out`)) as Json[];
}

interface Action {
  tag: string;
  type: string;
  action: string;
  path: string;
  mountId: string;
  source: string;
  file: string;
  notifier: string;
  event: Json;
}

function actions(run: VmRunResult): Action[] {
  return read(run, 'actions.log')
    .split('\n')
    .filter((l) => l !== '')
    .map((line) => {
      const [tag, type, action, path, mountId, source, file, notifier, json] = line.split('\t');
      return { tag: tag!, type: type!, action: action!, path: path!, mountId: mountId!, source: source!, file: file!, notifier: notifier!, event: JSON.parse(json!) as Json };
    });
}

// USIP_TEST_KERNELS (e.g. 6.12) limits the kernels, as the other VM suites do.
const kernels = (process.env.USIP_TEST_KERNELS?.trim() || '6.1,6.12').split(',').map((k) => k.trim()).filter((k) => ['6.1', '6.12'].includes(k));
for (const kernel of kernels) {
  const run = await runInVm({
    kernel,
    modules: [join(root, 'packages/kernel-module/build/{kver}/usip.ko')],
    command: ['sh', 'packages/config-agent/test/guest/agent.sh'],
    cwd: root,
    timeoutMs: 240_000,
    stream: true,
  });
  const test = suite(`usip-agent run against the module in the ${kernel} guest (${run.kernel.release})`);
  const log = () => jsonLines(read(run, 'agent.log'));
  const out = () => jsonLines(read(run, 'agent.out'));
  const agentPid = () => Number(read(run, 'agent.pid'));

  test('the guest ran the script to the end without a wait timing out; the module unloaded; the kernel log is clean', () => {
    assert.is(run.timedOut, false, 'timed out');
    assert.equal(run.loadErrors, [], 'usip.ko loaded');
    assert.equal(run.problems, [], 'kernel log problems');
    assert.is(run.exitCode, 0, run.output);
    assert.is(run.unloaded, true, 'usip unloaded');
    assert.is(read(run, 'uname').trim(), run.kernel.release);
    const timeouts = existsSync(join(run.resultsDir, 'timeouts')) ? read(run, 'timeouts') : '';
    assert.is(timeouts, '', `waits that timed out: ${timeouts}\nagent log:\n${read(run, 'agent.log')}`);
  });

  test('at start: the group-writable file with a command is refused, named with the rule; nothing of it runs', () => {
    assert.equal(
      log()
        .filter((r) => r.msg === 'refusing to run commands from this file')
        .map((r) => [r.level, r.file, r.rule, r.problem]),
      [['error', writableFile, 'permissions', 'the file is writable by group (mode 0664)']],
    );
    assert.is(log().filter((r) => r.msg === 'nothing registered for this file: it has no valid version yet' && r.file === writableFile).length, 1);
    assert.not.ok(actions(run).some((a) => a.tag === 'writable'), 'its command never ran');
  });

  test('at start: one listener per file, as the files say (scope, notifiers with their index as cmd)', () => {
    const ready = log().find((r) => r.msg === 'ready');
    assert.equal([ready?.valid, ready?.registered, ready?.connected], [2, 2, true]);
    const mine = listeners(run, '1').filter((l) => l.ownerPid === agentPid());
    assert.is(mine.length, 2, JSON.stringify(mine));
    const ns = mine.find((l) => l.scope === 'mnt-ns')!;
    const global = mine.find((l) => l.scope === 'global')!;
    assert.equal(ns.notifiers, [
      { type: 'mtab', action: 'mount', flags: ['notify'], cmd: 0, pathPrefix: '/tmp/agent' },
      { type: 'mtab', action: 'umount', flags: ['notify'], cmd: 1, pathPrefix: '/tmp/agent' },
    ]);
    assert.equal(global.notifiers, [{ type: 'mtab', action: 'remount', flags: ['notify'], cmd: 0, pathPrefix: '/tmp/agent' }]);
    const registered = log().filter((r) => r.msg === 'registered');
    assert.equal(
      registered.slice(0, 2).map((r) => [r.file, r.scope]).sort(),
      [
        [mountsFile, 'mnt-ns'],
        [globalFile, 'global'],
      ],
    );
    assert.is(registered.find((r) => r.file === mountsFile)!.listenerId, ns.id);
  });

  test('a real mount and umount run the file\'s command, with the event on stdin and in the environment', () => {
    const v1 = actions(run).filter((a) => a.source === 'agent-v1');
    assert.equal(
      v1.map((a) => [a.tag, a.type, a.action, a.path, a.file, a.notifier]),
      [
        ['v1', 'mtab', 'mount', '/tmp/agent/a', mountsFile, '0'],
        ['v1', 'mtab', 'umount', '/tmp/agent/a', mountsFile, '1'],
      ],
    );
    const [mount, umount] = v1;
    const ns = listeners(run, '1').find((l) => l.ownerPid === agentPid() && l.scope === 'mnt-ns')!;
    for (const a of v1) {
      assert.equal([a.event.kind, a.event.type, a.event.action, a.event.path, a.event.source, a.event.fsType], ['mtab-event', 'mtab', a.action, '/tmp/agent/a', 'agent-v1', 'tmpfs']);
      assert.is(String(a.event.mountId), a.mountId, 'USIP_EVENT_MOUNT_ID is the JSON mountId');
      assert.is(a.event.listenerId, ns.id);
      assert.match(a.event.seq, /^\d+$/);
      assert.match(a.event.nsSeq, /^\d+$/);
    }
    assert.is(mount!.mountId, umount!.mountId, 'the same mount');
    assert.ok(BigInt(umount!.event.seq) > BigInt(mount!.event.seq), 'in event order');
    assert.is(BigInt(umount!.event.nsSeq), BigInt(mount!.event.nsSeq) + 1n, 'consecutive changes of the namespace');
    const ran = log().filter((r) => r.msg === 'command ran' && r.file === mountsFile);
    assert.ok(ran.length >= 2, JSON.stringify(ran));
    assert.equal([ran[0]!.exitCode, ran[0]!.command, ran[0]!.event], [0, '/bin/sh', 'mtab/mount']);
  });

  test('a notifier without run (the global file\'s remount) writes one JSON line per event on stdout', () => {
    const r1 = out().filter((l) => l.event.source === 'agent-r1');
    assert.ok(r1.length >= 1, read(run, 'agent.out'));
    for (const line of r1) {
      assert.equal([line.file, line.notifier, line.event.type, line.event.action, line.event.path], [globalFile, 0, 'mtab', 'remount', '/tmp/agent/a']);
    }
    assert.not.ok(actions(run).some((a) => a.source === 'agent-r1' && a.action === 'remount'), 'the mounts file has no remount notifier');
  });

  test('a valid edit: the new listener is registered, then the old one closed; the new version acts', () => {
    const first = listeners(run, '1').find((l) => l.ownerPid === agentPid() && l.scope === 'mnt-ns')!;
    const replaced = log().find((r) => r.msg === 'registered' && r.replaces !== undefined)!;
    assert.ok(replaced, read(run, 'agent.log'));
    assert.equal([replaced.file, replaced.replaces], [mountsFile, first.id]);
    const lines = log();
    const registeredAt = lines.indexOf(replaced);
    const closedAt = lines.findIndex((r) => r.msg === 'listener closed' && r.listenerId === first.id);
    assert.ok(closedAt > registeredAt, 'registered first, closed after');
    const second = listeners(run, '2').filter((l) => l.ownerPid === agentPid() && l.scope === 'mnt-ns');
    assert.equal(second.map((l) => l.id), [replaced.listenerId], 'only the new listener');
    assert.equal(second[0]!.notifiers.map((n: Json) => [n.action, n.flags]), [['mount', ['notify']], ['umount', ['notify', 'kern-log']]]);
    // What the new version asked the module for: a kernel log line for its umount.
    assert.match(run.kernelLog, new RegExp(`usip: listener ${replaced.listenerId}: mtab umount .*agent-v2`));
    const v2 = actions(run).filter((a) => a.source === 'agent-v2');
    assert.equal(v2.map((a) => [a.tag, a.action]), [['v2', 'mount']]);
    const umount = out().filter((l) => l.event.source === 'agent-v2');
    assert.equal(umount.map((l) => [l.file, l.notifier, l.event.action]), [[mountsFile, 1, 'umount']]);
  });

  test('an invalid edit: file, pointer and rule logged; the last good registration stays and acts', () => {
    const problems = log().filter((r) => r.msg === 'invalid notifier file');
    assert.equal(problems.map((p) => [p.file, p.pointer, p.rule, p.level]), [[mountsFile, '/notifiers/0/run', 'minItems', 'error']]);
    const kept = log().find((r) => r.msg === 'keeping the last good version of this file')!;
    const v2 = log().find((r) => r.msg === 'registered' && r.replaces !== undefined)!;
    assert.equal([kept.file, kept.listenerId], [mountsFile, v2.listenerId]);
    const third = listeners(run, '3').filter((l) => l.ownerPid === agentPid() && l.scope === 'mnt-ns');
    assert.equal(third.map((l) => l.id), [v2.listenerId]);
    assert.equal(actions(run).filter((a) => a.source === 'agent-v3').map((a) => [a.tag, a.action]), [['v2', 'mount']]);
    assert.equal(out().filter((l) => l.event.source === 'agent-v3').map((l) => l.event.action), ['umount']);
  });

  test('the file removed: its listener is gone, nothing runs for it; the global file\'s listener stays', () => {
    const closed = log().find((r) => r.msg === 'listener closed' && r.reason === 'the file was removed')!;
    assert.is(closed.file, mountsFile);
    const fourth = listeners(run, '4').filter((l) => l.ownerPid === agentPid());
    assert.equal(fourth.map((l) => l.scope), ['global']);
    assert.equal(actions(run).filter((a) => a.source === 'agent-v4'), []);
    // A remount propagated to other namespaces reaches the global listener once for each.
    const v4 = out().filter((l) => l.event.source === 'agent-v4');
    assert.ok(v4.length >= 1);
    assert.equal(new Set(v4.map((l) => `${l.file} ${l.event.action}`)), new Set([`${globalFile} remount`]));
  });

  test('the module unloaded and loaded again: the agent notices and registers the file again', () => {
    assert.is(read(run, 'rmmod.status').trim(), '0');
    assert.is(read(run, 'insmod.status').trim(), '0');
    const lines = log();
    // The module's exit closes the listeners before it unregisters the family: an agent quick
    // enough registers again on the leaving module and sees it go a second time. What counts is
    // the registration after the last time it went.
    const gone = lines.findLastIndex((r) => r.msg === 'the usip module went away (unloaded?): its listeners are gone');
    assert.ok(gone >= 0, read(run, 'agent.log'));
    const again = lines.slice(gone).find((r) => r.msg === 'registered');
    assert.equal([again?.file, again?.scope], [globalFile, 'global']);
    const fifth = listeners(run, '5').filter((l) => l.ownerPid === agentPid());
    assert.equal(fifth.map((l) => [l.id, l.scope]), [[again!.listenerId, 'global']]);
    const v5 = out().filter((l) => l.event.source === 'agent-v5');
    assert.ok(v5.length >= 1);
    assert.equal(new Set(v5.map((l) => `${l.file} ${l.event.action} ${l.event.listenerId}`)), new Set([`${globalFile} remount ${again!.listenerId}`]));
  });

  test('SIGTERM: every listener closed, exit 0', () => {
    assert.is(read(run, 'agent.status').trim(), '0', read(run, 'agent.log'));
    assert.equal(listeners(run, 'after'), []);
    const lines = log();
    assert.ok(lines.some((r) => r.msg === 'listener closed' && r.reason === 'the agent is stopping' && r.file === globalFile));
    const stopped = lines.at(-1)!;
    assert.is(stopped.msg, 'stopped');
    assert.is(stopped.actions.failed, 0);
    assert.is(stopped.actions.dropped, 0);
    const expected = ['the usip module went away (unloaded?): its listeners are gone', 'the usip module is not loaded; waiting for it'];
    // The refused file's error and the invalid edit's are checked by tests of their own.
    const refusal = (r: Json) => r.msg === 'refusing to run commands from this file' && r.file === writableFile;
    const invalidEdit = (r: Json) => r.msg === 'invalid notifier file' && r.file === mountsFile;
    assert.equal(lines.filter((r) => r.level === 'error' && !expected.includes(r.msg) && !refusal(r) && !invalidEdit(r)), [], 'no other error');
  });

  test('an unprivileged agent: the global file refused with EPERM and named; the other file registered and acting', () => {
    const nobody = jsonLines(read(run, 'nobody.log'));
    const refused = nobody.find((r) => r.msg === "cannot register this file's listener");
    assert.ok(refused, read(run, 'nobody.log'));
    assert.equal([refused!.file, refused!.code, refused!.scope], ['/tmp/usip-nobody.d/20-global.json', 'EPERM', 'global']);
    assert.match(refused!.error, /^usip listener-register: .*\(EPERM\): \S/);
    assert.match(refused!.hint, 'CAP_SYS_ADMIN');
    const ready = nobody.find((r) => r.msg === 'ready');
    assert.equal([ready?.valid, ready?.registered], [2, 1]);
    const theirs = listeners(run, 'nobody').filter((l) => l.ownerPid === Number(read(run, 'nobody.pid')));
    assert.equal(theirs.map((l) => [l.ownerUid, l.scope]), [[65534, 'mnt-ns']]);
    const events = jsonLines(read(run, 'nobody.out'));
    assert.equal(events.map((l) => [l.file, l.event.action, l.event.source]), [['/tmp/usip-nobody.d/10-ns.json', 'mount', 'agent-n1']]);
    assert.is(read(run, 'nobody.status').trim(), '0');
  });

  test('the docs\' example "log every ENOSPC with the process that hit it": dd\'s real ENOSPC on a full tmpfs is one log line naming dd, its pid, the call and the mount', () => {
    const lines = read(run, 'space.log').trim().split('\n');
    assert.is(lines.length, 1, lines.join('\n'));
    const pid = read(run, 'dd.pid').trim();
    assert.match(lines[0]!, new RegExp(` dd pid ${pid} uid 0: write on /tmp/agent/full \\(tmpfs agent-full\\), 1 failure\\(s\\)$`));
    assert.is(read(run, 'storage.status').trim(), '0', read(run, 'storage.log'));
  });

  test('the docs\' example "when /var has less than 10% free, run the cleanup": a tmpfs filled to 95% runs the cleanup once with its mount point; recovering runs nothing', () => {
    const lines = read(run, 'cleanup.log').trim().split('\n');
    assert.is(lines.length, 1, lines.join('\n'));
    const [word, path, state, available] = lines[0]!.split(' ');
    assert.equal([word, path, state], ['cleanup', '/tmp/agent/var', 'low']);
    assert.ok(Number(available) < 0.1 * 4 * 1024 * 1024, `bytes available ${available}`);
    assert.is(read(run, 'low.status').trim(), '0', read(run, 'low.log'));
  });

  test('three directories: the vendor file acts; the admin file of its name replaces its listener and acts; removed, the vendor one is back; masked, no listener', () => {
    const dirs = '/run/usip-dirs';
    const pid = Number(read(run, 'dirs.pid'));
    const mine = (stage: string) => listeners(run, stage).filter((l) => l.ownerPid === pid);
    assert.equal(mine('dirs-vendor').map((l) => l.notifiers.map((n: Json) => n.flags)), [[['notify']]]);
    // The admin's version asks for kern-log too: the listener in the module is the new one.
    assert.equal(mine('dirs-admin').map((l) => l.notifiers.map((n: Json) => n.flags)), [[['notify', 'kern-log']]]);
    assert.equal(mine('dirs-masked'), []);
    const acted = actions(run).filter((a) => a.source.startsWith('agent-d'));
    assert.equal(
      acted.map((a) => [a.source, a.tag, a.file]),
      [
        ['agent-d1', 'vendor', `${dirs}/lib/50-vm.json`],
        ['agent-d2', 'admin', `${dirs}/etc/50-vm.json`],
        ['agent-d3', 'vendor', `${dirs}/lib/50-vm.json`],
      ],
    );
    const dirsLog = jsonLines(read(run, 'dirs.log'));
    assert.equal(
      dirsLog.filter((r) => r.msg === 'listener closed').map((r) => [r.file, r.reason]),
      [
        [`${dirs}/etc/50-vm.json`, `replaced by ${dirs}/etc/50-vm.json`],
        [`${dirs}/lib/50-vm.json`, `replaced by ${dirs}/lib/50-vm.json`],
        [`${dirs}/run/50-vm.json`, 'the file was masked (a symbolic link to /dev/null)'],
      ],
    );
    assert.is(read(run, 'dirs-check.status').trim(), '0', read(run, 'dirs-check.err'));
    assert.is(
      read(run, 'dirs-check.out'),
      `${dirs}/lib/50-vm.json: masked by ${dirs}/run/50-vm.json (a symbolic link to /dev/null)\n` +
        `${dirs}/etc, ${dirs}/run, ${dirs}/lib: 0 valid file(s), 0 notifier(s), 0 problem(s), 0 skipped, 1 masked\n`,
    );
    assert.is(read(run, 'dirs.status').trim(), '0', read(run, 'dirs.log'));
  });

  test.run();
}
