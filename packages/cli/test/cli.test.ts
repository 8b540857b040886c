// Host tests: `usip` as a real child process, on the development machine's kernel, which has
// generic netlink but not the usip module.
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
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

test('status without the module exits 1, says how to load it, and shows which backend serves each feature', async () => {
  const { code, stdout, stderr } = await usip('status');
  assert.is(code, 1);
  assert.match(stdout, /^usip module is not loaded: storage events and low space unavailable; the rest is served without it\nbackends, kernel /);
  for (const feature of ['mount table', 'mount changes', 'remounts', 'statfs', 'block devices', 'storage events', 'low space']) {
    assert.match(stdout, new RegExp(`\\n  ${feature} +(kernel|mountinfo|none) `), feature);
  }
  assert.match(stderr, /^usip: The usip kernel module is not loaded/);
  assert.match(stderr, 'modprobe usip');
});

test('status --json without the module reports loaded: false with the same message, and the backends', async () => {
  const { code, stdout, stderr } = await usip('status', '--json');
  assert.is(code, 1);
  const report = JSON.parse(stdout);
  assert.is(report.loaded, false);
  assert.is(report.error.code, 'USIP_MODULE_NOT_LOADED');
  assert.match(stderr, report.error.message);
  assert.is(report.client.protocolVersion, 1);
  assert.is(report.backends.moduleLoaded, false);
  assert.equal(report.backends.features.map((c: { feature: string }) => c.feature), ['mount-table', 'mount-changes', 'remounts', 'statfs', 'block-devices', 'storage-events', 'low-space']);
});

test('an unknown option or command is a usage error (exit 2) that names it', async () => {
  const option = await usip('status', '--jsonn');
  assert.is(option.code, 2);
  assert.match(option.stderr, "unknown option '--jsonn'");
  const command = await usip('statsu');
  assert.is(command.code, 2);
  assert.match(command.stderr, "unknown command 'statsu'");
});

test('listeners, stats, inject, listen and --backend module without the module exit 1 with the same message', async () => {
  for (const args of [
    ['listeners'],
    ['listeners', '--json'],
    ['stats', '--json'],
    ['inject', '--type', 'mtab', '--action', 'mount'],
    ['listen', '--notifier', 'mtab:mount'],
    ['mounts', '--backend', 'module'],
    ['mounts', '--dump', '--backend', 'module'],
    ['mount', '27', '--backend', 'module'],
    ['watch', '--dump', '--count', '1', '--backend', 'module'],
    ['df', '--backend', 'module'],
    ['devices', '--backend', 'module'],
  ]) {
    const { code, stdout, stderr } = await usip(...args);
    assert.is(code, 1, args.join(' '));
    assert.is(stdout, '', args.join(' '));
    assert.match(stderr, /^usip: (the module backend was asked for \(--backend module\), and it cannot serve the [a-z ]+\. )?The usip kernel module is not loaded/, args.join(' '));
  }
});

test('mounts, mount, df and devices work without the module', async () => {
  for (const args of [['mounts'], ['mounts', '--dump'], ['mounts', '-J'], ['mounts', '-l'], ['df', '-h', '--json'], ['df', '-i', '/tmp'], ['devices']]) {
    const { code, stdout, stderr } = await usip(...args);
    assert.is(code, 0, `${args.join(' ')}: ${stderr}`);
    assert.ok(stdout.length > 0, args.join(' '));
  }
  const { stdout } = await usip('mounts', '--dump');
  const root = (JSON.parse(stdout).mounts as { id: number; mountPoint: string }[]).find((m) => m.mountPoint === '/')!;
  const one = await usip('mount', String(root.id), '--json');
  assert.is(one.code, 0, one.stderr);
  assert.is(JSON.parse(one.stdout).mountPoint, '/');
  const none = await usip('mount', '999999999');
  assert.is(none.code, 1);
  assert.match(none.stderr, "usip: usip mount-get: no mount 999999999 in the caller's mount namespace, under its root");
});

test('--backend takes module, kernel or mountinfo; anything else is a usage error naming them', async () => {
  await usage(['mounts', '--backend', 'netlink'], "option '--backend <backend>' argument 'netlink' is invalid. expected one of module, kernel, mountinfo");
  await usage(['status', '--backend', ''], 'expected one of module, kernel, mountinfo');
});

async function usage(args: string[], ...patterns: (string | RegExp)[]): Promise<void> {
  const { code, stdout, stderr } = await usip(...args);
  assert.is(code, 2, `${args.join(' ')}: ${stderr}`);
  assert.is(stdout, '', args.join(' '));
  for (const pattern of patterns) assert.match(stderr, pattern, args.join(' '));
}

test('df: a bad field, a field twice, --output with -i, -T or --json, a bad timeout are usage errors (exit 2) naming them, before any module call', async () => {
  await usage(['df', '--output=source,blocks'], 'field "blocks" unknown; the fields are source,fstype,itotal,iused,iavail,ipcent,size,used,avail,pcent,file,target');
  await usage(['df', '--output=target,size,target'], 'field "target" used more than once');
  await usage(['df', '-i', '--output'], "option '-i, --inodes' cannot be used with option '--output [fields]'");
  await usage(['df', '-T', '--output=source'], "option '-T, --print-type' cannot be used with option '--output [fields]'");
  await usage(['df', '--json', '--output=source'], "option '--json' cannot be used with option '--output [fields]'");
  await usage(['df', '--timeout', '60001'], "option '--timeout <ms>' argument '60001' is invalid. expected an integer from 1 to 60000");
  await usage(['df', '-q'], "unknown option '-q'");
});

test('inject: a bad type, action or value is a usage error (exit 2) naming it, before any module call', async () => {
  await usage(['inject', '--type', 'mtab', '--action', 'enospc'], "argument 'enospc' is invalid", '"enospc" is not an mtab action; mtab actions are mount, umount, move, remount');
  await usage(['inject', '--type', 'storage', '--action', 'lowspace'], 'unknown action "lowspace"; storage actions are enospc, edquot, low-space');
  await usage(['inject', '--type', 'disk', '--action', 'mount'], "argument 'disk' is invalid. Allowed choices are mtab, storage");
  await usage(['inject', '--type', 'mtab'], "required option '--action <action>' not specified");
  await usage(['inject', '--action', 'mount'], "required option '--type <type>' not specified");
  await usage(['inject', '--type', 'mtab', '--action', 'mount', '--repeat', '0'], "'--repeat <n>' argument '0' is invalid. expected an integer from 1 to 65536");
  await usage(['inject', '--type', 'mtab', '--action', 'mount', '--repeat', '65537'], "argument '65537' is invalid");
  await usage(['inject', '--type', 'mtab', '--action', 'mount', '--mount-id', '-1'], "'--mount-id <id>' argument '-1' is invalid");
  await usage(['inject', '--type', 'mtab', '--action', 'mount', '--dev', '8:x'], "'--dev <dev>' argument '8:x' is invalid");
});

test('listen: notifiers are required and checked, and so is --count', async () => {
  await usage(['listen'], "required option '--notifier <spec>' not specified");
  await usage(['listen', '--notifier', 'mtab:enospc'], "'--notifier <spec>' argument 'mtab:enospc' is invalid", 'is not an mtab action');
  await usage(['listen', '--notifier', 'mtab'], "argument 'mtab' is invalid. expected TYPE:ACTION");
  await usage(['listen', '--notifier', 'mtab:mount:frob'], 'unknown notifier option "frob"');
  await usage(['listen', '--notifier', 'storage:low-space:threshold=101'], 'threshold: expected an integer from 1 to 100');
  await usage(['listen', '--notifier', 'mtab:mount', '--count', '0'], "'--count <n>' argument '0' is invalid");
});

test('mounts, mount and watch: bad arguments are usage errors (exit 2) naming them, before any module call', async () => {
  await usage(['mount'], /^usip: give a mount id or --unique-id <id>\n/);
  await usage(['mount', '27', '--unique-id', '5'], /^usip: give a mount id \(27\) or --unique-id, not both\n/);
  await usage(['mount', 'x'], "value 'x' is invalid for argument 'id'. expected an integer from 0 to 9007199254740991");
  await usage(['mount', '-3'], "value '-3' is invalid for argument 'id'");
  await usage(['mount', '--unique-id', 'abc'], "'--unique-id <id>' argument 'abc' is invalid. expected an integer from 0 to 18446744073709551615");
  await usage(['mount', '1', '2'], 'too many arguments');
  await usage(['mounts', '--dump', '-J'], "option '--dump' cannot be used with option '-J, --json'");
  await usage(['mounts', '-o', 'TARGET,SIZZLE'], "option '-o, --output <list>' argument 'TARGET,SIZZLE' is invalid. unknown column \"SIZZLE\"; the columns are AVAIL, FSROOT, FSTYPE");
  await usage(['watch', '-o', 'ACTION,NOPE'], 'unknown column "NOPE"; the columns are FSROOT');
  await usage(['watch', '--poll=mount,explode'], "option '-p, --poll [actions]' argument 'mount,explode' is invalid. unknown action \"explode\"; the actions are mount, umount, remount, move");
  await usage(['mounts', 'x'], 'too many arguments');
  await usage(['watch', '--count', '0'], "'--count <n>' argument '0' is invalid. expected an integer from 1");
  await usage(['watch', '--receive-buffer-size', '2147483648'], "'--receive-buffer-size <bytes>' argument '2147483648' is invalid");
});

test('every error is one line on stderr prefixed "usip: ", usage errors of commander too', async () => {
  for (const args of [['status', '--jsonn'], ['mounts', '-o', 'NOPE'], ['watch', '--count', 'x'], ['statsu'], ['mounts', '--backend', 'module']]) {
    const { stderr } = await usip(...args);
    assert.match(stderr, /^usip: \S/, args.join(' '));
    assert.not.match(stderr, /^error:/m, args.join(' '));
  }
});

/** Runs `usip ARGS`, waits until it says on stderr that it is watching, sends `signal`; its exit status. */
async function signalled(signal: NodeJS.Signals, ...args: string[]): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stdout.resume();
  await new Promise<void>((resolve, reject) => {
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (/^usip: watching: /m.test(stderr)) resolve();
    });
    child.once('exit', () => reject(new Error(`usip ${args.join(' ')} exited before it watched: ${stderr}`)));
  });
  child.kill(signal);
  const [code, by] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  return { code, signal: by, stderr };
}

test('usip watch: SIGINT exits 130, SIGTERM 0 (exit codes, not deaths by signal)', async () => {
  const int = await signalled('SIGINT', 'watch', '--backend', 'mountinfo');
  assert.equal([int.code, int.signal], [130, null], int.stderr);
  const term = await signalled('SIGTERM', 'watch', '--backend', 'mountinfo', '-J');
  assert.equal([term.code, term.signal], [0, null], term.stderr);
});

test('on a terminal (a pty, COLUMNS=20), usip mounts cuts the options to fit; into a pipe it does not', async () => {
  const command = `COLUMNS=20 ${process.execPath} ${bin} mounts -l -o FSTYPE,OPTIONS --backend mountinfo`;
  const { stdout } = await execFileAsync('script', ['-qec', command, '/dev/null']);
  const lines = stdout.replace(/\r/g, '').trimEnd().split('\n');
  assert.ok(lines.length > 3, stdout);
  for (const line of lines) assert.ok(line.length <= 20, `wider than 20: ${JSON.stringify(line)}`);
  assert.match(lines[0]!, /^FSTYPE +OPTIONS$/);
  const piped = await usip('mounts', '-l', '-o', 'FSTYPE,OPTIONS', '--backend', 'mountinfo');
  assert.ok(piped.stdout.split('\n').some((line) => line.length > 20), piped.stdout);
});

test('--version prints the package version and exits 0', async () => {
  const { code, stdout } = await usip('--version');
  assert.is(code, 0);
  assert.is(stdout.trim(), '0.1.0');
});

test.run();
