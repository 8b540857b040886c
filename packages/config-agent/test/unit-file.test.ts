// systemd/usip-agent.service: `systemd-analyze verify` accepts it (on a copy whose ExecStart is
// the built agent, and with the package's man pages on MANPATH, so that Documentation= names
// pages that exist), and it keeps the agent in the host's mount namespace.
import { execFile } from 'node:child_process';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { withTempDir } from './helpers.js';

const run = promisify(execFile);
const packageDir = fileURLToPath(new URL('..', import.meta.url));
const unitPath = join(packageDir, 'systemd/usip-agent.service');
const bin = join(packageDir, 'dist/bin.js');

/** The unit's assignments as [section, key, value], in order. */
function parseUnit(text: string): [string, string, string][] {
  let section = '';
  const out: [string, string, string][] = [];
  for (const line of text.split('\n')) {
    if (/^\s*([#;].*)?$/.test(line)) continue;
    const header = /^\[(\w+)\]$/.exec(line);
    if (header) {
      section = header[1]!;
      continue;
    }
    const m = /^(\w+)=(.*)$/.exec(line);
    assert.ok(m, `not an assignment: ${line}`);
    out.push([section, m![1]!, m![2]!]);
  }
  return out;
}

test('systemd-analyze verify accepts the unit (ExecStart pointed at the built agent, man pages found)', async () => {
  await withTempDir(async (dir) => {
    const text = await readFile(unitPath, 'utf8');
    assert.match(text, /^ExecStart=\/usr\/bin\/usip-agent run$/m);
    await writeFile(join(dir, 'usip-agent.service'), text.replace(/^ExecStart=\/usr\/bin\/usip-agent /m, `ExecStart=${bin} `));
    for (const [section, page] of [
      ['man8', 'usip-agent.8'],
      ['man5', 'usip.d.5'],
    ] as const) {
      await mkdir(join(dir, 'man', section), { recursive: true });
      await copyFile(join(packageDir, 'man', page), join(dir, 'man', section, page));
    }
    try {
      const { stderr } = await run('systemd-analyze', ['verify', join(dir, 'usip-agent.service')], {
        cwd: dir,
        env: { ...process.env, MANPATH: join(dir, 'man') },
      });
      assert.is(stderr, '', stderr);
    } catch (error) {
      const e = error as { stderr?: string; message: string };
      assert.unreachable(`systemd-analyze verify refused the unit: ${e.stderr ?? e.message}`);
    }
  });
});

test('the unit: Type=notify with reload and watchdog, and nothing that gives the agent its own mount namespace', async () => {
  const entries = parseUnit(await readFile(unitPath, 'utf8'));
  const get = (key: string) => entries.filter(([, k]) => k === key).map(([, , v]) => v);
  assert.equal(get('Type'), ['notify']);
  assert.equal(get('ExecReload'), ['/bin/kill -HUP $MAINPID']);
  assert.equal(get('Restart'), ['on-failure']);
  assert.equal(get('WantedBy'), ['multi-user.target']);
  assert.equal(get('Documentation'), ['man:usip-agent(8) man:usip.d(5)']);
  assert.ok(get('WatchdogSec').length === 1 && get('WatchdogSec')[0] !== '0');
  // Every address family the agent and its commands need: netlink (the module), unix (sd_notify,
  // systemctl), inet (metrics).
  assert.equal(get('RestrictAddressFamilies').join(' ').split(' ').sort(), ['AF_INET', 'AF_INET6', 'AF_NETLINK', 'AF_UNIX']);
  // Each of these makes systemd run the service in a mount namespace of its own (systemd.exec(5)):
  // scope "mnt-ns" files would then see the service's mounts, not the host's.
  const mountNamespace = [
    'ProtectSystem', 'ProtectHome', 'PrivateTmp', 'PrivateDevices', 'PrivateMounts', 'ProtectKernelTunables',
    'ProtectKernelModules', 'ProtectKernelLogs', 'ProtectControlGroups', 'ProtectProc', 'ProcSubset',
    'ReadOnlyPaths', 'ReadWritePaths', 'InaccessiblePaths', 'ExecPaths', 'NoExecPaths', 'TemporaryFileSystem',
    'BindPaths', 'BindReadOnlyPaths', 'RootDirectory', 'RootImage', 'MountAPIVFS', 'PrivateNetwork', 'NetworkNamespacePath',
    'DynamicUser', 'RuntimeDirectory', 'StateDirectory', 'CacheDirectory', 'LogsDirectory', 'ConfigurationDirectory',
    'MountFlags', 'ProtectClock', 'ProtectHostname', 'LogNamespace', 'PrivateIPC', 'IPCNamespacePath',
  ];
  const found = entries.filter(([, k]) => mountNamespace.includes(k)).map(([, k, v]) => `${k}=${v}`);
  assert.equal(found, [], 'options that would move the agent out of the host mount (or network) namespace');
  // Node's JIT writes code: MemoryDenyWriteExecute would kill it.
  assert.equal(get('MemoryDenyWriteExecute'), []);
});

test.run();
