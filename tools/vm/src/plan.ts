// Renders plan.sh: what the guest's second stage (guest/stage2.sh) does in one run. Everything
// that comes from the caller is single-quoted, so no value can change what the guest's shell does.

export interface GuestModule {
  /** Name as the kernel knows it (rmmod, /sys/module). */
  name: string;
  /** Path of the .ko in the guest: its host path, since the guest's root is the host's. */
  guestPath: string;
  /** key=value parameters for insmod. */
  params: string[];
}

/**
 * What runs the command. `sh`: the second stage itself, as pid 1. `systemd`: the second stage
 * sets up as usual, then execs the host's /lib/systemd/systemd as pid 1, which starts the command
 * as a service (usip-vm-command.service, of the small target usip-vm.target) that runs the rest
 * of the second stage: the command under the deadline, unload, dmesg, poweroff.
 */
export const GUEST_INITS = ['sh', 'systemd'] as const;
export type GuestInit = (typeof GUEST_INITS)[number];

export interface GuestPlan {
  release: string;
  /** What runs the command (default sh). */
  init?: GuestInit;
  /** Host path of the kernel's modules, bind-mounted at /lib/modules/<release> in the guest. */
  modulesTree: string | null;
  /** Guest uptime (seconds) at which the command is killed: the guest-side timeout. */
  deadlineSeconds: number;
  unload: boolean;
  modules: GuestModule[];
  /** The command's complete environment. */
  env: Record<string, string>;
  cwd: string;
  command: string[];
  /** Top-level entries of the host's /tmp to keep visible under the guest's fresh /tmp. */
  tmpBinds: string[];
  /**
   * Directories that others may not enter, parents first, which the guest covers with a
   * tmpfs anyone may enter that re-exposes each of their entries (see guestOpenDirs).
   */
  openDirs: string[];
}

export function shellQuote(value: string): string {
  if (value.includes('\0')) throw new Error(`a NUL byte cannot be passed to the guest: ${JSON.stringify(value)}`);
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function checkInit(init: unknown): GuestInit {
  if (!(GUEST_INITS as readonly unknown[]).includes(init)) throw new Error(`init must be one of ${GUEST_INITS.join(', ')} (got ${JSON.stringify(init)})`);
  return init as GuestInit;
}

export function renderPlan(plan: GuestPlan): string {
  if (plan.command.length === 0) throw new Error('no command to run in the guest');
  if (!plan.cwd.startsWith('/')) throw new Error(`the guest working directory must be absolute: ${plan.cwd}`);
  const q = shellQuote;
  const lines: string[] = [
    "# Written by @usip/vm for one run; sourced by the guest's second stage (stage2.sh).",
    `run_kver=${q(plan.release)}`,
    `run_modules_tree=${q(plan.modulesTree ?? '')}`,
    `run_deadline=${Math.max(1, Math.floor(plan.deadlineSeconds))}`,
    `run_unload=${plan.unload ? 1 : 0}`,
    `run_init=${q(checkInit(plan.init ?? 'sh'))}`,
    '',
    'load_plan_modules() {',
    '\t:',
  ];
  for (const m of plan.modules) {
    if (!/^[A-Za-z0-9_]+$/.test(m.name)) throw new Error(`bad module name "${m.name}"`);
    lines.push(`\tload_module ${[m.name, m.guestPath, ...m.params].map(q).join(' ')}`);
  }
  lines.push('}', '', 'keep_plan_tmp_entries() {', '\t:');
  for (const entry of plan.tmpBinds) {
    if (entry === '' || entry.includes('/') || entry === '.' || entry === '..') throw new Error(`bad /tmp entry "${entry}"`);
    lines.push(`\tkeep_tmp_entry ${q(entry)}`);
  }
  lines.push('}', '', 'open_plan_dirs() {', '\t:');
  for (const dir of plan.openDirs) {
    if (!dir.startsWith('/') || dir === '/') throw new Error(`a directory to open must be absolute and not /: "${dir}"`);
    lines.push(`\topen_dir ${q(dir)}`);
  }
  lines.push('}', '');
  const envArgs = Object.entries(plan.env).map(([k, v]) => {
    if (!ENV_NAME.test(k)) throw new Error(`bad environment variable name "${k}"`);
    return q(`${k}=${v}`);
  });
  // setsid: the command gets its own process group, which the watchdog kills as a whole.
  lines.push(
    'guest_command() {',
    `\texec $B setsid $B env -i ${envArgs.join(' ')} \\`,
    `\t\t/bin/sh -c ${q('cd -- "$1" || exit 126; shift; exec "$@"')} usip-vm \\`,
    `\t\t${[plan.cwd, ...plan.command].map(q).join(' ')}`,
    '}',
    '',
  );
  return lines.join('\n');
}
