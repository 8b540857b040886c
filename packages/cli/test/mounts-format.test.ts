// The pure parts of usip mounts, usip mount and usip watch: the table and the tree, one mount
// for people, the JSON forms, the change lines. The commands run as child processes in
// cli.test.ts (host) and vm-mounts.test.ts (guest, against the module).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseMountinfo, type MountChange, type MountInfo } from '@usip/client';
import { toJson } from '../src/common.js';
import { allOptions, changeJson, formatChange, formatMount, formatMountTable, formatMountTree, mountJson, WATCH_HEADER } from '../src/mounts.js';

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

test('usip mounts: a table like findmnt -l, numbers right-aligned, spaces escaped as mountinfo does', () => {
  assert.is(
    formatMountTable(mounts),
    [
      'ID PARENT TARGET              SOURCE         FSTYPE     OPTIONS',
      '27      1 /                   /dev/vda1      ext4       rw,relatime,errors=remount-ro',
      '31     27 /proc               proc           proc       rw,nosuid,nodev,noexec,relatime',
      '64     27 /mnt/my\\040disk     /dev/sdb1      ext4       ro,nosuid,nodev',
      '65     64 /mnt/my\\040disk/sub none           tmpfs      rw,relatime,size=1024k,inode64',
      '70     27 /home/u/remote      u@host:/home/u fuse.sshfs rw,nosuid,nodev,relatime,user_id=1000,group_id=1000',
      '',
    ].join('\n'),
  );
});

test('usip mounts --tree: each mount below its parent', () => {
  assert.is(
    formatMountTree(mounts),
    [
      'ID PARENT TARGET                  SOURCE         FSTYPE     OPTIONS',
      '27      1 /                       /dev/vda1      ext4       rw,relatime,errors=remount-ro',
      '31     27 ├─/proc                 proc           proc       rw,nosuid,nodev,noexec,relatime',
      '64     27 ├─/mnt/my\\040disk       /dev/sdb1      ext4       ro,nosuid,nodev',
      '65     64 │ └─/mnt/my\\040disk/sub none           tmpfs      rw,relatime,size=1024k,inode64',
      '70     27 └─/home/u/remote        u@host:/home/u fuse.sshfs rw,nosuid,nodev,relatime,user_id=1000,group_id=1000',
      '',
    ].join('\n'),
  );
  // A mount whose parent is not in the table (outside the root) is a root of its own.
  assert.match(formatMountTree(mounts.slice(2)), /^64 +27 \/mnt\/my\\040disk +/m);
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

test('usip watch: one line per change, ACTION ID TARGET SOURCE FSTYPE OPTIONS, and JSON lines', () => {
  assert.is(WATCH_HEADER, 'ACTION      ID TARGET SOURCE FSTYPE OPTIONS\n');
  const mount: MountChange = { kind: 'mount', mount: mounts[3]!, nsSeq: 12n };
  assert.is(formatChange(mount), 'mount       65 /mnt/my\\040disk/sub none tmpfs rw,relatime,size=1024k,inode64\n');
  const move: MountChange = { kind: 'move', mount: { ...mounts[3]!, mountPoint: '/elsewhere' }, previous: mounts[3]!, nsSeq: 13n };
  assert.is(formatChange(move), 'move        65 /elsewhere none tmpfs rw,relatime,size=1024k,inode64\n');
  assert.is(formatChange({ kind: 'remount', mount: mounts[0]!, nsSeq: 1n }).slice(0, 20), 'remount     27 / /de');
  const json = JSON.parse(toJson(changeJson(move)));
  assert.equal([json.kind, json.nsSeq, json.mount.mountPoint, json.previous.mountPoint, json.mount.id], ['move', '13', '/elsewhere', '/mnt/my disk/sub', 65]);
  assert.not.ok('previous' in JSON.parse(toJson(changeJson(mount))));
  const resync: MountChange = { kind: 'resync', reason: 'overrun', nsSeq: 40n, mounts: 17, added: 3, removed: 1, changed: 2 };
  assert.is(formatChange(resync), 'resync       - overrun: read the table again at ns-seq 40 (17 mounts): 3 added, 1 removed, 2 changed\n');
  assert.equal(JSON.parse(toJson(changeJson(resync))), { kind: 'resync', reason: 'overrun', nsSeq: '40', mounts: 17, added: 3, removed: 1, changed: 2 });
});

test.run();
