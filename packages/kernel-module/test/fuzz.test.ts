// A structure-aware fuzz test of usip.ko, on each supported kernel: one QEMU boot per kernel
// (slab_nomerge so the module's slab cache counts only its own objects, slub_debug=FZPU so an
// overflow or a use after free in any slab object is reported, KFENCE off so no object escapes the
// count) loads the module with allow_inject=1 and runs test/guest/fuzz.py, which sends at least
// 10,000 valid, semantically invalid and malformed messages to every operation, half as root and
// half as uid 65534, checks every answer against an oracle (for mount-get: the guest's
// /proc/self/mountinfo; for statfs: mountinfo and statfs(2) of each mount point; for listeners, events, stats and ping: a model of every listener, of the
// queue shares and of the arm failures it injects), runs its scenarios in between (share checks,
// arm checks, mount-get dumps read later by someone else), then closes every socket and checks
// that ping answers, stats is back to zero and the slab cache is empty. The harness then unloads
// the module and judges the kernel log. The seed is printed; USIP_FUZZ_SEED=N (or "random") and
// USIP_FUZZ_MESSAGES=N in the environment of the test change the run.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { formatVerdict, runInVm, type VmRunResult } from '@usip/vm';
import { builtModule, testKernels, vmTimeout, workspaceRoot } from './helpers.js';

const MIN_MESSAGES = 10_000;
/** The operations of the family that take requests; each must get its share of the messages. */
const REQUEST_OPERATIONS = ['ping', 'listener-register', 'listener-unregister', 'listener-get', 'inject', 'stats', 'mount-get', 'statfs'];
/** Successful mount-get answers compared with mountinfo, per user: do replies and whole dumps. */
const MIN_MOUNT_GETS = 20;
const MIN_MOUNT_DUMPS = 5;
/** What else the fuzzer sends: event commands, unknown commands and broken headers. */
const OTHER_TARGETS = ['mtab-event', 'storage-event', 'unknown-cmd', 'malformed-header'];
/** A guard, not the expected time: a run takes 5 to 8 minutes under TCG on a loaded machine. */
const TIMEOUT_MS = vmTimeout(1_080_000);
/** Above MIN_MESSAGES with a margin, and no more: each message costs 8 to 40 ms in the guest. */
const MESSAGES = 10_500;
/**
 * How often each rule of the module must have been seen at work (fuzz.py's run counters): the
 * share checks (with listeners that got the event, ones that missed it, and ones in another
 * network namespace), the arm checks (and features that went arm-failed), registrations refused
 * while arm failures were pending, mount-get dumps read later by their sender and by a reader in a
 * chroot and in another mount namespace, kern-log refusals, both stats scopes (and the exact
 * counts with nothing queued), ping's feature-status, events compared with what was injected,
 * injects dropped for a share or queue of 0, and parameter changes.
 */
const MIN_RUN_COUNTS: Record<string, number> = {
  share_checks: 20,
  share_recipients: 10,
  share_misses: 10,
  share_recipients_other_netns: 1,
  arm_checks: 2,
  arm_checks_failed_features: 2,
  refused_registrations_with_arm_failures: 5,
  deferred_same: 3,
  deferred_chroot: 1,
  deferred_mntns: 1,
  deferred_checked: 5,
  kern_log_eperm: 5,
  stats_host: 20,
  stats_user: 20,
  stats_exact: 20,
  pings_checked: 20,
  events_checked_against_inject: 100,
  inject_all_dropped: 1,
  param_changes: 5,
};
/** The module's slab caches (events are kmalloc'ed, counted in stats' objects). */
const SLAB_CACHES = { usip_listener: 0 };

interface Failure {
  seed: number;
  index?: number;
  what: string;
  sender?: string;
  op?: string;
  case?: string;
  message_hex?: string;
  message_len?: number;
  last_message?: string;
}

interface FuzzReport {
  seed: number;
  messages?: number;
  requested?: number;
  per_operation?: Record<string, { root: number; nobody: number }>;
  failures: Failure[];
  failure_count: number;
  crashed: string | null;
  fuzz_seconds?: number;
  run_stats?: Record<string, number>;
  /** Per operation: how many answers of each kind (ok, EINVAL, ...). */
  outcomes?: Record<string, Record<string, number>>;
  statfs?: {
    checked: Record<'root' | 'nobody', { do: number; dump: number }>;
    feature: boolean | null;
    mounts_with_truth: number;
    paths: number;
  };
  mount_get?: {
    checked: Record<'root' | 'nobody', { do: number; dump: number }>;
    mounts: number;
    unique_ids: number;
    kernel_has_unique_ids: boolean;
    mount_table: boolean | null;
    table_changed_during_run: boolean;
  };
  final?: {
    stats: Record<string, number> | null;
    ping: Record<string, unknown> | null;
    slabs: Record<string, number | null>;
    slab_nomerge: boolean;
  };
  last_messages?: string[];
}

interface Run {
  name: string;
  series: string;
  result: VmRunResult;
  report: FuzzReport | null;
}

function describe(f: Failure): string {
  const where = [f.sender, f.op && `${f.op}/${f.case}`].filter(Boolean).join(', ');
  const message = f.message_hex ? `\n      message (${f.message_len} bytes): ${f.message_hex.slice(0, 512)}` : '';
  const last = f.last_message ? `\n      last message sent: ${f.last_message.slice(0, 512)}` : '';
  return `  - seed ${f.seed}, message ${f.index ?? '?'}${where ? ` (${where})` : ''}: ${f.what}${message}${last}`;
}

const runs: Run[] = [];
for (const kernel of await testKernels()) {
  const ko = builtModule(kernel.release);
  if (!existsSync(ko)) throw new Error(`${ko} is missing: run NX_DAEMON=false npx nx run kernel-module:build`);
  const result = await runInVm({
    kernel,
    modules: [{ path: ko, params: ['allow_inject=1'] }],
    kernelArgs: ['slab_nomerge', 'slub_debug=FZPU', 'kfence.sample_interval=0'],
    command: ['/usr/bin/python3', 'packages/kernel-module/test/guest/fuzz.py'],
    cwd: workspaceRoot,
    // The guest's own deadline leaves time to copy the journal and do the accounting.
    env: { USIP_FUZZ_DEADLINE: String(TIMEOUT_MS / 1000 - 60), USIP_FUZZ_MESSAGES: String(MESSAGES) },
    timeoutMs: TIMEOUT_MS,
  });
  const file = join(result.resultsDir, 'fuzz-report.json');
  const report = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as FuzzReport) : null;
  runs.push({ name: kernel.release, series: kernel.series, result, report });
  // The summary (seed, messages per operation) belongs in the test log.
  const summary = result.output.split('\n').filter((l) => l.startsWith('fuzz.py:') || l.startsWith('  '));
  process.stdout.write(`${kernel.release}:\n${summary.join('\n')}\n`);
}

for (const { name, series, result, report } of runs) {
  const got = (): FuzzReport => {
    if (report === null) assert.unreachable(`${name}: fuzz.py wrote no report\n${formatVerdict(result)}\n${result.output.slice(-4000)}`);
    return report as FuzzReport;
  };

  test(`${name}: the fuzz run finished and wrote its report`, () => {
    const r = got();
    assert.equal(result.loadErrors, []);
    assert.is(r.crashed, null, `the run stopped early: ${r.crashed}\n${(r.last_messages ?? []).join('\n')}`);
    assert.ok(r.final, 'the report has no final accounting');
  });

  test(`${name}: at least ${MIN_MESSAGES} messages, to every operation, half as root and half as uid 65534`, () => {
    const r = got();
    const ops = r.per_operation ?? {};
    assert.ok((r.messages ?? 0) >= MIN_MESSAGES, `only ${r.messages} messages were sent`);
    for (const op of [...REQUEST_OPERATIONS, ...OTHER_TARGETS]) {
      const c = ops[op];
      assert.ok(c, `no message went to ${op}: ${JSON.stringify(ops)}`);
      const floor = REQUEST_OPERATIONS.includes(op) ? 100 : 5;
      assert.ok(c.root >= floor && c.nobody >= floor, `${op}: root ${c.root}, nobody ${c.nobody} (at least ${floor} each)`);
    }
    const root = Object.values(ops).reduce((n, c) => n + c.root, 0);
    const nobody = Object.values(ops).reduce((n, c) => n + c.nobody, 0);
    // Several messages share a datagram now and then, so the halves differ by a few.
    assert.ok(Math.abs(root - nobody) <= (root + nobody) / 100, `root sent ${root}, nobody ${nobody}`);
  });

  test(`${name}: mount-get answered root and nobody alike: do replies and dumps equal to mountinfo, and every refusal`, () => {
    const r = got();
    const m = r.mount_get;
    assert.ok(m, 'the report has no mount-get section');
    assert.is(m.mount_table, true, 'the module does not report the feature mount-table');
    assert.ok(m.mounts > 0, 'mountinfo was empty');
    assert.not.ok(m.table_changed_during_run, 'the guest\'s mount table changed during the run: the oracle was wrong');
    for (const side of ['root', 'nobody'] as const) {
      const c = m.checked[side];
      assert.ok(c.do >= MIN_MOUNT_GETS, `${side}: only ${c.do} mount-get replies were checked against mountinfo`);
      assert.ok(c.dump >= MIN_MOUNT_DUMPS, `${side}: only ${c.dump} mount-get dumps were checked against mountinfo`);
    }
    // 6.8+ kernels have unique mount ids (mount-get by unique-id works); 6.1 refuses them.
    const hasUnique = series !== '6.1';
    assert.is(m.kernel_has_unique_ids, hasUnique);
    assert.is(m.unique_ids > 0, hasUnique, `unique ids learnt from the first dump: ${m.unique_ids}`);
    const outcomes = r.outcomes?.['mount-get'] ?? {};
    for (const kind of ['ok', 'EINVAL', 'ENOENT', ...(hasUnique ? [] : ['EOPNOTSUPP'])]) {
      assert.ok((outcomes[kind] ?? 0) > 0, `no mount-get was answered ${kind}: ${JSON.stringify(outcomes)}`);
    }
  });

  test(`${name}: statfs answered root and nobody alike: do replies and dumps equal to mountinfo and statfs(2), and every refusal`, () => {
    const r = got();
    const st = r.statfs;
    assert.ok(st, 'the report has no statfs section');
    assert.is(st.feature, true, 'the module does not report the feature statfs');
    assert.ok(st.mounts_with_truth > 0 && st.paths > 0, JSON.stringify(st));
    for (const side of ['root', 'nobody'] as const) {
      const c = st.checked[side];
      assert.ok(c.do >= MIN_MOUNT_GETS, `${side}: only ${c.do} statfs replies were checked`);
      assert.ok(c.dump >= MIN_MOUNT_DUMPS, `${side}: only ${c.dump} statfs dumps were checked`);
    }
    const counts = r.run_stats ?? {};
    // Numbers compared with statfs(2): the stable ones of every mount, all of the fuzzer's idle tmpfs.
    assert.ok((counts.statfs_numbers_compared ?? 0) >= 200, `statfs_numbers_compared ${counts.statfs_numbers_compared}`);
    assert.ok((counts.statfs_exact_compared ?? 0) >= 100, `statfs_exact_compared ${counts.statfs_exact_compared}`);
    const outcomes = r.outcomes?.['statfs'] ?? {};
    for (const kind of ['ok', 'EINVAL', 'ENOENT', 'ERANGE', ...(series === '6.1' ? ['EOPNOTSUPP'] : [])]) {
      assert.ok((outcomes[kind] ?? 0) > 0, `no statfs was answered ${kind}: ${JSON.stringify(outcomes)}`);
    }
  });

  test(`${name}: share checks, arm checks, deferred dumps, kern-log refusals, both stats scopes and feature-status were exercised`, () => {
    const r = got();
    const counts = r.run_stats ?? {};
    const short = Object.entries(MIN_RUN_COUNTS).filter(([key, min]) => (counts[key] ?? 0) < min);
    assert.equal(short.map(([key, min]) => `${key}: ${counts[key] ?? 0} < ${min}`), [], JSON.stringify(counts));
    // A deferred dump's reader built parts of it with mounts in them itself: the first part was
    // built when the dump started, the last may hold only NLMSG_DONE.
    assert.ok((counts.deferred_reader_parts ?? 0) >= 3, `deferred_reader_parts ${counts.deferred_reader_parts}`);
  });

  test(`${name}: every answer was well-formed and what the oracle allows (seed and message of each failure below)`, () => {
    const r = got();
    const listing = r.failures.map(describe).join('\n');
    assert.is(r.failure_count, 0, `${r.failure_count} unexpected outcome(s) with seed ${r.seed}${r.failure_count > r.failures.length ? ` (the first ${r.failures.length})` : ''}:\n${listing}`);
    assert.is(result.exitCode, 0, formatVerdict(result));
  });

  test(`${name}: afterwards ping answers, stats is back to zero and the slab caches are empty`, () => {
    const final = got().final;
    assert.ok(final);
    assert.is(final.ping?.['protocol-version'], 1, JSON.stringify(final.ping));
    assert.ok(final.stats, 'stats did not answer');
    for (const key of ['listeners', 'notifiers', 'queued', 'objects']) {
      assert.is(final.stats[key], 0, `stats ${key}: ${JSON.stringify(final.stats)}`);
    }
    const status = (final.ping?.['feature-status'] ?? []) as { feature: number; available: number }[];
    const available = status.filter((s) => s.available === 1).reduce((mask, s) => mask | s.feature, 0);
    assert.ok(status.length > 0, `ping has no feature-status: ${JSON.stringify(final.ping)}`);
    assert.is(final.ping?.features, available, `features is not the mask of the available ones: ${JSON.stringify(final.ping)}`);
    assert.ok(final.slab_nomerge, 'the guest was booted without slab_nomerge');
    assert.equal(final.slabs, SLAB_CACHES);
  });

  test(`${name}: the module unloads cleanly and the kernel log has no oops, BUG, WARN or slab report`, () => {
    assert.ok(result.unloaded, formatVerdict(result));
    assert.equal(result.problems, [], formatVerdict(result));
  });
}

test.run();
