// The pure parts of usip mounts, usip mount and usip watch: findmnt's tree, list, raw and JSON
// forms, -t, -o, one mount for people, the JSON forms, the change lines (findmnt --poll). The commands run as child processes in
// cli.test.ts (host) and vm-mounts.test.ts (guest, against the module).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { toJson } from '../src/common.js';
import { parseMountinfo, type MountChange, type MountInfo, type StatfsInfo, type StatfsUsage } from '@usip/client';
import { columnParser, DEFAULT_MOUNT_COLUMNS, findmntSize, formatMounts, matchesTypes, MOUNT_COLUMNS, mountsJson, mountUsage, pollActions, POLL_COLUMNS, rawEscape, tableEscape, usePercent } from '../src/findmnt.js';
import { allOptions, changeJson, formatMount, mountJson, pollPasses, watchLine } from '../src/mounts.js';
import { displayWidth } from '../src/table.js';

const mounts: MountInfo[] = parseMountinfo(
  [
    '27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda1 rw,errors=remount-ro',
    '31 27 0:26 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw',
    '64 27 0:42 /srv/data /mnt/my\\040disk ro,nosuid,nodev master:7 propagate_from:3 - ext4 /dev/sdb1 ro',
    '65 64 0:43 / /mnt/my\\040disk/sub rw,relatime unbindable - tmpfs none rw,size=1024k,inode64',
    '70 27 0:50 / /home/u/remote rw,nosuid,nodev,relatime - fuse.sshfs u@host:/home/u rw,user_id=1000,group_id=1000',
  ].join('\n'),
  { mntNs: 4026531841 },
).map((m) => (m.id === 65 ? { ...m, uniqueId: 0x80000041n } : m));

test('OPTIONS are the per-mount options and the file system\'s, without its repeated ro/rw (as findmnt)', () => {
  assert.equal(mounts.map(allOptions), [
    'rw,relatime,errors=remount-ro',
    'rw,nosuid,nodev,noexec,relatime',
    'ro,nosuid,nodev',
    'rw,relatime,size=1024k,inode64',
    'rw,nosuid,nodev,relatime,user_id=1000,group_id=1000',
  ]);
});

test('usip mounts: findmnt\'s tree, TARGET SOURCE FSTYPE OPTIONS, a bind mount\'s root after its source', () => {
  assert.is(
    formatMounts(mounts, { columns: DEFAULT_MOUNT_COLUMNS, tree: true }),
    [
      'TARGET               SOURCE               FSTYPE     OPTIONS',
      '/                    /dev/vda1            ext4       rw,relatime,errors=remount-ro',
      '├─/proc              proc                 proc       rw,nosuid,nodev,noexec,relatime',
      '├─/mnt/my disk       /dev/sdb1[/srv/data] ext4       ro,nosuid,nodev',
      '│ └─/mnt/my disk/sub none                 tmpfs      rw,relatime,size=1024k,inode64',
      '└─/home/u/remote     u@host:/home/u       fuse.sshfs rw,nosuid,nodev,relatime,user_id=1000,group_id=1000',
      '',
    ].join('\n'),
  );
});

test('on a terminal, the options are cut to its width, down to their header; the last column is never padded', () => {
  const text = formatMounts(mounts, { columns: DEFAULT_MOUNT_COLUMNS, tree: true, width: 60 });
  assert.ok(text.split('\n').every((line) => displayWidth(line) <= 60));
  assert.match(text, /^├─\/mnt\/my disk {7}\/dev\/sdb1\[\/srv\/data\] ext4 {7}ro,nosu$/m);
  // Narrower than what can be cut: TARGET and SOURCE stay whole (findmnt never cuts a path).
  assert.match(formatMounts(mounts, { columns: DEFAULT_MOUNT_COLUMNS, tree: false, width: 10 }), /^\/mnt\/my disk\/sub none +tmpfs  rw,rela$/m);
});

test('-l, -n and the other columns: numbers right-aligned, MAJ:MIN lined up on the colon, empty cells', () => {
  const columns = columnParser(MOUNT_COLUMNS, DEFAULT_MOUNT_COLUMNS)('target,id,parent,maj:min,propagation,fsroot,opt-fields');
  assert.is(
    formatMounts(mounts.slice(2), { columns, tree: false, noHeadings: true }),
    [
      '/mnt/my disk     64     27   0:42  private,slave      /srv/data master:7 propagate_from:3',
      '/mnt/my disk/sub 65     64   0:43  private,unbindable /         unbindable',
      '/home/u/remote   70     27   0:50  private            /         ',
      '',
    ].join('\n'),
  );
});

test('-r: blanks, backslashes, control characters and non-ASCII bytes as \\xHH, one space between columns', () => {
  assert.is(rawEscape('/a b\tc\nd\\e\u0001é✓"\'$'), '/a\\x20b\\x09c\\x0ad\\x5ce\\x01\\xc3\\xa9\\xe2\\x9c\\x93"\'$');
  const weird = { ...mounts[3]!, mountPoint: '/mnt/a b', source: 't\\1' };
  assert.is(formatMounts([weird], { columns: ['TARGET', 'SOURCE', 'FSTYPE'], tree: false, raw: true, noHeadings: true }), '/mnt/a\\x20b t\\x5c1 tmpfs\n');
  // In the table only control characters are escaped.
  assert.is(tableEscape('/a b\t\\x'), '/a b\\x09\\x');
});

test('-J: findmnt\'s keys, numbers as numbers, null for empty cells, submounts as children in the tree', () => {
  const doc = JSON.parse(mountsJson(mounts, { columns: ['TARGET', 'ID', 'MAJ:MIN', 'OPT-FIELDS'], tree: true }));
  assert.equal(doc.filesystems[0].children[1], {
    target: '/mnt/my disk',
    id: 64,
    'maj:min': '0:42',
    'opt-fields': 'master:7 propagate_from:3',
    children: [{ target: '/mnt/my disk/sub', id: 65, 'maj:min': '0:43', 'opt-fields': 'unbindable' }],
  });
  assert.equal(doc.filesystems[0].children[0]['opt-fields'], null);
  const list = JSON.parse(mountsJson(mounts, { columns: ['TARGET'], tree: false }));
  assert.equal(list.filesystems.map((f: { target: string }) => f.target), ['/', '/proc', '/mnt/my disk', '/mnt/my disk/sub', '/home/u/remote']);
  // libsmartcols' layout between array elements.
  assert.match(mountsJson(mounts, { columns: ['ID'], tree: false }), /\n +\},\{\n/);
});

test('a filter keeps the tree: each mount below its nearest ancestor shown, children by mount id', () => {
  const shown = mounts.filter((m) => matchesTypes(m.fsType, 'ext4,tmpfs'));
  assert.is(
    formatMounts(shown, { columns: ['TARGET'], tree: true, table: mounts }),
    ['TARGET', '/', '└─/mnt/my disk', '  └─/mnt/my disk/sub', ''].join('\n'),
  );
  const withoutParent = mounts.filter((m) => m.fsType === 'tmpfs' || m.fsType === 'proc');
  assert.is(formatMounts(withoutParent, { columns: ['TARGET'], tree: true, table: mounts }), 'TARGET\n/proc\n/mnt/my disk/sub\n');
});

test('-t as libmount matches it: a list, "no" before the first negating it all, before one excluding it', () => {
  assert.ok(matchesTypes('ext4', 'xfs,ext4'));
  assert.not.ok(matchesTypes('ext4', 'xfs'));
  assert.ok(matchesTypes('ext4', 'noxfs,proc'));
  assert.not.ok(matchesTypes('proc', 'noxfs,proc'));
  assert.not.ok(matchesTypes('proc', 'ext4,noproc'));
  assert.ok(matchesTypes('EXT4', 'ext4'));
});

test('-o: findmnt\'s names in any case, +LIST after the defaults; an unknown name is refused naming it', () => {
  const parse = columnParser(MOUNT_COLUMNS, DEFAULT_MOUNT_COLUMNS);
  assert.equal(parse('Target,maj:min'), ['TARGET', 'MAJ:MIN']);
  assert.equal(parse('+ID'), ['TARGET', 'SOURCE', 'FSTYPE', 'OPTIONS', 'ID']);
  assert.throws(() => parse('TARGET,BOGUS'), /unknown column "BOGUS"; the columns are AVAIL, FSROOT, FSTYPE/);
  assert.throws(() => pollActions('mount,explode'), /unknown action "explode"; the actions are mount, umount, remount, move/);
});

/** A statfs answer of `blocks` blocks of `frsize` bytes, `free` free (`avail` of them for users). */
function usage(frsize: bigint, blocks: bigint, free: bigint, avail = free): StatfsUsage {
  return { bsize: frsize, frsize, blocks, blocksFree: free, blocksAvailable: avail, files: 0n, filesFree: 0n, fsid: 0n, nameMax: 255, flags: 0x20, flagNames: ['valid'] };
}

test('usage columns: findmnt\'s sizes ("0", one decimal in thousandths), USE% rounded half to even, "-" without blocks', () => {
  assert.is(findmntSize(0n), '0');
  assert.is(findmntSize(4096n), '4K');
  assert.is(findmntSize(303104n), '296K');
  assert.is(findmntSize(25276182528n), '23.5G'); // 23.540 GiB: util-linux rounds thousandths, not 1024ths
  assert.is(usePercent(usage(4096n, 256n, 182n)), '29%'); // 28.9
  assert.is(usePercent(usage(4096n, 512n, 487n)), '5%'); // 4.88
  assert.is(usePercent(usage(1n, 8n, 7n)), '12%'); // 12.5: ties to even, as printf
  assert.is(usePercent(usage(1n, 8n, 5n)), '38%'); // 37.5
  assert.is(usePercent(usage(4096n, 0n, 0n)), '-');
});

test('usip mounts -o SIZE,AVAIL,USED,USE%: right-aligned, empty where statfs failed; -b bytes; -J strings, numbers with -b (exact past 2^53)', () => {
  const byId = new Map([
    [27, usage(4096n, 2n ** 40n, 2n ** 39n, 2n ** 38n)],
    [31, usage(4096n, 0n, 0n)],
    [65, usage(4096n, 256n, 182n)],
  ]);
  const columns = columnParser(MOUNT_COLUMNS, DEFAULT_MOUNT_COLUMNS)('target,size,avail,used,use%');
  assert.is(
    formatMounts(mounts.slice(0, 4), { columns, tree: true, usage: { usage: byId } }),
    [
      // USED is 5 wide (findmnt's hint: "296K" is as wide as its header), SIZE 4 ("4P" is narrower).
      'TARGET               SIZE AVAIL  USED USE%',
      '/                      4P    1P    2P  50%',
      '├─/proc                 0     0     0    -',
      '└─/mnt/my disk' + ' '.repeat(28),
      '  └─/mnt/my disk/sub   1M  728K  296K  29%',
      '',
    ].join('\n'),
  );
  assert.match(formatMounts(mounts.slice(0, 2), { columns, tree: false, raw: true, usage: { usage: byId, bytes: true } }), /^\/ 4503599627370496 1125899906842624 2251799813685248 50%\n\/proc 0 0 0 -\n$/m);
  const people = JSON.parse(mountsJson(mounts.slice(0, 2), { columns, tree: false, usage: { usage: byId } })) as { filesystems: unknown[] };
  assert.equal(people.filesystems[1], { target: '/proc', size: '0', avail: '0', used: '0', 'use%': '-' });
  const text = mountsJson(mounts.slice(2, 3), { columns, tree: false, usage: { usage: new Map([[64, usage(2n ** 30n, 2n ** 33n + 1n, 0n)]]), bytes: true } });
  assert.match(text, '"size": 9223372037928517632,');
  assert.match(text, '"avail": 0,');
  const missing = JSON.parse(mountsJson(mounts.slice(1, 2), { columns, tree: false, usage: { usage: new Map(), bytes: true } })) as { filesystems: unknown[] };
  assert.equal(missing.filesystems[0], { target: '/proc', size: null, avail: null, used: null, 'use%': null });
});

test('mountUsage: usage by mount id, none where statfs failed, a hidden mount shows the one on top of it (findmnt statfs\'s the path)', async () => {
  const base = { major: 0, minor: 1, mntNs: 1, fsType: 'tmpfs' };
  const infos: StatfsInfo[] = [
    { ...base, id: 1, mountPoint: '/', usage: usage(1n, 10n, 5n) },
    { ...base, id: 2, mountPoint: '/m', error: { errno: 0, code: 'USIP_OVERMOUNTED', message: 'hidden' } },
    { ...base, id: 3, mountPoint: '/m', usage: usage(1n, 20n, 5n) },
    { ...base, id: 4, mountPoint: '/x', error: { errno: 13, code: 'EACCES', message: 'Permission denied' } },
  ];
  const byId = await mountUsage({ statfsAll: async () => infos });
  assert.equal([...byId.keys()], [1, 2, 3]);
  assert.is(byId.get(2)!.blocks, 20n);
});

test('usip watch has no usage columns (a mount that went cannot be statfs\'d)', () => {
  for (const c of ['SIZE', 'AVAIL', 'USED', 'USE%']) assert.not.ok(Object.hasOwn(POLL_COLUMNS, c), c);
  assert.throws(() => columnParser(POLL_COLUMNS, [])('SIZE'), /unknown column "SIZE"/);
});

test('usip mount ID: every field, one per line', () => {
  assert.is(
    formatMount(mounts[3]!),
    [
      'mount 65',
      '  parent           64',
      '  unique id        2147483713',
      '  device           0:43',
      '  root             /',
      '  mount point      "/mnt/my disk/sub"',
      '  options          rw,relatime',
      '  propagation      unbindable',
      '  fs type          tmpfs',
      '  source           none',
      '  super options    rw,size=1024k,inode64',
      '  mount namespace  4026531841',
      '',
    ].join('\n'),
  );
  assert.match(formatMount(mounts[1]!), /^ {2}propagation +private$/m);
  assert.not.match(formatMount(mounts[1]!), /unique id/);
});

test('--json: ids are numbers, 64-bit values strings, and every field is there', () => {
  const json = JSON.parse(toJson(mountJson(mounts[3]!)));
  assert.equal(json, {
    id: 65,
    parentId: 64,
    uniqueId: '2147483713',
    major: 0,
    minor: 43,
    root: '/',
    mountPoint: '/mnt/my disk/sub',
    options: 'rw,relatime',
    attributes: ['relatime'],
    optionalFields: 'unbindable',
    unbindable: true,
    fsType: 'tmpfs',
    source: 'none',
    superOptions: 'rw,size=1024k,inode64',
    mntNs: 4026531841,
  });
  const slave = JSON.parse(toJson(mountJson(mounts[2]!)));
  assert.equal([slave.master, slave.propagateFrom, slave.shared], [7, 3, undefined]);
});

test('usip watch: findmnt --poll\'s columns (ACTION TARGET SOURCE FSTYPE OPTIONS), -o, -r, -J lines, --dump', () => {
  const mount: MountChange = { kind: 'mount', mount: mounts[3]!, nsSeq: 12n };
  assert.is(watchLine(mount, {}), 'mount /mnt/my disk/sub none tmpfs rw,relatime,size=1024k,inode64\n');
  assert.is(watchLine(mount, { raw: true }), 'mount /mnt/my\\x20disk/sub none tmpfs rw,relatime,size=1024k,inode64\n');
  const move: MountChange = { kind: 'move', mount: { ...mounts[3]!, mountPoint: '/elsewhere' }, previous: mounts[3]!, nsSeq: 13n };
  const columns = columnParser(POLL_COLUMNS, [])('ACTION,ID,TARGET,OLD-TARGET,OLD-OPTIONS');
  assert.is(watchLine(move, { output: columns }), 'move 65 /elsewhere /mnt/my disk/sub \n');
  const remount: MountChange = { kind: 'remount', mount: { ...mounts[0]!, options: 'ro,relatime' }, previous: mounts[0]!, nsSeq: 14n };
  assert.equal(JSON.parse(watchLine(remount, { json: true, output: columns })), {
    action: 'remount',
    id: 27,
    target: '/',
    'old-target': null,
    'old-options': 'rw,relatime,errors=remount-ro',
  });
  const umount: MountChange = { kind: 'umount', mount: mounts[3]!, nsSeq: 15n };
  assert.is(watchLine(umount, { output: columns }), 'umount 65 /mnt/my disk/sub /mnt/my disk/sub rw,relatime,size=1024k,inode64\n');
  assert.equal(JSON.parse(watchLine(move, { json: true })), { action: 'move', target: '/elsewhere', source: 'none', fstype: 'tmpfs', options: 'rw,relatime,size=1024k,inode64' });
  const json = JSON.parse(watchLine(move, { dump: true }));
  assert.equal([json.kind, json.nsSeq, json.mount.mountPoint, json.previous.mountPoint, json.mount.id], ['move', '13', '/elsewhere', '/mnt/my disk/sub', 65]);
  assert.not.ok('previous' in JSON.parse(toJson(changeJson(mount))));
  const resync: MountChange = { kind: 'resync', reason: 'overrun', nsSeq: 40n, mounts: 17, added: 3, removed: 1, changed: 2 };
  assert.is(watchLine(resync, {}), 'resync overrun: read the table again at ns-seq 40 (17 mounts): 3 added, 1 removed, 2 changed\n');
  assert.equal(JSON.parse(watchLine(resync, { dump: true })), { kind: 'resync', reason: 'overrun', nsSeq: '40', mounts: 17, added: 3, removed: 1, changed: 2 });
  assert.is(JSON.parse(watchLine(resync, { json: true })).action, 'resync');
});

test('usip watch --poll=LIST: only those actions; a resync always', () => {
  const mount: MountChange = { kind: 'mount', mount: mounts[3]!, nsSeq: 12n };
  assert.ok(pollPasses(mount, undefined));
  assert.ok(pollPasses(mount, true));
  assert.ok(pollPasses(mount, ['umount', 'mount']));
  assert.not.ok(pollPasses(mount, ['umount']));
  assert.ok(pollPasses({ kind: 'resync', reason: 'overrun', nsSeq: 1n, mounts: 1, added: 0, removed: 0, changed: 0 }, ['umount']));
});

test.run();
