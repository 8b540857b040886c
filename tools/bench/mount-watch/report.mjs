// Turns the JSON of a mount-watch run (guest.mjs) into the tables tools/bench/mount-watch.mjs
// prints and docs/mount-benchmark.md quotes: medians, ratios, and the issue's targets.

export const TARGETS = {
  perChangeVsMountinfo: 100, // (a) / (b) CPU per change at the largest N: at least this
  flatInN: 1.5, // (b) CPU per change, largest N / smallest N: at most this
  dumpVsMountinfo: 1.0, // mounts() / (read + parseMountinfo) wall time: at most this
  vsFanotify: 2, // issue 11: USIP on 7.x, CPU per change / (f)'s: at most this
  stormVsC: 3, // issue 12: storm CPU of the Node watcher (b) / the lean C client (b'): at most this
  perChangeVsFloor: 2, // issue 12: (b) CPU per change / Node's wake-up floor (pipe): at most this
};
export const KEYS = ['a', 'b', 'bc', 'c', 'f', 'g'];

export const median = (xs) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((x, y) => x - y);
  const m = Math.floor(s.length / 2);
  return s.length === 0 ? NaN : s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const quantile = (xs, q) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((x, y) => x - y);
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor(q * s.length))];
};
const sum = (xs) => xs.reduce((a, b) => a + b, 0);
// A latency at or below zero (the watcher knew before the mounter's syscall returned to it: the
// event is posted from inside the syscall, and one vCPU may run the watcher first) makes a
// ratio meaningless: none.
const latencyRatio = (x, y) => (x > 0 && y > 0 ? x / y : NaN);

const NAMES = {
  a: '(a) poll + re-read mountinfo (C)',
  b: '(b) USIP watchMounts() (Node)',
  bc: "(b') USIP, lean C client",
  c: '(c) poll + listmount/statmount (C)',
  f: '(f) fanotify + statmount per event (C)',
  g: '(g) USIP watchMounts(), native backend (Node)',
  none: 'no watcher',
};

function ms(x, digits) {
  if (!Number.isFinite(x)) return '–';
  const d = digits ?? (Math.abs(x) >= 100 ? 0 : Math.abs(x) >= 10 ? 1 : Math.abs(x) >= 1 ? 2 : 3);
  return x.toFixed(d);
}
const ratio = (x) => (!Number.isFinite(x) ? '–' : x >= 100 ? `${x.toFixed(0)}x` : x >= 10 ? `${x.toFixed(1)}x` : `${x.toFixed(2)}x`);

function table(header, rows) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => `| ${cells.map((c, i) => String(c).padEnd(widths[i])).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

/** The per-change figures of one watcher at one N, over all its rounds. */
export function perChange(results, n, key) {
  const runs = results.sizes[n]?.perChange.filter((p) => p.watcher === key) ?? [];
  if (runs.length === 0) return undefined;
  const changes = sum(runs.map((r) => r.changes));
  const latencies = runs.flatMap((r) => [...r.latencyMs.mount, ...r.latencyMs.umount]);
  return {
    changes,
    cpuPerChangeMs: sum(runs.map((r) => r.cpuUs)) / changes / 1e3,
    roundsMs: runs.map((r) => r.cpuPerChangeUs / 1e3),
    latencyMs: median(latencies),
    latencyP90Ms: quantile(latencies, 0.9),
    mountLatencyMs: median(runs.flatMap((r) => r.latencyMs.mount)),
    umountLatencyMs: median(runs.flatMap((r) => r.latencyMs.umount)),
    reads: sum(runs.map((r) => r.reads)),
    resyncs: sum(runs.map((r) => r.resyncs ?? 0)),
    mounts: runs[0].mounts,
    initialLearnMs: median(runs.map((r) => r.initialLearnMs)),
  };
}

export function summarize(results) {
  const sizes = Object.keys(results.sizes).map(Number).sort((x, y) => x - y);
  const small = sizes[0];
  const large = sizes[sizes.length - 1];
  const pc = {};
  for (const n of sizes) for (const k of KEYS) (pc[k] ??= {})[n] = perChange(results, n, k);
  const dump = {};
  for (const n of sizes) {
    const d = results.sizes[n].dump;
    if (!d) continue;
    const dumpMs = median(d.dump.map((x) => x.wallMs));
    const parseMs = median(d.parse.map((x) => x.wallMs));
    dump[n] = {
      mounts: d.dumpMounts,
      dumpMs,
      parseMs,
      dumpCpuMs: median(d.dump.map((x) => x.cpuMs)),
      parseCpuMs: median(d.parse.map((x) => x.cpuMs)),
      ratio: dumpMs / parseMs,
      reps: d.reps,
      cReadMs: median((d.inC ?? []).map((x) => x.readMountinfoMs)),
      cDumpMs: median((d.inC ?? []).map((x) => x.usipDumpMs)),
      cDumpParseMs: median((d.inC ?? []).map((x) => x.usipDumpParseMs)),
    };
  }
  const storm = results.sizes[large].storm ?? [];
  const lc = results.sizes[large].listenerCost;
  let listener;
  if (lc) {
    listener = { pairsPerBlock: lc.pairsPerBlock, blocks: lc.none.length };
    for (const c of ['none', 'elsewhere', 'here', 'watcher']) {
      const blocks = lc[c] ?? [];
      if (blocks.length === 0) continue;
      listener[c] = {
        perPairUs: median(blocks.map((b) => b.perPairUs)),
        mountUs: median(blocks.map((b) => b.mountUs)),
        umountUs: median(blocks.map((b) => b.umountUs)),
        cpuUs: median(blocks.map((b) => b.mounterCpuPerPairUs)),
        events: sum(blocks.map((b) => b.events ?? 0)),
        lost: sum(blocks.map((b) => b.lost ?? 0)),
        resyncs: sum(blocks.map((b) => b.resyncs ?? 0)),
      };
    }
  }
  const b = pc.b;
  const bc = pc.bc;
  const targets = {
    perChangeC: bc?.[large] && pc.a?.[large] ? pc.a[large].cpuPerChangeMs / bc[large].cpuPerChangeMs : NaN,
    flatC: bc?.[large] && bc?.[small] ? bc[large].cpuPerChangeMs / bc[small].cpuPerChangeMs : NaN,
    perChange: b?.[large] && pc.a?.[large] ? pc.a[large].cpuPerChangeMs / b[large].cpuPerChangeMs : NaN,
    flat: b?.[large] && b?.[small] ? b[large].cpuPerChangeMs / b[small].cpuPerChangeMs : NaN,
    dump: dump[large]?.ratio,
    dumpSmall: dump[small]?.ratio,
  };
  // Issue 11: USIP (module: b, b'; native: g) CPU per change over (f)'s, at each N.
  targets.vsFanotify = {};
  for (const u of ['b', 'bc', 'g']) {
    targets.vsFanotify[u] = {};
    for (const n of sizes) {
      const x = pc[u]?.[n];
      const f = pc.f?.[n];
      targets.vsFanotify[u][n] = x && f ? { cpu: x.cpuPerChangeMs / f.cpuPerChangeMs, latency: latencyRatio(x.latencyMs, f.latencyMs) } : undefined;
    }
  }
  // Issue 12: the Node watcher against the lean C client in the storm, and per change against
  // Node's own wake-up floor measured in the same boot.
  const stormOf = (key) => storm.find((x) => x.watcher === key)?.cpuToCatchUpMs;
  targets.stormVsC = stormOf('b') / stormOf('bc');
  const floor = {};
  targets.vsFloor = {};
  for (const n of sizes) {
    const runs = results.sizes[n].floor ?? [];
    floor[n] = runs.length === 0 ? undefined : median(runs.map((x) => x.cpuUs)) / 1e3;
    targets.vsFloor[n] = pc.b?.[n] && floor[n] ? pc.b[n].cpuPerChangeMs / floor[n] : NaN;
  }
  return { sizes, small, large, pc, dump, storm, listener, targets, floor };
}

/** The report of a run: one section per kernel (or the one kernel of an older run). */
export function report(results) {
  if (!Array.isArray(results.kernels)) return [reportKernel(results), ...targetLines(results, summarize(results))].join('\n');
  const out = [];
  out.push(`mount-watch: ${results.date}; kernels ${results.kernels.map((k) => k.kernel).join(', ')}`);
  if (results.host) {
    const h = results.host;
    const load = (l) => (l ? l.map((x) => x.toFixed(1)).join(' ') : '?');
    out.push(`host: ${h.kernel}, ${h.cpus} x ${h.cpu}; QEMU -accel ${h.qemuAccel ?? '?'}; load average ${load(h.loadavgBefore)} before, ${load(h.loadavgAfter)} after; VM runs ${Math.round(h.vmSeconds)} s`);
  }
  out.push('');
  for (const k of results.kernels) {
    out.push(`=== kernel ${k.kernel} ===`, reportKernel({ ...k, hostSide: undefined, host: undefined }), ...targetLines(k, summarize(k)), '');
  }
  if (results.hostSide) out.push(hostLines({ ...results.kernels[0], hostSide: results.hostSide, host: results.host }, summarize(results.kernels[0])).join('\n'));
  out.push(...fanotifyTarget(results.kernels));
  return out.join('\n');
}

/** Issue 11's target: USIP on 7.x within 2x of fanotify + statmount per change. */
function fanotifyTarget(kernels) {
  const out = [`Issue 11: USIP on 7.x within ${TARGETS.vsFanotify}x of fanotify + statmount (f) per change (CPU per change / (f)'s; latency ratio in brackets)`];
  const rows = [];
  for (const k of kernels) {
    const s = summarize(k);
    for (const u of ['b', 'bc', 'g']) {
      const cells = s.sizes.map((n) => s.targets.vsFanotify[u][n]);
      const why = !s.pc.f || s.sizes.every((n) => !s.pc.f[n]) ? `no (f): ${k.skipped?.f ?? 'not measured'}` : s.sizes.every((n) => !s.pc[u]?.[n]) ? `not measured${k.skipped?.[u] ? `: ${k.skipped[u]}` : ''}` : undefined;
      const big = cells[cells.length - 1];
      const verdict = why ?? (big === undefined ? 'NOT MEASURED' : big.cpu <= TARGETS.vsFanotify ? 'MET' : 'NOT MET');
      rows.push([k.kernel, NAMES[u], ...cells.map((c) => (c ? `${ratio(c.cpu)} (${ratio(c.latency)})` : '–')), verdict]);
    }
  }
  const sizes = summarize(kernels[0]).sizes;
  out.push(table(['kernel', 'USIP watcher', ...sizes.map((n) => `vs (f) N=${n}`), `verdict (N=${sizes[sizes.length - 1]})`], rows));
  return out;
}

function reportKernel(results) {
  const s = summarize(results);
  const { sizes, small, large, pc, dump, storm, listener, targets } = s;
  const out = [];
  out.push(`mount-watch: ${results.date}, kernel ${results.kernel}, ${results.perChangeCpus ?? results.cpus} vCPU(s) for per change and the dump comparison${results.stormCpus ? `, ${results.stormCpus} for the storm and the cost to mount(2) (a second boot)` : ''} (QEMU TCG: absolute times are ~10-50x real hardware; compare ratios), usip ${results.module?.moduleVersion ?? 'not loaded'}${results.vmSeconds ? `; ${Math.round(results.vmSeconds)} s in VMs` : ''}`);
  if (results.host) {
    const h = results.host;
    const load = (l) => (l ? l.map((x) => x.toFixed(1)).join(' ') : '?');
    out.push(`host: ${h.cpus} x ${h.cpu}; QEMU -accel ${h.qemuAccel ?? '?'}; load average ${load(h.loadavgBefore)} before, ${load(h.loadavgAfter)} after; VM run ${Math.round(h.vmSeconds)} s`);
  }
  out.push('');
  out.push('Per change (each watcher alone; a tmpfs mounted on a marker and unmounted, paced): watcher CPU per change, and latency from the mount(2)/umount(2) return until the watcher knows');
  const rows = [];
  for (const k of KEYS) {
    if (!pc[k] || sizes.every((n) => !pc[k][n])) continue;
    const row = [NAMES[k]];
    for (const n of sizes) row.push(ms(pc[k][n]?.cpuPerChangeMs));
    row.push(ratio(pc[k][large]?.cpuPerChangeMs / pc[k][small]?.cpuPerChangeMs));
    for (const n of sizes) row.push(`${ms(pc[k][n]?.latencyMs)} / ${ms(pc[k][n]?.latencyP90Ms)}`);
    row.push(String(pc[k][large]?.changes ?? '–'));
    rows.push(row);
  }
  out.push(
    table(
      ['watcher', ...sizes.map((n) => `CPU ms/change N=${n}`), `N=${large} vs N=${small}`, ...sizes.map((n) => `latency ms median/p90 N=${n}`), 'changes'],
      rows,
    ),
  );
  out.push('');
  for (const [k, why] of Object.entries(results.skipped ?? {})) out.push(`  ${NAMES[k]}: left out: ${why}`);
  if (Object.keys(results.skipped ?? {}).length) out.push('');
  const vs = [];
  for (const u of ['b', 'bc', 'g', 'f']) {
    for (const k of ['a', 'c']) {
      if (!pc[k] || !pc[u] || sizes.every((n) => !pc[u][n] || !pc[k][n])) continue;
      vs.push([
        `${NAMES[k].split(' ')[0]} / ${NAMES[u].split(' ')[0]}`,
        ...sizes.map((n) => ratio(pc[k][n]?.cpuPerChangeMs / pc[u][n]?.cpuPerChangeMs)),
        ...sizes.map((n) => ratio(latencyRatio(pc[k][n]?.latencyMs, pc[u][n]?.latencyMs))),
      ]);
    }
  }
  for (const u of ['b', 'bc', 'g']) {
    if (!pc.f || !pc[u] || sizes.every((n) => !pc[u][n] || !pc.f[n])) continue;
    vs.push([
      `${NAMES[u].split(' ')[0]} / (f)`,
      ...sizes.map((n) => ratio(pc[u][n]?.cpuPerChangeMs / pc.f[n]?.cpuPerChangeMs)),
      ...sizes.map((n) => ratio(latencyRatio(pc[u][n]?.latencyMs, pc.f[n]?.latencyMs))),
    ]);
  }
  if (vs.length) out.push(table(['ratio', ...sizes.map((n) => `CPU N=${n}`), ...sizes.map((n) => `latency N=${n}`)], vs), '');

  if (storm.length) {
    out.push(`Storm at N=${large}: ${storm[0].count} bind mounts, ${storm[0].count} umounts, then a tmpfs on END, as fast as a C mounter can; each watcher alone`);
    const none = storm.find((x) => x.watcher === 'none');
    const bStorm = storm.find((x) => x.watcher === 'b');
    out.push(
      table(
        ['watcher', 'watcher CPU to catch up (s)', 'vs USIP', 'caught up after storm end (s)', 'storm wall (s)', 'mount phase (s)', 'umount phase (s)', 'vs no watcher', 'reads / changes applied', 'events posted / delivered'],
        storm.map((x) => [
          NAMES[x.watcher],
          x.cpuToCatchUpMs === undefined ? '–' : ms(x.cpuToCatchUpMs / 1e3),
          x.cpuToCatchUpMs === undefined || !bStorm ? '–' : ratio(x.cpuToCatchUpMs / bStorm.cpuToCatchUpMs),
          x.caughtUpAfterEndMs === undefined ? '–' : ms(x.caughtUpAfterEndMs / 1e3),
          ms(x.stormMs / 1e3),
          ms(x.mountPhaseMs / 1e3),
          ms(x.umountPhaseMs / 1e3),
          none ? ratio(x.stormMs / none.stormMs) : '–',
          x.watcher === 'f' ? `${x.reads} events, ${x.resyncs} resyncs` : x.watcher === 'b' || x.watcher === 'bc' || x.watcher === 'g' ? `${x.reads} changes, ${x.resyncs} resyncs (${x.tableDumps ?? '?'} table dumps)` : x.reads === undefined ? '–' : `${x.reads} reads`,
          x.module?.posted ? `${x.module.posted} / ${x.module.delivered}${x.module.dropped ? ` (${x.module.dropped} dropped)` : ''}` : '–',
        ]),
      ),
      '',
    );
  }

  if (Object.keys(dump).length) {
    out.push('Whole table into JS objects, in one Node process, alternating: UsipClient.mounts() vs readFileSync(/proc/self/mountinfo) + parseMountinfo()');
    out.push(
      table(
        ['N', 'mounts() ms (CPU ms)', 'mountinfo + parse ms (CPU ms)', 'mounts() / mountinfo', 'in C: read mountinfo ms', 'in C: usip dump ms (+ records)', 'in C: dump / read', 'reps'],
        Object.entries(dump).map(([n, d]) => [
          n,
          `${ms(d.dumpMs)} (${ms(d.dumpCpuMs)})`,
          `${ms(d.parseMs)} (${ms(d.parseCpuMs)})`,
          ratio(d.ratio),
          ms(d.cReadMs),
          `${ms(d.cDumpMs)} (${ms(d.cDumpParseMs)})`,
          ratio(d.cDumpMs / d.cReadMs),
          d.reps,
        ]),
      ),
      '',
    );
  }

  if (listener) {
    const { none } = listener;
    out.push(
      `What a listener costs mount(2), at N=${large}: bind mount + umount pairs from C, ${listener.blocks} blocks of ${listener.pairsPerBlock} per condition, rotating (medians of blocks; ratios to "no listener")`,
    );
    const row = (label, c) => [
      label,
      `${ms(c.mountUs)} (${ratio(c.mountUs / none.mountUs)})`,
      `${ms(c.umountUs)} (${ratio(c.umountUs / none.umountUs)})`,
      `${ms(c.perPairUs)} (${ratio(c.perPairUs / none.perPairUs)})`,
      c === none ? '–' : c === listener.watcher ? `${c.events} changes yielded, ${c.resyncs} resyncs` : `${c.events} / ${c.lost}`,
    ];
    const rows = [
      ['no usip listener (hooks disarmed)', 'none'],
      ['mtab listener in another mount namespace (hooks armed, events filtered out)', 'elsewhere'],
      ['mtab listener in this namespace, receiving only (C)', 'here'],
      ['UsipClient.watchMounts() in this namespace (Node: events + mount-get)', 'watcher'],
    ].filter(([, k]) => listener[k]);
    out.push(
      table(
        ['', 'mount(2) µs', 'umount(2) µs', 'pair µs (wall)', 'events / lost'],
        rows.map(([label, k]) => row(label, listener[k])),
      ),
      '',
    );
  }

  out.push(...hostLines(results, s));
  return out.join('\n');
}

function hostLines(results, s) {
  const { sizes } = s;
  const out = [];
  const hs = results.hostSide;
  if (hs?.replay || hs?.wholeTable) {
    out.push(`On the host (${results.host?.kernel ?? '?'}, real CPU, no TCG; no usip module there): what one whole-table read costs (a) and (c), and the user-space part of the Node client per change (MountWatcher fed encoded events, plus one request round trip through the binding for the mount-get of a mount event)`);
    const rows = [];
    for (const n of sizes) {
      const w = hs.wholeTable?.[n];
      const r = hs.replay?.replay?.find((x) => x.n === n);
      const rt = hs.replay?.request?.cpuPerRequestUs;
      const node = r && rt !== undefined ? (r.cpuPerChangeUs + rt / 2) / 1e3 : NaN; // half the changes are mounts
      rows.push([
        n,
        w ? `${ms(median(w.a))}` : '–',
        w ? `${ms(median(w.c))}` : '–',
        r ? `${ms(r.cpuPerChangeUs / 1e3, 3)} + ${ms(rt / 1e3, 3)} per mount-get` : '–',
        ratio(median(w?.a ?? []) / node),
      ]);
    }
    out.push(
      table(['N', '(a) read + parse ms', '(c) listmount + statmount ms', 'Node client user space ms per change', '(a) / Node client (estimate)'], rows),
      hs.wholeTableError ? `(${hs.wholeTableError})` : '',
      '',
    );
  }

  return out;
}

function targetLines(results, s) {
  const { large, small, targets } = s;
  const out = [];
  const verdict = (ok) => (Number.isFinite(ok.value) ? (ok.pass ? 'MET' : 'NOT MET') : 'NOT MEASURED');
  const t1 = { value: targets.perChange, pass: targets.perChange >= TARGETS.perChangeVsMountinfo };
  const t2 = { value: targets.flat, pass: targets.flat <= TARGETS.flatInN };
  const t3 = { value: targets.dump, pass: targets.dump <= TARGETS.dumpVsMountinfo && !(targets.dumpSmall > TARGETS.dumpVsMountinfo) };
  out.push('Targets');
  out.push(`  USIP per change >= ${TARGETS.perChangeVsMountinfo}x cheaper than (a) at N=${large}: ${ratio(targets.perChange)} -> ${verdict(t1)}`);
  out.push(`  USIP per change flat in N (N=${large} within ${TARGETS.flatInN}x of N=${small}): ${ratio(targets.flat)} -> ${verdict(t2)}`);
  if (Number.isFinite(targets.perChangeC) || Number.isFinite(targets.flatC)) {
    out.push(`  (the same protocol from the lean C client (b'): ${ratio(targets.perChangeC)} cheaper than (a) at N=${large}; N=${large} vs N=${small}: ${ratio(targets.flatC)})`);
  }
  out.push(
    `  mounts() no slower than mountinfo + parse in JS: ${ratio(targets.dump)} at N=${large}, ${ratio(targets.dumpSmall)} at N=${small} -> ${verdict(t3)}`,
  );
  // Issue 12, both measured in this run.
  const t4 = { value: targets.stormVsC, pass: targets.stormVsC <= TARGETS.stormVsC };
  const t5 = { value: targets.vsFloor[large], pass: targets.vsFloor[large] <= TARGETS.perChangeVsFloor };
  out.push(`  issue 12: storm CPU (b) Node / (b') lean C within ${TARGETS.stormVsC}x: ${ratio(targets.stormVsC)} -> ${verdict(t4)}`);
  const floors = s.sizes.map((n) => `N=${n}: (b) ${ms(s.pc.b?.[n]?.cpuPerChangeMs)} ms / floor ${ms(s.floor[n])} ms = ${ratio(targets.vsFloor[n])}`).join('; ');
  out.push(`  issue 12: (b) per change within ${TARGETS.perChangeVsFloor}x of Node's wake-up floor (pipe, same boot): ${floors} -> ${verdict(t5)}`);
  return out;
}
