// Guest side of node-wake: what one wake-up costs a Node process, in CPU, for three sources of
// wake-ups, each paced so that every one is a wake-up of its own (one every 20 ms):
//   pipe     a byte on a pipe (the floor of any Node daemon woken by the kernel)
//   listener a bare usip mtab listener (client.register()) and a mount or umount
//   watcher  UsipClient.watchMounts() and a mount or umount (adds a mount-get for each mount)
// usage: node guest.mjs MODE WAKES WARMUP  ->  one JSON line {mode, wakes, cpuUs, userUs}
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { UsipClient } from '@usip/client';

const [mode, wakesText, warmupText] = process.argv.slice(2);
const wakes = Number(wakesText);
const warmup = Number(warmupText);
if (!['pipe', 'listener', 'watcher'].includes(mode) || !(wakes > 0) || !(warmup >= 0)) {
  console.error('usage: node guest.mjs pipe|listener|watcher WAKES WARMUP');
  process.exit(2);
}
const total = wakes + warmup;

/** CPU time so far of each of this process's threads (schedstat: ns on a CPU), by thread name. */
function threadCpuNs() {
  const byName = new Map();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      // The JavaScript thread apart from the others that are named "node" too (V8's, libuv's).
      const name = Number(tid) === process.pid ? 'js' : readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim();
      const ns = Number(readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      byName.set(`${name}#${tid}`, ns);
    } catch {
      // the thread ended meanwhile
    }
  }
  return byName;
}

let seen = 0;
let start;
let startThreads;
const begin = () => {
  start = process.cpuUsage();
  startThreads = threadCpuNs();
};
const woke = () => {
  seen++;
  if (seen === warmup) begin();
  if (seen < total) return;
  const used = process.cpuUsage(start);
  // Per thread kind (name without its id), µs per wake-up: which thread the time goes to.
  const threads = {};
  for (const [key, ns] of threadCpuNs()) {
    const name = key.slice(0, key.lastIndexOf('#'));
    threads[name] = (threads[name] ?? 0) + (ns - (startThreads.get(key) ?? 0)) / 1000 / wakes;
  }
  console.log(JSON.stringify({ mode, wakes, cpuUs: (used.user + used.system) / wakes, userUs: used.user / wakes, threads }));
  process.exit(0);
};
if (warmup === 0) begin();

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
