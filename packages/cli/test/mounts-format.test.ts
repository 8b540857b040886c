// The pure parts of usip mounts, usip mount and usip watch: findmnt's tree, list, raw and JSON
// forms, -t, -o, one mount for people, the JSON forms, the change lines (findmnt --poll). The commands run as child processes in
// cli.test.ts (host) and vm-mounts.test.ts (guest, against the module).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseMountinfo, type MountChange, type MountInfo } from '@usip/client';
import { toJson } from '../src/common.js';
import { columnParser, DEFAULT_MOUNT_COLUMNS, formatMounts, matchesTypes, MOUNT_COLUMNS, mountsJson, pollActions, POLL_COLUMNS, rawEscape, tableEscape } from '../src/findmnt.js';
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
  assert.throws(() => parse('TARGET,BOGUS'), /unknown column "BOGUS"; the columns are FSROOT, FSTYPE/);
  assert.throws(() => pollActions('mount,explode'), /unknown action "explode"; the actions are mount, umount, remount, move/);
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
