import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { classifyKernelLog } from '../src/kernel-log.js';

// Real kernel logs of usip-vm runs: a clean boot plus the fixture module's load and unload on
// each kernel, and a boot where the fixture WARNed in its init.
const fixture = (name: string) => readFileSync(new URL(`fixtures/${name}`, import.meta.url), 'utf8');

test('a clean boot with an out-of-tree module has no findings (6.1 and 6.12)', () => {
  for (const name of ['dmesg-6.1-clean.log', 'dmesg-6.12-clean.log']) {
    const log = fixture(name);
    assert.ok(log.includes('tainting kernel'), `${name} shows the unsigned-module taint, which is not a problem`);
    assert.ok(log.includes('report a bug'), `${name} has a lower-case "bug" that must not count`);
    assert.equal(classifyKernelLog(log), [], name);
  }
});

test('a WARN_ON in a module init is found: the WARNING line and its call trace', () => {
  const findings = classifyKernelLog(fixture('dmesg-6.12-warn.log'));
  assert.equal(
    findings.map((f) => f.label),
    ['WARNING', 'call trace'],
  );
  assert.match(findings[0]?.line ?? '', /^\[\s*[\d.]+\] WARNING: CPU: 1 PID: 148 at .*usip_vm_fixture\.c:31 usip_vm_fixture_init/);
  assert.match(findings[1]?.line ?? '', /Call Trace:$/);
});

// One line of each kind, as the kernel prints them.
const samples: Array<[string, string]> = [
  ['kernel panic', '[   9.1] Kernel panic - not syncing: Fatal exception'],
  ['lockdep', '[   3.2] WARNING: possible circular locking dependency detected'],
  ['lockdep', '[   3.2] WARNING: inconsistent lock state'],
  ['lockdep', '[   3.2] WARNING: possible recursive locking detected'],
  ['lockdep', '[   3.2] WARNING: suspicious RCU usage'],
  ['hung task', '[ 242.0] INFO: task insmod:123 blocked for more than 120 seconds.'],
  ['soft lockup', '[  30.0] watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [insmod:123]'],
  ['soft lockup', '[  60.0] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:'],
  ['KASAN', '[   5.5] BUG: KASAN: slab-out-of-bounds in usip_dump+0x1c/0x40 [usip]'],
  ['UBSAN', '[   5.5] UBSAN: shift-out-of-bounds in /build/usip/src/usip-main.c:42:7'],
  ['refcount', '[   5.5] refcount_t: underflow; use-after-free.'],
  ['list corruption', '[   5.5] list_add corruption. prev->next should be next (ffff8880), but was 0000000000000000.'],
  ['list corruption', '[   5.5] list_del corruption, ffff888004c1e0a8->next is LIST_POISON1 (dead000000000100)'],
  ['memory leak', '[  70.0] kmemleak: 2 new suspected memory leaks (see /sys/kernel/debug/kmemleak)'],
  ['general protection fault', '[   5.5] general protection fault, probably for non-canonical address 0xdead000000000100: 0000 [#1] PREEMPT SMP NOPTI'],
  ['oops', '[   5.5] Oops: 0002 [#1] PREEMPT SMP NOPTI'],
  ['oops', '[   5.5] BUG: unable to handle page fault for address: 0000000000000008'],
  ['oops', '[   5.5] BUG: kernel NULL pointer dereference, address: 0000000000000000'],
  ['BUG', '[   5.5] kernel BUG at mm/slub.c:435!'],
  ['BUG', '[   5.5] BUG: sleeping function called from invalid context at kernel/locking/mutex.c:580'],
  ['BUG', '[   5.5] BUG kmalloc-64 (Tainted: G           OE     ): Object already free'],
  ['WARNING', '[   5.5] WARNING: CPU: 0 PID: 95 at lib/refcount.c:28 refcount_warn_saturate+0xba/0x110'],
  ['call trace', '[   5.5] Call Trace:'],
];

test('each kind of kernel problem is found and labelled', () => {
  for (const [label, line] of samples) {
    assert.equal(classifyKernelLog(`[   1.0] harmless line\n${line}\n`), [{ label, line }], line);
  }
});

test('ordinary messages are not problems', () => {
  const harmless = [
    '[   1.3] PCI: Using host bridge windows from ACPI; if necessary, use "pci=nocrs" and report a bug',
    '[   2.2] AMD-Vi: AMD IOMMUv2 functionality not available on this system - This is not a bug.',
    '[   2.9] RAS: Correctable Errors collector initialized.',
    '[   4.4] usip: warning: low space threshold set to 5%',
    '[   4.4] usip_vm_fixture: module verification failed: signature and/or required key missing - tainting kernel',
    '[   4.5] usip-vm: running the command',
  ];
  assert.equal(classifyKernelLog(harmless.join('\n')), []);
});

// Real logs of the debug kernel (tools/debug-kernel: lockdep, PROVE_RCU, DEBUG_ATOMIC_SLEEP,
// KASAN), from its selftest module: a clean boot and load, then the bugs made on purpose.
test('the debug kernel: its clean boot has no findings (lockdep and KASAN banners are not problems)', () => {
  const log = fixture('dmesg-6.12-debug-clean.log');
  assert.ok(log.includes('RCU lockdep checking is enabled'), 'a lockdep kernel');
  assert.ok(log.includes('KernelAddressSanitizer initialized'), 'a KASAN kernel');
  assert.equal(classifyKernelLog(log), []);
});

test('the debug kernel: sleep in atomic, suspicious RCU usage, a circular locking dependency, a KASAN use-after-free', () => {
  const findings = classifyKernelLog(fixture('dmesg-6.12-debug-bugs.log'));
  assert.equal(
    findings.map((f) => f.label),
    ['BUG', 'call trace', 'lockdep', 'call trace', 'lockdep', 'call trace', 'KASAN', 'call trace'],
  );
  assert.match(findings[0]?.line ?? '', /\] BUG: sleeping function called from invalid context at include\/linux\/sched\/mm\.h:\d+$/);
  assert.match(findings[2]?.line ?? '', /\] WARNING: suspicious RCU usage$/);
  assert.match(findings[4]?.line ?? '', /\] WARNING: possible circular locking dependency detected$/);
  assert.match(findings[6]?.line ?? '', /\] BUG: KASAN: slab-use-after-free in selftest_kasan\+0x[0-9a-f]+\/0x[0-9a-f]+ \[usip_debug_selftest\]$/);
});

test('findings keep log order, and CRLF endings from a serial console do not leak into lines', () => {
  const log = '[1] Call Trace:\r\n[2] ok\r\n[3] WARNING: CPU: 0 PID: 1 at x.c:1 f+0x0/0x1\r\n';
  assert.equal(classifyKernelLog(log), [
    { label: 'call trace', line: '[1] Call Trace:' },
    { label: 'WARNING', line: '[3] WARNING: CPU: 0 PID: 1 at x.c:1 f+0x0/0x1' },
  ]);
});

test.run();
