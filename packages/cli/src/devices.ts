// usip devices: the block devices as lsblk shows them: a tree (partitions under their disk) or a
// list, the columns of -o, sizes for people or in bytes (-b), lsblk -J's JSON.
import { stat } from 'node:fs/promises';
import { InvalidArgumentError } from 'commander';
import { join } from 'node:path';
import { readBlockDevices, readMountinfo, splitDev, UsipError, type BlockDevice, type MountInfo } from '@usip/client';
import { rawEscape } from './findmnt.js';
import { layout } from './table.js';

export const DEVICE_COLUMNS = ['NAME', 'MAJ:MIN', 'RM', 'SIZE', 'RO', 'TYPE', 'MOUNTPOINTS', 'MODEL', 'SERIAL', 'ROTA', 'LOG-SEC', 'PHY-SEC', 'FSTYPE'] as const;
export type DeviceColumn = (typeof DEVICE_COLUMNS)[number];
export const DEFAULT_DEVICE_COLUMNS: readonly DeviceColumn[] = ['NAME', 'MAJ:MIN', 'RM', 'SIZE', 'RO', 'TYPE', 'MOUNTPOINTS'];

/** lsblk's minimum widths beyond the header's (its width hints): SIZE is 5 wide even for "20M". */
const MIN_WIDTH: Partial<Record<DeviceColumn, number>> = { SIZE: 5 };

/** Columns whose values are numbers or flags: right-aligned, as lsblk aligns them. */
const RIGHT: ReadonlySet<DeviceColumn> = new Set(['RM', 'SIZE', 'RO', 'ROTA', 'LOG-SEC', 'PHY-SEC']);

/**
 * The -o/--output option: a comma-separated list of columns, in any case (lsblk's names); a
 * list that starts with "+" adds to the default columns.
 */
export function parseColumns(value: string): DeviceColumn[] {
  const extend = value.startsWith('+');
  const names = (extend ? value.slice(1) : value).split(',');
  const columns: DeviceColumn[] = extend ? [...DEFAULT_DEVICE_COLUMNS] : [];
  for (const name of names) {
    const column = DEVICE_COLUMNS.find((c) => c === name.trim().toUpperCase());
    if (column === undefined) {
      throw new InvalidArgumentError(
        name.trim() === '' ? `an empty column name; the columns are ${DEVICE_COLUMNS.join(', ')}` : `unknown column "${name}"; the columns are ${DEVICE_COLUMNS.join(', ')}`,
      );
    }
    columns.push(column);
  }
  return columns;
}

/**
 * A size for people as lsblk writes it: powers of 1024 with a one-letter suffix (B, K, M, G, T,
 * P, E) and at most one decimal, rounded (1.5G, 100M, 0B).
 */
export function humanSize(bytes: bigint): string {
  let exponent = 0;
  while (exponent < 6 && bytes >= 1n << BigInt(10 * (exponent + 1))) exponent++;
  if (exponent === 0) return `${bytes}B`;
  const unit = 1n << BigInt(10 * exponent);
  let whole = bytes / unit;
  // The remainder in thousandths of the unit, rounded to tenths (util-linux's arithmetic:
  // 23.54G is 23.5G, not 23.6G as 1024ths would make it).
  let tenths = ((bytes % unit) * 1000n) / unit;
  tenths = (tenths + 50n) / 100n;
  if (tenths === 10n) {
    whole += 1n;
    tenths = 0n;
  }
  return `${whole}${tenths === 0n ? '' : `.${tenths}`}${'BKMGTPE'[exponent]}`;
}

/** What lsblk shows without -a: no hidden devices, RAM disks (major 1), or unbound empty loop devices. */
export function shownByDefault(device: BlockDevice): boolean {
  if (device.hidden || device.major === 1) return false;
  return !(device.type === 'loop' && device.size === 0n && device.backingFile === undefined);
}

/** The mount points of a device as lsblk lists them: the last mounted first, "[SWAP]" for swap. */
export function mountPoints(device: BlockDevice): string[] {
  const points = device.mounts.map((m) => m.mountPoint).reverse();
  if (device.swap) points.push('[SWAP]');
  return points;
}

type Value = string | number | bigint | boolean | null | string[] | (string | null)[];

/** A column's value: JSON's (booleans, numbers, null when unknown), which the table renders. */
function value(device: BlockDevice, column: DeviceColumn, bytes: boolean, paths = false): Value {
  switch (column) {
    case 'NAME':
      return paths ? `/dev/${device.name}` : device.name;
    case 'MAJ:MIN':
      return `${device.major}:${device.minor}`;
    case 'RM':
      return device.removable;
    case 'SIZE':
      return bytes ? device.size : humanSize(device.size);
    case 'RO':
      return device.readOnly;
    case 'TYPE':
      return device.type;
    case 'MOUNTPOINTS': {
      const points = mountPoints(device);
      return points.length === 0 ? [null] : points;
    }
    case 'MODEL':
      return device.model ?? null;
    case 'SERIAL':
      return device.serial ?? null;
    case 'ROTA':
      return device.rotational;
    case 'LOG-SEC':
      return device.logicalBlockSize;
    case 'PHY-SEC':
      return device.physicalBlockSize;
    case 'FSTYPE':
      return device.fsType ?? null;
  }
}

export interface DevicesCommandOptions {
  all?: boolean;
  bytes?: boolean;
  list?: boolean;
  raw?: boolean;
  noheadings?: boolean;
  paths?: boolean;
  json?: boolean;
  output?: DeviceColumn[];
  sysroot?: string;
}

/**
 * The devices of another system root, as lsblk --sysroot reads them: DIR/sys, the mount table
 * of DIR/proc/self/mountinfo (none if it is not there), DIR/proc/swaps, DIR/run/udev/data.
 */
export async function devicesOfSysroot(root: string): Promise<BlockDevice[]> {
  let mounts: MountInfo[] = [];
  try {
    mounts = await readMountinfo(join(root, 'proc/self/mountinfo'));
  } catch (error) {
    if ((error as { code?: unknown }).code !== 'ENOENT') throw error;
  }
  return readBlockDevices({
    sysfsRoot: join(root, 'sys'),
    udevDataDir: join(root, 'run/udev/data'),
    swapsPath: join(root, 'proc/swaps'),
    mounts,
  });
}

export interface DevicesView {
  columns: readonly DeviceColumn[];
  /** Sizes in bytes. */
  bytes: boolean;
  /** A flat list instead of a tree. */
  list: boolean;
  /** -r: no tree drawn, columns one space apart, blanks and unusual bytes as \xHH. */
  raw?: boolean;
  /** -n: no header line. */
  noHeadings?: boolean;
  /** -p: names as device paths (/dev/sda1). */
  paths?: boolean;
}

/** Control characters and backslashes as \xNN, so that a cell stays on its line. */
const cell = (text: string) => text.replace(/[\x00-\x1f\x7f\\]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);

/** The text lines of a cell: a device mounted in several places gets a line for each. */
function cellLines(device: BlockDevice, column: DeviceColumn, view: DevicesView): string[] {
  const v = value(device, column, view.bytes, view.paths);
  if (view.raw) {
    // lsblk -r: one line per device, several mount points in one cell split by a newline (\x0a).
    if (Array.isArray(v)) return [rawEscape((v as (string | null)[]).filter((x): x is string => x !== null).join('\n'))];
    return [v === null ? '' : typeof v === 'boolean' ? (v ? '1' : '0') : rawEscape(String(v))];
  }
  if (column === 'MAJ:MIN') return [`${String(device.major).padStart(3)}:${String(device.minor).padEnd(3)}`];
  if (Array.isArray(v)) return (v as (string | null)[]).filter((x): x is string => x !== null).map(cell);
  if (v === null) return [''];
  if (typeof v === 'boolean') return [v ? '1' : '0'];
  return [cell(String(v))];
}

/** The list of -l: disks and partitions alike, by device number, as lsblk lists them. */
function flat(devices: readonly BlockDevice[]): BlockDevice[] {
  return devices.flatMap((d) => [d, ...d.partitions]).sort((a, b) => a.major - b.major || a.minor - b.minor);
}

/** `usip devices`: lsblk's table, a tree of partitions under their disks unless `view.list`. */
export function formatDevices(devices: readonly BlockDevice[], view: DevicesView): string {
  const rows: string[][] = [];
  const add = (device: BlockDevice, branch: string, guide: string) => {
    const cells = view.columns.map((column) => cellLines(device, column, view));
    const height = Math.max(1, ...cells.map((lines) => lines.length));
    for (let line = 0; line < height; line++) {
      rows.push(
        view.columns.map((column, i) => {
          const text = cells[i]![line] ?? '';
          if (column !== 'NAME' || view.raw) return text;
          return line === 0 ? `${branch}${text}` : guide;
        }),
      );
    }
  };
  if (view.list) {
    for (const device of flat(devices)) add(device, '', '');
  } else {
    for (const device of devices) {
      const children = device.partitions;
      add(device, '', children.length === 0 ? '' : '│');
      children.forEach((child, i) => {
        const last = i === children.length - 1;
        add(child, last ? '└─' : '├─', last ? '' : '│');
      });
    }
  }
  if (view.raw) return (view.noHeadings ? rows : [[...view.columns], ...rows]).map((row) => `${row.join(' ')}\n`).join('');
  // Columns are as wide as their header even without it (-n), as in lsblk.
  const text = layout(
    [[...view.columns], ...rows],
    view.columns.map((c) => ({ align: RIGHT.has(c) ? 'right' : 'left', atLeast: MIN_WIDTH[c] })),
  );
  return view.noHeadings ? text.slice(text.indexOf('\n') + 1) : text;
}

/** lsblk -J's object of a device: the columns' lower-case names, partitions as children. */
function deviceObject(device: BlockDevice, view: DevicesView, children: boolean): Record<string, Value | Record<string, unknown>[]> {
  const out: Record<string, Value | Record<string, unknown>[]> = {};
  for (const column of view.columns) out[column.toLowerCase()] = value(device, column, view.bytes, view.paths);
  if (children && device.partitions.length > 0) out.children = device.partitions.map((p) => deviceObject(p, view, false));
  return out;
}

/** `usip devices --json`: {"blockdevices": [...]}, as lsblk -J writes it (-b: sizes as numbers). */
export function devicesJson(devices: readonly BlockDevice[], view: DevicesView): string {
  const list = view.list ? flat(devices) : devices;
  return `${jsonText({ blockdevices: list.map((d) => deviceObject(d, view, !view.list)) }, '')}\n`;
}

/** JSON text in which a bigint is a number, written exactly (JSON numbers have no size limit). */
export function jsonText(value: unknown, indent: string): string {
  if (typeof value === 'bigint') return value.toString();
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  const inner = `${indent}  `;
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    return `[\n${value.map((v) => `${inner}${jsonText(v, inner)}`).join(',\n')}\n${indent}]`;
  }
  const entries = Object.entries(value).filter(([, v]) => v !== undefined);
  if (entries.length === 0) return '{}';
  return `{\n${entries.map(([k, v]) => `${inner}${JSON.stringify(k)}: ${jsonText(v, inner)}`).join(',\n')}\n${indent}}`;
}

/**
 * The devices a command line names, each as lsblk shows it: a whole device with its partitions,
 * a partition alone, by device number, each once. A name is a device node or any path to one (/dev/sda, /dev/disk/by-id/...),
 * a kernel name (sda1) or MAJ:MIN. Rejects with a UsipError naming the first that is not a block
 * device of this system.
 */
export async function selectNamed(devices: readonly BlockDevice[], names: readonly string[]): Promise<BlockDevice[]> {
  const all = devices.flatMap((d) => [d, ...d.partitions]);
  const selected: BlockDevice[] = [];
  for (const name of names) {
    let found: BlockDevice | undefined;
    const pair = /^(\d+):(\d+)$/.exec(name);
    if (pair !== null) {
      found = all.find((d) => d.major === Number(pair[1]) && d.minor === Number(pair[2]));
    } else {
      found = all.find((d) => d.name === name);
    }
    if (found === undefined && pair === null) {
      let st;
      try {
        st = await stat(name, { bigint: true });
      } catch (error) {
        const code = (error as { code?: unknown }).code;
        if (code !== 'ENOENT' && code !== 'ENOTDIR' && code !== 'EACCES') throw error;
        throw new UsipError('USIP_NO_DEVICE', `devices: ${JSON.stringify(name)}: no such block device${code === 'EACCES' ? ' (permission denied)' : ''}`);
      }
      if (!st.isBlockDevice()) throw new UsipError('USIP_NO_DEVICE', `devices: ${JSON.stringify(name)}: not a block device`);
      const { major, minor } = splitDev(st.rdev);
      found = all.find((d) => d.major === major && d.minor === minor);
    }
    if (found === undefined) throw new UsipError('USIP_NO_DEVICE', `devices: ${JSON.stringify(name)}: no such block device`);
    if (!selected.includes(found)) selected.push(found);
  }
  // In device-number order, whatever the order of the names, as lsblk prints them.
  return selected.sort((a, b) => a.major - b.major || a.minor - b.minor);
}
