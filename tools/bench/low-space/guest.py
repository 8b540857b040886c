#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
#
# Guest side of tools/bench/low-space.mjs: what the module's low-space check costs, in CPU, per
# watched mount and check. Mounts N small tmpfs, then alternates windows without a listener
# and with one listener whose every-mount low-space notifier (threshold 1%, never crossed)
# reads each of the N mounts every INTERVAL ms. The check runs in kworkers: the CPU of the
# kworker threads (schedstat, ns) and of the whole guest (/proc/stat) is measured over each
# window. Prints one JSON line per window.
#
# Usage: guest.py MOUNTS INTERVAL_MS WINDOW_S ROUNDS
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '../../../packages/kernel-module/test/guest'))
from listener_checks import Usip, resolve_family  # noqa: E402
from low_space_checks import low_space  # noqa: E402
from mount_checks import mountinfo, tmpfs  # noqa: E402

BASE = '/tmp/usip-bench-low-space'


def kworker_ns():
    """Run time of every kworker thread now (ns), from /proc/PID/schedstat."""
    total = 0
    for pid in os.listdir('/proc'):
        if not pid.isdigit():
            continue
        try:
            with open(f'/proc/{pid}/comm', encoding='ascii', errors='replace') as f:
                if not f.read().startswith('kworker'):
                    continue
            with open(f'/proc/{pid}/schedstat', encoding='ascii') as f:
                total += int(f.read().split()[0])
        except OSError:
            continue
    return total


def busy_ticks():
    """Non-idle CPU time of the guest (USER_HZ ticks), from /proc/stat."""
    with open('/proc/stat', encoding='ascii') as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields[:8]) - idle


def window(seconds):
    k0, b0, t0 = kworker_ns(), busy_ticks(), time.monotonic()
    time.sleep(seconds)
    k1, b1, t1 = kworker_ns(), busy_ticks(), time.monotonic()
    return {'seconds': t1 - t0, 'kworker_ns': k1 - k0, 'busy_ms': (b1 - b0) * 1000 / os.sysconf('SC_CLK_TCK')}


def main():
    mounts, interval_ms, window_s, rounds = (int(a) for a in sys.argv[1:5])
    os.makedirs(BASE, exist_ok=True)
    for i in range(mounts):
        tmpfs(os.path.join(BASE, f'm{i}'), name=f'bench{i}', data='size=1m')
    table = len(mountinfo())
    family, _ = resolve_family()
    usip = Usip(family)
    print(json.dumps({'mounts': mounts, 'mountinfo': table, 'interval_ms': interval_ms, 'window_s': window_s}),
          flush=True)
    for r in range(rounds):
        for mode in (('none', 'listener') if r % 2 == 0 else ('listener', 'none')):
            if mode == 'none':
                result = window(window_s)
                watched = 0
            else:
                with usip.socket() as s:
                    usip.register_ok(s, [low_space(threshold=1, interval_ms=interval_ms)])
                    time.sleep(1)   # the first look at the mount table is not measured
                    watched = usip.stats(s).get('watched_mounts')
                    result = window(window_s)
                    if s.drain():
                        raise RuntimeError('a 1% threshold was crossed: the window measured events too')
            print(json.dumps({'round': r, 'mode': mode, 'watched': watched, **result}), flush=True)


if __name__ == '__main__':
    main()
