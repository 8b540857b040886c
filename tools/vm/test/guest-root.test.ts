// Real boots of both kernels: what the guest's root lets an unprivileged process and a
// container test do. A workspace whose ancestors only root can enter (a clone in a `mktemp -d`
// directory, or in /root) must still be readable by uid 65534, and the guest's root must be a
// real mount-namespace root, so that `unshare -U` works.
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { resolveKernels, runInVm, type Kernel } from '../src/index.js';
import { workspaceRoot } from '../src/paths.js';

const closedCheck = fileURLToPath(new URL('fixtures/closed-check.sh', import.meta.url));
const usernsCheck = fileURLToPath(new URL('fixtures/userns-check.sh', import.meta.url));
const AS_NOBODY = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--'];

let kernels: Kernel[] = [];

/** A closed directory whose name the guest's shell must keep in one piece. */
const INNER = "in'ner dir";

/**
 * BASE (0700, made by mkdtemp in `parent`) / INNER (0700) / ws (0755): a fake workspace with a
 * script that imports a package from its node_modules and reads a file next to it; next to
 * INNER, a file anyone may read, one only root may read, and a symlink.
 */
function closedWorkspace(parent: string): { base: string; ws: string } {
  const base = mkdtempSync(join(parent, 'usip-vm-closed-'));
  chmodSync(base, 0o700);
  const ws = join(base, INNER, 'ws');
  mkdirSync(join(ws, 'node_modules', 'fake-dep'), { recursive: true });
  chmodSync(join(base, INNER), 0o700);
  for (const dir of [ws, join(ws, 'node_modules'), join(ws, 'node_modules', 'fake-dep')]) chmodSync(dir, 0o755);
  const file = (path: string, text: string, mode = 0o644) => {
    writeFileSync(path, text);
    chmodSync(path, mode);
  };
  file(join(ws, 'data.txt'), 'data read by uid 65534\n');
  file(join(ws, 'node_modules', 'fake-dep', 'package.json'), '{ "name": "fake-dep", "type": "module", "exports": "./index.js" }\n');
  file(join(ws, 'node_modules', 'fake-dep', 'index.js'), "export const greeting = 'fake-dep imported';\n");
  file(
    join(ws, 'main.mjs'),
    [
      "import { readFileSync } from 'node:fs';",
      "import { greeting } from 'fake-dep';",
      'console.log(`node: ${greeting}, ${readFileSync(new URL("data.txt", import.meta.url), "utf8").trim()}`);',
      '',
    ].join('\n'),
  );
  copyFileSync(closedCheck, join(ws, 'check.sh'));
  chmodSync(join(ws, 'check.sh'), 0o755);
  file(join(base, 'outer.txt'), 'a file next to the workspace\n');
  file(join(base, 'secret.txt'), 'only root reads this\n', 0o600);
  symlinkSync(INNER, join(base, 'link'));
  return { base, ws };
}

test('resolveKernels("all")', async () => {
  kernels = await resolveKernels('all');
  assert.equal(kernels.map((k) => k.selector), ['6.1', '6.12', '7']);
});

for (const series of ['6.1', '6.12', '7']) {
  const kernelOf = () => {
    const k = kernels.find((x) => x.selector === series);
    if (!k) throw new Error(`kernel ${series} was not resolved`);
    return k;
  };

  for (const where of ['tmp', 'home'] as const) {
    test(`${series}: uid 65534 reads and runs a workspace under a 0700 ${where === 'tmp' ? 'temporary' : 'home'} directory; nothing else opens up`, async () => {
      const homeBefore = readdirSync(homedir());
      const { base, ws } = closedWorkspace(where === 'tmp' ? tmpdir() : homedir());
      try {
        const r = await runInVm({
          kernel: kernelOf(),
          // Root first tries to write in the opened directory, which stays read-only like the rest.
          command: [
            'sh', '-c', 'if touch "$1/new-file" 2>/dev/null; then echo "root: writable"; else echo "root: read-only"; fi; shift; exec "$@"',
            'sh', base, ...AS_NOBODY, 'sh', join(ws, 'check.sh'), base, ws,
          ],
          cwd: ws,
          timeoutMs: 120_000,
        });
        assert.equal(r.failures, [], r.output);
        const lines = r.output.split('\n');
        assert.equal(lines.slice(0, -2), [
          'root: read-only',
          `uid=65534 gid=65534 pwd=${ws}`,
          'data read by uid 65534',
          'node: fake-dep imported, data read by uid 65534',
          'a file next to the workspace',
          `link=${INNER}`,
          `entries=${INNER} link outer.txt secret.txt `,
          // The modes of what lies in an opened directory are the host's: this one stays closed.
          'secret=unreadable',
        ]);
        if (where === 'home') {
          // Everything else in the home directory stays visible (.cargo, .pyenv, ...).
          const seen = new Set((lines.at(-2) ?? '').replace(/^home=/, '').trim().split(' '));
          const homeAfter = new Set(readdirSync(homedir()));
          for (const entry of homeBefore.filter((e) => homeAfter.has(e))) assert.ok(seen.has(entry), `${homedir()}/${entry} is visible in the guest`);
          assert.ok(seen.has(base.slice(homedir().length + 1)), 'the test directory itself');
        }
        assert.is(lines.at(-1), '');
      } finally {
        rmSync(base, { recursive: true, force: true });
      }
    });
  }

  test(`${series}: unshare -Urnpfm --mount-proc works in the guest, as root and as uid 65534`, async () => {
    const r = await runInVm({
      kernel: kernelOf(),
      command: ['sh', '-c', 'sh "$1" && echo --- && shift && exec "$@"', 'sh', usernsCheck, ...AS_NOBODY, 'sh', usernsCheck],
      cwd: workspaceRoot,
      timeoutMs: 120_000,
    });
    assert.equal(r.failures, [], r.output);
    const facts = (uid: number) => [
      `caller uid=${uid}`,
      'inside uid=0 gid=0 pid=1',
      `uid_map=0 ${uid} 1`,
      'proc=own',
      'new namespaces: user mnt pid net',
      'links=lo ',
    ];
    assert.equal(r.output.split('\n'), [...facts(0), '---', ...facts(65534), '']);
  });
}

test.run();
