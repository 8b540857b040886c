// The user-space part of UsipClient.watchMounts() per change, on the host (real CPU, no TCG, no
// kernel): a MountWatcher fed with mtab events encoded as the module sends them, one batch per
// event with its mount-get's answer (as the binding hands them over), at N mounts; plus one request round trip through the napi binding
// (the host kernel's nlctrl) for the mount-get each mount event costs. It estimates what the
// Node client adds per change on real hardware; the in-VM figures are the measurement.
//
//   node host-replay.mjs [N,N...] [CHANGES]   -> one JSON line
import { GenlSocket, Nlctrl } from '@usip/netlink-native';
import { MountWatcher, encodeAttributes, protocol } from '@usip/client';

const sizes = (process.argv[2] ?? '1000,15000').split(',').map(Number);
const changes = Number(process.argv[3] ?? 4000);
const { Command, EVENT_ATTRIBUTE_SET, EventType, Action } = protocol;

function mountInfo(id, mountPoint) {
  return {
    id,
    parentId: 100,
    uniqueId: BigInt(0x80000000 + id),
    major: 0,
    minor: 50,
    root: '/src',
    mountPoint,
    attributes: ['relatime'],
    options: 'rw,relatime',
    unbindable: false,
    optionalFields: '',
    fsType: 'tmpfs',
    source: 'bench',
    superOptions: 'rw,inode64',
    mntNs: 4026532000,
  };
}

async function replay(n) {
  const mounts = [];
  for (let i = 0; i < n; i++) mounts.push(mountInfo(1000 + i, `/tmp/bench/n/${String(i).padStart(6, '0')}`));
  // The batches: one pending read at a time, answered when the loop posts an event, with the
  // mount-get the binding made for it (as UsipClient's io does: one call per wake-up).
  let deliver;
  const marker = mountInfo(900_000, '/tmp/bench/marker');
  const io = {
    next: () => new Promise((resolve) => (deliver = (item) => resolve({ items: [item], mount: () => marker }))),
    familyId: 35,
    fetch: async () => marker,
    dump: async () => ({ mounts, nsSeq: 0n }),
    listenerMissed: async () => 0n,
    close: async () => {},
  };
  const watcher = new MountWatcher(io, { mounts, nsSeq: 0n }, { listenerId: 1, mntNs: 4026532000, receiveBufferSize: 425984 });
  const event = (seq, action) => ({
    kind: 'message',
    familyId: 35,
    command: Command.mtabEvent,
    version: 1,
    group: 0,
    attributes: encodeAttributes(EVENT_ATTRIBUTE_SET, {
      listenerId: 1,
      seq: BigInt(seq),
      missed: 0,
      type: EventType.mtab,
      action,
      timestamp: 0n,
      mntNs: 4026532000,
      pid: 1,
      uid: 0,
      mountId: marker.id,
      parentId: 100,
      path: marker.mountPoint,
      fsType: 'tmpfs',
      source: 'bench-marker',
      dev: 50,
      nsSeq: BigInt(seq),
      uniqueId: marker.uniqueId,
    }),
  });
  const run = async (from, count) => {
    for (let seq = from; seq < from + count; seq++) {
      const pending = watcher.next();
      await new Promise(setImmediate);
      deliver(event(seq, seq % 2 ? Action.mount : Action.umount));
      const { value } = await pending;
      if (value.mount.id !== marker.id) throw new Error('unexpected change');
    }
  };
  await run(1, 1000); // warm-up (JIT)
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await run(1001, changes);
  const wall = Number(process.hrtime.bigint() - t0) / 1e3 / changes;
  const c = process.cpuUsage(c0);
  return { n, changes, cpuPerChangeUs: (c.user + c.system) / changes, wallPerChangeUs: wall };
}

async function roundTrip(count = 2000) {
  const socket = new GenlSocket();
  await socket.resolveFamily(Nlctrl.name);
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < count; i++) await socket.resolveFamily(Nlctrl.name);
  const wall = Number(process.hrtime.bigint() - t0) / 1e3 / count;
  const c = process.cpuUsage(c0);
  socket.close();
  return { count, cpuPerRequestUs: (c.user + c.system) / count, wallPerRequestUs: wall };
}

const out = { replay: [], request: await roundTrip() };
for (const n of sizes) out.replay.push(await replay(n));
console.log(JSON.stringify(out));
