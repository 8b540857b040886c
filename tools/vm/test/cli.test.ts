// The built CLI (dist/cli.js, made by the build target this test depends on), as a user or
// another package's test runs it.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { workspaceRoot } from '../src/paths.js';

const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const fixtureSrc = fileURLToPath(new URL('fixtures/usip-vm-fixture', import.meta.url));

function usipVm(...args: string[]) {
  const r = spawnSync(process.execPath, [cli, ...args], { cwd: workspaceRoot, encoding: 'utf8', timeout: 600_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('kernels --json: every supported kernel, with its files (7.x headers in the trixie build root)', () => {
  const r = usipVm('kernels', '--json');
  assert.is(r.code, 0, r.stderr);
  const kernels = JSON.parse(r.stdout) as Array<{ selector: string; release: string; vmlinuz: string; headersDir: string }>;
  assert.equal(kernels.map((k) => k.selector), ['6.1', '6.12', '7']);
  for (const k of kernels) {
    assert.ok(k.vmlinuz.endsWith(`/usip/kernels/${k.release}/vmlinuz`));
    if (k.selector === '7') {
      assert.match(k.release, /^7\.\d+\.\d+\+deb13-amd64$/);
      assert.ok(k.headersDir.endsWith(`/usip/build-roots/trixie/usr/src/linux-headers-${k.release}`), k.headersDir);
    } else assert.is(k.headersDir, `/usr/src/linux-headers-${k.release}`);
  }
});

test('build-module prints one .ko path per kernel on stdout; make output goes to stderr', () => {
  const out = mkdtempSync(join(tmpdir(), 'usip-vm-cli-build-'));
  const r = usipVm('build-module', '--kernel', 'all', '--src', fixtureSrc, '--out', out);
  const paths = r.stdout.trim().split('\n');
  const vermagics = paths.map((p) => spawnSync('modinfo', ['-F', 'vermagic', p], { encoding: 'utf8' }).stdout);
  rmSync(out, { recursive: true, force: true });
  assert.is(r.code, 0, r.stderr);
  assert.is(paths.length, 3);
  for (const p of paths) assert.match(p, new RegExp(`^${out}/(6\\.1|7\\.)[^/]*-amd64/usip_vm_fixture\\.ko$`));
  // The 7.x module was built in the trixie build root, by its gcc 14, and copied back.
  assert.match(vermagics[paths.findIndex((p) => p.includes('/7.'))] ?? '', /^7\.\d+\.\d+\+deb13-amd64 /);
  assert.match(r.stderr, /LD \[M\]\s+\S+usip_vm_fixture\.ko/);
});

test('run --kernel all: the command output exactly once on stdout, a verdict per kernel on stderr, exit 1 if one failed', () => {
  const r = usipVm(
    'run', '--kernel', 'all', '--module-src', fixtureSrc, '--param', 'usip_vm_fixture.tag=5', '--timeout', '120',
    '--', 'sh', '-c', 'echo "$USIP_VM_SERIES tag $(cat /sys/module/usip_vm_fixture/parameters/tag)"; echo err >&2; [ "$USIP_VM_SERIES" = 6.1 ]',
  );
  assert.match(r.stdout, /^6\.1 tag 5\nerr\n6\.12 tag 5\nerr\n7\.\d+ tag 5\nerr\n$/);
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, /usip-vm: 6\.1 \(6\.1\.0-\d+-amd64\): ok in [\d.]+ s/);
  assert.match(r.stderr, /usip-vm: 6\.12 \(6\.12\.\d+\+deb12-amd64\): FAILED in [\d.]+ s\n {2}- the command exited with status 1\n/);
  assert.match(r.stderr, /kernel log: \/\S+\/kernel\.log/);
  assert.match(r.stderr, /usip-vm: 7 \(7\.\d+\.\d+\+deb13-amd64\): FAILED in [\d.]+ s\n {2}- the command exited with status 1\n/);
  assert.match(r.stderr, /usip-vm: 1 of 3 kernels ok/);
});

test('bad input: exit 2 and a message that names what was wrong', () => {
  const cases: Array<[string[], RegExp]> = [
    [['run', '--kernel', 'latest', '--', 'true'], /usip-vm: error: unknown kernel selector "latest"/],
    [['run', '--kernel', '6.1', '--param', 'tag=1', '--', 'true'], /module parameter "tag=1" is not of the form module\.key=value/],
    [['run', '--kernel', '6.1', '--timeout', 'soon', '--', 'true'], /--timeout must be a positive integer \(got "soon"\)/],
    [['build-module', '--kernel', '6.1', '--src', workspaceRoot, '--out', '/tmp/x'], new RegExp(`${workspaceRoot} has neither a Kbuild nor a Makefile`)],
    [['run', '--kernel', '6.1'], /missing required argument 'command'/],
    [['run', '--kernel', '6.1', '--kernel-arg', 'a b', '--', 'true'], /kernel argument "a b" is not one word of printable ASCII/],
    [['run', '--kernel', '6.1', '--init', 'upstart', '--', 'true'], /option '--init <init>' argument 'upstart' is invalid\. Allowed choices are sh, systemd\./],
  ];
  for (const [args, message] of cases) {
    const r = usipVm(...args);
    assert.ok(r.code !== 0, `${args.join(' ')} must fail`);
    assert.match(r.stderr, message, args.join(' '));
    assert.is(r.stdout, '', `${args.join(' ')} prints nothing on stdout`);
  }
});

test.run();
