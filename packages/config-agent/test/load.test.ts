import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { NotifierConfig, NotifierFileError, parseNotifierFile } from '../src/index.js';

const execFileAsync = promisify(execFile);
const bin = fileURLToPath(new URL('../dist/bin.js', import.meta.url));

/** Runs the built usip-agent as a real child process and returns its exit code and output. */
async function runAgent(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [bin, ...args]);
    return { code: 0, stdout, stderr };
  } catch (error) {
    const { code, stdout, stderr } = error as { code: number; stdout: string; stderr: string };
    return { code, stdout, stderr };
  }
}

const enospcToLog = {
  description: 'log ENOSPC everywhere',
  scope: 'global',
  notifiers: [{ type: 'storage', action: 'enospc', kernelLog: true, run: ['/usr/bin/logger', 'disk full'] }],
};

function problemsOf(text: string) {
  try {
    parseNotifierFile('/etc/usip.d/x.json', text);
  } catch (error) {
    assert.instance(error, NotifierFileError);
    return (error as NotifierFileError).problems;
  }
  throw new Error('expected the file to be rejected');
}

test('a valid file is accepted as written', () => {
  const file = parseNotifierFile('/etc/usip.d/ok.json', JSON.stringify(enospcToLog));
  assert.is(file.path, '/etc/usip.d/ok.json');
  assert.equal(file.notifiers, enospcToLog.notifiers);
  assert.is(file.scope, 'global');
});

test('an action of the wrong type names the pointer and the rule', () => {
  const problems = problemsOf(JSON.stringify({ notifiers: [{ type: 'mtab', action: 'enospc' }] }));
  assert.equal(problems, [
    {
      file: '/etc/usip.d/x.json',
      pointer: '/notifiers/0/action',
      rule: 'enum',
      message: 'must be one of "mount", "umount", "move", "remount"',
    },
  ]);
});

test('unknown types, unknown keys and missing keys are each reported', () => {
  const problems = problemsOf(
    JSON.stringify({ notifiers: [{ type: 'disk', action: 'x' }, { type: 'storage' }, { type: 'mtab', action: 'mount', colour: 1 }] }),
  );
  const summary = problems.map((p) => `${p.pointer} ${p.rule}`);
  assert.ok(summary.includes('/notifiers/0/type discriminator'), summary.join('; '));
  assert.ok(summary.includes('/notifiers/1 required'), summary.join('; '));
  assert.ok(summary.includes('/notifiers/2 additionalProperties'), summary.join('; '));
  assert.ok(problems.some((p) => p.message === 'unknown property "colour"'));
});

test('a JSON syntax error gives line and column', () => {
  const problems = problemsOf('{\n  "notifiers": [\n    { "type": "mtab", }\n  ]\n}\n');
  assert.is(problems.length, 1);
  assert.is(problems[0]!.rule, 'json');
  assert.match(problems[0]!.message, /line 3, column \d+/);
});

test('a bad update keeps the last good content of that file', () => {
  const config = new NotifierConfig();
  assert.equal(config.update('/etc/usip.d/a.json', JSON.stringify(enospcToLog)), []);
  const problems = config.update('/etc/usip.d/a.json', '{"notifiers": []}');
  assert.is(problems[0]!.rule, 'minItems');
  assert.is(config.files.length, 1);
  assert.equal(config.files[0]!.notifiers, enospcToLog.notifiers);
});

test('usip-agent check reads a real directory, names the bad file and exits 1', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'usip-agent-'));
  try {
    await writeFile(join(dir, '10-good.json'), JSON.stringify(enospcToLog));
    await writeFile(join(dir, '20-bad.json'), JSON.stringify({ notifiers: [{ type: 'mtab', action: 'mount', run: [] }] }));
    await writeFile(join(dir, 'README.txt'), 'not a notifier file');
    const failure = await runAgent(['check', '--config-dir', dir]);
    assert.is(failure.code, 1);
    assert.match(failure.stderr, `${join(dir, '20-bad.json')}: /notifiers/0/run: must NOT have fewer than 1 items [minItems]`);
    assert.match(failure.stdout, '1 valid file(s), 1 notifier(s), 1 problem(s)');

    await rm(join(dir, '20-bad.json'));
    const success = await runAgent(['check', '--config-dir', dir]);
    assert.is(success.code, 0, success.stderr);
    assert.match(success.stdout, '1 valid file(s), 1 notifier(s), 0 problem(s)');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
