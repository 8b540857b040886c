// Block devices, read from sysfs in user space: what the kernel exports of every gendisk and
// partition under /sys/class/block (Documentation/ABI/stable/sysfs-block), the udev database
// where it has something sysfs lacks, /proc/swaps, and the mount table (given, or
// /proc/self/mountinfo) to tell which mounts use each device. No module and no privilege needed.
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { UsipError } from './errors.js';
import { readMountinfo, unescapeMountinfo, type MountInfo } from './mounts.js';

/** A mount that uses a block device: its file system's device number is the device's, or its
 *  source is the device's node. */
export interface DeviceMount {
  /** Mount id (mountinfo's first field). */
  id: number;
  /** The 64-bit unique id, when the mount table came from the module on Linux 6.8+. */
  uniqueId?: bigint;
  /** Where it is mounted, relative to the reader's root directory. */
  mountPoint: string;
  /** The directory of the file system the mount shows ("/" unless a bind mount of a subdirectory). */
  root: string;
  /** File system type, e.g. ext4. */
  fsType: string;
  /** The mounted source, e.g. /dev/sda1. */
  source: string;
}

/** One block device: a whole device (disk, loop, ...) or a partition. */
export interface BlockDevice {
  /** The kernel's name (/sys/class/block/NAME), e.g. sda1, loop0p2, nvme0n1. */
  name: string;
  /** The device node udev and devtmpfs make for it: /dev/NAME ("!" in NAME becomes "/"). */
  path: string;
  major: number;
  minor: number;
  /** 'part' for a partition; 'loop'; for device mapper the kind its uuid names ('lvm',
   *  'crypt', 'mpath', ...; 'dm' when it has none); md's RAID level ('raid1', ...; 'md');
   *  a SCSI device's peripheral type ('disk', 'rom', 'tape', ...); 'disk' otherwise. */
  type: string;
  /** Size in bytes (sysfs gives it in 512-byte sectors, whatever the block size). */
  size: bigint;
  /** queue/logical_block_size and queue/physical_block_size, in bytes (a partition's are its disk's). */
  logicalBlockSize: number;
  physicalBlockSize: number;
  /** The ro attribute: the device (or partition) is read-only. */
  readOnly: boolean;
  /** The removable attribute of the disk (a partition's is its disk's). */
  removable: boolean;
  /** queue/rotational of the disk (a partition's is its disk's). */
  rotational: boolean;
  /** The hidden attribute (Linux 5.x+): a device with no node of its own, e.g. an NVMe path
   *  under native multipath. lsblk never shows these. */
  hidden: boolean;
  /** Model and serial of a whole device, where known (never set on partitions: see the disk).
   *  Model: device/model, else udev's ID_MODEL. Serial: the serial attribute (virtio), else
   *  device/serial (NVMe, MMC), else SCSI VPD page 0x80 (device/vpd_pg80), else udev's
   *  ID_SERIAL_SHORT. */
  model?: string;
  serial?: string;
  /** A partition's number (the partition attribute), and its start in bytes. */
  partition?: number;
  start?: bigint;
  /** A partition's disk's name. */
  parent?: string;
  /** A bound loop device's backing file (loop/backing_file), as the kernel shows it. */
  backingFile?: string;
  /** The file system on it: udev's ID_FS_TYPE (what blkid found), else the type it is mounted
   *  as; undefined when neither knows. */
  fsType?: string;
  /** It is an active swap area: /proc/swaps names it, or a node of its device number. */
  swap: boolean;
  /** The mounts that use it, in the mount table's order. */
  mounts: DeviceMount[];
  /** A whole device's partitions, by partition number; [] for partitions. */
  partitions: BlockDevice[];
}

/** The file operations readBlockDevices uses; tests replace them to make devices vanish. */
export interface SysfsIo {
  readFile(path: string): Promise<Buffer>;
  readdir(path: string): Promise<string[]>;
  realpath(path: string): Promise<string>;
  stat(path: string): Promise<{ isBlockDevice(): boolean; rdev: bigint }>;
}

export interface BlockDeviceOptions {
  /** Where sysfs is mounted (default /sys). */
  sysfsRoot?: string;
  /** The udev database (default /run/udev/data); absent is fine. */
  udevDataDir?: string;
  /** The swap areas (default /proc/swaps); absent is fine. */
  swapsPath?: string;
  /** The mount table to match devices with; by default /proc/self/mountinfo is read. */
  mounts?: readonly MountInfo[];
  /** The file operations, for tests (default node:fs/promises). */
  io?: Partial<SysfsIo>;
}

const defaultIo: SysfsIo = {
  readFile: (path) => readFile(path),
  readdir: (path) => readdir(path),
  realpath: (path) => realpath(path),
  stat: (path) => stat(path, { bigint: true }),
};

/** include/uapi/linux/major.h */
const LOOP_MAJOR = 7;

// The peripheral device types of SCSI (SPC), as lsblk names them (device/type).
const SCSI_TYPES: Readonly<Record<number, string>> = {
  0x00: 'disk',
  0x01: 'tape',
  0x02: 'printer',
  0x03: 'processor',
  0x04: 'worm',
  0x05: 'rom',
  0x06: 'scanner',
  0x07: 'mo-disk',
  0x08: 'changer',
  0x09: 'comm',
  0x0c: 'raid',
  0x0d: 'enclosure',
  0x0e: 'rbc',
  0x11: 'osd',
  0x7f: 'no-lun',
};

/** An error that means the file (and so, in sysfs, the device) is not there (any more). */
function vanished(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'ENOENT' || code === 'ENODEV' || code === 'ENXIO' || code === 'ENOTDIR';
}

/** Thrown inside one device's reading when it turned out to be gone; never escapes. */
class Vanished extends Error {}

/** A device as its own sysfs directory describes it, before disks and partitions are joined. */
interface RawDevice {
  name: string;
  dir: string;
  major: number;
  minor: number;
  sectors: bigint;
  readOnly: boolean;
  partition?: number;
  startSectors?: bigint;
  disk?: {
    removable: boolean;
    rotational: boolean;
    logicalBlockSize: number;
    physicalBlockSize: number;
    hidden: boolean;
    type: string;
    model?: string;
    serial?: string;
    backingFile?: string;
  };
}

class SysfsReader {
  constructor(
    readonly io: SysfsIo,
    readonly sysfsRoot: string,
  ) {}

  /** A required attribute: a missing one means the device went away. */
  async text(dir: string, attribute: string): Promise<string> {
    try {
      return (await this.io.readFile(join(dir, attribute))).toString('utf8').replace(/\n$/, '');
    } catch (error) {
      if (vanished(error)) throw new Vanished();
      throw error;
    }
  }

  /** An attribute that some devices lack (or that only root may read): undefined then. */
  async optional(dir: string, attribute: string): Promise<Buffer | undefined> {
    try {
      return await this.io.readFile(join(dir, attribute));
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (vanished(error) || code === 'EACCES' || code === 'EPERM' || code === 'EISDIR' || code === 'EINVAL' || code === 'EIO') return undefined;
      throw error;
    }
  }

  async optionalText(dir: string, attribute: string): Promise<string | undefined> {
    const bytes = await this.optional(dir, attribute);
    if (bytes === undefined) return undefined;
    const value = bytes.toString('utf8').trim();
    return value === '' ? undefined : value;
  }

  async unsigned(dir: string, attribute: string): Promise<bigint> {
    const value = await this.text(dir, attribute);
    if (!/^\d+$/.test(value)) throw new UsipError('USIP_SYSFS', `${join(dir, attribute)}: expected an unsigned integer, got ${JSON.stringify(value)}`);
    return BigInt(value);
  }

  async number(dir: string, attribute: string): Promise<number> {
    const value = await this.unsigned(dir, attribute);
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new UsipError('USIP_SYSFS', `${join(dir, attribute)}: ${value} is too large`);
    return Number(value);
  }

  async flag(dir: string, attribute: string): Promise<boolean> {
    return (await this.unsigned(dir, attribute)) !== 0n;
  }

  async devNumber(dir: string): Promise<[number, number]> {
    const value = await this.text(dir, 'dev');
    const match = /^(\d+):(\d+)$/.exec(value);
    if (match === null) throw new UsipError('USIP_SYSFS', `${join(dir, 'dev')}: expected MAJOR:MINOR, got ${JSON.stringify(value)}`);
    return [Number(match[1]), Number(match[2])];
  }

  /** One entry of /sys/class/block, or undefined if it vanished while it was read. */
  async device(name: string): Promise<RawDevice | undefined> {
    try {
      let dir: string;
      try {
        dir = await this.io.realpath(join(this.sysfsRoot, 'class/block', name));
      } catch (error) {
        if (vanished(error)) return undefined;
        throw error;
      }
      const [major, minor] = await this.devNumber(dir);
      const sectors = await this.unsigned(dir, 'size');
      const readOnly = await this.flag(dir, 'ro');
      const partition = await this.optionalText(dir, 'partition');
      const device: RawDevice = { name, dir, major, minor, sectors, readOnly };
      if (partition !== undefined) {
        if (!/^\d+$/.test(partition)) throw new UsipError('USIP_SYSFS', `${join(dir, 'partition')}: expected a partition number, got ${JSON.stringify(partition)}`);
        device.partition = Number(partition);
        const start = await this.optionalText(dir, 'start');
        if (start !== undefined && /^\d+$/.test(start)) device.startSectors = BigInt(start);
      } else {
        device.disk = await this.disk(dir, name, major);
      }
      // Attributes that may be absent were read as absent: make sure that is not because the
      // device went away meanwhile (it would then have no dev, or another device's).
      const [majorAfter, minorAfter] = await this.devNumber(dir);
      if (majorAfter !== major || minorAfter !== minor) return undefined;
      return device;
    } catch (error) {
      if (error instanceof Vanished) return undefined;
      throw error;
    }
  }

  async disk(dir: string, name: string, major: number): Promise<NonNullable<RawDevice['disk']>> {
    const disk: NonNullable<RawDevice['disk']> = {
      removable: await this.flag(dir, 'removable'),
      rotational: await this.flag(dir, 'queue/rotational'),
      logicalBlockSize: await this.number(dir, 'queue/logical_block_size'),
      physicalBlockSize: await this.number(dir, 'queue/physical_block_size'),
      hidden: (await this.optionalText(dir, 'hidden')) === '1',
      type: await this.type(dir, name, major),
    };
    const model = await this.optionalText(dir, 'device/model');
    if (model !== undefined) disk.model = model;
    const serial = (await this.optionalText(dir, 'serial')) ?? (await this.optionalText(dir, 'device/serial')) ?? vpdSerial(await this.optional(dir, 'device/vpd_pg80'));
    if (serial !== undefined) disk.serial = serial;
    if (major === LOOP_MAJOR) {
      const backing = await this.optional(dir, 'loop/backing_file');
      if (backing !== undefined) disk.backingFile = backing.toString('utf8').replace(/\n$/, '');
    }
    return disk;
  }

  async type(dir: string, name: string, major: number): Promise<string> {
    if (major === LOOP_MAJOR) return 'loop';
    if (/^dm-\d+$/.test(name)) {
      const uuid = await this.optionalText(dir, 'dm/uuid');
      if (uuid === undefined) return 'dm';
      // kpartx's partitions are "part<N>-..."; otherwise the prefix names the target's user.
      if (/^part\d*-/i.test(uuid)) return 'part';
      const prefix = /^([^-]+)-/.exec(uuid)?.[1];
      return prefix === undefined ? 'dm' : prefix.toLowerCase();
    }
    if (/^md/.test(name)) return (await this.optionalText(dir, 'md/level')) ?? 'md';
    const scsiType = await this.optionalText(dir, 'device/type');
    if (scsiType !== undefined && /^\d+$/.test(scsiType)) return SCSI_TYPES[Number(scsiType)] ?? 'disk';
    return 'disk';
  }
}

/** The unit serial number of a SCSI VPD page 0x80 (SPC-4 7.8.15): 4 header bytes, then ASCII. */
export function vpdSerial(page: Buffer | undefined): string | undefined {
  if (page === undefined || page.length < 4 || page[1] !== 0x80) return undefined;
  const length = page.readUInt16BE(2);
  const serial = page
    .subarray(4, 4 + length)
    .toString('latin1')
    .replace(/[\0\s]+$/, '')
    .replace(/^\s+/, '');
  return serial === '' ? undefined : serial;
}

/** The E: lines of a udev database file (/run/udev/data/b<maj>:<min>). */
export function parseUdevData(text: string): Map<string, string> {
  const properties = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('E:')) continue;
    const eq = line.indexOf('=');
    if (eq > 2) properties.set(line.slice(2, eq), line.slice(eq + 1));
  }
  return properties;
}

/** udev's \xNN escapes (ID_MODEL_ENC) undone. */
function udevUnescape(value: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < value.length; ) {
    const hex = /^\\x([\da-f]{2})/i.exec(value.slice(i, i + 4));
    if (hex !== null) {
      bytes.push(parseInt(hex[1]!, 16));
      i += 4;
    } else {
      bytes.push(...Buffer.from(value[i]!, 'utf8'));
      i += 1;
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/** The device numbers in a 64-bit dev_t as glibc's major()/minor() split it. */
export function splitDev(dev: bigint): { major: number; minor: number } {
  const major = Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & 0xfffff000n));
  const minor = Number((dev & 0xffn) | ((dev >> 12n) & 0xffffff00n));
  return { major, minor };
}

/** The active swap partitions of /proc/swaps: their device numbers ("major:minor", from the
 *  nodes named) and the names themselves. */
async function swapDevices(io: SysfsIo, path: string): Promise<{ numbers: Set<string>; paths: Set<string> }> {
  const swaps = { numbers: new Set<string>(), paths: new Set<string>() };
  let text: string;
  try {
    text = (await io.readFile(path)).toString('utf8');
  } catch (error) {
    if (vanished(error) || (error as { code?: unknown }).code === 'EACCES') return swaps;
    throw error;
  }
  for (const line of text.split('\n').slice(1)) {
    const [escaped, kind] = line.split(/\s+/);
    if (escaped === undefined || kind !== 'partition') continue;
    const file = unescapeMountinfo(escaped);
    swaps.paths.add(file);
    try {
      const st = await io.stat(file);
      if (!st.isBlockDevice()) continue;
      const { major, minor } = splitDev(st.rdev);
      swaps.numbers.add(`${major}:${minor}`);
    } catch {
      // A node that is gone or out of reach: the name alone tells.
    }
  }
  return swaps;
}

const DEVICE_PATH = (name: string) => `/dev/${name.replace(/!/g, '/')}`;

function deviceMount(mount: MountInfo): DeviceMount {
  const out: DeviceMount = { id: mount.id, mountPoint: mount.mountPoint, root: mount.root, fsType: mount.fsType, source: mount.source };
  if (mount.uniqueId !== undefined) out.uniqueId = mount.uniqueId;
  return out;
}

const byNumber = (a: { major: number; minor: number }, b: { major: number; minor: number }) => a.major - b.major || a.minor - b.minor;

/**
 * Every block device of the system, whole devices sorted by device number, each with its
 * partitions. Read from sysfs (world-readable: no privilege needed, no module), the udev
 * database where it exists, /proc/swaps, and the mount table (`options.mounts`, or
 * /proc/self/mountinfo). A device that disappears while it is read is left out; no race
 * makes this throw.
 */
export async function readBlockDevices(options: BlockDeviceOptions = {}): Promise<BlockDevice[]> {
  const io: SysfsIo = { ...defaultIo, ...options.io };
  const sysfsRoot = options.sysfsRoot ?? '/sys';
  const udevDataDir = options.udevDataDir ?? '/run/udev/data';
  const reader = new SysfsReader(io, sysfsRoot);
  const classBlock = join(sysfsRoot, 'class/block');
  let names: string[];
  try {
    names = await io.readdir(classBlock);
  } catch (error) {
    throw new UsipError('USIP_SYSFS', `cannot list the block devices: ${classBlock}: ${(error as Error).message} (is sysfs mounted?)`, { cause: error });
  }
  const [raw, swaps, mounts] = await Promise.all([
    Promise.all(names.map((name) => reader.device(name))),
    swapDevices(io, options.swapsPath ?? '/proc/swaps'),
    options.mounts ?? readMountinfo(),
  ]);

  // The mounts of each device number, and of each source, in the table's order.
  const order = new Map<number, number>();
  const byDevNumber = new Map<string, MountInfo[]>();
  const bySource = new Map<string, MountInfo[]>();
  mounts.forEach((mount, i) => {
    order.set(mount.id, i);
    for (const [map, key] of [
      [byDevNumber, `${mount.major}:${mount.minor}`],
      [bySource, mount.source],
    ] as const) {
      const list = map.get(key);
      if (list === undefined) map.set(key, [mount]);
      else list.push(mount);
    }
  });
  const mountsOf = (d: RawDevice, path: string): DeviceMount[] => {
    // Those whose source is the device's node but whose st_dev is another count too (btrfs,
    // whose file systems have anonymous device numbers).
    const own = byDevNumber.get(`${d.major}:${d.minor}`) ?? [];
    const viaSource = (bySource.get(path) ?? []).filter((m) => !own.includes(m));
    const all = viaSource.length === 0 ? own : [...own, ...viaSource].sort((a, b) => order.get(a.id)! - order.get(b.id)!);
    return all.map(deviceMount);
  };
  const udev = async (d: RawDevice): Promise<Map<string, string>> => {
    try {
      return parseUdevData((await io.readFile(join(udevDataDir, `b${d.major}:${d.minor}`))).toString('utf8'));
    } catch {
      return new Map();
    }
  };

  /** The device as handed out; a partition inherits what sysfs says only of its disk. */
  const build = async (d: RawDevice, disk: NonNullable<RawDevice['disk']>): Promise<BlockDevice> => {
    const path = DEVICE_PATH(d.name);
    const deviceMounts = mountsOf(d, path);
    const properties = await udev(d);
    const device: BlockDevice = {
      name: d.name,
      path,
      major: d.major,
      minor: d.minor,
      type: d.partition === undefined ? disk.type : 'part',
      size: d.sectors * 512n,
      logicalBlockSize: disk.logicalBlockSize,
      physicalBlockSize: disk.physicalBlockSize,
      readOnly: d.readOnly,
      removable: disk.removable,
      rotational: disk.rotational,
      hidden: disk.hidden,
      swap: swaps.numbers.has(`${d.major}:${d.minor}`) || swaps.paths.has(path),
      mounts: deviceMounts,
      partitions: [],
    };
    if (d.partition === undefined) {
      const encoded = properties.get('ID_MODEL_ENC');
      const model = disk.model ?? (encoded === undefined ? properties.get('ID_MODEL') : udevUnescape(encoded).trim());
      if (model !== undefined && model !== '') device.model = model;
      const serial = disk.serial ?? properties.get('ID_SERIAL_SHORT');
      if (serial !== undefined && serial !== '') device.serial = serial;
      if (disk.backingFile !== undefined) device.backingFile = disk.backingFile;
    } else {
      device.partition = d.partition;
      if (d.startSectors !== undefined) device.start = d.startSectors * 512n;
    }
    const fsType = properties.get('ID_FS_TYPE') || deviceMounts[0]?.fsType;
    if (fsType !== undefined && fsType !== '') device.fsType = fsType;
    return device;
  };

  const present = raw.filter((d): d is RawDevice => d !== undefined);
  const disksByDir = new Map<string, { raw: NonNullable<RawDevice['disk']>; device: BlockDevice }>();
  const disks = await Promise.all(
    present.flatMap((d) =>
      d.disk === undefined
        ? []
        : [
            build(d, d.disk).then((device) => {
              disksByDir.set(d.dir, { raw: d.disk!, device });
              return device;
            }),
          ],
    ),
  );
  await Promise.all(
    present.map(async (d) => {
      if (d.disk !== undefined) return;
      // A partition's directory is inside its disk's. A disk that went away takes its
      // partitions along, even one that was read before it went.
      const disk = disksByDir.get(dirname(d.dir));
      if (disk === undefined) return;
      const partition = await build(d, disk.raw);
      partition.parent = disk.device.name;
      disk.device.partitions.push(partition);
    }),
  );
  for (const disk of disks) disk.partitions.sort((a, b) => a.partition! - b.partition! || byNumber(a, b));
  return disks.sort(byNumber);
}
