// The backends without the module, on this machine's own kernel (no usip module can be loaded
// here): each forced in turn (kernel: listmount/statmount + fanotify; mountinfo: the poll), in a
// private mount namespace of a child process (host/backends-child.ts): the table equals
// /proc/self/mountinfo after a few hundred mounts of every kind; a watcher sees a mount, a bind,
// a submount, a move (with its submount), a remount, a propagation change, mount_setattr and
// umounts, and its table equals mountinfo after each; a storm of 3000 mounts from one loop and
// their lazy umount converge exactly. With no periodic check: a remount alone is reported (the
// kernel backend reads mountinfo once for it, and for none of 16 paced mounts and umounts), and
// a remount made while a storm of mounts runs is reported and the table converges. As uid 65534 (host/nobody.sh): fanotify is refused (EPERM),
// the watcher polls mountinfo, and the plan says why.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mountApiSupport } from '@usip/netlink-native';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const here = fileURLToPath(new URL('.', import.meta.url));
const STORM = 3000;

const cache = join(root, 'node_modules/.cache/usip-client');
mkdirSync(cache, { recursive: true });
const storm = join(cache, 'mount-storm');
execFileSync('gcc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', storm, join(root, 'packages/cli/test/guest/mount-storm.c')], { stdio: 'inherit' });

function inPrivateNamespace(args: string[]): string {
  return execFileSync('unshare', ['-m', '--propagation', 'private', ...args], { cwd: root, encoding: 'utf8', timeout: 300_000, stdio: ['ignore', 'pipe', 'inherit'] });
}

interface Step {
  step: string;
  kinds: string[];
  differences: string[];
}

const support = mountApiSupport();

for (const backend of ['kernel', 'mountinfo'] as const) {
  const test = suite(`the ${backend} backend, forced, on this machine's kernel`);
  const dir = mkdtempSync(join(tmpdir(), `usip-${backend}-`));
  let out: Record<string, any>;
  try {
    out = JSON.parse(inPrivateNamespace([process.execPath, '--import', 'tsx', join(here, 'host/backends-child.ts'), backend, storm, dir, String(STORM)]));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  test('this kernel has the API the backend needs', () => {
    assert.ok(support.listmount && support.statmount, 'listmount and statmount (6.8+)');
    assert.ok(support.fanotifyMount.available, `fanotify mount events as root: ${support.fanotifyMount.reason}`);
  });

  test('the mount table equals /proc/self/mountinfo, in its order, after a few hundred mounts of every kind', () => {
    assert.ok(out.tableSize >= 270, `mounts: ${out.tableSize}`);
    assert.equal(out.tableDifferences, []);
    assert.ok(out.tableOrder, 'mountinfo\'s order');
    assert.is(out.uniqueIds, backend === 'kernel', 'unique ids from statmount only');
    assert.ok(out.mountById, 'mount(id)');
    if (backend === 'kernel') assert.ok(out.mountByUniqueId, 'mount({ uniqueId })');
    assert.equal(out.plan[0], ['mount-table', backend, backend === 'kernel' ? 'listmount+statmount' : 'read /proc/self/mountinfo']);
  });

  test('the watcher reports each change as it happens and its table equals mountinfo after each', () => {
    assert.is(out.watcherBackend, backend);
    assert.equal(out.snapshotDifferences, []);
    const steps = out.steps as Step[];
    for (const step of steps) assert.equal(step.differences, [], `${step.step}: ${step.differences.join('; ')}`);
    assert.equal(
      steps.map((s) => [s.step, s.kinds]),
      [
        ['mount', ['mount /w/a']],
        ['bind', ['mount /w/b']],
        ['submount', ['mount /w/a/sub']],
        ['move', ['move /w/m', 'move /w/m/sub']],
        ['remount', ['remount /w/m/sub']],
        // No wakeup, no fanotify event: the periodic check finds it.
        ['make-shared', ['remount /w/b']],
        ['setattr', ['remount /w/b']],
        ['umount', ['umount /w/m/sub']],
        ['umounts', ['umount /w/m', 'umount /w/b']],
      ],
    );
  });

  test(`a storm of ${STORM} mounts from one loop, then one lazy umount of them all, converges exactly`, () => {
    assert.equal(out.stormRoot.kinds, ['mount /s']);
    assert.equal(out.storm.differences, []);
    assert.is(out.storm.changes, STORM, 'one change per mount');
    assert.equal(out.stormUmount.differences, []);
    assert.is(out.stormUmount.changes, STORM + 1, 'one change per mount, and the storm root');
    assert.is(out.stormUmount.tableSize, out.tableSize, 'back to the table before the watcher\'s steps');
    assert.ok(out.closed);
  });

  test('with no periodic check: a remount alone is reported; paced mounts read no mountinfo (kernel); a remount inside a storm is reported and the table converges', () => {
    assert.equal(out.remountAlone.kinds, ['remount /r/x']);
    assert.equal(out.remountAlone.differences, []);
    const paced = out.paced as { kinds: string[][]; rereads: number };
    assert.equal(paced.kinds, Array.from({ length: 8 }, (_, i) => [[`mount /r/p${i}`], [`umount /r/p${i}`]]).flat());
    const storm = out.stormRemount;
    assert.ok(storm.duringStorm, 'the remount came while the storm ran');
    assert.is(storm.code, 0);
    assert.equal(storm.differences, []);
    assert.is(storm.mounts, STORM);
    assert.equal(storm.kinds, ['remount /r/x']);
    assert.equal(out.quietDifferences, []);
    if (backend === 'kernel') {
      assert.is(out.remountAlone.rereads, 1, 'one read of mountinfo for the remount');
      // Each paced change's wakeup is explained by its fanotify event (a merged wakeup on a busy machine may cost one).
      assert.ok(paced.rereads <= 1, `reads for 16 paced changes: ${paced.rereads}`);
      // At most one a second during the storm, and one at its end (and one after its trailing batches).
      assert.ok(storm.rereads >= 1 && storm.rereads <= 12, `reads in the storm: ${storm.rereads}`);
    }
  });

  test.run();
}

const nobody = suite('as uid 65534: fanotify is refused, the watcher polls mountinfo, the plan says why');
const dir = mkdtempSync(join(tmpdir(), 'usip-nobody-'));
let lines: any[];
try {
  lines = inPrivateNamespace(['sh', join(here, 'host/nobody.sh'), root, dir])
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));
} finally {
  rmSync(dir, { recursive: true, force: true });
}

nobody('the plan: mount changes from the mountinfo poll, fanotify passed over for EPERM', () => {
  const [ready] = lines;
  assert.is(ready.uid, 65534);
  assert.is(ready.changes.backend, 'mountinfo');
  assert.equal(ready.changes.passedOver.map((p: { backend: string }) => p.backend), ['module', 'kernel']);
  assert.match(ready.changes.passedOver[1].reason, /^fanotify needs CAP_SYS_ADMIN \(EPERM/);
  assert.is(ready.watcherBackend, 'mountinfo');
});

nobody("the watcher sees root's mount, remount and umount, and ends equal to mountinfo", () => {
  const [, result] = lines;
  assert.equal(result.kinds, ['mount /x', 'remount /x', 'umount /x']);
  assert.ok(result.equal);
});

nobody.run();
