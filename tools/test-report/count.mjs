// @ts-check
// Counts tests in the text output of uvu runs and cargo test runs (any number of each).

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*[A-Za-z]/g;
const UVU_SUMMARY = /^\s*Total:\s+(\d+)\s*\n\s*Passed:\s+(\d+)\s*\n\s*Skipped:\s+(\d+)\s*$/gm;
const CARGO_SUMMARY = /^test result: (?:ok|FAILED)\. (\d+) passed; (\d+) failed; (\d+) ignored;/gm;

/**
 * @param {string} text
 * @returns {{ passed: number, failed: number, skipped: number, summaries: number }}
 */
export function countTests(text) {
  const plain = text.replace(ANSI, '').replace(/\r/g, '');
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  let summaries = 0;
  for (const m of plain.matchAll(UVU_SUMMARY)) {
    const total = Number(m[1]);
    const ok = Number(m[2]);
    const skip = Number(m[3]);
    passed += ok;
    skipped += skip;
    failed += Math.max(0, total - ok - skip);
    summaries += 1;
  }
  for (const m of plain.matchAll(CARGO_SUMMARY)) {
    passed += Number(m[1]);
    failed += Number(m[2]);
    skipped += Number(m[3]);
    summaries += 1;
  }
  return { passed, failed, skipped, summaries };
}
