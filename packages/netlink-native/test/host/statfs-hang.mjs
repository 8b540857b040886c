// Run by mounts.test.ts inside `unshare -m --propagation private`, as root: a FUSE mount whose
// daemon never answers (this process holds /dev/fuse and reads nothing) is a hung file system:
// statfs of it blocks in the kernel until the connection is closed. Prints what statfsPath()
// did, as JSON.
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const { statfsPath, MAX_STATFS_THREADS } = await import(process.env.USIP_NETLINK_NATIVE);
const dir = mkdtempSync(join(tmpdir(), 'usip-hung-'));
const fuse = openSync('/dev/fuse', 'r+');
// mount(8) inherits the descriptor as fd 3; -i: no mount.fuse helper, the kernel's own mount.
execFileSync('mount', ['-i', '-t', 'fuse.usiphang', '-o', 'fd=3,rootmode=40000,user_id=0,group_id=0', 'usip-hang', dir], {
  stdio: ['ignore', 'pipe', 'pipe', fuse],
});

const statfsThreads = () =>
  readdirSync('/proc/self/task').filter((task) => {
    try {
      return readFileSync(`/proc/self/task/${task}/comm`, 'utf8').trim() === 'usip-statfs';
    } catch {
      return false; // the thread ended meanwhile
    }
  }).length;
const outcome = async (promise) => {
  try {
    await promise;
    return { ok: true };
  } catch (error) {
    return { ok: false, name: error.name, code: error.code, syscall: error.syscall, detail: error.detail };
  }
};

const report = {};
let started = Date.now();
report.first = await outcome(statfsPath(dir, { timeoutMs: 300 }));
report.firstMs = Date.now() - started;
// More calls than threads: each times out; no more threads than the bound exist.
started = Date.now();
const many = await Promise.all(Array.from({ length: MAX_STATFS_THREADS + 8 }, () => outcome(statfsPath(dir, { timeoutMs: 500 }))));
report.manyMs = Date.now() - started;
report.manyCodes = [...new Set(many.map((r) => r.code))];
report.threadsWhileHung = statfsThreads();
report.maxThreads = MAX_STATFS_THREADS;
// While every thread is blocked, even a healthy path waits, and times out.
report.healthyWhileHung = await outcome(statfsPath('/', { timeoutMs: 200 }));
// Closing /dev/fuse aborts the connection: the blocked calls return (ENOTCONN), the threads end.
closeSync(fuse);
const deadline = Date.now() + 5000;
while (statfsThreads() > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
report.threadsAfterAbort = statfsThreads();
report.healthyAfter = await outcome(statfsPath('/', { timeoutMs: 2000 }));
report.abortedMount = await outcome(statfsPath(dir, { timeoutMs: 2000 }));
execFileSync('umount', ['-l', dir]);
process.stdout.write(JSON.stringify(report));
