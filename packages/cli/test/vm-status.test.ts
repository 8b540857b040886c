// End to end: `usip status` → client → napi binding → generic netlink → usip.ko in a real kernel.
// Boots each supported kernel with the freshly built module and runs test/guest/status.sh there.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { parseMountinfo, protocol, sameMount, type MountInfo } from '@usip/client';
import { runInVm, type VmRunResult } from '@usip/vm';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const moduleVersion = readFileSync(join(root, 'packages/kernel-module/VERSION'), 'utf8').trim();

interface Step {
  status: number;
  out: string;
  err: string;
}

function step(run: VmRunResult, name: string): Step {
  const read = (suffix: string) => readFileSync(join(run.resultsDir, `${name}.${suffix}`), 'utf8');
  return { status: Number(read('status')), out: read('out'), err: read('err') };
}

for (const kernel of ['6.1', '6.12']) {
  // The script unloads the module itself, to see the "not loaded" answer in a real kernel.
  const run = await runInVm({
    kernel,
    modules: [join(root, 'packages/kernel-module/build/{kver}/usip.ko')],
    command: ['sh', 'packages/cli/test/guest/status.sh'],
    cwd: root,
    unload: false,
    stream: true,
  });
  const test = suite(`usip status in the ${kernel} guest (${run.kernel.release})`);

  test('the guest ran the script to the end with a clean kernel log', () => {
    assert.is(run.timedOut, false, 'timed out');
    assert.equal(run.loadErrors, [], 'usip.ko loaded');
    assert.equal(run.problems, [], 'kernel log problems');
    assert.is(run.exitCode, 0, run.output);
    assert.is(readFileSync(join(run.resultsDir, 'uname'), 'utf8').trim(), run.kernel.release);
  });

  test('status --json reports the loaded module, its versions and the family', () => {
    const { status, out, err } = step(run, 'root-json');
    assert.is(status, 0, err);
    const report = JSON.parse(out);
    assert.is(report.loaded, true);
    assert.is(report.compatible, true);
    assert.is(report.module.version, moduleVersion);
    assert.is(report.module.protocolVersion, report.client.protocolVersion);
    assert.is(report.module.kernelRelease, run.kernel.release);
    assert.ok(report.module.features.includes('netns'), `features: ${report.module.features}`);
    // Every feature of the spec, with its status: on Debian's 6.1 and 6.12 all work but fanotify's
    // mount events, which their headers do not have (6.15+), and low-space, which is not built
    // yet; features lists exactly those that work.
    assert.equal(
      report.module.featureStatus.map((s: { feature: string }) => s.feature).sort(),
      Object.values(protocol.FEATURE_NAMES).sort(),
    );
    for (const s of report.module.featureStatus as { feature: string; available: boolean; reason?: string }[]) {
      const notBuilt = s.feature === 'native-mount-notify';
      const expected = notBuilt ? { feature: s.feature, available: false, reason: 'not-built' } : { feature: s.feature, available: true };
      assert.equal(s, expected, `feature ${s.feature}`);
      assert.is(report.module.features.includes(s.feature), s.available, `${s.feature} in features`);
    }
    assert.is(report.family.name, 'usip');
    assert.ok(report.family.operations.includes('ping'));
    assert.equal(
      report.family.multicastGroups.map((g: { name: string }) => g.name).sort(),
      ['mtab', 'storage'],
    );
    assert.is(report.error, undefined);
  });

  test('status prints the same facts for people', () => {
    const { status, out } = step(run, 'root-human');
    assert.is(status, 0);
    assert.match(out, `usip module ${moduleVersion} is loaded`);
    assert.match(out, new RegExp(`kernel release\\s+${run.kernel.release.replace(/[.+]/g, '\\$&')}`));
    assert.match(out, /multicast groups\s+mtab, storage/);
    assert.match(out, /unavailable\s+native-mount-notify \(not-built\)/);
  });

  test('an unprivileged user and another network namespace get the same answer', () => {
    for (const name of ['nobody-json', 'netns-json']) {
      const { status, out, err } = step(run, name);
      assert.is(status, 0, `${name}: ${err}`);
      const report = JSON.parse(out);
      assert.is(report.loaded, true, name);
      assert.is(report.module.version, moduleVersion, name);
    }
  });

  test('after rmmod, status exits 1 and says how to load the module', () => {
    assert.is(step(run, 'rmmod').status, 0, 'rmmod usip');
    const { status, out, err } = step(run, 'unloaded-json');
    assert.is(status, 1);
    assert.is(JSON.parse(out).error.code, 'USIP_MODULE_NOT_LOADED');
    assert.match(err, 'usip kernel module is not loaded');
  });

  test('without the module, status names each feature\'s backend: 6.1 mountinfo, 6.12 listmount and the mountinfo poll', () => {
    const report = JSON.parse(step(run, 'unloaded-json').out);
    const backends = Object.fromEntries(report.backends.features.map((c: { feature: string; backend: string; mechanism: string }) => [c.feature, [c.backend, c.mechanism]]));
    const table = kernel === '6.1' ? ['mountinfo', 'read /proc/self/mountinfo'] : ['kernel', 'listmount+statmount'];
    assert.equal(backends['mount-table'], table);
    assert.equal(backends['mount-changes'], ['mountinfo', 'poll(mountinfo)']);
    assert.equal(backends.statfs, ['kernel', 'statfs(2)']);
    assert.equal(backends['storage-events'][0], 'none');
    const changes = report.backends.features.find((c: { feature: string }) => c.feature === 'mount-changes');
    assert.match(changes.reason, kernel === '6.1' ? /^module not loaded; listmount needs Linux 6\.8/ : /^module not loaded; fanotify mount events need Linux 6\.15/);
    const human = step(run, 'unloaded-human');
    assert.is(human.status, 1);
    assert.match(human.out, /^usip module is not loaded: storage events and low space unavailable; the rest is served without it\n/);
    assert.match(human.out, new RegExp(`\\n  mount table +${table[0]} +${table[1]!.replace(/[+/]/g, '\\$&')} +module not loaded`));
  });

  test('without the module, usip mounts is mountinfo and usip watch sees a mount, a remount and an umount', () => {
    const mounts = step(run, 'unloaded-mounts');
    assert.is(mounts.status, 0, mounts.err);
    const listed = (JSON.parse(mounts.out).mounts as Record<string, unknown>[]).map((m) => {
      const { uniqueId: _u, mntNs: _n, ...rest } = m;
      return rest as unknown as MountInfo;
    });
    const truth = parseMountinfo(readFileSync(join(run.resultsDir, 'unloaded-mountinfo'), 'utf8'));
    assert.is(listed.length, truth.length);
    listed.forEach((m, i) => assert.ok(sameMount(m, truth[i]!), `${JSON.stringify(m)} vs ${JSON.stringify(truth[i])}`));
    assert.is(step(run, 'unloaded-watch-run').status, 0, step(run, 'unloaded-watch-run').err);
    const watch = readFileSync(join(run.resultsDir, 'unloaded-watch.out'), 'utf8').trim().split('\n').map((line) => JSON.parse(line));
    assert.equal(watch.map((c: { kind: string; mount: { mountPoint: string; options: string } }) => [c.kind, c.mount.mountPoint, c.mount.options]), [
      ['mount', '/tmp/unloaded-watch', 'rw,relatime'],
      ['remount', '/tmp/unloaded-watch', 'ro,relatime'],
      ['umount', '/tmp/unloaded-watch', 'ro,relatime'],
    ]);
    assert.match(readFileSync(join(run.resultsDir, 'unloaded-watch.err'), 'utf8'), 'backend mountinfo: mountinfo poll');
  });

  test.run();
}
