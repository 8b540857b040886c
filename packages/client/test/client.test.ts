// Host tests: the development machine's kernel has generic netlink but no usip module, which is
// exactly the "module not loaded" situation a user meets. Ping itself is tested against the real
// module in the VM (packages/cli/test/vm-status.test.ts runs `usip status` through this client).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isNetlinkError, UsipClient, UsipModuleNotLoadedError } from '../src/index.js';

test('connect() without the module says it is not loaded and how to load it', async () => {
  const error = await UsipClient.connect().then(
    (client) => {
      client.close();
      return undefined;
    },
    (e: unknown) => e,
  );
  assert.instance(error, UsipModuleNotLoadedError);
  const notLoaded = error as UsipModuleNotLoadedError;
  assert.is(notLoaded.code, 'USIP_MODULE_NOT_LOADED');
  assert.match(notLoaded.message, 'usip kernel module is not loaded');
  assert.match(notLoaded.message, 'modprobe usip');
  assert.match(notLoaded.message, 'insmod');
  // The kernel's own answer stays available for whoever wants the details.
  assert.ok(isNetlinkError(notLoaded.cause), 'cause is the kernel error');
  assert.is((notLoaded.cause as { code: string }).code, 'ENOENT');
});

test.run();
