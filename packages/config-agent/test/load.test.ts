import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Ajv } from 'ajv';
import { AJV_OPTIONS, NotifierConfig, NotifierFileError, notifierFileSchema, parseNotifierFile } from '../src/index.js';
import { GENERATED, generateValidator } from '../scripts/generate-validator.js';
import { withTempDir } from './helpers.js';

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
  notifiers: [{ type: 'storage', action: 'enospc', kernLog: true, run: ['/usr/bin/logger', 'disk full'] }],
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

test('the generated validator is the schema\'s, compiled by the current ajv (else run scripts/generate-validator.ts)', async () => {
  const { js, dts } = generateValidator();
  assert.ok(js === (await readFile(GENERATED.js, 'utf8')), `${GENERATED.js} is stale: run node --import tsx packages/config-agent/scripts/generate-validator.ts`);
  assert.ok(dts === (await readFile(GENERATED.dts, 'utf8')), `${GENERATED.dts} is stale`);
});

test('the schema is valid JSON Schema, and the generator would say if it were not', () => {
  const ajv = new Ajv({ ...AJV_OPTIONS });
  assert.ok(ajv.validateSchema(notifierFileSchema), JSON.stringify(ajv.errors));
  assert.not.ok(ajv.validateSchema({ ...notifierFileSchema, required: 'notifiers' }));
});

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

test('names spelt the old way are refused with their new name, so that no file silently stops working', () => {
  const problems = problemsOf(
    JSON.stringify({
      scope: 'namespace',
      notifiers: [
        { type: 'mtab', action: 'umount', kernelLog: true },
        { type: 'storage', action: 'lowSpace', threshold: 5 },
      ],
    }),
  );
  const messages = problems.map((p) => `${p.pointer}: ${p.message}`);
  assert.ok(messages.includes('/scope: "namespace" is now called "mnt-ns"; must be one of "mnt-ns", "global"'), messages.join('; '));
  assert.ok(messages.includes('/notifiers/0: unknown key "kernelLog" (it is called "kernLog")'), messages.join('; '));
  // The spec's spelling is the one accepted: the file's actions are the spec's names.
  assert.ok(messages.some((m) => m.startsWith('/notifiers/1/action: must be one of "enospc", "edquot", "low-space", "quota"')), messages.join('; '));
  // The new names are accepted.
  const ok = JSON.stringify({ scope: 'mnt-ns', notifiers: [{ type: 'mtab', action: 'umount', kernLog: true }] });
  assert.is(parseNotifierFile('/ok.json', ok).scope, 'mnt-ns');
});

test('a JSON syntax error gives line and column', () => {
  const problems = problemsOf('{\n  "notifiers": [\n    { "type": "mtab", }\n  ]\n}\n');
  assert.is(problems.length, 1);
  assert.is(problems[0]!.rule, 'json');
  assert.match(problems[0]!.message, /line 3, column \d+/);
});

test('run: argv[0] is an absolute path or a command name, later arguments any string (empty too)', () => {
  const ok = parseNotifierFile(
    '/etc/usip.d/ok.json',
    JSON.stringify({ notifiers: [{ type: 'mtab', action: 'mount', run: ['logger', '', '--'] }, { type: 'mtab', action: 'umount', run: ['/bin/true'] }] }),
  );
  assert.equal(ok.notifiers[0]!.run, ['logger', '', '--']);
  const problems = problemsOf(JSON.stringify({ notifiers: [{ type: 'mtab', action: 'mount', run: ['./script.sh'] }, { type: 'mtab', action: 'umount', run: [''] }] }));
  assert.equal(
    problems.map((p) => [p.pointer, p.rule, p.message]),
    [
      ['/notifiers/0/run/0', 'pattern', 'must be an absolute path or a command name looked up in PATH (the agent runs in /, so a relative path would be ambiguous)'],
      ['/notifiers/1/run/0', 'minLength', 'must NOT have fewer than 1 characters'],
    ],
  );
});

test('pathPrefix must be absolute; timeoutSeconds is a positive number of at most a day', () => {
  const problems = problemsOf(
    JSON.stringify({
      notifiers: [
        { type: 'mtab', action: 'mount', pathPrefix: 'srv' },
        { type: 'mtab', action: 'mount', run: ['/bin/true'], timeoutSeconds: 0 },
        { type: 'storage', action: 'enospc', run: ['/bin/true'], timeoutSeconds: 86401 },
      ],
    }),
  );
  assert.equal(
    problems.map((p) => [p.pointer, p.rule, p.message]),
    [
      ['/notifiers/0/pathPrefix', 'pattern', 'must be an absolute path'],
      ['/notifiers/1/timeoutSeconds', 'exclusiveMinimum', 'must be > 0'],
      ['/notifiers/2/timeoutSeconds', 'maximum', 'must be <= 86400'],
    ],
  );
  const file = parseNotifierFile('/x.json', JSON.stringify({ notifiers: [{ type: 'mtab', action: 'mount', pathPrefix: '/srv', run: ['/bin/true'], timeoutSeconds: 0.5 }] }));
  assert.equal([file.notifiers[0]!.pathPrefix, file.notifiers[0]!.timeoutSeconds], ['/srv', 0.5]);
});

test('the agent\'s own rules: a notifier must do something, run needs notify, timeoutSeconds needs run', () => {
  const problems = problemsOf(
    JSON.stringify({
      notifiers: [
        { type: 'mtab', action: 'mount', notify: false },
        { type: 'mtab', action: 'umount', notify: false, kernLog: true, run: ['/bin/true'] },
        { type: 'mtab', action: 'move', timeoutSeconds: 3 },
      ],
    }),
  );
  assert.equal(
    problems.map((p) => [p.pointer, p.rule]),
    [
      ['/notifiers/0/notify', 'notify'],
      ['/notifiers/1/run', 'notify'],
      ['/notifiers/2/timeoutSeconds', 'run'],
    ],
  );
  assert.match(problems[0]!.message, 'this notifier would do nothing');
  // kern-log only is a notifier that does something.
  parseNotifierFile('/k.json', JSON.stringify({ notifiers: [{ type: 'mtab', action: 'mount', notify: false, kernLog: true }] }));
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
  await withTempDir(async (dir) => {
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
    assert.match(success.stdout, '1 valid file(s), 1 notifier(s), 0 problem(s), 0 skipped');
  });
});

test.run();

test('low-space: exactly one threshold, within the module\'s ranges; none of its options on another action', () => {
  const file = (n: object) => JSON.stringify({ notifiers: [{ type: 'storage', action: 'low-space', pathPrefix: '/var', ...n }] });
  const ok = parseNotifierFile('/etc/usip.d/v.json', file({ threshold: 10, hysteresis: 20, intervalMs: 500 }));
  assert.equal(ok.notifiers[0], { type: 'storage', action: 'low-space', pathPrefix: '/var', threshold: 10, hysteresis: 20, intervalMs: 500 });
  parseNotifierFile('/etc/usip.d/v.json', file({ thresholdBytes: 1 << 30 }));
  parseNotifierFile('/etc/usip.d/v.json', file({ thresholdInodes: 5 }));
  for (const [bad, pointer] of [
    [{}, '/notifiers/0'],
    [{ threshold: 10, thresholdInodes: 5 }, '/notifiers/0'],
    [{ threshold: 0 }, '/notifiers/0/threshold'],
    [{ threshold: 101 }, '/notifiers/0/threshold'],
    [{ threshold: 10, intervalMs: 99 }, '/notifiers/0/intervalMs'],
    [{ threshold: 10, hysteresis: 1001 }, '/notifiers/0/hysteresis'],
  ] as const) {
    const problems = problemsOf(file(bad));
    assert.ok(problems.some((p) => p.pointer === pointer), `${JSON.stringify(bad)}: ${JSON.stringify(problems)}`);
  }
  const elsewhere = problemsOf(JSON.stringify({ notifiers: [{ type: 'storage', action: 'enospc', threshold: 10 }] }));
  assert.ok(elsewhere.some((p) => p.pointer === '/notifiers/0'), JSON.stringify(elsewhere));
});

