// Run by mounts.test.ts as uid/gid 65534 with no groups (setpriv): what an unprivileged
// caller gets from the mount APIs, as JSON.
import { readFileSync } from 'node:fs';

const { FanotifyMountWatch, listKernelMounts, mountApiSupport } = await import(process.env.USIP_NETLINK_NATIVE);
const report = { uid: process.getuid() };
report.support = mountApiSupport();
try {
  new FanotifyMountWatch().close();
  report.fanotify = { ok: true };
} catch (error) {
  report.fanotify = { ok: false, name: error.name, code: error.code, errno: error.errno, syscall: error.syscall, detail: error.detail, message: error.message };
}
const mounts = await listKernelMounts();
report.listed = mounts.length;
report.mountinfoLines = readFileSync('/proc/self/mountinfo', 'utf8').trim().split('\n').length;
process.stdout.write(JSON.stringify(report, (_key, value) => (typeof value === 'bigint' ? `${value}n` : value)));
