#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
#
# Runs in the test VM with usip.ko loaded (statfs_max_running=2) and checks
# the statfs operation against the kernel's own statfs(2) (fstatfs() of each
# mount point, opened O_PATH, and os.statvfs()), with a client that is not
# ours (raw netlink from Python, the helpers of listener_checks.py):
#
#   truth      a dump as root in a private mount namespace with tmpfs mounts
#              of fixed sizes (one filled a little), read-only, nosuid/noexec,
#              bind and oddly named mounts: every mount of mountinfo once, the
#              numbers equal to statfs(2); do by mount-id, unique-id (6.8+;
#              EOPNOTSUPP on 6.1) and path (absolute, relative, through a
#              symlink, a file in a mount); the refusals (ENOENT, EINVAL) and
#              their extack messages
#   nobody     the same as uid 65534; EACCES for a path it may not walk
#   chroot     only the mounts inside, paths as the chroot's mountinfo shows
#              them; ENOENT for "/" (its mount is outside), a mount outside,
#              and a magic link leading out
#   container  `unshare -Urnpfm --mount-proc`: the container's mounts only
#   many       a dump across 300 tmpfs mounts of different sizes
#   hung       a FUSE daemon (raw /dev/fuse) that answers FUSE_INIT and never
#              FUSE_STATFS: uid 65534's dump is not held up (FUSE refuses it
#              without asking the daemon), root's dump ends in about
#              timeout-ms with ETIMEDOUT for it and numbers for the rest,
#              statfs-pending 1, later requests ETIMEDOUT at once with no
#              second FUSE_STATFS, a second hung mount with timeout-ms 300,
#              the pool of statfs_max_running=2 full (a tmpfs statfs times out
#              and leaves nothing behind), rmmod refused while calls are
#              pending; killing the daemons brings statfs-pending and objects
#              back to 0, then rmmod and insmod work.
#
# It judges nothing: one JSON line per check goes to
# $USIP_VM_RESULTS/statfs-checks.jsonl and statfs.test.ts asserts on them.
# Attribute ids and command numbers are written out from the uapi contract on
# purpose, so that a change of the ABI fails the test.
#
# Usage: statfs_checks.py --module PATH_OF_USIP_KO
#        statfs_checks.py --container FOREIGN_MOUNT_ID   (in the container; prints JSON)
import argparse
import ctypes
import errno
import json
import os
import signal
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from family_checks import nla  # noqa: E402
from listener_checks import (  # noqa: E402
    CLONE_NEWNS, CMD_STATS, NOBODY, PADS, STATS_SCHEMA, U32, U64, STR, Child, Genl, Recorder,
    decode, errname, jsonable, parse_attrs, poll, resolve_family, string, u32, u64, unshare,
)
from mount_checks import MS_BIND, MS_PRIVATE, MS_RDONLY, MS_REC, MS_REMOUNT, mount, mountinfo, umount  # noqa: E402

CMD_PING = 1
CMD_STATFS = 10
A_PING_FEATURES = 4
A_PING_FEATURE_STATUS = 7
FEATURE_STATFS = 0x80

# The statfs attribute set (include/uapi/linux/usip.h).
A_MOUNT_ID, A_UNIQUE_ID, A_PATH, A_TIMEOUT_MS = 1, 2, 3, 4
STATFS_SCHEMA = {
    1: ('mount_id', U64, False), 2: ('unique_id', U64, False), 5: ('mount_point', STR, False),
    6: ('fs_type', STR, False), 7: ('source', STR, False), 8: ('dev_major', U32, False),
    9: ('dev_minor', U32, False), 10: ('bsize', U64, False), 11: ('frsize', U64, False),
    12: ('blocks', U64, False), 13: ('blocks_free', U64, False), 14: ('blocks_available', U64, False),
    15: ('files', U64, False), 16: ('files_free', U64, False), 17: ('fsid', U64, False),
    18: ('name_max', U32, False), 19: ('flags', U32, False), 20: ('error', U32, False),
    21: ('mnt_ns', U64, False),
}
PADS[id(STATFS_SCHEMA)] = 22
STATS = dict(STATS_SCHEMA)
STATS.update({11: ('mount_hooks', U32, False), 12: ('scope', U32, False), 16: ('statfs_pending', U32, False)})
PADS[id(STATS)] = 10
ST_VALID = 0x20

LIBC = ctypes.CDLL(None, use_errno=True)


class StatfsBuf(ctypes.Structure):
    """struct statfs of x86-64 (the system call's own layout)."""
    _fields_ = [('f_type', ctypes.c_long), ('f_bsize', ctypes.c_long), ('f_blocks', ctypes.c_ulong),
                ('f_bfree', ctypes.c_ulong), ('f_bavail', ctypes.c_ulong), ('f_files', ctypes.c_ulong),
                ('f_ffree', ctypes.c_ulong), ('f_fsid', ctypes.c_int * 2), ('f_namelen', ctypes.c_long),
                ('f_frsize', ctypes.c_long), ('f_flags', ctypes.c_long), ('f_spare', ctypes.c_long * 4)]


LIBC.fstatfs.argtypes = [ctypes.c_int, ctypes.POINTER(StatfsBuf)]

STABLE = ('bsize', 'frsize', 'blocks', 'files', 'fsid', 'name_max', 'flags')
USAGE = ('blocks_free', 'blocks_available', 'files_free')
NUMBERS = STABLE + USAGE


# ---------------------------------------------------------------- the truth: statfs(2)

def mnt_id_of_fd(fd):
    with open(f'/proc/self/fdinfo/{fd}', encoding='ascii') as f:
        for line in f:
            if line.startswith('mnt_id:'):
                return int(line.split()[1])
    return None


def truth(path):
    """statfs(2) of the mount on top of path (fstatfs of an O_PATH descriptor), os.statvfs of the
    path, and the id of the mount the path is on; or the errno that stopped it."""
    try:
        fd = os.open(path, os.O_PATH)
    except OSError as e:
        return {'errno': errname(e.errno)}
    try:
        buf = StatfsBuf()
        if LIBC.fstatfs(fd, ctypes.byref(buf)) != 0:
            return {'errno': errname(ctypes.get_errno())}
        vfs = os.statvfs(f'/proc/self/fd/{fd}') if os.path.exists('/proc/self/fd') else os.statvfs(path)
        fsid = (buf.f_fsid[1] & 0xffffffff) << 32 | (buf.f_fsid[0] & 0xffffffff)
        return {
            'errno': None, 'mount_id': mnt_id_of_fd(fd), 'bsize': buf.f_bsize, 'frsize': buf.f_frsize,
            'blocks': buf.f_blocks, 'blocks_free': buf.f_bfree, 'blocks_available': buf.f_bavail,
            'files': buf.f_files, 'files_free': buf.f_ffree, 'fsid': fsid, 'name_max': buf.f_namelen,
            'flags': buf.f_flags,
            'statvfs': {'bsize': vfs.f_bsize, 'frsize': vfs.f_frsize, 'blocks': vfs.f_blocks,
                        'blocks_free': vfs.f_bfree, 'blocks_available': vfs.f_bavail, 'files': vfs.f_files,
                        'files_free': vfs.f_ffree, 'name_max': vfs.f_namemax, 'flag': vfs.f_flag,
                        'fsid': vfs.f_fsid},
        }
    finally:
        os.close(fd)


def differences(record, before, after, exact):
    """How a reply differs from statfs(2) read before and after it (usage may move in between on
    a busy file system, unless exact), and from os.statvfs."""
    out = []
    for key in NUMBERS:
        value = record.get(key)
        if exact or key in STABLE:
            if value != before[key] or value != after[key]:
                out.append({'field': key, 'usip': value, 'statfs': before[key], 'statfs_after': after[key]})
        elif value is None or not min(before[key], after[key]) <= value <= max(before[key], after[key]):
            out.append({'field': key, 'usip': value, 'statfs': before[key], 'statfs_after': after[key]})
    vfs = before['statvfs']
    for key in ('bsize', 'frsize', 'blocks', 'files', 'name_max'):
        if vfs[key] != record.get(key):
            out.append({'field': f'statvfs.{key}', 'usip': record.get(key), 'statvfs': vfs[key]})
    if (vfs['flag'] & ~ST_VALID) != ((record.get('flags') or 0) & ~ST_VALID):
        out.append({'field': 'statvfs.flag', 'usip': record.get('flags'), 'statvfs': vfs['flag']})
    if (vfs['fsid'] & 0xffffffff) != ((record.get('fsid') or 0) & 0xffffffff):
        out.append({'field': 'statvfs.fsid', 'usip': record.get('fsid'), 'statvfs': vfs['fsid']})
    return out


# ---------------------------------------------------------------- the module

def statfs_do(family, attrs, timeout=70):
    """One statfs request: its errno, extack, reply (decoded) and how long it took."""
    started = time.monotonic()
    with Genl(family) as s:
        reply = s.request(CMD_STATFS, attrs, timeout=timeout)
    out = {'errno': errname(reply.errno), 'extack': reply.extack, 'seconds': time.monotonic() - started,
           'replies': len(reply.messages)}
    if reply.ok and reply.messages:
        out['record'] = decode(reply.messages[0]['attrs'], STATFS_SCHEMA)
    return out


def statfs_dump(family, attrs=b'', timeout=600):
    started = time.monotonic()
    with Genl(family) as s:
        reply = s.request(CMD_STATFS, attrs, dump=True, timeout=timeout)
    return {'errno': errname(reply.errno), 'extack': reply.extack, 'seconds': time.monotonic() - started,
            'records': [decode(m['attrs'], STATFS_SCHEMA) for m in reply.messages]}


def stats(family):
    with Genl(family) as s:
        return s.request(CMD_STATS).attrs(STATS)


def ping_statfs(family):
    with Genl(family) as s:
        reply = s.request(CMD_PING)
    attrs = reply.messages[0]['attrs']
    features = struct.unpack('=I', attrs[A_PING_FEATURES][0])[0]
    status = None
    for raw in attrs.get(A_PING_FEATURE_STATUS, []):
        st = parse_attrs(raw)
        if struct.unpack('=I', st[1][0])[0] == FEATURE_STATFS:
            status = {'available': st[2][0][0], 'reason': struct.unpack('=I', st[3][0])[0] if 3 in st else None}
    return {'in_mask': bool(features & FEATURE_STATFS), 'status': status}


def compare_dump(family, proc_fd=None, skip_types=('fuse',), exact_under=None, attrs=b'', tries=3):
    """A dump against mountinfo and statfs(2) of each mount point. Mounts whose point another mount
    hides, and FUSE mounts (statfs(2) of a hung one would hang this script), are compared by
    identity only. Usage of a busy file system (the 9p root) may move: a mount whose usage is out
    of range is read again by mount-id, up to `tries` times."""
    table = mountinfo(proc_fd=proc_fd)
    before = {mid: (truth(r['mount_point']) if not r['fs_type'].startswith(skip_types) else None)
              for mid, r in table.items()}
    dump = statfs_dump(family, attrs)
    after = {mid: (truth(r['mount_point']) if not r['fs_type'].startswith(skip_types) else None)
             for mid, r in table.items()}
    records = dump['records']
    seen, duplicates, identity, numbers, compared, hidden, unreadable, retried = {}, [], [], [], 0, [], [], 0
    for r in records:
        mid = r.get('mount_id')
        if mid in seen:
            duplicates.append(mid)
        seen[mid] = r
        line = table.get(mid)
        if line is None:
            continue
        for key, truth_key in (('mount_point', 'mount_point'), ('fs_type', 'fs_type'), ('source', 'source'),
                               ('dev_major', 'major'), ('dev_minor', 'minor')):
            if r.get(key) != line[truth_key]:
                identity.append({'mount_id': mid, 'field': key, 'usip': r.get(key), 'mountinfo': line[truth_key]})
        b, a = before.get(mid), after.get(mid)
        if b is None:
            continue
        if b['errno'] or a['errno']:
            unreadable.append({'mount_id': mid, 'mount_point': line['mount_point'], 'errno': b['errno']})
            continue
        if b['mount_id'] != mid:
            hidden.append(mid)
            continue
        if r.get('error'):
            numbers.append({'mount_id': mid, 'error': errname(r['error'])})
            continue
        exact = exact_under is not None and line['mount_point'].startswith(exact_under)
        diff = differences(r, b, a, exact)
        attempt = 0
        while diff and not exact and attempt < tries and all(d['field'] in USAGE for d in diff):
            attempt += 1
            retried += 1
            b = truth(line['mount_point'])
            got = statfs_do(family, nla(A_MOUNT_ID, u64(mid)))
            a = truth(line['mount_point'])
            diff = differences(got.get('record', {}), b, a, exact)
        compared += 1
        if diff:
            numbers.append({'mount_id': mid, 'mount_point': line['mount_point'], 'differences': diff})
    return {
        'errno': dump['errno'], 'extack': dump['extack'], 'seconds': dump['seconds'],
        'dumped': len(records), 'mountinfo': len(table), 'duplicates': duplicates,
        'only_dump': sorted(set(seen) - set(table))[:20], 'only_mountinfo': sorted(set(table) - set(seen))[:20],
        'identity': identity[:20], 'numbers': numbers[:20], 'compared': compared, 'hidden': hidden,
        'unreadable': unreadable[:20], 'retried': retried,
        'mnt_ns': sorted({r.get('mnt_ns') for r in records}),
        'own_mnt_ns': os.stat('ns/mnt' if proc_fd is not None else '/proc/self/ns/mnt', dir_fd=proc_fd).st_ino,
        'errors': sorted({errname(r['error']) for r in records if r.get('error')}),
        'records': {str(r.get('mount_id')): r for r in records if exact_under and
                    str(r.get('mount_point', '')).startswith(exact_under)},
        'skipped_records': [r for r in records if str(r.get('fs_type', '')).startswith(skip_types)],
    }


def tmpfs(target, source, data):
    os.makedirs(target, exist_ok=True)
    mount(source, target, 'tmpfs', 0, data)


def write_file(path, size):
    with open(path, 'wb') as f:
        f.write(b'u' * size)


# ---------------------------------------------------------------- a FUSE file system that hangs

FUSE_INIT, FUSE_STATFS, FUSE_FORGET, FUSE_BATCH_FORGET = 26, 17, 2, 42
IN_HEADER = struct.Struct('=IIQQIIIHH')


def fuse_daemon(chan, target, subtype):
    """Mounts a FUSE file system at target, answers FUSE_INIT, and never answers FUSE_STATFS (told
    to the parent, with the uid the request came with); anything else gets ENOSYS."""
    fd = os.open('/dev/fuse', os.O_RDWR)
    mount('hung', target, f'fuse.{subtype}', 0, f'fd={fd},rootmode=40000,user_id=0,group_id=0')
    chan.send({'mounted': True})
    while True:
        data = os.read(fd, 1 << 18)
        length, opcode, unique, _node, uid, _gid, pid, _ext, _pad = IN_HEADER.unpack_from(data)
        if opcode == FUSE_INIT:
            _major, minor, max_readahead, _flags = struct.unpack_from('=IIII', data, IN_HEADER.size)
            body = struct.pack('=IIIIHHIIHHI', 7, min(minor, 31), max_readahead, 0, 16, 12, 65536, 1, 0, 0, 0)
            body += b'\0' * (64 - len(body))
            os.write(fd, struct.pack('=IiQ', 16 + len(body), 0, unique) + body)
            chan.send({'ready': True})
        elif opcode == FUSE_STATFS:
            chan.send({'statfs': {'uid': uid, 'pid': pid}})
        elif opcode not in (FUSE_FORGET, FUSE_BATCH_FORGET):
            os.write(fd, struct.pack('=IiQ', 16, -errno.ENOSYS, unique))


class HungFuse:
    def __init__(self, target, subtype):
        os.makedirs(target, exist_ok=True)
        self.target = target
        self.child = Child(lambda chan: fuse_daemon(chan, target, subtype))
        self.requests = []
        assert self.child.recv(timeout=30).get('mounted')
        assert self.child.recv(timeout=30).get('ready')

    def statfs_requests(self, settle=0.3):
        """The FUSE_STATFS requests the daemon has seen so far."""
        while True:
            try:
                msg = self.child.recv(timeout=settle)
            except TimeoutError:
                return self.requests
            if 'statfs' in msg:
                self.requests.append(msg['statfs'])

    def kill(self):
        self.child.kill(signal.SIGKILL)
        return self.child.wait()


# ---------------------------------------------------------------- the checks

class Checks:
    def __init__(self, rec, module_path):
        self.rec = rec
        self.module_path = module_path
        self.family, _ = resolve_family()

    def record(self, check, value):
        self.rec.record(check, value)

    def start(self):
        self.record('start', {'ping': ping_statfs(self.family), 'stats': stats(self.family),
                              'timeout_param': open('/sys/module/usip/parameters/statfs_timeout_ms').read().strip(),
                              'max_running_param': open('/sys/module/usip/parameters/statfs_max_running').read().strip(),
                              'kernel': os.uname().release})

    # -- fixtures: private namespace, tmpfs of known sizes
    def fixtures(self):
        os.makedirs('/tmp/sf', exist_ok=True)
        tmpfs('/tmp/sf/fill', 'fill', 'size=4m,nr_inodes=1000')
        write_file('/tmp/sf/fill/data', 300 * 1024)
        for i in range(10):
            write_file(f'/tmp/sf/fill/f{i}', 100)
        os.makedirs('/tmp/sf/fill/sub', exist_ok=True)
        tmpfs('/tmp/sf/flags', 'flagged', 'size=1m')
        mount(None, '/tmp/sf/flags', None, MS_REMOUNT | MS_BIND | MS_RDONLY | 2 | 4 | 8)  # nosuid nodev noexec
        os.makedirs('/tmp/sf/bind', exist_ok=True)
        mount('/tmp/sf/fill/sub', '/tmp/sf/bind', None, MS_BIND)
        tmpfs('/tmp/sf/with space\tand tab', 'odd source', 'size=2m')
        os.symlink('/tmp/sf/fill', '/tmp/sf/link')
        os.makedirs('/tmp/sf/private/inner', exist_ok=True)
        tmpfs('/tmp/sf/private/inner', 'private', 'size=1m')
        os.chmod('/tmp/sf/private', 0o700)

    def truth(self):
        family = self.family
        self.record('truth.root', compare_dump(family, exact_under='/tmp/sf/'))
        table = mountinfo()
        by_point = {r['mount_point']: mid for mid, r in table.items()}
        fill = by_point['/tmp/sf/fill']

        # Every mount by its mount id (and unique id), with statfs(2) around it.
        gets, unique = [], []
        for mid, line in sorted(table.items()):
            b = truth(line['mount_point'])
            got = statfs_do(family, nla(A_MOUNT_ID, u64(mid)))
            a = truth(line['mount_point'])
            rec = got.get('record', {})
            exact = line['mount_point'].startswith('/tmp/sf/')
            diff = differences(rec, b, a, exact) if not b['errno'] and b['mount_id'] == mid else None
            gets.append({'mount_id': mid, 'errno': got['errno'], 'mount_point': rec.get('mount_point'),
                         'truth_point': line['mount_point'], 'got_id': rec.get('mount_id'), 'differences': diff,
                         'exact': exact})
            if rec.get('unique_id') is not None and len(unique) < 5:
                again = statfs_do(family, nla(A_UNIQUE_ID, u64(rec['unique_id'])))
                unique.append({'mount_id': mid, 'unique_id': rec['unique_id'], 'errno': again['errno'],
                               'got_id': again.get('record', {}).get('mount_id'),
                               'same_numbers': {k: again.get('record', {}).get(k) for k in NUMBERS} ==
                               {k: rec.get(k) for k in NUMBERS}})
        self.record('get.by-mount-id', gets)
        self.record('get.by-unique-id', {'gets': unique,
                                         'fill': statfs_do(family, nla(A_UNIQUE_ID, u64(2 ** 31 + 5 * 10 ** 6)))})

        # By path: a mount point, a file in a mount, a symlink, a relative path, the bind of a subdirectory.
        def by_path(path):
            b = truth(path)
            got = statfs_do(family, nla(A_PATH, string(path)))
            rec = got.get('record', {})
            return {'path': path, 'errno': got['errno'], 'extack': got['extack'], 'got_id': rec.get('mount_id'),
                    'mount_point': rec.get('mount_point'), 'truth_id': b.get('mount_id'),
                    'differences': differences(rec, b, truth(path), True) if rec and not b['errno'] else None}
        paths = [by_path(p) for p in ('/tmp/sf/fill', '/tmp/sf/fill/data', '/tmp/sf/link', '/tmp/sf/bind',
                                      '/tmp/sf/flags', '/tmp/sf/with space\tand tab', '/tmp/sf/fill/sub/../data')]
        os.chdir('/tmp/sf/fill/sub')
        paths.append(by_path('../data'))
        os.chdir('/')
        self.record('get.by-path', {'paths': paths, 'fill': fill})
        fill_record = statfs_do(family, nla(A_MOUNT_ID, u64(fill)))['record']
        self.record('fill', {'record': fill_record, 'page': os.sysconf('SC_PAGE_SIZE'),
                             'data_bytes': 300 * 1024, 'files_made': 12})

        # Refusals.
        refusals = {
            'no-such-path': statfs_do(family, nla(A_PATH, string('/tmp/sf/nope'))),
            'not-a-directory': statfs_do(family, nla(A_PATH, string('/tmp/sf/fill/data/x'))),
            'no-such-mount': statfs_do(family, nla(A_MOUNT_ID, u64(max(table) + 100000))),
            'nothing-named': statfs_do(family, b''),
            'two-named': statfs_do(family, nla(A_MOUNT_ID, u64(fill)) + nla(A_PATH, string('/tmp'))),
            'timeout-zero': statfs_do(family, nla(A_MOUNT_ID, u64(fill)) + nla(A_TIMEOUT_MS, u32(0))),
            'timeout-too-long': statfs_do(family, nla(A_MOUNT_ID, u64(fill)) + nla(A_TIMEOUT_MS, u32(60001))),
            'path-not-string': statfs_do(family, nla(A_PATH, b'/tmp')),
            'mount-id-wrong-size': statfs_do(family, nla(A_MOUNT_ID, u32(fill))),
        }
        dump = statfs_dump(family, nla(A_MOUNT_ID, u64(fill)))
        refusals['dump-with-mount-id'] = {'errno': dump['errno'], 'extack': dump['extack'],
                                          'replies': len(dump['records'])}
        dump = statfs_dump(family, nla(A_TIMEOUT_MS, u32(5000)))
        refusals['dump-with-timeout'] = {'errno': dump['errno'], 'replies': len(dump['records'])}
        self.record('refusals', refusals)

    def nobody(self):
        family = self.family

        def body(chan):
            result = compare_dump(family, exact_under='/tmp/sf/')
            result['private_path'] = statfs_do(family, nla(A_PATH, string('/tmp/sf/private/inner')))
            chan.send({'result': result})
        child = Child(body, uid=NOBODY)
        try:
            self.record('nobody', child.recv(timeout=300)['result'])
        finally:
            child.wait()

    def chroot(self):
        family = self.family
        tmpfs('/tmp/sf/jail/a', 'jail-a', 'size=1m')
        tmpfs('/tmp/sf/jail/b', 'jail-b', 'size=3m')
        write_file('/tmp/sf/jail/b/x', 64 * 1024)
        os.makedirs('/tmp/sf/jail/proc', exist_ok=True)
        mount('proc', '/tmp/sf/jail/proc', 'proc')
        outside = {r['mount_point']: mid for mid, r in mountinfo().items()}

        def body(chan):
            escape = os.open('/tmp/sf/fill', os.O_PATH)
            os.chroot('/tmp/sf/jail')
            os.chdir('/')
            result = compare_dump(family, exact_under='/')
            result['root_path'] = statfs_do(family, nla(A_PATH, string('/')))
            result['a_path'] = statfs_do(family, nla(A_PATH, string('/a')))
            result['outside_mount'] = statfs_do(family, nla(A_MOUNT_ID, u64(outside['/tmp/sf/fill'])))
            result['magic_link_out'] = statfs_do(family, nla(A_PATH, string(f'/proc/self/fd/{escape}')))
            result['inside_ids'] = [outside['/tmp/sf/jail/a'], outside['/tmp/sf/jail/b'],
                                    outside['/tmp/sf/jail/proc']]
            chan.send({'result': result})
        child = Child(body)
        try:
            self.record('chroot', child.recv(timeout=300)['result'])
        finally:
            child.wait()

    def container(self):
        outside = {r['mount_point']: mid for mid, r in mountinfo().items()}
        os.makedirs('/tmp/sf/ctr', exist_ok=True)
        proc = subprocess.run(['unshare', '-Urnpfm', '--mount-proc', sys.executable, os.path.abspath(__file__),
                               '--container', str(outside['/tmp/sf/fill'])],
                              capture_output=True, text=True, timeout=300, check=False)
        try:
            result = json.loads(proc.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            result = None
        self.record('container', {'exit': proc.returncode, 'stderr': proc.stderr[-3000:], 'result': result,
                                  'host_mnt_ns': os.stat('/proc/self/ns/mnt').st_ino})

    def many(self):
        for i in range(300):
            tmpfs(f'/tmp/sf/many/m{i}', f'many{i}', f'size={(i + 1) * 8}k,nr_inodes={100 + i}')
        self.record('many', compare_dump(self.family, exact_under='/tmp/sf/many/'))

    def hung(self):
        family = self.family
        if not os.path.exists('/dev/fuse'):
            subprocess.run(['modprobe', 'fuse'], check=True)
        fuse_a = HungFuse('/tmp/sf/hung-a', 'hunga')
        table = {r['mount_point']: mid for mid, r in mountinfo().items()}
        a_id = table['/tmp/sf/hung-a']
        out = {'a_id': a_id, 'stats_before': stats(family)}

        # uid 65534: FUSE refuses its statfs without asking the daemon (no allow_other), as statfs(2).
        def as_nobody(chan):
            buf = os.statvfs('/tmp/sf/hung-a')
            chan.send({'result': {'dump': statfs_dump(family), 'statvfs_blocks': buf.f_blocks,
                                  'statvfs_files': buf.f_files}})
        child = Child(as_nobody, uid=NOBODY)
        try:
            nobody = child.recv(timeout=120)['result']
        finally:
            child.wait()
        out['nobody'] = {'seconds': nobody['dump']['seconds'], 'errno': nobody['dump']['errno'],
                         'fuse': next((r for r in nobody['dump']['records'] if r.get('mount_id') == a_id), None),
                         'statvfs_blocks': nobody['statvfs_blocks'], 'statvfs_files': nobody['statvfs_files'],
                         'daemon_requests': list(fuse_a.statfs_requests())}

        # Root: the dump ends in about timeout-ms (the default, 1000), the others read.
        out['first_dump'] = compare_dump(family)
        first = statfs_dump(family)  # the pending call makes this one quick, and also ETIMEDOUT
        out['second_dump'] = {'seconds': first['seconds'], 'errno': first['errno'],
                              'fuse': next((r for r in first['records'] if r.get('mount_id') == a_id), None),
                              'others_with_error': [r.get('mount_id') for r in first['records']
                                                    if r.get('error') and r.get('mount_id') != a_id]}
        out['daemon_requests_after_dumps'] = list(fuse_a.statfs_requests())
        out['stats_pending_one'] = stats(family)
        out['again_by_id'] = statfs_do(family, nla(A_MOUNT_ID, u64(a_id)) + nla(A_TIMEOUT_MS, u32(5000)))
        out['again_by_path'] = statfs_do(family, nla(A_PATH, string('/tmp/sf/hung-a')) + nla(A_TIMEOUT_MS, u32(5000)))
        slow = statfs_dump(family, nla(A_TIMEOUT_MS, u32(5000)))
        out['dump_long_timeout'] = {'seconds': slow['seconds'], 'errno': slow['errno'],
                                    'fuse_error': next((errname(r.get('error')) for r in slow['records']
                                                        if r.get('mount_id') == a_id), None)}
        out['daemon_requests_after_again'] = list(fuse_a.statfs_requests())

        # A second hung file system, with a short timeout: the pool (statfs_max_running=2) is full then.
        fuse_b = HungFuse('/tmp/sf/hung-b', 'hungb')
        b_id = {r['mount_point']: mid for mid, r in mountinfo().items()}['/tmp/sf/hung-b']
        out['b_short'] = statfs_do(family, nla(A_MOUNT_ID, u64(b_id)) + nla(A_TIMEOUT_MS, u32(300)))
        out['b_requests'] = list(fuse_b.statfs_requests())
        out['stats_pending_two'] = stats(family)
        out['pool_full_tmpfs'] = statfs_do(family, nla(A_MOUNT_ID, u64(table['/tmp/sf/fill'])) +
                                           nla(A_TIMEOUT_MS, u32(500)))
        out['stats_pool_full'] = stats(family)

        # rmmod is refused while calls are pending.
        rmmod = subprocess.run(['rmmod', 'usip'], capture_output=True, text=True, check=False)
        out['rmmod_pending'] = {'exit': rmmod.returncode, 'stderr': rmmod.stderr,
                                'loaded': os.path.exists('/sys/module/usip')}

        # Killing the daemons aborts their connections, which ends the calls.
        fuse_a.kill()
        out['pending_after_kill_a'], _ = poll(lambda: stats(family).get('statfs_pending') == 1, timeout=20)
        fuse_b.kill()
        out['pending_after_kill_b'], _ = poll(lambda: stats(family).get('statfs_pending') == 0, timeout=20)
        out['objects_back'], _ = poll(lambda: stats(family).get('objects') == 0, timeout=20)
        out['stats_after'] = stats(family)
        out['fill_after'] = statfs_do(family, nla(A_MOUNT_ID, u64(table['/tmp/sf/fill'])))
        out['dead_fuse'] = statfs_do(family, nla(A_MOUNT_ID, u64(a_id)))
        for target in ('/tmp/sf/hung-a', '/tmp/sf/hung-b'):
            umount(target)
        rmmod = subprocess.run(['rmmod', 'usip'], capture_output=True, text=True, check=False)
        out['rmmod'] = {'exit': rmmod.returncode, 'stderr': rmmod.stderr, 'loaded': os.path.exists('/sys/module/usip')}
        insmod = subprocess.run(['insmod', self.module_path], capture_output=True, text=True, check=False)
        out['insmod'] = {'exit': insmod.returncode, 'stderr': insmod.stderr}
        self.record('hung', out)


def container_main(foreign_id):
    """In `unshare -Urnpfm --mount-proc`: the dump is the container's table; prints JSON."""
    family, _ = resolve_family()
    tmpfs('/tmp/sf/ctr', 'ctr', 'size=2m')
    write_file('/tmp/sf/ctr/x', 8192)
    result = compare_dump(family, exact_under='/tmp/sf/ctr')
    result['foreign'] = statfs_do(family, nla(A_MOUNT_ID, u64(foreign_id)))
    result['ctr_path'] = statfs_do(family, nla(A_PATH, string('/tmp/sf/ctr/x')))
    result['ctr_id'] = {r['mount_point']: mid for mid, r in mountinfo().items()}.get('/tmp/sf/ctr')
    print(json.dumps(jsonable(result)))


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--module', help='the usip.ko that is loaded, to load it again')
    parser.add_argument('--container', type=int, help='run the container half (a mount id of the parent)')
    parser.add_argument('--only', action='append', help='run only these sections')
    args = parser.parse_args()
    if args.container is not None:
        container_main(args.container)
        return
    results = os.environ.get('USIP_VM_RESULTS')
    if not results or not args.module:
        sys.exit('statfs_checks.py: run it in the usip-vm guest with --module PATH')
    rec = Recorder(os.path.join(results, 'statfs-checks.jsonl'))
    # Everything happens in a private mount namespace of this process's own.
    unshare(CLONE_NEWNS)
    mount(None, '/', None, MS_REC | MS_PRIVATE)
    checks = Checks(rec, os.path.abspath(args.module))
    for name, fn in (('start', checks.start), ('fixtures', checks.fixtures), ('truth', checks.truth),
                     ('nobody', checks.nobody), ('chroot', checks.chroot), ('container', checks.container),
                     ('many', checks.many), ('hung', checks.hung)):
        if args.only and name not in args.only and name not in ('start', 'fixtures'):
            continue
        rec.section(name, fn)
    rec.record('end', True)


if __name__ == '__main__':
    main()
