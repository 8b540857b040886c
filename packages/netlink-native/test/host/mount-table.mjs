// Run by mounts.test.ts inside `unshare -m --propagation private` (a mount namespace of its
// own, as root): makes mounts of every kind the comparison needs, then prints what
// listKernelMounts() and /proc/self/mountinfo say, read back to back, as JSON.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const { listKernelMounts, statKernelMount } = await import(process.env.USIP_NETLINK_NATIVE);
const mount = (...args) => execFileSync('mount', args, { stdio: 'pipe' });

const base = mkdtempSync(join(tmpdir(), 'usip-mount-table-'));
const spaced = join(base, 'with space');
const dirs = ['peer', 'slave', 'ro', 'gone', 'opts'].map((name) => join(base, name));
for (const dir of [spaced, ...dirs]) mkdirSync(dir);
const [peer, slave, ro, gone, opts] = dirs;
// A tmpfs with a source that has a space, options of its own and per-mount flags.
mount('-t', 'tmpfs', '-o', 'size=1m,mode=750,nosuid,nodev,noexec', 'usip src', spaced);
mount('--make-shared', spaced);
mount('--bind', spaced, peer); // the same peer group
mount('--bind', peer, slave);
mount('--make-slave', slave); // master: the group
mount('--bind', spaced, ro);
mount('-o', 'remount,bind,ro,noatime', ro);
mount('-t', 'tmpfs', '-o', 'size=2m,nr_inodes=100', 'usip-opts', opts);
mount('-o', 'remount,ro', opts); // the super block read-only: sb_flags
mount('-t', 'tmpfs', 'usip-gone', gone);
const [before] = await Promise.all([listKernelMounts()]);
const goneMount = before.find((m) => m.mountPoint === gone);
execFileSync('umount', [gone]);

const mounts = await listKernelMounts();
const mountinfo = readFileSync('/proc/self/mountinfo', 'utf8');
const mounts2 = await listKernelMounts();
const one = await statKernelMount(mounts.find((m) => m.mountPoint === ro).uniqueId);
const unmounted = await statKernelMount(goneMount.uniqueId);
const json = JSON.stringify(
  { base, mounts, mountinfo, stable: JSON.stringify(mounts, big) === JSON.stringify(mounts2, big), one, unmounted },
  big,
);
process.stdout.write(json);

function big(_key, value) {
  return typeof value === 'bigint' ? `${value}n` : value;
}
