// The kernel's own mount APIs against this machine's kernel (6.15+ for fanotify mount events;
// the tests run as root): listKernelMounts() against /proc/self/mountinfo field by field,
// MountinfoWatch and FanotifyMountWatch seeing real mounts made in a private mount namespace,
// the overflow of fanotify's queue, EPERM for uid 65534, statfsPath against statfs(1) and
// os.statfs, and its timeout on a FUSE mount whose daemon never answers.
import { execFileSync } from 'node:child_process';
import { readFileSync, statfsSync } from 'node:fs';
import { release } from 'node:os';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  FanotifyMountWatch,
  MAX_STATFS_THREADS,
  MountAttr,
  MountinfoWatch,
  Propagation,
  StatmountMask,
  SyscallError,
  isSyscallError,
  listKernelMounts,
  mountApiSupport,
  statKernelMount,
  statfsPath,
  type KernelMount,
  type MountEvent,
  type MountEventBatch,
  type MountinfoBatch,
} from '../src/index.js';
import {
  PrivateNamespace,
  distIndex,
  mountinfoLines,
  packageDir,
  parseMountinfoLine,
  publicCopyOfDist,
  reviveBigints,
  type MountinfoLine,
} from './helpers/mounts.js';

const [kernelMajor, kernelMinor] = release().split('.').map(Number) as [number, number];
const kernelAtLeast = (major: number, minor: number): boolean =>
  kernelMajor > major || (kernelMajor === major && kernelMinor >= minor);

test('these tests run as root on a kernel with fanotify mount events (6.15+)', () => {
  assert.is(process.getuid?.(), 0);
  assert.ok(kernelAtLeast(6, 15), `kernel ${release()}`);
});

async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function rejection(promise: Promise<unknown>): Promise<SyscallError> {
  try {
    await promise;
  } catch (error) {
    if (isSyscallError(error)) return error;
    throw error;
  }
  throw new Error('expected a rejection');
}

function thrown(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

test('mountApiSupport: listmount, statmount with every bit a 6.18 kernel knows, fanotify mount events', () => {
  const support = mountApiSupport();
  assert.is(support.listmount, true);
  assert.is(support.statmount, true);
  // 6.15+ answers STATMOUNT_SUPPORTED_MASK: everything up to MNT_GIDMAP (0x7fff) on 6.18.
  const wanted = Object.values(StatmountMask).reduce((all, bit) => all | bit, 0n);
  assert.is(support.statmountMask & wanted, wanted);
  assert.equal(support.fanotifyMount, { available: true });
  assert.is(mountApiSupport(), support, 'probed once, then the same answer');
});

/** What mountinfo's per-mount options field says for these MOUNT_ATTR_* bits (the kernel's
 *  show_mnt_opts()). */
function mountOptionsOf(attr: bigint): string {
  const options = [attr & MountAttr.rdonly ? 'ro' : 'rw'];
  if (attr & MountAttr.idmap) options.push('idmapped');
  if (attr & MountAttr.nosuid) options.push('nosuid');
  if (attr & MountAttr.nodev) options.push('nodev');
  if (attr & MountAttr.noexec) options.push('noexec');
  const atime = attr & MountAttr.atimeMask;
  if (atime === MountAttr.noatime) options.push('noatime');
  if (attr & MountAttr.nodiratime) options.push('nodiratime');
  if (atime === 0n) options.push('relatime');
  if (attr & MountAttr.nosymfollow) options.push('nosymfollow');
  return options.join(',');
}

/** mountinfo's super options: rw/ro and sync/dirsync/mand from sb_flags, then the file
 *  system's own (STATMOUNT_MNT_OPTS). */
function superOptionsOf(mount: KernelMount): string {
  const options = [mount.sbFlags & 1 ? 'ro' : 'rw'];
  if (mount.sbFlags & 16) options.push('sync');
  if (mount.sbFlags & 128) options.push('dirsync');
  if (mount.sbFlags & 64) options.push('mand');
  if (mount.mountOptions) options.push(mount.mountOptions);
  return options.join(',');
}

/** mountinfo's optional fields for this propagation state (the kernel's show_mountinfo()). */
function optionalFieldsOf(mount: KernelMount): string[] {
  const fields: string[] = [];
  if (mount.propagation & Propagation.shared) fields.push(`shared:${mount.peerGroup}`);
  if (mount.propagation & Propagation.slave) {
    fields.push(`master:${mount.master}`);
    if (mount.propagateFrom !== 0 && mount.propagateFrom !== mount.master) {
      fields.push(`propagate_from:${mount.propagateFrom}`);
    }
  }
  if (mount.propagation & Propagation.unbindable) fields.push('unbindable');
  return fields;
}

function compareWithMountinfo(mounts: KernelMount[], mountinfo: string): MountinfoLine[] {
  const lines = mountinfoLines(mountinfo).map(parseMountinfoLine);
  assert.equal(
    mounts.map((m) => m.id).sort((a, b) => a - b),
    lines.map((l) => l.id).sort((a, b) => a - b),
    'the same mounts',
  );
  const byId = new Map(mounts.map((m) => [m.id, m]));
  for (const line of lines) {
    const mount = byId.get(line.id)!;
    const where = `mount ${line.id} (${line.mountPoint})`;
    assert.is(mount.parentId, line.parentId, `${where}: parent`);
    assert.equal([mount.major, mount.minor], [line.major, line.minor], `${where}: device`);
    assert.is(mount.root, line.root, `${where}: root`);
    assert.is(mount.mountPoint, line.mountPoint, `${where}: mount point`);
    assert.is(mountOptionsOf(mount.mountAttr), line.mountOptions, `${where}: mount options`);
    assert.equal(optionalFieldsOf(mount), line.optional, `${where}: propagation`);
    assert.is(mount.fsType, line.fsType, `${where}: type`);
    assert.is(mount.source, line.source, `${where}: source`);
    assert.is(superOptionsOf(mount), line.superOptions, `${where}: super options`);
    assert.is(typeof mount.uniqueId, 'bigint');
    assert.ok(mount.uniqueId >= 1n << 31n, `${where}: unique ids start at 2^31`);
    assert.is(typeof mount.mntNsId, 'bigint');
  }
  // Parents by unique id agree with parents by old id.
  const byUnique = new Map(mounts.map((m) => [m.uniqueId, m]));
  for (const mount of mounts) {
    const parent = byUnique.get(mount.parentUniqueId);
    if (parent) assert.is(parent.id, mount.parentId, `mount ${mount.id}: parent by unique id`);
  }
  return lines;
}

test('listKernelMounts() of this process matches /proc/self/mountinfo field by field', async () => {
  // The host's table can change meanwhile (other work on the machine); a read that straddles
  // a change is retried.
  for (let attempt = 1; ; attempt++) {
    const mounts = await listKernelMounts();
    const mountinfo = readFileSync('/proc/self/mountinfo', 'utf8');
    const again = await listKernelMounts();
    if (mounts.length !== again.length && attempt < 5) continue;
    assert.ok(mounts.length > 0);
    compareWithMountinfo(mounts, mountinfo);
    const ids = mounts.map((m) => m.uniqueId);
    assert.equal(ids, [...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)), "listmount's order: ascending unique id");
    return;
  }
});

test('listKernelMounts() in a namespace with shared, slave, read-only, noatime and spaced mounts; statKernelMount', () => {
  const output = execFileSync(
    'unshare',
    ['-m', '--propagation', 'private', process.execPath, `${packageDir}/test/host/mount-table.mjs`],
    { encoding: 'utf8', env: { ...process.env, USIP_NETLINK_NATIVE: distIndex }, maxBuffer: 64 << 20 },
  );
  const report = JSON.parse(output, reviveBigints) as {
    base: string;
    mounts: KernelMount[];
    mountinfo: string;
    stable: boolean;
    one: KernelMount;
    unmounted: KernelMount | null;
  };
  assert.ok(report.stable, 'nothing changed the namespace meanwhile');
  compareWithMountinfo(report.mounts, report.mountinfo);
  const at = (name: string): KernelMount => {
    const mount = report.mounts.find((m) => m.mountPoint === `${report.base}/${name}`);
    if (!mount) throw new Error(`no mount at ${name}`);
    return mount;
  };
  const spaced = at('with space');
  assert.is(spaced.source, 'usip src', 'source unescaped, with its space');
  assert.is(spaced.fsType, 'tmpfs');
  assert.is(spaced.mountAttr & (MountAttr.nosuid | MountAttr.nodev | MountAttr.noexec), 0xen);
  assert.ok(spaced.mountOptions?.includes('size=1024k'), spaced.mountOptions);
  assert.ok(spaced.propagation & Propagation.shared);
  const peer = at('peer');
  assert.is(peer.peerGroup, spaced.peerGroup, 'a bind of a shared mount is its peer');
  const slave = at('slave');
  assert.ok(slave.propagation & Propagation.slave);
  assert.is(slave.master, spaced.peerGroup);
  const ro = at('ro');
  assert.is(ro.mountAttr & MountAttr.rdonly, MountAttr.rdonly);
  assert.is(ro.mountAttr & MountAttr.atimeMask, MountAttr.noatime);
  assert.is(ro.sbFlags & 1, 0, 'a read-only bind leaves the super block writable');
  const opts = at('opts');
  assert.is(opts.sbFlags & 1, 1, 'remount,ro makes the super block read-only');
  assert.equal(report.one, ro, 'statKernelMount answers what listKernelMounts did');
  assert.is(report.unmounted, null, 'a mount that is gone is null');
});

async function caught(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

test('statKernelMount: an id no mount has is null; an id below 2^31 is EINVAL; argument errors', async () => {
  assert.is(await statKernelMount(0x7fff_ffff_ffffn), null);
  const error = await rejection(statKernelMount(1n));
  assert.is(error.code, 'EINVAL');
  assert.is(error.errno, 22);
  assert.is(error.syscall, 'statmount');
  assert.instance(await caught(statKernelMount(-1n)), RangeError);
  assert.instance(await caught(statKernelMount(1n << 64n)), RangeError);
  assert.instance(await caught(statKernelMount(5 as unknown as bigint)), TypeError);
});

/** Takes batches until `done` says the changes seen so far are complete. */
async function batchesUntil(
  watch: MountinfoWatch,
  done: (batches: MountinfoBatch[]) => boolean,
  what: string,
): Promise<MountinfoBatch[]> {
  const batches: MountinfoBatch[] = [];
  while (!done(batches)) {
    const next = await within(watch.next(), 5000, what);
    if (next.done) throw new Error(`${what}: the watch ended`);
    batches.push(next.value);
  }
  return batches;
}

const lineAt = (lines: string[], path: string): string | undefined =>
  lines.find((line) => parseMountinfoLine(line).mountPoint === path);

test('MountinfoWatch: the whole table first, then mount, bind, remount, move and umount in a private namespace', async () => {
  const ns = await PrivateNamespace.create();
  const watch = new MountinfoWatch(ns.mountinfoPath);
  try {
    assert.is(watch.path, ns.mountinfoPath);
    const first = await within(watch.next(), 5000, 'first batch');
    assert.ok(!first.done);
    const table = mountinfoLines(readFileSync(ns.mountinfoPath, 'utf8'));
    assert.equal(first.value.added, table, 'every line, in file order');
    assert.equal([first.value.removed, first.value.changed], [[], []]);
    assert.is(first.value.lines, table.length);
    assert.is(first.value.generation, 1);
    const dir = ns.dir;

    ns.run('mkdir a b c; mount -t tmpfs -o size=1m usip-watch-a a');
    let seen = await batchesUntil(watch, (all) => all.some((b) => lineAt(b.added, `${dir}/a`)), 'mount');
    const a = parseMountinfoLine(lineAt(seen.at(-1)!.added, `${dir}/a`)!);
    assert.is(a.source, 'usip-watch-a');
    assert.is(seen.at(-1)!.lines, table.length + 1);
    assert.ok(seen.at(-1)!.generation > 1);

    ns.run('mount --bind a b');
    seen = await batchesUntil(watch, (all) => all.some((b) => lineAt(b.added, `${dir}/b`)), 'bind');
    const b = parseMountinfoLine(lineAt(seen.at(-1)!.added, `${dir}/b`)!);
    assert.is(b.source, 'usip-watch-a');

    ns.run('mount -o remount,bind,ro b');
    seen = await batchesUntil(watch, (all) => all.some((x) => lineAt(x.changed, `${dir}/b`)), 'remount');
    const remounted = parseMountinfoLine(lineAt(seen.at(-1)!.changed, `${dir}/b`)!);
    assert.is(remounted.id, b.id);
    assert.ok(remounted.mountOptions.startsWith('ro,'), remounted.mountOptions);

    ns.run('mount --move b c');
    seen = await batchesUntil(watch, (all) => all.some((x) => lineAt(x.changed, `${dir}/c`)), 'move');
    const moved = parseMountinfoLine(lineAt(seen.at(-1)!.changed, `${dir}/c`)!);
    assert.is(moved.id, b.id, 'a move keeps the mount: its line changes');
    assert.equal(seen.at(-1)!.removed, []);

    ns.run('umount c; umount a');
    seen = await batchesUntil(
      watch,
      (all) => [a.id, b.id].every((id) => all.some((x) => x.removed.includes(id))),
      'umount',
    );
    assert.is(seen.at(-1)!.lines, table.length);
    const generations = seen.map((x) => x.generation);
    assert.equal(generations, [...generations].sort((p, q) => p - q));
  } finally {
    watch.close();
    ns.close();
  }
});

test('MountinfoWatch: close() ends a pending next() at once; later next() is done', async () => {
  const watch = new MountinfoWatch();
  const first = await within(watch.next(), 5000, 'first batch');
  assert.ok(!first.done);
  assert.ok(first.value.lines > 0);
  assert.is(watch.closed, false);
  const pending = watch.next();
  const started = Date.now();
  setTimeout(() => watch.close(), 50);
  assert.equal(await within(pending, 2000, 'close'), { done: true, value: undefined });
  assert.ok(Date.now() - started < 1000);
  assert.is(watch.closed, true);
  assert.equal(await watch.next(), { done: true, value: undefined });
  watch.close(); // idempotent
});

test('MountinfoWatch: breaking out of for-await closes it; a coalesced burst is one difference', async () => {
  const ns = await PrivateNamespace.create();
  const watch = new MountinfoWatch(ns.mountinfoPath);
  try {
    let count = 0;
    for await (const batch of watch) {
      count += 1;
      if (count === 1) {
        // 30 mounts while nobody takes batches: one or a few batches, together exactly 30 lines.
        ns.run('for i in $(seq 30); do mkdir m$i; mount -t tmpfs usip-burst m$i; done');
        const rest = await batchesUntil(
          watch,
          (all) => all.reduce((sum, b) => sum + b.added.length, 0) >= 30,
          'burst',
        );
        assert.is(rest.reduce((sum, b) => sum + b.added.length, 0), 30);
        assert.ok(rest.length < 30, `${rest.length} batches for 30 mounts`);
        assert.is(rest.at(-1)!.lines, batch.lines + 30);
        break;
      }
    }
    assert.is(watch.closed, true, 'break closed the watch');
  } finally {
    watch.close();
    ns.close();
  }
});

test("MountinfoWatch { reread: 'on-request' }: wakeups only, until requestRead(): then one difference", async () => {
  const ns = await PrivateNamespace.create();
  const watch = new MountinfoWatch(ns.mountinfoPath, { reread: 'on-request' });
  try {
    assert.is(watch.reread, 'on-request');
    const first = await within(watch.next(), 5000, 'first batch');
    assert.ok(!first.done);
    assert.equal([first.value.reread, first.value.wakeups, first.value.generation], [true, 0, 1]);
    const lines = first.value.lines;
    assert.is(first.value.added.length, lines);
    ns.run('mkdir a; mount -t tmpfs usip-req a');
    // A wakeup, no read: nothing in the difference, the line count is the last read's.
    const woken = await within(watch.next(), 5000, 'wakeup');
    assert.ok(!woken.done);
    assert.equal(
      [woken.value.reread, woken.value.added, woken.value.removed, woken.value.changed, woken.value.lines, woken.value.generation],
      [false, [], [], [], lines, 1],
    );
    assert.ok(woken.value.wakeups >= 1);
    ns.run('mount -o remount,ro a');
    // Two requests before the read are one read; its difference covers the mount and the remount.
    watch.requestRead();
    watch.requestRead();
    const seen = await batchesUntil(watch, (all) => all.some((b) => b.reread), 'read');
    const read = seen.at(-1)!;
    const a = parseMountinfoLine(lineAt(read.added, `${ns.dir}/a`)!);
    assert.ok(a.mountOptions.startsWith('ro,'), a.mountOptions);
    assert.is(read.lines, lines + 1);
    assert.is(read.generation, 2);
    assert.is(seen.reduce((sum, b) => sum + b.wakeups, 0) >= 1, true);
    // A read that finds nothing new still answers.
    watch.requestRead();
    const again = await batchesUntil(watch, (all) => all.some((b) => b.reread), 'empty read');
    assert.equal([again.at(-1)!.added, again.at(-1)!.removed, again.at(-1)!.changed, again.at(-1)!.generation], [[], [], [], 2]);
    assert.throws(() => new MountinfoWatch(ns.mountinfoPath, { reread: 'never' as 'on-request' }), /reread/);
  } finally {
    watch.close();
    ns.close();
  }
  watch.requestRead(); // closed: nothing
  assert.equal(await watch.next(), { done: true, value: undefined });
});

test('MountinfoWatch: a path that cannot be opened throws; a read error rejects once, then the iterator is done', async () => {
  const error = thrown(() => new MountinfoWatch('/nonexistent/mountinfo'));
  assert.instance(error, SyscallError);
  assert.is((error as SyscallError).code, 'ENOENT');
  assert.is((error as SyscallError).syscall, 'open');
  const watch = new MountinfoWatch('/proc'); // a directory: open works, read fails
  const failure = await rejection(within(watch.next(), 5000, 'read error'));
  assert.is(failure.code, 'EISDIR');
  assert.is(failure.syscall, 'read');
  assert.match(failure.message, /watch \/proc/);
  assert.equal(await watch.next(), { done: true, value: undefined });
  watch.close();
  // A file that is not a mountinfo file: its first read is refused (EPROTO), naming the line.
  const notMountinfo = new MountinfoWatch('/proc/self/status');
  const refused = await rejection(within(notMountinfo.next(), 5000, 'not mountinfo'));
  assert.is(refused.code, 'EPROTO');
  assert.match(refused.detail ?? '', /must start with a mount id/);
  notMountinfo.close();
  assert.instance(thrown(() => new MountinfoWatch(7 as unknown as string)), TypeError);
});

/** Takes fanotify batches until `done` holds for the events so far. */
async function eventsUntil(
  watch: FanotifyMountWatch,
  done: (events: MountEvent[]) => boolean,
  what: string,
): Promise<{ events: MountEvent[]; batches: MountEventBatch[] }> {
  const events: MountEvent[] = [];
  const batches: MountEventBatch[] = [];
  while (!done(events)) {
    const next = await within(watch.next(), 5000, what);
    if (next.done) throw new Error(`${what}: the watch ended`);
    batches.push(next.value);
    events.push(...next.value.events);
  }
  return { events, batches };
}

test('FanotifyMountWatch: attach, move and detach of real mounts in another namespace, with statmount in the addon', async () => {
  const ns = await PrivateNamespace.create();
  const watch = new FanotifyMountWatch({ nsPath: ns.nsPath, statmount: true });
  try {
    const dir = ns.dir;
    ns.run('mkdir a b c; mount -t tmpfs usip-fan-a a; mount --bind a b');
    let { events } = await eventsUntil(watch, (all) => all.length >= 2, 'attach');
    assert.equal(events.map((e) => e.kind), ['attach', 'attach']);
    assert.is(events[0]!.mount?.mountPoint, `${dir}/a`);
    assert.is(events[0]!.mount?.source, 'usip-fan-a');
    assert.is(events[0]!.mount?.uniqueId, events[0]!.uniqueId);
    assert.is(events[1]!.mount?.mountPoint, `${dir}/b`);
    const [a, b] = events.map((e) => e.uniqueId) as [bigint, bigint];
    assert.ok(b > a);

    ns.run('mount --move b c');
    ({ events } = await eventsUntil(watch, (all) => all.length >= 1, 'move'));
    assert.equal(events.map((e) => [e.kind, e.uniqueId]), [['move', b]], 'a move is one event');
    assert.is(events[0]!.mount?.mountPoint, `${dir}/c`);

    ns.run('umount c; umount a');
    ({ events } = await eventsUntil(watch, (all) => all.length >= 2, 'detach'));
    assert.equal(events.map((e) => [e.kind, e.uniqueId, e.mount]), [
      ['detach', b, null],
      ['detach', a, null],
    ]);
  } finally {
    watch.close();
    ns.close();
  }
});

test("FanotifyMountWatch: the caller's own namespace by default; without statmount no mount field; close() ends next()", async () => {
  const watch = new FanotifyMountWatch();
  const pending = watch.next();
  setTimeout(() => watch.close(), 50);
  assert.equal(await within(pending, 2000, 'close'), { done: true, value: undefined });
  assert.is(watch.closed, true);
  assert.equal(await watch.next(), { done: true, value: undefined });

  const ns = await PrivateNamespace.create();
  const plain = new FanotifyMountWatch({ nsPath: ns.nsPath });
  try {
    ns.run('mkdir a; mount -t tmpfs usip-plain a');
    const { events } = await eventsUntil(plain, (all) => all.length >= 1, 'attach');
    assert.is(events[0]!.kind, 'attach');
    assert.not.ok('mount' in events[0]!);
  } finally {
    plain.close();
    ns.close();
  }
  assert.instance(thrown(() => new FanotifyMountWatch({ nsPath: 5 as unknown as string })), TypeError);
  const missing = thrown(() => new FanotifyMountWatch({ nsPath: '/nonexistent/ns' }));
  assert.instance(missing, SyscallError);
  assert.is((missing as SyscallError).code, 'ENOENT');
  assert.is((missing as SyscallError).syscall, 'open');
  // A file that is not a namespace: fanotify_mark refuses it.
  const notNs = thrown(() => new FanotifyMountWatch({ nsPath: '/proc/self/mountinfo' }));
  assert.instance(notNs, SyscallError);
  assert.is((notNs as SyscallError).syscall, 'fanotify_mark');
});

test('FanotifyMountWatch: more events than the kernel queues (fs.fanotify.max_queued_events) report overflow', async () => {
  const limit = Number(readFileSync('/proc/sys/fs/fanotify/max_queued_events', 'utf8'));
  const ns = await PrivateNamespace.create();
  const watch = new FanotifyMountWatch({ nsPath: ns.nsPath });
  try {
    // 129 mounts under src, then recursive binds of it: 129 attach events each, all queued
    // before anything is read. Bind sources stay outside the mounts that hold the copies.
    const copies = Math.ceil(limit / 129) + 2;
    const started = Date.now();
    ns.run(
      'mkdir src dst; mount -t tmpfs usip-src src; ' +
        'for i in $(seq 128); do mkdir src/$i; mount -t tmpfs usip-$i src/$i; done; ' +
        'mount -t tmpfs usip-dst dst; ' +
        `for j in $(seq ${copies}); do mkdir dst/$j; mount --rbind src dst/$j; done`,
    );
    const made = 1 + 128 + 1 + copies * 129;
    assert.ok(made > limit, `${made} mounts for a queue of ${limit}`);
    let overflow = false;
    let received = 0;
    for (;;) {
      const next = await within(watch.next(), 5000, 'draining');
      assert.ok(!next.done);
      received += next.value.events.length;
      overflow ||= next.value.overflow;
      if (overflow && received >= limit - 1) break;
      if (received > limit) break;
    }
    assert.ok(overflow, 'the overflow is reported');
    assert.ok(received <= limit, `${received} events received, at most the queue's ${limit}`);
    // Events after the overflow still arrive once the queue was drained.
    ns.run('mkdir after; mount -t tmpfs usip-after after');
    const { events } = await eventsUntil(watch, (all) => all.some((e) => e.kind === 'attach'), 'after');
    assert.ok(events.length >= 1);
    assert.ok(Date.now() - started < 30_000);
  } finally {
    watch.close();
    ns.close();
  }
});

test('as uid 65534: FanotifyMountWatch is EPERM and says why; mountApiSupport agrees; listKernelMounts works', () => {
  const copy = publicCopyOfDist();
  try {
    const output = execFileSync(
      'setpriv',
      ['--reuid', '65534', '--regid', '65534', '--clear-groups', process.execPath, copy.index.replace('dist/index.js', 'host/as-nobody.mjs')],
      { encoding: 'utf8', env: { PATH: process.env.PATH ?? '/usr/bin:/bin', USIP_NETLINK_NATIVE: copy.index }, cwd: '/' },
    );
    const report = JSON.parse(output, reviveBigints) as {
      uid: number;
      support: { listmount: boolean; statmount: boolean; fanotifyMount: { available: boolean; reason?: string } };
      fanotify: { ok: boolean; name?: string; code?: string; errno?: number; syscall?: string; detail?: string; message?: string };
      listed: number;
      mountinfoLines: number;
    };
    assert.is(report.uid, 65534);
    const reason = 'EPERM: marking a mount namespace needs CAP_SYS_ADMIN in its user namespace';
    assert.equal(report.support.fanotifyMount, { available: false, reason });
    assert.is(report.support.listmount, true);
    assert.equal(report.fanotify, {
      ok: false,
      name: 'SyscallError',
      code: 'EPERM',
      errno: 1,
      syscall: 'fanotify_mark',
      detail: reason,
      message: report.fanotify.message,
    });
    assert.match(report.fanotify.message ?? '', /Operation not permitted \(EPERM\)/);
    assert.is(report.listed, report.mountinfoLines, 'listmount/statmount need no privilege');
  } finally {
    copy.remove();
  }
});

test('statfsPath matches stat -f and os.statfs', async () => {
  for (const path of ['/', '/proc', '/dev/shm', '/sys']) {
    const ours = await statfsPath(path);
    const [fsid, type, bsize, frsize, blocks, bfree, bavail, files, ffree, namelen] = execFileSync(
      'stat',
      ['-f', '-c', '%i %t %s %S %b %f %a %c %d %l', path],
      { encoding: 'utf8' },
    )
      .trim()
      .split(' ');
    // stat -f prints f_fsid as __val[0] << 32 | __val[1]; ours is glibc statvfs's
    // __val[0] | __val[1] << 32: the same two words, swapped.
    const statFsid = BigInt(`0x${fsid}`);
    assert.is(ours.fsid, ((statFsid & 0xffff_ffffn) << 32n) | (statFsid >> 32n), `${path}: fsid`);
    assert.is(ours.type, BigInt(`0x${type}`), `${path}: type`);
    assert.is(ours.blockSize, BigInt(bsize!), `${path}: block size`);
    assert.is(ours.fragmentSize, BigInt(frsize!), `${path}: fragment size`);
    assert.is(ours.nameMax, BigInt(namelen!), `${path}: name max`);
    assert.ok(ours.flags & 0x20n, `${path}: ST_VALID`);
    const node = statfsSync(path, { bigint: true });
    assert.is(ours.type, node.type);
    assert.is(ours.blocks, node.blocks);
    assert.is(ours.files, node.files);
    if (path === '/proc' || path === '/sys') {
      // Static file systems: the counts do not move between the calls.
      assert.equal([ours.blocks, ours.blocksFree, ours.blocksAvailable], [BigInt(blocks!), BigInt(bfree!), BigInt(bavail!)]);
      assert.equal([ours.files, ours.filesFree], [BigInt(files!), BigInt(ffree!)]);
    }
  }
});

test('statfsPath: ENOENT, argument errors', async () => {
  const error = await rejection(statfsPath('/nonexistent/usip'));
  assert.is(error.code, 'ENOENT');
  assert.is(error.syscall, 'statfs');
  assert.match(error.message, /statfs \/nonexistent\/usip/);
  assert.instance(await caught(statfsPath(1 as unknown as string)), TypeError);
  assert.instance(await caught(statfsPath('/', { timeoutMs: -1 })), RangeError);
  assert.instance(await caught(statfsPath('/', { timeoutMs: 1.5 })), TypeError);
  assert.is(MAX_STATFS_THREADS, 16);
});

test('statfsPath: a hung FUSE mount times out with ETIMEDOUT; at most 16 threads block; they end when it is aborted', () => {
  const output = execFileSync(
    'unshare',
    ['-m', '--propagation', 'private', process.execPath, `${packageDir}/test/host/statfs-hang.mjs`],
    { encoding: 'utf8', env: { ...process.env, USIP_NETLINK_NATIVE: distIndex }, timeout: 30_000 },
  );
  const report = JSON.parse(output) as Record<string, unknown> & {
    first: { code?: string; syscall?: string; detail?: string };
    firstMs: number;
    manyMs: number;
    manyCodes: string[];
    threadsWhileHung: number;
    maxThreads: number;
  };
  assert.is(report.first.code, 'ETIMEDOUT');
  assert.is(report.first.syscall, 'statfs');
  assert.match(report.first.detail ?? '', /stays blocked/);
  assert.ok(report.firstMs >= 290 && report.firstMs < 2000, `${report.firstMs} ms`);
  assert.equal(report.manyCodes, ['ETIMEDOUT']);
  assert.ok(report.manyMs < 3000, `${report.manyMs} ms for all of them`);
  assert.is(report.threadsWhileHung, report.maxThreads, 'the bound holds: 16 blocked threads, no more');
  assert.is((report.healthyWhileHung as { code?: string }).code, 'ETIMEDOUT', 'no thread free: even / waits');
  assert.is(report.threadsAfterAbort, 0, 'the threads end when the kernel returns');
  assert.equal(report.healthyAfter, { ok: true });
  assert.is((report.abortedMount as { code?: string }).code, 'ENOTCONN');
});

test.run();
