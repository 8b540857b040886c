// Which files the generator produces, where they go in the workspace, and the write/check steps.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { emitKernelHeader, emitKernelSource } from './emit/kernel-source.js';
import { emitMarkdown } from './emit/markdown.js';
import { emitTypeScript } from './emit/typescript.js';
import { emitUapiHeader } from './emit/uapi-header.js';
import type { Family } from './model.js';

/** The spec of the usip family, relative to the workspace root. */
export const DEFAULT_SPEC = 'packages/kernel-module/spec/usip.yaml';

export interface GeneratedFile {
  /** Relative to the workspace root. */
  readonly path: string;
  readonly content: string;
}

const KERNEL_HEADER = 'usip-nl-gen.h';

/** Everything generated from one family, at its place in this workspace. */
export function generateFiles(family: Family): GeneratedFile[] {
  return [
    { path: `packages/kernel-module/include/uapi/${family.uapiHeader}`, content: emitUapiHeader(family) },
    { path: 'packages/kernel-module/src/usip-nl-gen.c', content: emitKernelSource(family, KERNEL_HEADER) },
    { path: `packages/kernel-module/src/${KERNEL_HEADER}`, content: emitKernelHeader(family, KERNEL_HEADER) },
    { path: 'packages/client/src/generated/usip.ts', content: emitTypeScript(family) },
    { path: 'docs/reference/protocol.md', content: emitMarkdown(family) },
  ];
}

export function writeFiles(root: string, files: readonly GeneratedFile[]): string[] {
  const written: string[] = [];
  for (const file of files) {
    const target = join(root, file.path);
    if (existsSync(target) && readFileSync(target, 'utf8') === file.content) continue;
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, file.content);
    written.push(file.path);
  }
  return written;
}

export interface StaleFile {
  readonly path: string;
  readonly reason: 'missing' | 'differs';
}

/** Files whose checked-in content is not what the generator produces now. */
export function staleFiles(root: string, files: readonly GeneratedFile[]): StaleFile[] {
  const stale: StaleFile[] = [];
  for (const file of files) {
    const target = join(root, file.path);
    if (!existsSync(target)) stale.push({ path: file.path, reason: 'missing' });
    else if (readFileSync(target, 'utf8') !== file.content) stale.push({ path: file.path, reason: 'differs' });
  }
  return stale;
}

/** The nearest directory at or above `start` that holds nx.json. */
export function findWorkspaceRoot(start: string): string {
  let dir = resolve(start);
  for (;;) {
    if (existsSync(join(dir, 'nx.json'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no nx.json found at or above ${start}; pass --root`);
    dir = parent;
  }
}
