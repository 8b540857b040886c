// A mount as listmount/statmount describe it (KernelMount) turned into the client's MountInfo,
// the same value parseMountinfo() makes of the mount's line of /proc/self/mountinfo: per-mount
// options from MOUNT_ATTR_*, optional fields from the propagation, and the super options from
// the super block's flags and the file system's own options. What the running kernel's statmount
// does not answer (the source before STATMOUNT_SB_SOURCE, the file system options before
// STATMOUNT_MNT_OPTS) is taken from the mount's mountinfo line, which must then be given.
import type { MountAttrName } from './generated/usip.js';
import type { KernelMount } from './kernel-api.js';
import { MountAttr } from './generated/usip.js';
import { mountAttributeNames, mountOptions, optionalFields, type MountInfo } from './mounts.js';

// include/uapi/linux/mount.h
const MOUNT_ATTR_RDONLY = 0x1n;
const MOUNT_ATTR_NOSUID = 0x2n;
const MOUNT_ATTR_NODEV = 0x4n;
const MOUNT_ATTR_NOEXEC = 0x8n;
const MOUNT_ATTR__ATIME = 0x70n;
const MOUNT_ATTR_RELATIME = 0x0n;
const MOUNT_ATTR_NOATIME = 0x10n;
const MOUNT_ATTR_NODIRATIME = 0x80n;
const MOUNT_ATTR_IDMAP = 0x100000n;
const MOUNT_ATTR_NOSYMFOLLOW = 0x200000n;
// include/uapi/linux/mount.h, MS_* propagation
const MS_UNBINDABLE = 1n << 17n;
const MS_SLAVE = 1n << 19n;
const MS_SHARED = 1n << 20n;
// include/linux/fs.h SB_* as statmount reports them
const SB_RDONLY = 0x1;
const SB_SYNCHRONOUS = 0x10;
const SB_MANDLOCK = 0x40;
const SB_DIRSYNC = 0x80;
const SB_LAZYTIME = 0x2000000;

/** The client's MountAttr mask (the module's bits) of statmount's MOUNT_ATTR_* mask. */
export function mountAttrOfKernel(attr: bigint): number {
  let out = 0;
  const bits: [bigint, MountAttrName][] = [
    [MOUNT_ATTR_RDONLY, 'ro'],
    [MOUNT_ATTR_NOSUID, 'nosuid'],
    [MOUNT_ATTR_NODEV, 'nodev'],
    [MOUNT_ATTR_NOEXEC, 'noexec'],
    [MOUNT_ATTR_NODIRATIME, 'nodiratime'],
    [MOUNT_ATTR_NOSYMFOLLOW, 'nosymfollow'],
    [MOUNT_ATTR_IDMAP, 'idmapped'],
  ];
  for (const [bit, name] of bits) if ((attr & bit) !== 0n) out |= MountAttr[name];
  // The atime mode is a field: relatime is its value 0 (strictatime 0x20 shows nothing).
  const atime = attr & MOUNT_ATTR__ATIME;
  if (atime === MOUNT_ATTR_NOATIME) out |= MountAttr.noatime;
  else if (atime === MOUNT_ATTR_RELATIME) out |= MountAttr.relatime;
  return out;
}

/** show_sb_opts() of fs/proc_namespace.c, after "ro"/"rw". */
function superBlockOptions(sbFlags: number): string {
  let text = sbFlags & SB_RDONLY ? 'ro' : 'rw';
  if (sbFlags & SB_SYNCHRONOUS) text += ',sync';
  if (sbFlags & SB_DIRSYNC) text += ',dirsync';
  if (sbFlags & SB_MANDLOCK) text += ',mand';
  if (sbFlags & SB_LAZYTIME) text += ',lazytime';
  return text;
}

/** Whether a KernelMount has everything a MountInfo needs, without a mountinfo line. */
export function isComplete(mount: KernelMount): boolean {
  // An empty source is either an empty name or none at all (mountinfo says "none"): ask mountinfo.
  return mount.source !== undefined && mount.source !== '' && mount.mountOptions !== undefined;
}

/**
 * The MountInfo of a KernelMount; `line` (the same mount's entry parsed from mountinfo) gives
 * what statmount did not answer. Throws when something is missing and no line is given, or the
 * line is another mount's.
 */
export function kernelMountInfo(mount: KernelMount, line: MountInfo | undefined, mntNs: number | undefined): MountInfo {
  if (line !== undefined && line.id !== mount.id) throw new Error(`kernelMountInfo: the mountinfo line of mount ${line.id} given for mount ${mount.id}`);
  const source = mount.source !== undefined && mount.source !== '' ? mount.source : (line?.source ?? mount.source);
  let superOptions: string | undefined;
  if (mount.mountOptions !== undefined) {
    superOptions = superBlockOptions(mount.sbFlags) + (mount.mountOptions === '' ? '' : `,${mount.mountOptions}`);
  } else {
    superOptions = line?.superOptions;
  }
  if (source === undefined || superOptions === undefined) {
    throw new Error(`kernelMountInfo: statmount did not give the ${source === undefined ? 'source' : 'file system options'} of mount ${mount.id}, and no mountinfo line was given`);
  }
  const attr = mountAttrOfKernel(mount.mountAttr);
  const shared = (mount.propagation & MS_SHARED) !== 0n ? mount.peerGroup : undefined;
  const slave = (mount.propagation & MS_SLAVE) !== 0n;
  const master = slave ? mount.master : undefined;
  const propagateFrom = slave && mount.propagateFrom !== 0 && mount.propagateFrom !== mount.master ? mount.propagateFrom : undefined;
  const unbindable = (mount.propagation & MS_UNBINDABLE) !== 0n;
  const info: MountInfo = {
    id: mount.id,
    parentId: mount.parentId,
    uniqueId: mount.uniqueId,
    major: mount.major,
    minor: mount.minor,
    root: mount.root,
    mountPoint: mount.mountPoint,
    attributes: mountAttributeNames(attr),
    options: mountOptions(attr),
    unbindable,
    optionalFields: optionalFields({ shared, master, propagateFrom, unbindable }),
    fsType: mount.fsType,
    source,
    superOptions,
  };
  if (shared !== undefined) info.shared = shared;
  if (master !== undefined) info.master = master;
  if (propagateFrom !== undefined) info.propagateFrom = propagateFrom;
  if (mntNs !== undefined) info.mntNs = mntNs;
  return info;
}
