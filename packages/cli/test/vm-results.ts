// What the guest scripts of the VM tests leave in the run's results directory: files, and
// steps (a command's exit status, stdout and stderr as NAME.status, NAME.out, NAME.err).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { VmRunResult } from '@usip/vm';

export interface Step {
  status: number;
  out: string;
  err: string;
}

export function read(run: VmRunResult, file: string): string {
  return readFileSync(join(run.resultsDir, file), 'utf8');
}

export function step(run: VmRunResult, name: string): Step {
  return { status: Number(read(run, `${name}.status`)), out: read(run, `${name}.out`), err: read(run, `${name}.err`) };
}
