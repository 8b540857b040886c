// The C that tools/ynl-gen emits must build warning-free on every supported kernel and pass
// checkpatch, for every construct the generator supports (its full.yaml fixture), not only for
// the few the usip spec uses today.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { emitKernelHeader, emitKernelSource, emitUapiHeader, loadSpecFile } from '../../../tools/ynl-gen/src/index.js';
import { moduleRoot, supportedKernels, workspaceRoot } from './helpers.js';
import { buildModule } from '@usip/vm';

const kernels = await supportedKernels();
const family = loadSpecFile(join(workspaceRoot, 'tools/ynl-gen/test/fixtures/full.yaml'), { specLabel: 'tools/ynl-gen/test/fixtures/full.yaml' });

// Handlers and dump hooks for the fixture's ops, and a family made of the generated tables.
const MAIN = `// SPDX-License-Identifier: GPL-2.0
#include <linux/module.h>

#include "full-nl-gen.h"

int full_nl_get_doit(struct sk_buff *skb, struct genl_info *info)
{
	return 0;
}

int full_nl_get_dumpit(struct sk_buff *skb, struct netlink_callback *cb)
{
	return 0;
}

int full_nl_set_doit(struct sk_buff *skb, struct genl_info *info)
{
	return 0;
}

int full_nl_list_dumpit(struct sk_buff *skb, struct netlink_callback *cb)
{
	return 0;
}

/* The dump hooks (pre/post in the spec, .start/.done in struct genl_ops). */
int full_nl_list_start(struct netlink_callback *cb)
{
	return 0;
}

int full_nl_dump_done(struct netlink_callback *cb)
{
	return 0;
}

static struct genl_family full_family __ro_after_init = {
	.name		= FULL_FAMILY_NAME,
	.version	= FULL_FAMILY_VERSION,
	.module		= THIS_MODULE,
	.ops		= full_nl_ops,
	.n_ops		= ARRAY_SIZE(full_nl_ops),
	.mcgrps		= full_nl_mcgrps,
	.n_mcgrps	= ARRAY_SIZE(full_nl_mcgrps),
};

static int __init full_init(void)
{
	return genl_register_family(&full_family);
}

static void __exit full_exit(void)
{
	genl_unregister_family(&full_family);
}

module_init(full_init);
module_exit(full_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Build test of the C that tools/ynl-gen generates");
`;

function writeFixtureModule(dir: string): void {
  mkdirSync(join(dir, 'include/uapi/linux'), { recursive: true });
  writeFileSync(join(dir, 'include/uapi/linux/full.h'), emitUapiHeader(family));
  writeFileSync(join(dir, 'full-nl-gen.c'), emitKernelSource(family, 'full-nl-gen.h'));
  writeFileSync(join(dir, 'full-nl-gen.h'), emitKernelHeader(family, 'full-nl-gen.h'));
  writeFileSync(join(dir, 'full-main.c'), MAIN);
  writeFileSync(join(dir, 'Kbuild'), 'obj-m := ynl_fixture.o\nynl_fixture-y := full-main.o full-nl-gen.o\nccflags-y := -I$(src)/include/uapi\n');
}

for (const kernel of kernels) {
  test(`${kernel.release}: the generated policies, ops and groups of every supported construct build without a warning`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ynl-fixture-module-'));
    try {
      writeFixtureModule(join(dir, 'src'));
      // The harness's build: on the host, or in the trixie build root for 7.x.
      const [built] = await buildModule({ kernel: [kernel], src: join(dir, 'src'), out: join(dir, 'out'), echo: null });
      assert.not.match(built!.output, /warning:|error:/i, built!.output);
      assert.is(built!.modules.length, 1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('the generated C of every supported construct is checkpatch clean', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ynl-fixture-checkpatch-'));
  try {
    writeFixtureModule(dir);
    const fetch = spawnSync('sh', [join(moduleRoot, 'scripts/fetch-checkpatch.sh')], { encoding: 'utf8' });
    assert.is(fetch.status, 0, fetch.stderr);
    const checkpatch = fetch.stdout.trim();
    const r = spawnSync(
      'perl',
      [checkpatch, '--no-tree', '--file', '--strict', '--color=never', 'full-nl-gen.c', 'full-nl-gen.h', 'include/uapi/linux/full.h'],
      { cwd: dir, encoding: 'utf8' },
    );
    assert.is(r.status, 0, r.stdout);
    assert.not.match(r.stdout, /^(WARNING|ERROR|CHECK):/m, r.stdout);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
