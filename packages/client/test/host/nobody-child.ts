// Run by kernel-backends.test.ts as uid 65534 in a private mount namespace where root makes the
// mounts:  node --import tsx nobody-child.ts DIR
// Prints a JSON line once it watches (the plan, the watcher's backend), then one with the changes
// it saw under DIR until DIR/x was unmounted, and whether its table equals its mountinfo then.
import { openMounts, readMountinfo, sameMount, type MountInfo } from '../../src/index.js';

const dir = process.argv[2]!;
const source = await openMounts();
const watcher = await source.watchMounts({ checkIntervalMs: 300 });
const changes = source.plan.features.find((c) => c.feature === 'mount-changes')!;
process.stdout.write(`${JSON.stringify({ ready: true, uid: process.getuid!(), watcherBackend: watcher.backend, changes })}\n`);
const kinds: string[] = [];
const timer = setTimeout(() => void watcher.close(), 20_000);
for await (const change of watcher) {
  if (change.kind === 'resync') continue;
  if (!change.mount.mountPoint.startsWith(dir)) continue;
  kinds.push(`${change.kind} ${change.mount.mountPoint.slice(dir.length)}`);
  if (change.kind === 'umount' && change.mount.mountPoint === `${dir}/x`) break;
}
clearTimeout(timer);
const strip = ({ uniqueId: _u, ...rest }: MountInfo) => rest;
const truth = await readMountinfo();
const equal = truth.length === watcher.table.size && truth.every((m) => {
  const have = watcher.table.get(m.id);
  return have !== undefined && sameMount(strip(have), m);
});
await watcher.close();
source.close();
process.stdout.write(`${JSON.stringify({ kinds, equal })}\n`);
