// Host tests: `usip` as a real child process, on the development machine's kernel, which has
// generic netlink but not the usip module.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const execFileAsync = promisify(execFile);
const bin = fileURLToPath(new URL('../dist/bin.js', import.meta.url));

async function usip(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [bin, ...args]);
    return { code: 0, stdout, stderr };
  } catch (error) {
    const { code, stdout, stderr } = error as { code: number; stdout: string; stderr: string };
    return { code, stdout, stderr };
  }
}

test('status without the module exits 1 and says how to load it', async () => {
  const { code, stdout, stderr } = await usip('status');
  assert.is(code, 1);
  assert.is(stdout, '');
  assert.match(stderr, /^usip: The usip kernel module is not loaded/);
  assert.match(stderr, 'modprobe usip');
});

test('status --json without the module reports loaded: false with the same message', async () => {
  const { code, stdout, stderr } = await usip('status', '--json');
  assert.is(code, 1);
  const report = JSON.parse(stdout);
  assert.is(report.loaded, false);
  assert.is(report.error.code, 'USIP_MODULE_NOT_LOADED');
  assert.match(stderr, report.error.message);
  assert.is(report.client.protocolVersion, 1);
});

test('an unknown option or command is a usage error (exit 2) that names it', async () => {
  const option = await usip('status', '--jsonn');
  assert.is(option.code, 2);
  assert.match(option.stderr, "unknown option '--jsonn'");
  const command = await usip('statsu');
  assert.is(command.code, 2);
  assert.match(command.stderr, "unknown command 'statsu'");
});

test('--version prints the package version and exits 0', async () => {
  const { code, stdout } = await usip('--version');
  assert.is(code, 0);
  assert.is(stdout.trim(), '0.1.0');
});

test.run();
