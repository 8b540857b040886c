// chooseBackends(): the backend of each feature and why, from probes of the kernels and module
// states USIP meets (6.1, 6.12, 6.18; module loaded, not loaded, with a feature off; fanotify
// refused), forced backends and the errors of requireBackend(); kernelMountInfo() against
// parseMountinfo() of the same mounts' lines.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  choiceOf,
  chooseBackends,
  kernelMountInfo,
  parseMountinfo,
  requireBackend,
  UsipArgumentError,
  UsipBackendUnavailableError,
  UsipModuleNotLoadedError,
  type BackendFeature,
  type BackendProbe,
  type FeatureStatus,
  type KernelMount,
  type MountBackend,
} from '../src/index.js';

const ALL_FEATURES = ['netns', 'mount-table', 'mount-events', 'remount-events', 'propagation-events', 'setattr-events', 'statfs', 'space-errors', 'quota-warnings', 'low-space'];

function moduleProbe(off: Record<string, string> = {}): BackendProbe['module'] {
  const featureStatus: FeatureStatus[] = ALL_FEATURES.map((feature) => (off[feature] === undefined ? { feature, available: true } : { feature, available: false, reason: off[feature] }));
  return {
    loaded: true,
    ping: {
      protocolVersion: 1,
      moduleVersion: '0.1.0',
      kernelRelease: 'x',
      featureMask: 0,
      features: featureStatus.filter((s) => s.available).map((s) => s.feature),
      featureStatus,
      cookie: undefined,
    },
  };
}

const NOT_LOADED: BackendProbe['module'] = { loaded: false, reason: 'module not loaded' };

function probe(kernel: '6.1' | '6.12' | '6.18' | '6.18-nobody', module: BackendProbe['module'] = NOT_LOADED): BackendProbe {
  const kernelRelease = { '6.1': '6.1.0-40-amd64', '6.12': '6.12.57+deb13-amd64', '6.18': '6.18.44', '6.18-nobody': '6.18.44' }[kernel];
  const newApi = kernel !== '6.1';
  const fanotify =
    kernel === '6.18'
      ? { available: true }
      : kernel === '6.18-nobody'
        ? { available: false, reason: 'EPERM: marking a mount namespace needs CAP_SYS_ADMIN in its user namespace' }
        : { available: false, reason: 'EINVAL: fanotify_init(FAN_REPORT_MNT)' };
  return {
    kernelRelease,
    module,
    kernel: { support: { listmount: newApi, statmount: newApi, statmountMask: newApi ? 0xffn : 0n, fanotifyMount: fanotify } },
    mountinfoWatch: { available: true },
    statfsPath: { available: true },
  };
}

function backends(p: BackendProbe, forced?: MountBackend): Record<BackendFeature, string> {
  const plan = chooseBackends(p, forced === undefined ? {} : { backend: forced });
  return Object.fromEntries(plan.features.map((c) => [c.feature, c.backend])) as Record<BackendFeature, string>;
}

test('without the module: 6.18 uses listmount and fanotify, 6.12 listmount and the mountinfo poll, 6.1 mountinfo', () => {
  assert.equal(backends(probe('6.18')), {
    'mount-table': 'kernel',
    'mount-changes': 'kernel',
    remounts: 'kernel',
    statfs: 'kernel',
    'block-devices': 'kernel',
    'storage-events': 'none',
    'low-space': 'none',
  });
  assert.equal(backends(probe('6.12')), {
    'mount-table': 'kernel',
    'mount-changes': 'mountinfo',
    remounts: 'mountinfo',
    statfs: 'kernel',
    'block-devices': 'kernel',
    'storage-events': 'none',
    'low-space': 'none',
  });
  assert.equal(backends(probe('6.1')), {
    'mount-table': 'mountinfo',
    'mount-changes': 'mountinfo',
    remounts: 'mountinfo',
    statfs: 'kernel',
    'block-devices': 'mountinfo',
    'storage-events': 'none',
    'low-space': 'none',
  });
});

test('the reasons name what was missing: the module, Linux 6.8 for listmount, 6.15 or CAP_SYS_ADMIN for fanotify', () => {
  const plan61 = chooseBackends(probe('6.1'));
  assert.is(choiceOf(plan61, 'mount-table').reason, 'module not loaded; listmount needs Linux 6.8 (this kernel: 6.1.0-40-amd64)');
  assert.equal(choiceOf(plan61, 'mount-table').passedOver.map((p) => p.backend), ['module', 'kernel']);
  const plan612 = chooseBackends(probe('6.12'));
  assert.match(choiceOf(plan612, 'mount-changes').reason, /^module not loaded; fanotify mount events need Linux 6\.15 \(this kernel: 6\.12\.57\+deb13-amd64; EINVAL/);
  const nobody = chooseBackends(probe('6.18-nobody'));
  assert.is(choiceOf(nobody, 'mount-changes').backend, 'mountinfo');
  assert.match(choiceOf(nobody, 'mount-changes').reason, 'fanotify needs CAP_SYS_ADMIN (EPERM: marking a mount namespace');
  assert.is(choiceOf(nobody, 'mount-table').backend, 'kernel', 'listmount needs no privilege');
  const plan618 = chooseBackends(probe('6.18'));
  assert.match(choiceOf(plan618, 'remounts').reason, 'fanotify does not report remounts');
  assert.is(choiceOf(plan618, 'storage-events').reason, 'module not loaded');
  assert.is(choiceOf(plan618, 'statfs').mechanism, 'statfs(2)');
});

test('with the module, every feature is the module\'s; a feature it has off falls back for that feature only', () => {
  const all = backends(probe('6.12', moduleProbe()));
  for (const feature of Object.keys(all) as BackendFeature[]) assert.is(all[feature], 'module', feature);
  const noEvents = chooseBackends(probe('6.12', moduleProbe({ 'mount-events': 'missing-symbol' })));
  assert.is(choiceOf(noEvents, 'mount-table').backend, 'module');
  assert.is(choiceOf(noEvents, 'mount-changes').backend, 'mountinfo');
  assert.match(choiceOf(noEvents, 'mount-changes').reason, 'module: feature mount-events off: missing-symbol');
  assert.is(choiceOf(noEvents, 'statfs').backend, 'module');
  // Remount events off: the module's watcher would miss remounts, so changes come from the kernel.
  const noRemounts = chooseBackends(probe('6.18', moduleProbe({ 'remount-events': 'prototype-mismatch' })));
  assert.is(choiceOf(noRemounts, 'mount-changes').backend, 'kernel');
  assert.match(choiceOf(noRemounts, 'mount-changes').reason, 'module: feature remount-events off: prototype-mismatch');
  const noTable = chooseBackends(probe('6.1', moduleProbe({ 'mount-table': 'layout-mismatch', statfs: 'needs-mount-table', 'low-space': 'not-built' })));
  assert.equal(
    noTable.features.map((c) => [c.feature, c.backend]),
    [
      ['mount-table', 'mountinfo'],
      ['mount-changes', 'mountinfo'],
      ['remounts', 'mountinfo'],
      ['statfs', 'kernel'],
      ['block-devices', 'mountinfo'],
      ['storage-events', 'module'],
      ['low-space', 'none'],
    ],
  );
  assert.is(choiceOf(noTable, 'low-space').reason, 'module: feature low-space off: not-built');
});

test('a forced backend serves the mount features alone, or requireBackend says why it cannot', () => {
  assert.equal(backends(probe('6.18'), 'mountinfo'), {
    'mount-table': 'mountinfo',
    'mount-changes': 'mountinfo',
    remounts: 'mountinfo',
    statfs: 'kernel',
    'block-devices': 'mountinfo',
    'storage-events': 'none',
    'low-space': 'none',
  });
  assert.is(backends(probe('6.12', moduleProbe()), 'kernel')['mount-table'], 'kernel');
  const kernelOn61 = chooseBackends(probe('6.1', moduleProbe()), { backend: 'kernel' });
  try {
    requireBackend(kernelOn61, 'mount-table');
    assert.unreachable('the kernel backend on 6.1');
  } catch (error) {
    assert.instance(error, UsipBackendUnavailableError);
    assert.is((error as Error).message, 'the kernel backend cannot serve the mount table: listmount needs Linux 6.8 (this kernel: 6.1.0-40-amd64)');
  }
  // 6.12 has listmount, not fanotify: the table is served, the changes are not.
  const kernelOn612 = chooseBackends(probe('6.12'), { backend: 'kernel' });
  assert.is(requireBackend(kernelOn612, 'mount-table').backend, 'kernel');
  assert.throws(() => requireBackend(kernelOn612, 'mount-changes'), /the kernel backend cannot serve the mount changes: fanotify mount events need Linux 6\.15/);
  const moduleMissing = chooseBackends(probe('6.18'), { backend: 'module' });
  try {
    requireBackend(moduleMissing, 'mount-table');
    assert.unreachable('the module backend without the module');
  } catch (error) {
    assert.instance(error, UsipModuleNotLoadedError);
    assert.match((error as Error).message, /^the module backend was asked for \(--backend module\), and it cannot serve the mount table\. The usip kernel module is not loaded/);
    assert.match((error as Error).message, 'modprobe usip');
  }
  const moduleOff = chooseBackends(probe('6.18', moduleProbe({ 'mount-events': 'missing-symbol' })), { backend: 'module' });
  assert.throws(() => requireBackend(moduleOff, 'mount-changes'), /the module backend cannot serve the mount changes: module: feature mount-events off: missing-symbol/);
  assert.throws(() => chooseBackends(probe('6.18'), { backend: 'netlink' as MountBackend }), (e: unknown) => e instanceof UsipArgumentError && /expected one of module, kernel, mountinfo/.test((e as Error).message));
});

test('storage events and low space come from the module, "module loaded, feature on", whatever the mount features were forced to', () => {
  for (const forced of [undefined, 'kernel', 'mountinfo', 'module'] as const) {
    const plan = chooseBackends(probe('6.18', moduleProbe()), forced === undefined ? {} : { backend: forced });
    for (const feature of ['storage-events', 'low-space'] as const) {
      assert.is(choiceOf(plan, feature).backend, 'module', `${feature}, forced ${forced}`);
      assert.is(choiceOf(plan, feature).reason, 'module loaded, feature on', `${feature}, forced ${forced}`);
    }
  }
});

test('storage events and low space need the module: the error says so and how to load it', () => {
  const plan = chooseBackends(probe('6.18'));
  for (const feature of ['storage-events', 'low-space'] as const) {
    try {
      requireBackend(plan, feature);
      assert.unreachable(feature);
    } catch (error) {
      assert.instance(error, UsipModuleNotLoadedError);
      assert.is((error as UsipModuleNotLoadedError).code, 'USIP_MODULE_NOT_LOADED');
      assert.match((error as Error).message, /need(s)? the usip kernel module: no other backend provides them\. The usip kernel module is not loaded/);
    }
  }
});

// statmount's view of mounts whose mountinfo lines are below, as the kernel reports them.
const LINES = [
  '27 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw,errors=remount-ro',
  '60 27 0:50 / /mnt/my\\040disk ro,nosuid,nodev,noexec,noatime master:3 propagate_from:2 - tmpfs t\\040x ro,sync,lazytime,size=1024k,inode64',
  '61 60 0:51 /sub /mnt/b rw,nodiratime,relatime,nosymfollow shared:7 master:3 unbindable - fuse.sshfs u@h:/ rw,user_id=0',
  '62 27 0:52 / /strict rw - tmpfs none rw',
];
const BASE = { parentUniqueId: 0n, peerGroup: 0, master: 0, propagateFrom: 0, sbFlags: 0 };
const KERNEL: KernelMount[] = [
  { ...BASE, id: 27, parentId: 1, uniqueId: 0x8000001bn, major: 254, minor: 1, root: '/', mountPoint: '/', mountAttr: 0n, propagation: 1n << 20n, peerGroup: 1, fsType: 'ext4', source: '/dev/vda1', mountOptions: 'errors=remount-ro' },
  {
    ...BASE,
    id: 60,
    parentId: 27,
    uniqueId: 0x8000003cn,
    major: 0,
    minor: 50,
    root: '/',
    mountPoint: '/mnt/my disk',
    mountAttr: 0x1n | 0x2n | 0x4n | 0x8n | 0x10n,
    propagation: 1n << 19n,
    master: 3,
    propagateFrom: 2,
    fsType: 'tmpfs',
    source: 't x',
    mountOptions: 'size=1024k,inode64',
    sbFlags: 0x1 | 0x10 | 0x2000000,
  },
  {
    ...BASE,
    id: 61,
    parentId: 60,
    uniqueId: 0x8000003dn,
    major: 0,
    minor: 51,
    root: '/sub',
    mountPoint: '/mnt/b',
    mountAttr: 0x80n | 0x200000n,
    propagation: (1n << 20n) | (1n << 19n) | (1n << 17n),
    peerGroup: 7,
    master: 3,
    propagateFrom: 3,
    fsType: 'fuse.sshfs',
    source: 'u@h:/',
    mountOptions: 'user_id=0',
  },
  { ...BASE, id: 62, parentId: 27, uniqueId: 0x8000003en, major: 0, minor: 52, root: '/', mountPoint: '/strict', mountAttr: 0x20n, propagation: 1n << 18n, fsType: 'tmpfs', source: 'none', mountOptions: '' },
];

test('kernelMountInfo: a complete KernelMount is what parseMountinfo makes of its line (options, atime modes, propagation, super block flags)', () => {
  const parsed = parseMountinfo(LINES.join('\n'), { mntNs: 5 });
  KERNEL.forEach((k, i) => {
    assert.equal(kernelMountInfo(k, undefined, 5), { ...parsed[i]!, uniqueId: k.uniqueId }, `mount ${k.id}`);
  });
});

test('kernelMountInfo: what statmount lacks (the source before 6.15, the options before 6.11, an empty source) comes from the line', () => {
  const parsed = parseMountinfo(LINES.join('\n'));
  KERNEL.forEach((k, i) => {
    const { source: _s, mountOptions: _o, ...old } = k;
    assert.equal(kernelMountInfo(old, parsed[i], undefined), { ...parsed[i]!, uniqueId: k.uniqueId }, `mount ${k.id} on 6.8`);
  });
  const noname = parseMountinfo('70 27 0:60 / /x rw - tmpfs none rw')[0]!;
  const empty: KernelMount = { ...KERNEL[3]!, id: 70, minor: 60, mountPoint: '/x', source: '' };
  assert.is(kernelMountInfo(empty, noname, undefined).source, 'none');
  assert.throws(() => kernelMountInfo({ ...KERNEL[0]!, source: undefined }, undefined, undefined), /did not give the source of mount 27/);
  assert.throws(() => kernelMountInfo(KERNEL[0]!, parsed[1], undefined), /the mountinfo line of mount 60 given for mount 27/);
});

test.run();
