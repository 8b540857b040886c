// Finds the signs of a kernel bug in a kernel log. A run whose log has any of them fails, even
// if the command succeeded: a WARN or a lockdep splat is a bug in the module under test.

export interface KernelLogRule {
  label: string;
  pattern: RegExp;
}

export const KERNEL_LOG_RULES: readonly KernelLogRule[] = [
  { label: 'kernel panic', pattern: /Kernel panic/ },
  { label: 'oops', pattern: /\bOops\b|Unable to handle kernel/ },
  { label: 'general protection fault', pattern: /general protection fault/ },
  // "kernel BUG at", "BUG: sleeping function called...", "BUG: KASAN: ...", "BUG kmalloc-64 (...)"
  { label: 'BUG', pattern: /\bBUG\b/ },
  { label: 'WARNING', pattern: /\bWARNING:/ },
  { label: 'call trace', pattern: /\bCall Trace:/ },
  {
    label: 'lockdep',
    pattern:
      /possible circular locking dependency|inconsistent lock state|possible recursive locking|possible irq lock inversion|bad unlock balance|suspicious RCU usage|lock held when returning to user space|held lock freed|circular locking|INFO: lockdep/,
  },
  { label: 'hung task', pattern: /hung task|hung_task|blocked for more than \d+ seconds/ },
  { label: 'soft lockup', pattern: /soft lockup|hard LOCKUP|rcu: INFO: \S+ detected stalls|detected stall/ },
  { label: 'KASAN', pattern: /\bKASAN\b/ },
  { label: 'UBSAN', pattern: /\bUBSAN\b/ },
  { label: 'KFENCE', pattern: /\bKFENCE\b/ },
  { label: 'refcount', pattern: /refcount_t/ },
  { label: 'list corruption', pattern: /list_(?:add|del)\S* corruption/ },
  { label: 'memory leak', pattern: /kmemleak: \d+ new suspected memory leaks|unreferenced object 0x/ },
] as const;

/**
 * One entry per offending line, as "<label>: <line>", in log order. A line that several rules
 * match is reported once, under the first rule.
 */
export function classifyKernelLog(log: string): string[] {
  const problems: string[] = [];
  for (const rawLine of log.split('\n')) {
    const line = rawLine.replace(/\r$/, '').trimEnd();
    if (line === '') continue;
    const rule = KERNEL_LOG_RULES.find((r) => r.pattern.test(line));
    if (rule) problems.push(`${rule.label}: ${line.trim()}`);
  }
  return problems;
}
