// The Debian packages for real: lintian on the built .debs, then both installed with apt on a
// clean Debian 12 root (cached, used through a throw-away overlay): DKMS builds usip.ko for the
// root's 6.1 headers, and again when a newer kernel is installed; the commands run from PATH; the
// unit passes systemd-analyze verify; purging removes every file they brought.
// `npx nx run deb:test` builds the packages first (dist/packages).
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { exec } from '../../vm/src/exec.js';
import { workspaceRoot } from '../../vm/src/paths.js';
import { dropScratch, ensureBookwormRoot, headerReleases, inScratch, makeScratch, UPGRADE_PACKAGE, type Scratch } from '../src/root.js';

const VERSION = readFileSync(join(workspaceRoot, 'packages/kernel-module/VERSION'), 'utf8').trim();
const CLI_VERSION = (JSON.parse(readFileSync(join(workspaceRoot, 'packages/cli/package.json'), 'utf8')) as { version: string }).version;
const OUT = join(workspaceRoot, 'dist/packages');
const DEBS = [`usip-dkms_${VERSION}_all.deb`, `usip-tools_${VERSION}_amd64.deb`];
const log = (m: string) => process.stderr.write(`deb test: ${m}\n`);

let lower = '';
let release = ''; // the root's 6.1 headers
let upgrade = ''; // bookworm-backports' kernel, downloaded in the root
const scratches: Scratch[] = [];

/** A fresh overlay on the cached root, with the .debs in its /tmp/debs. */
function scratchWithDebs(): Scratch {
  const s = makeScratch(lower);
  scratches.push(s);
  mkdirSync(join(s.upper, 'tmp/debs'), { recursive: true });
  for (const deb of DEBS) copyFileSync(join(OUT, deb), join(s.upper, 'tmp/debs', deb));
  return s;
}

async function run(s: Scratch, script: string): Promise<string> {
  const r = await inScratch(s, script, true);
  if (r.code !== 0) throw new Error(`in the bookworm root, \`${script}\` exited with ${r.code}:\n${(r.stderr + r.stdout).trim().split('\n').slice(-25).join('\n')}`);
  return r.stdout;
}

const INSTALL = 'apt-get install -y -q /tmp/debs/usip-dkms_*.deb /tmp/debs/usip-tools_*.deb';
// Then what apt installed only for them (procps, if the root lacked it).
const PURGE = 'apt-get purge -y -q usip-tools usip-dkms && apt-get autoremove --purge -y -q';
// Every file of the root but the API file systems, /tmp (where the .debs are) and /run (a tmpfs
// on a booted system; systemd-analyze leaves a marker there).
const LIST_FILES = 'find / -xdev \\( -path /proc -o -path /sys -o -path /dev -o -path /tmp -o -path /run \\) -prune -o -print | LC_ALL=C sort';
// What apt and dpkg themselves change on any install or purge; man-db's cache (its index, and the
// pages `man` formatted when systemd-analyze verify looked the unit's Documentation= up); and the
// machine's DKMS signing key, which dkms makes on its first build for all modules and keeps.
const BOOKKEEPING = /^\/var\/(lib\/dpkg|lib\/apt|cache\/apt|cache\/debconf|cache\/ldconfig|cache\/man|log)(\/|$)|^\/var\/lib\/dkms\/mok\.(key|pub)$/;

/** The module DKMS installed for a kernel (compressed when that kernel's modules are). */
async function builtModule(s: Scratch, kernel: string): Promise<string> {
  const found = (await run(s, `ls /lib/modules/${kernel}/updates/dkms/ 2>/dev/null || true`)).split('\n').filter((f) => /^usip\.ko(\.xz|\.zst|\.gz)?$/.test(f));
  assert.is(found.length, 1, `usip.ko for ${kernel} in /lib/modules/${kernel}/updates/dkms: ${found.join(', ') || 'none'}`);
  return `/lib/modules/${kernel}/updates/dkms/${found[0]}`;
}

test.before(async () => {
  for (const deb of DEBS) {
    if (!existsSync(join(OUT, deb))) throw new Error(`${join(OUT, deb)} is missing: build the packages first (npx nx run deb:package, or tools/dev package)`);
  }
  lower = await ensureBookwormRoot(log);
  const releases = headerReleases(lower);
  release = releases.find((r) => r.startsWith('6.1.')) ?? '';
  if (!release) throw new Error(`no linux-headers-6.1.*-amd64 in ${lower}/usr/src (found: ${releases.join(', ') || 'none'})`);
  const archives = join(lower, 'var/cache/apt/archives');
  upgrade = readdirSync(archives).map((f) => /^linux-headers-(.+-amd64)_/.exec(f)?.[1] ?? '').find((r) => r !== '' && r !== release) ?? '';
  if (!upgrade) throw new Error(`no ${UPGRADE_PACKAGE} .debs cached in ${archives}: remove ${lower} to make the root again`);
});

test.after(() => {
  for (const s of scratches) dropScratch(s);
});

test('lintian reports no errors (and no warnings) on usip-dkms and usip-tools', async () => {
  const r = await exec('lintian', ['--allow-root', '--fail-on', 'error,warning', ...DEBS.map((d) => join(OUT, d))], { allowFailure: true });
  const tags = r.stdout.split('\n').filter((l) => /^[EW]: /.test(l));
  assert.equal(tags, [], `lintian:\n${tags.join('\n')}`);
  assert.is(r.code, 0, r.stderr);
});

let a: Scratch;
let before: string[] = [];

test('apt installs both on the clean root, and DKMS builds usip.ko for the 6.1 headers', async () => {
  a = scratchWithDebs();
  before = (await run(a, LIST_FILES)).split('\n');
  await run(a, INSTALL);
  const status = await run(a, 'dkms status');
  assert.ok(status.includes(`usip/${VERSION}, ${release}, x86_64: installed`), `dkms status:\n${status}`);
  const ko = await builtModule(a, release);
  const vermagic = (await run(a, `modinfo -F vermagic ${ko}`)).trim();
  assert.ok(vermagic.startsWith(`${release} `), `vermagic of ${ko}: ${vermagic}`);
});

test('usip and usip-agent run from PATH', async () => {
  assert.is((await run(a, 'command -v usip; command -v usip-agent')).trim(), '/usr/bin/usip\n/usr/bin/usip-agent');
  assert.is((await run(a, 'usip --version')).trim(), CLI_VERSION);
  assert.ok((await run(a, 'usip-agent --version')).trim().length > 0);
  // The empty /etc/usip.d, then the shipped examples.
  await run(a, 'usip-agent check');
  await run(a, 'usip-agent check --config-dir /usr/share/doc/usip-tools/examples');
  // No module is loaded in the host's kernel for the root: the mount table comes from mountinfo.
  const table = JSON.parse(await run(a, 'usip mounts --json')) as { filesystems: { target: string; fstype: string }[] };
  const root = table.filesystems.find((f) => f.target === '/');
  assert.ok(root, `no / in usip mounts --json: ${JSON.stringify(table).slice(0, 300)}`);
  assert.is(root.fstype, 'overlay');
});

test('the unit is installed, enabled, and systemd-analyze verify accepts it', async () => {
  await run(a, 'test -f /lib/systemd/system/usip-agent.service');
  assert.is((await run(a, 'readlink /etc/systemd/system/multi-user.target.wants/usip-agent.service')).trim(), '/lib/systemd/system/usip-agent.service');
  const r = await inScratch(a, 'systemd-analyze verify /lib/systemd/system/usip-agent.service 2>&1', true);
  const complaints = r.stdout.split('\n').filter((l) => l.includes('usip-agent'));
  assert.is(r.code, 0, r.stdout);
  assert.equal(complaints, [], r.stdout);
});

test('the man pages, completions and configuration directories are where they belong', async () => {
  await run(a, [
    'test -f /usr/share/man/man1/usip.1.gz', 'test -f /usr/share/man/man8/usip-agent.8.gz', 'test -f /usr/share/man/man5/usip.d.5.gz',
    'grep -q usip /usr/share/bash-completion/completions/usip', 'grep -q usip /usr/share/zsh/vendor-completions/_usip',
    'grep -q usip /usr/share/fish/vendor_completions.d/usip.fish', 'test -d /etc/usip.d', 'test -d /usr/lib/usip.d',
  ].join('\n'));
  // The example notifier files, the unit of the cleanup example and the schema: each one shipped as it is.
  const examplesDir = join(workspaceRoot, 'examples/usip.d');
  const examples = readdirSync(examplesDir).filter((f) => f.endsWith('.json'));
  assert.ok(examples.length > 0, 'examples/usip.d has example files');
  for (const f of examples) {
    assert.is(await run(a, `cat /usr/share/doc/usip-tools/examples/${f}`), readFileSync(join(examplesDir, f), 'utf8'), `examples/usip.d/${f}`);
  }
  assert.is(
    await run(a, 'cat /usr/share/doc/usip-tools/examples/systemd/cleanup.service'),
    readFileSync(join(workspaceRoot, 'examples/systemd/cleanup.service'), 'utf8'),
    'examples/systemd/cleanup.service',
  );
  const schema = JSON.parse(await run(a, 'cat /usr/share/usip/notifier-file.schema.json')) as { $id?: unknown };
  assert.is(schema.$id, (JSON.parse(readFileSync(join(workspaceRoot, 'packages/config-agent/schema/notifier-file.schema.json'), 'utf8')) as { $id?: unknown }).$id);
  // Nothing that does not run: no source maps, no tests.
  const extra = await run(a, "find /usr/lib/usip \\( -name '*.map' -o -name test -o -name tests -o -name '*.ts' \\) -print");
  assert.is(extra, '');
});

test('purging both leaves dkms status empty and no file of either package', async () => {
  await run(a, PURGE);
  assert.is((await run(a, 'dkms status')).trim(), '');
  const after = (await run(a, LIST_FILES)).split('\n');
  // depmod's indexes of the headers-only kernel are rewritten (not removed) when DKMS removes the
  // module; the kernel image package owns them. They must not name usip any more.
  const depmod = new RegExp(`^(/usr)?/lib/modules/${release.replace(/[.+]/g, '\\$&')}/modules\\.[a-z.]+$`);
  const added = after.filter((f) => !before.includes(f) && !BOOKKEEPING.test(f) && !depmod.test(f));
  const removed = before.filter((f) => !after.includes(f) && !BOOKKEEPING.test(f));
  assert.equal(added, [], `left after the purge:\n${added.join('\n')}`);
  assert.equal(removed, [], `gone after the purge:\n${removed.join('\n')}`);
  assert.is((await run(a, `grep -c usip /lib/modules/${release}/modules.dep || true`)).trim(), '0');
});

test('a kernel upgrade: DKMS builds usip.ko for the new kernel too, and a purge removes both builds', async () => {
  const b = scratchWithDebs();
  await run(b, INSTALL);
  await run(b, `apt-get install -y -q --no-download --no-install-recommends ${UPGRADE_PACKAGE}`);
  const status = await run(b, 'dkms status');
  for (const k of [release, upgrade]) assert.ok(status.includes(`usip/${VERSION}, ${k}, x86_64: installed`), `dkms status for ${k}:\n${status}`);
  const vermagic = (await run(b, `modinfo -F vermagic ${await builtModule(b, upgrade)}`)).trim();
  assert.ok(vermagic.startsWith(`${upgrade} `), `vermagic: ${vermagic}`);
  await run(b, PURGE);
  assert.is((await run(b, 'dkms status')).trim(), '');
  assert.is(await run(b, 'find /lib/modules /var/lib/dkms -name "usip*" -print'), '');
});

test.run();
