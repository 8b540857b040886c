#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
#
# Runs in the test VM with usip.ko loaded with allow_inject=1 and checks the
# listener and event behaviour of the module (registration, lifetime, scope,
# delivery, inject, bounds, clean-up, unload with listeners) with clients that
# are not ours: raw netlink sockets driven from Python, forked children that
# change uid or unshare their mount and network namespaces, /dev/kmsg, rmmod
# and insmod.
#
# The script judges nothing itself: each check writes one JSON line
# {"check": NAME, "value": ...} (or {"check": NAME, "error": TRACEBACK} when
# the check could not run) to $USIP_VM_RESULTS/listener-checks.jsonl, and the
# host test (listeners.test.ts) asserts on each line. A check that fails to run
# does not stop the ones after it.
#
# Attribute ids and command numbers are written out from the uapi contract on
# purpose, as in family_checks.py, so that a change of the ABI fails the test.
#
# Usage: listener_checks.py --module PATH_OF_USIP_KO
import argparse
import ctypes
import errno
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from family_checks import nla  # noqa: E402  (after the path is set)

NETLINK_GENERIC = 16
SOL_NETLINK = 270
NETLINK_ADD_MEMBERSHIP = 1
NETLINK_EXT_ACK = 11
SO_RCVBUFFORCE = 33
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_DUMP = 0x300
NLM_F_CAPPED = 0x100
NLM_F_ACK_TLVS = 0x200
NLMSGERR_ATTR_MSG = 1
NLMSGERR_ATTR_OFFS = 2
NLMSGERR_ATTR_MISS_TYPE = 5
NLMSGERR_ATTR_MISS_NEST = 6
NLA_F_NESTED = 0x8000
NLA_TYPE_MASK = 0x3fff

GENL_ID_CTRL = 0x10
CTRL_CMD_GETFAMILY = 3
CTRL_ATTR_FAMILY_ID = 1
CTRL_ATTR_FAMILY_NAME = 2
CTRL_ATTR_MCAST_GROUPS = 7
CTRL_ATTR_MCAST_GRP_NAME = 1
CTRL_ATTR_MCAST_GRP_ID = 2

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000

# The usip family (include/uapi/linux/usip.h).
CMD_REGISTER = 2
CMD_UNREGISTER = 3
CMD_GET = 4
CMD_INJECT = 5
CMD_STATS = 6
CMD_MTAB_EVENT = 7
CMD_STORAGE_EVENT = 8
CMD_MISSED = 11

TYPE_MTAB = 1
TYPE_STORAGE = 2
MOUNT, UMOUNT, MOVE, REMOUNT, ENOSPC, EDQUOT, LOW_SPACE = 1, 2, 3, 4, 5, 6, 7
NOTIFY = 0x1
KERN_LOG = 0x2
GLOBAL = 0x1

A_LISTENER_ID = 1
A_LISTENER_FLAGS = 2
A_LISTENER_NOTIFIER = 3

A_NOTIFIER_TYPE = 1
A_NOTIFIER_ACTION = 2
A_NOTIFIER_CMD = 3
A_NOTIFIER_FLAGS = 4
A_NOTIFIER_MOUNT_ID = 5
A_NOTIFIER_PATH_PREFIX = 6
A_NOTIFIER_THRESHOLD = 7

A_EVENT_TYPE = 4
A_EVENT_ACTION = 5
A_EVENT_MOUNT_ID = 11
A_EVENT_PARENT_ID = 12
A_EVENT_PATH = 13
A_EVENT_FS_TYPE = 14
A_EVENT_SOURCE = 15
A_EVENT_DEV = 16
A_EVENT_COUNT = 17
A_EVENT_REPEAT = 18

U32, U64, STR = 'u32', 'u64', 'str'
NOTIFIER_SCHEMA = {
    1: ('type', U32), 2: ('action', U32), 3: ('cmd', U32), 4: ('flags', U32),
    5: ('mount_id', U64), 6: ('path_prefix', STR), 7: ('threshold', U32), 9: ('threshold_inodes', U32),
    10: ('threshold_bytes', U64), 11: ('hysteresis', U32), 12: ('interval_ms', U32),
}
# (name, kind, repeated)
LISTENER_SCHEMA = {
    1: ('id', U32, False), 2: ('flags', U32, False), 3: ('notifiers', NOTIFIER_SCHEMA, True),
    4: ('groups', STR, True), 5: ('scope', U32, False), 6: ('mnt_ns', U64, False),
    7: ('owner_pid', U32, False), 8: ('owner_uid', U32, False), 9: ('port_id', U32, False),
    10: ('delivered', U64, False), 11: ('missed', U64, False),
}
EVENT_SCHEMA = {
    1: ('listener_id', U32, False), 2: ('seq', U64, False), 3: ('missed', U32, False),
    4: ('type', U32, False), 5: ('action', U32, False), 6: ('cmd', U32, False),
    7: ('timestamp', U64, False), 8: ('mnt_ns', U64, False), 9: ('pid', U32, False),
    10: ('uid', U32, False), 11: ('mount_id', U64, False), 12: ('parent_id', U64, False),
    13: ('path', STR, False), 14: ('fs_type', STR, False), 15: ('source', STR, False),
    16: ('dev', U32, False), 17: ('count', U32, False), 19: ('queued', U32, False),
    20: ('dropped', U32, False),
}
STATS_SCHEMA = {
    1: ('listeners', U32, False), 2: ('notifiers', U32, False), 3: ('queued', U32, False),
    4: ('queue_limit', U32, False), 5: ('posted', U64, False), 6: ('dropped', U64, False),
    7: ('delivered', U64, False), 8: ('undeliverable', U64, False), 9: ('objects', U32, False),
}
# Pad attributes of each set: carry nothing, ignored when decoding.
PADS = {id(NOTIFIER_SCHEMA): 8, id(LISTENER_SCHEMA): 12, id(EVENT_SCHEMA): 21, id(STATS_SCHEMA): 10}

PARAMS = '/sys/module/usip/parameters'
NOBODY = 65534
EVENT_TIMEOUT_S = 10


# ---------------------------------------------------------------- encoding

def u32(value):
    return struct.pack('=I', value)


def u64(value):
    return struct.pack('=Q', value)


def string(value):
    return value.encode() + b'\0'


def nest(attr_type, payload, nested_flag=True):
    return nla(attr_type | (NLA_F_NESTED if nested_flag else 0), payload)


def notifier(type_=TYPE_MTAB, action=MOUNT, flags=NOTIFY, cmd=None, mount_id=None, path_prefix=None,
             threshold=None, omit=(), extra=b'', nested_flag=True):
    """A notifier nest; `omit` leaves out required attributes, `extra` appends raw bytes."""
    body = b''
    if 'type' not in omit:
        body += nla(A_NOTIFIER_TYPE, u32(type_))
    if 'action' not in omit:
        body += nla(A_NOTIFIER_ACTION, u32(action))
    if cmd is not None:
        body += nla(A_NOTIFIER_CMD, u32(cmd))
    if 'flags' not in omit:
        body += nla(A_NOTIFIER_FLAGS, u32(flags))
    if mount_id is not None:
        body += nla(A_NOTIFIER_MOUNT_ID, u64(mount_id))
    if path_prefix is not None:
        body += nla(A_NOTIFIER_PATH_PREFIX, string(path_prefix))
    if threshold is not None:
        body += nla(A_NOTIFIER_THRESHOLD, u32(threshold))
    return nest(A_LISTENER_NOTIFIER, body + extra, nested_flag)


def register_attrs(notifiers, flags=None):
    head = nla(A_LISTENER_FLAGS, u32(flags)) if flags is not None else b''
    return head + b''.join(notifiers)


def event_attrs(type_=TYPE_MTAB, action=MOUNT, mount_id=None, parent_id=None, path=None, fs_type=None,
                source=None, dev=None, count=None, repeat=None, omit=()):
    body = b''
    if 'type' not in omit:
        body += nla(A_EVENT_TYPE, u32(type_))
    if 'action' not in omit:
        body += nla(A_EVENT_ACTION, u32(action))
    for attr, value, enc in ((A_EVENT_MOUNT_ID, mount_id, u64), (A_EVENT_PARENT_ID, parent_id, u64),
                             (A_EVENT_PATH, path, string), (A_EVENT_FS_TYPE, fs_type, string),
                             (A_EVENT_SOURCE, source, string), (A_EVENT_DEV, dev, u32),
                             (A_EVENT_COUNT, count, u32), (A_EVENT_REPEAT, repeat, u32)):
        if value is not None:
            body += nla(attr, enc(value))
    return body


# ---------------------------------------------------------------- decoding

def parse_attrs(data):
    attrs = {}
    offset = 0
    while offset + 4 <= len(data):
        length, attr_type = struct.unpack_from('=HH', data, offset)
        if length < 4:
            break
        attrs.setdefault(attr_type & NLA_TYPE_MASK, []).append(data[offset + 4:offset + length])
        offset += (length + 3) & ~3
    return attrs


def decode_value(kind, payload, where):
    if kind == U32:
        if len(payload) != 4:
            raise ValueError(f'{where}: u32 attribute of {len(payload)} bytes')
        return struct.unpack('=I', payload)[0]
    if kind == U64:
        if len(payload) != 8:
            raise ValueError(f'{where}: u64 attribute of {len(payload)} bytes')
        return struct.unpack('=Q', payload)[0]
    if kind == STR:
        if not payload.endswith(b'\0'):
            raise ValueError(f'{where}: string attribute without its NUL: {payload!r}')
        return payload[:-1].decode(errors='replace')
    # A nested set whose entries are (name, kind).
    out = {}
    for attr_type, values in parse_attrs(payload).items():
        if attr_type not in kind:
            if attr_type != PADS.get(id(kind)):
                out.setdefault('unknown_attributes', []).append(attr_type)
            continue
        name, sub_kind = kind[attr_type]
        out[name] = decode_value(sub_kind, values[0], f'{where}.{name}')
    return out


def decode(attrs, schema):
    out = {}
    for attr_type, values in attrs.items():
        if attr_type not in schema:
            if attr_type != PADS.get(id(schema)):
                out.setdefault('unknown_attributes', []).append(attr_type)
            continue
        name, kind, repeated = schema[attr_type]
        decoded = [decode_value(kind, v, name) for v in values]
        if repeated:
            out[name] = decoded
        else:
            out[name] = decoded[0]
            if len(decoded) > 1:
                out.setdefault('repeated_attributes', []).append(name)
    return out


def parse_messages(data):
    """Yields (type, flags, seq, pid, payload) for each netlink message in a datagram."""
    offset = 0
    while offset + 16 <= len(data):
        length, msg_type, flags, seq, pid = struct.unpack_from('=IHHII', data, offset)
        if length < 16:
            break
        yield msg_type, flags, seq, pid, data[offset + 16:offset + length]
        offset += (length + 3) & ~3


def parse_error(flags, payload, done=False):
    """errno and extended ack of an NLMSG_ERROR (or NLMSG_DONE) payload."""
    (error,) = struct.unpack_from('=i', payload, 0)
    if done:
        tlv = 4
    else:
        request_length = struct.unpack_from('=I', payload, 4)[0]
        tlv = 4 + (16 if flags & NLM_F_CAPPED else request_length)
    message, offset, missing = None, None, {}
    if flags & NLM_F_ACK_TLVS:
        while tlv + 4 <= len(payload):
            tlv_len, tlv_type = struct.unpack_from('=HH', payload, tlv)
            if tlv_len < 4:
                break
            body = payload[tlv + 4:tlv + tlv_len]
            if tlv_type == NLMSGERR_ATTR_MSG:
                message = body.split(b'\0')[0].decode(errors='replace')
            elif tlv_type == NLMSGERR_ATTR_OFFS:
                offset = struct.unpack('=I', body)[0]
            elif tlv_type == NLMSGERR_ATTR_MISS_TYPE:
                missing['type'] = struct.unpack('=I', body)[0]
            elif tlv_type == NLMSGERR_ATTR_MISS_NEST:
                missing['nest_offset'] = struct.unpack('=I', body)[0]
            tlv += (tlv_len + 3) & ~3
    return -error, message, offset, missing or None


def errname(number):
    if number == errno.EOPNOTSUPP:
        return 'EOPNOTSUPP'  # errorcode has its alias ENOTSUP, the same number on Linux
    return errno.errorcode.get(number, str(number)) if number else None


def jsonable(value):
    """JSON numbers above 2**53 lose precision in JavaScript: send them as text."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value if abs(value) < 2 ** 53 else str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


# ---------------------------------------------------------------- sockets

class Reply:
    """The outcome of one request: errno/extack and the messages that answered it."""

    def __init__(self, err, extack, offset, missing, messages):
        self.errno = err
        self.extack = extack
        self.offset = offset
        self.missing = missing
        self.messages = messages

    @property
    def ok(self):
        return self.errno == 0

    def summary(self, schema=None):
        out = {'errno': self.errno, 'error': errname(self.errno), 'extack': self.extack,
               'extack_offset': self.offset, 'missing_attribute': self.missing, 'replies': len(self.messages)}
        if schema is not None and self.messages:
            out['attrs'] = decode(self.messages[0]['attrs'], schema)
        return out

    def attrs(self, schema):
        if not self.ok:
            raise RuntimeError(f'request failed with {errname(self.errno)}: {self.extack}')
        if len(self.messages) != 1:
            raise RuntimeError(f'expected one reply message, got {len(self.messages)}')
        return decode(self.messages[0]['attrs'], schema)


class Genl:
    """A generic netlink socket with extended acks; events received while waiting for a reply
    are kept, in order, for next_event()."""

    def __init__(self, family, port=0, rcvbuf=None, rcvbuf_force=None):
        self.family = family
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC)
        self.sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if rcvbuf_force is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf_force)
        self.sock.bind((port, 0))
        self.port = self.sock.getsockname()[0]
        self.seq = 1000
        self.pending = []
        self.stray = []
        self.enobufs = 0

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def join(self, group_id):
        self.sock.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, group_id)

    def _recv(self, timeout):
        """The messages of one datagram, [] after an ENOBUFS, None on timeout."""
        ready, _, _ = select.select([self.sock], [], [], max(timeout, 0))
        if not ready:
            return None
        try:
            data = self.sock.recv(1 << 20)
        except OSError as e:
            if e.errno == errno.ENOBUFS:
                self.enobufs += 1
                return []
            raise
        return [{'type': t, 'flags': f, 'seq': s, 'pid': p, 'payload': body}
                for t, f, s, p, body in parse_messages(data)]

    def request(self, cmd, attrs=b'', dump=False, family=None, timeout=10):
        family = self.family if family is None else family
        self.seq += 1
        seq = self.seq
        body = struct.pack('=BBH', cmd, 1, 0) + attrs
        flags = NLM_F_REQUEST | (NLM_F_DUMP if dump else NLM_F_ACK)
        self.sock.send(struct.pack('=IHHII', 16 + len(body), family, flags, seq, 0) + body)
        deadline = time.monotonic() + timeout
        messages = []
        while True:
            batch = self._recv(deadline - time.monotonic())
            if batch is None:
                raise TimeoutError(f'no answer to command {cmd} within {timeout} s')
            for m in batch:
                if m['seq'] != seq:
                    (self.pending if m['type'] == self.family and m['seq'] == 0 else self.stray).append(m)
                    continue
                if m['type'] == NLMSG_ERROR:
                    return Reply(*parse_error(m['flags'], m['payload']), messages)
                if m['type'] == NLMSG_DONE:
                    return Reply(*parse_error(m['flags'], m['payload'], done=True), messages)
                messages.append({'cmd': m['payload'][0], 'attrs': parse_attrs(m['payload'][4:])})

    def next_event(self, timeout=EVENT_TIMEOUT_S, what='an event'):
        """The next event (a message of the family with sequence number 0) on this socket."""
        deadline = time.monotonic() + timeout
        while not self.pending:
            batch = self._recv(deadline - time.monotonic())
            if batch is None:
                raise TimeoutError(f'{what} did not arrive on port {self.port} within {timeout} s')
            for m in batch:
                (self.pending if m['type'] == self.family and m['seq'] == 0 else self.stray).append(m)
        m = self.pending.pop(0)
        event = decode(parse_attrs(m['payload'][4:]), EVENT_SCHEMA)
        event.update(genl_cmd=m['payload'][0], nlmsg_pid=m['pid'], nlmsg_seq=m['seq'])
        return event

    def events_until(self, seq, timeout=EVENT_TIMEOUT_S, what='events'):
        """Events up to and including the one with this sequence number."""
        events = []
        while True:
            ev = self.next_event(timeout, f'{what} (up to seq {seq})')
            events.append(ev)
            if ev.get('seq') == seq:
                return events
            if ev.get('seq') is not None and ev['seq'] > seq:
                raise RuntimeError(f'{what}: got seq {ev["seq"]} past {seq} without seeing it')

    def drain(self):
        """Whatever is readable now, without waiting."""
        events = []
        while True:
            try:
                events.append(self.next_event(timeout=0))
            except TimeoutError:
                return events


def resolve_family(name='usip'):
    """Family id and multicast groups, from nlctrl."""
    with Genl(GENL_ID_CTRL) as ctrl:
        reply = ctrl.request(CTRL_CMD_GETFAMILY, nla(CTRL_ATTR_FAMILY_NAME, string(name)))
        if not reply.ok:
            raise RuntimeError(f'nlctrl does not know {name}: {errname(reply.errno)} {reply.extack}')
        attrs = reply.messages[0]['attrs']
        family_id = struct.unpack('=H', attrs[CTRL_ATTR_FAMILY_ID][0][:2])[0]
        groups = {}
        for group in parse_attrs(attrs.get(CTRL_ATTR_MCAST_GROUPS, [b''])[0]).values():
            g = parse_attrs(group[0])
            groups[g[CTRL_ATTR_MCAST_GRP_NAME][0].rstrip(b'\0').decode()] = \
                struct.unpack('=I', g[CTRL_ATTR_MCAST_GRP_ID][0])[0]
        return family_id, groups


# ---------------------------------------------------------------- the usip operations

class Usip:
    def __init__(self, family):
        self.family = family

    def socket(self, **kw):
        return Genl(self.family, **kw)

    @staticmethod
    def register(sock, notifiers, flags=None):
        return sock.request(CMD_REGISTER, register_attrs(notifiers, flags))

    @staticmethod
    def register_ok(sock, notifiers, flags=None):
        return Usip.register(sock, notifiers, flags).attrs(LISTENER_SCHEMA)['id']

    @staticmethod
    def unregister(sock, listener_id):
        return sock.request(CMD_UNREGISTER, nla(A_LISTENER_ID, u32(listener_id)))

    @staticmethod
    def dump(sock):
        reply = sock.request(CMD_GET, dump=True)
        if not reply.ok:
            raise RuntimeError(f'listener-get failed: {errname(reply.errno)} {reply.extack}')
        return [decode(m['attrs'], LISTENER_SCHEMA) for m in reply.messages]

    @staticmethod
    def inject(sock, **fields):
        return sock.request(CMD_INJECT, event_attrs(**fields))

    @staticmethod
    def inject_ok(sock, **fields):
        return Usip.inject(sock, **fields).attrs(EVENT_SCHEMA)

    @staticmethod
    def stats(sock):
        return sock.request(CMD_STATS).attrs(STATS_SCHEMA)


def one_shot(family, cmd, attrs):
    """A request on a socket of its own, closed right after: what it answered."""
    with Genl(family) as s:
        return s.request(cmd, attrs).summary()


def listed(entries, listener_id):
    return next((e for e in entries if e.get('id') == listener_id), None)


def poll(predicate, timeout=3.0, step=0.01):
    """Calls predicate until it is true or the time is up; returns (value, tries)."""
    deadline = time.monotonic() + timeout
    tries = 0
    while True:
        tries += 1
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value, tries
        time.sleep(step)


def mnt_ns_ino():
    return os.stat('/proc/self/ns/mnt').st_ino


def net_ns_ino():
    return os.stat('/proc/self/ns/net').st_ino


def write_param(name, value):
    with open(f'{PARAMS}/{name}', 'w', encoding='ascii') as f:
        f.write(f'{value}\n')


def read_param(name):
    with open(f'{PARAMS}/{name}', encoding='ascii') as f:
        return f.read().strip()


# ---------------------------------------------------------------- children

LIBC = ctypes.CDLL(None, use_errno=True)


def unshare(flags):
    if LIBC.unshare(flags) != 0:
        number = ctypes.get_errno()
        raise OSError(number, f'unshare({flags:#x}): {os.strerror(number)}')


def become(uid):
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)


class ChildFailed(RuntimeError):
    pass


class Chan:
    """JSON lines over a pair of pipes."""

    def __init__(self, rfd, wfd):
        self.rfd, self.wfd, self.buf = rfd, wfd, b''

    def send(self, obj):
        data = (json.dumps(jsonable(obj)) + '\n').encode()
        while data:
            data = data[os.write(self.wfd, data):]

    def recv(self, timeout=30):
        deadline = None if timeout is None else time.monotonic() + timeout
        while b'\n' not in self.buf:
            wait = None if deadline is None else max(deadline - time.monotonic(), 0)
            ready, _, _ = select.select([self.rfd], [], [], wait)
            if not ready:
                raise TimeoutError(f'no message from the other process within {timeout} s')
            chunk = os.read(self.rfd, 65536)
            if not chunk:
                raise EOFError('the other process closed its end')
            self.buf += chunk
        line, self.buf = self.buf.split(b'\n', 1)
        msg = json.loads(line)
        if isinstance(msg, dict) and 'child_exception' in msg:
            raise ChildFailed(f'the child process failed:\n{msg["child_exception"]}')
        return msg


class Child:
    """fn(chan) in a forked process, optionally in new namespaces and as another uid. The child
    keeps no file descriptor of the parent but its pipes, so closing a socket in the parent
    really closes it."""

    def __init__(self, fn, uid=None, unshare_flags=0):
        to_parent_r, to_parent_w = os.pipe()
        to_child_r, to_child_w = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            keep = {0, 1, 2, to_child_r, to_parent_w}
            for fd in [int(f) for f in os.listdir('/proc/self/fd')]:
                if fd not in keep:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            chan = Chan(to_child_r, to_parent_w)
            status = 0
            try:
                if unshare_flags:
                    unshare(unshare_flags)
                if uid is not None:
                    become(uid)
                fn(chan)
            except BaseException:  # noqa: B036: everything goes to the parent
                status = 1
                try:
                    chan.send({'child_exception': traceback.format_exc()})
                except OSError:
                    pass
            os._exit(status)
        os.close(to_parent_w)
        os.close(to_child_r)
        self.pid = pid
        self.chan = Chan(to_parent_r, to_child_w)

    def send(self, obj):
        self.chan.send(obj)

    def recv(self, timeout=30):
        return self.chan.recv(timeout)

    def kill(self, sig=signal.SIGKILL):
        os.kill(self.pid, sig)

    def wait(self, timeout=10):
        """Reaps the child (killing it after timeout); returns its wait status."""
        deadline = time.monotonic() + timeout
        while True:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() >= deadline:
                os.kill(self.pid, signal.SIGKILL)
                _, status = os.waitpid(self.pid, 0)
                break
            time.sleep(0.01)
        for fd in (self.chan.rfd, self.chan.wfd):
            try:
                os.close(fd)
            except OSError:
                pass
        return status


def in_child(fn, uid=None, unshare_flags=0):
    """Runs fn() in a child and returns what it returned (JSON-able)."""
    def body(chan):
        chan.send({'result': fn()})
    child = Child(body, uid=uid, unshare_flags=unshare_flags)
    try:
        return child.recv()['result']
    finally:
        child.wait()


# ---------------------------------------------------------------- recording

class Recorder:
    def __init__(self, path):
        self.file = open(path, 'w', encoding='utf8')  # noqa: SIM115: open for the whole run
        # The running script's name, in its progress lines.
        self.label = os.path.splitext(os.path.basename(sys.argv[0]))[0]

    def write(self, obj):
        self.file.write(json.dumps(jsonable(obj)) + '\n')
        self.file.flush()

    def record(self, check, value):
        self.write({'check': check, 'value': value})

    def section(self, name, fn, *args):
        """Runs one group of checks; an exception becomes the error line of the group."""
        started = time.monotonic()
        try:
            fn(*args)
        except Exception:  # noqa: BLE001: reported to the host, which fails the checks
            self.write({'check': name, 'error': traceback.format_exc()})
            print(f'{self.label}: {name} failed:\n{traceback.format_exc()}', flush=True)
        print(f'{self.label}: {name} done in {time.monotonic() - started:.1f} s', flush=True)


# ---------------------------------------------------------------- the checks

class Checks:
    def __init__(self, rec, module_path):
        self.rec = rec
        self.module_path = module_path
        self.family, self.groups = resolve_family()
        self.usip = Usip(self.family)
        self.ctl = self.usip.socket()
        self.init_mnt_ns = mnt_ns_ino()

    def record(self, check, value):
        self.rec.record(check, value)

    def one_shot(self, cmd, attrs):
        return one_shot(self.family, cmd, attrs)

    # -- 0: the starting point
    def start(self):
        self.record('start', {'family_id': self.family, 'groups': self.groups,
                              'stats': self.usip.stats(self.ctl),
                              'params': {p: read_param(p) for p in sorted(os.listdir(PARAMS))},
                              'param_modes': {p: oct(os.stat(f'{PARAMS}/{p}').st_mode & 0o777)
                                              for p in sorted(os.listdir(PARAMS))}})
        try:
            write_param('allow_inject', 0)
            outcome = None
            # It should not have been writable; put it back so the checks after this one can inject.
            write_param('allow_inject', 1)
        except OSError as e:
            outcome = errname(e.errno)
        self.record('params.allow-inject-read-only', {'write_error': outcome,
                                                      'value_after': read_param('allow_inject')})

    # -- 1: registration, listing, unregistration
    def registration(self):
        u = self.usip
        with u.socket() as s:
            reply = u.register(s, [
                notifier(TYPE_MTAB, MOUNT, NOTIFY, cmd=0x11, mount_id=77, path_prefix='/mnt/data'),
                notifier(TYPE_STORAGE, LOW_SPACE, NOTIFY | KERN_LOG, cmd=0x22, threshold=10),
            ])
            attrs = reply.summary(LISTENER_SCHEMA)
            self.record('register.reply', {'reply': attrs, 'mnt_ns': self.init_mnt_ns})
            lid = attrs.get('attrs', {}).get('id')
            if lid is None:
                raise RuntimeError(f'listener-register failed, the checks that need its listener cannot run: {attrs}')
            entries = u.dump(self.ctl)
            self.record('register.dump', {'entry': listed(entries, lid), 'pid': os.getpid(), 'uid': os.geteuid(),
                                          'port': s.port, 'mnt_ns': self.init_mnt_ns, 'id': lid})
            own = u.dump(s)
            self.record('register.dump-own-socket', {'ids': [e.get('id') for e in own], 'id': lid})
            second = u.register(s, [notifier(TYPE_MTAB, UMOUNT, NOTIFY)]).summary(LISTENER_SCHEMA)
            self.record('register.second', {'first': lid, 'second': second})
            stats = u.stats(self.ctl)
            self.record('register.stats', {'stats': stats})
            self.record('unregister.own', u.unregister(s, lid).summary())
            self.record('unregister.gone', {'ids': [e.get('id') for e in u.dump(self.ctl)], 'id': lid,
                                            'stats': u.stats(self.ctl)})
            self.record('unregister.again', u.unregister(s, lid).summary())
            self.record('unregister.unknown', u.unregister(s, 0x7ffffff0).summary())
            self.record('unregister.missing-id', s.request(CMD_UNREGISTER).summary())

    def register_errors(self):
        cases = {
            'no-notifier': b'',
            'flags-only': nla(A_LISTENER_FLAGS, u32(0)),
            'action-of-other-type': register_attrs([notifier(TYPE_MTAB, ENOSPC)]),
            'storage-action-of-mtab': register_attrs([notifier(TYPE_STORAGE, MOUNT)]),
            'one-bad-of-two': register_attrs([notifier(TYPE_MTAB, MOUNT), notifier(TYPE_MTAB, LOW_SPACE)]),
            'missing-type': register_attrs([notifier(omit=('type',))]),
            'missing-action': register_attrs([notifier(omit=('action',))]),
            'missing-flags': register_attrs([notifier(omit=('flags',))]),
            'zero-flags': register_attrs([notifier(flags=0)]),
            'unknown-notifier-flag': register_attrs([notifier(flags=0x4)]),
            'unknown-listener-flag': register_attrs([notifier()], flags=0x2),
            'threshold-101': register_attrs([notifier(TYPE_STORAGE, LOW_SPACE, threshold=101)]),
            'type-3': register_attrs([notifier(type_=3)]),
            'action-9': register_attrs([notifier(action=9)]),
            'not-nested': register_attrs([notifier(nested_flag=False)]),
            'unknown-notifier-attribute': register_attrs([notifier(extra=nla(42, u32(1)))]),
            'short-mount-id': register_attrs([notifier(extra=nla(A_NOTIFIER_MOUNT_ID, u32(1)))]),
        }
        before = self.settled_stats()
        for name, attrs in cases.items():
            self.record(f'register.error.{name}', self.one_shot(CMD_REGISTER, attrs))
        self.record('register.error.nothing-left', {'before': before, 'after': self.settled_stats()})

    def permissions(self):
        u = self.usip
        with u.socket() as root_sock:
            root_id = u.register_ok(root_sock, [notifier()])

            def nobody(chan):
                with u.socket() as s, u.socket() as s2:
                    result = {'other_uid': u.unregister(s, root_id).summary()}
                    mine = u.register_ok(s, [notifier(TYPE_MTAB, UMOUNT, NOTIFY, cmd=5)])
                    result['mine'] = mine
                    result['dump'] = [e.get('id') for e in u.dump(s2)]
                    result['same_uid_other_socket'] = u.unregister(s2, mine).summary()
                    result['dump_after'] = [e.get('id') for e in u.dump(s2)]
                    result['kept'] = u.register_ok(s, [notifier(TYPE_MTAB, MOUNT, NOTIFY, cmd=6)])
                    result['pid'] = os.getpid()
                    chan.send(result)
                    chan.recv()  # the parent is done with our listener

            child = Child(nobody, uid=NOBODY)
            try:
                result = child.recv()
                kept = result['kept']
                root_view = u.dump(self.ctl)
                self.record('unregister.other-uid', result['other_uid'])
                self.record('unregister.same-uid', {'reply': result['same_uid_other_socket'], 'id': result['mine'],
                                                    'dump_after': result['dump_after']})
                self.record('get.unprivileged', {'ids': result['dump'], 'own': [result['mine'], ],
                                                 'root_id': root_id})
                self.record('get.admin', {'ids': [e.get('id') for e in root_view], 'root_id': root_id,
                                          'nobody_id': kept, 'nobody_entry': listed(root_view, kept),
                                          'nobody_pid': result['pid']})
                self.record('unregister.by-admin', {'reply': u.unregister(self.ctl, kept).summary(),
                                                    'ids_after': [e.get('id') for e in u.dump(self.ctl)],
                                                    'id': kept})
                child.send('done')
            finally:
                child.wait()
            u.unregister(root_sock, root_id)

    # -- 2: lifetime
    def lifetime(self):
        u = self.usip

        def holder(chan):
            with u.socket() as s:
                chan.send({'id': u.register_ok(s, [notifier()]), 'pid': os.getpid(), 'port': s.port})
                chan.recv(timeout=None)

        child = Child(holder)
        try:
            info = child.recv()
            entry = listed(u.dump(self.ctl), info['id'])
            child.kill(signal.SIGKILL)
        finally:
            status = child.wait()
        gone, tries = poll(lambda: listed(u.dump(self.ctl), info['id']) is None)
        self.record('lifetime.sigkill', {'id': info['id'], 'pid': info['pid'], 'entry_before': entry,
                                         'killed_by': os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
                                         'gone': gone, 'dumps_until_gone': tries})

        s = u.socket()
        lid = u.register_ok(s, [notifier()])
        before = listed(u.dump(self.ctl), lid) is not None
        s.close()
        gone, tries = poll(lambda: listed(u.dump(self.ctl), lid) is None)
        self.record('lifetime.close', {'id': lid, 'listed_before': before, 'gone': gone, 'dumps_until_gone': tries})

        # A socket bound to the port id of a closed one: it must keep its own listener.
        port = 0x5a000000 | (os.getpid() & 0xffff)
        first = u.socket(port=port)
        first_port = first.port
        old = u.register_ok(first, [notifier(cmd=1)])
        first.close()
        with u.socket(port=port) as second:
            new = u.register_ok(second, [notifier(cmd=2)])
            posted = u.inject_ok(self.ctl, type_=TYPE_MTAB, action=MOUNT, path='/port-reuse')
            event = second.next_event(what='the event of the listener on the reused port')
            old_gone, _ = poll(lambda: listed(u.dump(self.ctl), old) is None)
            # Whatever cleans up after the first socket has run by now; the new listener must be there.
            time.sleep(0.2)
            entries = u.dump(self.ctl)
            self.record('lifetime.port-reuse', {
                'port': port, 'first_port': first_port, 'second_port': second.port, 'old': old, 'new': new,
                'old_gone': old_gone, 'new_entry': listed(entries, new), 'event': event, 'posted_seq': posted.get('seq'),
            })

    # -- 3: scope
    def scope_mount_namespaces(self):
        u = self.usip
        with u.socket() as g, u.socket() as init:
            global_reply = u.register(g, [notifier(cmd=0x61)], flags=GLOBAL).summary(LISTENER_SCHEMA)
            self.record('scope.global.reply', {'reply': global_reply, 'mnt_ns': self.init_mnt_ns})
            init_id = u.register_ok(init, [notifier(cmd=0x62)])

            def other_mntns(chan):
                with u.socket() as s, u.socket() as c:
                    reply = u.register(s, [notifier(cmd=0x63)]).summary(LISTENER_SCHEMA)
                    chan.send({'reply': reply, 'mnt_ns': mnt_ns_ino(), 'pid': os.getpid()})
                    chan.recv()  # the parent has injected in the initial namespace
                    posted = u.inject_ok(c, type_=TYPE_MTAB, action=MOUNT, path='/in-child')
                    first = s.next_event(what='the event injected in the listener\'s own namespace')
                    chan.send({'first': first, 'posted': posted})
                    chan.recv()

            child = Child(other_mntns, unshare_flags=CLONE_NEWNS)
            try:
                ready = child.recv()
                self.record('scope.mntns.reply', {'reply': ready['reply'], 'child_mnt_ns': ready['mnt_ns'],
                                                  'init_mnt_ns': self.init_mnt_ns})
                in_init = u.inject_ok(self.ctl, type_=TYPE_MTAB, action=MOUNT, path='/in-init')
                child.send('go')
                got = child.recv()
                self.record('scope.mntns.events', {'first': got['first'], 'in_init_seq': in_init.get('seq'),
                                                   'in_child_seq': got['posted'].get('seq'),
                                                   'child_mnt_ns': ready['mnt_ns'], 'child_pid': ready['pid']})
                child.send('done')
            finally:
                child.wait()
            last = u.inject_ok(self.ctl, type_=TYPE_MTAB, action=MOUNT, path='/in-init-2')
            init_events = init.events_until(last['seq'], what='the init-namespace listener\'s events')
            global_events = g.events_until(last['seq'], what='the global listener\'s events')
            pick = ('path', 'mnt_ns', 'listener_id', 'cmd', 'seq')
            self.record('scope.mntns.init-listener', {'events': [{k: e.get(k) for k in pick} for e in init_events],
                                                      'id': init_id, 'init_mnt_ns': self.init_mnt_ns})
            self.record('scope.global.events', {'events': [{k: e.get(k) for k in pick} for e in global_events],
                                                'id': global_reply.get('attrs', {}).get('id'),
                                                'init_mnt_ns': self.init_mnt_ns,
                                                'child_mnt_ns': ready['mnt_ns']})

        self.record('scope.global.unprivileged', in_child(
            lambda: one_shot(self.family, CMD_REGISTER, register_attrs([notifier()], flags=GLOBAL)), uid=NOBODY))
        self.record('scope.local.unprivileged', in_child(
            lambda: one_shot(self.family, CMD_REGISTER, register_attrs([notifier()])), uid=NOBODY))

    def scope_network_namespaces(self):
        u = self.usip
        mtab = self.groups.get('mtab')
        if mtab is None:
            raise RuntimeError(f'no mtab multicast group: {self.groups}')
        pick = ('path', 'listener_id', 'cmd', 'seq', 'mnt_ns', 'genl_cmd')
        with u.socket() as sub, u.socket() as init:
            sub.join(mtab)
            init_id = u.register_ok(init, [notifier()])

            # A child in a new network and mount namespace: its events reach only its listener.
            def isolated(chan):
                family, groups = resolve_family()
                v = Usip(family)
                with v.socket() as s, v.socket() as child_sub, v.socket() as c:
                    child_sub.join(groups['mtab'])
                    lid = v.register_ok(s, [notifier(cmd=0x71)])
                    chan.send({'id': lid, 'net_ns': net_ns_ino(), 'family': family})
                    chan.recv()
                    posted = v.inject_ok(c, type_=TYPE_MTAB, action=MOUNT, path='/netns-only')
                    chan.send({'posted': posted, 'event': s.next_event(what='the unicast event in the new netns')})
                    chan.recv()
                    posted2 = v.inject_ok(c, type_=TYPE_MTAB, action=MOUNT, path='/netns-only-2')
                    event2 = s.next_event(what='the second unicast event')
                    # Both events were delivered: a copy would have come with each, before the second.
                    chan.send({'posted': posted2, 'event': event2, 'copies': child_sub.drain(),
                               'dump': [e.get('id') for e in v.dump(c)],
                               'unregister_foreign': v.unregister(c, init_id).summary()})
                    chan.recv()

            child = Child(isolated, unshare_flags=CLONE_NEWNET | CLONE_NEWNS)
            try:
                ready = child.recv()
                child.send('inject')
                own = child.recv()
                init_posted = u.inject_ok(self.ctl, type_=TYPE_MTAB, action=MOUNT, path='/init-1')
                init_event = init.next_event(what='the init listener\'s event')
                init_copy = sub.next_event(what='the init subscriber\'s copy')
                child.send('again')
                later = child.recv()
                child.send('done')
            finally:
                child.wait()
            self.record('netns.isolated', {
                'child_id': ready['id'], 'child_net_ns': ready['net_ns'], 'init_net_ns': net_ns_ino(),
                'family_in_child': ready['family'], 'family': self.family,
                'event': {k: own['event'].get(k) for k in pick}, 'posted_seq': own['posted'].get('seq'),
                'later_event': {k: later['event'].get(k) for k in pick}, 'later_posted_seq': later['posted'].get('seq'),
                'child_copies': [{k: e.get(k) for k in pick} for e in later['copies']],
            })
            self.record('netns.init-side', {
                'init_id': init_id, 'init_posted_seq': init_posted.get('seq'),
                'event': {k: init_event.get(k) for k in pick}, 'first_copy': {k: init_copy.get(k) for k in pick},
            })
            self.record('netns.dump-isolated', {'ids': later['dump'], 'child_id': ready['id'], 'init_id': init_id})
            self.record('netns.unregister-foreign', later['unregister_foreign'])

            # A child in a new network namespace only: same mount namespace, so an event of the
            # initial mount namespace reaches listeners in both network namespaces, and each
            # network namespace's group gets one copy.
            def same_mntns(chan):
                family, groups = resolve_family()
                v = Usip(family)
                with v.socket() as s, v.socket() as child_sub:
                    child_sub.join(groups['mtab'])
                    lid = v.register_ok(s, [notifier(cmd=0x72)])
                    chan.send({'id': lid})
                    seq = chan.recv()
                    events = s.events_until(seq, what='the other netns listener\'s events')
                    chan.send({'events': events, 'copies': child_sub.drain()})

            child = Child(same_mntns, unshare_flags=CLONE_NEWNET)
            try:
                ready = child.recv()
                shared = u.inject_ok(self.ctl, type_=TYPE_MTAB, action=MOUNT, path='/shared')
                last = u.inject_ok(self.ctl, type_=TYPE_MTAB, action=MOUNT, path='/shared-2')
                child.send(last['seq'])
                theirs = child.recv()
            finally:
                child.wait()
            ours = init.events_until(last['seq'], what='the init listener\'s events')
            copies = sub.events_until(last['seq'], what='the init subscriber\'s copies')
            self.record('netns.same-mntns', {
                'child_id': ready['id'], 'init_id': init_id, 'seqs': [shared.get('seq'), last.get('seq')],
                'child_events': [{k: e.get(k) for k in pick} for e in theirs['events']],
                'child_copies': [{k: e.get(k) for k in pick} for e in theirs['copies']],
                'init_events': [{k: e.get(k) for k in pick} for e in ours],
                'init_copies': [{k: e.get(k) for k in pick} for e in copies],
            })

    # -- 4: delivery
    def delivery(self):
        u = self.usip
        sentinel = notifier(TYPE_MTAB, REMOUNT, NOTIFY, cmd=99)
        specs = {
            'mount': [notifier(TYPE_MTAB, MOUNT, NOTIFY, cmd=11), sentinel],
            'umount': [notifier(TYPE_MTAB, UMOUNT, NOTIFY, cmd=12), sentinel],
            'prefix_and_id': [notifier(TYPE_MTAB, MOUNT, NOTIFY, cmd=13, path_prefix='/mnt/data', mount_id=42),
                              sentinel],
            'partial_component': [notifier(TYPE_MTAB, MOUNT, NOTIFY, cmd=14, path_prefix='/mnt/dat'), sentinel],
            'other_mount_id': [notifier(TYPE_MTAB, MOUNT, NOTIFY, cmd=15, mount_id=43), sentinel],
            'exact_path': [notifier(TYPE_MTAB, MOUNT, NOTIFY, cmd=16, path_prefix='/mnt/data/x'), sentinel],
            'enospc': [notifier(TYPE_STORAGE, ENOSPC, NOTIFY, cmd=21), sentinel],
            'kern_log_only': [notifier(TYPE_MTAB, MOVE, KERN_LOG, cmd=31), sentinel],
        }
        socks = {name: u.socket() for name in specs}
        sub = u.socket()
        kmsg = None
        try:
            sub.join(self.groups['mtab'])
            sub.join(self.groups['storage'])
            ids = {name: u.register_ok(socks[name], n) for name, n in specs.items()}
            kmsg = os.open('/dev/kmsg', os.O_RDONLY | os.O_NONBLOCK)
            os.lseek(kmsg, 0, os.SEEK_END)
            t0 = time.time_ns()
            mount = u.inject_ok(self.ctl, type_=TYPE_MTAB, action=MOUNT, mount_id=42, parent_id=7, path='/mnt/data/x',
                                fs_type='ext4', source='/dev/vdz', dev=0x800001)
            enospc = u.inject_ok(self.ctl, type_=TYPE_STORAGE, action=ENOSPC, mount_id=42, path='/mnt/data',
                                 fs_type='ext4', source='/dev/vdz', dev=0x800001, count=3)
            move = u.inject_ok(self.ctl, type_=TYPE_MTAB, action=MOVE, mount_id=50, path='/mnt/moved')
            last = u.inject_ok(self.ctl, type_=TYPE_MTAB, action=REMOUNT, path='/')
            t1 = time.time_ns()
            received = {name: socks[name].events_until(last['seq'], what=f'the events of listener {name}')
                        for name in specs}
            copies = sub.events_until(last['seq'], what='the passive subscriber\'s copies')
            log_lines = []
            while True:
                try:
                    record = os.read(kmsg, 8192).decode(errors='replace')
                except BlockingIOError:
                    break
                message = record.split(';', 1)[-1].strip()
                if 'usip' in message:
                    log_lines.append(message)
            seqs = {'mount': mount.get('seq'), 'enospc': enospc.get('seq'), 'move': move.get('seq'),
                    'sentinel': last.get('seq')}
            brief = ('seq', 'genl_cmd', 'type', 'action', 'cmd', 'listener_id')
            self.record('delivery.received', {
                'ids': ids, 'seqs': seqs,
                'received': {name: [{k: e.get(k) for k in brief} for e in evs] for name, evs in received.items()},
            })
            first = received['mount'][0]
            self.record('delivery.mtab-event', {
                'event': first, 'id': ids['mount'], 'seq': seqs['mount'], 'pid': os.getpid(), 'uid': os.geteuid(),
                'mnt_ns': self.init_mnt_ns, 'timestamp_within': t0 <= first.get('timestamp', -1) <= t1,
            })
            storage = received['enospc'][0]
            self.record('delivery.storage-event', {
                'event': storage, 'id': ids['enospc'], 'seq': seqs['enospc'], 'pid': os.getpid(),
                'mnt_ns': self.init_mnt_ns, 'timestamp_within': t0 <= storage.get('timestamp', -1) <= t1,
            })
            self.record('delivery.multicast', {
                'seqs': seqs,
                'copies': [{'seq': c.get('seq'), 'genl_cmd': c.get('genl_cmd'), 'path': c.get('path'),
                            'has_listener_id': 'listener_id' in c, 'has_cmd': 'cmd' in c, 'mnt_ns': c.get('mnt_ns'),
                            'pid': c.get('pid'), 'count': c.get('count')} for c in copies],
                'pid': os.getpid(), 'mnt_ns': self.init_mnt_ns,
            })
            self.record('delivery.kern-log', {'lines': log_lines, 'id': ids['kern_log_only']})
            entries = u.dump(self.ctl)
            self.record('delivery.counters', {
                name: {'delivered': (listed(entries, ids[name]) or {}).get('delivered'),
                       'missed': (listed(entries, ids[name]) or {}).get('missed'),
                       'received': len(received[name])} for name in specs})
        finally:
            if kmsg is not None:
                os.close(kmsg)
            for s in socks.values():
                s.close()
            sub.close()

        def join_unprivileged():
            out = {}
            for name in ('mtab', 'storage'):
                with Genl(self.family) as s:
                    try:
                        s.join(self.groups[name])
                        out[name] = None
                    except OSError as e:
                        out[name] = errname(e.errno)
            return out

        self.record('delivery.unprivileged-join', in_child(join_unprivileged, uid=NOBODY))

    # -- 5: inject
    def inject_checks(self):
        self.record('inject.unprivileged', in_child(
            lambda: one_shot(self.family, CMD_INJECT, event_attrs(path='/x')), uid=NOBODY))
        self.record('inject.action-of-other-type', self.one_shot(CMD_INJECT, event_attrs(TYPE_MTAB, ENOSPC)))
        self.record('inject.missing-action', self.one_shot(CMD_INJECT, event_attrs(omit=('action',))))
        self.record('inject.repeat-too-large', self.one_shot(CMD_INJECT, event_attrs(repeat=65537)))
        with self.usip.socket() as s:
            lid = self.usip.register_ok(s, [notifier(TYPE_MTAB, UMOUNT, NOTIFY, cmd=3)])
            reply = self.usip.inject(self.ctl, type_=TYPE_MTAB, action=UMOUNT, repeat=3).summary(EVENT_SCHEMA)
            self.record('inject.reply', reply)
            last = reply.get('attrs', {}).get('seq')
            events = s.events_until(last, what='the three injected events') if reply['errno'] == 0 else []
            self.record('inject.repeat', {'seqs': [e.get('seq') for e in events], 'id': lid,
                                          'ids': [e.get('listener_id') for e in events],
                                          'stats': self.usip.stats(self.ctl)})

    # -- 6: bounds
    def bounds_listeners(self):
        u = self.usip
        write_param('max_listeners_per_user', 2)
        try:
            def three():
                with u.socket() as s:
                    return [u.register(s, [notifier()]).summary(LISTENER_SCHEMA) for _ in range(3)]
            self.record('bounds.max-listeners', {'replies': in_child(three, uid=NOBODY),
                                                 'param': read_param('max_listeners_per_user')})
        finally:
            write_param('max_listeners_per_user', 64)

    def bounds_notifiers(self):
        with self.usip.socket() as s:
            self.record('bounds.max-notifiers', {
                'limit': read_param('max_notifiers_per_listener'),
                'at_limit': self.usip.register(s, [notifier(cmd=i) for i in range(32)]).summary(),
                'over_limit': self.usip.register(s, [notifier(cmd=i) for i in range(33)]).summary(),
            })
        write_param('max_notifiers_per_listener', 3)
        try:
            with self.usip.socket() as s:
                self.record('bounds.max-notifiers-param', {
                    'at_limit': self.usip.register(s, [notifier(cmd=i) for i in range(3)]).summary(),
                    'over_limit': self.usip.register(s, [notifier(cmd=i) for i in range(4)]).summary(),
                })
        finally:
            write_param('max_notifiers_per_listener', 32)

    def settled_stats(self, sock=None):
        """Stats once nothing is queued and no listener is left: objects may be freed after an RCU
        grace period, so they get a few seconds to reach 0."""
        sock = self.ctl if sock is None else sock

        def settled():
            st = self.usip.stats(sock)
            return st.get('queued') == 0 and (st.get('listeners') or st.get('objects') == 0)

        poll(settled, timeout=5)
        return self.usip.stats(sock)

    def wait_queue_empty(self):
        empty, _ = poll(lambda: self.usip.stats(self.ctl).get('queued') == 0, timeout=30)
        if not empty:
            raise RuntimeError(f'the event queue did not drain: {self.usip.stats(self.ctl)}')

    def burst(self, name, listener_sock, lid, repeat):
        """Posts a burst and a sentinel after it; returns what the listener saw and the counters."""
        u = self.usip
        before = u.stats(self.ctl)
        reply = u.inject(self.ctl, type_=TYPE_MTAB, action=MOUNT, path='/burst', repeat=repeat).summary(EVENT_SCHEMA)
        if reply['errno']:
            raise RuntimeError(f'{name}: inject with repeat={repeat} failed: {reply}')
        posted = reply['attrs']
        self.wait_queue_empty()
        # The worker sends missed messages right after it finds the queue empty: let it.
        time.sleep(0.5)
        early = listener_sock.drain()
        sentinel_reply = u.inject_ok(self.ctl, type_=TYPE_MTAB, action=MOUNT, path='/sentinel')
        messages = early + listener_sock.events_until(sentinel_reply['seq'], what=f'{name}: the sentinel event')
        self.wait_queue_empty()
        after = u.stats(self.ctl)
        first_seq = posted['seq'] - repeat + 1
        previous = first_seq - 1
        # What each message reports lost (an event's missed, or a missed message sent once the
        # queue drained), against the seq numbers skipped before it; and, summed, against every
        # seq skipped so far (a report may also count drops of later events that happened while
        # an earlier one waited in the queue, but never fewer than the ones before it).
        events = [m for m in messages if m['genl_cmd'] != CMD_MISSED]
        notices = [m for m in messages if m['genl_cmd'] == CMD_MISSED]
        mismatches, underreports = [], []
        lost_so_far = reported_so_far = noticed = 0
        for m in messages:
            reported_so_far += m.get('missed', 0)
            if m['genl_cmd'] == CMD_MISSED:
                noticed += m.get('missed', 0)
                continue
            gap = m.get('seq', 0) - previous - 1
            lost_so_far += gap
            if m.get('missed', 0) + noticed != gap and len(mismatches) < 10:
                mismatches.append({'seq': m.get('seq'), 'missed': m.get('missed'), 'noticed': noticed, 'gap': gap})
            if reported_so_far < lost_so_far and len(underreports) < 10:
                underreports.append({'seq': m.get('seq'), 'missed_so_far': reported_so_far, 'lost_so_far': lost_so_far})
            previous = m.get('seq', previous)
            noticed = 0
        foreign = [m.get('listener_id') for m in messages if m.get('listener_id') != lid][:5]
        entry = listed(u.dump(self.ctl), lid) or {}
        return {
            'repeat': repeat, 'reply': posted, 'sentinel_seq': sentinel_reply['seq'],
            'received': len(events), 'sum_missed': sum(m.get('missed', 0) for m in messages),
            'max_missed': max((m.get('missed', 0) for m in messages), default=0),
            'notices': [{'missed': n.get('missed'), 'listener_id': n.get('listener_id'),
                         'unknown_attributes': n.get('unknown_attributes')} for n in notices],
            'sentinel_missed': events[-1].get('missed'),
            'last_seq': events[-1].get('seq'), 'mismatches': mismatches, 'underreports': underreports, 'foreign_listener_ids': foreign,
            'enobufs': listener_sock.enobufs,
            'dump': {'delivered': entry.get('delivered'), 'missed': entry.get('missed')},
            'stats_before': before, 'stats_after': after,
        }

    def bounds_queue(self):
        u = self.usip
        write_param('event_queue_len', 4)
        try:
            limit = u.stats(self.ctl).get('queue_limit')
            # A large receive buffer: the queue, not the socket, is what drops here.
            with u.socket(rcvbuf_force=64 << 20) as s:
                lid = u.register_ok(s, [notifier()])
                result = self.burst('queue', s, lid, 2000)
            result['queue_limit'] = limit
            self.record('bounds.queue', result)
        finally:
            write_param('event_queue_len', 4096)
        self.record('bounds.queue-limit-restored', {'queue_limit': u.stats(self.ctl).get('queue_limit')})

    def bounds_rcvbuf(self):
        u = self.usip
        # The smallest receive buffer the kernel allows: events pile up while nobody reads.
        with u.socket(rcvbuf=1) as s:
            lid = u.register_ok(s, [notifier()])
            rcvbuf = s.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
            result = self.burst('rcvbuf', s, lid, 64)
            result['rcvbuf'] = rcvbuf
            self.record('bounds.rcvbuf', result)

    # -- 7: clean-up and unload
    def cleanup(self):
        self.ctl.close()
        with self.usip.socket() as s:
            self.record('cleanup.stats', {'stats': self.settled_stats(s)})

    def unload_with_listener(self):
        u = self.usip

        def holder(chan):
            with u.socket() as s:
                chan.send({'id': u.register_ok(s, [notifier(), notifier(TYPE_STORAGE, ENOSPC)])})
                chan.recv(timeout=None)
                # The module is gone: the socket must still work as a socket, and close cleanly.
                try:
                    s.next_event(timeout=0.2)
                    after = 'an event'
                except TimeoutError:
                    after = 'nothing'
                chan.send({'after_rmmod': after})

        child = Child(holder)
        try:
            held = child.recv()
            with u.socket() as s:
                stats = u.stats(s)
            rmmod = subprocess.run(['rmmod', 'usip'], capture_output=True, text=True, check=False)
            still = os.path.exists('/sys/module/usip')
            child.send('rmmod done')
            after = child.recv()
        finally:
            status = child.wait()
        self.record('unload.with-listener', {
            'id': held['id'], 'stats_before': stats, 'rmmod_exit': rmmod.returncode, 'rmmod_stderr': rmmod.stderr,
            'still_loaded': still, 'holder_after': after['after_rmmod'],
            'holder_exit': os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1,
        })

    def reload_without_inject(self):
        insmod = subprocess.run(['insmod', self.module_path], capture_output=True, text=True, check=False)
        self.record('reload.insmod', {'exit': insmod.returncode, 'stderr': insmod.stderr,
                                      'allow_inject': read_param('allow_inject') if insmod.returncode == 0 else None})
        if insmod.returncode != 0:
            return
        family, _ = resolve_family()
        self.record('inject.not-allowed', one_shot(family, CMD_INJECT, event_attrs(path='/x')))
        usip = Usip(family)
        with usip.socket() as s:
            lid = usip.register_ok(s, [notifier()])
            self.record('reload.works', {'id': lid, 'stats': usip.stats(s)})
        with usip.socket() as s:
            self.usip = usip
            self.record('reload.clean', {'stats': self.settled_stats(s)})


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--module', required=True, help='the usip.ko that is loaded, to load it again')
    args = parser.parse_args()
    results = os.environ.get('USIP_VM_RESULTS')
    if not results:
        sys.exit('listener_checks.py: $USIP_VM_RESULTS is not set (run it in the usip-vm guest)')
    if not os.path.exists(args.module):
        sys.exit(f'listener_checks.py: --module {args.module}: no such file')
    rec = Recorder(os.path.join(results, 'listener-checks.jsonl'))
    checks = Checks(rec, args.module)
    for name, fn in (
        ('start', checks.start),
        ('registration', checks.registration),
        ('register-errors', checks.register_errors),
        ('permissions', checks.permissions),
        ('lifetime', checks.lifetime),
        ('scope-mount-namespaces', checks.scope_mount_namespaces),
        ('scope-network-namespaces', checks.scope_network_namespaces),
        ('delivery', checks.delivery),
        ('inject', checks.inject_checks),
        ('bounds-listeners', checks.bounds_listeners),
        ('bounds-notifiers', checks.bounds_notifiers),
        ('bounds-queue', checks.bounds_queue),
        ('bounds-rcvbuf', checks.bounds_rcvbuf),
        ('cleanup', checks.cleanup),
        ('unload-with-listener', checks.unload_with_listener),
        ('reload-without-inject', checks.reload_without_inject),
    ):
        rec.section(name, fn)
    rec.write({'check': 'end', 'value': True})


if __name__ == '__main__':
    main()
