import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GUEST_BOOT_MODULES, guestModuleLoadOrder } from '../src/initramfs.js';

// Lines of the modules.dep and modules.builtin that depmod makes for Debian's kernels.
const dep61 = `kernel/fs/netfs/netfs.ko:
kernel/fs/fscache/fscache.ko: kernel/fs/netfs/netfs.ko
kernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko kernel/fs/fscache/fscache.ko kernel/fs/netfs/netfs.ko
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/char/virtio_console.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/net/9p/9pnet.ko:
kernel/net/9p/9pnet_virtio.ko: kernel/net/9p/9pnet.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
`;

const dep612 = `kernel/fs/netfs/netfs.ko.xz:
kernel/fs/9p/9p.ko.xz: kernel/net/9p/9pnet.ko.xz kernel/fs/netfs/netfs.ko.xz
kernel/net/9p/9pnet.ko.xz: kernel/fs/netfs/netfs.ko.xz
kernel/net/9p/9pnet_virtio.ko.xz: kernel/net/9p/9pnet.ko.xz kernel/fs/netfs/netfs.ko.xz
`;
const builtin612 = `kernel/drivers/virtio/virtio.ko
kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_pci.ko
kernel/drivers/char/virtio_console.ko
`;

const names = (paths: string[]) => paths.map((p) => p.replace(/^.*\//, '').replace(/\.ko(\.xz)?$/, ''));

test('6.1: every virtio and 9p module, each after its dependencies', () => {
  assert.equal(names(guestModuleLoadOrder(dep61, '', GUEST_BOOT_MODULES)), [
    'virtio_ring',
    'virtio',
    'virtio_pci_modern_dev',
    'virtio_pci_legacy_dev',
    'virtio_pci',
    'virtio_console',
    '9pnet',
    '9pnet_virtio',
    'netfs',
    'fscache',
    '9p',
  ]);
});

test('6.12: built-in virtio needs nothing, the compressed 9p modules keep their paths', () => {
  assert.equal(guestModuleLoadOrder(dep612, builtin612, GUEST_BOOT_MODULES), [
    'kernel/fs/netfs/netfs.ko.xz',
    'kernel/net/9p/9pnet.ko.xz',
    'kernel/net/9p/9pnet_virtio.ko.xz',
    'kernel/fs/9p/9p.ko.xz',
  ]);
});

test('a module that is neither a module nor built in is a clear error', () => {
  assert.throws(
    () => guestModuleLoadOrder(dep612, builtin612, ['virtio_fs']),
    /module virtio_fs is neither built into the kernel nor listed in modules\.dep/,
  );
});

test.run();
