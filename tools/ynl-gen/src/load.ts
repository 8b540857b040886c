// Reads a spec: YAML → plain data (with positions kept for error messages) → JSON Schema check
// → semantic resolution into the model. Every step reports all the problems it finds at once.
import { readFileSync } from 'node:fs';
import { Ajv, type ErrorObject } from 'ajv';
import { LineCounter, isAlias, isMap, isScalar, isSeq, parseDocument, type Document } from 'yaml';
import { SpecError, joinPointer, splitPointer, type SpecProblem } from './errors.js';
import type { Family } from './model.js';
import { resolveSpec, type RawSpec } from './resolve.js';
import { specSchema } from './schema.js';

export interface LoadOptions {
  /** How the spec is named in error messages; defaults to the path it was read from. */
  readonly file?: string;
  /** How the spec is named in the generated files' notices. */
  readonly specLabel?: string;
}

type Locator = (pointer: string) => { line: number; column: number } | undefined;

function makeLocator(doc: Document, lineCounter: LineCounter): Locator {
  return (pointer) => {
    let node: unknown = doc.contents;
    let offset: number | undefined = doc.contents?.range?.[0];
    for (const segment of splitPointer(pointer)) {
      // Through an alias (*name) to the anchored node (&name): that is where the text is.
      if (isAlias(node)) node = node.resolve(doc);
      if (isMap(node)) {
        const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === segment);
        if (pair === undefined) break;
        const key = pair.key as { range?: [number, number, number] };
        const value = pair.value as { range?: [number, number, number] } | null;
        // Point at the value, or at the key when the value is empty.
        offset = value?.range?.[0] ?? key.range?.[0] ?? offset;
        node = pair.value;
      } else if (isSeq(node)) {
        const item = node.items[Number(segment)] as { range?: [number, number, number] } | undefined;
        if (item === undefined) break;
        offset = item.range?.[0] ?? offset;
        node = item;
      } else {
        break;
      }
    }
    if (offset === undefined) return undefined;
    const pos = lineCounter.linePos(offset);
    return { line: pos.line, column: pos.col };
  };
}

/**
 * Where a JSON pointer's value is in spec text (line and column, 1-based), for reporting what
 * another validator (the kernel's own schema) found; undefined when the pointer is not there.
 */
export function specTextLocator(text: string): Locator {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  return makeLocator(doc, lineCounter);
}

/** Pointer-level key of the offending value for an ajv error, plus a message a person can act on. */
function describeAjvError(error: ErrorObject, data: unknown): { pointer: string; message: string } {
  const here = error.instancePath;
  const value = valueAt(data, here);
  switch (error.keyword) {
    case 'additionalProperties': {
      const key = String((error.params as { additionalProperty: string }).additionalProperty);
      const allowed = Object.keys(
        ((error.parentSchema as { properties?: Record<string, unknown> } | undefined)?.properties ?? {}),
      );
      return {
        pointer: joinPointer(here, key),
        message: `unknown key "${key}"; allowed here: ${allowed.join(', ')}`,
      };
    }
    case 'required': {
      const key = String((error.params as { missingProperty: string }).missingProperty);
      return { pointer: here, message: `missing required key "${key}"` };
    }
    case 'enum': {
      const allowed = (error.params as { allowedValues: unknown[] }).allowedValues;
      return {
        pointer: here,
        message: `${JSON.stringify(value)} is not one of: ${allowed.map((a) => String(a)).join(', ')}`,
      };
    }
    case 'const':
      return {
        pointer: here,
        message: `${JSON.stringify(value)} must be ${JSON.stringify((error.params as { allowedValue: unknown }).allowedValue)}`,
      };
    case 'type':
      return {
        pointer: here,
        message: `${JSON.stringify(value)} must be of type ${String((error.params as { type: unknown }).type)}`,
      };
    case 'pattern':
      return {
        pointer: here,
        message: `${JSON.stringify(value)} does not match ${String((error.params as { pattern: string }).pattern)}`,
      };
    default:
      return { pointer: here, message: `${JSON.stringify(value)} ${error.message ?? 'is invalid'}` };
  }
}

function valueAt(data: unknown, pointer: string): unknown {
  let node = data;
  for (const segment of splitPointer(pointer)) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string, unknown>)[segment];
  }
  return node;
}

const ajv = new Ajv({ allErrors: true, strict: true, verbose: true, allowUnionTypes: true });
const validateAgainstSchema = ajv.compile(specSchema);

/** Checks raw spec data against the JSON Schema; returns the problems (empty when valid). */
export function schemaProblems(data: unknown, file: string, locate?: Locator): SpecProblem[] {
  if (validateAgainstSchema(data)) return [];
  const problems: SpecProblem[] = [];
  const seen = new Set<string>();
  for (const error of validateAgainstSchema.errors ?? []) {
    // "must match then/else schema" only wraps the real error reported beside it.
    if (error.keyword === 'if') continue;
    const { pointer, message } = describeAjvError(error, data);
    const key = `${pointer}\u0000${error.keyword}\u0000${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    problems.push({ file, pointer, rule: error.keyword, message, ...locate?.(pointer) });
  }
  return problems;
}

/** Parses and validates spec text, and resolves it into the model. Throws SpecError. */
export function loadSpecText(text: string, options: { file: string; specLabel?: string }): Family {
  const { file } = options;
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new SpecError(
      doc.errors.map((e) => {
        const pos = lineCounter.linePos(e.pos[0]);
        return { file, pointer: '', rule: 'yaml', message: e.message.split('\n')[0] ?? e.message, line: pos.line, column: pos.col };
      }),
    );
  }
  const data: unknown = doc.toJS();
  const locate = makeLocator(doc, lineCounter);
  const problems = schemaProblems(data, file, locate);
  if (problems.length > 0) throw new SpecError(problems);
  const resolved = resolveSpec(data as RawSpec, { file, specLabel: options.specLabel ?? file });
  if (!resolved.ok) {
    throw new SpecError(resolved.problems.map((p) => ({ ...p, ...locate(p.pointer) })));
  }
  return resolved.family;
}

export function loadSpecFile(path: string, options: LoadOptions = {}): Family {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new SpecError([
      { file: options.file ?? path, pointer: '', rule: 'read', message: `cannot read the spec: ${(err as Error).message}` },
    ]);
  }
  return loadSpecText(text, { file: options.file ?? path, specLabel: options.specLabel ?? path });
}
