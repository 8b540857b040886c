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

test('kernels --json: both kernels, with their files', () => {
  const r = usipVm('kernels', '--json');
  assert.is(r.code, 0, r.stderr);
  const kernels = JSON.parse(r.stdout) as Array<{ selector: string; release: string; vmlinuz: string; headersDir: string }>;
  assert.equal(kernels.map((k) => k.selector), ['6.1', '6.12']);
  for (const k of kernels) {
    assert.ok(k.vmlinuz.endsWith(`/usip/kernels/${k.release}/vmlinuz`));
    assert.is(k.headersDir, `/usr/src/linux-headers-${k.release}`);
  }
});

test('build-module prints one .ko path per kernel on stdout; make output goes to stderr', () => {
  const out = mkdtempSync(join(tmpdir(), 'usip-vm-cli-build-'));
  const r = usipVm('build-module', '--kernel', 'all', '--src', fixtureSrc, '--out', out);
  rmSync(out, { recursive: true, force: true });
  assert.is(r.code, 0, r.stderr);
  const paths = r.stdout.trim().split('\n');
  assert.is(paths.length, 2);
  for (const p of paths) assert.match(p, new RegExp(`^${out}/6\\.1[^/]*-amd64/usip_vm_fixture\\.ko$`));
  assert.match(r.stderr, /LD \[M\]\s+\S+usip_vm_fixture\.ko/);
});

test('run --kernel all: the command output exactly once on stdout, a verdict per kernel on stderr, exit 1 if one failed', () => {
  const r = usipVm(
    'run', '--kernel', 'all', '--module-src', fixtureSrc, '--param', 'usip_vm_fixture.tag=5', '--timeout', '120',
    '--', 'sh', '-c', 'echo "$USIP_VM_SERIES tag $(cat /sys/module/usip_vm_fixture/parameters/tag)"; echo err >&2; [ "$USIP_VM_SERIES" = 6.1 ]',
  );
  assert.is(r.stdout, '6.1 tag 5\nerr\n6.12 tag 5\nerr\n');
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, /usip-vm: 6\.1 \(6\.1\.0-\d+-amd64\): ok in [\d.]+ s/);
  assert.match(r.stderr, /usip-vm: 6\.12 \(6\.12\.\d+\+deb12-amd64\): FAILED in [\d.]+ s\n {2}- the command exited with status 1\n/);
  assert.match(r.stderr, /kernel log: \/\S+\/kernel\.log/);
  assert.match(r.stderr, /usip-vm: 1 of 2 kernels ok/);
});

test('bad input: exit 2 and a message that names what was wrong', () => {
  const cases: Array<[string[], RegExp]> = [
    [['run', '--kernel', 'latest', '--', 'true'], /usip-vm: error: unknown kernel selector "latest"/],
    [['run', '--kernel', '6.1', '--param', 'tag=1', '--', 'true'], /module parameter "tag=1" is not of the form module\.key=value/],
    [['run', '--kernel', '6.1', '--timeout', 'soon', '--', 'true'], /--timeout must be a positive integer \(got "soon"\)/],
    [['build-module', '--kernel', '6.1', '--src', workspaceRoot, '--out', '/tmp/x'], new RegExp(`${workspaceRoot} has neither a Kbuild nor a Makefile`)],
    [['run', '--kernel', '6.1'], /missing required argument 'command'/],
    [['run', '--kernel', '6.1', '--kernel-arg', 'a b', '--', 'true'], /kernel argument "a b" is not one word of printable ASCII/],
  ];
  for (const [args, message] of cases) {
    const r = usipVm(...args);
    assert.ok(r.code !== 0, `${args.join(' ')} must fail`);
    assert.match(r.stderr, message, args.join(' '));
    assert.is(r.stdout, '', `${args.join(' ')} prints nothing on stdout`);
  }
});

test.run();
