// usip devices on the host: the pure parts (columns, sizes, the tree and list, lsblk's JSON),
// then the command as a child process against lsblk itself, on a fake system root given to both
// with --sysroot (sysfs tree, mountinfo, swaps, udev records) and on this machine's own /sys;
// and its usage errors. The guest test (vm-devices.test.ts) does the same with real loop
// devices and partitions.
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { BlockDevice } from '@usip/client';
import { DEFAULT_DEVICE_COLUMNS, devicesJson, formatDevices, humanSize, jsonText, mountPoints, parseColumns, shownByDefault } from '../src/devices.js';

const execFileAsync = promisify(execFile);
const bin = fileURLToPath(new URL('../dist/bin.js', import.meta.url));

async function run(file: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(file, args, { maxBuffer: 16 << 20 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const { code, stdout, stderr } = error as { code: number; stdout: string; stderr: string };
    return { code, stdout, stderr };
  }
}

const usip = (...args: string[]) => run(process.execPath, bin, ...args);

/** A device as the client hands it out, with what a test does not care about filled in. */
function device(name: string, major: number, minor: number, size: bigint, more: Partial<BlockDevice> = {}): BlockDevice {
  return {
    name,
    path: `/dev/${name}`,
    major,
    minor,
    type: 'disk',
    size,
    logicalBlockSize: 512,
    physicalBlockSize: 512,
    readOnly: false,
    removable: false,
    rotational: false,
    hidden: false,
    swap: false,
    mounts: [],
    partitions: [],
    ...more,
  };
}

const mount = (id: number, mountPoint: string, fsType = 'ext4') => ({ id, mountPoint, root: '/', fsType, source: 'x' });

const sda = device('sda', 8, 0, 512n * 2000409264n, {
  rotational: true,
  physicalBlockSize: 4096,
  model: 'WDC WD10EZEX',
  serial: 'WD-1234',
  partitions: [
    device('sda1', 8, 1, 537919488n, { type: 'part', partition: 1, mounts: [mount(30, '/boot/efi', 'vfat')], fsType: 'vfat' }),
    device('sda2', 8, 2, 512n * 1999357952n, { type: 'part', partition: 2, readOnly: true, mounts: [mount(31, '/'), mount(40, '/srv/with space')], fsType: 'ext4' }),
    device('sda3', 8, 3, 1n << 30n, { type: 'part', partition: 3, swap: true }),
  ],
});
const loop0 = device('loop0', 7, 0, 0n, { type: 'loop' });
const sr0 = device('sr0', 11, 0, 0n, { type: 'rom', removable: true });

test('-o: lsblk\'s column names in any case, "+" adds to the default; an unknown one is named', () => {
  assert.equal(parseColumns('name,Size,maj:min'), ['NAME', 'SIZE', 'MAJ:MIN']);
  assert.equal(parseColumns('+MODEL,serial'), [...DEFAULT_DEVICE_COLUMNS, 'MODEL', 'SERIAL']);
  assert.throws(() => parseColumns('NAME,SIZ'), /unknown column "SIZ"; the columns are NAME, MAJ:MIN, RM, SIZE, RO, TYPE, MOUNTPOINTS, MODEL, SERIAL, ROTA, LOG-SEC, PHY-SEC, FSTYPE/);
  assert.throws(() => parseColumns('NAME,,SIZE'), /an empty column name/);
});

test('sizes for people: powers of 1024, one letter, one decimal rounded as lsblk rounds', () => {
  const cases: [bigint, string][] = [
    [0n, '0B'],
    [512n, '512B'],
    [1023n, '1023B'],
    [1024n, '1K'],
    [1536n, '1.5K'],
    [1048064n, '1023.5K'],
    [104857088n, '100M'], // 99.9995M: the tenths round up to a whole
    [537919488n, '513M'],
    [1589641216n, '1.5G'],
    [512n * 2000409264n, '953.9G'],
    [2n ** 40n * 3n, '3T'],
    [2n ** 60n, '1E'],
    [2n ** 64n - 1n, '16E'],
  ];
  for (const [bytes, text] of cases) assert.is(humanSize(bytes), text, String(bytes));
});

test('what lsblk shows without -a: not unbound empty loop devices, RAM disks or hidden devices', () => {
  assert.is(shownByDefault(loop0), false);
  assert.is(shownByDefault({ ...loop0, backingFile: '/tmp/x' }), true, 'bound, even if empty');
  assert.is(shownByDefault({ ...loop0, size: 512n }), true);
  assert.is(shownByDefault(sr0), true, 'an empty drive is shown');
  assert.is(shownByDefault(device('ram0', 1, 0, 1n << 20n)), false);
  assert.is(shownByDefault(device('nvme0c0n1', 259, 5, 1n << 30n, { hidden: true })), false);
});

/** Lines without the blank lsblk leaves before an empty last cell (the byte-exact comparison is against lsblk itself, below). */
const trimmed = (text: string) => text.replace(/ +$/gm, '');

test('mount points: the last mounted first, as lsblk lists them; [SWAP] for a swap area', () => {
  assert.equal(mountPoints(sda.partitions[1]!), ['/srv/with space', '/']);
  assert.equal(mountPoints(sda.partitions[2]!), ['[SWAP]']);
  assert.equal(mountPoints(sda), []);
});

test('the tree: partitions under their disk with ├─ and └─, a line per extra mount point, numbers right-aligned', () => {
  const view = { columns: DEFAULT_DEVICE_COLUMNS, bytes: false, list: false };
  assert.is(
    trimmed(formatDevices([loop0, sda, sr0], view)),
    [
      'NAME   MAJ:MIN RM   SIZE RO TYPE MOUNTPOINTS',
      'loop0    7:0    0     0B  0 loop',
      'sda      8:0    0 953.9G  0 disk',
      '├─sda1   8:1    0   513M  0 part /boot/efi',
      '├─sda2   8:2    0 953.4G  1 part /srv/with space',
      '│                                /',
      '└─sda3   8:3    0     1G  0 part [SWAP]',
      'sr0     11:0    1     0B  0 rom',
      '',
    ].join('\n'),
  );
});

test('-l, -b and -o: a flat list, sizes in bytes, the columns asked for (unknown values empty)', () => {
  const view = { columns: parseColumns('NAME,SIZE,MODEL,SERIAL,ROTA,LOG-SEC,PHY-SEC,FSTYPE'), bytes: true, list: true };
  assert.is(
    trimmed(formatDevices([sda], view)),
    [
      'NAME          SIZE MODEL        SERIAL  ROTA LOG-SEC PHY-SEC FSTYPE',
      'sda  1024209543168 WDC WD10EZEX WD-1234    1     512    4096',
      'sda1     537919488                         0     512     512 vfat',
      'sda2 1023671271424                         0     512     512 ext4',
      'sda3    1073741824                         0     512     512',
      '',
    ].join('\n'),
  );
});

test('a cell with a newline, tab or backslash stays on its line (\\xNN)', () => {
  const odd = device('loop1', 7, 1, 1024n, { type: 'loop', mounts: [mount(50, '/mnt/a\nb\\c\td')] });
  assert.match(formatDevices([odd], { columns: ['NAME', 'MOUNTPOINTS'], bytes: false, list: false }), /^loop1 \/mnt\/a\\x0ab\\x5cc\\x09d$/m);
});

test('--json: lsblk -J\'s shape: lower-case column names, booleans, [null] for no mount point, children', () => {
  const view = { columns: parseColumns('+MODEL,SERIAL,LOG-SEC'), bytes: false, list: false };
  const parsed = JSON.parse(devicesJson([sda], view));
  assert.equal(Object.keys(parsed), ['blockdevices']);
  const [disk] = parsed.blockdevices;
  assert.equal(disk, {
    name: 'sda',
    'maj:min': '8:0',
    rm: false,
    size: '953.9G',
    ro: false,
    type: 'disk',
    mountpoints: [null],
    model: 'WDC WD10EZEX',
    serial: 'WD-1234',
    'log-sec': 512,
    children: disk.children,
  });
  assert.equal(
    disk.children.map((c: Record<string, unknown>) => [c.name, c.ro, c.mountpoints, c.model, 'children' in c]),
    [
      ['sda1', false, ['/boot/efi'], null, false],
      ['sda2', true, ['/srv/with space', '/'], null, false],
      ['sda3', false, ['[SWAP]'], null, false],
    ],
  );
  // -l flattens, -b makes sizes numbers.
  const flat = JSON.parse(devicesJson([sda], { ...view, list: true, bytes: true }));
  assert.equal(
    flat.blockdevices.map((d: Record<string, unknown>) => [d.name, d.size, 'children' in d]),
    [
      ['sda', 1024209543168, false],
      ['sda1', 537919488, false],
      ['sda2', 1023671271424, false],
      ['sda3', 1073741824, false],
    ],
  );
});

test('JSON numbers are exact at any size', () => {
  assert.is(jsonText({ size: 2n ** 64n - 1n, a: [1, null, 'x"y'] }, ''), '{\n  "size": 18446744073709551615,\n  "a": [\n    1,\n    null,\n    "x\\"y"\n  ]\n}');
  const huge = device('dm-9', 253, 9, 2n ** 63n);
  assert.match(devicesJson([huge], { columns: ['NAME', 'SIZE'], bytes: true, list: false }), /"size": 9223372036854775808\n/);
});

// --- A fake system root for both usip devices --sysroot and lsblk --sysroot.

type Entry = string | { link: string };

async function build(root: string, entries: Record<string, Entry>): Promise<void> {
  for (const [path, content] of Object.entries(entries)) {
    const full = join(root, path);
    await mkdir(dirname(full), { recursive: true });
    if (typeof content === 'string') await writeFile(full, content);
    else await symlink(relative(dirname(full), join(root, content.link)), full);
  }
}

interface FakeDevice {
  dir: string;
  dev: string;
  sectors: number;
  ro?: boolean;
  partition?: number;
  removable?: boolean;
  rotational?: boolean;
  extra?: Record<string, Entry>;
}

/** The sysfs of a machine: loop devices (one with partitions, one empty and unbound, one just
 *  under 100M), a SATA disk with three partitions, a USB stick, an empty CD drive, NVMe, a RAM
 *  disk, as sysfs lays them out and links them (class/block, block, dev/block). */
function fakeSystem(): Record<string, Entry> {
  const scsi = (host: number) => `sys/devices/pci0000:00/0000:00:1f.2/ata${host}/host${host}/target${host}:0:0/${host}:0:0:0`;
  const devices: Record<string, FakeDevice> = {
    loop0: { dir: 'sys/devices/virtual/block/loop0', dev: '7:0', sectors: 3104768, extra: { 'loop/backing_file': '/tmp/disk.img\n' } },
    loop0p1: { dir: 'sys/devices/virtual/block/loop0/loop0p1', dev: '259:0', sectors: 40960, partition: 1 },
    loop0p2: { dir: 'sys/devices/virtual/block/loop0/loop0p2', dev: '259:1', sectors: 3061760, partition: 2 },
    loop1: { dir: 'sys/devices/virtual/block/loop1', dev: '7:1', sectors: 0 },
    loop2: { dir: 'sys/devices/virtual/block/loop2', dev: '7:2', sectors: 204799, ro: true, extra: { 'loop/backing_file': '/tmp/ro.img\n' } },
    sda: { dir: `${scsi(1)}/block/sda`, dev: '8:0', sectors: 2000409264, rotational: true, extra: { device: { link: scsi(1) } } },
    sda1: { dir: `${scsi(1)}/block/sda/sda1`, dev: '8:1', sectors: 1050624, partition: 1 },
    sda2: { dir: `${scsi(1)}/block/sda/sda2`, dev: '8:2', sectors: 1997258752, partition: 2 },
    sda3: { dir: `${scsi(1)}/block/sda/sda3`, dev: '8:3', sectors: 2097152, partition: 3, ro: true },
    sdb: { dir: `${scsi(2)}/block/sdb`, dev: '8:16', sectors: 31457280, removable: true, extra: { device: { link: scsi(2) } } },
    sdb1: { dir: `${scsi(2)}/block/sdb/sdb1`, dev: '8:17', sectors: 31455232, partition: 1 },
    sr0: { dir: `${scsi(3)}/block/sr0`, dev: '11:0', sectors: 0, removable: true, rotational: true, extra: { device: { link: scsi(3) } } },
    nvme0n1: { dir: 'sys/devices/pci0000:00/0000:00:03.0/nvme/nvme0/nvme0n1', dev: '259:2', sectors: 1953525168 },
    ram0: { dir: 'sys/devices/virtual/block/ram0', dev: '1:0', sectors: 131072 },
  };
  const entries: Record<string, Entry> = {
    [`${scsi(1)}/type`]: '0\n',
    [`${scsi(1)}/model`]: 'WDC WD10EZEX-08W\n',
    [`${scsi(2)}/type`]: '0\n',
    [`${scsi(3)}/type`]: '5\n',
  };
  for (const [name, d] of Object.entries(devices)) {
    entries[`${d.dir}/dev`] = `${d.dev}\n`;
    entries[`${d.dir}/size`] = `${d.sectors}\n`;
    entries[`${d.dir}/ro`] = d.ro ? '1\n' : '0\n';
    if (d.partition !== undefined) {
      entries[`${d.dir}/partition`] = `${d.partition}\n`;
      entries[`${d.dir}/start`] = '2048\n';
    } else {
      entries[`${d.dir}/removable`] = d.removable ? '1\n' : '0\n';
      entries[`${d.dir}/queue/rotational`] = d.rotational ? '1\n' : '0\n';
      entries[`${d.dir}/queue/logical_block_size`] = '512\n';
      entries[`${d.dir}/queue/physical_block_size`] = '4096\n';
      entries[`sys/block/${name}`] = { link: d.dir };
    }
    for (const [path, content] of Object.entries(d.extra ?? {})) entries[`${d.dir}/${path}`] = content;
    entries[`sys/class/block/${name}`] = { link: d.dir };
    entries[`sys/dev/block/${d.dev}`] = { link: d.dir };
  }
  entries['proc/self/mountinfo'] = [
    '20 1 8:2 / / rw,relatime - ext4 /dev/sda2 rw',
    '21 20 8:1 / /boot/efi rw,relatime - vfat /dev/sda1 rw',
    '22 20 259:1 / /mnt/p2 rw,relatime - ext4 /dev/loop0p2 rw',
    '23 20 8:17 / /media/my\\040usb rw,nosuid,nodev - vfat /dev/sdb1 rw',
    '24 20 259:1 /sub /srv/b rw,relatime - ext4 /dev/loop0p2 rw',
    '25 20 0:30 / /tmp rw - tmpfs tmpfs rw',
    '',
  ].join('\n');
  return entries;
}

const roots: string[] = [];
// Removed at the end even when a test failed half way.
test.after(async () => {
  for (const root of roots) await rm(root, { recursive: true, force: true });
});

async function fakeRoot(): Promise<string> {
  const root = mkdtempSync(join(tmpdir(), 'usip-sysroot-'));
  roots.push(root);
  await build(root, fakeSystem());
  return root;
}

const LSBLK_JSON_COLUMNS = 'NAME,MAJ:MIN,RM,SIZE,RO,TYPE,MOUNTPOINTS';

/** The output's rows, each split into its words: alignment may differ, content may not. */
const words = (text: string) =>
  text
    .trimEnd()
    .split('\n')
    .map((line) => line.trim().split(/\s+/));

test('--sysroot: usip devices --json [-b] [-a] [-l] is lsblk -J\'s, on the same fake system', async () => {
  const root = await fakeRoot();
  for (const flags of [['-b'], [], ['-b', '-a'], ['-l', '-b'], ['-a', '-l']]) {
    const ours = await usip('devices', '--sysroot', root, '--json', ...flags);
    assert.is(ours.code, 0, ours.stderr);
    const theirs = await run('lsblk', '--sysroot', root, '-J', '-o', LSBLK_JSON_COLUMNS, ...flags);
    assert.is(theirs.code, 0, theirs.stderr);
    assert.equal(JSON.parse(ours.stdout), JSON.parse(theirs.stdout), flags.join(' '));
  }
  // And it holds what the fake system has: a tree with partitions, mounts, and no RAM disk or
  // unbound loop device without -a.
  const { blockdevices } = JSON.parse((await usip('devices', '--sysroot', root, '--json', '-b')).stdout);
  assert.equal(
    blockdevices.map((d: { name: string; children?: { name: string }[] }) => [d.name, (d.children ?? []).map((c) => c.name)]),
    [
      ['loop0', ['loop0p1', 'loop0p2']],
      ['loop2', []],
      ['sda', ['sda1', 'sda2', 'sda3']],
      ['sdb', ['sdb1']],
      ['sr0', []],
      ['nvme0n1', []],
    ],
  );
  assert.equal(blockdevices[0].children[1].mountpoints, ['/srv/b', '/mnt/p2']);
  assert.equal(blockdevices[3].children[0].mountpoints, ['/media/my usb']);
  assert.is(blockdevices[1].size, 204799 * 512, "just under 100M: 100M for people");
});

test('--sysroot: the table, tree and list, for people and in bytes, have lsblk\'s rows and cells', async () => {
  const root = await fakeRoot();
  for (const flags of [[], ['-b'], ['-l'], ['-a'], ['-o', 'NAME,SIZE,RO,TYPE'], ['-l', '-o', 'NAME,SIZE,RM,ROTA,LOG-SEC,PHY-SEC,MODEL']]) {
    const ours = await usip('devices', '--sysroot', root, ...flags);
    assert.is(ours.code, 0, ours.stderr);
    const theirs = await run('lsblk', '--sysroot', root, ...(flags.includes('-o') ? [] : ['-o', 'NAME,MAJ:MIN,RM,SIZE,RO,TYPE,MOUNTPOINTS']), ...flags);
    assert.is(theirs.code, 0, theirs.stderr);
    assert.equal(words(ours.stdout), words(theirs.stdout), `${flags.join(' ')}\n${ours.stdout}\n${theirs.stdout}`);
  }
});

test('SIZE is at least 5 wide, as lsblk\'s width hint makes it', () => {
  const small = { ...loop0, size: 20n * 1024n * 1024n };
  assert.is(formatDevices([small], { columns: ['NAME', 'SIZE'], bytes: false, list: false }), 'NAME   SIZE\nloop0   20M\n');
});

test('--sysroot: -r, -n, -p and the tables are lsblk\'s bytes', async () => {
  const root = await fakeRoot();
  for (const flags of [[], ['-b'], ['-l'], ['-a'], ['-r'], ['-rn'], ['-r', '-a'], ['-n'], ['-p'], ['-pl'], ['-rp'], ['-o', 'NAME,SIZE,RO,TYPE']]) {
    const ours = await usip('devices', '--sysroot', root, ...flags);
    assert.is(ours.code, 0, ours.stderr);
    const theirs = await run('lsblk', '--sysroot', root, ...(flags.includes('-o') ? [] : ['-o', 'NAME,MAJ:MIN,RM,SIZE,RO,TYPE,MOUNTPOINTS']), ...flags);
    assert.is(theirs.code, 0, theirs.stderr);
    assert.fixture(ours.stdout, theirs.stdout, flags.join(' '));
  }
});

test('this machine: usip devices --json -b -a is lsblk -J -b -a\'s', async () => {
  const ours = await usip('devices', '--json', '-b', '-a');
  assert.is(ours.code, 0, ours.stderr);
  const theirs = await run('lsblk', '-J', '-b', '-a', '-o', LSBLK_JSON_COLUMNS);
  assert.equal(JSON.parse(ours.stdout), JSON.parse(theirs.stdout));
  const list = await usip('devices', '-l', '-a');
  assert.is(list.code, 0, list.stderr);
  assert.equal(words(list.stdout), words((await run('lsblk', '-l', '-a', '-o', LSBLK_JSON_COLUMNS)).stdout));
});

test('devices named on the command line: by node, by kernel name, by MAJ:MIN; a disk with its partitions', async () => {
  const root = await fakeRoot();
  const named = await usip('devices', '--sysroot', root, '--json', '-b', 'sda', 'loop0p2', '11:0', 'loop1', 'sda');
  assert.is(named.code, 0, named.stderr);
  const { blockdevices } = JSON.parse(named.stdout);
  // By device number, each once, as lsblk prints them.
  assert.equal(
    blockdevices.map((d: { name: string; children?: { name: string }[] }) => [d.name, (d.children ?? []).map((c) => c.name)]),
    [
      ['loop1', []],
      ['sda', ['sda1', 'sda2', 'sda3']],
      ['sr0', []],
      ['loop0p2', []],
    ],
  );
});

test('bad input: an unknown column or option is a usage error (exit 2), a device that is not one exits 1, naming it', async () => {
  for (const [args, message] of [
    [['devices', '-o', 'NAME,SIZ'], "option '-o, --output <list>' argument 'NAME,SIZ' is invalid. unknown column \"SIZ\"; the columns are NAME,"],
    [['devices', '-o', ''], 'an empty column name'],
    [['devices', '--tree'], "unknown option '--tree'"],
  ] as const) {
    const { code, stdout, stderr } = await usip(...args);
    assert.is(code, 2, `${args.join(' ')}: ${stderr}`);
    assert.is(stdout, '');
    assert.match(stderr, message);
  }
  for (const [args, message] of [
    [['devices', '/dev/no-such-device'], 'usip: devices: "/dev/no-such-device": no such block device\n'],
    [['devices', '/etc/passwd'], 'usip: devices: "/etc/passwd": not a block device\n'],
    [['devices', '4095:1048575'], 'usip: devices: "4095:1048575": no such block device\n'],
  ] as const) {
    const { code, stdout, stderr } = await usip(...args);
    assert.is(code, 1, `${args.join(' ')}: ${stderr}`);
    assert.is(stdout, '');
    assert.is(stderr, message);
  }
});

test('usip devices needs no module: on this machine (no usip module) it exits 0 with a table', async () => {
  const { code, stdout, stderr } = await usip('devices', '-a');
  assert.is(code, 0, stderr);
  assert.is(stderr, '');
  assert.match(stdout, /^NAME +MAJ:MIN RM +SIZE RO TYPE MOUNTPOINTS\n/);
});

test.run();
