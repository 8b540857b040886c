// The initramfs: static busybox, guest/init.sh as /init, and the virtio/9p modules of one kernel
// in load order. It does not depend on the run (the run's plan arrives over 9p), so it is built
// once per kernel and init script and cached next to the kernel.
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { exec } from './exec.js';
import type { Kernel } from './kernels.js';
import { guestInitScript } from './paths.js';

/** What the guest needs to reach the host: PCI virtio, the output port, and 9p over virtio. */
export const GUEST_BOOT_MODULES = ['virtio_pci', 'virtio_console', '9pnet_virtio', '9p'] as const;

const BUSYBOX = '/bin/busybox';

function moduleNameOfPath(path: string): string {
  return basename(path).replace(/\.ko(?:\.(?:xz|zst|gz))?$/, '').replace(/-/g, '_');
}

/**
 * Module files (relative to the modules directory) to insmod, in order, so that every root
 * module and its dependencies are loaded; roots built into the kernel need nothing. Uses
 * modules.dep, where each module's dependencies are listed with the one to load last first.
 */
export function guestModuleLoadOrder(modulesDep: string, modulesBuiltin: string, roots: readonly string[]): string[] {
  const depsOf = new Map<string, { path: string; deps: string[] }>();
  for (const line of modulesDep.split('\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const path = line.slice(0, colon).trim();
    const deps = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/)
      .filter((d) => d !== '');
    depsOf.set(moduleNameOfPath(path), { path, deps });
  }
  const builtin = new Set(
    modulesBuiltin
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => moduleNameOfPath(l.trim())),
  );
  const order: string[] = [];
  for (const root of roots) {
    const name = root.replace(/-/g, '_');
    const entry = depsOf.get(name);
    if (!entry) {
      if (builtin.has(name)) continue;
      throw new Error(`module ${root} is neither built into the kernel nor listed in modules.dep`);
    }
    for (const path of [...entry.deps].reverse().concat(entry.path)) {
      if (!order.includes(path)) order.push(path);
    }
  }
  return order;
}

async function plainModule(source: string, target: string): Promise<void> {
  // busybox insmod reads only uncompressed modules.
  if (source.endsWith('.ko')) {
    copyFileSync(source, target);
    return;
  }
  const tool = source.endsWith('.xz') ? 'xz' : source.endsWith('.zst') ? 'zstd' : source.endsWith('.gz') ? 'gzip' : null;
  if (tool === null) throw new Error(`unknown module compression: ${source}`);
  await exec('sh', ['-c', '"$1" -dc -- "$2" > "$3"', 'sh', tool, source, target]);
}

/** Removes initramfs images of earlier init scripts (after a while: a run may still boot one). */
function pruneOldInitramfs(dir: string, keep: string): void {
  const cutoff = Date.now() - 10 * 60 * 1000;
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (path === keep || !/^initramfs-[0-9a-f]+\.cpio$/.test(name)) continue;
    try {
      if (statSync(path).mtimeMs < cutoff) rmSync(path, { force: true });
    } catch {
      // removed by a concurrent run
    }
  }
}

/** Returns the path of the kernel's initramfs, building it if the cached one is missing or stale. */
export async function ensureInitramfs(kernel: Kernel): Promise<string> {
  const init = readFileSync(guestInitScript);
  const busybox = statSync(BUSYBOX);
  const modulesDep = readFileSync(join(kernel.modulesDir, 'modules.dep'), 'utf8');
  const builtinPath = join(kernel.modulesDir, 'modules.builtin');
  const modulesBuiltin = existsSync(builtinPath) ? readFileSync(builtinPath, 'utf8') : '';
  const order = guestModuleLoadOrder(modulesDep, modulesBuiltin, GUEST_BOOT_MODULES);
  const key = createHash('sha256')
    .update(init)
    .update(`${busybox.size}:${busybox.mtimeMs}\n`)
    .update(order.join('\n'))
    .digest('hex')
    .slice(0, 16);
  const target = join(kernel.cacheDir, `initramfs-${key}.cpio`);
  if (existsSync(target)) return target;

  const stage = `${target}.${process.pid}.d`;
  rmSync(stage, { recursive: true, force: true });
  try {
    for (const dir of ['bin', 'mods', 'proc', 'sys', 'dev', 'mnt', 'host']) mkdirSync(join(stage, dir), { recursive: true });
    copyFileSync(BUSYBOX, join(stage, 'bin/busybox'));
    chmodSync(join(stage, 'bin/busybox'), 0o755);
    writeFileSync(join(stage, 'init'), init, { mode: 0o755 });
    const names: string[] = [];
    for (const rel of order) {
      const name = moduleNameOfPath(rel);
      await plainModule(join(kernel.modulesDir, rel), join(stage, 'mods', `${name}.ko`));
      names.push(name);
    }
    if (names.length > 0) writeFileSync(join(stage, 'mods/order'), `${names.join('\n')}\n`);
    // The kernel opens /dev/console for /init's stdio before /init can mount devtmpfs.
    await exec('mknod', ['-m', '600', join(stage, 'dev/console'), 'c', '5', '1']);
    // Uncompressed: the guest would spend longer decompressing than QEMU spends loading it.
    const tmp = `${target}.${process.pid}.tmp`;
    await exec('sh', ['-c', 'cd "$1" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc -R 0:0 --quiet > "$2"', 'sh', stage, tmp]);
    renameSync(tmp, target);
    pruneOldInitramfs(kernel.cacheDir, target);
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
  return target;
}
