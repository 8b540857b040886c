#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
#
# Runs in the test VM with usip.ko loaded and checks the mount table side of
# the module against the kernel's own view, /proc/self/mountinfo, with a
# client that is not ours (raw netlink from Python, the helpers of
# listener_checks.py): mount-get dumps and gets, field by field, in private
# mount namespaces with thousands of mounts of several kinds, from a chroot
# and from a second namespace; dumps across many receive buffers and while
# the table changes; mount change events from real mount(2), umount2(2),
# MS_MOVE, remounts and propagation into a slave namespace, with their
# per-namespace ns-seq; and the hooks being armed only while a listener with
# an mtab notifier exists.
#
# As listener_checks.py, it judges nothing: one JSON line per check goes to
# $USIP_VM_RESULTS/mount-checks.jsonl and mounts.test.ts asserts on them.
#
# Usage: mount_checks.py [--big N]
import argparse
import ctypes
import errno
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from family_checks import nla  # noqa: E402
from listener_checks import (  # noqa: E402
    CLONE_NEWNS, CMD_STATS, GLOBAL, MOUNT, MOVE, NLM_F_DUMP, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR, NOBODY,
    NOTIFY, REMOUNT, STATS_SCHEMA, TYPE_MTAB, TYPE_STORAGE, UMOUNT, ENOSPC, Child, Genl, Recorder,
    become, errname, notifier, parse_attrs, parse_error, parse_messages, register_attrs, resolve_family,
    string, u32, u64, unshare,
)

CMD_REGISTER = 2
CMD_MOUNT_GET = 9
NLM_F_DUMP_INTR = 0x10

# The mount attribute set (include/uapi/linux/usip.h), written out on purpose.
A_MOUNT_MOUNT_ID = 1
A_MOUNT_UNIQUE_ID = 3
U32, U64, STR, FLAG = 'u32', 'u64', 'str', 'flag'
MOUNT_SCHEMA = {
    1: ('mount_id', U64), 2: ('parent_id', U64), 3: ('unique_id', U64), 4: ('major', U32),
    5: ('minor', U32), 6: ('root', STR), 7: ('mount_point', STR), 8: ('attr', U32), 9: ('fs_type', STR),
    10: ('source', STR), 11: ('super_options', STR), 12: ('shared', U32), 13: ('master', U32),
    14: ('propagate_from', U32), 15: ('unbindable', FLAG), 16: ('mnt_ns', U64), 17: ('ns_seq', U64),
}
MOUNT_PAD = 18
# mount-attr flags, in the order mountinfo prints them after ro/rw.
ATTR_RO = 0x1
ATTR_NAMES = [(0x2, 'nosuid'), (0x4, 'nodev'), (0x8, 'noexec'), (0x10, 'noatime'), (0x20, 'nodiratime'),
              (0x40, 'relatime'), (0x80, 'nosymfollow'), (0x100, 'idmapped')]
EVENT_SCHEMA = {
    1: ('listener_id', U32), 2: ('seq', U64), 3: ('missed', U32), 4: ('type', U32), 5: ('action', U32),
    6: ('cmd', U32), 7: ('timestamp', U64), 8: ('mnt_ns', U64), 9: ('pid', U32), 10: ('uid', U32), 11: ('mount_id', U64), 12: ('parent_id', U64),
    13: ('path', STR), 14: ('fs_type', STR), 15: ('source', STR), 16: ('dev', U32), 22: ('ns_seq', U64),
    23: ('unique_id', U64),
}
ACTION_NAMES = {MOUNT: 'mount', UMOUNT: 'umount', MOVE: 'move', REMOUNT: 'remount'}

MS_RDONLY, MS_NOSUID, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_MOVE, MS_REC = 1, 2, 8, 32, 4096, 8192, 16384
MS_UNBINDABLE, MS_PRIVATE, MS_SLAVE, MS_SHARED = 1 << 17, 1 << 18, 1 << 19, 1 << 20
MNT_DETACH = 2

LIBC = ctypes.CDLL(None, use_errno=True)
LIBC.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
LIBC.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
# x86_64 system call numbers of what the C library may not wrap.
SYS_PIVOT_ROOT, SYS_FSCONFIG, SYS_FSPICK, SYS_MOUNT_SETATTR = 155, 431, 433, 442
AT_FDCWD = -100
AT_RECURSIVE = 0x8000
MOUNT_ATTR_NOEXEC = 0x8
FSCONFIG_SET_FLAG, FSCONFIG_CMD_RECONFIGURE = 0, 7


def syscall(number, *args):
    result = LIBC.syscall(number, *args)
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f'syscall {number}: {os.strerror(err)}')
    return result


def mount_setattr(path, flags, attr_set):
    attr = struct.pack('=QQQQ', attr_set, 0, 0, 0)
    syscall(SYS_MOUNT_SETATTR, ctypes.c_int(AT_FDCWD), ctypes.c_char_p(path.encode()), ctypes.c_uint(flags),
            ctypes.c_char_p(attr), ctypes.c_size_t(len(attr)))


def reconfigure_read_only(path):
    """fspick() + fsconfig(): the new mount API's remount of a superblock."""
    fd = syscall(SYS_FSPICK, ctypes.c_int(AT_FDCWD), ctypes.c_char_p(path.encode()), ctypes.c_uint(0))
    try:
        syscall(SYS_FSCONFIG, ctypes.c_int(fd), ctypes.c_uint(FSCONFIG_SET_FLAG), ctypes.c_char_p(b'ro'),
                ctypes.c_void_p(None), ctypes.c_int(0))
        syscall(SYS_FSCONFIG, ctypes.c_int(fd), ctypes.c_uint(FSCONFIG_CMD_RECONFIGURE), ctypes.c_void_p(None),
                ctypes.c_void_p(None), ctypes.c_int(0))
    finally:
        os.close(fd)


def mount(source, target, fstype=None, flags=0, data=None):
    enc = (lambda v: v if v is None or isinstance(v, bytes) else v.encode())
    if LIBC.mount(enc(source), enc(target), enc(fstype), flags, enc(data)) != 0:
        number = ctypes.get_errno()
        raise OSError(number, f'mount({source}, {target}, {fstype}, {flags:#x}): {os.strerror(number)}')


def umount(target, flags=0):
    target = target if isinstance(target, bytes) else target.encode()
    if LIBC.umount2(target, flags) != 0:
        number = ctypes.get_errno()
        raise OSError(number, f'umount2({target!r}): {os.strerror(number)}')


def tmpfs(target, name='tmpfs', data='size=64k'):
    os.makedirs(target, exist_ok=True)
    mount(name, target, 'tmpfs', 0, data)


# ---------------------------------------------------------------- mountinfo, the truth

def unescape(field):
    """mountinfo's \\ooo escapes, undone, as bytes decoded like the netlink strings."""
    out = bytearray()
    i = 0
    raw = field.encode('utf8', 'surrogateescape')
    while i < len(raw):
        if raw[i] == 0x5c and i + 3 < len(raw) + 1 and raw[i + 1:i + 4].isdigit():
            out.append(int(raw[i + 1:i + 4], 8))
            i += 4
        else:
            out.append(raw[i])
            i += 1
    return bytes(out).decode(errors='replace')


def mountinfo(path='/proc/self/mountinfo', proc_fd=None):
    """Every line of mountinfo, parsed: {mount_id: record}. With proc_fd (a /proc/self opened before
    a chroot without /proc), the mountinfo file in it, opened now (with the root it has now)."""
    table = {}
    if proc_fd is not None:
        path = 'mountinfo'
    with open(path, 'rb', opener=lambda p, flags: os.open(p, flags, dir_fd=proc_fd)) as f:
        text = f.read().decode('utf8', 'surrogateescape')
    for line in text.splitlines():
        fields = line.split(' ')
        sep = fields.index('-')
        major, minor = fields[2].split(':')
        optional = fields[6:sep]
        record = {
            'mount_id': int(fields[0]), 'parent_id': int(fields[1]), 'major': int(major), 'minor': int(minor),
            'root': unescape(fields[3]), 'mount_point': unescape(fields[4]), 'options': fields[5],
            'optional': ' '.join(optional), 'fs_type': unescape(fields[sep + 1]),
            'source': unescape(fields[sep + 2]), 'super_options': fields[sep + 3],
        }
        table[record['mount_id']] = record
    return table


def render(record):
    """A dumped mount in mountinfo's terms (options and optional fields as text)."""
    attr = record.get('attr', 0)
    options = 'ro' if attr & ATTR_RO else 'rw'
    options += ''.join(f',{name}' for bit, name in ATTR_NAMES if attr & bit)
    optional = []
    if 'shared' in record:
        optional.append(f'shared:{record["shared"]}')
    if 'master' in record:
        optional.append(f'master:{record["master"]}')
    if 'propagate_from' in record:
        optional.append(f'propagate_from:{record["propagate_from"]}')
    if record.get('unbindable'):
        optional.append('unbindable')
    keys = ('mount_id', 'parent_id', 'major', 'minor', 'root', 'mount_point', 'fs_type', 'source',
            'super_options')
    out = {k: record.get(k) for k in keys}
    out.update(options=options, optional=' '.join(optional))
    return out


def compare(dumped, truth, limit=20):
    """Field-by-field differences between a dump (list of records) and mountinfo."""
    mine = {}
    duplicates = []
    for record in dumped:
        r = render(record)
        if r['mount_id'] in mine:
            duplicates.append(r['mount_id'])
        mine[r['mount_id']] = r
    only_dump = sorted(set(mine) - set(truth))
    only_mountinfo = sorted(set(truth) - set(mine))
    mismatches = []
    for mount_id in sorted(set(mine) & set(truth)):
        for key, value in truth[mount_id].items():
            if mine[mount_id].get(key) != value:
                mismatches.append({'mount_id': mount_id, 'field': key, 'dump': mine[mount_id].get(key),
                                   'mountinfo': value})
    return {'dumped': len(mine), 'mountinfo': len(truth), 'duplicates': duplicates[:limit],
            'only_dump': only_dump[:limit], 'only_mountinfo': only_mountinfo[:limit],
            'mismatches': len(mismatches), 'first_mismatches': mismatches[:limit]}


# ---------------------------------------------------------------- the module, raw

def decode(payload, schema, pad=None):
    out = {}
    for attr_type, values in parse_attrs(payload).items():
        if attr_type not in schema:
            if attr_type != pad:
                out.setdefault('unknown_attributes', []).append(attr_type)
            continue
        name, kind = schema[attr_type]
        value = values[0]
        if kind == U32:
            out[name] = struct.unpack('=I', value)[0]
        elif kind == U64:
            out[name] = struct.unpack('=Q', value)[0]
        elif kind == FLAG:
            out[name] = True
        else:
            out[name] = value.rstrip(b'\0').decode(errors='replace')
    return out


def dump_mounts(family, rcvbuf=None):
    """A mount-get dump: (records, datagrams, interrupted, errno, extack)."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 16)
    sock.setsockopt(270, 11, 1)  # NETLINK_EXT_ACK
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.bind((0, 0))
    body = struct.pack('=BBH', CMD_MOUNT_GET, 1, 0)
    sock.send(struct.pack('=IHHII', 16 + len(body), family, NLM_F_REQUEST | NLM_F_DUMP, 7, 0) + body)
    records, datagrams, interrupted = [], 0, False
    try:
        while True:
            data = sock.recv(1 << 20)
            datagrams += 1
            for msg_type, flags, _seq, _pid, payload in parse_messages(data):
                if flags & NLM_F_DUMP_INTR:
                    interrupted = True
                if msg_type == NLMSG_DONE:
                    err, extack, _, _ = parse_error(flags, payload, done=True)
                    return records, datagrams, interrupted, err, extack
                if msg_type == NLMSG_ERROR:
                    err, extack, _, _ = parse_error(flags, payload)
                    return records, datagrams, interrupted, err, extack
                records.append(decode(payload[4:], MOUNT_SCHEMA, MOUNT_PAD))
    finally:
        sock.close()


def get_mount(family, attrs):
    with Genl(family) as s:
        reply = s.request(CMD_MOUNT_GET, attrs)
        out = {'errno': reply.errno, 'error': errname(reply.errno), 'extack': reply.extack}
        if reply.ok and reply.messages:
            payload = b''.join(nla(t, v) for t, vs in reply.messages[0]['attrs'].items() for v in vs)
            out['mount'] = decode(payload, MOUNT_SCHEMA, MOUNT_PAD)
        return out


def truth_compare(family, limit=20, proc_fd=None):
    """Dump and mountinfo of this process, compared; also the dump's raw facts."""
    records, datagrams, interrupted, err, extack = dump_mounts(family)
    result = compare(records, mountinfo(proc_fd=proc_fd), limit)
    result.update(datagrams=datagrams, interrupted=interrupted, errno=errname(err), extack=extack,
                  ns_seqs=sorted({r.get('ns_seq') for r in records}),
                  mnt_ns=sorted({r.get('mnt_ns') for r in records}),
                  own_mnt_ns=os.stat('ns/mnt' if proc_fd is not None else '/proc/self/ns/mnt',
                                     dir_fd=proc_fd).st_ino)
    return result


def event_payload(m):
    return decode(m['payload'][4:], EVENT_SCHEMA, 21)


class Listener:
    """A listener with notify notifiers for the four mtab actions, on a socket of its own."""

    def __init__(self, family, actions=(MOUNT, UMOUNT, MOVE, REMOUNT), type_=TYPE_MTAB, flags=None):
        self.sock = Genl(family, rcvbuf=4 << 20)
        reply = self.sock.request(CMD_REGISTER, register_attrs([notifier(type_, a, NOTIFY) for a in actions],
                                                               flags=flags))
        if not reply.ok:
            raise RuntimeError(f'listener-register: {errname(reply.errno)} {reply.extack}')

    def events(self, settle=1.0, timeout=20.0):
        """Events that arrive until none came for `settle` seconds."""
        out = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            batch = self.sock._recv(settle)
            if batch is None:
                break
            self.sock.pending.extend(m for m in batch if m['seq'] == 0)
        while self.sock.pending:
            m = self.sock.pending.pop(0)
            ev = event_payload(m)
            ev['action_name'] = ACTION_NAMES.get(ev.get('action'))
            out.append(ev)
        return out

    def close(self):
        self.sock.close()


# ---------------------------------------------------------------- building tables

def build_mixed_table(base, count):
    """About `count` mounts of several kinds under `base` (a tmpfs), private namespace assumed."""
    tmpfs(base, 'base', 'size=16m')
    made = 0
    # Sources of bind mounts, outside the mount that holds the many (see the brief's pitfall).
    os.makedirs('/tmp/src/dir/sub', exist_ok=True)
    with open('/tmp/src/file', 'w') as f:
        f.write('x')
    # Names that mountinfo must escape: space, tab, newline, backslash.
    odd = f'{base}/odd name\twith\\and\nnewline'
    tmpfs(odd, 'odd source', 'size=64k')
    made += 1
    # Shared, peer, slave and unbindable mounts.
    tmpfs(f'{base}/shared', 'shared', 'size=64k')
    mount(None, f'{base}/shared', None, MS_SHARED)
    os.makedirs(f'{base}/peer', exist_ok=True)
    mount(f'{base}/shared', f'{base}/peer', None, MS_BIND)
    os.makedirs(f'{base}/slave', exist_ok=True)
    mount(f'{base}/shared', f'{base}/slave', None, MS_BIND)
    mount(None, f'{base}/slave', None, MS_SLAVE)
    tmpfs(f'{base}/unbindable', 'unbind', 'size=64k')
    mount(None, f'{base}/unbindable', None, MS_UNBINDABLE)
    made += 4
    # Mounts inside the shared one propagate to the peer and the slave: three each.
    for i in range(20):
        tmpfs(f'{base}/shared/p{i}', f'prop{i}', 'size=64k')
        made += 3
    # Flags.
    tmpfs(f'{base}/flags', 'flags', 'size=64k')
    mount(None, f'{base}/flags', None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NOEXEC)
    made += 1
    # A bind of a subdirectory (root is not "/"), and of a file.
    os.makedirs(f'{base}/subdir', exist_ok=True)
    mount('/tmp/src/dir/sub', f'{base}/subdir', None, MS_BIND)
    with open(f'{base}/file', 'w') as f:
        f.write('')
    mount('/tmp/src/file', f'{base}/file', None, MS_BIND)
    made += 2
    # Nested chains.
    depth = 0
    path = f'{base}/nest'
    while made < count // 10:
        path += f'/n{depth % 10}'
        tmpfs(path, f'nest{depth}', 'size=64k')
        depth += 1
        made += 1
        if depth % 8 == 0:
            path = f'{base}/nest{depth}'
    # Binds and plain tmpfs for the rest.
    os.makedirs(f'{base}/many', exist_ok=True)
    i = 0
    while made < count:
        target = f'{base}/many/m{i}'
        os.mkdir(target)
        if i % 3 == 0:
            mount('/tmp/src/dir', target, None, MS_BIND)
        else:
            mount('tmpfs', target, 'tmpfs', 0, 'size=64k')
        i += 1
        made += 1
    return made


# ---------------------------------------------------------------- the checks

class Checks:
    def __init__(self, rec, big):
        self.rec = rec
        self.big = big
        self.family, self.groups = resolve_family()

    def record(self, check, value):
        self.rec.record(check, value)

    def stats(self):
        with Genl(self.family) as s:
            return s.request(CMD_STATS).attrs(STATS_SCHEMA) | {
                'mount_hooks': self._mount_hooks(s)}

    def _mount_hooks(self, s):
        reply = s.request(CMD_STATS)
        payload = reply.messages[0]['attrs'].get(11)
        return struct.unpack('=I', payload[0])[0] if payload else None

    def in_private_namespace(self, name, fn):
        """fn(chan) in a child with a private mount namespace of its own; its JSON result recorded."""
        def body(chan):
            unshare(CLONE_NEWNS)
            mount(None, '/', None, MS_REC | MS_PRIVATE)
            fn(chan)
        child = Child(body)
        try:
            while True:
                msg = child.recv(timeout=900)
                if 'done' in msg:
                    break
                self.record(msg['check'], msg['value'])
        finally:
            child.wait(timeout=60)

    # -- the dump and the kernel's mountinfo, field by field
    def same_truth(self):
        family = self.family

        def body(chan):
            started = time.monotonic()
            made = build_mixed_table('/tmp/t', 5000)
            chan.send({'check': 'truth.built', 'value': {'mounts': made, 'seconds': time.monotonic() - started}})
            chan.send({'check': 'truth.root', 'value': truth_compare(family)})

            # As an unprivileged user: the same table.
            def as_nobody(c):
                become(NOBODY)
                c.send({'result': truth_compare(family)})
            child = Child(as_nobody)
            chan.send({'check': 'truth.nobody', 'value': child.recv(timeout=300)['result']})
            child.wait()

            # From a chroot: mounts outside it disappear, paths are relative to it.
            os.makedirs('/tmp/t/proc', exist_ok=True)
            mount('proc', '/tmp/t/proc', 'proc')

            def chrooted(c):
                os.chroot('/tmp/t')
                os.chdir('/')
                c.send({'result': truth_compare(family)})
            child = Child(chrooted)
            chan.send({'check': 'truth.chroot', 'value': child.recv(timeout=300)['result']})
            child.wait()

            # A second namespace: copies of every mount, with ids of their own.
            def second(c):
                c.send({'result': truth_compare(family)})
            child = Child(second, unshare_flags=CLONE_NEWNS)
            chan.send({'check': 'truth.second-namespace', 'value': child.recv(timeout=300)['result']})
            child.wait()

            # mount-get of single mounts, and of one that is not in this namespace.
            table = mountinfo()
            some = sorted(table)[::max(1, len(table) // 50)]
            gets = []
            for mount_id in some:
                got = get_mount(family, nla(A_MOUNT_MOUNT_ID, u64(mount_id)))
                gets.append({'mount_id': mount_id, 'errno': got['error'],
                             'record': render(got['mount']) if 'mount' in got else None,
                             'truth': table[mount_id], 'unique_id': got.get('mount', {}).get('unique_id')})
            chan.send({'check': 'get.many', 'value': gets})
            chan.send({'check': 'get.by-unique-id', 'value': [
                {'unique_id': g['unique_id'], 'mount_id': g['mount_id'],
                 'got': get_mount(family, nla(A_MOUNT_UNIQUE_ID, u64(g['unique_id'])))
                 if g['unique_id'] else get_mount(family, nla(A_MOUNT_UNIQUE_ID, u64(2 ** 31 + 5)))}
                for g in gets[:5]]})
            chan.send({'check': 'done', 'value': None, 'done': True})

        self.in_private_namespace('truth', body)
        # Back in the first namespace: the mount ids of that private one are not here.
        outside = mountinfo()
        foreign = max(outside) + 100000
        self.record('get.not-in-namespace', get_mount(self.family, nla(A_MOUNT_MOUNT_ID, u64(foreign))))
        self.record('get.no-id', get_mount(self.family, b''))
        self.record('get.both-ids', get_mount(self.family, nla(A_MOUNT_MOUNT_ID, u64(min(outside))) +
                                             nla(A_MOUNT_UNIQUE_ID, u64(1))))
        self.record('get.wrong-size', get_mount(self.family, nla(A_MOUNT_MOUNT_ID, u32(1))))
        with Genl(self.family) as s:
            reply = s.request(CMD_MOUNT_GET, nla(A_MOUNT_MOUNT_ID, u64(1)), dump=True)
            self.record('dump.with-attributes', {'errno': errname(reply.errno), 'extack': reply.extack,
                                                 'replies': len(reply.messages)})

    # -- a changing table: the dump says so; a large table: many receive buffers
    def big_dump(self):
        family = self.family
        big = self.big

        def make_mounts(start, stop):
            for i in range(start, stop):
                target = f'/tmp/big/{i}'
                os.mkdir(target)
                mount('t', target, 'tmpfs', 0, 'size=4k')

        def body(chan):
            tmpfs('/tmp/big', 'big', 'size=64m')
            # Enough mounts for a dump to span many buffers, next to a busy mounter: some dumps
            # are flagged, none is silently torn.
            base = min(big, 3000)
            make_mounts(0, base)

            def mounter(c):
                c.send({'ready': True})
                n = 0
                # Churns until told to stop (a bound in case the parent is gone).
                deadline = time.monotonic() + 900
                while time.monotonic() < deadline:
                    target = f'/tmp/big/churn{n % 50}'
                    os.makedirs(target, exist_ok=True)
                    mount('c', target, 'tmpfs', 0, 'size=4k')
                    umount(target)
                    n += 1
                    try:
                        c.recv(timeout=0)
                        break
                    except TimeoutError:
                        pass
                c.send({'cycles': n})
            child = Child(mounter)
            child.recv()
            outcomes = []
            for _ in range(6):
                records, datagrams, interrupted, err, _ = dump_mounts(family)
                ids = [r['mount_id'] for r in records]
                outcomes.append({'interrupted': interrupted, 'errno': errname(err), 'records': len(records),
                                 'duplicates': len(ids) - len(set(ids)), 'datagrams': datagrams})
            child.send({'stop': True})
            cycles = child.recv(timeout=120)['cycles']
            child.wait()
            chan.send({'check': 'dump.concurrent', 'value': {'dumps': outcomes, 'mounter_cycles': cycles,
                                                              'base': base}})
            # Quiet again: not flagged, and equal to mountinfo.
            chan.send({'check': 'dump.after-concurrent', 'value': truth_compare(family, limit=5)})

            started = time.monotonic()
            make_mounts(base, big)
            built = time.monotonic() - started
            started = time.monotonic()
            result = truth_compare(family, limit=5)
            result.update(build_seconds=built, dump_seconds=time.monotonic() - started, wanted=big)
            chan.send({'check': 'dump.big', 'value': result})
            # A small receive buffer: the same dump.
            records, datagrams, interrupted, err, _ = dump_mounts(family, rcvbuf=64 * 1024)
            chan.send({'check': 'dump.big-small-buffer', 'value': {
                'records': len(records), 'datagrams': datagrams, 'errno': errname(err),
                'unique_ids': len({r['mount_id'] for r in records}), 'mountinfo': len(mountinfo())}})
            chan.send({'check': 'done', 'value': None, 'done': True})

        self.in_private_namespace('big', body)

    # -- real mount changes become events, in order, in their namespace only
    def events(self):
        family = self.family

        def body(chan):
            base = '/tmp/ev'
            tmpfs(base, 'evbase', 'size=1m')
            listener = Listener(family)
            # A listener of another namespace must not see any of it.
            def other(c):
                lst = Listener(family)
                c.send({'ready': True})
                c.recv(timeout=600)
                c.send({'events': lst.events(settle=0.5)})
            bystander = Child(other, unshare_flags=CLONE_NEWNS)
            bystander.recv()
            steps = []

            def step(name, fn):
                before = mountinfo()
                fn()
                after = mountinfo()
                evs = listener.events()
                steps.append({'step': name, 'events': evs,
                              'added': [after[i] for i in sorted(set(after) - set(before))],
                              'removed': [before[i] for i in sorted(set(before) - set(after))],
                              'mountinfo': after})

            step('mount', lambda: tmpfs(f'{base}/a', 'ev-a', 'size=64k'))
            os.makedirs(f'{base}/b', exist_ok=True)
            step('move', lambda: mount(f'{base}/a', f'{base}/b', None, MS_MOVE))
            step('remount-ro', lambda: mount(None, f'{base}/b', None, MS_REMOUNT | MS_RDONLY))
            step('remount-bind-nosuid', lambda: mount(None, f'{base}/b', None, MS_REMOUNT | MS_BIND | MS_NOSUID))
            step('umount', lambda: umount(f'{base}/b'))

            def tree():
                tmpfs(f'{base}/t', 'ev-t', 'size=64k')
                tmpfs(f'{base}/t/x', 'ev-tx', 'size=64k')
                tmpfs(f'{base}/t/x/y', 'ev-txy', 'size=64k')
            step('mount-tree', tree)
            os.makedirs(f'{base}/r', exist_ok=True)
            step('rbind', lambda: mount(f'{base}/t', f'{base}/r', None, MS_BIND | MS_REC))
            step('umount-lazy', lambda: umount(f'{base}/t', MNT_DETACH))
            step('umount-lazy-rbind', lambda: umount(f'{base}/r', MNT_DETACH))
            step('make-shared', lambda: (tmpfs(f'{base}/s', 'ev-s', 'size=64k'),
                                         mount(None, f'{base}/s', None, MS_SHARED)))

            def tree_to_move():
                tmpfs(f'{base}/mv', 'ev-mv', 'size=64k')
                tmpfs(f'{base}/mv/c', 'ev-mvc', 'size=64k')
                os.makedirs(f'{base}/s/in', exist_ok=True)
            step('mount-tree-to-move', tree_to_move)
            step('move-into-shared', lambda: mount(f'{base}/mv', f'{base}/s/in', None, MS_MOVE))

            # Propagation into a slave namespace: its own listener gets the copies.
            def slave_ns(c):
                mount(None, '/', None, MS_REC | MS_SLAVE)
                lst = Listener(family)
                c.send({'ready': True})
                c.recv(timeout=600)
                c.send({'events': lst.events(), 'mountinfo': mountinfo()})
                c.recv(timeout=600)
                # A mount in the slave does not travel back.
                tmpfs(f'{base}/s/from-slave', 'ev-back', 'size=64k')
                c.send({'events': lst.events(), 'mountinfo': mountinfo()})
            slave = Child(slave_ns, unshare_flags=CLONE_NEWNS)
            slave.recv()
            step('propagate', lambda: tmpfs(f'{base}/s/p', 'ev-p', 'size=64k'))
            slave.send({'collect': True})
            propagated = slave.recv(timeout=120)
            slave.send({'mount-back': True})
            back = slave.recv(timeout=120)
            step('slave-mounted', lambda: None)
            slave.wait()
            step('mount-setattr-recursive', lambda: mount_setattr(f'{base}/s', AT_RECURSIVE, MOUNT_ATTR_NOEXEC))
            step('fsconfig-reconfigure', lambda: reconfigure_read_only(f'{base}/s/p'))

            # A master unmounted while its slave stays: the slave loses its master:N.
            def master_and_slave():
                tmpfs(f'{base}/m', 'ev-m', 'size=64k')
                mount(None, f'{base}/m', None, MS_SHARED)
                os.makedirs(f'{base}/sl', exist_ok=True)
                mount(f'{base}/m', f'{base}/sl', None, MS_BIND)
                mount(None, f'{base}/sl', None, MS_SLAVE)
            step('master-and-slave', master_and_slave)
            step('umount-master', lambda: umount(f'{base}/m'))
            bystander.send({'stop': True})
            others = bystander.recv(timeout=120)['events']
            bystander.wait()
            chan.send({'check': 'events.steps', 'value': steps})
            chan.send({'check': 'events.slave', 'value': {'propagated': propagated, 'own': back}})
            chan.send({'check': 'events.bystander', 'value': others})
            chan.send({'check': 'events.mnt-ns', 'value': os.stat('/proc/self/ns/mnt').st_ino})
            listener.close()
            chan.send({'check': 'done', 'value': None, 'done': True})

        self.in_private_namespace('events', body)

    # -- pivot_root(2) moves two mounts; the dump still equals mountinfo after it
    def pivot(self):
        family = self.family

        def body(chan):
            tmpfs('/tmp/pv', 'pivot', 'size=1m')
            os.makedirs('/tmp/pv/old')
            os.makedirs('/tmp/pv/proc')
            mount('proc', '/tmp/pv/proc', 'proc')
            # The process's root is not its namespace's (the guest's, as a real system's, was set
            # up by switch_root): its listener keeps the root it registered with. A global
            # listener sees the whole namespace.
            listener = Listener(family)
            everything = Listener(family, flags=GLOBAL)
            before = mountinfo()
            os.chdir('/tmp/pv')
            syscall(SYS_PIVOT_ROOT, ctypes.c_char_p(b'.'), ctypes.c_char_p(b'old'))
            os.chdir('/')
            after = mountinfo()
            chan.send({'check': 'pivot.events', 'value': {
                'events': everything.events(), 'own_root_events': listener.events(),
                'before': before, 'after': after}})
            chan.send({'check': 'pivot.truth', 'value': truth_compare(family)})
            listener.close()
            everything.close()
            chan.send({'check': 'done', 'value': None, 'done': True})

        self.in_private_namespace('pivot', body)

    # -- the hooks cost nothing while nobody listens for mount events
    def hooks(self):
        samples = {'idle': self.stats()['mount_hooks']}
        storage = Listener(self.family, actions=(ENOSPC,), type_=TYPE_STORAGE)
        samples['storage-listener'] = self.stats()['mount_hooks']
        mtab = Listener(self.family, actions=(MOUNT,))
        samples['mtab-listener'] = self.stats()['mount_hooks']
        mtab.close()
        started = time.monotonic()
        while self.stats()['mount_hooks'] and time.monotonic() - started < 10:
            time.sleep(0.1)
        samples['after-close'] = self.stats()['mount_hooks']
        samples['seconds-to-disarm'] = round(time.monotonic() - started, 2)
        storage.close()
        self.record('hooks.armed', samples)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--big', type=int, default=20000, help='mounts of the large dump check')
    parser.add_argument('--only', action='append', help='run only these sections')
    args = parser.parse_args()
    out = os.path.join(os.environ.get('USIP_VM_RESULTS', '.'), 'mount-checks.jsonl')
    rec = Recorder(out)
    checks = Checks(rec, args.big)
    for name, fn in (('hooks', checks.hooks), ('truth', checks.same_truth), ('events', checks.events),
                     ('pivot', checks.pivot), ('big', checks.big_dump)):
        if args.only and name not in args.only:
            continue
        rec.section(name, fn)
    rec.record('end', True)


if __name__ == '__main__':
    main()
