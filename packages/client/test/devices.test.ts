// readBlockDevices() on fake sysfs trees built in a temporary directory, laid out as the kernel
// lays out /sys (devices/.../block/NAME with partitions inside, class/block symlinks, device
// links to the SCSI device): disks, partitions, loop devices bound and not, removable media,
// model and serial from each of their sources or none, device types, the mounts and swap areas
// that use a device, devices vanishing while they are read, and the module-less fallback of
// devices() on this machine.
import { mkdtempSync, readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { devices } from '../src/client.js';
import { parseUdevData, readBlockDevices, splitDev, vpdSerial, type BlockDevice, type SysfsIo } from '../src/devices.js';
import { UsipError } from '../src/errors.js';
import { parseMountinfo } from '../src/mounts.js';

type Entry = string | Buffer | { link: string };

/** Writes files and symlinks (targets relative to the tree's root) under root. */
async function build(root: string, entries: Record<string, Entry>): Promise<void> {
  for (const [path, content] of Object.entries(entries)) {
    const full = join(root, path);
    await mkdir(dirname(full), { recursive: true });
    if (typeof content === 'object' && !Buffer.isBuffer(content)) await symlink(relative(dirname(full), join(root, content.link)), full);
    else await writeFile(full, content);
  }
}

/** A block device's directory: dev, size (sectors), ro, and the rest given. */
function blockDir(dir: string, dev: string, sectors: number, more: Record<string, Entry> = {}, ro = '0'): Record<string, Entry> {
  const out: Record<string, Entry> = { [`${dir}/dev`]: `${dev}\n`, [`${dir}/size`]: `${sectors}\n`, [`${dir}/ro`]: `${ro}\n` };
  for (const [path, content] of Object.entries(more)) out[`${dir}/${path}`] = content;
  return out;
}

/** A whole disk's attributes: removable, hidden, queue. */
function diskAttributes(removable: number, rotational: number, logical: number, physical: number): Record<string, Entry> {
  return {
    removable: `${removable}\n`,
    hidden: '0\n',
    'queue/rotational': `${rotational}\n`,
    'queue/logical_block_size': `${logical}\n`,
    'queue/physical_block_size': `${physical}\n`,
  };
}

/** SCSI VPD page 0x80 as the kernel hands it out: 4 header bytes, the serial, padding. */
function vpd80(serial: string): Buffer {
  const text = Buffer.from(`${serial}    `, 'latin1');
  return Buffer.concat([Buffer.from([0x00, 0x80, 0x00, text.length]), text]);
}

const SCSI0 = 'devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0';
const SCSI1 = 'devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1:1.0/host6/target6:0:0/6:0:0:0';
const SCSI2 = 'devices/pci0000:00/0000:00:1f.2/ata2/host1/target1:0:0/1:0:0:0';
const NVME = 'devices/pci0000:00/0000:00:03.0/nvme/nvme0';
const VIRTIO = 'devices/pci0000:00/0000:00:04.0/virtio1';

/** The sysfs tree of a small machine: one of each kind of device. */
function machine(): Record<string, Entry> {
  const entries: Record<string, Entry> = {
    // A SATA disk with two partitions: model padded with spaces, serial in VPD page 0x80.
    [`${SCSI0}/model`]: 'QEMU HARDDISK   \n',
    [`${SCSI0}/type`]: '0\n',
    [`${SCSI0}/vpd_pg80`]: vpd80('QM00001'),
    ...blockDir(`${SCSI0}/block/sda`, '8:0', 4194304, { ...diskAttributes(0, 1, 512, 4096), device: { link: SCSI0 } }),
    ...blockDir(`${SCSI0}/block/sda/sda1`, '8:1', 2097152, { partition: '1\n', start: '2048\n' }),
    ...blockDir(`${SCSI0}/block/sda/sda2`, '8:2', 2095104, { partition: '2\n', start: '2099200\n' }, '1'),
    // A USB stick: removable, flash; model and serial only in the udev database.
    [`${SCSI1}/type`]: '0\n',
    ...blockDir(`${SCSI1}/block/sdb`, '8:16', 15728640, { ...diskAttributes(1, 0, 512, 512), device: { link: SCSI1 } }),
    // A CD-ROM drive with no medium (size 0), SCSI type 5.
    [`${SCSI2}/model`]: 'QEMU DVD-ROM\n',
    [`${SCSI2}/type`]: '5\n',
    ...blockDir(`${SCSI2}/block/sr0`, '11:0', 0, { ...diskAttributes(1, 1, 2048, 2048), device: { link: SCSI2 } }),
    // NVMe: model and serial on the controller (device/).
    [`${NVME}/model`]: 'Samsung SSD 980 1TB                     \n',
    [`${NVME}/serial`]: 'S64ANS0T123456X     \n',
    ...blockDir(`${NVME}/nvme0n1/block/nvme0n1`, '259:2', 1953525168, { ...diskAttributes(0, 0, 512, 512), device: { link: NVME } }),
    // virtio-blk: the serial attribute on the disk itself; a partition with btrfs on it.
    ...blockDir(`${VIRTIO}/block/vda`, '254:0', 2097152, { ...diskAttributes(0, 1, 512, 512), serial: 'vd-0001\n', device: { link: VIRTIO } }),
    ...blockDir(`${VIRTIO}/block/vda/vda1`, '254:1', 2095104, { partition: '1\n', start: '2048\n' }),
    // A bound loop device with a partition table (losetup -P: partitions on the extended major),
    // and an unbound one.
    ...blockDir('devices/virtual/block/loop0', '7:0', 204800, { ...diskAttributes(0, 0, 512, 512), 'loop/backing_file': '/tmp/disk with space.img\n' }),
    ...blockDir('devices/virtual/block/loop0/loop0p1', '259:0', 100352, { partition: '1\n', start: '2048\n' }),
    ...blockDir('devices/virtual/block/loop0/loop0p2', '259:1', 100352, { partition: '2\n', start: '102400\n' }),
    ...blockDir('devices/virtual/block/loop1', '7:1', 0, diskAttributes(0, 0, 512, 512)),
    // Device mapper: an LVM volume and one with no uuid.
    ...blockDir('devices/virtual/block/dm-0', '253:0', 1048576, { ...diskAttributes(0, 0, 512, 4096), 'dm/uuid': 'LVM-abcdefgh\n', 'dm/name': 'vg-root\n' }),
    ...blockDir('devices/virtual/block/dm-1', '253:1', 8, { ...diskAttributes(0, 0, 512, 512), 'dm/uuid': '\n', 'dm/name': 'plain\n' }),
  };
  for (const [name, dir] of [
    ['sda', `${SCSI0}/block/sda`],
    ['sda1', `${SCSI0}/block/sda/sda1`],
    ['sda2', `${SCSI0}/block/sda/sda2`],
    ['sdb', `${SCSI1}/block/sdb`],
    ['sr0', `${SCSI2}/block/sr0`],
    ['nvme0n1', `${NVME}/nvme0n1/block/nvme0n1`],
    ['vda', `${VIRTIO}/block/vda`],
    ['vda1', `${VIRTIO}/block/vda/vda1`],
    ['loop0', 'devices/virtual/block/loop0'],
    ['loop0p1', 'devices/virtual/block/loop0/loop0p1'],
    ['loop0p2', 'devices/virtual/block/loop0/loop0p2'],
    ['loop1', 'devices/virtual/block/loop1'],
    ['dm-0', 'devices/virtual/block/dm-0'],
    ['dm-1', 'devices/virtual/block/dm-1'],
  ] as const) {
    entries[`class/block/${name}`] = { link: dir };
  }
  return entries;
}

const UDEV: Record<string, string> = {
  'b8:16': 'S:disk/by-id/usb-Generic_Flash_Disk_USB123-0:0\nE:ID_MODEL=Flash_Disk\nE:ID_MODEL_ENC=Flash\\x20Disk\\x20\\x20\nE:ID_SERIAL_SHORT=USB123\nG:systemd\n',
  'b8:1': 'E:ID_FS_TYPE=ext4\nE:ID_FS_UUID=1234\n',
  'b8:2': 'E:ID_FS_TYPE=swap\n',
};

const MOUNTINFO = [
  '30 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw',
  '31 30 0:22 / /tmp rw - tmpfs tmpfs rw',
  '40 30 8:1 /srv /srv rw,relatime - ext4 /dev/sda1 rw',
  '41 30 0:45 / /data rw,relatime - btrfs /dev/vda1 rw,space_cache=v2',
  '42 30 259:0 / /mnt/loop\\040p1 ro,relatime - ext4 /dev/loop0p1 ro',
].join('\n');

interface Fixture {
  root: string;
  sysfs: string;
  udev: string;
  swaps: string;
  io: Partial<SysfsIo>;
}

/** A fresh machine in a temporary directory; sda2 and loop0p2 are its swap partitions. */
const roots: string[] = [];
// Removed at the end even when a test failed half way.
test.after(async () => {
  for (const root of roots) await rm(root, { recursive: true, force: true });
});

async function fixture(extra: Record<string, Entry> = {}): Promise<Fixture> {
  const root = mkdtempSync(join(tmpdir(), 'usip-sysfs-'));
  roots.push(root);
  const sysfs = join(root, 'sys');
  await build(sysfs, { ...machine(), ...extra });
  const udev = join(root, 'udev');
  await build(udev, UDEV);
  const swaps = join(root, 'swaps');
  await writeFile(
    swaps,
    'Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n' +
      '/dev/disk/by-id/ata-QM00001-part2       partition\t1047548\t\t0\t\t-2\n' +
      '/dev/loop0p2                            partition\t50172\t\t0\t\t-3\n' +
      '/swap\\040file                           file\t\t1024\t\t0\t\t-4\n',
  );
  // The nodes named in the swaps file: a link to sda2 (the block device 8:2), a node that is not
  // there (told by its name), a file.
  const io: Partial<SysfsIo> = {
    async stat(path) {
      if (path === '/dev/disk/by-id/ata-QM00001-part2') return { isBlockDevice: () => true, rdev: (8n << 8n) | 2n };
      if (path === '/swap file') return { isBlockDevice: () => false, rdev: 0n };
      throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
    },
  };
  return { root, sysfs, udev, swaps, io };
}

async function read(f: Fixture, io: Partial<SysfsIo> = {}): Promise<BlockDevice[]> {
  return readBlockDevices({ sysfsRoot: f.sysfs, udevDataDir: f.udev, swapsPath: f.swaps, mounts: parseMountinfo(MOUNTINFO), io: { ...f.io, ...io } });
}

const names = (list: BlockDevice[]) => list.map((d) => [d.name, d.partitions.map((p) => p.name)]);
const find = (list: BlockDevice[], name: string) => list.flatMap((d) => [d, ...d.partitions]).find((d) => d.name === name)!;

test('every device, whole devices by device number, partitions under their disk by number', async () => {
  const f = await fixture();
  const list = await read(f);
  assert.equal(names(list), [
    ['loop0', ['loop0p1', 'loop0p2']],
    ['loop1', []],
    ['sda', ['sda1', 'sda2']],
    ['sdb', []],
    ['sr0', []],
    ['dm-0', []],
    ['dm-1', []],
    ['vda', ['vda1']],
    ['nvme0n1', []],
  ]);
});

test('a disk: size in bytes, block sizes, flags, model and serial (VPD page 0x80), type', async () => {
  const f = await fixture();
  const sda = find(await read(f), 'sda');
  assert.equal(sda, {
    name: 'sda',
    path: '/dev/sda',
    major: 8,
    minor: 0,
    type: 'disk',
    size: 4194304n * 512n,
    logicalBlockSize: 512,
    physicalBlockSize: 4096,
    readOnly: false,
    removable: false,
    rotational: true,
    hidden: false,
    swap: false,
    mounts: [],
    partitions: sda.partitions,
    model: 'QEMU HARDDISK',
    serial: 'QM00001',
  });
});

test('a partition: its own size, start, number and ro; its disk\'s block sizes and flags; no model or serial', async () => {
  const f = await fixture();
  const list = await read(f);
  const sda2 = find(list, 'sda2');
  assert.equal(
    [sda2.type, sda2.size, sda2.start, sda2.partition, sda2.readOnly, sda2.parent, sda2.major, sda2.minor],
    ['part', 2095104n * 512n, 2099200n * 512n, 2, true, 'sda', 8, 2],
  );
  assert.equal([sda2.logicalBlockSize, sda2.physicalBlockSize, sda2.rotational, sda2.removable], [512, 4096, true, false]);
  assert.not.ok('model' in sda2 || 'serial' in sda2 || 'backingFile' in sda2, JSON.stringify(Object.keys(sda2)));
  assert.equal(sda2.partitions, []);
});

test('loop devices: the backing file of a bound one, partitions on the extended major; an unbound one has none', async () => {
  const f = await fixture();
  const list = await read(f);
  const loop0 = find(list, 'loop0');
  assert.equal([loop0.type, loop0.backingFile, loop0.size], ['loop', '/tmp/disk with space.img', 204800n * 512n]);
  assert.equal(
    loop0.partitions.map((p) => [p.name, `${p.major}:${p.minor}`, p.type, p.size, p.parent]),
    [
      ['loop0p1', '259:0', 'part', 100352n * 512n, 'loop0'],
      ['loop0p2', '259:1', 'part', 100352n * 512n, 'loop0'],
    ],
  );
  const loop1 = find(list, 'loop1');
  assert.equal([loop1.type, loop1.size], ['loop', 0n]);
  assert.not.ok('backingFile' in loop1);
  assert.not.ok('model' in loop1 || 'serial' in loop1, 'a loop device has neither model nor serial');
});

test('removable media: a USB stick (model and serial from udev) and an empty CD-ROM drive (type rom)', async () => {
  const f = await fixture();
  const list = await read(f);
  const sdb = find(list, 'sdb');
  assert.equal([sdb.removable, sdb.rotational, sdb.model, sdb.serial, sdb.type], [true, false, 'Flash Disk', 'USB123', 'disk']);
  const sr0 = find(list, 'sr0');
  assert.equal([sr0.removable, sr0.type, sr0.size, sr0.model, sr0.logicalBlockSize], [true, 'rom', 0n, 'QEMU DVD-ROM', 2048]);
  assert.not.ok('serial' in sr0, 'no serial anywhere');
});

test('NVMe (device/model, device/serial), virtio (serial attribute), device mapper types', async () => {
  const f = await fixture();
  const list = await read(f);
  const nvme = find(list, 'nvme0n1');
  assert.equal([nvme.model, nvme.serial, nvme.type], ['Samsung SSD 980 1TB', 'S64ANS0T123456X', 'disk']);
  const vda = find(list, 'vda');
  assert.equal([vda.serial, 'model' in vda], ['vd-0001', false]);
  assert.equal([find(list, 'dm-0').type, find(list, 'dm-1').type], ['lvm', 'dm']);
});

test('the mounts that use a device: by device number (bind mounts too), by source (btrfs); swap by number and name; fs type', async () => {
  const f = await fixture();
  const list = await read(f);
  const sda1 = find(list, 'sda1');
  assert.equal(sda1.mounts, [
    { id: 30, mountPoint: '/', root: '/', fsType: 'ext4', source: '/dev/sda1' },
    { id: 40, mountPoint: '/srv', root: '/srv', fsType: 'ext4', source: '/dev/sda1' },
  ]);
  assert.is(sda1.fsType, 'ext4');
  assert.equal(find(list, 'vda1').mounts.map((m) => [m.id, m.mountPoint, m.fsType]), [[41, '/data', 'btrfs']]);
  assert.is(find(list, 'vda1').fsType, 'btrfs', 'no udev record: the type it is mounted as');
  assert.equal(find(list, 'loop0p1').mounts.map((m) => m.mountPoint), ['/mnt/loop p1']);
  const sda2 = find(list, 'sda2');
  assert.equal([sda2.swap, sda2.fsType, sda2.mounts], [true, 'swap', []]);
  assert.equal(
    list.flatMap((d) => [d, ...d.partitions]).filter((d) => d.swap).map((d) => d.name),
    ['loop0p2', 'sda2'],
    'by device number, by name; the swap file is not a device',
  );
  assert.equal(find(list, 'sda').mounts, [], 'the disk itself is not mounted');
  assert.not.ok('fsType' in find(list, 'sda'));
});

/** An io whose readFile removes a device (its directory and class link) just before `trigger` is read. */
function vanishing(f: Fixture, trigger: string, dir: string, links: string[]): Partial<SysfsIo> {
  let done = false;
  return {
    async readFile(path) {
      if (!done && path === join(f.sysfs, trigger)) {
        done = true;
        await rm(join(f.sysfs, dir), { recursive: true });
        for (const name of links) await unlink(join(f.sysfs, 'class/block', name));
      }
      return readFile(path);
    },
  };
}

test('a device that vanishes while a required attribute is read is left out; the rest is read', async () => {
  const f = await fixture();
  const io = vanishing(f, 'devices/virtual/block/loop1/queue/rotational', 'devices/virtual/block/loop1', ['loop1']);
  const list = await read(f, io);
  assert.not.ok(list.some((d) => d.name === 'loop1'));
  assert.is(list.length, 8);
});

test('a device that vanishes just before an optional attribute (model) is left out, not shown without one', async () => {
  const f = await fixture();
  const io = vanishing(f, `${SCSI2}/block/sr0/device/model`, `${SCSI2}`, ['sr0']);
  const list = await read(f, io);
  assert.not.ok(list.some((d) => d.name === 'sr0'));
  assert.ok(list.some((d) => d.name === 'sda'));
});

test('a disk that vanishes takes its partitions along, whenever they were read', async () => {
  for (const trigger of ['devices/virtual/block/loop0/queue/rotational', 'devices/virtual/block/loop0/loop0p2/start', 'devices/virtual/block/loop0/loop0p1/dev']) {
    const f = await fixture();
    const io = vanishing(f, trigger, 'devices/virtual/block/loop0', ['loop0', 'loop0p1', 'loop0p2']);
    const list = await read(f, io);
    assert.equal(
      list.flatMap((d) => [d, ...d.partitions]).filter((d) => d.name.startsWith('loop0')),
      [],
      trigger,
    );
    assert.ok(list.some((d) => d.name === 'loop1'), trigger);
    }
});

test('a device listed and gone before its link is followed is left out', async () => {
  const f = await fixture();
  const list = await read(f, {
    async readdir(path) {
      const entries = await readdir(path);
      if (path === join(f.sysfs, 'class/block')) await unlink(join(f.sysfs, 'class/block/sdb'));
      return entries;
    },
  });
  assert.not.ok(list.some((d) => d.name === 'sdb'));
  assert.is(list.length, 8);
});

test('what is not a race is not hidden: a malformed attribute, no sysfs at all', async () => {
  const f = await fixture({ 'devices/virtual/block/loop1/size': 'lots\n' });
  const error = await read(f).then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.instance(error, UsipError);
  assert.is((error as UsipError).code, 'USIP_SYSFS');
  assert.match((error as Error).message, `${join(f.sysfs, 'devices/virtual/block/loop1/size')}: expected an unsigned integer, got "lots"`);
  const none = await readBlockDevices({ sysfsRoot: join(f.root, 'nothing'), mounts: [] }).then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.instance(none, UsipError);
  assert.match((none as Error).message, /^cannot list the block devices: .*nothing\/class\/block: ENOENT.* \(is sysfs mounted\?\)$/);
});

test('without udev data and swaps files everything but their facts is there', async () => {
  const f = await fixture();
  const list = await readBlockDevices({ sysfsRoot: f.sysfs, udevDataDir: join(f.root, 'no-udev'), swapsPath: join(f.root, 'no-swaps'), mounts: parseMountinfo(MOUNTINFO) });
  const sdb = find(list, 'sdb');
  assert.not.ok('model' in sdb || 'serial' in sdb);
  assert.is(find(list, 'sda2').swap, false);
  assert.is(find(list, 'sda1').fsType, 'ext4', 'from its mount');
  assert.is(find(list, 'sda').serial, 'QM00001');
});

test('devices() without the module matches the devices with /proc/self/mountinfo', async () => {
  // A fake disk with the device number of this machine's root mount.
  const rootMount = parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8')).find((m) => m.mountPoint === '/')!;
  const f = await fixture(blockDir('devices/virtual/block/fake0', `${rootMount.major}:${rootMount.minor}`, 8, diskAttributes(0, 0, 512, 512)));
  await symlink('../../devices/virtual/block/fake0', join(f.sysfs, 'class/block/fake0'));
  const list = await devices({ sysfsRoot: f.sysfs, udevDataDir: f.udev });
  const fake = find(list, 'fake0');
  assert.ok(fake.mounts.some((m) => m.id === rootMount.id && m.mountPoint === '/'), JSON.stringify(fake.mounts));
  assert.ok(fake.mounts.every((m) => m.uniqueId === undefined), 'mountinfo has no unique ids');
  assert.is(list.length, 10);
});

test('this machine\'s /sys: every device of /sys/class/block is there with its dev and size', async () => {
  const list = await readBlockDevices({ mounts: [] });
  const all = list.flatMap((d) => [d, ...d.partitions]);
  const listed = await readdir('/sys/class/block');
  assert.equal(all.map((d) => d.name).sort(), [...listed].sort());
  for (const d of all) {
    assert.is(`${d.major}:${d.minor}`, readFileSync(`/sys/class/block/${d.name}/dev`, 'utf8').trim(), d.name);
    assert.is(d.size, BigInt(readFileSync(`/sys/class/block/${d.name}/size`, 'utf8').trim()) * 512n, d.name);
  }
});

test('helpers: VPD page 0x80, udev records, dev_t', () => {
  assert.is(vpdSerial(vpd80('ABC 123')), 'ABC 123');
  assert.is(vpdSerial(Buffer.from([0, 0x83, 0, 2, 0x41, 0x42])), undefined, 'another page');
  assert.is(vpdSerial(Buffer.from([0, 0x80, 0, 4, 0x20, 0x20, 0, 0])), undefined, 'blank');
  assert.is(vpdSerial(Buffer.from([0, 0x80])), undefined, 'truncated');
  assert.equal([...parseUdevData('S:x\nE:A=1\nE:B=x=y\nI:7\nE:C=\n')], [
    ['A', '1'],
    ['B', 'x=y'],
    ['C', ''],
  ]);
  // glibc's makedev(), written out: the low 12 bits of the major at 8, the rest at 32; the low
  // 8 bits of the minor at 0, the rest at 12.
  const makedev = (major: bigint, minor: bigint) => ((major & 0xfffn) << 8n) | ((major & ~0xfffn) << 32n) | (minor & 0xffn) | ((minor & ~0xffn) << 12n);
  for (const [major, minor] of [
    [8, 1],
    [259, 1],
    [7, 300],
    [4095, 1048575],
    [8191, 0],
  ] as const) {
    assert.equal(splitDev(makedev(BigInt(major), BigInt(minor))), { major, minor }, `${major}:${minor}`);
  }
});

test.run();
