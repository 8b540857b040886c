// Runs inside the QEMU guest (see ../vm.test.ts), as root: what the kernel's own mount APIs say
// on this kernel (6.1: none of them; 6.12: listmount/statmount, no fanotify mount events), and
// MountinfoWatch seeing a real mount and umount. Writes $USIP_VM_RESULTS/mount-api.json; the
// host judges it. Exits non-zero only if it cannot run.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { FanotifyMountWatch, MountinfoWatch, listKernelMounts, mountApiSupport } from '../../dist/index.js';

const errorFields = (error) => ({ name: error.name, code: error.code, syscall: error.syscall, detail: error.detail, message: error.message });
const outcome = async (run) => {
  try {
    return { ok: true, value: await run() };
  } catch (error) {
    return { ok: false, error: errorFields(error) };
  }
};
const within = (promise, ms) =>
  Promise.race([promise, new Promise((_resolve, reject) => setTimeout(() => reject(new Error(`nothing within ${ms} ms`)), ms))]);

const report = { guestRelease: release() };
report.support = mountApiSupport();
report.listed = await outcome(async () => (await listKernelMounts()).map((m) => [m.id, m.mountPoint]));
report.mountinfo = readFileSync('/proc/self/mountinfo', 'utf8')
  .trim()
  .split('\n')
  .map((line) => [Number(line.split(' ')[0]), line.split(' ')[4]]);
report.fanotify = await outcome(async () => new FanotifyMountWatch().close());

const dir = mkdtempSync(join(tmpdir(), 'usip-guest-watch-'));
const watch = new MountinfoWatch();
report.watch = await outcome(async () => {
  const first = (await within(watch.next(), 10_000)).value;
  execFileSync('mount', ['-t', 'tmpfs', 'usip-guest', dir]);
  let mounted;
  while (!mounted) {
    const batch = (await within(watch.next(), 10_000)).value;
    mounted = batch.added.find((line) => line.split(' ')[4] === dir);
  }
  execFileSync('umount', [dir]);
  const id = Number(mounted.split(' ')[0]);
  let removed = false;
  let lines;
  while (!removed) {
    const batch = (await within(watch.next(), 10_000)).value;
    removed = batch.removed.includes(id);
    lines = batch.lines;
  }
  watch.close();
  const after = await within(watch.next(), 2_000);
  return { firstLines: first.lines, firstAdded: first.added.length, mounted, linesAfterUmount: lines, afterClose: after };
});
watch.close();

const out = process.env.USIP_VM_RESULTS;
if (!out) throw new Error('USIP_VM_RESULTS is not set: this script runs in the @usip/vm guest');
writeFileSync(join(out, 'mount-api.json'), `${JSON.stringify(report, (_key, value) => (typeof value === 'bigint' ? `${value}n` : value), 2)}\n`);
