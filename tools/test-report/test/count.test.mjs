import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { countTests } from '../count.mjs';

const uvuPass = '\n  Total:     3\n  Passed:    3\n  Skipped:   0\n  Duration:  1.2ms\n';
const uvuFail = '\u001b[2m\n  Total:     5\u001b[22m\n\u001b[31m  Passed:    2\u001b[39m\n  Skipped:   1\n';

test('counts a passing uvu summary', () => {
  assert.equal(countTests(uvuPass), { passed: 3, failed: 0, skipped: 0, summaries: 1 });
});

test('counts failures as total minus passed minus skipped, through ANSI colours', () => {
  assert.equal(countTests(uvuFail), { passed: 2, failed: 2, skipped: 1, summaries: 1 });
});

test('sums several uvu summaries (host run and guest runs in one output)', () => {
  const counts = countTests(uvuPass + 'guest says\r\n' + uvuFail.replace(/\n/g, '\r\n'));
  assert.equal(counts, { passed: 5, failed: 2, skipped: 1, summaries: 2 });
});

test('counts cargo test results, including doc-test blocks', () => {
  const cargo =
    'running 4 tests\ntest a ... ok\n\ntest result: ok. 4 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s\n' +
    'test result: FAILED. 1 passed; 2 failed; 1 ignored; 0 measured; 0 filtered out\n';
  assert.equal(countTests(cargo), { passed: 5, failed: 2, skipped: 1, summaries: 2 });
});

test('text without a summary counts nothing', () => {
  assert.equal(countTests('Total: lots of things\nPassed: the salt\n'), {
    passed: 0,
    failed: 0,
    skipped: 0,
    summaries: 0,
  });
});

test.run();
