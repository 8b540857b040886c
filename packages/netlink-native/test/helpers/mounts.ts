// Helpers of the mount API tests: a mountinfo line parser (the kernel's format, with its octal
// escapes), a mount namespace of our own to change mounts in, and child scripts run as
// another user or in another namespace.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const packageDir = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const distIndex = join(packageDir, 'dist/index.js');

/** `\040` and friends (the kernel's mangle of space, tab, newline and backslash) decoded. */
export function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_match, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

export interface MountinfoLine {
  id: number;
  parentId: number;
  major: number;
  minor: number;
  root: string;
  mountPoint: string;
  mountOptions: string;
  optional: string[];
  fsType: string;
  source: string;
  superOptions: string;
}

/** One line of /proc/<pid>/mountinfo (proc(5)). */
export function parseMountinfoLine(line: string): MountinfoLine {
  const fields = line.split(' ');
  const dash = fields.indexOf('-', 6);
  if (dash < 0 || fields.length < dash + 4) throw new Error(`not a mountinfo line: ${line}`);
  const [major, minor] = fields[2]!.split(':').map(Number);
  return {
    id: Number(fields[0]),
    parentId: Number(fields[1]),
    major: major!,
    minor: minor!,
    root: unescape(fields[3]!),
    mountPoint: unescape(fields[4]!),
    mountOptions: fields[5]!,
    optional: fields.slice(6, dash),
    fsType: fields[dash + 1]!,
    source: unescape(fields[dash + 2]!),
    superOptions: fields[dash + 3]!,
  };
}

export function mountinfoLines(text: string): string[] {
  return text.split('\n').filter((line) => line.length > 0);
}

/** A process (`sleep`) in a private mount namespace of its own, and a way to run shell
 *  commands in that namespace (nsenter). Mounts made there never reach the host's. */
export class PrivateNamespace {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly dir: string;

  private constructor(child: ChildProcess, dir: string) {
    this.child = child;
    this.pid = child.pid!;
    this.dir = dir;
  }

  static async create(): Promise<PrivateNamespace> {
    const dir = mkdtempSync(join(tmpdir(), 'usip-ns-'));
    // unshare execs sleep in the same process once the namespace is made.
    const child = spawn('unshare', ['-m', '--propagation', 'private', 'sleep', 'infinity'], { stdio: 'ignore' });
    const ours = readlinkSync('/proc/self/ns/mnt');
    const deadline = Date.now() + 5000;
    for (;;) {
      let theirs: string | undefined;
      try {
        theirs = readlinkSync(`/proc/${child.pid}/ns/mnt`);
      } catch {
        theirs = undefined;
      }
      if (theirs !== undefined && theirs !== ours) {
        // The namespace exists once unshare(2) returned; sleep runs once exec is done.
        const comm = execFileSync('cat', [`/proc/${child.pid}/comm`], { encoding: 'utf8' }).trim();
        if (comm === 'sleep') break;
      }
      if (Date.now() > deadline) throw new Error('unshare -m did not make a namespace within 5 s');
      await new Promise((done) => setTimeout(done, 10));
    }
    return new PrivateNamespace(child, dir);
  }

  get mountinfoPath(): string {
    return `/proc/${this.pid}/mountinfo`;
  }

  get nsPath(): string {
    return `/proc/${this.pid}/ns/mnt`;
  }

  /** Runs a shell script in the namespace (cwd: its directory). */
  run(script: string): string {
    return execFileSync('nsenter', ['-t', String(this.pid), '-m', 'sh', '-ec', `cd '${this.dir}'; ${script}`], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  }

  /** Ends the process; the namespace and its mounts go with it. */
  close(): void {
    this.child.kill('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A copy of the built package that any user can read (the repository may sit in a private
 *  directory): dist/ in a fresh directory under /tmp, mode 755. */
export function publicCopyOfDist(): { index: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'usip-dist-'));
  cpSync(join(packageDir, 'dist'), join(dir, 'dist'), { recursive: true });
  cpSync(join(packageDir, 'test/host'), join(dir, 'host'), { recursive: true });
  execFileSync('chmod', ['-R', 'a+rX', dir]);
  return { index: join(dir, 'dist/index.js'), remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A BigInt-safe JSON reviver for the child scripts' reports ("123n" back to 123n). */
export function reviveBigints(_key: string, value: unknown): unknown {
  return typeof value === 'string' && /^\d+n$/.test(value) ? BigInt(value.slice(0, -1)) : value;
}
