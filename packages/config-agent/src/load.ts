import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import { notifierFileSchema, type NotifierFileContent } from './schema.js';

/** One thing wrong with a notifier file: where (file + JSON pointer), which rule, and why. */
export interface ConfigProblem {
  file: string;
  /** JSON pointer of the offending value ('' for the whole document). */
  pointer: string;
  /** The schema keyword that failed (e.g. 'enum', 'required'), or 'json' for a syntax error. */
  rule: string;
  message: string;
}

export interface NotifierFile extends NotifierFileContent {
  path: string;
}

export class NotifierFileError extends Error {
  readonly problems: ConfigProblem[];
  constructor(problems: ConfigProblem[]) {
    super(problems.map(formatProblem).join('\n'));
    this.name = 'NotifierFileError';
    this.problems = problems;
  }
}

export function formatProblem(p: ConfigProblem): string {
  return `${p.file}: ${p.pointer || '/'}: ${p.message} [${p.rule}]`;
}

const ajv = new Ajv({ allErrors: true, discriminator: true, strict: true });
const validate = ajv.compile<NotifierFileContent>(notifierFileSchema);

function describe(error: ErrorObject): string {
  switch (error.keyword) {
    case 'enum':
      return `must be one of ${(error.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    case 'additionalProperties':
      return `unknown property ${JSON.stringify(error.params.additionalProperty)}`;
    case 'required':
      return `missing required property ${JSON.stringify(error.params.missingProperty)}`;
    case 'discriminator':
      return error.params.error === 'mapping'
        ? `unknown notifier type ${JSON.stringify(error.params.tagValue)} (expected "mtab" or "storage")`
        : `notifier type must be a string`;
    default:
      return error.message ?? error.keyword;
  }
}

function jsonSyntaxProblem(file: string, text: string, error: Error): ConfigProblem {
  // Node reports "... at position N"; turn it into line:column, which an admin can act on.
  const match = /position (\d+)/.exec(error.message);
  let where = '';
  if (match) {
    const before = text.slice(0, Number(match[1]));
    const line = before.split('\n').length;
    const column = before.length - before.lastIndexOf('\n');
    where = ` (line ${line}, column ${column})`;
  }
  return { file, pointer: '', rule: 'json', message: `not valid JSON${where}: ${error.message}` };
}

/** Parses and validates one notifier file's text; throws NotifierFileError naming every problem. */
export function parseNotifierFile(file: string, text: string): NotifierFile {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    throw new NotifierFileError([jsonSyntaxProblem(file, text, error as Error)]);
  }
  if (!validate(document)) {
    const problems = (validate.errors ?? []).map((e) => ({
      file,
      // A discriminator error is raised on the notifier object; point at its `type` instead.
      pointer: e.keyword === 'discriminator' ? `${e.instancePath}/${String(e.params.tag)}` : e.instancePath,
      rule: e.keyword,
      message: describe(e),
    }));
    throw new NotifierFileError(problems);
  }
  return { ...document, path: file };
}

export async function readNotifierFile(file: string): Promise<NotifierFile> {
  return parseNotifierFile(file, await readFile(file, 'utf8'));
}

/** The notifier files of a directory: only `*.json` count, read in name order. */
export async function listNotifierFiles(dir: string): Promise<string[]> {
  const names = await readdir(dir);
  return names
    .filter((name) => name.endsWith('.json') && !name.startsWith('.'))
    .sort()
    .map((name) => join(dir, name));
}

/**
 * Keeps the last good content of each notifier file. A file that fails validation does not
 * replace what was accepted before: its problems are reported and the old notifiers stay.
 */
export class NotifierConfig {
  readonly #files = new Map<string, NotifierFile>();

  get files(): NotifierFile[] {
    return [...this.#files.values()];
  }

  /** Applies a file's new text; returns the problems (empty when the new content was taken). */
  update(file: string, text: string): ConfigProblem[] {
    try {
      this.#files.set(file, parseNotifierFile(file, text));
      return [];
    } catch (error) {
      if (error instanceof NotifierFileError) return error.problems;
      throw error;
    }
  }

  /** Forgets a file that was deleted; its notifiers go away. */
  remove(file: string): boolean {
    return this.#files.delete(file);
  }

  /** Reads every notifier file of `dir`, keeping the last good content of files that fail. */
  async loadDirectory(dir: string): Promise<ConfigProblem[]> {
    const present = await listNotifierFiles(dir);
    for (const known of [...this.#files.keys()]) {
      if (!present.includes(known)) this.#files.delete(known);
    }
    const problems: ConfigProblem[] = [];
    for (const file of present) {
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (error) {
        problems.push({ file, pointer: '', rule: 'read', message: (error as Error).message });
        continue;
      }
      problems.push(...this.update(file, text));
    }
    return problems;
  }
}
