// A plain mtab listener for the mount(2)-cost part of the mount-watch benchmark: registers one
// listener with a notifier for every mtab action, drains its events, says "ready", and when
// its stdin closes prints "events <received> <lost>" and exits.
import { writeSync } from 'node:fs';
import { UsipClient } from '@usip/client';

const client = await UsipClient.connect();
const listener = await client.register({
  notifiers: ['mount', 'umount', 'move', 'remount'].map((action) => ({ type: 'mtab', action })),
});
let received = 0;
let lost = 0;
const drained = (async () => {
  for await (const item of listener) {
    if (item.kind === 'overrun') lost += item.lost ?? 1;
    else {
      received++;
      lost += item.missed ?? 0;
    }
  }
})();
writeSync(1, `ready ${listener.id} ${listener.mntNs}\n`);
process.stdin.resume();
await new Promise((resolve) => process.stdin.on('end', resolve));
// Let the events in flight arrive.
let last = -1;
while (received !== last) {
  last = received;
  await new Promise((resolve) => setTimeout(resolve, 300));
}
writeSync(1, `events ${received} ${lost}\n`);
await listener.close();
await drained;
client.close();
