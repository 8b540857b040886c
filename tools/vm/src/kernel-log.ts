// Finds the signs of a kernel bug in a kernel log. A run whose log has any of them fails, even
// if the command succeeded: a WARN or a lockdep splat is a bug in the module under test.

export interface KernelLogRule {
  label: string;
  pattern: RegExp;
}

// Specific rules come first, so a line gets the most telling label ("WARNING: possible
// circular locking dependency detected" is a lockdep report; "BUG: KASAN: ..." a KASAN one).
export const KERNEL_LOG_RULES: readonly KernelLogRule[] = [
  { label: 'kernel panic', pattern: /Kernel panic/ },
  {
    label: 'lockdep',
    pattern:
      /possible circular locking dependency|circular locking|inconsistent lock state|possible recursive locking|possible irq lock inversion|bad unlock balance|suspicious RCU usage|lock held when returning to user space|held lock freed|INFO: lockdep/,
  },
  { label: 'hung task', pattern: /hung task|hung_task|blocked for more than \d+ seconds/ },
  { label: 'soft lockup', pattern: /soft lockup|hard LOCKUP|detected stalls? on CPU/ },
  { label: 'KASAN', pattern: /\bKASAN\b/ },
  { label: 'UBSAN', pattern: /\bUBSAN\b/ },
  { label: 'KFENCE', pattern: /\bKFENCE\b/ },
  { label: 'refcount', pattern: /refcount_t/ },
  { label: 'list corruption', pattern: /list_(?:add|del)\S* corruption/ },
  { label: 'memory leak', pattern: /kmemleak: \d+ new suspected memory leaks|unreferenced object 0x/ },
  { label: 'general protection fault', pattern: /general protection fault/ },
  { label: 'oops', pattern: /\bOops\b|[Uu]nable to handle (?:kernel|page fault)|kernel NULL pointer dereference/ },
  // "kernel BUG at", "BUG: sleeping function called...", "BUG kmalloc-64 (...): Object already free"
  { label: 'BUG', pattern: /\bBUG\b/ },
  { label: 'WARNING', pattern: /\bWARNING:/ },
  { label: 'call trace', pattern: /\bCall Trace:/ },
] as const;

export interface KernelLogFinding {
  /** Which rule matched: "WARNING", "BUG", "lockdep", "hung task", ... */
  label: string;
  /** The offending log line, as logged. */
  line: string;
}

/** The offending lines of a kernel log, in order; a line several rules match is reported once. */
export function classifyKernelLog(log: string): KernelLogFinding[] {
  const findings: KernelLogFinding[] = [];
  for (const rawLine of log.split('\n')) {
    const line = rawLine.replace(/\r$/, '').trim();
    if (line === '') continue;
    const rule = KERNEL_LOG_RULES.find((r) => r.pattern.test(line));
    if (rule) findings.push({ label: rule.label, line });
  }
  return findings;
}
