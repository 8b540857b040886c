// Throughput of the binding against the host kernel's nlctrl: sequential and concurrent
// requests, and dumps. Prints numbers; asserts nothing (timing belongs here, not in tests).
// Run: npx nx run bench:netlink   (or node tools/bench/netlink-nlctrl.mjs after the build)
import { performance } from 'node:perf_hooks';
import { GenlSocket, Nlctrl } from '@usip/netlink-native';

const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 5000);
const DUMPS = Number(process.env.BENCH_DUMPS ?? 1000);

async function measure(name, count, unit, run) {
  const started = performance.now();
  const items = await run();
  const elapsed = performance.now() - started;
  const perCall = (elapsed * 1000) / count;
  const extra = items ? `, ${items} messages, ${((items / elapsed) * 1000).toFixed(0)} messages/s` : '';
  console.log(`${name}: ${count} ${unit} in ${elapsed.toFixed(1)} ms (${perCall.toFixed(1)} µs each${extra})`);
}

const socket = new GenlSocket();
await socket.resolveFamily('nlctrl'); // warm up the runtime and the socket

await measure('resolveFamily, one at a time', REQUESTS, 'requests', async () => {
  for (let i = 0; i < REQUESTS; i++) await socket.resolveFamily('nlctrl');
});
await measure('resolveFamily, all issued at once', REQUESTS, 'requests', async () => {
  await Promise.all(Array.from({ length: REQUESTS }, () => socket.resolveFamily('nlctrl')));
});
await measure('CTRL_CMD_GETFAMILY dump, one at a time', DUMPS, 'dumps', async () => {
  let messages = 0;
  for (let i = 0; i < DUMPS; i++) {
    messages += (await socket.dump(Nlctrl.familyId, Nlctrl.commands.getFamily, Nlctrl.version)).length;
  }
  return messages;
});
socket.close();
