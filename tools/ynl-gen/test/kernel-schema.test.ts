// The spec is valid YNL: packages/kernel-module/spec/usip.yaml validates against the kernel's own
// Documentation/netlink/genetlink.yaml of each supported kernel series, taken from Debian's
// linux-source-SERIES (packages/kernel-module/scripts/fetch-kernel-ynl.sh caches it) and checked
// with python3-jsonschema, as the kernel's YNL library checks a spec when it loads one
// (kernel_schema_check.py). Linux 6.1 ships no genetlink.yaml: it cannot be checked against its
// own schema, only against the newer series'.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DEFAULT_SPEC, findWorkspaceRoot, formatProblem, specTextLocator } from '../src/index.js';

const workspaceRoot = findWorkspaceRoot(fileURLToPath(new URL('.', import.meta.url)));
const fetchScript = join(workspaceRoot, 'packages/kernel-module/scripts/fetch-kernel-ynl.sh');
const checker = fileURLToPath(new URL('./kernel_schema_check.py', import.meta.url));
/** Debian's python, which has python3-jsonschema and python3-yaml (tools/setup/system-deps.sh). */
const python = '/usr/bin/python3';

// The supported series, from the one place that lists them (tools/vm); read from its source so
// that this test does not need @usip/vm built.
const { SUPPORTED_SERIES } = (await import(pathToFileURL(join(workspaceRoot, 'tools/vm/src/apt.ts')).href)) as {
  SUPPORTED_SERIES: readonly string[];
};

interface KernelYnl {
  series: string;
  version: string;
  dir: string;
  /** genetlink.yaml, or '' when the series has none. */
  schema: string;
  cli: string;
}

function fetchKernelYnl(series: string): KernelYnl {
  const r = spawnSync('sh', [fetchScript, series], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${fetchScript} ${series} failed (${r.status}):\n${r.stderr}`);
  const fields = Object.fromEntries(
    r.stdout
      .split('\n')
      .filter((line) => line.includes('='))
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
  ) as Record<string, string>;
  return { series, version: fields.version ?? '', dir: fields.dir ?? '', schema: fields.schema ?? '', cli: fields.cli ?? '' };
}

interface SchemaError {
  validator: string;
  pointer: string;
  keyword: string;
  message: string;
}

/** What the kernel's schema says about a spec: every error, located in the spec's text. */
function kernelSchemaErrors(schema: string, specPath: string, label: string): { errors: SchemaError[]; report: string } {
  const r = spawnSync(python, [checker, schema, specPath], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${checker} failed (${r.status}):\n${r.stderr}`);
  const errors = r.stdout
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as SchemaError);
  const locate = specTextLocator(readFileSync(specPath, 'utf8'));
  const report = errors
    .map((e) => formatProblem({ file: label, pointer: e.pointer, rule: e.keyword, message: `${e.message} [${e.validator}]`, ...locate(e.pointer) }))
    .join('\n');
  return { errors, report };
}

const kernels = SUPPORTED_SERIES.map(fetchKernelYnl);
const withSchema = kernels.filter((k) => k.schema !== '');
const newest = withSchema[withSchema.length - 1];
const spec = join(workspaceRoot, DEFAULT_SPEC);

test(`the supported series are ${SUPPORTED_SERIES.join(', ')}, and at least one ships genetlink.yaml`, () => {
  assert.ok(newest !== undefined, `none of ${kernels.map((k) => `linux-source-${k.series} ${k.version}`).join(', ')} has Documentation/netlink/genetlink.yaml`);
});

for (const kernel of kernels) {
  const source = `linux-source-${kernel.series} ${kernel.version}`;
  if (kernel.schema === '') {
    test(`${kernel.series}: ${source} has no Documentation/netlink/genetlink.yaml (YNL came later), so the spec cannot be validated against ${kernel.series}'s own schema; it is against ${newest?.series ?? 'a newer series'}'s`, () => {
      assert.ok(newest !== undefined && newest.series !== kernel.series);
    });
    continue;
  }
  test(`${kernel.series}: ${DEFAULT_SPEC} is valid against ${kernel.series}'s Documentation/netlink/genetlink.yaml (${source})`, () => {
    const { report } = kernelSchemaErrors(kernel.schema, spec, DEFAULT_SPEC);
    assert.equal(report.split('\n').filter((line) => line !== ''), [], "the kernel's schema refuses the spec");
  });
}

test("the check reports what the kernel's schema refuses, with the pointer and message: a group's doc and cap-sys-admin flag", () => {
  assert.ok(newest !== undefined);
  // The multicast groups as they were written before: a doc and our own flag name.
  const text = readFileSync(spec, 'utf8');
  const mcast = text.indexOf('\nmcast-groups:');
  assert.ok(mcast > 0);
  const old = `${text.slice(0, mcast)}\nmcast-groups:\n  list:\n    -\n      name: mtab\n      flags: [cap-sys-admin]\n      doc: Mount table events.\n`;
  const dir = mkdtempSync(join(tmpdir(), 'ynl-kernel-schema-'));
  try {
    const path = join(dir, 'old.yaml');
    writeFileSync(path, old);
    const { errors, report } = kernelSchemaErrors(newest.schema, path, 'old.yaml');
    const found = errors.map((e) => `${e.pointer} ${e.keyword}: ${e.message}`);
    // The group flags the schema knows: admin-perm (6.12), and uns-admin-perm too (7.x).
    const flags = "\\['admin-perm'(, 'uns-admin-perm')?\\]";
    assert.is(found.length, 2, report);
    assert.is(found[0], "/mcast-groups/list/0 additionalProperties: Additional properties are not allowed ('doc' was unexpected)", report);
    assert.match(found[1] ?? '', new RegExp(`^/mcast-groups/list/0/flags/0 enum: 'cap-sys-admin' is not one of ${flags}$`), report);
    const line = old.split('\n').indexOf('      flags: [cap-sys-admin]') + 1;
    assert.match(report, new RegExp(`^old\\.yaml:${line}:15: /mcast-groups/list/0/flags/0: 'cap-sys-admin' is not one of ${flags} \\[\\w+\\] \\(rule: enum\\)$`, 'm'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
