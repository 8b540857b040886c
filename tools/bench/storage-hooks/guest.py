#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
#
# Guest driver of the storage-hooks benchmark (tools/bench/storage-hooks.mjs): in rounds, each
# state of the module in turn (the order rotates per round), runs the three loops of sh-loop
# pinned to one CPU and writes every figure to one JSON file. It judges nothing.
#
# States: 'none' (usip.ko unloaded, loaded again afterwards), 'unarmed' (loaded, no listener),
# 'mtab' (a listener with an mtab mount notifier: the mount hooks armed, not the syscall hook),
# 'armed' (a listener with an enospc notifier: the raw_syscalls:sys_exit probe registered).
# In 'armed', the storm's events are read after the loop: messages and their summed count.
#
# Usage: guest.py CONFIG_JSON   (written by storage-hooks.mjs)
import errno
import json
import os
import subprocess
import sys
import time

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '../../..'))
sys.path.insert(0, os.path.join(ROOT, 'packages/kernel-module/test/guest'))
import hardening_checks as hc  # noqa: E402
import listener_checks as lc  # noqa: E402

BASE = '/tmp/storage-hooks'
FULL = f'{BASE}/full'
WORKLOADS = ('getppid', 'write', 'fail')


def sh(*cmd):
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if r.returncode:
        raise RuntimeError(f'{" ".join(cmd)} exited {r.returncode}: {r.stderr.strip()}')
    return r.stdout


def log(text):
    print(f'storage-hooks[guest]: {text}', file=sys.stderr, flush=True)


class Bench:
    def __init__(self, cfg):
        self.cfg = cfg
        self.family = None
        self.ctl = None
        self.unloads = []
        self.connect()

    def connect(self):
        self.family, _ = lc.resolve_family()
        self.ctl = lc.Genl(self.family)

    def socket(self):
        return lc.Genl(self.family, rcvbuf_force=16 << 20)

    def stats(self):
        return hc.stats(self.ctl)

    def quiet(self):
        """Waits until no hook is armed and nothing is queued (a closed listener's hooks are
        disarmed by the module, maybe not at once); the stats then."""
        def settled():
            st = self.stats()
            return st.get('storage_hooks') == 0 and st.get('mount_hooks') == 0 and st.get('queued') == 0
        ok, _ = lc.poll(settled, timeout=15, step=0.05)
        if not ok:
            raise RuntimeError(f'hooks still armed: {self.stats()}')

    def loop(self, workload, n):
        c = self.cfg
        args = {
            'getppid': ['getppid', str(n)],
            'write': ['write', f'{BASE}/w', str(n), str(c['every'])],
            'fail': ['fail', f'{FULL}/storm', str(n)],
        }[workload]
        proc = subprocess.Popen(['taskset', '-c', str(c['cpu']), c['loop'], str(c['perChunk'][workload]), *args],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = proc.communicate()
        if proc.returncode:
            raise RuntimeError(f'sh-loop {" ".join(args)} exited {proc.returncode}: {err.strip()}')
        r = json.loads(next(x for x in out.splitlines() if x.startswith('{')))
        # The chunks' times, summed up (all of them would be thousands of numbers a run).
        per = sorted(ns / r['perChunk'] for ns in r.pop('chunkNs'))
        r['chunkNsPerOp'] = {f'p{q}': round(per[min(len(per) - 1, len(per) * q // 100)], 2) for q in (0, 1, 5, 10, 25, 50, 90)}
        return proc.pid, r

    def events(self, sock, quiet_s, limit_s=60):
        """Every message until none came for quiet_s seconds."""
        out, end = [], time.monotonic() + limit_s
        while time.monotonic() < end:
            m = hc.next_message(sock, quiet_s)
            if m is None:
                break
            out.append(m)
        return out

    def state(self, name, rnd):
        """Runs every loop in state `name`; a list of results."""
        c = self.cfg
        sock = None
        if name == 'none':
            self.ctl.close()
            # At unload, the module logs how many failures it could not report since it was
            # loaded (records or slots ran out): the only place that number is told.
            klog = hc.KernelLog()
            sh('rmmod', 'usip')
            lost = [x for x in klog.lines() if 'were not reported' in x]
            klog.close()
            self.unloads.append({'round': rnd, 'lostSinceLoad': int(lost[0].split('usip: ')[-1].split()[0]) if lost else 0,
                                 'log': lost})
        elif name in ('mtab', 'armed'):
            sock = self.socket()
            n = hc.notifier(hc.MTAB, hc.MOUNT, hc.NOTIFY) if name == 'mtab' else \
                hc.notifier(hc.STORAGE, hc.ENOSPC, hc.NOTIFY)
            hc.register_ok(sock, [n])
        hooks = None
        if name != 'none':
            st = self.stats()
            hooks = {'storage_hooks': st.get('storage_hooks'), 'mount_hooks': st.get('mount_hooks')}
        results = []
        try:
            for workload in WORKLOADS:
                pid, r = self.loop(workload, c['n'][workload])
                r.update(state=name, round=rnd, workload=workload, hooks=hooks)
                if sock is not None:
                    # The storm's events arrive within one coalescing interval after it; no
                    # other loop should give any.
                    wait = c['interval_ms'] / 1000 + 1.0 if workload == 'fail' else 0.2
                    evs = self.events(sock, wait)
                    mine = [e for e in evs if e.get('pid') == pid and e.get('genl_cmd') == hc.CMD['STORAGE_EVENT']]
                    r['events'] = {'messages': len(mine), 'count': sum(e.get('count', 0) for e in mine),
                                   'other': len(evs) - len(mine),
                                   'missed': sum(1 for e in evs if e.get('genl_cmd') == hc.CMD['MISSED'])}
                results.append(r)
                log(f'round {rnd} {name:7} {workload:7} {r["nsPerOp"]:10.1f} ns/op '
                    f'(best chunk {r["bestChunkNsPerOp"]:.1f})'
                    + (f' events {r["events"]["messages"]} count {r["events"]["count"]}' if 'events' in r else ''))
        finally:
            if sock is not None:
                sock.close()
            if name == 'none':
                sh('insmod', c['module'])
                self.connect()
                lc.write_param('space_error_interval_ms', c['interval_ms'])
        self.quiet()
        return results


def main():
    cfg = json.loads(sys.argv[1])
    os.makedirs(FULL, exist_ok=True)
    sh('mount', '-t', 'tmpfs', '-o', 'size=64k', 'storage-hooks-full', FULL)
    fd = os.open(f'{FULL}/filler', os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        while True:
            os.write(fd, b'f' * 4096)
    except OSError as e:
        if e.errno != errno.ENOSPC:
            raise
    os.close(fd)

    bench = Bench(cfg)
    hc_ping = hc.ping(bench.ctl)
    features = {s['feature']: {'available': s.get('available'), 'reason': s.get('reason')}
                for s in hc_ping.get('feature_status', [])}
    lc.write_param('space_error_interval_ms', cfg['interval_ms'])
    bench.quiet()
    # Warm-up, not recorded: page cache, the guest's and QEMU's translation caches.
    for workload in WORKLOADS:
        bench.loop(workload, max(cfg['n'][workload] // 10, cfg['perChunk'][workload]))
    out = {'config': cfg, 'kernel': os.uname().release, 'features': features, 'runs': []}
    states = cfg['states']
    for rnd in range(cfg['rounds']):
        order = states[rnd % len(states):] + states[:rnd % len(states)]
        for name in order:
            out['runs'].extend(bench.state(name, rnd))
    out['statsAfter'] = bench.stats()
    out['unloads'] = bench.unloads
    with open(cfg['out'], 'w', encoding='utf-8') as f:
        json.dump(out, f, indent=1, default=str)
    log(f'wrote {cfg["out"]}')


if __name__ == '__main__':
    main()
