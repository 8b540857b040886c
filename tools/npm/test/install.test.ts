// The packed tarballs installed into an empty project outside the repository, as a user would
// (their registry dependencies from npm's cache or the registry): `npx usip mounts --json`, a
// short ESM script using @usip/client, `usip-agent`, and the error that names the platform when
// the platform package is gone. No usip module is needed: the mount table comes from the kernel.
import { execFileSync, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { packAndUnpack, workspaceRoot, type PackRun } from './helpers.js';

const PLATFORM_DIR = 'node_modules/@usip/netlink-native-linux-x64-gnu';
let run: PackRun;
let project: string;

test.before(() => {
  run = packAndUnpack();
  project = join(run.root, 'project');
  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'usip-install-check', private: true, type: 'module' }));
  const tarballs = [...run.packages.values()].map((p) => p.filename);
  execFileSync('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', ...tarballs], {
    cwd: project,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
});
test.after(() => run?.remove());

function inProject(command: string, args: string[]): SpawnSyncReturns<string> {
  // No NODE_OPTIONS from the test runner (tsx): the installed code runs as a user's would.
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  return spawnSync(command, args, { cwd: project, encoding: 'utf8', env, maxBuffer: 64 << 20 });
}

function ok(result: SpawnSyncReturns<string>, what: string): string {
  assert.is(result.status, 0, `${what} exited ${result.status}: ${result.stderr}${result.stdout.slice(0, 2000)}`);
  return result.stdout;
}

interface Filesystem {
  target: string;
  source: string;
  fstype: string;
  children?: Filesystem[];
}

/** The namespace's root mount as /proc/self/mountinfo has it (the last mount on "/"). */
function mountinfoRoot(): { id: number; fsType: string; source: string } {
  const lines = readFileSync('/proc/self/mountinfo', 'utf8').trim().split('\n').map((l) => l.split(' '));
  const root = lines.filter((f) => f[4] === '/').at(-1)!;
  const after = root.indexOf('-');
  return { id: Number(root[0]), fsType: root[after + 1]!, source: root[after + 2]! };
}

/** The kernel backend needs listmount/statmount: Linux 6.8. */
function kernelHasListmount(): boolean {
  const [major, minor] = release().split('.').map(Number) as [number, number];
  return major > 6 || (major === 6 && minor >= 8);
}

test('the install has the five packages and no other @usip one', () => {
  const names = execFileSync('npm', ['ls', '--json', '--all'], { cwd: project, encoding: 'utf8' });
  const tree = JSON.parse(names) as { dependencies: Record<string, { version: string; dependencies?: Record<string, unknown> }> };
  assert.equal(Object.keys(tree.dependencies).filter((n) => n.startsWith('@usip/')).sort(), [...run.packages.keys()].sort());
  assert.ok(existsSync(join(project, PLATFORM_DIR, 'usip-netlink.linux-x64-gnu.node')));
  // commander came from the registry (or npm's cache of it), not from the repository.
  assert.ok(existsSync(join(project, 'node_modules/commander/package.json')));
});

test('npx usip --version and usip-agent --version run from the install', () => {
  assert.is(ok(inProject('npx', ['--no', '--', 'usip', '--version']), 'usip --version').trim(), '0.1.0');
  assert.match(ok(inProject('npx', ['--no', '--', 'usip-agent', '--version']), 'usip-agent --version'), '0.1.0');
});

test('npx usip mounts --json: the mount table, with the root mount as mountinfo has it', () => {
  const out = JSON.parse(ok(inProject('npx', ['--no', '--', 'usip', 'mounts', '--json']), 'usip mounts --json')) as { filesystems: Filesystem[] };
  const root = out.filesystems.find((f) => f.target === '/');
  assert.ok(root, `no root mount in ${JSON.stringify(out).slice(0, 200)}`);
  const expected = mountinfoRoot();
  assert.is(root!.fstype, expected.fsType);
  assert.is(root!.source, expected.source);
  assert.ok((root!.children ?? []).some((c) => c.target === '/proc'), '/proc is not below /');
});

test('usip status --json: without the module the mount table comes from the kernel backend', () => {
  const status = JSON.parse(inProject('npx', ['--no', '--', 'usip', 'status', '--json']).stdout) as {
    loaded: boolean;
    backends: { features: { feature: string; backend: string }[] };
  };
  const table = status.backends.features.find((f) => f.feature === 'mount-table')!;
  if (status.loaded) assert.is(table.backend, 'module');
  else assert.is(table.backend, kernelHasListmount() ? 'kernel' : 'mountinfo');
});

// The script a user would write: ten lines, nothing but the public API.
const SCRIPT = `import { openMounts, readMountinfo } from '@usip/client';
const source = await openMounts();
try {
  const { mounts } = await source.mounts();
  const backend = source.plan.features.find((f) => f.feature === 'mount-table').backend;
  const proc = await readMountinfo();
  console.log(JSON.stringify({ backend, mounts: mounts.map((m) => [m.id, m.mountPoint, m.fsType]), proc: proc.map((m) => [m.id, m.mountPoint, m.fsType]) }));
} finally {
  await source.close();
}
`;

test('an ESM script importing @usip/client lists the mounts, as mountinfo does', () => {
  assert.is(SCRIPT.trim().split('\n').length, 10);
  writeFileSync(join(project, 'mounts.mjs'), SCRIPT);
  const out = JSON.parse(ok(inProject(process.execPath, ['mounts.mjs']), 'node mounts.mjs')) as {
    backend: string;
    mounts: [number, string, string][];
    proc: [number, string, string][];
  };
  assert.ok(['module', 'kernel', 'mountinfo'].includes(out.backend), out.backend);
  const proc = new Map(out.proc.map(([id, point, type]) => [id, `${point} ${type}`]));
  const root = mountinfoRoot();
  assert.equal(out.mounts.find(([id]) => id === root.id), [root.id, '/', root.fsType]);
  // Read a moment apart, the two may differ by a mount made meanwhile; where both have a mount, they agree.
  const common = out.mounts.filter(([id]) => proc.has(id));
  assert.ok(common.length > 0 && common.length >= out.mounts.length - 2, `${common.length} of ${out.mounts.length} mounts in mountinfo`);
  for (const [id, point, type] of common) assert.is(`${point} ${type}`, proc.get(id), `mount ${id}`);
});

test('TypeScript resolves the types through exports (NodeNext), and a type error is caught', () => {
  // A user's strict NodeNext project with @types/node (the workspace's) and the disposable lib
  // (the client's objects are AsyncDisposable); no skipLibCheck, so our declarations compile too.
  const tsc = join(workspaceRoot, 'node_modules/typescript/bin/tsc');
  const options = ['--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--lib', 'es2023,esnext.disposable', '--typeRoots', join(workspaceRoot, 'node_modules/@types'), '--types', 'node'];
  writeFileSync(
    join(project, 'typed.mts'),
    "import { openMounts, type MountInfo } from '@usip/client';\n" +
      "import { NativeAddonMissingError, type FamilyInfo } from '@usip/netlink-native';\n" +
      "import { NotifierConfig } from '@usip/config-agent';\n" +
      'const source = await openMounts();\n' +
      'const first: MountInfo | undefined = (await source.mounts()).mounts[0];\n' +
      'const id: number | undefined = first?.id;\n' +
      'export { id, NativeAddonMissingError, NotifierConfig, type FamilyInfo };\n',
  );
  ok(inProject(process.execPath, [tsc, ...options, 'typed.mts']), 'tsc typed.mts');
  // The same check must fail where the types say no: a mount id is not a string.
  writeFileSync(join(project, 'wrong.mts'), "import { openMounts } from '@usip/client';\nconst id: string = (await openMounts().then((s) => s.mounts())).mounts[0]!.id;\nexport { id };\n");
  const wrong = inProject(process.execPath, [tsc, ...options, 'wrong.mts']);
  assert.is.not(wrong.status, 0);
  assert.match(wrong.stdout, "Type 'number' is not assignable to type 'string'");
});

test('without the platform package: the error names the platform', () => {
  rmSync(join(project, PLATFORM_DIR), { recursive: true });
  const expected = 'no @usip/netlink-native build for linux-x64-gnu; supported: linux-x64-gnu; its package @usip/netlink-native-linux-x64-gnu is not installed';
  // Asked for the kernel backend, usip says why it cannot have it.
  const forced = inProject('npx', ['--no', '--', 'usip', 'mounts', '--json', '--backend', 'kernel']);
  assert.is.not(forced.status, 0);
  assert.match(forced.stderr, expected);
  // The addon's own error, through the public API.
  writeFileSync(
    join(project, 'addon.mjs'),
    "import { listKernelMounts, NativeAddonMissingError } from '@usip/netlink-native';\n" +
      'try { await listKernelMounts(); } catch (e) { console.log(JSON.stringify({ missing: e instanceof NativeAddonMissingError, target: e.target, message: e.message })); }\n',
  );
  const error = JSON.parse(ok(inProject(process.execPath, ['addon.mjs']), 'node addon.mjs')) as { missing: boolean; target: string; message: string };
  assert.equal({ missing: error.missing, target: error.target }, { missing: true, target: 'linux-x64-gnu' });
  assert.match(error.message, expected);
  // Without a backend forced, usip still lists the mounts (from mountinfo) and status says why.
  const fallback = JSON.parse(ok(inProject('npx', ['--no', '--', 'usip', 'mounts', '--json']), 'usip mounts --json')) as { filesystems: Filesystem[] };
  assert.ok(fallback.filesystems.some((f) => f.target === '/'));
  const status = JSON.parse(inProject('npx', ['--no', '--', 'usip', 'status', '--json']).stdout) as {
    backends: { features: { feature: string; backend: string; reason: string }[] };
  };
  const table = status.backends.features.find((f) => f.feature === 'mount-table')!;
  assert.is(table.backend, 'mountinfo');
  assert.match(table.reason, expected);
});

test.run();
