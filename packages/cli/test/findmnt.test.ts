// `usip mounts` against util-linux's findmnt on this machine (kernel 6.18, no module): host/findmnt.sh
// makes mounts with a space, a tab, a newline, a backslash, a control character, UTF-8 and quotes
// in their names (shared, slave, unbindable, a bind of a directory) in a private mount namespace,
// then runs both with the same arguments (-rn -o TARGET,SOURCE,FSTYPE for every mount, -r with
// every column, the tree, -l, -n, -J tree and list, -t, -T, -o +LIST, the usage columns SIZE,
// AVAIL, USED, USE% with and without -b on mounts whose usage is fixed), with each backend, as
// root and as uid 65534. The bytes and exit statuses must be the same. The guests run the same
// script with the module (vm-mounts.test.ts).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cases, FINDMNT_CASES } from './findmnt-cases.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'usip-cli-findmnt-'));
const results = mkdtempSync(join(tmpdir(), 'usip-cli-findmnt-results-'));
const BACKENDS = ['default', 'kernel', 'mountinfo'];
execFileSync('unshare', ['-m', '--propagation', 'private', 'sh', join(root, 'packages/cli/test/host/findmnt.sh'), root, dir, results, ...BACKENDS], {
  stdio: 'inherit',
  timeout: 300_000,
});
process.on('exit', () => {
  rmSync(dir, { recursive: true, force: true });
  rmSync(results, { recursive: true, force: true });
});

const all = cases(results);

test(`every case ran: ${FINDMNT_CASES} per backend and user`, () => {
  assert.is(all.length, BACKENDS.length * 2 * FINDMNT_CASES);
});

for (const c of all) {
  test(`usip mounts = findmnt: ${c.name}`, () => {
    const [usip, findmnt] = c.status.split(' ');
    assert.is(usip, findmnt, `exit status (usip, findmnt): ${c.status}`);
    assert.fixture(c.usip, c.findmnt);
  });
}

test('the weird names are there, escaped as findmnt -r escapes them', () => {
  const raw = all.find((c) => c.name === 'kernel-root-rn')!.usip;
  for (const name of ['a\\x20b', 'tab\\x09here', 'nl\\x0ax', 'back\\x5cslash', 'utf-\\xc3\\xa9\\xe2\\x9c\\x93\\x20\\xe6\\xbc\\xa2\\xe5\\xad\\x97', 'ctl\\x01', `q"uote'`]) {
    assert.match(raw, `/base/${name} `);
  }
  assert.match(raw, /\/base\/dollar\$ t1\[\/src\] tmpfs\n/);
});

test('no match: the list exits 1 with no output (-t of no type; -T of a missing path), the tree 0 (findmnt\'s quirk)', () => {
  assert.is(all.find((x) => x.name === 'default-root-types-none')!.status, '0 0');
  for (const name of ['default-root-types-none-list', 'mountinfo-nobody-target-missing']) {
    const c = all.find((x) => x.name === name)!;
    assert.is(c.status, '1 1');
    assert.is(c.usip, '');
  }
});

test('usage columns: a fixed tmpfs\'s numbers, ramfs\'s "-", empty cells where uid 65534 cannot statfs', () => {
  for (const backend of BACKENDS) {
    const get = (name: string) => all.find((c) => c.name === `${backend}-${name}`)!;
    assert.is(get('root-usage-bytes').status, '0 0');
    // 2 MiB, 300000 bytes written (296K in 4K pages): 14% used.
    assert.match(get('root-usage-bytes').usip, /\/base\/sized +2097152 +1794048 +303104 +14% tmpfs\n/);
    assert.match(get('root-usage-json-bytes').usip, '"size": 2097152,');
    assert.match(get('root-usage-json').usip, '"size": "2M",');
    assert.match(get('nobody-usage-ramfs-raw').usip, /\/base\/open-ramfs 0 0 0 - ramfs\n/);
    // findmnt.sh makes the unreachable mount only without the module (which reaches it anyway).
    if (!existsSync('/sys/module/usip')) {
      assert.match(get('root-usage-ramfs-raw').usip, /\/base\/locked\/closed 0 0 0 - ramfs\n/);
      assert.match(get('nobody-usage-ramfs-raw').usip, /\/base\/locked\/closed     ramfs\n/);
      assert.match(get('nobody-usage-ramfs-json').usip, '"size": null,');
    }
  }
});

test.run();
