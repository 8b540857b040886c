// Runs inside the VM guest (see ../vm-devices.test.ts, from devices.sh): the @usip/client
// block-device API against the guest's real loop devices and partitions.
//   devices-client.ts          UsipClient#devices() (when the module is loaded), devices() and
//                              readBlockDevices(), with lsblk -J -b read right after
//   devices-client.ts race     devices() over and over while a shell attaches and detaches a
//                              partitioned loop device: no call may throw
// Prints what it saw as JSON on stdout (bigints as decimal strings); the host judges it.
import { spawn, execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { devices, readBlockDevices, UsipClient, type BlockDevice } from '@usip/client';

if (process.env.USIP_VM === undefined) throw new Error('not in a usip-vm guest: USIP_VM is not set');

const print = (value: unknown) => process.stdout.write(`${JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))}\n`);
const lsblk = () => JSON.parse(execFileSync('lsblk', ['-J', '-b', '-o', 'NAME,MAJ:MIN,RM,SIZE,RO,TYPE,MOUNTPOINTS'], { encoding: 'utf8' })) as unknown;

if (process.argv[2] === 'race') {
  // A 64 MiB image with two partitions, attached with partition scanning and detached again by a
  // shell loop, while this process reads the devices as fast as it can.
  const image = '/tmp/race.img';
  writeFileSync(image, '');
  execFileSync('truncate', ['-s', '64M', image]);
  execFileSync('sfdisk', ['--quiet', image], { input: 'label: dos\n,16MiB\n,\n' });
  const rounds = 60;
  const shell = spawn(
    'sh',
    ['-c', `i=0; while [ $i -lt ${rounds} ]; do d=$(losetup -f --show -P ${image}) || exit 1; losetup -d "$d" || exit 1; i=$((i + 1)); done`],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const exited = new Promise<number | null>((resolve) => shell.on('exit', (code) => resolve(code)));
  let running = true;
  void exited.then(() => (running = false));
  const report = { rounds, calls: 0, errors: [] as string[], seenBound: 0, seenWithPartitions: 0, inconsistent: [] as string[], shellStatus: null as number | null };
  while (running || report.calls < 5) {
    let list: BlockDevice[];
    try {
      list = report.calls % 2 === 0 ? await devices() : await readBlockDevices();
    } catch (error) {
      report.errors.push(String((error as Error).stack ?? error));
      report.calls++;
      continue;
    }
    report.calls++;
    const race = list.filter((d) => d.backingFile === image);
    if (race.length > 0) report.seenBound++;
    if (race.some((d) => d.partitions.length > 0)) report.seenWithPartitions++;
    for (const d of list) {
      for (const p of d.partitions) {
        if (p.type !== 'part' || p.parent !== d.name || !p.name.startsWith(d.name)) report.inconsistent.push(`${d.name}/${p.name}`);
      }
    }
  }
  report.shellStatus = await exited;
  print(report);
} else {
  let viaClient: BlockDevice[] | null = null;
  let connectError: string | null = null;
  try {
    const client = await UsipClient.connect();
    try {
      viaClient = await client.devices();
    } finally {
      await client.close();
    }
  } catch (error) {
    connectError = (error as { code?: string }).code ?? String(error);
  }
  const viaFree = await devices();
  const viaMountinfo = await readBlockDevices();
  print({ uid: process.getuid?.(), connectError, viaClient, viaFree, viaMountinfo, lsblk: lsblk() });
}
