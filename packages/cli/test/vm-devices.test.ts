// End to end: usip devices and the @usip/client block-device API against a real kernel's loop
// devices and partitions, compared with lsblk. Boots each supported kernel with usip.ko and runs
// test/guest/devices.sh there: a partitioned loop device (sfdisk, two partitions, ext4 on the
// second mounted twice), a read-only one; usip devices in every form beside lsblk's, as root and
// as uid 65534; the client (guest/devices-client.ts) with the module's mount table and with
// mountinfo; devices() while loop devices come and go; and again once the module is unloaded.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { BlockDevice } from '@usip/client';
import { runInVm, type VmRunResult } from '@usip/vm';
import { mountPoints, shownByDefault } from '../src/devices.js';
import { read, step } from './vm-results.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const MiB = 1024 * 1024;

/** A step that must have succeeded, its stdout parsed as JSON. */
function json<T = any>(run: VmRunResult, name: string): T {
  const { status, out, err } = step(run, name);
  assert.is(status, 0, `${name} failed: ${err}`);
  return JSON.parse(out) as T;
}

/** A step's output, each row split into its words: alignment may differ, content may not. */
function words(run: VmRunResult, name: string): string[][] {
  const { status, out, err } = step(run, name);
  assert.is(status, 0, `${name} failed: ${err}`);
  return out
    .trimEnd()
    .split('\n')
    .map((line) => line.trim().split(/\s+/));
}

/** A device of the client's JSON (bigints were decimal strings) with its size a bigint again. */
type DeviceJson = Omit<BlockDevice, 'size' | 'partitions'> & { size: string; partitions: DeviceJson[] };
const revive = (d: DeviceJson): BlockDevice => ({ ...d, size: BigInt(d.size), start: d.start === undefined ? undefined : BigInt(d.start as unknown as string), partitions: d.partitions.map(revive) }) as BlockDevice;

/** The client's devices as lsblk -J -b -o NAME,MAJ:MIN,RM,SIZE,RO,TYPE,MOUNTPOINTS shows them. */
function asLsblk(list: DeviceJson[]): unknown {
  const one = (d: BlockDevice, withChildren: boolean): Record<string, unknown> => {
    const points = mountPoints(d);
    const out: Record<string, unknown> = {
      name: d.name,
      'maj:min': `${d.major}:${d.minor}`,
      rm: d.removable,
      size: Number(d.size),
      ro: d.readOnly,
      type: d.type,
      mountpoints: points.length === 0 ? [null] : points,
    };
    const children = d.partitions.filter(shownByDefault);
    if (withChildren && children.length > 0) out.children = children.map((c) => one(c, false));
    return out;
  };
  return { blockdevices: list.map(revive).filter(shownByDefault).map((d) => one(d, true)) };
}

for (const kernel of ['6.1', '6.12']) {
  const run = await runInVm({
    kernel,
    modules: [join(root, 'packages/kernel-module/build/{kver}/usip.ko')],
    command: ['sh', 'packages/cli/test/guest/devices.sh'],
    cwd: root,
    // The script unloads the module itself, to read the devices without it too.
    unload: false,
    timeoutMs: 300_000,
    stream: true,
  });
  const test = suite(`usip devices and the client's devices() in the ${kernel} guest (${run.kernel.release})`);
  const uniqueIds = run.kernel.series === '6.12';
  const parted = () => read(run, 'parted-device').trim().replace('/dev/', '');
  const ro = () => read(run, 'ro-device').trim().replace('/dev/', '');

  test('the guest made the devices, ran the script to the end, and the kernel log is clean', () => {
    assert.is(run.timedOut, false, 'timed out');
    assert.equal(run.loadErrors, [], 'usip.ko loaded');
    assert.equal(run.problems, [], 'kernel log problems');
    assert.is(run.exitCode, 0, run.output);
    assert.is(read(run, 'uname').trim(), run.kernel.release);
    for (const name of ['modprobe', 'sfdisk', 'mkfs', 'mount', 'bind', 'rmmod']) {
      const s = step(run, name);
      assert.is(s.status, 0, `${name}: ${s.err}`);
    }
    assert.match(parted(), /^loop\d+$/);
    assert.match(ro(), /^loop\d+$/);
  });

  test('usip devices --json -b is lsblk -J -b\'s: the partitioned device, its partitions, sizes, mounts; the read-only one', () => {
    for (const who of ['root', 'nobody']) {
      const ours = json(run, `${who}-usip-json-b`);
      assert.equal(ours, json(run, `${who}-lsblk-json-b`), who);
      assert.equal(json(run, `${who}-usip-json-b-order`), json(run, `${who}-lsblk-json-b-order`), `${who}, lsblk's -o order`);
      // What the script made is there, as it made it (and not only the same in both).
      const devices = ours.blockdevices as { name: string; size: number; ro: boolean; type: string; mountpoints: (string | null)[]; children?: { name: string; size: number; type: string; mountpoints: (string | null)[] }[] }[];
      const disk = devices.find((d) => d.name === parted())!;
      assert.ok(disk, `${parted()} in ${JSON.stringify(devices.map((d) => d.name))}`);
      assert.equal([disk.type, disk.size, disk.ro, disk.mountpoints], ['loop', 1536 * MiB, false, [null]]);
      assert.equal(
        disk.children!.map((c) => [c.name, c.type, c.size, c.mountpoints]),
        [
          [`${parted()}p1`, 'part', 20 * MiB, [null]],
          [`${parted()}p2`, 'part', (1536 - 21) * MiB, ['/tmp/mnt/with space', '/tmp/mnt/p2']],
        ],
        who,
      );
      const roDevice = devices.find((d) => d.name === ro())!;
      assert.equal([roDevice.type, roDevice.size, roDevice.ro, roDevice.children], ['loop', 104857088, true, undefined]);
      // The unbound loop devices modprobe made are hidden, as lsblk hides them.
      assert.is(devices.filter((d) => d.type === 'loop').length, 2, JSON.stringify(devices.map((d) => d.name)));
    }
  });

  test('sizes for people, the tree, the list and -a have lsblk\'s rows and cells, as root and as uid 65534', () => {
    for (const who of ['root', 'nobody']) {
      assert.equal(json(run, `${who}-usip-json`), json(run, `${who}-lsblk-json`), `${who}: --json without -b`);
      for (const form of ['tree', 'list', 'all']) {
        assert.equal(words(run, `${who}-usip-${form}`), words(run, `${who}-lsblk-${form}`), `${who} ${form}`);
        // And byte for byte: lsblk's widths, alignment and blanks.
        assert.fixture(step(run, `${who}-usip-${form}`).out, step(run, `${who}-lsblk-${form}`).out);
      }
      const tree = step(run, `${who}-usip-tree`).out;
      // A blank before the empty MOUNTPOINTS cell, as lsblk leaves it.
      assert.match(tree, new RegExp(`^├─${parted()}p1 +259:\\d+ +0 +20M +0 part $`, 'm'));
      assert.match(tree, new RegExp(`^└─${parted()}p2 +259:\\d+ +0 +1\\.5G +0 part /tmp/mnt/with space\\n {10,}/tmp/mnt/p2$`, 'm'));
      assert.match(tree, new RegExp(`^${ro()} +7:\\d+ +0 +100M +1 loop $`, 'm'), 'just under 100M is 100M, as lsblk rounds');
    }
  });

  test('devices named on the command line: a disk with its partitions, a partition alone, as lsblk shows them', () => {
    for (const who of ['root', 'nobody']) {
      const ours = json(run, `${who}-usip-named`);
      assert.equal(ours, json(run, `${who}-lsblk-named`), who);
      assert.equal(
        ours.blockdevices.map((d: { name: string; children?: unknown[] }) => [d.name, d.children?.length ?? 0]),
        // By device number, as lsblk orders them: the partition is on the extended major.
        [
          [parted(), 2],
          [ro(), 0],
          [`${parted()}p2`, 0],
        ],
      );
    }
    const extra = json(run, 'usip-extra');
    assert.equal(extra.blockdevices[0], {
      name: parted(),
      fstype: null,
      model: null,
      serial: null,
      children: [
        { name: `${parted()}p1`, fstype: null, model: null, serial: null },
        { name: `${parted()}p2`, fstype: 'ext4', model: null, serial: null },
      ],
    });
  });

  test('client: devices() with the module\'s mount table, and with mountinfo, is what lsblk shows; the details', () => {
    for (const who of ['root', 'nobody']) {
      const r = json(run, `${who}-client`);
      assert.is(r.uid, who === 'root' ? 0 : 65534);
      assert.is(r.connectError, null);
      for (const source of ['viaClient', 'viaFree', 'viaMountinfo']) assert.equal(asLsblk(r[source]), r.lsblk, `${who} ${source}`);
      const disk = (r.viaClient as DeviceJson[]).find((d) => d.name === parted())!;
      assert.equal(
        [disk.type, disk.backingFile, disk.size, disk.readOnly, disk.removable, disk.logicalBlockSize, disk.swap, 'model' in disk, 'serial' in disk],
        ['loop', '/tmp/parted.img', String(1536 * MiB), false, false, 512, false, false, false],
      );
      const [p1, p2] = disk.partitions;
      assert.equal(
        [p1!.partition, p1!.start, p1!.parent, p2!.partition, p2!.start, p2!.fsType, p1!.major, p2!.major],
        [1, String(MiB), parted(), 2, String(21 * MiB), 'ext4', 259, 259],
      );
      assert.equal(
        p2!.mounts.map((m) => [m.mountPoint, m.root, m.fsType, m.source]),
        [
          ['/tmp/mnt/p2', '/', 'ext4', `/dev/${parted()}p2`],
          ['/tmp/mnt/with space', '/sub', 'ext4', `/dev/${parted()}p2`],
        ],
      );
      // Which table the mounts came from: the module's has unique ids on 6.8 and later,
      // mountinfo never.
      const ids = (source: string) => (r[source] as DeviceJson[]).find((d) => d.name === parted())!.partitions[1]!.mounts.map((m) => m.uniqueId !== undefined);
      assert.equal(ids('viaClient'), [uniqueIds, uniqueIds], `${who}: the module's dump`);
      assert.equal(ids('viaFree'), [uniqueIds, uniqueIds], `${who}: devices() used the module`);
      assert.equal(ids('viaMountinfo'), [false, false]);
      assert.equal(
        (r.viaMountinfo as DeviceJson[]).find((d) => d.name === parted())!.partitions[1]!.mounts.map((m) => m.id),
        p2!.mounts.map((m) => m.id),
        'the same mounts by id',
      );
    }
  });

  test('client: devices() while a partitioned loop device is attached and detached 60 times never throws', () => {
    const r = json(run, 'race');
    assert.equal(r.errors, []);
    assert.is(r.shellStatus, 0, 'the attach/detach loop ran to the end');
    assert.ok(r.calls >= 5, `${r.calls} calls`);
    assert.ok(r.seenBound > 0, `the device was seen while it existed: ${JSON.stringify(r)}`);
    assert.equal(r.inconsistent, []);
    console.log(`  race on ${run.kernel.release}: ${r.calls} calls, device seen in ${r.seenBound}, with partitions in ${r.seenWithPartitions}`);
  });

  test('without the module: usip devices and devices() read mountinfo, and still show what lsblk shows', () => {
    assert.equal(json(run, 'unloaded-usip-json-b'), json(run, 'unloaded-lsblk-json-b'));
    const r = json(run, 'unloaded-client');
    assert.is(r.connectError, 'USIP_MODULE_NOT_LOADED');
    assert.is(r.viaClient, null);
    assert.equal(asLsblk(r.viaFree), r.lsblk);
    const p2 = (r.viaFree as DeviceJson[]).find((d) => d.name === parted())!.partitions[1]!;
    assert.equal(
      p2.mounts.map((m) => [m.mountPoint, m.uniqueId]),
      [
        ['/tmp/mnt/p2', undefined],
        ['/tmp/mnt/with space', undefined],
      ],
    );
  });

  test.run();
}
