// `usip completion bash|zsh|fish`, generated from the commander definitions: the bash script
// really completes (a real bash calls its function as bash does, with COMP_LINE, COMP_POINT,
// COMP_WORDS and COMP_CWORD, and COMPREPLY is read back), fish's really completes (`complete
// -C`), and zsh's parses (`zsh -n`; fish -n too). zsh and fish come from tools/setup/system-deps.sh.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const bin = fileURLToPath(new URL('../dist/bin.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'usip-completion-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

function script(shell: string): string {
  const path = join(dir, `usip.${shell}`);
  writeFileSync(path, execFileSync(process.execPath, [bin, 'completion', shell], { encoding: 'utf8' }));
  return path;
}

const bashScript = script('bash');

/** What bash offers for `line` (the cursor at its end): COMPREPLY of the generated function. */
function bash(line: string): string[] {
  const driver = `
source "$1"
COMP_LINE=$2
COMP_POINT=\${#2}
# bash's own split of the line: at blanks, and = and : are words of their own.
read -ra COMP_WORDS <<<"$(sed -E 's/([=:])/ \\1 /g' <<<"$2")"
[[ $2 == *[[:space:]=:] ]] && COMP_WORDS+=("")
COMP_CWORD=$(( \${#COMP_WORDS[@]} - 1 ))
COMPREPLY=()
_usip_completion usip "\${COMP_WORDS[COMP_CWORD]}" "\${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\\n' "\${COMPREPLY[@]}"
`;
  const out = execFileSync('bash', ['-c', driver, 'bash', bashScript, line], { encoding: 'utf8', cwd: dir });
  return out.split('\n').filter((l) => l !== '');
}

test('bash: the commands, then each command\'s options, from the definitions', () => {
  assert.equal(bash('usip mo'), ['mounts', 'mount']);
  assert.ok(bash('usip ').includes('completion'));
  assert.equal(bash('usip mounts --'), ['--output', '--noheadings', '--raw', '--json', '--list', '--bytes', '--types', '--target', '--dump', '--backend', '--help']);
  assert.equal(bash('usip watch --po'), ['--poll=']);
  // df's -h is --human-readable, its help --help alone.
  assert.ok(bash('usip df -').includes('--human-readable'));
  assert.equal(bash('usip df --he'), ['--help']);
});

test('bash: values of enums (--backend, completion SHELL, listen notifiers) and of column lists, item by item', () => {
  assert.equal(bash('usip mounts --backend k'), ['kernel']);
  assert.equal(bash('usip status --backend '), ['module', 'kernel', 'mountinfo']);
  assert.equal(bash('usip completion '), ['bash', 'zsh', 'fish']);
  assert.equal(bash('usip mounts -o TA'), ['TARGET']);
  assert.equal(bash('usip mounts -o target,so'), ['target,SOURCE']);
  assert.equal(bash('usip devices -o NAME,'), ['NAME,NAME', 'NAME,MAJ:MIN', 'NAME,RM', 'NAME,SIZE', 'NAME,RO', 'NAME,TYPE', 'NAME,MOUNTPOINTS', 'NAME,MODEL', 'NAME,SERIAL', 'NAME,ROTA', 'NAME,LOG-SEC', 'NAME,PHY-SEC', 'NAME,FSTYPE']);
  assert.equal(bash('usip watch --poll=mo'), ['mount', 'move']);
  assert.equal(bash('usip watch -o +OLD-'), ['+OLD-TARGET', '+OLD-OPTIONS']);
  assert.equal(bash('usip df --output=source,fs'), ['source,fstype']);
  // bash replaces only the part of the word after its last ":" or "=".
  assert.equal(bash('usip mounts -o MAJ:'), ['MIN']);
  assert.equal(bash('usip listen --notifier storage:low'), ['low-space']);
});

test('bash: paths where an option or argument is one', () => {
  writeFileSync(join(dir, 'somefile'), '');
  assert.equal(bash('usip mounts -T somef'), ['somefile']);
  assert.equal(bash('usip df somef'), ['somefile']);
  assert.equal(bash('usip mounts --types somef'), []);
});

test('zsh and fish scripts parse; fish really completes', () => {
  for (const shell of ['zsh', 'fish']) {
    const path = script(shell);
    const check = spawnSync(shell, ['-n', path], { encoding: 'utf8' });
    assert.is(check.error, undefined, `${shell} is needed (tools/setup/system-deps.sh installs it)`);
    assert.is(check.status, 0, `${shell} -n: ${check.stderr}`);
  }
  const fish = (line: string) =>
    execFileSync('fish', ['-c', `source ${script('fish')}; complete -C '${line}'`], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => l.split('\t')[0]);
  assert.equal(fish('usip mo'), ['mount', 'mounts']);
  assert.equal(fish('usip watch --poll='), ['--poll=mount', '--poll=move', '--poll=remount', '--poll=umount']);
  assert.ok(fish('usip mounts -o TARGET,SO').includes('TARGET,SOURCE'));
  assert.equal(fish('usip mounts --backend '), ['kernel', 'module', 'mountinfo']);
});

test('usip completion of an unknown shell is a usage error naming the choices', () => {
  const r = spawnSync(process.execPath, [bin, 'completion', 'tcsh'], { encoding: 'utf8' });
  assert.is(r.status, 2);
  assert.match(r.stderr, "usip: command-argument value 'tcsh' is invalid for argument 'shell'. Allowed choices are bash, zsh, fish.");
});

test.run();
