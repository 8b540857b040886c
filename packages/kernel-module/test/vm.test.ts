// usip.ko in a VM, on each supported kernel: one boot per kernel loads the module, runs
// test/guest/family_checks.py (tools that are not ours: genl-ctrl-list, pyroute2, raw sockets),
// unloads the module and collects the kernel log; the tests below judge that one boot.
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { formatVerdict, runInVm, type Kernel, type VmRunResult } from '@usip/vm';
import { PROTOCOL_VERSION } from '../../client/src/generated/usip.js';
import { builtModule, moduleVersion, supportedKernels, workspaceRoot } from './helpers.js';

interface PingResult {
  family_id: number;
  replies: number;
  cmd: number;
  protocol_version: number;
  module_version: string;
  features: number;
  kernel_release: string;
  cookie: string | null;
  net_namespace: string;
}

interface RequestResult {
  errno: number;
  error: string | null;
  extack: string | null;
  extack_offset: number | null;
  replies: number;
}

interface GuestReport {
  ctrl_list: string;
  ping: PingResult;
  ping_without_cookie: PingResult;
  malformed: Record<string, RequestResult>;
  other_netns: { exit: number; stderr: string; ping: PingResult | null };
  sys_module_version: string;
}

// Must match the cookies family_checks.py sends.
const COOKIE = 0x8877665544332211n;
const NETNS_COOKIE = 0xfeedfacecafebeefn;
// Offset of the first attribute in a request: nlmsghdr (16) + genlmsghdr (4).
const FIRST_ATTRIBUTE_OFFSET = 20;

/** The feature bits a module built against these headers must report. */
function expectedFeatures(kernel: Kernel): number {
  const candidates = [kernel.headersDir, kernel.headersDir.replace(/-[a-z0-9]+$/, '-common')].map(
    (dir) => `${dir}/include/uapi/linux/fanotify.h`,
  );
  const header = candidates.find((path) => existsSync(path));
  if (header === undefined) throw new Error(`no uapi fanotify.h under ${candidates.join(' or ')}`);
  const netns = 0x1;
  const nativeMountNotify = 0x2;
  // Debian's 6.1 and 6.12 have everything the mount table and its events need (BTF, kallsyms,
  // the hooked functions with the prototypes the hooks read); a kernel without them would lose
  // some of these bits, one feature at a time.
  const mountTable = 0x4;
  const mountEvents = 0x8;
  const remountEvents = 0x10;
  const propagationEvents = 0x20;
  const setattrEvents = 0x40;
  // statfs and low-space need only the mount table; space-errors the sys_exit tracepoint,
  // quota-warnings quota_send_warning (CONFIG_QUOTA_NETLINK_INTERFACE).
  const statfs = 0x80;
  const spaceErrors = 0x100;
  const quotaWarnings = 0x200;
  const lowSpace = 0x400;
  const native = readFileSync(header, 'utf8').includes('#define FAN_MNT_ATTACH') ? nativeMountNotify : 0;
  return netns | native | mountTable | mountEvents | remountEvents | propagationEvents | setattrEvents | statfs | spaceErrors | quotaWarnings | lowSpace;
}

/** The block genl-ctrl-list -d prints for one family: its header line and indented details. */
function familyBlock(listing: string, name: string): string[] {
  const lines = listing.split('\n');
  const start = lines.findIndex((l) => new RegExp(`^0x[0-9a-f]+ ${name} version \\d+$`).test(l.trim()) && !l.startsWith(' '));
  if (start < 0) return [];
  const block = [lines[start] as string];
  for (const line of lines.slice(start + 1)) {
    if (!line.startsWith(' ')) break;
    block.push(line.trim());
  }
  return block;
}

const kernels = await supportedKernels();

for (const kernel of kernels) {
  const name = kernel.release;
  let result: VmRunResult | undefined;
  let report: GuestReport | undefined;

  const booted = (): { result: VmRunResult; report: GuestReport } => {
    if (result === undefined || report === undefined) throw new Error(`${name}: the VM run did not produce a report (see the first test of this kernel)`);
    return { result, report };
  };

  test(`${name}: boots, loads usip.ko, runs the guest checks and unloads cleanly`, async () => {
    const ko = builtModule(name);
    assert.ok(existsSync(ko), `${ko} is missing: run NX_DAEMON=false npx nx run kernel-module:build`);
    result = await runInVm({
      kernel,
      modules: [ko],
      command: ['/usr/bin/python3', 'packages/kernel-module/test/guest/family_checks.py'],
      cwd: workspaceRoot,
      timeoutMs: 240_000,
    });
    const json = result.output
      .split('\n')
      .reverse()
      .find((l) => l.startsWith('{'));
    if (json !== undefined) report = JSON.parse(json) as GuestReport;
    assert.is(result.exitCode, 0, `${formatVerdict(result)}\n${result.output}`);
    assert.equal(result.loadErrors, []);
    assert.ok(report, `no JSON report in the guest output:\n${result.output}`);
  });

  test(`${name}: the family usip is registered with its seven ops and the mtab and storage groups (genl-ctrl-list)`, () => {
    const { report } = booted();
    const block = familyBlock(report.ctrl_list, 'usip');
    assert.ok(block.length > 0, `usip is not in genl-ctrl-list -d:\n${report.ctrl_list}`);
    assert.match(block[0] ?? '', /usip version 1$/);
    // ping, listener-register, listener-unregister, listener-get (dump), inject, stats,
    // mount-get (9: do and dump) and statfs (10: do and dump). Events (7, 8, 11) are not requests, so not ops. Ops without request attributes report a policy too:
    // with .resv_start_op 0 the kernel gives them one that rejects every attribute.
    const ops = block.filter((l) => l.startsWith('op ')).map((l) => /\(0x[0-9a-f]+\) <[^>]*>$/.exec(l)?.[0] ?? l);
    assert.equal(
      ops,
      [
        '(0x01) <has_doit,has_policy>',
        '(0x02) <has_doit,has_policy>',
        '(0x03) <has_doit,has_policy>',
        '(0x04) <has_dump,has_policy>',
        '(0x05) <has_doit,has_policy>',
        '(0x06) <has_doit,has_policy>',
        '(0x09) <has_doit,has_dump,has_policy>',
        '(0x0a) <has_doit,has_dump,has_policy>',
      ],
      block.join('\n'),
    );
    const groups = block.filter((l) => l.startsWith('grp ')).map((l) => l.split(' ')[1]);
    assert.equal(groups, ['mtab', 'storage']);
  });

  test(`${name}: ping answers with protocol version, module version, features, kernel release and the cookie (pyroute2)`, () => {
    const { report } = booted();
    const ping = report.ping;
    assert.is(ping.replies, 1);
    assert.is(ping.cmd, 1);
    assert.is(ping.protocol_version, PROTOCOL_VERSION);
    assert.is(ping.module_version, moduleVersion);
    assert.is(ping.features, expectedFeatures(kernel));
    assert.is(ping.kernel_release, kernel.release);
    assert.is(ping.cookie, COOKIE.toString());
  });

  test(`${name}: a ping without a cookie gets a reply without one`, () => {
    const { report } = booted();
    assert.is(report.ping_without_cookie.cookie, null);
    assert.is(report.ping_without_cookie.protocol_version, PROTOCOL_VERSION);
  });

  test(`${name}: the same raw request that is valid gets a reply and no error`, () => {
    const { report } = booted();
    const valid = report.malformed.valid;
    assert.is(valid?.errno, 0);
    assert.is(valid?.replies, 1);
  });

  test(`${name}: malformed pings are rejected with EINVAL and an extack message that points at the attribute`, () => {
    const { report } = booted();
    const expectations: [string, RegExp][] = [
      ['short_cookie', /invalid attribute length/],
      ['long_cookie', /invalid attribute length/],
      ['reply_attribute_in_request', /Unknown attribute type/],
      ['unknown_attribute', /Unknown attribute type/],
      ['pad_attribute', /Unknown attribute type/],
    ];
    for (const [label, message] of expectations) {
      const r = report.malformed[label];
      assert.ok(r, `no result for ${label}`);
      assert.is(r.error, 'EINVAL', `${label}: ${JSON.stringify(r)}`);
      assert.match(r.extack ?? '', message, `${label}: ${JSON.stringify(r)}`);
      assert.is(r.extack_offset, FIRST_ATTRIBUTE_OFFSET, `${label}: ${JSON.stringify(r)}`);
      assert.is(r.replies, 0, label);
    }
  });

  test(`${name}: a non-zero reserved header byte is rejected (resv_start_op left at 0), an unknown command is not supported`, () => {
    const { report } = booted();
    const reserved = report.malformed.reserved_header_byte;
    assert.is(reserved?.error, 'EINVAL', JSON.stringify(reserved));
    assert.match(reserved?.extack ?? '', /reserved/);
    assert.is(report.malformed.unknown_command?.errno, 95 /* EOPNOTSUPP */, JSON.stringify(report.malformed.unknown_command));
  });

  test(`${name}: ping works from another network namespace (unshare -n)`, () => {
    const { report } = booted();
    const other = report.other_netns;
    assert.is(other.exit, 0, other.stderr);
    assert.ok(other.ping);
    assert.is.not(other.ping.net_namespace, report.ping.net_namespace);
    assert.is(other.ping.cookie, NETNS_COOKIE.toString());
    assert.is(other.ping.kernel_release, kernel.release);
    assert.is(other.ping.protocol_version, PROTOCOL_VERSION);
  });

  test(`${name}: the loaded module reports VERSION in /sys/module/usip/version`, () => {
    const { report } = booted();
    assert.is(report.sys_module_version, moduleVersion);
  });

  test(`${name}: the module unloads cleanly and the kernel log has no warning, oops or BUG`, () => {
    const { result } = booted();
    assert.ok(result.unloaded, formatVerdict(result));
    assert.equal(result.problems, []);
    assert.ok(result.ok, formatVerdict(result));
  });
}

test.run();
