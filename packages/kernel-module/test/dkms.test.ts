// DKMS on the host (no VM): add, build, install and remove the module the way a user would, against
// the installed 6.1 headers, checking each step's exit status and `dkms status`, and that the .ko
// is where dkms says it put it. The DKMS registration and /usr/src copy are removed at the end
// even when a step fails, and a leftover from an interrupted earlier run is removed first.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { moduleRoot, moduleVersion, supportedKernels } from './helpers.js';

const kernel = (await supportedKernels()).find((k) => k.series === '6.1');
const module = `usip/${moduleVersion}`;
const sourceDir = `/usr/src/usip-${moduleVersion}`;

interface Run {
  status: number | null;
  output: string;
}

function run(command: string, args: string[]): Run {
  const r = spawnSync(command, args, { encoding: 'utf8' });
  if (r.error) throw new Error(`cannot run ${command}: ${r.error.message}`);
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

function dkms(...args: string[]): Run {
  return run('dkms', args);
}

/** The lines of `dkms status` about this module version. */
function status(): string[] {
  const r = dkms('status', '-m', 'usip', '-v', moduleVersion);
  assert.is(r.status, 0, r.output);
  return r.output
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith(`${module}`));
}

function removeEverything(): void {
  if (status().length > 0) {
    const r = dkms('remove', '-m', 'usip', '-v', moduleVersion, '--all');
    if (r.status !== 0) throw new Error(`dkms remove of a leftover ${module} failed:\n${r.output}`);
  }
  rmSync(sourceDir, { recursive: true, force: true });
}

test('the 6.1 kernel headers are installed', () => {
  assert.ok(kernel, 'no 6.1 kernel resolved: run tools/setup/system-deps.sh and usip-vm kernels');
});

test('dkms add, build, install and remove the module for 6.1', () => {
  if (kernel === undefined) throw new Error('no 6.1 kernel');
  const release = kernel.release;
  removeEverything();
  try {
    // What the Makefile's dkms-source target copies is what a package would ship.
    const copy = run('make', ['-s', '-C', moduleRoot, 'dkms-source', `DESTDIR=${sourceDir}`]);
    assert.is(copy.status, 0, copy.output);
    assert.ok(existsSync(join(sourceDir, 'dkms.conf')));

    const add = dkms('add', '-m', 'usip', '-v', moduleVersion);
    assert.is(add.status, 0, add.output);
    assert.equal(status(), [`${module}: added`]);

    const build = dkms('build', '-m', 'usip', '-v', moduleVersion, '-k', release);
    assert.is(build.status, 0, `${build.output}\n(see /var/lib/dkms/usip/${moduleVersion}/build/make.log)`);
    assert.equal(status(), [`${module}, ${release}, x86_64: built`]);

    const install = dkms('install', '-m', 'usip', '-v', moduleVersion, '-k', release);
    assert.is(install.status, 0, install.output);
    assert.equal(status(), [`${module}, ${release}, x86_64: installed`]);
    const where = /Installing to (\S+)/.exec(install.output)?.[1];
    assert.ok(where, `dkms install did not say where it installed:\n${install.output}`);
    assert.ok(where.startsWith(`/lib/modules/${release}/`), where);
    const installed = readdirSync(where).filter((f) => /^usip\.ko(\.(xz|zst|gz))?$/.test(f));
    assert.is(installed.length, 1, `no usip.ko in ${where}`);
    const ko = join(where, installed[0] as string);
    const modinfo = run('modinfo', ['-F', 'version', ko]);
    assert.is(modinfo.output.trim(), moduleVersion);
    const vermagic = run('modinfo', ['-F', 'vermagic', ko]);
    assert.is(vermagic.output.split(' ')[0], release);

    const remove = dkms('remove', '-m', 'usip', '-v', moduleVersion, '--all');
    assert.is(remove.status, 0, remove.output);
    assert.equal(status(), []);
    assert.not.ok(existsSync(ko), `${ko} is still there after dkms remove`);
  } finally {
    removeEverything();
  }
  assert.not.ok(existsSync(sourceDir));
  assert.not.ok(existsSync(`/var/lib/dkms/usip/${moduleVersion}`));
});

/**
 * The PREEMPT_RT flavour of a Debian release's headers (6.1.0-57-amd64 -> 6.1.0-57-rt-amd64),
 * installed with apt if they are not (under the lock tools/setup and tools/vm share).
 */
function rtHeaders(release: string): string {
  const rt = release.replace(/-amd64$/, '-rt-amd64');
  if (!existsSync(`/usr/src/linux-headers-${rt}`)) {
    const install = run('flock', [
      '/var/lock/usip-apt.lock', 'env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', '-y', '-q',
      '--no-install-recommends', 'install', `linux-headers-${rt}`,
    ]);
    assert.is(install.status, 0, `installing the RT headers failed:\n${install.output}`);
  }
  return rt;
}

test('dkms refuses to build the module for a PREEMPT_RT kernel, naming BUILD_EXCLUSIVE', () => {
  if (kernel === undefined) throw new Error('no 6.1 kernel');
  const rt = rtHeaders(kernel.release);
  removeEverything();
  try {
    const copy = run('make', ['-s', '-C', moduleRoot, 'dkms-source', `DESTDIR=${sourceDir}`]);
    assert.is(copy.status, 0, copy.output);
    const add = dkms('add', '-m', 'usip', '-v', moduleVersion);
    assert.is(add.status, 0, add.output);
    const build = dkms('build', '-m', 'usip', '-v', moduleVersion, '-k', rt);
    // dkms exits 77 ("skipped") when a BUILD_EXCLUSIVE directive does not match.
    assert.is(build.status, 77, build.output);
    assert.match(build.output, /BUILD_EXCLUSIVE/);
    assert.equal(status(), [`${module}: added`], 'nothing was built');
  } finally {
    removeEverything();
  }
});

test.run();
