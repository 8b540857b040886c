// The binding against the real usip family: on each supported kernel, one QEMU guest loads the
// freshly built usip.ko and runs guest/usip-probe.mjs with this addon; the host judges the
// report the guest wrote. Needs `nx build kernel-module` (the test target depends on it).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { runInVm, type VmRunResult } from '@usip/vm';
import { OperationFlags } from '../src/index.js';

const packageDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const workspaceRoot = resolve(packageDir, '../..');
const moduleVersion = readFileSync(join(workspaceRoot, 'packages/kernel-module/VERSION'), 'utf8').trim();
// Where usip.ko is, `{kver}` standing for the kernel release: what `nx build kernel-module`
// makes, unless USIP_VM_MODULE names another build (e.g. one made by hand elsewhere).
const modulePath =
  process.env.USIP_VM_MODULE ?? join(workspaceRoot, 'packages/kernel-module/build/{kver}/usip.ko');
const USIP_CMD_PING = 1;
const FEATURE_MASK = 0x3;

interface ErrorFields {
  errno: number;
  code: string;
  extack?: string;
  extackOffset?: number;
  operation: string;
  message: string;
}
type Outcome<T> = { ok: true; value: T } | { ok: false; error: ErrorFields };
interface PingReply {
  command: number;
  cookie?: string;
  protocolVersion?: number;
  moduleVersion?: string;
  features?: number;
  kernelRelease?: string;
}
interface ProbeReport {
  guestRelease: string;
  family: {
    id: number;
    name: string;
    version: number;
    headerSize: number;
    operations: { id: number; flags: number }[];
    multicastGroups: { name: string; id: number }[];
  };
  ping: { ok: true; replies: PingReply[] } | { ok: false; error: ErrorFields };
  sentCookie: string;
  shortCookie: Outcome<unknown>;
  unknownAttribute: Outcome<unknown>;
  dumpOfPing: Outcome<unknown>;
  concurrentPings: { sent: number; matched: number };
  afterClose: Outcome<unknown>;
}

function failure(outcome: Outcome<unknown>, what: string): ErrorFields {
  if (outcome.ok) throw new assert.Assertion({
    message: `${what} should have failed but succeeded`,
    operator: 'rejects',
    expects: 'a NetlinkError',
    actual: JSON.stringify(outcome.value),
  });
  return outcome.error;
}

interface Probe {
  run: VmRunResult;
  report?: ProbeReport;
}

/** Boots the guest once per kernel; every test of that kernel reads the same run. A failure to
 *  boot fails each test with the reason (uvu would swallow an error thrown in a `before` hook). */
const probes = new Map<string, Promise<Probe>>();
function probe(series: string): Promise<Probe> {
  let pending = probes.get(series);
  if (!pending) {
    pending = (async () => {
      const run = await runInVm({
        kernel: series,
        modules: [modulePath],
        command: ['node', join(packageDir, 'test/guest/usip-probe.mjs')],
        cwd: workspaceRoot,
        timeoutMs: 240_000,
      });
      const reportPath = join(run.resultsDir, 'usip-probe.json');
      if (!existsSync(reportPath)) return { run };
      return { run, report: JSON.parse(readFileSync(reportPath, 'utf8')) as ProbeReport };
    })();
    probes.set(series, pending);
  }
  return pending;
}

async function report(series: string): Promise<ProbeReport> {
  const { run, report } = await probe(series);
  if (!report) {
    throw new Error(
      `the guest wrote no report (${run.failures.join('; ')}); guest output:\n${run.output}`,
    );
  }
  return report;
}

for (const series of ['6.1', '6.12']) {
  const vm = suite(`usip in a ${series} guest`);

  vm('the guest run is clean: probe exited 0, module unloaded, no kernel warnings', async () => {
    const { run } = await probe(series);
    assert.equal(run.failures, [], `guest output:\n${run.output}`);
    assert.ok(run.ok);
    assert.is(run.exitCode, 0);
  });

  vm('resolves usip with its ping operation and its two multicast groups', async () => {
    const { family, guestRelease } = await report(series);
    assert.ok(guestRelease.startsWith(series), `guest kernel ${guestRelease}`);
    assert.is(family.name, 'usip');
    assert.is(family.version, 1);
    assert.is(family.headerSize, 0);
    assert.ok(family.id >= 0x10, `dynamic family id ${family.id}`);
    const ping = family.operations.find((op) => op.id === USIP_CMD_PING);
    assert.ok(ping, `operations: ${JSON.stringify(family.operations)}`);
    assert.ok(ping.flags & OperationFlags.canDo, 'ping has a do handler');
    assert.not.ok(ping.flags & OperationFlags.canDump, 'ping has no dump handler');
    assert.not.ok(ping.flags & OperationFlags.adminPerm, 'any user may ping');
    assert.equal(family.multicastGroups.map((group) => group.name).sort(), ['mtab', 'storage']);
    for (const group of family.multicastGroups) assert.ok(group.id > 0);
  });

  vm('ping answers with the protocol, module and kernel versions and echoes the cookie', async () => {
    const { ping, sentCookie, guestRelease } = await report(series);
    assert.ok(ping.ok, `ping failed: ${JSON.stringify(ping)}`);
    assert.is(ping.replies.length, 1);
    const [reply] = ping.replies;
    assert.is(reply!.command, USIP_CMD_PING);
    assert.is(reply!.cookie, sentCookie);
    assert.is(reply!.protocolVersion, 1);
    assert.is(reply!.moduleVersion, moduleVersion);
    assert.is(reply!.kernelRelease, guestRelease);
    assert.type(reply!.features, 'number');
    assert.is(reply!.features! & ~FEATURE_MASK, 0, `features ${reply!.features}`);
  });

  vm('a cookie of the wrong size is EINVAL with the kernel extack pointing at it', async () => {
    const error = failure((await report(series)).shortCookie, 'a ping with a 4-byte cookie');
    assert.is(error.errno, 22);
    assert.is(error.code, 'EINVAL');
    assert.type(error.extack, 'string');
    assert.ok(error.extack!.length > 0);
    assert.is(error.extackOffset, 20, 'the cookie is the first attribute, after the 20 header bytes');
    assert.is(error.message, `usip ping: Invalid argument (EINVAL): ${error.extack}`);
  });

  vm('an attribute type beyond the policy is EINVAL with an extack', async () => {
    const error = failure((await report(series)).unknownAttribute, 'a ping with attribute 99');
    assert.is(error.code, 'EINVAL');
    assert.ok(error.extack, 'the kernel explains');
    assert.is(error.extackOffset, 20);
  });

  vm('a dump of ping, which has no dump handler, is EOPNOTSUPP', async () => {
    const error = failure((await report(series)).dumpOfPing, 'a dump of ping');
    assert.is(error.code, 'EOPNOTSUPP');
    assert.match(error.message, /^usip dump of command 1: /);
  });

  vm('concurrent pings on one socket each get their own cookie back', async () => {
    const { concurrentPings } = await report(series);
    assert.ok(concurrentPings.sent > 1);
    assert.is(concurrentPings.matched, concurrentPings.sent);
  });

  vm('calls after close() are EBADF', async () => {
    const { afterClose } = await report(series);
    assert.is(failure(afterClose, 'resolveFamily after close').code, 'EBADF');
  });

  vm.run();
}
