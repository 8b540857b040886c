// The last step of `nx build netlink-native`: puts the addon napi build wrote to dist/ into the
// platform package of this machine's target (npm/<target>/, named as napi-rs names it there),
// so that `npm pack npm/<target>` ships it, with the notices of the Rust crates it links. dist/usip-netlink.node stays where it is: the source
// tree (tests, the VM, tools/dev) loads that one.
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nativeTarget } from '../dist/index.js';
import { rustNotices } from './third-party.mjs';

const packageDir = dirname(dirname(fileURLToPath(import.meta.url)));
const { napi } = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8'));
const target = nativeTarget();
const platformDir = join(packageDir, 'npm', target);
const addon = join(packageDir, 'dist', `${napi.binaryName}.node`);
if (!existsSync(addon)) {
  console.error(`copy-addon: ${addon} is missing: run napi build first`);
  process.exit(1);
}
if (!existsSync(join(platformDir, 'package.json'))) {
  // Building on a target nothing is published for is fine for development; say so and go on.
  console.log(`copy-addon: no platform package for ${target} (npm/${target}/): the addon stays in dist/ only`);
  process.exit(0);
}
const { main } = JSON.parse(readFileSync(join(platformDir, 'package.json'), 'utf8'));
copyFileSync(addon, join(platformDir, main));
writeFileSync(join(platformDir, 'THIRD-PARTY-LICENSES.txt'), rustNotices(packageDir));
console.log(`copy-addon: ${join('npm', target, main)}, with THIRD-PARTY-LICENSES.txt`);
