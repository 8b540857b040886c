// Guest side of node-wake: what one wake-up costs a Node process, in CPU, for three sources of
// wake-ups, each paced so that every one is a wake-up of its own (one every 20 ms):
//   pipe     a byte on a pipe (the floor of any Node daemon woken by the kernel)
//   listener a bare usip mtab listener (client.register()) and a mount or umount
//   watcher  UsipClient.watchMounts() and a mount or umount (adds a mount-get for each mount)
// usage: node guest.mjs MODE WAKES WARMUP  ->  one JSON line {mode, wakes, cpuUs, userUs}
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { UsipClient } from '@usip/client';

const [mode, wakesText, warmupText] = process.argv.slice(2);
const wakes = Number(wakesText);
const warmup = Number(warmupText);
if (!['pipe', 'listener', 'watcher'].includes(mode) || !(wakes > 0) || !(warmup >= 0)) {
  console.error('usage: node guest.mjs pipe|listener|watcher WAKES WARMUP');
  process.exit(2);
}
const total = wakes + warmup;
let seen = 0;
let start;
const woke = () => {
  seen++;
  if (seen === warmup) start = process.cpuUsage();
  if (seen < total) return;
  const used = process.cpuUsage(start);
  console.log(JSON.stringify({ mode, wakes, cpuUs: (used.user + used.system) / wakes, userUs: used.user / wakes }));
  process.exit(0);
};
if (warmup === 0) start = process.cpuUsage();

if (mode === 'pipe') {
  const writer = spawn('sh', ['-c', `i=0; while [ $i -lt ${total + 10} ]; do printf x; sleep 0.02; i=$((i + 1)); done`], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  writer.stdout.on('data', (bytes) => {
    for (let i = 0; i < bytes.length; i++) woke();
  });
} else {
  const client = await UsipClient.connect();
  const stream =
    mode === 'listener'
      ? await client.register({ notifiers: ['mount', 'umount'].map((action) => ({ type: 'mtab', action })) })
      : await client.watchMounts();
  const target = '/tmp/node-wake';
  mkdirSync(target, { recursive: true });
  // mount(8) per change: a process of its own, so none of its CPU is the watcher's.
  const mounter = spawn(
    'sh',
    ['-c', `sleep 1; i=0; while [ $i -lt ${total + 10} ]; do mount -t tmpfs w ${target}; sleep 0.02; umount ${target}; sleep 0.02; i=$((i + 2)); done`],
    { stdio: 'inherit' },
  );
  mounter.on('exit', (code) => {
    if (seen < total) {
      console.error(`node-wake: the mounter ended (${code}) after ${seen} of ${total} wake-ups`);
      process.exit(1);
    }
  });
  for await (const item of stream) {
    if (item.kind === 'resync' || item.kind === 'overrun') continue;
    woke();
  }
}
