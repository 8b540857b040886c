// Loads the native addon on first use, so importing the package (for types, constants or error
// checks) works where the addon is not built or cannot load.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { NativeBinding } from './native.js';

const ADDON_FILE = 'usip-netlink.node';
let binding: NativeBinding | undefined;

export function loadBinding(): NativeBinding {
  if (binding) return binding;
  // The addon sits in dist/ both for the built module (dist/index.js) and for the sources
  // (src/index.ts, run by the tests through tsx).
  const path = fileURLToPath(new URL(`../dist/${ADDON_FILE}`, import.meta.url));
  if (!existsSync(path)) {
    throw new Error(
      `@usip/netlink-native: the native addon ${path} is missing; build it with ` +
        '`npx nx build netlink-native` (needs Rust and cargo)',
    );
  }
  binding = createRequire(import.meta.url)(path) as NativeBinding;
  return binding;
}
