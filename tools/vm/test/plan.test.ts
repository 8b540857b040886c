import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { renderPlan, shellQuote, type GuestPlan } from '../src/plan.js';

const tricky = ["it's", '$(id -u)', '`uname`', 'a b\tc', '', 'line\nbreak', '"quoted"', 'back\\slash', 'ünïcødé', "'"];

/** What /bin/sh makes of the words, as an argv. */
function shellWords(script: string): string[] {
  const out = execFileSync('/bin/sh', ['-c', `${script}\nfor a; do printf '%s\\0' "$a"; done`], { encoding: 'utf8' });
  return out.split('\0').slice(0, -1);
}

test('shellQuote: the shell reads back exactly the original strings', () => {
  assert.equal(shellWords(`set -- ${tricky.map(shellQuote).join(' ')}`), tricky);
});

test('shellQuote: a NUL byte is refused with a clear error', () => {
  assert.throws(() => shellQuote('a\0b'), /a NUL byte cannot be passed to the guest/);
});

const basePlan: GuestPlan = {
  release: '6.1.0-56-amd64',
  modulesTree: '/root/.cache/usip/kernels/6.1.0-56-amd64/lib/modules/6.1.0-56-amd64',
  deadlineSeconds: 295.7,
  unload: true,
  modules: [
    { name: 'usip', guestPath: '/work/build/6.1.0-56-amd64/usip.ko', params: ['test_inject=1', "label=it's here"] },
    { name: 'other_mod', guestPath: '/tmp/x y/other.ko', params: [] },
  ],
  env: { HOME: '/root', PATH: '/usr/bin:/bin', USIP_NOTE: 'a $b `c` "d"' },
  cwd: '/work/main/packages/kernel-module',
  command: ['node', '-e', "console.log('hi')", ...tricky],
  tmpBinds: ['ci-clone', "it's here"],
  openDirs: ['/root', "/tmp/tmp.x y/it's"],
};

test('renderPlan: variables, module loads and the exact command argv, as the guest shell runs them', () => {
  const dir = mkdtempSync(join(tmpdir(), 'usip-plan-'));
  try {
    // Stands in for busybox: records the argv that guest_command execs.
    const recorder = join(dir, 'busybox');
    writeFileSync(recorder, `#!/bin/sh\nfor a; do printf '%s\\0' "$a"; done\n`, { mode: 0o755 });
    const plan = join(dir, 'plan.sh');
    writeFileSync(plan, renderPlan(basePlan));
    const script = [
      `B=${shellQuote(recorder)}`,
      `. ${shellQuote(plan)}`,
      'load_module() { printf "load"; for a; do printf "|%s" "$a"; done; printf "\\n"; }',
      'keep_tmp_entry() { printf "keep|%s|%s\\n" "$#" "$1"; }',
      'open_dir() { printf "open|%s|%s\\n" "$#" "$1"; }',
      'printf "%s\\n" "$run_kver" "$run_modules_tree" "$run_deadline" "$run_unload" "$run_init"',
      'load_plan_modules',
      'keep_plan_tmp_entries',
      'open_plan_dirs',
      'printf -- "--argv--\\n"',
      'guest_command',
    ].join('\n');
    const out = execFileSync('/bin/sh', ['-c', script], { encoding: 'utf8' });
    const [vars = '', argvText = ''] = out.split('--argv--\n');
    assert.equal(vars.split('\n'), [
      '6.1.0-56-amd64',
      '/root/.cache/usip/kernels/6.1.0-56-amd64/lib/modules/6.1.0-56-amd64',
      '295',
      '1',
      'sh',
      "load|usip|/work/build/6.1.0-56-amd64/usip.ko|test_inject=1|label=it's here",
      'load|other_mod|/tmp/x y/other.ko',
      'keep|1|ci-clone',
      "keep|1|it's here",
      'open|1|/root',
      "open|1|/tmp/tmp.x y/it's",
      '',
    ]);
    // "$B setsid $B env -i ... /bin/sh -c ... usip-vm CWD COMMAND...", where $B is the recorder,
    // which prints its arguments. No chroot: the guest's root is the host's.
    assert.equal(argvText.split('\0').slice(0, -1), [
      'setsid',
      recorder,
      'env',
      '-i',
      'HOME=/root',
      'PATH=/usr/bin:/bin',
      'USIP_NOTE=a $b `c` "d"',
      '/bin/sh',
      '-c',
      'cd -- "$1" || exit 126; shift; exec "$@"',
      'usip-vm',
      '/work/main/packages/kernel-module',
      'node',
      '-e',
      "console.log('hi')",
      ...tricky,
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('renderPlan: init "systemd" reaches the guest as run_init', () => {
  const dir = mkdtempSync(join(tmpdir(), 'usip-plan-'));
  try {
    writeFileSync(join(dir, 'plan.sh'), renderPlan({ ...basePlan, init: 'systemd' }));
    assert.is(execFileSync('/bin/sh', ['-c', '. "$1"; printf %s "$run_init"', 'sh', join(dir, 'plan.sh')], { encoding: 'utf8' }), 'systemd');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('renderPlan: bad input is refused with a message naming it', () => {
  assert.throws(() => renderPlan({ ...basePlan, init: 'upstart' as GuestPlan['init'] }), /init must be one of sh, systemd \(got "upstart"\)/);
  assert.throws(() => renderPlan({ ...basePlan, command: [] }), /no command to run in the guest/);
  assert.throws(() => renderPlan({ ...basePlan, cwd: 'relative/dir' }), /working directory must be absolute: relative\/dir/);
  assert.throws(() => renderPlan({ ...basePlan, env: { 'BAD-NAME': 'x' } }), /bad environment variable name "BAD-NAME"/);
  assert.throws(
    () => renderPlan({ ...basePlan, modules: [{ name: 'a;rm', guestPath: '/x.ko', params: [] }] }),
    /bad module name "a;rm"/,
  );
  for (const entry of ['', 'a/b', '..']) assert.throws(() => renderPlan({ ...basePlan, tmpBinds: [entry] }), /bad \/tmp entry/);
  for (const dir of ['/', 'relative']) {
    assert.throws(() => renderPlan({ ...basePlan, openDirs: [dir] }), /a directory to open must be absolute and not \//);
  }
});

test.run();
