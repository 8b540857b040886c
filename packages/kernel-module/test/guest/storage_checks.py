#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
#
# Runs in the test VM with usip.ko loaded and checks the storage events from
# real failures: enospc from every system call family the module covers, on
# tmpfs, ext4 on a loop device, xfs and btrfs; edquot and the kernel's quota
# warnings on ext4 with user quota; coalescing of a storm; arming; who may
# register and who sees what (unprivileged listeners, a chroot, a user and
# mount namespace of its own); a listener killed mid-storm; unloading the
# module mid-storm.
#
# As the other guest scripts, it judges nothing: each check writes one JSON
# line to $USIP_VM_RESULTS/storage-checks.jsonl, and storage.test.ts asserts.
#
# Usage: storage_checks.py --module PATH_OF_USIP_KO
import argparse
import ctypes
import errno
import os
import signal
import stat
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import listener_checks as lc  # noqa: E402
import hardening_checks as hc  # noqa: E402
from hardening_checks import CMD, NOTIFY, P, STORAGE, ENOSPC, EDQUOT, stats  # noqa: E402
from listener_checks import Child, in_child, nla, parse_attrs, poll, read_param, string, u32, u64, write_param  # noqa: E402

QUOTA = P['ACTION_QUOTA']
NOBODY = 65534
CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
BASE = '/tmp/st'
LIBC = ctypes.CDLL(None, use_errno=True)
SYS = {'open': 2, 'creat': 85, 'mkdir': 83, 'link': 86, 'symlink': 88, 'mknod': 133, 'renameat2': 316,
       'openat': 257, 'mkdirat': 258, 'mknodat': 259, 'linkat': 265, 'symlinkat': 266}
AT_FDCWD = -100
RENAME_WHITEOUT = 4
KPROBES_LIST = '/sys/kernel/debug/kprobes/list'


def sh(*cmd, check=True):
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if check and r.returncode:
        raise RuntimeError(f'{" ".join(cmd)} exited {r.returncode}: {r.stderr.strip()}')
    return r


def sys_call(name, *args):
    """A raw system call by number; its errno name, or None."""
    cargs = [ctypes.c_char_p(a.encode()) if isinstance(a, str) else ctypes.c_long(a) for a in args]
    ret = LIBC.syscall(ctypes.c_long(SYS[name]), *cargs)
    return lc.errname(ctypes.get_errno()) if ret == -1 else None


def attempt(fn):
    """Runs fn; the errno name of the OSError it raised, or None."""
    try:
        fn()
    except OSError as e:
        return lc.errname(e.errno)
    return None


def mount_id_of(path):
    with open('/proc/self/mountinfo', encoding='utf-8') as f:
        for line in f:
            fields = line.split()
            if fields[4] == path:
                found = int(fields[0])
    return found


def storage_notifier(action, flags=NOTIFY, path_prefix=None):
    return hc.notifier(STORAGE, action, flags, path_prefix=path_prefix)


def next_event(sock, timeout):
    """The next event on sock, decoded with the uapi header's names, or None."""
    deadline = time.monotonic() + timeout
    while not sock.pending:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        batch = sock._recv(left)  # noqa: SLF001: the shared socket class's reader
        if batch is None:
            return None
        for m in batch:
            (sock.pending if m['type'] == sock.family and m['seq'] == 0 else sock.stray).append(m)
    m = sock.pending.pop(0)
    ev = P.decode(parse_attrs(m['payload'][4:]), 'USIP_A_EVENT_')
    ev['genl_cmd'] = m['payload'][0]
    return ev


def events_for(sock, quiet=1.5, limit=30.0):
    """Every event until none came for `quiet` seconds (at most `limit` seconds in all)."""
    out, end = [], time.monotonic() + limit
    while time.monotonic() < end:
        ev = next_event(sock, quiet)
        if ev is None:
            break
        out.append(ev)
    return out


def brief(ev):
    keys = ('genl_cmd', 'action', 'syscall', 'path', 'fs_type', 'source', 'pid', 'uid', 'comm', 'ino', 'count',
            'mount_id', 'unique_id', 'quota_type', 'quota_id', 'quota_warning', 'missed', 'listener_id')
    return {k: ev.get(k) for k in keys if k in ev}


def fill(path, chunk=65536):
    """Writes to path until the file system is full; the bytes written."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    done = 0
    try:
        while True:
            done += os.write(fd, b'x' * chunk)
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
    finally:
        os.close(fd)
    return done


def exhaust_inodes(directory):
    n = 0
    while True:
        try:
            os.close(os.open(os.path.join(directory, f'i{n}'), os.O_WRONLY | os.O_CREAT, 0o644))
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise
            return n
        n += 1


def need_loop():
    """Loop devices exist once the driver is loaded (a module in Debian's kernels, built in elsewhere)."""
    if not os.path.exists('/sys/module/loop'):
        sh('modprobe', 'loop')


def tmpfs(path, opts):
    os.makedirs(path, exist_ok=True)
    sh('mount', '-t', 'tmpfs', '-o', opts, 'none', path)


def storm(path, count, chan=None):
    """count failing writes to a full file system, as fast as possible: (failures, seconds)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    started = time.monotonic()
    failures = 0
    data = b'y' * 4096
    for _ in range(count):
        try:
            os.write(fd, data)
        except OSError:
            failures += 1
    os.close(fd)
    return failures, time.monotonic() - started


class Checks:
    def __init__(self, rec, module_path):
        self.rec = rec
        self.module_path = module_path
        self.family, _ = lc.resolve_family()
        self.ctl = self.socket()
        os.makedirs(BASE, exist_ok=True)

    def socket(self, **kw):
        # Forcing the receive buffer needs CAP_NET_ADMIN: root's sockets only.
        if os.geteuid() == 0 and not os.path.exists('/proc/self/uid_map') or \
                os.geteuid() == 0 and open('/proc/self/uid_map').read().split()[:2] == ['0', '0']:
            kw.setdefault('rcvbuf_force', 16 << 20)
        return lc.Genl(self.family, **kw)

    def record(self, check, value):
        self.rec.record(check, value)

    def settled(self, timeout=8):
        def quiet():
            st = stats(self.ctl)
            return st.get('queued') == 0 and st.get('coalesce_slots') == 0 and \
                (st.get('listeners') or st.get('objects') == 0)
        poll(quiet, timeout=timeout, step=0.05)
        return stats(self.ctl)

    # -- arming: nothing before, the tracepoint and the probe while wanted, nothing after
    def arming(self):
        before = stats(self.ctl)
        ping = hc.ping(self.ctl)
        with self.socket() as s:
            enospc = hc.register(s, [storage_notifier(ENOSPC)])
            with_enospc = stats(self.ctl)
            with self.socket() as q:
                quota = hc.register(q, [storage_notifier(QUOTA)])
                both = stats(self.ctl)
                kprobes = open(KPROBES_LIST, encoding='utf-8').read() if os.path.exists(KPROBES_LIST) else None
        after = self.settled()
        kprobes_after = open(KPROBES_LIST, encoding='utf-8').read() if os.path.exists(KPROBES_LIST) else None
        self.record('arming', {
            'features': {s['feature']: {'available': s.get('available'), 'reason': s.get('reason')}
                         for s in ping['feature_status']},
            'before': before.get('storage_hooks'), 'enospc': enospc['errno'], 'with_enospc': with_enospc.get('storage_hooks'),
            'quota': quota['errno'], 'both': both.get('storage_hooks'), 'after': after.get('storage_hooks'),
            'quota_probe_listed': None if kprobes is None else 'quota_send_warning' in kprobes,
            'quota_probe_after': None if kprobes_after is None else 'quota_send_warning' in kprobes_after,
            'objects_after': after.get('objects'),
        })

    # -- every covered system call, on tmpfs, one event each
    def syscalls(self):
        write_param('space_error_interval_ms', 1)
        blk, ino = f'{BASE}/blk', f'{BASE}/ino'
        tmpfs(blk, 'size=64k')
        tmpfs(ino, 'nr_inodes=16')
        fill(f'{blk}/filler')
        exhaust_inodes(ino)
        existing = f'{ino}/i0'
        with self.socket() as s:
            lid = hc.register_ok(s, [storage_notifier(ENOSPC)])
            fd = os.open(f'{blk}/target', os.O_WRONLY | os.O_CREAT, 0o644)
            fd_ino = os.fstat(fd).st_ino
            tries = {
                'write': lambda: os.write(fd, b'z' * 8192),
                'pwrite64': lambda: os.pwrite(fd, b'z' * 8192, 0),
                'writev': lambda: os.writev(fd, [b'z' * 8192]),
                'fallocate': lambda: os.posix_fallocate(fd, 0, 1 << 20),
            }
            # By number, so that the call is the one named whatever the C library prefers.
            raw = {
                'openat': lambda: sys_call('openat', AT_FDCWD, f'{ino}/new', os.O_WRONLY | os.O_CREAT, 0o644),
                'mkdirat': lambda: sys_call('mkdirat', AT_FDCWD, f'{ino}/dir', 0o755),
                'mknodat': lambda: sys_call('mknodat', AT_FDCWD, f'{ino}/node', 0o644 | stat.S_IFREG, 0),
                'symlinkat': lambda: sys_call('symlinkat', 'target', AT_FDCWD, f'{ino}/sym'),
                'linkat': lambda: sys_call('linkat', AT_FDCWD, existing, AT_FDCWD, f'{ino}/hard', 0),
                'open': lambda: sys_call('open', f'{ino}/raw-open', os.O_WRONLY | os.O_CREAT, 0o644),
                'creat': lambda: sys_call('creat', f'{ino}/raw-creat', 0o644),
                'mkdir': lambda: sys_call('mkdir', f'{ino}/raw-dir', 0o755),
                'mknod': lambda: sys_call('mknod', f'{ino}/raw-node', 0o644 | stat.S_IFREG, 0),
                'symlink': lambda: sys_call('symlink', 'target', f'{ino}/raw-sym'),
                'link': lambda: sys_call('link', existing, f'{ino}/raw-hard'),
                # A whiteout left in the old name's place needs a new inode.
                'renameat2': lambda: sys_call('renameat2', AT_FDCWD, existing, AT_FDCWD, f'{ino}/moved',
                                              RENAME_WHITEOUT),
            }
            results = {}
            for name, fn in list(tries.items()) + list(raw.items()):
                err = attempt(fn) if name in tries else fn()
                time.sleep(0.05)
                ev = next_event(s, 5)
                results[name] = {'errno': err, 'event': brief(ev) if ev else None}
            os.close(fd)
            extra = events_for(s, quiet=0.5)
        self.record('syscalls', {
            'listener_id': lid, 'pid': os.getpid(), 'comm': open('/proc/self/comm').read().strip(),
            'blk': {'mount_id': mount_id_of(blk), 'fd_ino': fd_ino, 'dev': os.stat(blk).st_dev},
            'ino': {'mount_id': mount_id_of(ino), 'dir_ino': os.stat(ino).st_ino, 'dev': os.stat(ino).st_dev},
            'results': results, 'extra': [brief(e) for e in extra],
        })
        write_param('space_error_interval_ms', 1000)

    # -- a storm: bounded messages, counts add up
    def coalescing(self):
        write_param('space_error_interval_ms', 1000)
        full = f'{BASE}/blk'
        with self.socket() as s:
            hc.register_ok(s, [storage_notifier(ENOSPC)])

            def stormer(chan):
                chan.send({'pid': os.getpid()})
                chan.recv()
                failures, seconds = storm(f'{full}/storm', 10000)
                chan.send({'failures': failures, 'seconds': seconds})
                chan.recv()
            child = Child(stormer)
            pid = child.recv()['pid']
            child.send('go')
            result = child.recv(120)
            slots_during = stats(self.ctl).get('coalesce_slots')
            evs = [e for e in events_for(s, quiet=2.5, limit=60) if e.get('pid') == pid]
            child.send('bye')
            child.wait()
        self.record('coalescing', {
            'interval_ms': int(read_param('space_error_interval_ms')), 'slots_during': slots_during,
            'failures': result['failures'], 'seconds': result['seconds'],
            'messages': len(evs), 'counted': sum(e.get('count', 0) for e in evs),
            'events': [brief(e) for e in evs], 'settled': self.settled(),
        })

    # -- real file systems on loop devices: ext4, xfs, btrfs
    def file_systems(self):
        need_loop()
        out = {}
        for fs, size, mkfs in (('ext4', '16M', ['mkfs.ext4', '-q', '-m', '0']),
                               ('xfs', '320M', ['mkfs.xfs', '-q']),
                               ('btrfs', '256M', ['mkfs.btrfs', '-q'])):
            try:
                out[fs] = self.one_fs(fs, size, mkfs)
            except Exception as e:  # noqa: BLE001: recorded, judged on the host
                out[fs] = {'error': repr(e)}
        self.record('file-systems', out)

    def one_fs(self, fs, size, mkfs):
        image, where = f'{BASE}/{fs}.img', f'{BASE}/{fs}'
        sh('truncate', '-s', size, image)
        sh(*mkfs, image)
        os.makedirs(where, exist_ok=True)
        sh('mount', '-o', 'loop', image, where)
        try:
            source = next(line.split()[0] for line in open('/proc/self/mounts') if line.split()[1] == where)
            with self.socket() as s:
                hc.register_ok(s, [storage_notifier(ENOSPC, path_prefix=where)])
                fd = os.open(f'{where}/big', os.O_WRONLY | os.O_CREAT, 0o644)
                err = attempt(lambda: os.posix_fallocate(fd, 0, 1 << 40))
                big_ino = os.fstat(fd).st_ino
                os.close(fd)
                ev = next_event(s, 10)
            return {'errno': err, 'source': source, 'mount_id': mount_id_of(where), 'ino': big_ino,
                    'event': brief(ev) if ev else None, 'path': where}
        finally:
            sh('umount', where, check=False)

    # -- ext4 with user quota: edquot from the failing write, and the kernel's warnings
    def quota(self):
        image, where = f'{BASE}/quota.img', f'{BASE}/quota'
        need_loop()
        sh('truncate', '-s', '32M', image)
        sh('mkfs.ext4', '-q', '-O', 'quota', '-E', 'quotatype=usrquota', image)
        os.makedirs(where, exist_ok=True)
        sh('mount', '-o', 'loop,usrquota', image, where)
        os.chmod(where, 0o1777)
        sh('setquota', '-u', str(NOBODY), '64', '128', '0', '0', where)
        write_param('space_error_interval_ms', 1)
        try:
            with self.socket() as s:
                hc.register_ok(s, [storage_notifier(EDQUOT), storage_notifier(QUOTA)])

                def writer(chan):
                    chan.send({'pid': os.getpid()})
                    path = f'{where}/mine'
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
                    # Over the soft limit (64 KiB), then into the hard one (128 KiB).
                    first = attempt(lambda: (os.write(fd, b'q' * 96 * 1024), os.fsync(fd)))
                    time.sleep(0.2)

                    def past_hard_limit():
                        # A write that crosses the limit is short; the next one fails.
                        for _ in range(8):
                            os.write(fd, b'q' * 64 * 1024)
                    second = attempt(past_hard_limit)
                    ino = os.fstat(fd).st_ino
                    os.close(fd)
                    time.sleep(0.2)
                    os.unlink(path)
                    chan.send({'first': first, 'second': second, 'ino': ino})
                child = Child(writer, uid=NOBODY)
                pid = child.recv()['pid']
                result = child.recv(60)
                child.wait()
                evs = events_for(s, quiet=2)
            self.record('quota', {'pid': pid, 'mount_id': mount_id_of(where), 'path': where, **result,
                                  'events': [brief(e) for e in evs]})
        finally:
            write_param('space_error_interval_ms', 1000)
            sh('umount', where, check=False)

    # -- who may register, who sees what
    def scoping(self):
        shared = f'{BASE}/shared'
        tmpfs(shared, 'size=64k,mode=1777')
        fill(f'{shared}/filler')
        write_param('space_errors_unprivileged', 0)
        write_param('space_error_interval_ms', 1)
        out = {}

        def nobody_register():
            with self.socket() as s:
                return {'enospc': hc.register(s, [storage_notifier(ENOSPC)]),
                        'quota': hc.register(s, [storage_notifier(QUOTA)])}
        out['nobody_without_param'] = in_child(nobody_register, uid=NOBODY)
        write_param('space_errors_unprivileged', 1)
        try:
            def nobody_listens(chan):
                with self.socket() as s:
                    chan.send({'id': hc.register_ok(s, [storage_notifier(ENOSPC)]), 'pid': os.getpid()})
                    chan.recv()
                    fd = os.open(f'{shared}/nobody', os.O_WRONLY | os.O_CREAT, 0o644)
                    err = attempt(lambda: os.write(fd, b'n' * 8192))
                    os.close(fd)
                    chan.send({'own_errno': err})
                    chan.recv()
                    chan.send({'events': [brief(e) for e in events_for(s, quiet=1.5)]})

            with self.socket() as root_sock:
                hc.register_ok(root_sock, [storage_notifier(ENOSPC)])
                child = Child(nobody_listens, uid=NOBODY)
                info = child.recv()
                # Root fails first: nobody's listener must not hear of it.
                fd = os.open(f'{shared}/root', os.O_WRONLY | os.O_CREAT, 0o644)
                out['root_errno'] = attempt(lambda: os.write(fd, b'r' * 8192))
                os.close(fd)
                time.sleep(0.1)
                child.send('now you')
                out.update(child.recv())
                child.send('report')
                out['nobody_events'] = child.recv()['events']
                out['nobody_pid'] = info['pid']
                child.wait()
                out['root_events'] = [brief(e) for e in events_for(root_sock, quiet=1.5)]
            out['root_pid'] = os.getpid()

            # A user and mount namespace of its own (uid 65534 outside, 0 inside).
            def container():
                with self.socket() as s:
                    reg = hc.register(s, [storage_notifier(ENOSPC)])
                    fd = os.open(f'{shared}/container', os.O_WRONLY | os.O_CREAT, 0o644)
                    err = attempt(lambda: os.write(fd, b'c' * 8192))
                    os.close(fd)
                    return {'register': reg['errno'], 'errno': err, 'pid': os.getpid(),
                            'events': [brief(e) for e in events_for(s, quiet=1.5)]}

            def enter_container(flags):
                def body(chan):
                    lc.become(NOBODY)
                    # A changed uid leaves the process undumpable, and its /proc files root's.
                    LIBC.prctl(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE
                    lc.unshare(flags)
                    with open('/proc/self/uid_map', 'w') as f:
                        f.write(f'0 {NOBODY} 1\n')
                    if not flags & CLONE_NEWPID:
                        chan.send({'result': container()})
                        return
                    # The first child of a new pid namespace is its pid 1 (unshare -Urnpfm).
                    pid = os.fork()
                    if pid == 0:
                        try:
                            chan.send({'result': container()})
                        finally:
                            os._exit(0)
                    os.waitpid(pid, 0)
                return body
            for name, flags in (('container', CLONE_NEWUSER | CLONE_NEWNS),
                                ('container_pidns', CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET)):
                with self.socket() as root_sock:
                    hc.register_ok(root_sock, [storage_notifier(ENOSPC)])
                    child = Child(enter_container(flags))
                    out[name] = child.recv(60)['result']
                    child.wait()
                    # Its mount namespace is not root's: root's (mnt-ns scope) listener is not told.
                    out[f'root_sees_{name}'] = [brief(e) for e in events_for(root_sock, quiet=1.0)]
            out['root_sees_container'] = out.pop('root_sees_container')

            # A chroot: only failures below its root, with paths from there.
            jail = f'{BASE}/jail'
            os.makedirs(f'{jail}/full', exist_ok=True)
            tmpfs(f'{jail}/full', 'size=64k')
            fill(f'{jail}/full/filler')

            def jailed(chan):
                os.chroot(jail)
                os.chdir('/')
                with self.socket() as s:
                    hc.register_ok(s, [storage_notifier(ENOSPC)])
                    chan.send('ready')
                    chan.recv()
                    chan.send({'events': [brief(e) for e in events_for(s, quiet=1.5)]})
            child = Child(jailed)
            child.recv()
            fd = os.open(f'{shared}/outside', os.O_WRONLY | os.O_CREAT, 0o644)
            out['outside_errno'] = attempt(lambda: os.write(fd, b'o' * 8192))
            os.close(fd)
            time.sleep(0.1)
            fd = os.open(f'{jail}/full/inside', os.O_WRONLY | os.O_CREAT, 0o644)
            out['inside_errno'] = attempt(lambda: os.write(fd, b'i' * 8192))
            os.close(fd)
            child.send('report')
            out['jail_events'] = child.recv()['events']
            child.wait()
        finally:
            write_param('space_errors_unprivileged', 0)
            write_param('space_error_interval_ms', 1000)
        self.record('scoping', out)

    # -- a listener killed in the middle of a storm leaves nothing behind
    def killed_mid_storm(self):
        full = f'{BASE}/blk'
        before = self.settled()

        def holder(chan):
            with self.socket(rcvbuf_force=1 << 16) as s:
                hc.register_ok(s, [storage_notifier(ENOSPC)])
                chan.send('registered')
                time.sleep(600)

        def stormer(chan):
            chan.recv()
            chan.send({'result': storm(f'{full}/storm2', 20000)})
        listener = Child(holder)
        listener.recv()
        storming = Child(stormer)
        storming.send('go')
        time.sleep(0.5)
        listener.kill()
        listener.wait()
        result = storming.recv(120)['result']
        storming.wait()
        self.record('killed-mid-storm', {'failures': result[0], 'before': before, 'after': self.settled(10)})

    # -- unloading the module while failures pour in
    def unload_mid_storm(self):
        full = f'{BASE}/blk'
        s = self.socket()
        hc.register_ok(s, [storage_notifier(ENOSPC)])

        def stormer(chan):
            chan.recv()
            chan.send({'result': storm(f'{full}/storm3', 40000)})
        storming = Child(stormer)
        storming.send('go')
        time.sleep(0.3)
        s.close()
        self.ctl.close()
        rmmod = sh('rmmod', 'usip', check=False)
        result = storming.recv(180)['result']
        storming.wait()
        insmod = sh('insmod', self.module_path, check=False)
        self.family, _ = lc.resolve_family()
        self.ctl = self.socket()
        self.record('unload-mid-storm', {'rmmod': rmmod.returncode, 'rmmod_stderr': rmmod.stderr,
                                         'failures': result[0], 'insmod': insmod.returncode,
                                         'stats': stats(self.ctl)})


GROUPS = ('arming', 'syscalls', 'coalescing', 'file-systems', 'quota', 'scoping', 'killed-mid-storm',
          'unload-mid-storm')


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--module', required=True)
    parser.add_argument('--only', help=f'comma-separated groups of {",".join(GROUPS)}')
    args = parser.parse_args()
    results = os.environ.get('USIP_VM_RESULTS')
    if not results:
        sys.exit('storage_checks.py: $USIP_VM_RESULTS is not set (run it in the usip-vm guest)')
    only = set(args.only.split(',')) if args.only else set(GROUPS)
    rec = lc.Recorder(os.path.join(results, 'storage-checks.jsonl'))
    checks = Checks(rec, args.module)
    rec.record('start', {'stats': stats(checks.ctl),
                         'params': {p: read_param(p) for p in sorted(os.listdir(lc.PARAMS))}})
    for name in GROUPS:
        if name in only:
            rec.section(name, getattr(checks, name.replace('-', '_')))
    rec.record('cleanup', {'stats': checks.settled()})
    checks.ctl.close()
    rec.write({'check': 'end', 'value': True})


if __name__ == '__main__':
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    main()
