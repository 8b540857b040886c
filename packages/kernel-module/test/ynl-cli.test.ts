// usip.ko driven by the kernel's own YNL CLI with our spec, on each supported kernel: the spec is
// valid YNL that the kernel's tooling loads (it validates it against genetlink.yaml first) and
// that matches the module on the wire. The CLI (tools/net/ynl/cli.py; pyynl/cli.py in newer
// kernels) and its schema come from Debian's linux-source of the newest supported series that
// has them, fetched and cached by scripts/fetch-kernel-ynl.sh: linux-source-6.1 has no YNL
// tooling at all, so the 6.1 guest runs the newer series' CLI. One QEMU boot per kernel runs
// test/guest/ynl_cli_checks.py as root (ping, a mount-get dump against /proc/self/mountinfo, and a
// listener-register that receives the mtab-event of a tmpfs mounted once it is registered); the
// guest writes one JSON line per check to $USIP_VM_RESULTS/ynl-cli-checks.jsonl.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { formatVerdict, runInVm } from '@usip/vm';
import { PROTOCOL_VERSION } from '../../client/src/generated/usip.js';
import { builtModule, GuestReport, moduleRoot, moduleVersion, supportedKernels, workspaceRoot } from './helpers.js';

// Must match ynl_cli_checks.py.
const COOKIE = 0x123456789abc;
const NOTIFIER_CMD = 7;
const SPEC = 'packages/kernel-module/spec/usip.yaml';

interface KernelYnl {
  series: string;
  version: string;
  schema: string;
  cli: string;
}

/** The kernel's YNL tooling of one series (schema and cli are '' when the series has none). */
function fetchKernelYnl(series: string): KernelYnl {
  const script = join(moduleRoot, 'scripts/fetch-kernel-ynl.sh');
  const r = spawnSync('sh', [script, series], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${script} ${series} failed (${r.status}):\n${r.stderr}`);
  const field = (name: string): string => new RegExp(`^${name}=(.*)$`, 'm').exec(r.stdout)?.[1] ?? '';
  return { series, version: field('version'), schema: field('schema'), cli: field('cli') };
}

interface CliRun {
  argv: string[];
  returncode: number;
  stdout: string;
  stderr: string;
  seconds: number;
  json?: unknown[];
}
interface MountLine {
  mount_id: number;
  mount_point: string;
  fs_type: string;
}
interface MountDump extends CliRun {
  mounts: { mount_id?: number; mount_point?: string; fs_type?: string }[] | null;
  mountinfo_before: MountLine[];
  mountinfo_after: MountLine[];
}
type Attrs = Record<string, unknown>;
interface ListenerRun {
  argv: string[];
  where: string;
  padding: number;
  registered_after_s: number;
  listener: Attrs | null;
  mount?: MountLine | null;
  delivered_after_s?: number;
  listener_after_mount?: Attrs | null;
  group_copy_seen?: boolean;
  killed?: boolean;
  returncode: number;
  stdout: string;
  stderr: string;
  reply: Attrs | null;
  notifications: { name?: string; msg?: Attrs }[];
}

const kernels = await supportedKernels();
// Newest last, as SUPPORTED_SERIES orders them: the newest series that ships the CLI and schema.
const tooling = [...new Set(kernels.map((k) => k.series))].map(fetchKernelYnl);
const ynl = tooling.filter((t) => t.cli !== '' && t.schema !== '').pop();
if (ynl === undefined) {
  throw new Error(`no supported series ships the kernel's YNL CLI and genetlink.yaml: ${tooling.map((t) => `linux-source-${t.series} ${t.version}`).join(', ')}`);
}
const ynlSource = `linux-source-${ynl.series} ${ynl.version}`;

const reports: GuestReport[] = [];
for (const kernel of kernels) {
  const ko = builtModule(kernel.release);
  if (!existsSync(ko)) throw new Error(`${ko} is missing: run NX_DAEMON=false npx nx run kernel-module:build`);
  const run = await runInVm({
    kernel,
    modules: [ko],
    command: ['/usr/bin/python3', 'packages/kernel-module/test/guest/ynl_cli_checks.py', '--cli', ynl.cli, '--schema', ynl.schema, '--spec', SPEC],
    cwd: workspaceRoot,
    timeoutMs: 600_000,
  });
  const file = join(run.resultsDir, 'ynl-cli-checks.jsonl');
  reports.push(new GuestReport(run, existsSync(file) ? readFileSync(file, 'utf8') : null));
}

/** A CLI run that must have succeeded, shown whole when it did not. */
function succeeded(run: { returncode: number; stderr: string; stdout: string }, what: string): void {
  assert.is(run.returncode, 0, `${what} exited ${run.returncode}:\n${run.stderr}\n${run.stdout}`);
}

for (const report of reports) {
  const { run } = report;
  const own = tooling.find((t) => t.series === run.kernel.series);
  const ownTooling = own !== undefined && own.cli !== '' && own.schema !== '';
  const whose = ownTooling ? `${ynl.series}'s` : `${ynl.series}'s (linux-source-${run.kernel.series} ships no YNL CLI or genetlink.yaml)`;
  const test = suite(`the kernel's YNL CLI, ${whose}, with ${SPEC} in the ${run.kernel.series} guest (${run.kernel.release}; ${ynlSource})`);

  test('the guest loaded usip.ko and ran every group of checks to the end', () => {
    assert.equal(run.loadErrors, [], formatVerdict(run));
    assert.is(run.timedOut, false, `timed out:\n${run.output}`);
    assert.is(run.exitCode, 0, `${formatVerdict(run)}\n${run.output}`);
    assert.equal(report.errors.map((e) => `${e.check}: ${e.error}`), []);
    assert.is(report.get<boolean>('end'), true);
    assert.is(report.get<{ uid: number }>('start').uid, 0, 'the checks run as root');
    assert.ok(run.ok, formatVerdict(run));
  });

  test('--do ping: the module answers the CLI with its versions, release and the cookie', () => {
    const ping = report.get<CliRun>('ping');
    succeeded(ping, 'cli.py --do ping');
    assert.is(ping.json?.length, 1, ping.stdout);
    const reply = ping.json?.[0] as Attrs;
    assert.is(reply['protocol-version'], PROTOCOL_VERSION, ping.stdout);
    assert.is(reply['module-version'], moduleVersion);
    assert.is(reply['kernel-release'], run.kernel.release);
    assert.is(reply.cookie, COOKIE);
    // Flags decode to their names through the spec's definitions.
    assert.ok(Array.isArray(reply.features) && (reply.features as string[]).includes('netns'), ping.stdout);
  });

  test('--dump mount-get: the mounts /proc/self/mountinfo lists, by mount id, with their mount points and types', () => {
    const dump = report.get<MountDump>('mount-dump');
    succeeded(dump, 'cli.py --dump mount-get');
    assert.ok(dump.mounts !== null, `no list in the output:\n${dump.stdout}`);
    assert.equal(dump.mountinfo_after, dump.mountinfo_before, 'the mount table changed during the dump');
    const byId = (mounts: { mount_id?: number }[]) => [...mounts].sort((a, b) => (a.mount_id ?? 0) - (b.mount_id ?? 0));
    assert.ok(dump.mountinfo_before.length > 3, `mountinfo has ${dump.mountinfo_before.length} lines`);
    assert.equal(
      byId(dump.mounts ?? []).map((m) => m.mount_id),
      byId(dump.mountinfo_before).map((m) => m.mount_id),
      'mount ids',
    );
    assert.equal(byId(dump.mounts ?? []), byId(dump.mountinfo_before), 'mount points and file system types');
  });

  test('listener-register: the CLI registers a listener with an mtab notifier and is its owner in listener-get', () => {
    const l = report.get<ListenerRun>('listener');
    assert.ok(l.listener, `the listener never showed in listener-get (${l.registered_after_s} s); CLI exit ${l.returncode}:\n${l.stderr}\n${l.stdout}`);
    const reply = l.reply ?? {};
    assert.is(reply.id, l.listener.id, `reply ${JSON.stringify(reply)}`);
    assert.equal(reply.group, ['mtab']);
    assert.is(reply.scope, 'mnt-ns');
    assert.equal(l.listener.notifier, [{ type: 'mtab', action: 'mount', cmd: NOTIFIER_CMD, flags: ['notify'], 'path-prefix': l.where }]);
  });

  test('...and receives the mtab-event of the tmpfs mounted once the listener was registered', () => {
    const l = report.get<ListenerRun>('listener');
    succeeded(l, 'cli.py --subscribe mtab --sleep 2 --do listener-register');
    assert.not.ok(l.killed, 'the CLI had to be killed');
    assert.ok(l.mount, `the tmpfs at ${l.where} is not in mountinfo`);
    assert.ok((l.listener_after_mount?.delivered as number) >= 1, `the event was not delivered to the listener: ${JSON.stringify(l.listener_after_mount)}`);
    const events = l.notifications.filter((n) => n.name === 'mtab-event');
    // The copy sent to the listener's socket carries its id; the mtab group's copy does not.
    const unicast = events.filter((n) => n.msg?.['listener-id'] === l.reply?.id);
    assert.is(unicast.length, 1, `notifications: ${JSON.stringify(l.notifications)}\nstdout:\n${l.stdout}\nstderr:\n${l.stderr}`);
    const msg = unicast[0]?.msg ?? {};
    assert.equal(
      { type: msg.type, action: msg.action, cmd: msg.cmd, path: msg.path, 'fs-type': msg['fs-type'], source: msg.source, 'mount-id': msg['mount-id'] },
      { type: 'mtab', action: 'mount', cmd: NOTIFIER_CMD, path: l.where, 'fs-type': 'tmpfs', source: 'usip-ynl-cli', 'mount-id': l.mount?.mount_id },
    );
    assert.ok(typeof msg.seq === 'number' && typeof msg.timestamp === 'number', JSON.stringify(msg));
  });

  test("...and the mtab group's copy of it (no listener-id): --subscribe mtab made the CLI, root, a member", () => {
    const l = report.get<ListenerRun>('listener');
    assert.ok(l.group_copy_seen, 'the script, a member of mtab too, never saw the group copy');
    const unicast = l.notifications.find((n) => n.name === 'mtab-event' && n.msg?.['listener-id'] !== undefined);
    const copies = l.notifications.filter((n) => n.name === 'mtab-event' && n.msg?.['listener-id'] === undefined && n.msg?.path === l.where);
    assert.is(copies.length, 1, `notifications: ${JSON.stringify(l.notifications)}`);
    const { cmd: _cmd, 'listener-id': _id, ...shared } = unicast?.msg ?? {};
    assert.equal(copies[0]?.msg, shared, 'the group copy is the listener\'s event without listener-id and cmd');
  });

  test.run();
}
