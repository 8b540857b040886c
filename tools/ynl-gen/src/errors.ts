// Errors about a spec always say where (file, line and column when known, JSON pointer), what
// is wrong, and which rule it broke, so that the author can fix the spec without reading our code.

export interface SpecProblem {
  readonly file: string;
  /** JSON pointer (RFC 6901) of the offending value, '' for the document itself. */
  readonly pointer: string;
  /** The rule that was broken: a JSON Schema keyword or the name of a semantic rule. */
  readonly rule: string;
  readonly message: string;
  readonly line?: number | undefined;
  readonly column?: number | undefined;
}

export function formatProblem(problem: SpecProblem): string {
  const where =
    problem.line === undefined ? problem.file : `${problem.file}:${problem.line}:${problem.column ?? 1}`;
  return `${where}: ${problem.pointer || '/'}: ${problem.message} (rule: ${problem.rule})`;
}

export class SpecError extends Error {
  readonly problems: readonly SpecProblem[];

  constructor(problems: readonly SpecProblem[]) {
    const first = problems[0];
    const head = first === undefined ? 'invalid spec' : formatProblem(first);
    const more = problems.length > 1 ? `\n${problems.slice(1).map(formatProblem).join('\n')}` : '';
    super(`${head}${more}`);
    this.name = 'SpecError';
    this.problems = problems;
  }
}

/** Escapes one JSON pointer segment. */
export function pointerSegment(segment: string | number): string {
  return String(segment).replace(/~/g, '~0').replace(/\//g, '~1');
}

export function joinPointer(base: string, ...segments: (string | number)[]): string {
  return base + segments.map((s) => `/${pointerSegment(s)}`).join('');
}

export function splitPointer(pointer: string): string[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}
