#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
#
# Runs in the test VM with usip.ko loaded with allow_inject=1 and checks what one user may do to
# others through the module, and that the module fails closed:
#
#   features     ping's feature-status and features mask; a failed arm (inject_arm_failures=1)
#                takes mount-events out, the next mtab listener arms it again
#   kern-log     a kern-log notifier needs CAP_SYS_ADMIN or CAP_SYSLOG in the initial user
#                namespace (uid 65534 without and with CAP_SYSLOG through setpriv, and with every
#                capability of a user namespace of its own); a refusal leaves nothing behind
#   stats        root gets the host scope, uid 65534 the user scope: its own listeners' counters
#   limits       max_listeners_per_user is checked before the mount hooks are armed
#   memcg        listeners are charged to the registering process's memory cgroup
#   port-reuse   a closed socket's events never reach a new socket that took its port id
#   fairness     a user churning mounts in its own user+mount namespace, with listeners it never
#                reads, cannot make root's listener miss an injected event
#
# The protocol's numbers (commands, attribute ids and types, enums) are read from the uapi
# header the module is built from (include/uapi/linux/usip.h, generated from the spec). The
# sockets, children and recording come from listener_checks.py. The script judges nothing: each
# check writes one JSON line {"check", "value"} (or {"check", "error"} for a group of checks that
# could not run) to $USIP_VM_RESULTS/hardening-checks.jsonl, and hardening.test.ts judges them.
#
# Usage: hardening_checks.py [--only GROUP,...]
#        hardening_checks.py --helper kern-log   (run by the kern-log group under setpriv)
import argparse
import ctypes
import errno
import json
import os
import random
import re
import select
import socket
import struct
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import listener_checks as lc  # noqa: E402  (after the path is set)
from listener_checks import Child, Genl, in_child, nla, parse_attrs, poll, read_param, string, u32, write_param  # noqa: E402

UAPI = os.path.normpath(os.path.join(HERE, '../../include/uapi/linux/usip.h'))
NOBODY = 65534
NLA_F_NESTED = 0x8000
CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
PR_SET_DUMPABLE = 4
MNT_DETACH = 2
SYS_PIDFD_GETFD = 438  # x86-64
# The mounts a churner's cycle puts below its tmpfs: with it, 16, what one hook hit of the module
# reports mount by mount.
CHAIN = 15
CGROUP = '/sys/fs/cgroup'
KPROBES_LIST = '/sys/kernel/debug/kprobes/list'
# The module's hooked functions, as /sys/kernel/debug/kprobes/list names them (6.1 and 6.12; and
# where 7.x inlined some: mnt_add_to_ns, make_visible, transfer_propagation, filename_lookup).
HOOKED = ('commit_tree', 'umount_tree', 'propagate_umount', 'attach_recursive_mnt', 'mnt_change_mountpoint',
          'attach_mnt', 'path_mount', 'reconfigure_super', 'change_mnt_propagation', 'mount_setattr',
          'user_path_at', 'mnt_add_to_ns', 'make_visible', 'transfer_propagation', 'filename_lookup')


# ---------------------------------------------------------------- the protocol, from the uapi header

def parse_uapi(path=UAPI):
    """Every enumerator of the header, with its value, and the type its comment gives it
    ("u32: ..." before an attribute)."""
    with open(path, encoding='utf-8') as f:
        text = f.read()
    values, kinds = {}, {}
    for body in re.findall(r'\benum\b[^{;]*\{(.*?)\};', text, re.S):
        value, comment = -1, ''
        for m in re.finditer(r'/\*(.*?)\*/|(\w+)\s*(?:=\s*([^,]+?))?\s*,', body, re.S):
            if m.group(1) is not None:
                comment = m.group(1)
                continue
            name, expr = m.group(2), m.group(3)
            if expr is None:
                value += 1
            elif re.fullmatch(r'(0x[0-9a-fA-F]+|\d+)', expr.strip()):
                value = int(expr.strip(), 0)
            else:
                ref = re.fullmatch(r'\(?\s*(\w+)\s*-\s*1\s*\)?', expr.strip())
                if not ref or ref.group(1) not in values:
                    raise ValueError(f'{path}: cannot evaluate {name} = {expr}')
                value = values[ref.group(1)] - 1
            values[name] = value
            kind = re.match(r'[\s*]*(u8|u16|u32|u64|s32|s64|string|nest|flag|pad|binary):', comment)
            if kind:
                kinds[name] = kind.group(1)
            comment = ''
    return values, kinds


class Proto:
    # Attributes that may come more than once: decoded as lists.
    REPEATED = {'feature_status', 'notifier', 'group'}
    NESTED = {'feature_status': 'USIP_A_FEATURE_STATUS_', 'notifier': 'USIP_A_NOTIFIER_'}

    def __init__(self, path=UAPI):
        self.values, self.kinds = parse_uapi(path)

    def __getitem__(self, name):
        return self.values['USIP_' + name]

    def attr_set(self, prefix):
        return {v: (n[len(prefix):].lower(), self.kinds.get(n)) for n, v in self.values.items()
                if n.startswith(prefix) and not n.endswith('_MAX')}

    def names(self, prefix):
        """{value: spec-like name} of an enum, e.g. USIP_FEATURE_ -> {0x8: 'mount-events'}."""
        return {v: n[len(prefix):].lower().replace('_', '-') for n, v in self.values.items()
                if n.startswith(prefix) and not n.endswith('_MASK')}

    def value(self, kind, payload, nested):
        if nested:
            return self.decode(payload, nested)
        if kind == 'u8':
            return payload[0]
        if kind in ('u32', 's32'):
            return struct.unpack('=I' if kind == 'u32' else '=i', payload)[0]
        if kind == 'u64':
            return struct.unpack('=Q', payload)[0]
        if kind == 'string':
            return payload.rstrip(b'\0').decode(errors='replace')
        if kind == 'flag':
            return True
        return payload.hex()

    def decode(self, data, prefix):
        """Attributes (bytes, or parse_attrs' dict) of the set whose enumerators start with prefix."""
        attrs = parse_attrs(data) if isinstance(data, (bytes, bytearray)) else data
        schema = self.attr_set(prefix)
        out = {}
        for attr_type, payloads in attrs.items():
            if attr_type not in schema:
                out.setdefault('unknown_attributes', []).append(attr_type)
                continue
            name, kind = schema[attr_type]
            if kind == 'pad':
                continue
            decoded = [self.value(kind, p, self.NESTED.get(name)) for p in payloads]
            out[name] = decoded if name in self.REPEATED else decoded[0]
        return out


P = Proto()
CMD = {name: P[f'CMD_{name}'] for name in ('PING', 'LISTENER_REGISTER', 'LISTENER_UNREGISTER', 'LISTENER_GET',
                                             'INJECT', 'STATS', 'MTAB_EVENT', 'STORAGE_EVENT', 'MISSED')}
MTAB, STORAGE = P['EVENT_TYPE_MTAB'], P['EVENT_TYPE_STORAGE']
GLOBAL = P['LISTENER_FLAGS_GLOBAL']
MOUNT, UMOUNT, ENOSPC, EDQUOT = P['ACTION_MOUNT'], P['ACTION_UMOUNT'], P['ACTION_ENOSPC'], P['ACTION_EDQUOT']
# The storage action these checks use: one any user may register (enospc and edquot need
# CAP_SYS_ADMIN, see storage_checks.py), injected like any other.
QUOTA = P['ACTION_QUOTA']
NOTIFY, KERN_LOG = P['NOTIFIER_FLAGS_NOTIFY'], P['NOTIFIER_FLAGS_KERN_LOG']


def notifier(type_, action, flags, cmd=None, path_prefix=None):
    body = nla(P['A_NOTIFIER_TYPE'], u32(type_)) + nla(P['A_NOTIFIER_ACTION'], u32(action)) + \
        nla(P['A_NOTIFIER_FLAGS'], u32(flags))
    if cmd is not None:
        body += nla(P['A_NOTIFIER_CMD'], u32(cmd))
    if path_prefix is not None:
        body += nla(P['A_NOTIFIER_PATH_PREFIX'], string(path_prefix))
    return nla(P['A_LISTENER_NOTIFIER'] | NLA_F_NESTED, body)


def event(type_, action, path=None, repeat=None):
    body = nla(P['A_EVENT_TYPE'], u32(type_)) + nla(P['A_EVENT_ACTION'], u32(action))
    if path is not None:
        body += nla(P['A_EVENT_PATH'], string(path))
    if repeat is not None:
        body += nla(P['A_EVENT_REPEAT'], u32(repeat))
    return body


def answer(reply, prefix=None):
    """A request's outcome as JSON: errno, extack, and the reply's attributes."""
    out = reply.summary()
    if prefix and reply.ok and reply.messages:
        out['attrs'] = P.decode(reply.messages[0]['attrs'], prefix)
    return out


def register(sock, notifiers, flags=None):
    head = nla(P['A_LISTENER_FLAGS'], u32(flags)) if flags is not None else b''
    return answer(sock.request(CMD['LISTENER_REGISTER'], head + b''.join(notifiers)), 'USIP_A_LISTENER_')


def register_ok(sock, notifiers):
    out = register(sock, notifiers)
    if out['errno']:
        raise RuntimeError(f'listener-register failed: {out}')
    return out['attrs']['id']


def inject_ok(sock, type_, action, path=None, repeat=None):
    out = answer(sock.request(CMD['INJECT'], event(type_, action, path, repeat)), 'USIP_A_EVENT_')
    if out['errno']:
        raise RuntimeError(f'inject failed: {out}')
    return out['attrs']


def stats(sock):
    reply = sock.request(CMD['STATS'])
    if not reply.ok:
        raise RuntimeError(f'stats failed: {reply.summary()}')
    return P.decode(reply.messages[0]['attrs'], 'USIP_A_STATS_')


def ping(sock):
    reply = sock.request(CMD['PING'])
    if not reply.ok:
        raise RuntimeError(f'ping failed: {reply.summary()}')
    return P.decode(reply.messages[0]['attrs'], 'USIP_A_PING_')


def dump(sock):
    reply = sock.request(CMD['LISTENER_GET'], dump=True)
    if not reply.ok:
        raise RuntimeError(f'listener-get failed: {reply.summary()}')
    return [P.decode(m['attrs'], 'USIP_A_LISTENER_') for m in reply.messages]


def next_message(sock, timeout):
    """The next message of the family that is not a reply (an event or a missed message), decoded;
    None on timeout."""
    deadline = time.monotonic() + timeout
    while not sock.pending:
        batch = sock._recv(deadline - time.monotonic())  # noqa: SLF001: listener_checks' socket
        if batch is None:
            return None
        for m in batch:
            (sock.pending if m['type'] == sock.family and m['seq'] == 0 else sock.stray).append(m)
    m = sock.pending.pop(0)
    out = P.decode(m['payload'][4:], 'USIP_A_EVENT_')
    out['genl_cmd'] = m['payload'][0]
    return out


def drain(sock, wait=0.0):
    out = []
    while True:
        m = next_message(sock, wait if not out else 0)
        if m is None:
            return out
        out.append(m)


class KernelLog:
    """The kernel log's records written after it was opened."""

    def __init__(self):
        self.fd = os.open('/dev/kmsg', os.O_RDONLY | os.O_NONBLOCK)
        os.lseek(self.fd, 0, os.SEEK_END)

    def lines(self, match='usip'):
        out = []
        while True:
            try:
                record = os.read(self.fd, 8192).decode(errors='replace')
            except BlockingIOError:
                return out
            except OSError as e:
                if e.errno == errno.EPIPE:  # overwritten records: go on
                    continue
                raise
            message = record.split(';', 1)[-1].strip()
            if match in message:
                out.append(message)

    def close(self):
        os.close(self.fd)


def genl_around(sock, family):
    """A listener_checks Genl around a netlink socket made elsewhere (bound already)."""
    g = Genl.__new__(Genl)
    sock.setsockopt(lc.SOL_NETLINK, lc.NETLINK_EXT_ACK, 1)
    g.family, g.sock, g.port = family, sock, sock.getsockname()[0]
    g.seq, g.pending, g.stray, g.enobufs = 1000, [], [], 0
    return g


def take_fd(pid, fd):
    """A copy of another process's file descriptor (pidfd_getfd(2)): the same open file, opened
    with that process's credentials."""
    pidfd = os.pidfd_open(pid)
    try:
        copy = lc.LIBC.syscall(SYS_PIDFD_GETFD, pidfd, fd, 0)
        if copy < 0:
            number = ctypes.get_errno()
            raise OSError(number, f'pidfd_getfd: {os.strerror(number)}')
        return copy
    finally:
        os.close(pidfd)


def usip_kprobes():
    """The module's hooks in the kernel's list of kprobes (debugfs)."""
    try:
        with open(KPROBES_LIST, encoding='utf-8') as f:
            return [line.strip() for line in f if '[usip]' in line or any(h in line for h in HOOKED)]
    except OSError as e:
        return f'cannot read {KPROBES_LIST}: {e.strerror}'


def caps_of_self():
    with open('/proc/self/status', encoding='ascii') as f:
        return {line.split(':')[0]: line.split()[1] for line in f if line.startswith('Cap')}


def become_in_userns(uid, flags):
    """Becomes uid, then makes a user namespace (and more) in which it is root."""
    lc.become(uid)
    # Changing uid made the process undumpable, and its /proc/self files root's: it could not
    # write its own maps.
    lc.LIBC.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
    lc.unshare(CLONE_NEWUSER | flags)
    with open('/proc/self/setgroups', 'w', encoding='ascii') as f:
        f.write('deny')
    with open('/proc/self/uid_map', 'w', encoding='ascii') as f:
        f.write(f'0 {uid} 1')
    with open('/proc/self/gid_map', 'w', encoding='ascii') as f:
        f.write(f'0 {uid} 1')


def mount_tmpfs(target):
    if lc.LIBC.mount(b'tmpfs', target.encode(), b'tmpfs', 0, None) != 0:
        number = ctypes.get_errno()
        raise OSError(number, f'mount tmpfs on {target}: {os.strerror(number)}')


def umount(target, flags=0):
    if lc.LIBC.umount2(target.encode(), flags) != 0:
        number = ctypes.get_errno()
        raise OSError(number, f'umount {target}: {os.strerror(number)}')


def try_write_param(name, value):
    """Writes a module parameter; the error's name when it cannot (an older module lacks it)."""
    try:
        write_param(name, value)
        return None
    except OSError as e:
        return lc.errname(e.errno)


def try_read_param(name):
    try:
        return read_param(name)
    except OSError:
        return None


# ---------------------------------------------------------------- recording

# ---------------------------------------------------------------- the checks

class Checks:
    def __init__(self, rec):
        self.rec = rec
        self.family, self.groups = lc.resolve_family()
        self.ctl = Genl(self.family)

    def record(self, check, value):
        self.rec.record(check, value)

    def socket(self, **kw):
        return Genl(self.family, **kw)

    def hooks_disarmed(self, timeout=10):
        """Waits until no mount hook is armed (they go a second after the last mtab listener) and
        the kernel's kprobes list has none of them left (unregistering ftrace-based kprobes takes
        a while after the module's count went to 0)."""
        def none():
            kprobes = usip_kprobes()
            return stats(self.ctl).get('mount_hooks') == 0 and not (isinstance(kprobes, list) and kprobes)

        done, _ = poll(none, timeout=timeout, step=0.05)
        return bool(done)

    def settled(self, timeout=5):
        """Root's stats once nothing is queued and, with no listener left, every object is freed
        (a listener goes after an RCU grace period): the state to compare with."""
        def quiet():
            st = stats(self.ctl)
            return st.get('queued') == 0 and (st.get('listeners') or st.get('objects') == 0)

        poll(quiet, timeout=timeout, step=0.05)
        return stats(self.ctl)

    def wait_queue_empty(self, timeout=30):
        empty, _ = poll(lambda: stats(self.ctl).get('queued') == 0, timeout=timeout, step=0.005)
        if not empty:
            raise RuntimeError(f'the event queue did not drain: {stats(self.ctl)}')

    # -- features and a failed arm
    def features(self):
        names = P.names('USIP_FEATURE_')
        reasons = P.names('USIP_UNAVAILABLE_REASON_')

        def view(reply):
            return {'features': reply.get('features'),
                    'status': [{'feature': s.get('feature'), 'name': names.get(s.get('feature')),
                                'available': s.get('available'), 'reason': s.get('reason'),
                                'reason_name': reasons.get(s.get('reason'))}
                               for s in reply.get('feature_status', [])],
                    'unknown_attributes': reply.get('unknown_attributes')}

        self.record('features.fresh', {**view(ping(self.ctl)), 'spec_flags': names, 'spec_mask': P['FEATURE_MASK'],
                                       'release': os.uname().release})
        disarmed = self.hooks_disarmed()
        params = {'inject_arm_failures': try_write_param('inject_arm_failures', 1)}
        log = KernelLog()
        first = self.socket()
        second = self.socket()
        target = '/tmp/usip-hardening-arm'
        os.makedirs(target, exist_ok=True)
        try:
            first_id = register_ok(first, [notifier(MTAB, MOUNT, NOTIFY)])
            after_first = view(ping(self.ctl))
            self.record('features.arm-failed', {
                'hooks_disarmed_before': disarmed, 'param_write_error': params['inject_arm_failures'],
                'param_after': try_read_param('inject_arm_failures'), 'ping': after_first,
                'mount_hooks': stats(self.ctl).get('mount_hooks'), 'log': log.lines(),
            })
            second_id = register_ok(second, [notifier(MTAB, MOUNT, NOTIFY)])
            after_second = view(ping(self.ctl))
            self.record('features.rearmed', {'ping': after_second, 'mount_hooks': stats(self.ctl).get('mount_hooks'),
                                             'log': log.lines()})
            mount_tmpfs(target)
            try:
                events = {}
                for name, sock in (('first', first), ('second', second)):
                    m = next_message(sock, 10)
                    events[name] = None if m is None else {k: m.get(k) for k in (
                        'genl_cmd', 'listener_id', 'type', 'action', 'path', 'fs_type', 'missed')}
            finally:
                umount(target)
            self.record('features.real-mount-event', {'events': events, 'ids': {'first': first_id, 'second': second_id},
                                                      'path': target})
        finally:
            first.close()
            second.close()
            log.close()
            try_write_param('inject_arm_failures', 0)
            os.rmdir(target)

    # -- disarming: stats' mount-hooks against the kernel's kprobes list
    def disarm(self, rounds=3):
        """After the last mtab listener goes the hooks are unregistered (a second later): when
        stats says 0 hooks, the kernel's kprobes list must have none of the module's left."""
        seen = []
        for _ in range(rounds):
            self.hooks_disarmed()
            with self.socket() as s:
                register_ok(s, [notifier(MTAB, MOUNT, NOTIFY)])
                armed = stats(self.ctl).get('mount_hooks')
            t0 = time.monotonic()
            zero, _ = poll(lambda: stats(self.ctl).get('mount_hooks') == 0, timeout=10, step=0.005)
            kprobes = usip_kprobes()
            seen.append({'armed': armed, 'zero_after_s': round(time.monotonic() - t0, 3), 'reached_zero': bool(zero),
                         'kprobes_then': kprobes})
        self.record('disarm.stats-match-kprobes', {'rounds': seen})

    # -- kern-log needs privilege
    def kern_log(self):
        before = self.settled()
        kern_log_only = [notifier(STORAGE, QUOTA, KERN_LOG)]
        mixed = [notifier(MTAB, MOUNT, NOTIFY), notifier(STORAGE, QUOTA, NOTIFY | KERN_LOG)]

        def nobody():
            with self.socket() as s:
                return {'kern_log_only': register(s, kern_log_only), 'mixed': register(s, mixed),
                        'without_kern_log': register(s, [notifier(MTAB, MOUNT, NOTIFY)]), 'caps': caps_of_self()}

        self.record('kern-log.nobody', in_child(nobody, uid=NOBODY))

        def nobody_in_own_userns(chan):
            become_in_userns(NOBODY, 0)
            with self.socket() as s:
                chan.send({'reply': register(s, kern_log_only), 'caps': caps_of_self(), 'uid': os.geteuid()})

        child = Child(nobody_in_own_userns)
        try:
            self.record('kern-log.nobody-userns', child.recv())
        finally:
            child.wait()
        # Both ends must hold the capability (netlink_capable(): the socket's opener and the
        # sender), so that nobody gets it through a socket passed on by, or to, root.
        def opened_by_root(chan):
            s = self.socket()
            lc.become(NOBODY)
            chan.send(register(s, kern_log_only))

        child = Child(opened_by_root)
        try:
            root_opened = child.recv()
        finally:
            child.wait()

        def opened_by_nobody(chan):
            with self.socket() as s:
                chan.send({'pid': os.getpid(), 'fd': s.sock.fileno()})
                chan.recv()

        child = Child(opened_by_nobody, uid=NOBODY)
        try:
            where = child.recv()
            taken = genl_around(socket.socket(fileno=take_fd(where['pid'], where['fd'])), self.family)
            try:
                nobody_opened = register(taken, kern_log_only)
            finally:
                taken.close()
            child.send('done')
        finally:
            child.wait()
        self.record('kern-log.passed-sockets', {'opened_by_root_sent_by_nobody': root_opened,
                                                'opened_by_nobody_sent_by_root': nobody_opened})
        # Every socket of the children is closed: what the refusals and the accepted listener
        # without kern-log left is freed after a grace period.
        self.record('kern-log.nothing-left', {'before': before, 'after': self.settled()})

        with self.socket() as s:
            self.record('kern-log.root', register(s, kern_log_only))

        log = KernelLog()
        try:
            with_syslog = self.setpriv_helper(['--inh-caps', '+syslog', '--ambient-caps', '+syslog'], log)
            without = self.setpriv_helper(['--inh-caps', '-all'], log)
        finally:
            log.close()
        self.record('kern-log.nobody-cap-syslog', with_syslog)
        self.record('kern-log.nobody-setpriv-no-caps', without)

    def setpriv_helper(self, caps, log):
        """Runs this script's kern-log helper as uid 65534 under setpriv with these capability
        options; once it registered, a quota event is injected for its listener."""
        command = ['setpriv', '--reuid', str(NOBODY), '--regid', str(NOBODY), '--clear-groups', *caps,
                   sys.executable, os.path.abspath(__file__), '--helper', 'kern-log']
        proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            ready, _, _ = select.select([proc.stdout], [], [], 60)
            line = proc.stdout.readline() if ready else b''
            if not line:
                proc.kill()
                _, err = proc.communicate(timeout=10)
                raise RuntimeError(f'{" ".join(command)} said nothing: {err.decode(errors="replace")}')
            out = json.loads(line)
            lines = []
            if out['reply']['errno'] == 0:
                path = f'/usip-kern-log-{os.getpid()}-{len(caps)}'
                inject_ok(self.ctl, STORAGE, QUOTA, path=path)
                self.wait_queue_empty()
                time.sleep(0.2)
                lid = out['reply']['attrs']['id']
                lines = [m for m in log.lines() if f'listener {lid}:' in m]
            out['log'] = lines
            proc.stdin.write(b'done\n')
            proc.stdin.flush()
            proc.wait(timeout=30)
            out['exit'] = proc.returncode
            return out
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    # -- stats, host and user scope
    def stats_scopes(self):
        limit = 700
        errors = {'user_queue_len': try_write_param('user_queue_len', limit)}
        try:
            root_mtab, root_storage = self.socket(rcvbuf_force=16 << 20), self.socket(rcvbuf_force=16 << 20)
            root_ids = [register_ok(root_mtab, [notifier(MTAB, MOUNT, NOTIFY)]),
                        register_ok(root_storage, [notifier(STORAGE, QUOTA, NOTIFY)])]

            def nobody(chan):
                # A tiny receive buffer that it does not read: most of a burst is missed.
                with self.socket(rcvbuf=1) as small, self.socket() as other, self.socket() as requests:
                    ids = [register_ok(small, [notifier(MTAB, MOUNT, NOTIFY)]),
                           register_ok(other, [notifier(STORAGE, QUOTA, NOTIFY), notifier(STORAGE, QUOTA, NOTIFY, cmd=2)])]
                    chan.send({'ids': ids})
                    chan.recv(timeout=120)  # the events were posted and delivered
                    other_events = drain(other, 0.5)
                    chan.send({'stats': stats(requests), 'dump': dump(requests), 'received_other': len(other_events)})
                    chan.recv(timeout=120)

            child = Child(nobody, uid=NOBODY)
            try:
                nobody_ids = child.recv()['ids']
                inject_ok(self.ctl, STORAGE, QUOTA, path='/stats', repeat=3)
                inject_ok(self.ctl, MTAB, MOUNT, path='/stats', repeat=300)
                inject_ok(self.ctl, MTAB, MOUNT, path='/stats', repeat=5)
                self.wait_queue_empty()
                time.sleep(0.3)
                child.send('posted')
                nobody_view = child.recv()
                root_view = {'stats': stats(self.ctl), 'dump': dump(self.ctl)}
                child.send('done')
            finally:
                child.wait()
                root_mtab.close()
                root_storage.close()
            self.record('stats.scopes', {
                'param_write_errors': errors, 'user_queue_len': limit, 'event_queue_len': try_read_param('event_queue_len'),
                'root_ids': root_ids, 'nobody_ids': nobody_ids, 'nobody': nobody_view, 'root': root_view,
            })
        finally:
            try_write_param('user_queue_len', 1024)

    # -- limits before arming
    def limits(self):
        disarmed = self.hooks_disarmed()
        before = self.settled()
        # A permission refusal arms nothing either: a global mtab listener as uid 65534.
        def nobody_global(chan):
            with self.socket() as s:
                chan.send(register(s, [notifier(MTAB, MOUNT, NOTIFY)], flags=GLOBAL))
                chan.recv(timeout=60)

        child = Child(nobody_global, uid=NOBODY)
        try:
            reply = child.recv()
            hooks, kprobes = stats(self.ctl).get('mount_hooks'), usip_kprobes()
            child.send('done')
        finally:
            child.wait()
        self.record('limits.global-refused-before-arming', {'hooks_disarmed_before': disarmed, 'reply': reply,
                                                            'mount_hooks': hooks, 'kprobes': kprobes})
        errors = {'limit_1': try_write_param('max_listeners_per_user', 1)}
        try:
            def nobody(chan):
                with self.socket() as s:
                    storage = register(s, [notifier(STORAGE, QUOTA, NOTIFY)])
                    mtab = register(s, [notifier(MTAB, MOUNT, NOTIFY)])
                    chan.send({'storage': storage, 'mtab': mtab})
                    chan.recv(timeout=60)

            child = Child(nobody, uid=NOBODY)
            try:
                replies = child.recv()
                # Right after the refusal: no mtab listener exists anywhere.
                t0 = time.monotonic()
                hooks = stats(self.ctl).get('mount_hooks')
                kprobes = usip_kprobes()
                elapsed = time.monotonic() - t0
                child.send('done')
            finally:
                child.wait()
            after = self.settled()
            self.record('limits.refused-before-arming', {
                'hooks_disarmed_before': disarmed, 'param_write_errors': errors,
                'param': try_read_param('max_listeners_per_user'), 'replies': replies, 'mount_hooks': hooks,
                'kprobes': kprobes, 'read_within_s': round(elapsed, 3),
                'before': before, 'after': after,
            })

            # The control: with room for it, the same mtab listener arms the hooks, and the
            # stats and the kprobes list show it.
            errors['limit_2'] = try_write_param('max_listeners_per_user', 2)

            def nobody_with_room(chan):
                with self.socket() as s:
                    chan.send({'storage': register(s, [notifier(STORAGE, QUOTA, NOTIFY)]),
                               'mtab': register(s, [notifier(MTAB, MOUNT, NOTIFY)])})
                    chan.recv(timeout=60)

            child = Child(nobody_with_room, uid=NOBODY)
            try:
                replies = child.recv()
                hooks = stats(self.ctl).get('mount_hooks')
                kprobes = usip_kprobes()
                child.send('done')
            finally:
                child.wait()
            self.record('limits.control', {'param': try_read_param('max_listeners_per_user'), 'replies': replies,
                                           'mount_hooks': hooks, 'kprobes': kprobes})

            # A limit of 0: no listener at all, the first one of a user included.
            errors['limit_0'] = try_write_param('max_listeners_per_user', 0)

            def nobody_first(chan):
                with self.socket() as s:
                    chan.send([register(s, [notifier(STORAGE, QUOTA, NOTIFY)]) for _ in range(2)])

            child = Child(nobody_first, uid=NOBODY)
            try:
                replies = child.recv()
            finally:
                child.wait()
            self.record('limits.zero', {'param': try_read_param('max_listeners_per_user'),
                                        'write_error': errors['limit_0'], 'replies': replies})
        finally:
            try_write_param('max_listeners_per_user', 64)

    # -- memory cgroup accounting
    def memcg(self):
        if not os.path.exists(f'{CGROUP}/cgroup.controllers'):
            os.makedirs(CGROUP, exist_ok=True)
            subprocess.run(['mount', '-t', 'cgroup2', 'cgroup2', CGROUP], check=True, capture_output=True)
        with open(f'{CGROUP}/cgroup.controllers', encoding='ascii') as f:
            controllers = f.read().split()
        with open(f'{CGROUP}/cgroup.subtree_control', 'w', encoding='ascii') as f:
            f.write('+memory')
        group = f'{CGROUP}/usip-hardening'
        os.makedirs(group, exist_ok=True)

        def memory_stat():
            with open(f'{group}/memory.stat', encoding='ascii') as f:
                fields = dict(line.split() for line in f if line.strip())
            with open(f'{group}/memory.current', encoding='ascii') as f:
                current = int(f.read())
            return {k: int(fields[k]) for k in ('slab', 'slab_unreclaimable', 'kernel', 'sock') if k in fields} | \
                {'current': current}

        n_listeners, n_notifiers = 64, 32
        prefix = lambda i, j: f'/srv/usip-hardening/listener-{i:03d}/notifier-{j:02d}/x'  # noqa: E731

        def registrar(chan):
            chan.recv(timeout=60)  # moved into the cgroup
            with self.socket() as s:
                # Warm up: the socket and a listener come and go once before the baseline.
                warm = register_ok(s, [notifier(MTAB, MOUNT, NOTIFY)])
                s.request(CMD['LISTENER_UNREGISTER'], nla(P['A_LISTENER_ID'], u32(warm)))
                chan.send('ready')
                chan.recv(timeout=60)
                ids = [register_ok(s, [notifier(MTAB, MOUNT, NOTIFY, path_prefix=prefix(i, j))
                                       for j in range(n_notifiers)]) for i in range(n_listeners)]
                chan.send({'ids': len(ids)})
                chan.recv(timeout=60)

        child = Child(registrar)
        try:
            with open(f'{group}/cgroup.procs', 'w', encoding='ascii') as f:
                f.write(str(child.pid))
            with open(f'/proc/{child.pid}/cgroup', encoding='ascii') as f:
                child_cgroup = f.read().strip()
            child.send('moved')
            child.recv()
            time.sleep(2.5)  # the memcg statistics are flushed every 2 s
            baseline = memory_stat()
            objects_before = self.settled().get('objects')
            child.send('register')
            registered = child.recv(timeout=120)
            objects_after = stats(self.ctl).get('objects')
            # What the listeners take at the least: each notifier's record (six u32, a u64, a
            # pointer and a length) and its path prefix.
            takes = n_listeners * sum(48 + len(prefix(0, j)) + 1 for j in range(n_notifiers))
            grown, _ = poll(lambda: memory_stat().get('slab', 0) - baseline.get('slab', 0) >= takes // 2,
                            timeout=6, step=0.25)
            loaded = memory_stat()
            child.send('done')
        finally:
            child.wait()
        time.sleep(2.5)
        freed = memory_stat()
        os.rmdir(group)
        self.record('memcg.listeners-charged', {
            'controllers': controllers, 'child_cgroup': child_cgroup, 'registered': registered,
            'listeners': n_listeners, 'notifiers': n_notifiers, 'takes_at_least': takes,
            'baseline': baseline, 'loaded': loaded, 'freed': freed,
            'objects_before': objects_before, 'objects_after': objects_after,
        })

    # -- no delivery to a reused port id
    def port_reuse(self, rounds=int(os.environ.get('USIP_HARDENING_PORT_ROUNDS', '1000')),
                   time_limit=float(os.environ.get('USIP_HARDENING_PORT_SECONDS', '75'))):
        seed = int(os.environ.get('USIP_HARDENING_SEED', '0')) or random.randrange(1 << 30)
        rng = random.Random(seed)
        hits, own_failures, bind_failures = [], [], []
        foreign_messages = 0
        done = own_checks = 0
        concurrent_rounds = 0
        binder = PortBinder(self.family)
        started = time.monotonic()
        try:
            for r in range(rounds):
                if time.monotonic() - started > time_limit:
                    break
                a = self.socket(rcvbuf_force=4 << 20)
                a_id = register_ok(a, [notifier(MTAB, MOUNT, NOTIFY)])
                port = a.port
                burst = rng.randint(100, 400)
                read_first = rng.choice((0, 0, 1, 3, 10))
                concurrent = rng.random() < 0.9
                inject_ok(self.ctl, MTAB, MOUNT, path='/race', repeat=burst)
                for _ in range(read_first):
                    next_message(a, 5)
                if concurrent:
                    # B binds from another thread while A is being released.
                    concurrent_rounds += 1
                    binder.arm(port)
                    a.close()
                    b = binder.take(timeout=5)
                else:
                    a.close()
                    try:
                        b = Genl(self.family, port=port)
                    except OSError:
                        b = None
                if b is None:
                    bind_failures.append({'round': r, 'port': port})
                    continue
                try:
                    self.wait_queue_empty()
                    # Delivery is over: whatever reached B is on its socket.
                    got = drain(b)
                    stray = list(b.stray)
                    if got or stray:
                        foreign_messages += len(got) + len(stray)
                        if len(hits) < 20:
                            seqs = [m.get('seq') for m in got]
                            hits.append({'round': r, 'port': port, 'a_listener': a_id, 'burst': burst,
                                         'read_first': read_first, 'concurrent': concurrent,
                                         'count': len(got), 'seq_range': [min(seqs), max(seqs)] if seqs else None,
                                         'listener_ids': sorted({m.get('listener_id') for m in got}, key=str),
                                         'messages': [{k: m.get(k) for k in ('genl_cmd', 'listener_id', 'seq', 'path')}
                                                      for m in got][:3],
                                         'stray': len(stray),
                                         'a_still_listed': any(e.get('id') == a_id for e in dump(self.ctl))})
                        else:
                            hits.append({'round': r})
                    if r % 5 == 0:
                        # B's own listener gets its own events (every fifth round: it takes time).
                        own_checks += 1
                        b_id = register_ok(b, [notifier(MTAB, MOUNT, NOTIFY)])
                        seq = inject_ok(self.ctl, MTAB, MOUNT, path='/own')['seq']
                        m = next_message(b, 10)
                        if m is None or m.get('listener_id') != b_id or m.get('seq') != seq or m.get('missed'):
                            own_failures.append({'round': r, 'id': b_id, 'seq': seq, 'message': m})
                finally:
                    b.close()
                done += 1
        finally:
            binder.stop()
        self.record('port-reuse', {
            'seed': seed, 'rounds': done, 'concurrent_rounds': concurrent_rounds, 'seconds': round(time.monotonic() - started, 1),
            'rounds_with_foreign_messages': len(hits), 'foreign_messages': foreign_messages, 'hits': hits[:20],
            'own_checks': own_checks, 'own_failures': own_failures[:10], 'own_failure_count': len(own_failures),
            'bind_failures': bind_failures[:10], 'bind_failure_count': len(bind_failures),
            'stats': self.settled(),
        })

    # -- one user's churn against another user's listener
    def fairness(self, seconds=8.0, churners=int(os.environ.get('USIP_HARDENING_CHURNERS', '2')),
                 listeners=int(os.environ.get('USIP_HARDENING_CHURN_LISTENERS', '8'))):
        shares = {'event_queue_len': 64, 'user_queue_len': 16, 'listener_queue_len': 16}
        errors = {name: try_write_param(name, value) for name, value in shares.items()}
        dirs = [f'/tmp/usip-hardening-churn-{i}' for i in range(churners)]
        for d in dirs:
            os.makedirs(d, exist_ok=True)
            os.chmod(d, 0o777)
        try:
            self._fairness(seconds, dirs, listeners, errors, shares)
        finally:
            for name, value in (('event_queue_len', 4096), ('user_queue_len', 1024), ('listener_queue_len', 1024)):
                try_write_param(name, value)
            for d in dirs:
                os.rmdir(d)

    def _fairness(self, seconds, dirs, n_listeners, errors, shares):
        family = self.family

        def churner(chan):
            # uid 65534 in a user and mount namespace of its own, where it may mount.
            become_in_userns(NOBODY, CLONE_NEWNS)
            socks = [Genl(family) for _ in range(n_listeners)]
            ids = [register_ok(s, [notifier(MTAB, MOUNT, NOTIFY), notifier(MTAB, UMOUNT, NOTIFY)]) for s in socks]
            # More mounters in the same namespaces, one per other directory, started with the first.
            start_r, start_w = os.pipe()
            pids = []
            for d in dirs[1:]:
                pid = os.fork()
                if pid == 0:
                    code = 0
                    try:
                        os.read(start_r, 1)
                        churn(d, time.monotonic() + seconds)
                    except BaseException:  # noqa: B036: a mounter that fails only lessens the pressure
                        code = 1
                    os._exit(code)
                pids.append(pid)
            chan.send({'ids': ids, 'mnt_ns': os.stat('/proc/self/ns/mnt').st_ino, 'uid_map': open('/proc/self/uid_map').read().split()})
            go = chan.recv(timeout=60)
            os.write(start_w, b'x' * len(pids))
            cycles = churn(dirs[0], time.monotonic() + go['seconds'])
            for pid in pids:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
            time.sleep(0.5)
            entries = dump(socks[0])
            chan.send({'cycles': cycles, 'dump': [{k: e.get(k) for k in ('id', 'delivered', 'missed', 'owner_uid')}
                                                  for e in entries],
                       'stats': stats(socks[0])})
            chan.recv(timeout=60)
            for s in socks:
                s.close()

        def churn(target, deadline):
            """Mounts a tmpfs with a chain of tmpfs mounts in it, and detaches the lot: a burst of
            mount and umount events (within the module's 16 mounts a hook reports one by one)."""
            cycles = 0
            while time.monotonic() < deadline:
                mount_tmpfs(target)
                path = target
                for _ in range(CHAIN):
                    path += '/d'
                    os.mkdir(path)
                    mount_tmpfs(path)
                umount(target, MNT_DETACH)
                cycles += 1
            return cycles

        def sampler(chan):
            with Genl(family) as s:
                chan.send('ready')
                samples, top, limits, scopes = 0, 0, set(), set()
                while True:
                    ready, _, _ = select.select([chan.rfd], [], [], 0.005)
                    if ready:
                        break
                    st = stats(s)
                    samples += 1
                    top = max(top, st.get('queued', 0))
                    limits.add(st.get('queue_limit'))
                    scopes.add(st.get('scope'))
                chan.recv()
                chan.send({'samples': samples, 'max_queued': top, 'queue_limits': sorted(limits, key=str),
                           'scopes': sorted(scopes, key=str)})

        before = stats(self.ctl)
        churn_child = Child(churner)
        sample_child = Child(sampler, uid=NOBODY)
        root = self.socket(rcvbuf_force=16 << 20)
        try:
            root_id = register_ok(root, [notifier(STORAGE, QUOTA, NOTIFY)])
            info = churn_child.recv(timeout=60)
            sample_child.recv(timeout=60)
            churn_child.send({'seconds': seconds})
            posted, received, missed_events, notices, dropped_replies = [], [], [], [], 0
            deadline = time.monotonic() + seconds
            mid_stats = None
            while time.monotonic() < deadline:
                reply = inject_ok(self.ctl, STORAGE, QUOTA, path='/steady')
                posted.append(reply.get('seq'))
                dropped_replies += reply.get('dropped', 0)
                for m in drain(root):
                    (notices if m['genl_cmd'] == CMD['MISSED'] else received).append(m)
                if mid_stats is None and time.monotonic() > deadline - seconds / 2:
                    mid_stats = stats(self.ctl)
                time.sleep(0.003)
            sample_child.send('stop')
            sampled = sample_child.recv(timeout=30)
            churned = churn_child.recv(timeout=60)
            self.wait_queue_empty()
            time.sleep(0.3)
            for m in drain(root, 0.2):
                (notices if m['genl_cmd'] == CMD['MISSED'] else received).append(m)
            root_entry = next((e for e in dump(self.ctl) if e.get('id') == root_id), {})
            after = stats(self.ctl)
            churn_child.send('done')
        finally:
            root.close()
            churn_child.wait(timeout=30)
            sample_child.wait(timeout=30)
        got = [m.get('seq') for m in received]
        self.record('fairness', {
            'param_write_errors': errors, 'shares': shares,
            'params': {name: try_read_param(name) for name in shares},
            'churner': {'ids': info['ids'], 'processes': len(dirs), 'mounts_per_cycle': CHAIN + 1, 'mnt_ns': info['mnt_ns'], 'uid_map': info['uid_map'],
                        'init_mnt_ns': os.stat('/proc/self/ns/mnt').st_ino, **churned},
            'sampler': sampled,
            'root': {'id': root_id, 'posted': len(posted), 'received': len(got),
                     'missing': sorted(set(posted) - set(got))[:20], 'missing_count': len(set(posted) - set(got)),
                     'in_order': got == sorted(got), 'missed_sum': sum(m.get('missed', 0) for m in received),
                     'missed_notices': [m.get('missed') for m in notices], 'dropped_in_replies': dropped_replies,
                     'foreign': [m.get('listener_id') for m in received if m.get('listener_id') != root_id][:5],
                     'dump': {'delivered': root_entry.get('delivered'), 'missed': root_entry.get('missed')}},
            'host_before': before, 'host_middle': mid_stats, 'host_after': after,
        })


class PortBinder:
    """A thread that binds a new netlink socket to a given port id as soon as it is free."""

    def __init__(self, family):
        self.family = family
        self.port = None
        self.result = None
        self.go = threading.Event()
        self.spinning = threading.Event()
        self.done = threading.Event()
        self.stopping = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def arm(self, port):
        self.port, self.result = port, None
        self.done.clear()
        self.spinning.clear()
        self.go.set()
        self.spinning.wait(5)

    def take(self, timeout):
        self.done.wait(timeout)
        return self.result

    def stop(self):
        self.stopping = True
        self.go.set()
        self.thread.join(5)

    def run(self):
        while True:
            self.go.wait()
            self.go.clear()
            if self.stopping:
                return
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, lc.NETLINK_GENERIC)
            deadline = time.monotonic() + 5
            self.spinning.set()
            while True:
                try:
                    sock.bind((self.port, 0))
                    break
                except OSError as e:
                    if e.errno != errno.EADDRINUSE or time.monotonic() > deadline:
                        sock.close()
                        sock = None
                        break
            if sock is not None:
                self.result = genl_around(sock, self.family)
            self.done.set()


def helper_kern_log():
    """Registers a kern-log listener and says how that went (run under setpriv as another user)."""
    family, _ = lc.resolve_family()
    with Genl(family) as s:
        reply = register(s, [notifier(STORAGE, QUOTA, KERN_LOG)])
        print(json.dumps({'uid': os.geteuid(), 'caps': caps_of_self(), 'reply': reply}), flush=True)
        sys.stdin.readline()


GROUPS = ('features', 'disarm', 'kern-log', 'stats', 'limits', 'memcg', 'port-reuse', 'fairness')


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--helper', choices=('kern-log',))
    parser.add_argument('--only', help=f'comma-separated groups of {",".join(GROUPS)}')
    args = parser.parse_args()
    if args.helper == 'kern-log':
        helper_kern_log()
        return
    results = os.environ.get('USIP_VM_RESULTS')
    if not results:
        sys.exit('hardening_checks.py: $USIP_VM_RESULTS is not set (run it in the usip-vm guest)')
    only = set(args.only.split(',')) if args.only else set(GROUPS)
    rec = lc.Recorder(os.path.join(results, 'hardening-checks.jsonl'))
    checks = Checks(rec)
    rec.record('start', {'stats': stats(checks.ctl),
                         'params': {p: read_param(p) for p in sorted(os.listdir(lc.PARAMS))}})
    for name, fn in (
        ('features', checks.features),
        ('disarm', checks.disarm),
        ('kern-log', checks.kern_log),
        ('stats', checks.stats_scopes),
        ('limits', checks.limits),
        ('memcg', checks.memcg),
        ('port-reuse', checks.port_reuse),
        ('fairness', checks.fairness),
    ):
        if name in only:
            rec.section(name, fn)
    rec.record('cleanup', {'stats': checks.settled()})
    checks.ctl.close()
    rec.write({'check': 'end', 'value': True})


if __name__ == '__main__':
    main()
