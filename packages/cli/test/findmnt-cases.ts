// The results of host/findmnt.sh (usip mounts next to findmnt), read by findmnt.test.ts on this
// machine and by vm-mounts.test.ts from the guests.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** How many cases findmnt.sh runs for each backend and user. */
export const FINDMNT_CASES = 27;

/** Each case of findmnt.sh: its name, usip's and findmnt's output and exit statuses ("usip findmnt"). */
export function cases(directory: string): { name: string; usip: string; findmnt: string; status: string }[] {
  return readdirSync(directory)
    .filter((f) => f.endsWith('.status'))
    .map((f) => f.slice(0, -'.status'.length))
    .sort()
    .map((name) => ({
      name,
      usip: readFileSync(join(directory, `${name}.usip`), 'latin1'),
      findmnt: readFileSync(join(directory, `${name}.findmnt`), 'latin1'),
      status: readFileSync(join(directory, `${name}.status`), 'utf8').trim(),
    }));
}
