// The pure parts of `usip df`: df's number formats (gnulib's human_readable() with df's
// rounding up, Use%), its table (headers, minimum widths, alignment), which mounts it shows
// (pseudo and zero-size file systems, one row per device), --output lists and --json. The
// command runs next to coreutils' df in the VM (vm-df.test.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { StatfsInfo } from '@usip/client';
import { quote } from '@usip/client';
import { dfColumns, dfJson, filterAll, filterLikeDf, formatDf, humanReadable, isRemote, parseOutputFields, percent, totalEntry, type DfEntry } from '../src/df.js';

const K = 1024n;

test('human_readable as df -h calls it: powers of 1024, one decimal below 10, rounded up', () => {
  const h = (bytes: bigint) => humanReadable(bytes, 1n, 1n, true);
  assert.is(h(0n), '0');
  assert.is(h(1n), '1');
  assert.is(h(1023n), '1023');
  assert.is(h(1024n), '1.0K');
  assert.is(h(1025n), '1.1K');
  assert.is(h(1536n), '1.5K');
  assert.is(h(10n * K - 1n), '10K');
  assert.is(h(10n * K), '10K');
  assert.is(h(10n * K + 1n), '11K');
  assert.is(h(K * K - 1n), '1.0M');
  assert.is(h(4n * K * K), '4.0M');
  assert.is(h(300n * K), '300K');
  assert.is(h(3796n * K), '3.8M');
  assert.is(h(1000n * K * K), '1000M');
  assert.is(h(1023n * K * K + 1n), '1.0G');
  assert.is(h(969n * K * K + 123n), '970M');
  // Counts of 4 KiB blocks, as df passes them (input units = f_frsize).
  assert.is(humanReadable(248_038n, 4096n, 1n, true), '969M');
  assert.is(humanReadable(2n ** 64n - 1n, 4096n, 1n, true), '64Z');
});

test('1K blocks, as df -k prints them: exact when the fragment size is a multiple, else rounded up', () => {
  assert.is(humanReadable(1024n, 4096n, 1024n, false), '4096');
  assert.is(humanReadable(3n, 512n, 1024n, false), '2');
  assert.is(humanReadable(0n, 4096n, 1024n, false), '0');
  assert.is(humanReadable(7n, 1000n, 1024n, false), '7');
  assert.is(humanReadable(2n ** 64n - 1n, 4096n, 1024n, false), '73786976294838206460');
  // Inode counts: as they are.
  assert.is(humanReadable(248_038n, 1n, 1n, false), '248038');
});

test('Use%: used over used + available, rounded up; "-" when there is nothing', () => {
  assert.is(percent(0n, 0n), '-');
  assert.is(percent(300n, 3796n), '8%');
  assert.is(percent(37n, 63n), '37%');
  assert.is(percent(1n, 999n), '1%');
  assert.is(percent(0n, 5n), '0%');
  assert.is(percent(5n, 0n), '100%');
});

function fs(id: number, source: string, fsType: string, mountPoint: string, blocks: bigint, dev: [number, number], extra: Partial<StatfsInfo> = {}): StatfsInfo {
  return {
    id,
    mountPoint,
    fsType,
    source,
    major: dev[0],
    minor: dev[1],
    mntNs: 4026531841,
    usage: {
      bsize: 4096n,
      frsize: 4096n,
      blocks,
      blocksFree: blocks / 2n,
      blocksAvailable: blocks / 2n,
      files: 1000n,
      filesFree: 990n,
      fsid: 7n,
      nameMax: 255,
      flags: 0x20,
      flagNames: ['valid'],
    },
    ...extra,
  } as StatfsInfo;
}

test('which mounts df shows without -a: no pseudo file system, none of size 0, one per device', () => {
  const entries: DfEntry[] = [
    { info: fs(1, '/dev/vda1', 'ext4', '/', 1000n, [254, 1]), root: '/' },
    { info: fs(2, 'proc', 'proc', '/proc', 0n, [0, 20]) },
    { info: fs(3, 'sysfs', 'sysfs', '/sys', 0n, [0, 21]) },
    { info: fs(4, 'tmpfs', 'tmpfs', '/run', 100n, [0, 22]), root: '/' },
    { info: fs(5, 'none', 'tmpfs', '/empty', 0n, [0, 23]) },
    // A bind of a directory of / (deeper in the source): the entry for / stays.
    { info: fs(6, '/dev/vda1', 'ext4', '/srv/www', 1000n, [254, 1]), root: '/var/www' },
    // A mount of tmpfs 0:22 nearer the root, but deeper in its source: does not win.
    { info: fs(7, 'tmpfs', 'tmpfs', '/r', 100n, [0, 22]), root: '/sub' },
    // A source with a '/' beats one without, wherever it is.
    { info: fs(8, 'data', 'xfs', '/data', 500n, [8, 16]), root: '/' },
    { info: fs(9, '/dev/sdb', 'xfs', '/mnt/deep/data', 500n, [8, 16]), root: '/' },
    // Remote mounts of different sources on one device are all shown.
    { info: fs(10, 'srv:/a', 'nfs4', '/net/a', 50n, [0, 50]), root: '/' },
    { info: fs(11, 'srv:/b', 'nfs4', '/net/b', 50n, [0, 50]), root: '/' },
    // Another source mounted over the same mount point: the later one wins.
    { info: fs(12, 'one', 'tmpfs', '/over', 10n, [0, 60]), root: '/' },
    { info: fs(13, 'two', 'tmpfs', '/over', 10n, [0, 60]), root: '/' },
  ];
  assert.equal(filterLikeDf(entries, {}).map((e) => e.info.id), [1, 4, 9, 10, 11, 13]);
  assert.equal(filterLikeDf(entries, { types: ['tmpfs'] }).map((e) => e.info.id), [4, 13]);
  assert.equal(filterLikeDf(entries, { excludeTypes: ['ext4', 'nfs4'] }).map((e) => e.info.id), [4, 9, 13]);
  // -a: every one, in order; -t and -x still apply.
  assert.is(filterAll(entries, {}).length, entries.length);
  assert.equal(filterAll(entries, { types: ['proc', 'sysfs'] }).map((e) => e.info.id), [2, 3]);
  // A mount whose statfs failed is kept, to be reported.
  const late: DfEntry = { info: { ...fs(14, 'hung', 'fuse.hung', '/hung', 0n, [0, 70]), usage: undefined, error: { errno: 110, code: 'ETIMEDOUT', message: 'Connection timed out' } } as StatfsInfo };
  assert.equal(filterLikeDf([...entries, late], {}).map((e) => e.info.id), [1, 4, 9, 10, 11, 13, 14]);
  assert.ok(isRemote('//host/share', 'cifs') && isRemote('-hosts', 'autofs') && !isRemote('//x', 'tmpfs') && !isRemote('/dev/sda', 'ext4'));
});

test('the table: df\'s headers and minimum widths, numbers right-aligned, the last column without trailing blanks', () => {
  const rows: DfEntry[] = [
    { info: fs(1, 'fill', 'tmpfs', '/tmp/dfx/a', 1024n, [0, 31]) },
    { info: fs(2, 'a-long-source-name-here', 'tmpfs', '/x y\tz', 262_144n, [0, 32]) },
  ];
  assert.is(
    formatDf(rows, {}),
    [
      'Filesystem              1K-blocks   Used Available Use% Mounted on',
      'fill                         4096   2048      2048  50% /tmp/dfx/a',
      'a-long-source-name-here   1048576 524288    524288  50% /x y?z',
      '',
    ].join('\n'),
  );
  assert.is(
    formatDf(rows.slice(0, 1), { human: true }),
    ['Filesystem      Size  Used Avail Use% Mounted on', 'fill            4.0M  2.0M  2.0M  50% /tmp/dfx/a', ''].join('\n'),
  );
  assert.is(
    formatDf(rows.slice(0, 1), { inodes: true, printType: true }),
    ['Filesystem     Type  Inodes IUsed IFree IUse% Mounted on', 'fill           tmpfs   1000    10   990    1% /tmp/dfx/a', ''].join('\n'),
  );
  assert.is(
    formatDf(rows.slice(0, 1), { output: ['target', 'size', 'file', 'source'] }),
    ['Mounted on 1K-blocks File Filesystem', '/tmp/dfx/a      4096 -    fill', ''].join('\n'),
  );
  assert.equal(dfColumns({ output: parseOutputFields('size,avail'), human: true }).map((c) => c.header), ['Size', 'Avail']);
  assert.equal(dfColumns({}).map((c) => c.header), ['Filesystem', '1K-blocks', 'Used', 'Available', 'Use%', 'Mounted on']);
});

test('-H in powers of 1000 (a lower-case k), -P\'s POSIX headers, --total\'s sums in a last row', () => {
  assert.is(humanReadable(4096n, 1n, 1n, true, 1000n), '4.1k');
  assert.is(humanReadable(1_500_000n, 1n, 1n, true, 1000n), '1.5M');
  const rows: DfEntry[] = [
    { info: fs(1, 'fill', 'tmpfs', '/tmp/dfx/a', 1024n, [0, 31]) },
    { info: fs(2, 'two', 'tmpfs', '/tmp/dfx/b', 2048n, [0, 32]) },
  ];
  assert.equal(dfColumns({ portability: true }).map((c) => c.header), ['Filesystem', '1024-blocks', 'Used', 'Available', 'Capacity', 'Mounted on']);
  assert.equal(dfColumns({ portability: true, si: true }).map((c) => c.header), ['Filesystem', 'Size', 'Used', 'Avail', 'Use%', 'Mounted on']);
  assert.is(
    formatDf(rows, { si: true, printType: true }, totalEntry(rows)),
    [
      'Filesystem     Type   Size  Used Avail Use% Mounted on',
      'fill           tmpfs  4.2M  2.1M  2.1M  50% /tmp/dfx/a',
      'two            tmpfs  8.4M  4.2M  4.2M  50% /tmp/dfx/b',
      'total          -       13M  6.3M  6.3M  50% -',
      '',
    ].join('\n'),
  );
  const total = dfJson(totalEntry(rows));
  assert.equal([total.size, total.used, total.avail, total.itotal], [12_582_912n, 6_291_456n, 6_291_456n, 2000n]);
});

test('--output lists: df\'s field names, each once; anything else names the bad field', () => {
  assert.equal(parseOutputFields('source,target'), ['source', 'target']);
  assert.throws(() => parseOutputFields('source,blocks'), /option --output: field "blocks" unknown; the fields are source,fstype,itotal,iused,iavail,ipcent,size,used,avail,pcent,file,target/);
  assert.throws(() => parseOutputFields('size,size'), /option --output: field "size" used more than once/);
  assert.throws(() => parseOutputFields(''), /field "" unknown/);
});

test('--json: the mount, its usage in bytes and inodes and the percentages as numbers; an error instead of numbers', () => {
  const entry = { info: fs(1, 'fill', 'tmpfs', '/tmp/dfx/a', 1024n, [0, 31], { uniqueId: 2147483690n }), file: 'data' };
  assert.equal(dfJson(entry), {
    source: 'fill',
    fstype: 'tmpfs',
    target: '/tmp/dfx/a',
    file: 'data',
    mountId: 1,
    uniqueId: 2147483690n,
    major: 0,
    minor: 31,
    size: 4194304n,
    used: 2097152n,
    avail: 2097152n,
    pcent: 50,
    itotal: 1000n,
    iused: 10n,
    iavail: 990n,
    ipcent: 1,
    bsize: 4096n,
    frsize: 4096n,
    blocks: 1024n,
    blocksFree: 512n,
    blocksAvailable: 512n,
    fsid: 7n,
    nameMax: 255,
    flags: ['valid'],
  });
  const late = { ...fs(2, 'hung', 'fuse.hung', '/hung', 0n, [0, 70]), usage: undefined, error: { errno: 110, code: 'ETIMEDOUT', message: 'Connection timed out' } } as StatfsInfo;
  assert.equal(dfJson({ info: late }), {
    source: 'hung', fstype: 'fuse.hung', target: '/hung', mountId: 2, major: 0, minor: 70,
    error: { code: 'ETIMEDOUT', message: 'Connection timed out' },
  });
});

test('names in messages are quoted as df quotes them: only when the shell would need it', () => {
  assert.is(quote('/mnt/x', 'shell'), '/mnt/x');
  assert.is(quote('/mnt/with space', 'shell'), "'/mnt/with space'");
  assert.is(quote("/it's", 'shell'), "'/it'\\''s'");
});

test.run();
