import { lstat, readdir, realpath } from 'node:fs/promises';
import { join } from 'node:path';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { ENTRY_RULES, MAX_FILE_BYTES, PERMISSIONS_RULE, readEntry, runPermissionProblems } from './files.js';
import validateNotifierFile from './generated/validate-notifier-file.cjs';
import { PATTERN_MEANINGS, RENAMED_KEYS, RENAMED_VALUES, type NotifierFileContent } from './schema.js';

/** One thing wrong with a notifier file: where (file + JSON pointer), which rule, and why. */
export interface ConfigProblem {
  file: string;
  /** JSON pointer of the offending value ('' for the whole document). */
  pointer: string;
  /**
   * The schema keyword that failed (e.g. 'enum', 'required'), 'json' for a syntax error, or one
   * of the agent's own rules beyond the schema: 'notify' (a notifier that would do nothing, or a
   * `run` that could never be run) and 'run' (a `timeoutSeconds` without a `run`). About the file
   * rather than its content: 'type' (not a regular file: skipped), 'size' (larger than
   * MAX_FILE_BYTES: skipped), 'read' (could not be read), and 'permissions' (a file with `run`
   * that others than root or the agent's user could have written: its commands are not run).
   */
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

/** The rules about the file itself rather than a place in its content, and what they mean. */
const FILE_RULES: ReadonlyMap<string, string> = new Map([
  ...ENTRY_RULES.map((rule) => [rule, 'skipped'] as const),
  [PERMISSIONS_RULE, 'refusing to run commands'],
]);

/**
 * A problem on one line: `FILE: POINTER: MESSAGE [RULE]`, or for a problem with the file itself
 * `FILE: skipped: MESSAGE [RULE]` / `FILE: refusing to run commands: MESSAGE [permissions]`.
 */
export function formatProblem(p: ConfigProblem): string {
  const about = FILE_RULES.get(p.rule);
  if (about !== undefined && p.pointer === '') return `${p.file}: ${about}: ${p.message} [${p.rule}]`;
  return `${p.file}: ${p.pointer || '/'}: ${p.message} [${p.rule}]`;
}

// The schema's validator is compiled when the package is built (scripts/generate-validator.ts),
// not at start-up: compiling it took most of the agent's start-up time (seconds in the emulated
// test guests, where each start counts).
const validate = validateNotifierFile as ValidateFunction<NotifierFileContent>;

/** The value at a JSON pointer of the document (ajv's instancePath). */
function valueAt(document: unknown, pointer: string): unknown {
  let value = document;
  for (const part of pointer.split('/').slice(1)) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<string, unknown>)[part.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return value;
}

function describe(error: ErrorObject, document: unknown): string {
  switch (error.keyword) {
    case 'enum': {
      const allowed = error.params.allowedValues as unknown[];
      const list = `must be one of ${allowed.map((v) => JSON.stringify(v)).join(', ')}`;
      // A name spelt the old way gets its new name, so that nobody's file silently stops working.
      const value = valueAt(document, error.instancePath);
      const renamed = typeof value === 'string' && Object.hasOwn(RENAMED_VALUES, value) ? RENAMED_VALUES[value] : undefined;
      return renamed !== undefined && allowed.includes(renamed) ? `${JSON.stringify(value)} is now called ${JSON.stringify(renamed)}; ${list}` : list;
    }
    case 'additionalProperties': {
      const key = String(error.params.additionalProperty);
      const renamed = Object.hasOwn(RENAMED_KEYS, key) ? RENAMED_KEYS[key] : undefined;
      return renamed !== undefined ? `unknown key ${JSON.stringify(key)} (it is called ${JSON.stringify(renamed)})` : `unknown property ${JSON.stringify(key)}`;
    }
    case 'required':
      return `missing required property ${JSON.stringify(error.params.missingProperty)}`;
    case 'pattern':
      return PATTERN_MEANINGS[String(error.params.pattern)] ?? error.message ?? 'must match a pattern';
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

/**
 * What the schema cannot say: a notifier must do something with its events, and a command is
 * only run for events the agent receives (`notify`).
 */
function semanticProblems(file: string, content: NotifierFileContent): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  content.notifiers.forEach((notifier, index) => {
    const at = `/notifiers/${index}`;
    if (notifier.run !== undefined && notifier.unit !== undefined) {
      problems.push({
        file,
        pointer: `${at}/unit`,
        rule: 'action',
        message: 'a notifier has one action: "run" (a command) or "unit" (a systemd unit to start), not both; put the other in a notifier of its own',
      });
    }
    const action = notifier.run !== undefined ? 'run' : notifier.unit !== undefined ? 'unit' : undefined;
    if (notifier.notify === false && action !== undefined) {
      problems.push({
        file,
        pointer: `${at}/${action}`,
        rule: 'notify',
        message: `"notify" is false, so the agent receives no event to act on; remove "${action}" or "notify"`,
      });
    } else if (notifier.notify === false && notifier.kernLog !== true) {
      problems.push({
        file,
        pointer: `${at}/notify`,
        rule: 'notify',
        message: '"notify" is false and "kernLog" is not true: this notifier would do nothing',
      });
    }
    if (notifier.timeoutSeconds !== undefined && action === undefined) {
      problems.push({
        file,
        pointer: `${at}/timeoutSeconds`,
        rule: 'run',
        message: '"timeoutSeconds" is the time limit of "run" or "unit", which this notifier lacks',
      });
    }
  });
  return problems;
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
      message: describe(e, document),
    }));
    throw new NotifierFileError(problems);
  }
  const problems = semanticProblems(file, document);
  if (problems.length > 0) throw new NotifierFileError(problems);
  return { ...document, path: file };
}

export interface LoadOptions {
  /** The largest file read (default MAX_FILE_BYTES, 1 MiB). */
  maxBytes?: number;
  /** Whose files may run commands besides root's (default: this process's effective uid). */
  euid?: number;
}

/** What loading one directory entry as a notifier file gave. */
export type LoadResult =
  /** The entry does not exist (any more). */
  | { kind: 'gone' }
  | { kind: 'valid'; content: NotifierFile }
  /**
   * It cannot be used: `stage` 'entry' (not read: not a regular file, too big, unreadable),
   * 'content' (invalid JSON or schema) or 'permissions' (its commands may not be run).
   */
  | { kind: 'problems'; stage: 'entry' | 'content' | 'permissions'; problems: ConfigProblem[] };

/**
 * Reads one entry of the configuration directory (only a regular file, or a symbolic link to
 * one, of at most 1 MiB; never blocking on a FIFO), validates it, and for a file with `run`
 * applies the permission rule (runPermissionProblems).
 */
export async function loadNotifierFile(file: string, options: LoadOptions = {}): Promise<LoadResult> {
  const read = await readEntry(file, options.maxBytes ?? MAX_FILE_BYTES);
  if (read.kind === 'gone') return read;
  if (read.kind === 'skipped') return { kind: 'problems', stage: 'entry', problems: [read.problem] };
  let content: NotifierFile;
  try {
    content = parseNotifierFile(file, read.text);
  } catch (error) {
    if (error instanceof NotifierFileError) return { kind: 'problems', stage: 'content', problems: error.problems };
    throw error;
  }
  // `unit` runs systemctl as the agent's user (root): the same rule as `run`.
  if (content.notifiers.some((notifier) => notifier.run !== undefined || notifier.unit !== undefined)) {
    const problems = await runPermissionProblems(file, read, options.euid);
    if (problems.length > 0) return { kind: 'problems', stage: 'permissions', problems };
  }
  return { kind: 'valid', content };
}

/** loadNotifierFile() for one file: its content, or a NotifierFileError naming every problem. */
export async function readNotifierFile(file: string, options: LoadOptions = {}): Promise<NotifierFile> {
  const result = await loadNotifierFile(file, options);
  if (result.kind === 'valid') return result.content;
  if (result.kind === 'gone') throw new NotifierFileError([{ file, pointer: '', rule: 'read', message: 'no such file' }]);
  throw new NotifierFileError(result.problems);
}

/** Whether a directory entry is a notifier file: `*.json`, not hidden (editors' temporary files are). */
export function isNotifierFileName(name: string): boolean {
  return name.endsWith('.json') && !name.startsWith('.');
}

/** The notifier files of a directory: only `*.json` count, read in name order. */
export async function listNotifierFiles(dir: string): Promise<string[]> {
  const names = await readdir(dir);
  return names
    .filter(isNotifierFileName)
    .sort()
    .map((name) => join(dir, name));
}

/**
 * One name of the configuration directories (systemd's `.d` rules): the entry that counts is the
 * one in the directory of highest precedence that has the name; the same name in the directories
 * below is overridden (not read). A symbolic link to /dev/null there masks the name: nothing of it
 * is read, in any directory.
 */
export interface ConfigEntry {
  name: string;
  /** The entry that counts (for a masked name: the link that masks it). */
  path: string;
  masked: boolean;
  /** The entries of the same name in directories of lower precedence, in precedence order. */
  overridden: string[];
}

const errorCode = (error: unknown) => (error as NodeJS.ErrnoException)?.code;

/** Whether `path` is a symbolic link to /dev/null (directly or through other links): a mask. */
async function isMask(path: string): Promise<boolean> {
  try {
    if (!(await lstat(path)).isSymbolicLink()) return false;
    return (await realpath(path)) === '/dev/null';
  } catch {
    return false;
  }
}

/** The entry of one name over the directories (highest precedence first); undefined: in none. */
export async function resolveConfigEntry(dirs: readonly string[], name: string): Promise<ConfigEntry | undefined> {
  const present: string[] = [];
  for (const dir of dirs) {
    const path = join(dir, name);
    try {
      await lstat(path);
      present.push(path);
    } catch (error) {
      // ENOENT: not in this directory; ENOTDIR: the directory is not one (any more).
      if (errorCode(error) !== 'ENOENT' && errorCode(error) !== 'ENOTDIR') present.push(path);
    }
  }
  const [path, ...overridden] = present;
  if (path === undefined) return undefined;
  return { name, path, masked: await isMask(path), overridden };
}

/** What listConfigEntries() found. */
export interface ConfigListing {
  /** Every name, ordered by name (as systemd orders a `.d` directory's files). */
  entries: ConfigEntry[];
  /** The directories that do not exist: skipped, as systemd does. */
  missing: string[];
}

/**
 * The notifier files of several directories, highest precedence first (/etc/usip.d, /run/usip.d,
 * /usr/lib/usip.d by default): the union of their names, each resolved by resolveConfigEntry().
 * A directory that does not exist is skipped; one that cannot be read (not a directory, EACCES)
 * is an error naming it.
 */
export async function listConfigEntries(dirs: readonly string[]): Promise<ConfigListing> {
  const names = new Set<string>();
  const missing: string[] = [];
  for (const dir of dirs) {
    let found: string[];
    try {
      found = await readdir(dir);
    } catch (error) {
      if (errorCode(error) === 'ENOENT') {
        missing.push(dir);
        continue;
      }
      throw new Error(`cannot read the configuration directory ${dir}: ${(error as Error).message}`, { cause: error });
    }
    for (const name of found) if (isNotifierFileName(name)) names.add(name);
  }
  // Byte order, not the locale's: as systemd sorts (strcmp), so that "10-" comes before "9-".
  const sorted = [...names].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const entries: ConfigEntry[] = [];
  for (const name of sorted) {
    const entry = await resolveConfigEntry(dirs, name);
    if (entry !== undefined) entries.push(entry);
  }
  return { entries, missing };
}

/** For people: what an entry overrides or masks, one line each (none when it is alone). */
export function describeEntry(entry: ConfigEntry): string[] {
  if (entry.masked) {
    if (entry.overridden.length === 0) return [`${entry.path}: masked (a symbolic link to /dev/null), nothing of this name below it`];
    return entry.overridden.map((below) => `${below}: masked by ${entry.path} (a symbolic link to /dev/null)`);
  }
  return entry.overridden.map((below) => `${below}: overridden by ${entry.path}`);
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

  /**
   * Reads every notifier file of `dir` (loadNotifierFile), keeping the last good content of files
   * that fail; entries that are not read (not regular files, too big) are among the problems.
   */
  async loadDirectory(dir: string, options: LoadOptions = {}): Promise<ConfigProblem[]> {
    return (await this.loadDirectories([dir], options)).problems;
  }

  /**
   * Reads the notifier files of several directories, highest precedence first, by the `.d` rules
   * (listConfigEntries): for each name, the entry of the highest directory that has it, unless
   * masked. Returns the problems and the listing (what was overridden, masked, missing).
   */
  async loadDirectories(dirs: readonly string[], options: LoadOptions = {}): Promise<{ problems: ConfigProblem[]; listing: ConfigListing }> {
    const listing = await listConfigEntries(dirs);
    const present = listing.entries.filter((e) => !e.masked).map((e) => e.path);
    for (const known of [...this.#files.keys()]) {
      if (!present.includes(known)) this.#files.delete(known);
    }
    const problems: ConfigProblem[] = [];
    for (const file of present) {
      const result = await loadNotifierFile(file, options);
      if (result.kind === 'valid') this.#files.set(file, result.content);
      else if (result.kind === 'gone') this.#files.delete(file);
      else problems.push(...result.problems);
    }
    return { problems, listing };
  }
}
