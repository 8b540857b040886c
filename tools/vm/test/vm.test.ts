// Real boots of Debian's 6.1 and 6.12 kernels: what a guest command gets, and each way a run
// must fail. Each boot costs seconds, so checks are grouped per boot.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { buildModule, resolveKernels, runInVm, type BuiltModule, type Kernel } from '../src/index.js';
import { workspaceRoot } from '../src/paths.js';

const fixtureSrc = fileURLToPath(new URL('fixtures/usip-vm-fixture', import.meta.url));
const buildDir = mkdtempSync(join(tmpdir(), 'usip-vm-test-build-'));
let kernels: Kernel[] = [];
let builds: BuiltModule[] = [];

function fixtureKo(kernel: Kernel): string {
  const build = builds.find((b) => b.kernel.release === kernel.release);
  const ko = build?.modules[0];
  if (!ko) throw new Error(`no fixture module was built for ${kernel.release}`);
  return ko;
}

test('resolveKernels("all"): 6.1, 6.12 and 7.x with installed headers, a cached image and a bootable vmlinux', async () => {
  kernels = await resolveKernels('all');
  assert.equal(kernels.map((k) => k.selector), ['6.1', '6.12', '7']);
  assert.equal(kernels.map((k) => k.series).slice(0, 2), ['6.1', '6.12']);
  assert.match(kernels[2]!.series, /^7\.\d+$/);
  const releaseOf: Record<string, RegExp> = { '6.1': /^6\.1\.0-\d+-amd64$/, '6.12': /^6\.12\.\d+\+deb12-amd64$/, '7': /^7\.\d+\.\d+\+deb13-amd64$/ };
  for (const k of kernels) {
    assert.match(k.release, releaseOf[k.selector]!);
    // 7.x builds in the trixie root (Debian 12's gcc cannot use its headers); the others on the host.
    assert.is(k.buildRoot === null, k.selector !== '7', `${k.selector}: build root ${k.buildRoot}`);
    assert.ok(existsSync(join(k.headersDir, 'Makefile')), `${k.headersDir}/Makefile`);
    assert.ok(existsSync(join(k.modulesDir, 'modules.dep')), 'depmod ran on the cached modules');
    assert.ok(existsSync(k.vmlinuz));
    assert.ok(k.vmlinux !== null, 'Debian kernels have CONFIG_PVH, so the uncompressed kernel is used');
    assert.equal([...readFileSync(k.vmlinux).subarray(0, 4)], [0x7f, 0x45, 0x4c, 0x46]);
  }
  // The second resolution comes from the caches and gives the same kernels.
  assert.equal(await resolveKernels('6.12,6.1'), [kernels[1], kernels[0]]);
  const exact = await resolveKernels(kernels[0]?.release ?? '');
  assert.equal(exact[0]?.release, kernels[0]?.release);
  assert.equal(exact[0]?.selector, kernels[0]?.release);
});

test('buildModule: the fixture builds for each kernel in its own tree, for that kernel, without warnings', async () => {
  builds = await buildModule({ kernel: kernels, src: fixtureSrc, out: buildDir, echo: null });
  assert.is(builds.length, 3);
  for (const b of builds) {
    assert.is(b.dir, join(buildDir, b.kernel.release));
    assert.equal(b.modules, [join(b.dir, 'usip_vm_fixture.ko')]);
    const vermagic = execFileSync('modinfo', ['-F', 'vermagic', b.modules[0] ?? ''], { encoding: 'utf8' });
    assert.ok(vermagic.startsWith(`${b.kernel.release} `), `vermagic "${vermagic.trim()}" is for ${b.kernel.release}`);
    assert.not.match(b.output, /warning:/i, 'the fixture compiles without warnings');
    assert.not.ok(existsSync(join(b.dir, 'test')), 'test/ is not copied into the build tree');
  }
});

for (const series of ['6.1', '6.12', '7']) {
  const kernelOf = () => {
    const k = kernels.find((x) => x.selector === series);
    if (!k) throw new Error(`kernel ${series} was not resolved`);
    return k;
  };

  test(`${series}: output, exit status, host files, results and a clean module load and unload`, async () => {
    const kernel = kernelOf();
    const r = await runInVm({
      kernel,
      modules: [{ path: join(buildDir, '{kver}', 'usip_vm_fixture.ko'), params: ['tag=42'] }],
      command: ['sh', 'tools/vm/test/fixtures/guest-check.sh'],
      cwd: workspaceRoot,
      env: { USIP_TEST_GREETING: "hello 'guest' $HOME" },
      kernelArgs: ['slab_nomerge', 'kfence.sample_interval=0'],
      timeoutMs: 120_000,
    });
    assert.equal(r.failures, []);
    assert.ok(r.ok);
    assert.is(r.exitCode, 0);
    assert.is(
      r.output,
      [
        'tag=42',
        `kernel=${kernel.release} series=${kernel.series}`,
        `cwd=${workspaceRoot}`,
        'package=@usip/vm',
        "env=hello 'guest' $HOME",
        'results=/run/usip-vm/results',
        'root=read-only',
        'tmp=writable',
        'stdout=not-a-tty',
        'to-stderr',
        '',
      ].join('\n'),
    );
    assert.is(readFileSync(join(r.resultsDir, 'guest.txt'), 'utf8'), 'written in the guest\n');
    assert.ok(r.unloaded);
    assert.equal(r.problems, []);
    assert.is(r.timedOut, false);
    assert.equal(r.modules, [{ name: 'usip_vm_fixture', path: fixtureKo(kernel) }]);
    assert.match(r.kernelLog, /usip_vm_fixture: loaded \(tag 42\)/);
    assert.match(r.kernelLog, /usip_vm_fixture: unloaded \(tag 42\)/);
    assert.is(readFileSync(r.kernelLogPath, 'utf8'), r.kernelLog);
    // kernelArgs come after the harness's own arguments.
    assert.match(r.kernelLog, /Kernel command line: console=ttyS0 \S.* slab_nomerge kfence\.sample_interval=0\s*$/m);
    assert.equal(r.kernel, { selector: series, series: kernel.series, release: kernel.release });
  });

  test(`${series}: a WARN in module init and a failing command fail the run and say why`, async () => {
    // A working directory under /tmp (a checkout there, say) stays visible under the guest's fresh /tmp.
    const cwd = mkdtempSync('/tmp/usip-vm-test-cwd-');
    writeFileSync(join(cwd, 'marker.txt'), 'visible under /tmp\n');
    const r = await runInVm({
      kernel: kernelOf(),
      modules: [fixtureKo(kernelOf())],
      params: ['usip_vm_fixture.warn_on_load=1'],
      command: ['sh', '-c', 'cat marker.txt; exit 3'],
      cwd,
      unload: false,
      timeoutMs: 120_000,
    });
    rmSync(cwd, { recursive: true, force: true });
    assert.not.ok(r.ok);
    assert.is(r.exitCode, 3);
    assert.is(r.output, 'visible under /tmp\n');
    assert.ok(r.failures.includes('the command exited with status 3'), r.failures.join('\n'));
    assert.ok(r.failures.some((f) => /^the kernel log shows 2 problem line\(s\) \(WARNING, call trace\)/.test(f)), r.failures.join('\n'));
    // 6.x: "WARNING: CPU: 0 PID: 1 at FILE:LINE FUNC"; 7.x: "WARNING: FILE:LINE at FUNC+OFF [MOD], CPU#0: COMM/PID".
    assert.match(r.problems[0] ?? '', /WARNING: (CPU: \d+ PID: \d+ at .*usip_vm_fixture\.c:\d+ usip_vm_fixture_init|usip_vm_fixture\.c:\d+ at usip_vm_fixture_init\+)/);
    assert.match(r.problems[1] ?? '', /Call Trace:/);
    // unload: false leaves the module loaded, and that is not a failure.
    assert.is(r.unloaded, false);
    assert.not.ok(r.failures.some((f) => f.includes('unloading')));
    assert.not.match(r.kernelLog, /usip_vm_fixture: unloaded/);
  });

  test(`${series}: a hung command is killed by the guest timeout; a pinned module fails the unload check`, async () => {
    const r = await runInVm({
      kernel: kernelOf(),
      modules: [{ path: fixtureKo(kernelOf()), params: ['pin=1'] }],
      command: ['sh', '-c', 'echo started; exec sleep 600'],
      // Room for a slow boot on a busy machine: the guest kills the command at 30 s of uptime.
      timeoutMs: 35_000,
    });
    assert.not.ok(r.ok);
    assert.ok(r.timedOut);
    assert.is(r.output, 'started\n');
    assert.is(r.exitCode, 137, 'killed by SIGKILL');
    assert.ok(r.failures.some((f) => /^the command did not finish within 30 s of guest uptime and was killed \(guest timeout\)$/.test(f)), r.failures.join('\n'));
    assert.is(r.unloaded, false);
    assert.ok(r.failures.some((f) => /^unloading the modules failed: .*usip_vm_fixture/.test(f)), r.failures.join('\n'));
    // The guest lived on: its whole kernel log came back.
    assert.match(r.kernelLog, /usip-vm: modules unloaded/);
    assert.equal(r.problems, []);
  });

  test(`${series}: a guest that hangs in module init is killed by the host timeout`, async () => {
    const r = await runInVm({
      kernel: kernelOf(),
      modules: [{ path: fixtureKo(kernelOf()), params: ['hang_on_load=1', 'tag=9'] }],
      command: ['true'],
      timeoutMs: 15_000,
    });
    assert.not.ok(r.ok);
    assert.ok(r.timedOut);
    assert.is(r.exitCode, null);
    assert.ok(r.failures[0]?.startsWith('the VM did not finish within 15 s and was killed (host timeout)'), r.failures.join('\n'));
    // Only the console survives a killed guest, and it shows what the module said.
    assert.is(r.kernelLog, readFileSync(r.consoleLogPath, 'utf8'));
    assert.match(r.kernelLog, /usip_vm_fixture: loaded \(tag 9\)/);
    assert.ok(r.failures.some((f) => f.startsWith("the console's last lines were:") && f.includes('usip_vm_fixture: loaded (tag 9)')));
  });
}

test('6.12, init systemd: the host\'s systemd is pid 1, the command runs as its service, the module loads and unloads', async () => {
  const kernel = kernels.find((x) => x.selector === '6.12')!;
  const r = await runInVm({
    kernel,
    init: 'systemd',
    modules: [{ path: join(buildDir, '{kver}', 'usip_vm_fixture.ko'), params: ['tag=7'] }],
    command: [
      'sh',
      '-c',
      'cat /proc/1/comm; systemctl is-system-running; grep -o "usip-vm-command.service" /proc/self/cgroup; ' +
        'systemctl show -p UnitPath --value; systemctl list-units --state=failed --no-legend | wc -l; ' +
        'test -w /var/log && test -w /run/systemd && echo writable; cat /etc/machine-id',
    ],
    cwd: workspaceRoot,
    timeoutMs: 120_000,
  });
  assert.equal(r.failures, [], r.output);
  assert.ok(r.ok);
  // Booted to usip-vm.target, nothing failed; units only from the run's directory, /run and the
  // distribution's (not the host's /etc/systemd/system); writable /var/log; its own machine id.
  const lines = r.output.split('\n');
  assert.equal(lines.slice(0, 6), ['systemd', 'running', 'usip-vm-command.service', '/run/usip-vm/units /run/systemd/system /lib/systemd/system', '0', 'writable']);
  assert.match(lines[6]!, /^[0-9a-f]{32}$/);
  if (existsSync('/etc/machine-id')) assert.is.not(lines[6], readFileSync('/etc/machine-id', 'utf8').trim());
  assert.match(r.kernelLog, /usip-vm: starting systemd/);
  assert.match(r.kernelLog, /usip_vm_fixture: loaded \(tag 7\)/);
  assert.match(r.kernelLog, /usip_vm_fixture: unloaded \(tag 7\)/);
  assert.ok(r.unloaded);
});

test('runInVm refuses bad options before booting, naming what is wrong', async () => {
  const rejects = async (options: Parameters<typeof runInVm>[0], message: RegExp) => {
    await runInVm(options).then(
      () => assert.unreachable(`should have failed: ${JSON.stringify(options)}`),
      (error: Error) => assert.match(error.message, message),
    );
  };
  const kernel = kernels[0] as Kernel;
  await rejects({ kernel, command: [] }, /command must be a non-empty array/);
  await rejects({ kernel, command: ['true'], timeoutMs: 100 }, /timeoutMs must be at least 5000 \(got 100\)/);
  await rejects({ kernel, command: ['true'], memoryMb: 12.5 }, /memoryMb must be an integer of at least 256 \(got 12\.5\)/);
  await rejects({ kernel, command: ['true'], cwd: '/no/such/dir' }, /the working directory \/no\/such\/dir does not exist/);
  await rejects({ kernel: 'all', command: ['true'] }, /runInVm boots one kernel, but "all" selects 3/);
  await rejects({ kernel: '5.10', command: ['true'] }, /no Debian kernel of series 5\.10 is available from apt/);
  await rejects({ kernel, command: ['true'], modules: ['/no/such.ko'] }, /module \/no\/such\.ko does not exist/);
  await rejects({ kernel, command: ['true'], modules: [fixtureSrc] }, /is not a kernel module \(\.ko\)/);
  await rejects({ kernel, command: ['true'], modules: [fixtureKo(kernel)], params: ['tag=1'] }, /module parameter "tag=1" is not of the form module\.key=value/);
  await rejects(
    { kernel, command: ['true'], modules: [{ path: fixtureKo(kernel), params: ['a b=1'] }] },
    /parameter "a b=1" of \S+usip_vm_fixture\.ko is not of the form key=value/,
  );
  await rejects({ kernel, command: ['true'], init: 'upstart' as 'sh' }, /runInVm: init must be one of sh, systemd \(got "upstart"\)/);
  for (const bad of ['a b', '', 'quoted="x"', '--', 'tab\there']) {
    await rejects({ kernel, command: ['true'], kernelArgs: [bad] }, /kernel argument .* is not one word of printable ASCII without quotes/);
  }
  await rejects({ kernel, command: ['true'], moduleSrc: '/no/such/src' }, /module source directory \/no\/such\/src does not exist/);
  await rejects(
    { kernel, command: ['true'], modules: [fixtureKo(kernel)], params: ['usip.tag=1'] },
    /module parameter "usip\.tag=1" names module usip, which is not loaded \(loaded: usip_vm_fixture\)/,
  );
});

test.after(() => rmSync(buildDir, { recursive: true, force: true }));

test.run();
