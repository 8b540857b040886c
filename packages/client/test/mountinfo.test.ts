// mountinfo text and MountInfo: parsing (escapes, optional fields, idmapped mounts, fuse
// subtypes, verbatim super options), the renderings of the options and optional fields, the
// round trip back to text, errors that name the line and field, and the host's own mountinfo.
import { stat } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MountAttr } from '../src/generated/usip.js';
import {
  escapeMountinfo,
  formatMountinfoLine,
  mountAttrFromOptions,
  mountAttributeNames,
  mountOptions,
  optionalFields,
  parseMountinfo,
  readMountinfo,
  sameMount,
  unescapeMountinfo,
  UsipMountinfoError,
  type MountInfo,
} from '../src/mounts.js';

// Lines as kernels write them (fs/proc_namespace.c, show_mountinfo()).
const TEXT = [
  '27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda1 rw,errors=remount-ro',
  '31 27 0:26 / /proc rw,nosuid,nodev,noexec,relatime shared:13 - proc proc rw',
  '64 27 0:42 /srv/data /mnt/my\\040disk ro,nosuid,nodev,noexec,noatime,nodiratime master:7 propagate_from:3 - ext4 /dev/sdb1 ro',
  '65 64 0:43 / /mnt/my\\040disk/tab\\011and\\012newline\\134back rw,relatime shared:20 master:7 unbindable - tmpfs my\\040tmpfs rw,size=1024k,inode64',
  '70 27 0:50 / /home/u/remote rw,nosuid,nodev,relatime,nosymfollow - fuse.sshfs u@host:/home/u\\040x rw,user_id=1000,group_id=1000',
  '71 27 8:17 /images /var/lib/images rw,relatime,idmapped - xfs /dev/sdb1 rw,attr2,inode64,logbufs=8,logbsize=32k,noquota',
  '72 27 0:51 / /mnt/odd rw - fuse.my\\040fs  rw,size=10\\054000,comment=a\\040b',
  '73 27 0:52 / /mnt/private rw unbindable - tmpfs none rw',
].join('\n');

test('parseMountinfo reads every field of a line', () => {
  const [root, proc] = parseMountinfo(`${TEXT}\n`);
  assert.equal(root, {
    id: 27,
    parentId: 1,
    major: 254,
    minor: 0,
    root: '/',
    mountPoint: '/',
    attributes: ['relatime'],
    options: 'rw,relatime',
    unbindable: false,
    optionalFields: 'shared:1',
    fsType: 'ext4',
    source: '/dev/vda1',
    superOptions: 'rw,errors=remount-ro',
    shared: 1,
  });
  assert.equal(proc!.attributes, ['nosuid', 'nodev', 'noexec', 'relatime']);
  assert.is(proc!.options, 'rw,nosuid,nodev,noexec,relatime');
});

test('escapes in root, mount point, source and type are undone; super options stay verbatim', () => {
  const mounts = parseMountinfo(TEXT);
  assert.is(mounts[2]!.root, '/srv/data');
  assert.is(mounts[2]!.mountPoint, '/mnt/my disk');
  assert.is(mounts[3]!.mountPoint, '/mnt/my disk/tab\tand\nnewline\\back');
  assert.is(mounts[3]!.source, 'my tmpfs');
  assert.is(mounts[4]!.source, 'u@host:/home/u x');
  assert.is(mounts[6]!.fsType, 'fuse.my fs');
  assert.is(mounts[6]!.superOptions, 'rw,size=10\\054000,comment=a\\040b');
});

test('optional fields: shared, master, propagate_from, unbindable, and none', () => {
  const mounts = parseMountinfo(TEXT);
  const slave = mounts[2]!;
  assert.equal([slave.shared, slave.master, slave.propagateFrom, slave.unbindable], [undefined, 7, 3, false]);
  assert.is(slave.optionalFields, 'master:7 propagate_from:3');
  const all = mounts[3]!;
  assert.equal([all.shared, all.master, all.propagateFrom, all.unbindable], [20, 7, undefined, true]);
  assert.is(all.optionalFields, 'shared:20 master:7 unbindable');
  assert.is(mounts[4]!.optionalFields, '');
  assert.not.ok('shared' in mounts[4]! || 'master' in mounts[4]! || 'propagateFrom' in mounts[4]!);
  assert.is(mounts[7]!.unbindable, true);
});

test('idmapped, nosymfollow and the atime options are attributes; a bare "rw" has none', () => {
  const mounts = parseMountinfo(TEXT);
  assert.equal(mounts[5]!.attributes, ['relatime', 'idmapped']);
  assert.equal(mounts[4]!.attributes, ['nosuid', 'nodev', 'relatime', 'nosymfollow']);
  assert.equal(mounts[2]!.attributes, ['ro', 'nosuid', 'nodev', 'noexec', 'noatime', 'nodiratime']);
  assert.equal(mounts[6]!.attributes, []);
});

test('fuse subtypes are part of the type; an empty source is an empty string', () => {
  const mounts = parseMountinfo(TEXT);
  assert.is(mounts[4]!.fsType, 'fuse.sshfs');
  assert.is(mounts[6]!.source, '');
  assert.is(mounts[6]!.superOptions, 'rw,size=10\\054000,comment=a\\040b');
});

test('formatMountinfoLine gives back each line exactly', () => {
  const lines = TEXT.split('\n');
  parseMountinfo(TEXT).forEach((mount, i) => assert.is(formatMountinfoLine(mount), lines[i]));
});

test('mountOptions renders mountinfo\'s sixth field in the kernel\'s order', () => {
  assert.is(mountOptions(0), 'rw');
  assert.is(mountOptions(MountAttr.ro), 'ro');
  assert.is(mountOptions(MountAttr.relatime | MountAttr.ro), 'ro,relatime');
  const all = Object.values(MountAttr).reduce((mask, bit) => mask | bit, 0);
  assert.is(mountOptions(all), 'ro,nosuid,nodev,noexec,noatime,nodiratime,relatime,nosymfollow,idmapped');
  assert.equal(mountAttributeNames(all), ['ro', 'nosuid', 'nodev', 'noexec', 'noatime', 'nodiratime', 'relatime', 'nosymfollow', 'idmapped']);
  assert.is(mountOptions(MountAttr.idmapped | MountAttr.nosuid), 'rw,nosuid,idmapped');
  // A bit of a newer module is left out rather than guessed at.
  assert.is(mountOptions(0x200 | MountAttr.nodev), 'rw,nodev');
  for (let mask = 0; mask <= all; mask++) assert.is(mountAttrFromOptions(mountOptions(mask)), mask, `mask ${mask}`);
  assert.is(mountAttrFromOptions('rw,relatime,frobnicate'), MountAttr.relatime);
  assert.is(mountAttrFromOptions('rw,constructor'), 0, 'only MountAttr\'s own names');
});

test('optionalFields renders the propagation as mountinfo does', () => {
  assert.is(optionalFields({}), '');
  assert.is(optionalFields({ shared: 1 }), 'shared:1');
  assert.is(optionalFields({ master: 2, propagateFrom: 5 }), 'master:2 propagate_from:5');
  assert.is(optionalFields({ shared: 4, master: 2, propagateFrom: 5, unbindable: true }), 'shared:4 master:2 propagate_from:5 unbindable');
  assert.is(optionalFields({ propagateFrom: 5 }), '', 'propagate_from only comes with master');
  assert.is(optionalFields({ unbindable: true }), 'unbindable');
});

test('escapes: the four characters the kernel escapes, and bytes of UTF-8 characters', () => {
  assert.is(escapeMountinfo('a b\tc\nd\\e#f'), 'a\\040b\\011c\\012d\\134e#f');
  assert.is(unescapeMountinfo('a\\040b\\011c\\012d\\134e'), 'a b\tc\nd\\e');
  assert.is(unescapeMountinfo('/plain'), '/plain');
  assert.is(unescapeMountinfo('/caf\\303\\251 x'), '/café x', 'escaped bytes of one character decode together');
  assert.is(unescapeMountinfo('/é\\040x'), '/é x');
  assert.is(unescapeMountinfo('a\\04b\\x'), 'a\\04b\\x', 'not an escape: left as it is');
  for (const s of ['/mnt/ä ö', 'x\\y', '\t\n ']) assert.is(unescapeMountinfo(escapeMountinfo(s)), s);
});

test('options of a newer kernel are kept in options and optionalFields, not guessed at', () => {
  const [mount] = parseMountinfo('80 27 0:60 / /x rw,relatime,newflag shared:2 newfield:9 - tmpfs none rw');
  assert.is(mount!.options, 'rw,relatime,newflag');
  assert.equal(mount!.attributes, ['relatime']);
  assert.is(mount!.optionalFields, 'shared:2 newfield:9');
  assert.is(mount!.shared, 2);
});

test('mntNs is set when given, and only then', () => {
  const [mount] = parseMountinfo(TEXT, { mntNs: 4026531841 });
  assert.is(mount!.mntNs, 4026531841);
  assert.not.ok('mntNs' in parseMountinfo(TEXT)[0]!);
  assert.throws(() => parseMountinfo(TEXT, { mntNs: 5n as unknown as number }), /options\.mntNs must be a namespace inode number \(an integer from 0 to 4294967295\), got bigint/);
  assert.throws(() => parseMountinfo(TEXT, { mntNs: 2 ** 32 }), /got 4294967296/);
});

function syntax(text: string, pattern: RegExp): void {
  try {
    parseMountinfo(text);
  } catch (error) {
    assert.instance(error, UsipMountinfoError);
    assert.is((error as UsipMountinfoError).code, 'USIP_MOUNTINFO_SYNTAX');
    assert.match((error as Error).message, pattern);
    return;
  }
  assert.unreachable(`no error for ${JSON.stringify(text)}`);
}

test('malformed lines are refused with the line number and the field', () => {
  const good = '27 1 254:0 / / rw,relatime - ext4 /dev/vda1 rw';
  syntax(`${good}\n27 1 254:0 / /`, /^mountinfo line 2: expected at least 10 space-separated fields, got 5/);
  syntax('x 1 254:0 / / rw - ext4 /dev/vda1 rw', /^mountinfo line 1: field 1 \(mount id\) must be a decimal number, got "x"/);
  syntax('27 -1 254:0 / / rw - ext4 /dev/vda1 rw', /field 2 \(parent id\) must be a decimal number, got "-1"/);
  syntax('27 1 254.0 / / rw - ext4 /dev/vda1 rw', /field 3 \(device\) must be MAJOR:MINOR, got "254\.0"/);
  syntax('27 1 254:0 / / relatime - ext4 /dev/vda1 rw', /field 6 \(mount options\) must start with ro or rw, got "relatime"/);
  syntax('27 1 254:0 / / rw shared:1 ext4 /dev/vda1 rw', /end with " - " followed by type, source and super options/);
  syntax(`${good}\n\n${good}`, /^mountinfo line 2: expected at least 10/);
  assert.equal(parseMountinfo(''), []);
});

test('readMountinfo parses this host\'s /proc/self/mountinfo and knows its namespace', async () => {
  const mounts = await readMountinfo();
  const text = readFileSync('/proc/self/mountinfo', 'utf8');
  assert.ok(mounts.length > 0);
  const ns = (await stat('/proc/self/ns/mnt')).ino;
  for (const mount of mounts) assert.is(mount.mntNs, ns);
  // Our own rendering of each entry is the kernel's line (the file may have changed in between
  // on a busy machine: compare what both have).
  const lines = new Set(text.trimEnd().split('\n'));
  const same = mounts.filter((m) => lines.has(formatMountinfoLine(m))).length;
  assert.ok(same >= mounts.length - 2, `${same} of ${mounts.length} lines rendered identically`);
  assert.ok(mounts.some((m) => m.mountPoint === '/'), 'the root is there');
  const other = await readMountinfo('/proc/self/mountinfo', { mntNs: 7 });
  assert.is(other[0]!.mntNs, 7);
  assert.is((await readMountinfo(`/proc/${process.pid}/mountinfo`))[0]!.mntNs, ns);
});

test('sameMount compares every field', () => {
  const [a] = parseMountinfo(TEXT) as [MountInfo];
  assert.ok(sameMount(a, { ...a }));
  for (const change of [{ id: 2 }, { mountPoint: '/x' }, { options: 'ro' }, { uniqueId: 5n }, { superOptions: 'ro' }, { mntNs: 1 }, { optionalFields: '' }, { minor: 9 }]) {
    assert.not.ok(sameMount(a, { ...a, ...change }), JSON.stringify(Object.keys(change)));
  }
});

test.run();
