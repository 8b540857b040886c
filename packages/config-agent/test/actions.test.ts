// The command runner with real child processes: what a command gets (stdin, environment), what is
// logged of it, and the bounds: time limit, concurrency, per-file order and queue, shutdown.
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ActionRunner, type ActionJob, type ActionOutcome, type EventJson } from '../src/index.js';
import { memoryLog, waitFor, withTempDir } from './helpers.js';

const event: EventJson = {
  kind: 'mtab-event',
  listenerId: 3,
  seq: '812',
  missed: 0,
  type: 'mtab',
  action: 'mount',
  cmd: 1,
  timestamp: '1767225600123456789',
  mntNs: '4026531841',
  pid: 4242,
  uid: 0,
  mountId: '77',
  parentId: '1',
  path: '/mnt/with space',
  fsType: 'tmpfs',
  source: 'none',
  dev: 0x12a, // 1:42
  nsSeq: '9',
};

function job(file: string, argv: string[], extra: Partial<ActionJob> = {}): ActionJob {
  return { file, notifier: 0, argv, event, ...extra };
}

/** Is the process gone (or a zombie nobody waits for yet)? */
async function gone(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

test('a command gets the event as one JSON line on stdin and as USIP_EVENT_* variables, and its success is logged', async () => {
  await withTempDir(async (dir) => {
    const { log, find } = memoryLog();
    const outcomes: ActionOutcome[] = [];
    const runner = new ActionRunner(log, {}, (o) => outcomes.push(o));
    const out = join(dir, 'out');
    const submitted = runner.submit(
      job('/etc/usip.d/10-a.json', ['/bin/sh', '-c', 'cat > "$0.stdin"; env > "$0.env"; pwd > "$0.cwd"; echo done', out], { notifier: 2 }),
    );
    assert.is(submitted, true);
    await runner.idle();
    assert.equal(JSON.parse(await readFile(`${out}.stdin`, 'utf8')), event);
    assert.ok((await readFile(`${out}.stdin`, 'utf8')).endsWith('}\n'), 'one line');
    const env = Object.fromEntries(
      (await readFile(`${out}.env`, 'utf8'))
        .trimEnd()
        .split('\n')
        .filter((l) => l.startsWith('USIP_'))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    assert.equal(env, {
      USIP_EVENT_KIND: 'mtab-event',
      USIP_EVENT_LISTENER_ID: '3',
      USIP_EVENT_SEQ: '812',
      USIP_EVENT_MISSED: '0',
      USIP_EVENT_TYPE: 'mtab',
      USIP_EVENT_ACTION: 'mount',
      USIP_EVENT_CMD: '1',
      USIP_EVENT_TIMESTAMP: '1767225600123456789',
      USIP_EVENT_MNT_NS: '4026531841',
      USIP_EVENT_PID: '4242',
      USIP_EVENT_UID: '0',
      USIP_EVENT_MOUNT_ID: '77',
      USIP_EVENT_PARENT_ID: '1',
      USIP_EVENT_PATH: '/mnt/with space',
      USIP_EVENT_FS_TYPE: 'tmpfs',
      USIP_EVENT_SOURCE: 'none',
      USIP_EVENT_DEV: '1:42',
      USIP_EVENT_NS_SEQ: '9',
      USIP_NOTIFIER_FILE: '/etc/usip.d/10-a.json',
      USIP_NOTIFIER_INDEX: '2',
    });
    assert.ok((await readFile(`${out}.env`, 'utf8')).includes('\nPATH='), 'the agent\'s own environment is passed on');
    assert.is((await readFile(`${out}.cwd`, 'utf8')).trim(), '/');
    assert.is(outcomes.length, 1);
    assert.is(outcomes[0]!.exitCode, 0);
    const [ran] = find('command ran', '/etc/usip.d/10-a.json');
    assert.ok(ran, 'logged');
    assert.equal([ran!.notifier, ran!.event, ran!.seq, ran!.command, ran!.exitCode, ran!.stdout], [2, 'mtab/mount', '812', '/bin/sh', 0, 'done']);
    assert.is(ran!.pid, outcomes[0]!.pid);
    assert.equal(runner.counters, { started: 1, succeeded: 1, failed: 0, timedOut: 0, dropped: 0, discarded: 0 });
  });
});

test('a failing command is logged with its status and output, bounded; a command that ignores stdin is fine', async () => {
  const { log, find } = memoryLog();
  const runner = new ActionRunner(log, { outputLimit: 16 });
  runner.submit(job('/f.json', ['/bin/sh', '-c', 'echo "to stdout"; printf "%040d" 0 >&2; exit 3']));
  await runner.idle();
  const [failed] = find('the command failed (exit status 3)', '/f.json');
  assert.ok(failed, JSON.stringify(find(/./)));
  assert.is(failed!.level, 'warn');
  assert.is(failed!.exitCode, 3);
  assert.is(failed!.stdout, 'to stdout');
  assert.is(failed!.stderr, '0'.repeat(16));
  assert.is(failed!.stderrTruncated, 24);
  assert.is(runner.counters.failed, 1);
});

test('a command that cannot be started is logged, and the next one of the file still runs', async () => {
  await withTempDir(async (dir) => {
    const { log, find } = memoryLog();
    const runner = new ActionRunner(log);
    assert.is(runner.submit(job('/f.json', ['/nonexistent/usip-action'])), true);
    runner.submit(job('/f.json', ['/bin/sh', '-c', 'touch "$0"', join(dir, 'second')]));
    await runner.idle();
    const [error] = find('the command could not be started', '/f.json');
    assert.ok(error);
    assert.equal([error!.level, error!.code, error!.command], ['error', 'ENOENT', '/nonexistent/usip-action']);
    assert.match(String(error!.error), /ENOENT/);
    assert.ok((await readdir(dir)).includes('second'));
  });
});

test('a command past its time limit gets SIGTERM; one that ignores it, SIGKILL after the grace, with its whole process group', async () => {
  await withTempDir(async (dir) => {
    const { log, find } = memoryLog();
    const outcomes: ActionOutcome[] = [];
    const runner = new ActionRunner(log, { killGraceMs: 300 }, (o) => outcomes.push(o));
    runner.submit(job('/a.json', ['/bin/sleep', '30'], { timeoutMs: 200 }));
    const pidFile = join(dir, 'grandchild');
    runner.submit(job('/b.json', ['/bin/sh', '-c', 'trap "" TERM; /bin/sleep 30 & echo $! > "$0"; wait', pidFile], { timeoutMs: 200 }));
    const started = Date.now();
    await runner.idle();
    assert.ok(Date.now() - started < 3000, `took ${Date.now() - started} ms`);
    const byFile = new Map(outcomes.map((o) => [o.job.file, o]));
    assert.equal([byFile.get('/a.json')!.timedOut, byFile.get('/a.json')!.signal], [true, 'SIGTERM']);
    assert.equal([byFile.get('/b.json')!.timedOut, byFile.get('/b.json')!.signal], [true, 'SIGKILL']);
    assert.ok(byFile.get('/b.json')!.durationMs >= 450, `SIGKILL came after the grace: ${byFile.get('/b.json')!.durationMs} ms`);
    const grandchild = Number(await readFile(pidFile, 'utf8'));
    await waitFor('the grandchild to be killed with its group', () => gone(grandchild), 2000);
    const timedOut = find('the command ran past its time limit and was stopped');
    assert.equal(timedOut.map((r) => [r.file, r.timeoutMs]).sort(), [['/a.json', 200], ['/b.json', 200]]);
    assert.is(runner.counters.timedOut, 2);
  });
});

test('what a command leaves running in its process group when it exits is killed', async () => {
  await withTempDir(async (dir) => {
    const { log } = memoryLog();
    const runner = new ActionRunner(log);
    const pidFile = join(dir, 'background');
    runner.submit(job('/f.json', ['/bin/sh', '-c', '/bin/sleep 30 >/dev/null 2>&1 & echo $! > "$0"', pidFile]));
    await runner.idle();
    const pid = Number(await readFile(pidFile, 'utf8'));
    await waitFor('the background sleep to be killed', () => gone(pid), 2000);
  });
});

test('at most maxRunning commands run at once, over all files; files run side by side', async () => {
  await withTempDir(async (dir) => {
    const { log } = memoryLog();
    const runner = new ActionRunner(log, { maxRunning: 2 });
    // Each command notes how many commands are running when it starts (marker files).
    const script = 'touch "$0/run.$$"; ls "$0" | grep -c "^run\\." >> "$0/counts"; sleep 0.3; rm "$0/run.$$"';
    for (const file of ['/a.json', '/b.json', '/c.json']) {
      for (let i = 0; i < 2; i++) runner.submit(job(file, ['/bin/sh', '-c', script, dir]));
    }
    let maxSeen = 0;
    const sampler = setInterval(() => (maxSeen = Math.max(maxSeen, runner.running)), 5);
    await runner.idle();
    clearInterval(sampler);
    const counts = (await readFile(join(dir, 'counts'), 'utf8')).trim().split('\n').map(Number);
    assert.is(counts.length, 6);
    assert.ok(Math.max(...counts) <= 2, `running at once: ${counts}`);
    assert.is(maxSeen, 2, 'two ran side by side');
    assert.is(runner.counters.succeeded, 6);
  });
});

test('the commands of one file run one at a time, in the order of the events', async () => {
  await withTempDir(async (dir) => {
    const { log } = memoryLog();
    const runner = new ActionRunner(log, { maxRunning: 4 });
    const script = '[ -e "$0/busy" ] && echo overlap >> "$0/order"; touch "$0/busy"; sleep 0.05; echo "$USIP_EVENT_SEQ" >> "$0/order"; rm "$0/busy"';
    for (let i = 1; i <= 6; i++) runner.submit({ file: '/one.json', notifier: 0, argv: ['/bin/sh', '-c', script, dir], event: { ...event, seq: String(i) } });
    assert.is(runner.running, 1);
    assert.is(runner.queued('/one.json'), 5);
    await runner.idle();
    assert.is(await readFile(join(dir, 'order'), 'utf8'), '1\n2\n3\n4\n5\n6\n');
  });
});

test('a full queue: events beyond maxQueuedPerFile are not run, counted, and logged at once and then in a summary', async () => {
  const { log, find } = memoryLog();
  const runner = new ActionRunner(log, { maxRunning: 1, maxQueuedPerFile: 3 });
  const accepted = [];
  for (let i = 0; i < 10; i++) accepted.push(runner.submit(job('/storm.json', ['/bin/sleep', '0.4'])));
  // One runs, three wait, six are dropped.
  assert.equal(accepted, [true, true, true, true, false, false, false, false, false, false]);
  assert.is(runner.counters.dropped, 6);
  const first = find(/not acted on: 3 events already wait/, '/storm.json');
  assert.equal(first.map((r) => [r.level, r.dropped, r.droppedTotal, r.queueLimit]), [['warn', 1, 1, 3]]);
  await waitFor('the summary of the drops', () => find(/not acted on/, '/storm.json').length === 2, 3000);
  const summary = find(/not acted on/, '/storm.json')[1]!;
  assert.equal([summary.dropped, summary.droppedTotal], [5, 6]);
  await runner.idle();
  assert.is(runner.counters.succeeded, 4);
});

test('shutdown: waiting events are not run (counted, logged); running commands get the grace, then SIGTERM', async () => {
  await withTempDir(async (dir) => {
    const { log, find } = memoryLog();
    const outcomes: ActionOutcome[] = [];
    const runner = new ActionRunner(log, {}, (o) => outcomes.push(o));
    runner.submit(job('/slow.json', ['/bin/sleep', '30']));
    runner.submit(job('/slow.json', ['/bin/sleep', '30']));
    runner.submit(job('/slow.json', ['/bin/sleep', '30']));
    const quick = join(dir, 'quick');
    runner.submit(job('/quick.json', ['/bin/sh', '-c', 'sleep 0.1; touch "$0"', quick]));
    const started = Date.now();
    await runner.shutdown(500);
    assert.ok(Date.now() - started < 3000);
    assert.ok((await readdir(dir)).includes('quick'), 'a command that ends within the grace completes');
    const slow = outcomes.find((o) => o.job.file === '/slow.json')!;
    assert.equal([slow.stopped, slow.signal], [true, 'SIGTERM']);
    assert.equal(find(/not acted on: the agent is stopping/, '/slow.json').map((r) => r.discarded), [2]);
    assert.is(runner.counters.discarded, 2);
    assert.is(runner.submit(job('/quick.json', ['/bin/true'])), false, 'nothing is accepted after shutdown');
    assert.is(runner.counters.discarded, 3);
    assert.is(outcomes.length, 2);
  });
});

test('limits must be positive', () => {
  const { log } = memoryLog();
  assert.throws(() => new ActionRunner(log, { maxRunning: 0 }), /maxRunning must be positive/);
});

test.run();
