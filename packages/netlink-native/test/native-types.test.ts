// The hand-written mirror of the addon's types (src/native.ts) agrees with the declarations
// napi-rs generated from the Rust when the addon was built (dist/native.generated.d.ts):
// types-check/native.ts fails to compile otherwise, naming the member that disagrees.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const packageDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');

test('src/native.ts agrees with the napi-generated declarations of the built addon', () => {
  const generated = join(packageDir, 'dist/native.generated.d.ts');
  assert.ok(existsSync(generated), `${generated} is missing: build the addon (npx nx run netlink-native:build)`);
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  try {
    execFileSync(process.execPath, [tsc, '-p', join(packageDir, 'tsconfig.native-check.json')], { encoding: 'utf8', stdio: 'pipe' });
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    assert.unreachable(`the mirror and the generated declarations disagree:\n${stdout ?? ''}${stderr ?? ''}`);
  }
});

test.run();
