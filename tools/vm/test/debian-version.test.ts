import { execFileSync } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { compareDebianVersions } from '../src/debian-version.js';

const sign = (n: number) => Math.sign(n);

test('orders an ascending list the way Debian does', () => {
  const ascending = ['1.0~rc1', '1.0', '1.0-1', '1.0-1+b1', '1.0a', '1.0.1', '1.2', '1.10', '1:0.1'];
  for (let i = 0; i + 1 < ascending.length; i += 1) {
    const a = ascending[i] as string;
    const b = ascending[i + 1] as string;
    assert.is(sign(compareDebianVersions(a, b)), -1, `${a} < ${b}`);
    assert.is(sign(compareDebianVersions(b, a)), 1, `${b} > ${a}`);
  }
});

test('orders kernel package versions of bookworm, -security and -backports', () => {
  assert.ok(compareDebianVersions('6.12.117-1~deb12u1', '6.12.95-1~bpo12+1') > 0);
  assert.ok(compareDebianVersions('6.1.192-2', '6.1.176-1') > 0);
  assert.ok(compareDebianVersions('6.12.95-1~bpo12+1', '6.12.95-1') < 0, 'a backport sorts below the release it backports');
  assert.ok(compareDebianVersions('6.1.0-56', '6.1.0-9') > 0, 'ABI numbers compare as numbers');
});

test('treats equal versions and leading zeros as equal', () => {
  assert.is(compareDebianVersions('1.0-1', '1.0-1'), 0);
  assert.is(compareDebianVersions('1.01', '1.1'), 0);
  assert.is(compareDebianVersions('0:2.5', '2.5'), 0);
});

test('agrees with dpkg --compare-versions', () => {
  const versions = [
    '1.0', '1.0~', '1.0~~', '1.0-0', '1.0+dfsg', '1.0a~b', '2:1.0', '1.0-1~bpo12+1',
    '6.12.117-1~deb12u1', '6.12.95-1~bpo12+1', '6.1.192-2', '10', '9', '1a', '1A', '1.0.0', '1..0', '1.0-a', '1.0-1.1',
  ];
  for (const a of versions) {
    for (const b of versions) {
      const lt = (() => {
        try {
          execFileSync('dpkg', ['--compare-versions', a, 'lt', b]);
          return true;
        } catch {
          return false;
        }
      })();
      assert.is(compareDebianVersions(a, b) < 0, lt, `${a} lt ${b} (dpkg says ${lt})`);
    }
  }
});

test('rejects malformed versions with a message naming them', () => {
  assert.throws(() => compareDebianVersions('', '1'), /empty Debian version/);
  assert.throws(() => compareDebianVersions('x:1', '1'), /bad epoch "x" in Debian version "x:1"/);
});

test.run();
