// End to end: `usip df` → client (statfsAll, statfs, mounts) → napi binding → usip.ko in a real
// kernel, side by side with coreutils' own df on the same mounts. Boots each supported kernel
// once and runs test/guest/df.sh there, in a private mount namespace: tmpfs mounts of known
// sizes, a bind, a second proc; df and usip df with the same options must print the same bytes
// (default, -k, -h, -i, -ih, -a, -T, -t, --output in full and in part, FILE arguments, as root
// and as uid 65534), --json must hold df -B1's numbers, bad options are usage errors naming what
// is wrong, and a FUSE file system that never answers statfs is reported ("Connection timed
// out") without holding up the rest.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { runInVm } from '@usip/vm';
import { read, step } from './vm-results.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));

/** The pairs df.sh runs: the same options to df and to usip df. */
const PAIRS = [
  'default', 'k', 'h', 'i', 'ih', 'all', 'type', 'only-tmpfs', 'output-all', 'output-some', 'output-h', 'nobody-default',
  'si', 'si-inodes', 'last-scale', 'posix', 'posix-h', 'total', 'total-h', 'total-output', 'local',
];

interface JsonEntry {
  source: string | null;
  fstype: string;
  target: string;
  mountId: number;
  size?: string;
  used?: string;
  avail?: string;
  pcent?: number | null;
  itotal?: string;
  iused?: string;
  iavail?: string;
  ipcent?: number | null;
  error?: { code: string; message: string };
}

for (const kernel of ['6.1', '6.12']) {
  const run = await runInVm({
    kernel,
    modules: [join(root, 'packages/kernel-module/build/{kver}/usip.ko')],
    command: ['sh', 'packages/cli/test/guest/df.sh'],
    cwd: root,
    timeoutMs: 300_000,
    stream: true,
  });
  const test = suite(`usip df next to df in the ${kernel} guest (${run.kernel.release})`);
  const seconds = (name: string) => {
    const [start, end] = read(run, `${name}.time`).trim().split(' ').map(Number);
    return end! - start!;
  };

  test('the guest ran the script to the end, the module unloaded, the kernel log is clean', () => {
    assert.is(run.timedOut, false, 'timed out');
    assert.equal(run.loadErrors, [], 'usip.ko loaded');
    assert.equal(run.problems, [], 'kernel log problems');
    assert.is(run.exitCode, 0, run.output);
    assert.is(run.unloaded, true, 'usip unloaded');
    assert.is(read(run, 'uname').trim(), run.kernel.release);
  });

  for (const name of PAIRS) {
    test(`${name}: usip df prints what df prints, byte for byte, with the same exit status`, () => {
      const df = step(run, `${name}-df`);
      const usip = step(run, `${name}-usip`);
      assert.is(df.status, 0, df.err);
      assert.is(usip.status, 0, usip.err);
      assert.is(usip.err, '');
      assert.ok(df.out.split('\n').length >= 4, `df printed rows: ${df.out}`);
      assert.fixture(usip.out, df.out);
    });
  }

  test('the rows df shows: sizes, a partly filled one, no zero-size or pseudo file system without -a, one row per device', () => {
    const out = step(run, 'default-usip').out;
    assert.match(out, /^fill +4096 +300 +3796 +8% \/tmp\/dfx\/a$/m);
    // 37 KiB written take 10 pages of tmpfs.
    assert.match(out, /^small +100 +40 +60 +40% \/tmp\/dfx\/c$/m);
    assert.match(out, /^odd +2048 +0 +2048 +0% \/tmp\/dfx\/with space$/m);
    assert.match(out, /^rofs +1024 /m);
    // The bind of a/sub is the same device as a, farther from the root: left out.
    assert.not.match(out, /\/tmp\/dfx\/bind/);
    assert.not.match(out, /\/tmp\/dfx\/proc2/);
    const all = step(run, 'all-usip').out;
    assert.match(all, /^proc +0 +0 +0 +- \/tmp\/dfx\/proc2$/m);
    assert.match(all, /^fill +4096 +300 +3796 +8% \/tmp\/dfx\/bind$/m);
    assert.match(step(run, 'h-usip').out, /^fill +4\.0M +300K +3\.8M +8% \/tmp\/dfx\/a$/m);
    assert.match(step(run, 'i-usip').out, /^fill +1000 +3 +997 +1% \/tmp\/dfx\/a$/m);
  });

  test('FILE arguments: the mount each is on (a file, "..", a bind, a space), as df; a missing one is reported, the others printed, exit 1', () => {
    const df = step(run, 'paths-df');
    const usip = step(run, 'paths-usip');
    assert.equal([usip.status, usip.err], [0, '']);
    assert.fixture(usip.out, df.out);
    assert.is(usip.out.trim().split('\n').length, 6);
    const dfMissing = step(run, 'missing-df');
    const missing = step(run, 'missing-usip');
    assert.fixture(missing.out, dfMissing.out);
    assert.is(dfMissing.status, 1);
    assert.is(missing.status, 1);
    assert.is(dfMissing.err, 'df: /nonexistent: No such file or directory\n');
    assert.is(missing.err, 'usip df: /nonexistent: No such file or directory\n');
  });

  test('--json: every row of df, with df -B1\'s bytes and inodes and the same percentages', () => {
    const json = step(run, 'json-usip');
    assert.is(json.status, 0, json.err);
    const { filesystems } = JSON.parse(json.out) as { filesystems: JsonEntry[] };
    const lines = step(run, 'json-df').out.trim().split('\n').slice(1);
    assert.is(filesystems.length, lines.length);
    filesystems.forEach((fs, i) => {
      // The target is last: it may have spaces.
      const [source, size, used, avail, pcent, itotal, iused, iavail, ipcent, ...rest] = lines[i]!.trim().split(/ +/);
      const target = rest.join(' ');
      const pct = (text: string | undefined) => (text === '-' ? null : Number(text!.replace('%', '')));
      assert.equal(
        [fs.source, fs.target, fs.size, fs.used, fs.avail, fs.pcent, fs.itotal, fs.iused, fs.iavail, fs.ipcent],
        [source, target, size, used, avail, pct(pcent), itotal, iused, iavail, pct(ipcent)],
        lines[i],
      );
      assert.ok(Number.isInteger(fs.mountId));
    });
  });

  test('bad options are usage errors (exit 2) that name what is wrong', () => {
    const field = step(run, 'bad-field');
    assert.is(field.status, 2);
    assert.match(field.err, /field "blocks" unknown; the fields are source,fstype,/);
    assert.match(step(run, 'twice').err, /field "source" used more than once/);
    assert.is(step(run, 'twice').status, 2);
    assert.match(step(run, 'inodes-output').err, /option '-i, --inodes' cannot be used with option '--output/);
    assert.is(step(run, 'inodes-output').status, 2);
    assert.match(step(run, 'bad-timeout').err, /option '--timeout <ms>' argument '0' is invalid\. expected an integer from 1 to 60000/);
    assert.is(step(run, 'bad-timeout').status, 2);
  });

  test('a FUSE file system that never answers statfs: usip df says so on stderr, prints every other row, exit 1, in about the timeout', () => {
    const before = step(run, 'default-usip').out;
    const hung = step(run, 'hung-default');
    assert.is(hung.status, 1, hung.err);
    assert.is(hung.err, 'usip df: /tmp/dfx/hung: Connection timed out\n');
    // The same rows as without it: the hung one has none.
    assert.fixture(hung.out, before);
    const took = seconds('hung-default');
    assert.ok(took >= 1 && took < 8, `usip df took ${took} s with the default timeout of 1 s`);
    // The superblock's statfs is still pending: later requests do not wait, even with a long timeout.
    const again = step(run, 'hung-again');
    assert.equal([again.status, again.err], [1, 'usip df: /tmp/dfx/hung: Connection timed out\n']);
    assert.ok(seconds('hung-again') < took + 0.5 && seconds('hung-again') < 8, `${seconds('hung-again')} s with --timeout 20000`);
    const byPath = step(run, 'hung-path');
    assert.equal([byPath.status, byPath.err], [1, 'usip df: /tmp/dfx/hung: Connection timed out\n']);
    assert.match(byPath.out, /^fill +4096 +300 +3796 +8% \/tmp\/dfx\/a$/m);
    const json = step(run, 'hung-json');
    assert.is(json.status, 1);
    const entry = (JSON.parse(json.out) as { filesystems: JsonEntry[] }).filesystems.find((f) => f.target === '/tmp/dfx/hung');
    assert.equal({ fstype: entry?.fstype, error: entry?.error, size: entry?.size }, {
      fstype: 'fuse.hung',
      error: { code: 'ETIMEDOUT', message: 'Connection timed out' },
      size: undefined,
    });
    // The daemon died: the connection is aborted and statfs answers at once with an error.
    const dead = step(run, 'hung-dead');
    assert.is(dead.status, 1);
    assert.is(dead.err, 'usip df: /tmp/dfx/hung: Transport endpoint is not connected\n');
  });

  test.run();
}
