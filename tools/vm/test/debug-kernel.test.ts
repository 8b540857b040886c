// The 6.12-debug selector: resolveKernels finds the newest complete build of the current
// tools/debug-kernel/usip-debug.config in the cache (it never builds one), and the initramfs
// needs no module of a kernel that has virtio and 9p built in.
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GUEST_BOOT_MODULES, guestModuleLoadOrder } from '../src/initramfs.js';
import { DEBUG_KERNEL_SELECTOR, debugKernelConfig, resolveKernels } from '../src/kernels.js';

const hash = createHash('sha256').update(readFileSync(debugKernelConfig)).digest('hex').slice(0, 12);

/** A build as tools/debug-kernel/build.sh leaves it; `complete: false` leaves out kernel.json. */
function fakeBuild(root: string, version: string, configHash: string, release: string, complete = true): string {
  const dir = join(root, 'debug-kernel', `${version}-${configHash}`);
  mkdirSync(join(dir, 'root/lib/modules', release), { recursive: true });
  mkdirSync(join(dir, 'linux'), { recursive: true });
  writeFileSync(join(dir, 'root/lib/modules', release, 'modules.dep'), '');
  writeFileSync(join(dir, 'linux/Module.symvers'), '');
  writeFileSync(join(dir, 'vmlinuz'), '');
  writeFileSync(join(dir, 'vmlinux'), '');
  if (complete) {
    const meta = { format: 1, release, sourcePackage: 'linux-source-6.12', sourceVersion: version, configHash, buildSeconds: 1 };
    writeFileSync(join(dir, 'kernel.json'), `${JSON.stringify(meta)}\n`);
  }
  return dir;
}

async function withCache<T>(fn: (root: string) => Promise<T>): Promise<T> {
  const root = mkdtempSync(join(tmpdir(), 'usip-vm-debug-kernel-'));
  const before = process.env.USIP_CACHE_DIR;
  process.env.USIP_CACHE_DIR = root;
  try {
    return await fn(root);
  } finally {
    if (before === undefined) delete process.env.USIP_CACHE_DIR;
    else process.env.USIP_CACHE_DIR = before;
    rmSync(root, { recursive: true, force: true });
  }
}

test('6.12-debug: the newest complete build of this config, as a Kernel of series 6.12', async () => {
  await withCache(async (root) => {
    fakeBuild(root, '6.12.117-1~deb12u1', hash, '6.12.117-usip-debug');
    const newest = fakeBuild(root, '6.12.118-1~deb12u1', hash, '6.12.118-usip-debug');
    fakeBuild(root, '6.12.119-1~deb12u1', hash, '6.12.119-usip-debug', false); // still building
    fakeBuild(root, '6.12.120-1~deb12u1', '0123456789ab', '6.12.120-usip-debug'); // another config
    const [kernel, ...rest] = await resolveKernels(` ${DEBUG_KERNEL_SELECTOR} `);
    assert.equal(rest, []);
    assert.equal(kernel, {
      selector: '6.12-debug',
      series: '6.12',
      release: '6.12.118-usip-debug',
      packageVersion: '6.12.118-1~deb12u1',
      vmlinuz: join(newest, 'vmlinuz'),
      vmlinux: join(newest, 'vmlinux'),
      modulesDir: join(newest, 'root/lib/modules/6.12.118-usip-debug'),
      headersDir: join(newest, 'linux'),
      cacheDir: newest,
      buildRoot: null,
    });
    // Named twice, it is there once.
    assert.is((await resolveKernels('6.12-debug,6.12-debug')).length, 1);
  });
});

test('6.12-debug not built: an error that says which command builds it', async () => {
  await withCache(async (root) => {
    fakeBuild(root, '6.12.118-1~deb12u1', '0123456789ab', '6.12.118-usip-debug');
    try {
      await resolveKernels('6.12-debug');
      assert.unreachable('resolved a kernel that is not built');
    } catch (error) {
      assert.match((error as Error).message, /the debug kernel \(6\.12-debug\) of .*usip-debug\.config \(hash [0-9a-f]{12}\) is not built/);
      assert.match((error as Error).message, /tools\/debug-kernel\/build\.sh/);
    }
  });
});

test('a bad word next to 6.12-debug is still refused as before', async () => {
  try {
    await resolveKernels('6.12-debug,latest');
    assert.unreachable('accepted "latest"');
  } catch (error) {
    assert.match((error as Error).message, /unknown kernel selector "latest"/);
  }
});

test('a kernel with virtio and 9p built in: the initramfs loads no module', () => {
  // modules.builtin of the debug kernel (lines of it), and the empty modules.dep of a kernel
  // without loadable modules.
  const builtin = [
    'kernel/drivers/virtio/virtio.ko',
    'kernel/drivers/virtio/virtio_ring.ko',
    'kernel/drivers/virtio/virtio_pci.ko',
    'kernel/drivers/char/virtio_console.ko',
    'kernel/net/9p/9pnet.ko',
    'kernel/net/9p/9pnet_virtio.ko',
    'kernel/fs/9p/9p.ko',
  ].join('\n');
  assert.equal(guestModuleLoadOrder('', `${builtin}\n`, GUEST_BOOT_MODULES), []);
});

test.run();
