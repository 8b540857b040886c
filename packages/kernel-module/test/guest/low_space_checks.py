#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
#
# Runs in the test VM with usip.ko loaded and checks low-space notifiers for
# real: small tmpfs mounts filled with fallocate and emptied again, with raw
# netlink sockets from Python (not our client), forked children that chroot
# and drop to uid 65534, and rmmod while checks run.
#
# As in listener_checks.py, the script judges nothing: each check writes one
# JSON line to $USIP_VM_RESULTS/low-space-checks.jsonl and the host test
# (low-space.test.ts) asserts on it. Attribute ids are written out from the
# uapi header on purpose, so that a change of the ABI fails the test.
#
# Usage: low_space_checks.py --module PATH_OF_USIP_KO
import argparse
import errno
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import listener_checks as lc  # noqa: E402  (after the path is set)
from family_checks import nla  # noqa: E402
from listener_checks import (  # noqa: E402
    CMD_STORAGE_EVENT, ENOSPC, MOUNT, NOBODY, NOTIFY, TYPE_MTAB, TYPE_STORAGE, Child, Recorder, Usip,
    become, errname, nest, poll, read_param, resolve_family, string, u32, u64,
)
from mount_checks import mount, mountinfo, tmpfs, umount  # noqa: E402

LOW_SPACE = 7
A_LISTENER_NOTIFIER = 3
A_NOTIFIER_TYPE, A_NOTIFIER_ACTION, A_NOTIFIER_CMD, A_NOTIFIER_FLAGS = 1, 2, 3, 4
A_NOTIFIER_MOUNT_ID, A_NOTIFIER_PATH_PREFIX, A_NOTIFIER_THRESHOLD = 5, 6, 7
A_NOTIFIER_THRESHOLD_INODES, A_NOTIFIER_THRESHOLD_BYTES = 9, 10
A_NOTIFIER_HYSTERESIS, A_NOTIFIER_INTERVAL_MS = 11, 12
SPACE_LOW, SPACE_RECOVERED, SPACE_MOUNT_GONE = 1, 2, 3

# The event and stats attributes the older checks do not decode.
lc.EVENT_SCHEMA.update({
    22: ('ns_seq', lc.U64, False), 23: ('unique_id', lc.U64, False), 31: ('space_state', lc.U32, False),
    32: ('bytes_total', lc.U64, False), 33: ('bytes_available', lc.U64, False),
    34: ('files_total', lc.U64, False), 35: ('files_free', lc.U64, False),
})
lc.STATS_SCHEMA.update({11: ('mount_hooks', lc.U32, False), 12: ('scope', lc.U32, False),
                        15: ('watched_mounts', lc.U32, False)})

MIB = 1 << 20
BASE = '/tmp/usip-low-space'
# Generous: the checks run every second, but TCG guests on a busy host are slow. The latency
# measured is recorded and reported.
EVENT_WAIT_S = 10


def low_space(threshold=None, inodes=None, bytes_=None, hysteresis=None, interval_ms=None, mount_id=None,
              path_prefix=None, cmd=None, type_=TYPE_STORAGE, action=LOW_SPACE, flags=NOTIFY):
    body = nla(A_NOTIFIER_TYPE, u32(type_)) + nla(A_NOTIFIER_ACTION, u32(action))
    body += nla(A_NOTIFIER_FLAGS, u32(flags))
    for attr, value, enc in ((A_NOTIFIER_CMD, cmd, u32), (A_NOTIFIER_MOUNT_ID, mount_id, u64),
                             (A_NOTIFIER_PATH_PREFIX, path_prefix, string),
                             (A_NOTIFIER_THRESHOLD, threshold, u32), (A_NOTIFIER_THRESHOLD_INODES, inodes, u32),
                             (A_NOTIFIER_THRESHOLD_BYTES, bytes_, u64), (A_NOTIFIER_HYSTERESIS, hysteresis, u32),
                             (A_NOTIFIER_INTERVAL_MS, interval_ms, u32)):
        if value is not None:
            body += nla(attr, enc(value))
    return nest(A_LISTENER_NOTIFIER, body)


def mount_id_of(path):
    """The id of the mount at path, from mountinfo (the last one mounted there)."""
    found = [r['mount_id'] for r in mountinfo().values() if r['mount_point'] == path]
    if not found:
        raise RuntimeError(f'{path} is not a mount point')
    return found[-1]


def fill(path, size, name='fill'):
    fd = os.open(os.path.join(path, name), os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.posix_fallocate(fd, 0, size)
    finally:
        os.close(fd)


def statvfs(path):
    st = os.statvfs(path)
    return {'blocks': st.f_blocks, 'bavail': st.f_bavail, 'files': st.f_files, 'ffree': st.f_ffree,
            'frsize': st.f_frsize}


def collect(sock, seconds):
    """Every event that arrives within seconds."""
    events = []
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return events
        try:
            events.append(sock.next_event(timeout=left))
        except TimeoutError:
            return events


def wait_event(sock, started, what, timeout=EVENT_WAIT_S):
    """The next event and how long after `started` it arrived, or None and the wait."""
    try:
        ev = sock.next_event(timeout=timeout, what=what)
    except TimeoutError:
        return None, round(time.monotonic() - started, 3)
    return ev, round(time.monotonic() - started, 3)


def brief(ev):
    if ev is None:
        return None
    keep = ('listener_id', 'type', 'action', 'cmd', 'pid', 'uid', 'mount_id', 'unique_id', 'path', 'fs_type',
            'source', 'dev', 'space_state', 'bytes_total', 'bytes_available', 'files_total', 'files_free',
            'missed', 'genl_cmd', 'unknown_attributes')
    return {k: ev[k] for k in keep if k in ev}


class Checks:
    def __init__(self, rec, module_path):
        self.rec = rec
        self.module_path = module_path
        self.family, _ = resolve_family()
        self.usip = Usip(self.family)
        self.ctl = self.usip.socket()
        self.latencies = []
        shutil.rmtree(BASE, ignore_errors=True)
        os.makedirs(BASE)

    def record(self, check, value):
        self.rec.record(check, value)

    def fresh_tmpfs(self, name, data='size=16m'):
        path = os.path.join(BASE, name)
        tmpfs(path, name=f'ls-{name}', data=data)
        return path, mount_id_of(path)

    def crossing(self, sock, path, action, what, timeout=EVENT_WAIT_S):
        """Does action() on path; the event it causes, its latency, and what else came soon after."""
        started = time.monotonic()
        action()
        ev, waited = wait_event(sock, started, what, timeout)
        if ev is not None:
            self.latencies.append(waited)
        # Two and a half intervals more: a second event would have come by then.
        extra = collect(sock, 2.5)
        return {'event': brief(ev), 'latency_s': waited, 'extra': [brief(e) for e in extra],
                'statvfs': statvfs(path)}

    # -- start

    def start(self):
        self.record('start', {
            'max_watched_mounts_per_listener': read_param('max_watched_mounts_per_listener'),
            'stats': self.usip.stats(self.ctl),
        })

    # -- blocks: low once, recovered once, the event's fields

    def blocks(self):
        path, mid = self.fresh_tmpfs('blocks')
        with self.usip.socket() as s:
            lid = self.usip.register_ok(s, [low_space(threshold=50, mount_id=mid, cmd=77)])
            quiet = collect(s, 2.5)
            low = self.crossing(s, path, lambda: fill(path, 10 * MIB), 'the low event')
            stats = self.usip.stats(self.ctl)
            listed = self.usip.dump(self.ctl)
            recovered = self.crossing(s, path, lambda: os.unlink(os.path.join(path, 'fill')), 'the recovered event')
        self.record('blocks', {'id': lid, 'mount_id': mid, 'path': path, 'quiet': [brief(e) for e in quiet],
                               'low': low, 'recovered': recovered, 'stats': stats,
                               'listed': lc.listed(listed, lid)})
        umount(path)

    # -- already below at registration: low at the first check

    def already_low(self):
        path, mid = self.fresh_tmpfs('already')
        fill(path, 12 * MIB)
        with self.usip.socket() as s:
            started = time.monotonic()
            lid = self.usip.register_ok(s, [low_space(threshold=50, mount_id=mid)])
            ev, waited = wait_event(s, started, 'the low event at the first check')
            extra = collect(s, 2.5)
        self.record('already-low', {'id': lid, 'mount_id': mid, 'event': brief(ev), 'latency_s': waited,
                                    'extra': [brief(e) for e in extra]})
        umount(path)

    # -- hysteresis: between threshold and threshold + hysteresis nothing happens

    def hysteresis(self):
        path, mid = self.fresh_tmpfs('hyst')
        with self.usip.socket() as s:
            self.usip.register_ok(s, [low_space(threshold=50, hysteresis=20, mount_id=mid)])
            low = self.crossing(s, path, lambda: fill(path, 10 * MIB), 'the low event')
            # 7 MiB used of 16: 56% free, above 50 but not above 60.
            between = self.crossing(s, path, lambda: os.truncate(os.path.join(path, 'fill'), 7 * MIB),
                                    'nothing (between threshold and recovery)', timeout=3)
            # 5 MiB used: 68.75% free.
            recovered = self.crossing(s, path, lambda: os.truncate(os.path.join(path, 'fill'), 5 * MIB),
                                      'the recovered event')
        self.record('hysteresis', {'low': low, 'between': between, 'recovered': recovered})
        umount(path)

    # -- threshold-bytes and threshold-inodes

    def bytes_and_inodes(self):
        path, mid = self.fresh_tmpfs('bytes')
        with self.usip.socket() as s:
            self.usip.register_ok(s, [low_space(bytes_=8 * MIB, mount_id=mid)])
            low = self.crossing(s, path, lambda: fill(path, 10 * MIB), 'the low event (bytes)')
            recovered = self.crossing(s, path, lambda: os.unlink(os.path.join(path, 'fill')),
                                      'the recovered event (bytes)')
        self.record('bytes', {'low': low, 'recovered': recovered})
        umount(path)

        path, mid = self.fresh_tmpfs('inodes', data='size=16m,nr_inodes=100')

        def make_files():
            for i in range(60):
                with open(os.path.join(path, f'f{i}'), 'w', encoding='ascii'):
                    pass

        def remove_files():
            for i in range(60):
                os.unlink(os.path.join(path, f'f{i}'))

        with self.usip.socket() as s:
            self.usip.register_ok(s, [low_space(inodes=50, mount_id=mid)])
            low = self.crossing(s, path, make_files, 'the low event (inodes)')
            recovered = self.crossing(s, path, remove_files, 'the recovered event (inodes)')
        self.record('inodes', {'low': low, 'recovered': recovered})
        umount(path)

    # -- one listener's events are its own: another listener's threshold is not crossed

    def targeted(self):
        path, mid = self.fresh_tmpfs('two')
        with self.usip.socket() as a, self.usip.socket() as b:
            la = self.usip.register_ok(a, [low_space(threshold=50, mount_id=mid, cmd=1)])
            lb = self.usip.register_ok(b, [low_space(threshold=20, mount_id=mid, cmd=2),
                                           low_space(threshold=40, mount_id=mid, cmd=3)])
            b_first = collect(b, 2)
            started = time.monotonic()
            fill(path, 10 * MIB)  # 37.5% free: a's 50 and b's 40 crossed, b's 20 not
            a_ev, a_wait = wait_event(a, started, "a's low event")
            a_more = collect(a, 2.5)
            b_events = collect(b, 0.5)
            fill(path, 4 * MIB, name='more')  # 12.5% free: b's 20 crossed too
            started = time.monotonic()
            b_ev, b_wait = wait_event(b, started, "b's low event")
            b_more = collect(b, 2.5)
            a_later = collect(a, 0.5)
        self.record('targeted', {
            'a': la, 'b': lb, 'b_first': [brief(e) for e in b_first], 'a_event': brief(a_ev), 'a_wait': a_wait,
            'a_more': [brief(e) for e in a_more], 'b_after_a': [brief(e) for e in b_events],
            'b_event': brief(b_ev), 'b_wait': b_wait, 'b_more': [brief(e) for e in b_more],
            'a_later': [brief(e) for e in a_later],
        })
        umount(path)

    # -- path-prefix and every-mount notifiers

    def prefix_and_all(self):
        os.makedirs(os.path.join(BASE, 'pp'), exist_ok=True)
        os.makedirs(os.path.join(BASE, 'other'), exist_ok=True)
        x, xid = self.fresh_tmpfs('pp/x')
        y, yid = self.fresh_tmpfs('other/y')
        with self.usip.socket() as p, self.usip.socket() as every:
            lp = self.usip.register_ok(p, [low_space(threshold=50, path_prefix=f'{BASE}/pp')])
            le = self.usip.register_ok(every, [low_space(threshold=50, interval_ms=500)])
            # Mounts that are already low (a full root, say) fire now; they are not ours.
            collect(p, 2)
            before_every = [brief(e) for e in collect(every, 1)]
            mounts = len(mountinfo())
            # One record for x, one per mount for the other: the host's count (root's stats).
            poll(lambda: self.usip.stats(self.ctl).get('watched_mounts') == mounts + 1, timeout=5)
            host_stats = self.usip.stats(self.ctl)
            started = time.monotonic()
            fill(x, 10 * MIB)
            fill(y, 10 * MIB)
            p_events = collect(p, 5)
            e_events = collect(every, 5)
            p_wait = round(time.monotonic() - started, 3)
        self.record('prefix-and-all', {
            'x': xid, 'y': yid, 'p_events': [brief(e) for e in p_events],
            'every_events': [brief(e) for e in e_events], 'every_before': before_every,
            'mounts': mounts, 'host_watched': host_stats.get('watched_mounts'),
            'lp': lp, 'le': le, 'waited': p_wait,
        })
        umount(x)
        umount(y)

    def user_watched(self, sock):
        return self.usip.stats(sock).get('watched_mounts')

    # -- a mount-id notifier whose mount goes: mount-gone once, then dormant

    def mount_gone(self):
        path, mid = self.fresh_tmpfs('gone')
        with self.usip.socket() as s:
            lid = self.usip.register_ok(s, [low_space(threshold=50, mount_id=mid)])
            quiet = collect(s, 2)
            started = time.monotonic()
            umount(path)
            ev, waited = wait_event(s, started, 'the mount-gone event')
            extra = collect(s, 3)
            # A new mount may get the same id (ids are reused): then the notifier watches it.
            path2, mid2 = self.fresh_tmpfs('gone')
            fill(path2, 12 * MIB)
            again = collect(s, 4)
            umount(path2)
            after = collect(s, 3)
        self.record('mount-gone', {'id': lid, 'mount_id': mid, 'quiet': [brief(e) for e in quiet],
                                   'event': brief(ev), 'latency_s': waited, 'extra': [brief(e) for e in extra],
                                   'new_mount_id': mid2, 'again': [brief(e) for e in again],
                                   'after': [brief(e) for e in after]})
        # A mount id that names no mount: mount-gone at the first check, once.
        with self.usip.socket() as s:
            self.usip.register_ok(s, [low_space(threshold=50, mount_id=999999)])
            absent = collect(s, 4)
        self.record('mount-gone.absent', {'events': [brief(e) for e in absent]})

    # -- a path-prefix notifier's low mount that goes: mount-gone; one that was not low: nothing

    def prefix_gone(self):
        os.makedirs(os.path.join(BASE, 'pg'), exist_ok=True)
        low_path, low_id = self.fresh_tmpfs('pg/low')
        ok_path, ok_id = self.fresh_tmpfs('pg/ok')
        with self.usip.socket() as s:
            self.usip.register_ok(s, [low_space(threshold=50, path_prefix=f'{BASE}/pg')])
            fill(low_path, 12 * MIB)
            ev, _ = wait_event(s, time.monotonic(), 'the low event')
            umount(low_path)
            umount(ok_path)
            gone = collect(s, 4)
        self.record('prefix-gone', {'low_id': low_id, 'ok_id': ok_id, 'low': brief(ev),
                                    'gone': [brief(e) for e in gone]})

    # -- as uid 65534 in a chroot: only mounts below its root

    def chroot_nobody(self):
        root = os.path.join(BASE, 'root')
        os.makedirs(root, exist_ok=True)
        inside, in_id = self.fresh_tmpfs('root/in')
        outside, out_id = self.fresh_tmpfs('out')
        os.chmod(inside, 0o777)
        usip = self.usip

        def listener(chan):
            os.chroot(root)
            os.chdir('/')
            become(NOBODY)
            with usip.socket() as s:
                lid = usip.register_ok(s, [low_space(threshold=50)])
                chan.send({'id': lid, 'watched': usip.stats(s).get('watched_mounts')})
                chan.recv(timeout=60)
                events = collect(s, 5)
                watched = usip.stats(s).get('watched_mounts')
                chan.send({'events': [brief(e) for e in events], 'watched': watched})

        child = Child(listener)
        try:
            first = child.recv()
            # Its first look comes with its first round, a moment after registering.
            time.sleep(1.5)
            fill(inside, 12 * MIB)
            fill(outside, 12 * MIB)
            child.send('go')
            result = child.recv(timeout=60)
        finally:
            child.wait()
        self.record('chroot-nobody', {'in_id': in_id, 'out_id': out_id, 'first': first, **result})
        umount(inside)
        umount(outside)

    # -- a hung file system: a FUSE mount whose daemon never answers (not even FUSE_INIT)

    def hung(self):
        subprocess.run(['modprobe', 'fuse'], capture_output=True, check=False)
        if not os.path.exists('/dev/fuse'):
            self.record('hung', {'fuse': False})
            return
        os.makedirs(os.path.join(BASE, 'hung', 'fuse'), exist_ok=True)
        ok, ok_id = self.fresh_tmpfs('hung/ok')
        fuse_path = os.path.join(BASE, 'hung', 'fuse')

        def daemon(chan):
            fd = os.open('/dev/fuse', os.O_RDWR)
            mount('usip-hung', fuse_path, 'fuse', 0, f'fd={fd},rootmode=40000,user_id=0,group_id=0')
            chan.send({'mounted': True})
            chan.recv(timeout=None)     # holds the connection, reads nothing, until told or killed

        child = Child(daemon)
        try:
            child.recv()
            fuse_id = mount_id_of(fuse_path)
            with self.usip.socket() as s:
                self.usip.register_ok(s, [low_space(threshold=50, path_prefix=f'{BASE}/hung', interval_ms=200)])
                # The first rounds meet the hung mount; the tmpfs must still be read.
                time.sleep(2)
                watched = self.usip.stats(self.ctl).get('watched_mounts')
                crossing = self.crossing(s, ok, lambda: fill(ok, 12 * MIB), 'the low event beside a hung mount')
            # The listener is gone; the round stuck in the hung statfs still holds its watch.
            time.sleep(1)
            while_hung = self.usip.stats(self.ctl)
        finally:
            child.kill()
            child.wait()
        # Its connection aborted, the hung statfs fails and the watch goes.
        settled, _ = poll(lambda: self.usip.stats(self.ctl).get('objects') == 0, timeout=10)
        after = self.usip.stats(self.ctl)
        umount(fuse_path, 2)
        umount(ok)
        self.record('hung', {'fuse': True, 'ok_id': ok_id, 'fuse_id': fuse_id, 'watched': watched, 'low': crossing,
                             'while_hung': while_hung, 'after': after})

    # -- refusals

    def errors(self):
        def answer(notifiers):
            with self.usip.socket() as s:
                return self.usip.register(s, notifiers).summary()

        out = {
            'threshold-on-mount': answer([low_space(threshold=10, type_=TYPE_MTAB, action=MOUNT)]),
            'hysteresis-on-enospc': answer([low_space(hysteresis=5, action=ENOSPC)]),
            'interval-on-enospc': answer([low_space(interval_ms=500, action=ENOSPC)]),
            'two-thresholds': answer([low_space(threshold=10, bytes_=MIB)]),
            'no-threshold': answer([low_space()]),
            'threshold-101': answer([low_space(threshold=101)]),
            'inodes-101': answer([low_space(inodes=101)]),
            'interval-50': answer([low_space(threshold=10, interval_ms=50)]),
            'threshold-0': answer([low_space(threshold=0)]),
        }
        self.record('errors', out)

    # -- the cap on watched mounts

    def cap(self):
        old = read_param('max_watched_mounts_per_listener')
        lc.write_param('max_watched_mounts_per_listener', 3)
        kmsg = os.open('/dev/kmsg', os.O_RDONLY | os.O_NONBLOCK)
        os.lseek(kmsg, 0, os.SEEK_END)
        try:
            with self.usip.socket() as s:
                lid = self.usip.register_ok(s, [low_space(threshold=50)])
                watched, _ = poll(lambda: self.user_watched(s) == 3, timeout=5)
                count = self.user_watched(s)
        finally:
            lc.write_param('max_watched_mounts_per_listener', old)
        lines = []
        while True:
            try:
                lines.append(os.read(kmsg, 8192).decode(errors='replace'))
            except OSError as e:
                if e.errno == errno.EAGAIN:
                    break
                raise
        os.close(kmsg)
        self.record('cap', {'id': lid, 'watched': count, 'mounts': len(mountinfo()),
                            'log': [line for line in lines if f'listener {lid}:' in line]})

    # -- everything goes with the listeners

    def cleanup(self):
        def settled():
            st = self.usip.stats(self.ctl)
            return st.get('listeners') == 0 and st.get('objects') == 0 and st.get('watched_mounts') == 0

        poll(settled, timeout=5)
        self.record('cleanup', {'stats': self.usip.stats(self.ctl), 'latencies_s': self.latencies})

    # -- unloading while checks run

    def unload(self):
        paths = [self.fresh_tmpfs(f'unload{i}')[0] for i in range(4)]
        usip = self.usip

        def holder(chan):
            with usip.socket() as s:
                lid = usip.register_ok(s, [low_space(threshold=50, interval_ms=100),
                                           low_space(inodes=50, interval_ms=100)])
                chan.send({'id': lid})
                chan.recv(timeout=None)

        child = Child(holder)
        try:
            held = child.recv()
            for i, path in enumerate(paths):
                fill(path, (4 + 3 * i) * MIB)
            time.sleep(1)
            rmmod = subprocess.run(['rmmod', 'usip'], capture_output=True, text=True, check=False)
            still = os.path.exists('/sys/module/usip')
            child.send('done')
        finally:
            child.wait()
        for path in paths:
            umount(path)
        insmod = subprocess.run(['insmod', self.module_path], capture_output=True, text=True, check=False)
        family, _ = resolve_family()
        with Usip(family).socket() as s:
            stats = Usip(family).stats(s)
        self.record('unload', {'id': held['id'], 'rmmod_exit': rmmod.returncode, 'rmmod_stderr': rmmod.stderr,
                               'still_loaded': still, 'insmod_exit': insmod.returncode, 'stats_after': stats})


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--module', required=True, help='the usip.ko that is loaded, to load it again')
    args = parser.parse_args()
    results = os.environ.get('USIP_VM_RESULTS')
    if not results:
        sys.exit('low_space_checks.py: $USIP_VM_RESULTS is not set (run it in the usip-vm guest)')
    rec = Recorder(os.path.join(results, 'low-space-checks.jsonl'))
    checks = Checks(rec, args.module)
    for name, fn in (
        ('start', checks.start),
        ('blocks', checks.blocks),
        ('already-low', checks.already_low),
        ('hysteresis', checks.hysteresis),
        ('bytes-and-inodes', checks.bytes_and_inodes),
        ('targeted', checks.targeted),
        ('prefix-and-all', checks.prefix_and_all),
        ('mount-gone', checks.mount_gone),
        ('prefix-gone', checks.prefix_gone),
        ('chroot-nobody', checks.chroot_nobody),
        ('hung', checks.hung),
        ('errors', checks.errors),
        ('cap', checks.cap),
        ('cleanup', checks.cleanup),
        ('unload', checks.unload),
    ):
        rec.section(name, fn)
    rec.write({'check': 'end', 'value': True})


if __name__ == '__main__':
    main()
