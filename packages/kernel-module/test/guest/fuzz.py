#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
#
# A structure-aware fuzz test of the usip generic netlink family. Runs in the
# test VM, as root, with usip.ko loaded (allow_inject=1 to exercise inject).
#
# It learns the protocol from the generated TypeScript tables
# (packages/client/src/generated/usip.ts: operations, attribute sets, checks,
# enums), builds valid requests for every operation and mutates them: wrong
# attribute types and lengths, truncated attributes and headers, nlmsg_len
# lies, oversized strings, missing NULs, garbage and deep nests, NLA_F_NESTED
# missing, unknown attributes and commands, wrong genl versions, dump flags on
# do operations and the reverse, random flags, duplicated attributes, many
# notifiers. Valid registrations, unregistrations, dumps, inject bursts and
# socket closes are mixed in, so listener state is exercised too.
#
# mount-get is fuzzed against the kernel's own view, /proc/self/mountinfo of
# the fuzzer (read at the start; every sender shares its mount namespace and
# root): a do by a mount id from mountinfo must answer with that mount (id,
# parent, device, root, mount point, options, fs type, source, super options
# and optional fields as mountinfo has them); an id that is not there (never
# used, hidden outside the chroot, or a known one with high bits set) gets
# ENOENT; by unique-id, 6.8+ kernels answer for the unique ids a dump
# reported at the start and ENOENT otherwise, older ones EOPNOTSUPP. No id or
# both ids get EINVAL; a dump must list exactly mountinfo's mounts unless it
# is flagged NLM_F_DUMP_INTR, and a dump with attributes gets EINVAL in its
# NLMSG_DONE. The extack texts of these refusals are checked too.
#
# statfs is fuzzed against statfs(2) and the same mountinfo: a do by a known
# mount id, unique id (6.8+) or the path of a mount point answers for that
# mount (identity as mountinfo has it; bsize, frsize, blocks, files, fsid,
# name-max and flags as fstatfs() of the mount point says, every number for
# the fuzzer's own idle tmpfs mounts; or error ETIMEDOUT, with no numbers,
# which a short timeout-ms may bring), an unknown id or a path that does not
# exist ENOENT, none or several selectors EINVAL, timeout-ms outside 1 to
# 60000 ERANGE; a dump lists exactly mountinfo's mounts, a dump with any
# attribute but timeout-ms gets EINVAL in its NLMSG_DONE.
#
# Three processes send: this one (root, initial network namespace), one as
# uid/gid 65534 (killed with SIGKILL now and then and started again) and one
# as root in a new network namespace. Half of the messages are sent as root,
# half as 65534. Every answer must be well-formed netlink; an oracle that
# tracks every listener knows the exact answer to valid and semantically
# invalid requests and the plausible answers to malformed ones. Anything else
# is recorded as a failure, with the seed, the message index and the message.
# So is a taint flag the kernel did not have before a message (W for a WARN,
# D for an oops, ...): the message that made the kernel log a problem.
#
# The oracle knows the module's rules (docs/events.md):
#  - ping: one feature-status per feature of the spec (available, a reason
#    when not), features the mask of the available ones; the event features
#    go arm-failed exactly as inject_arm_failures makes their arming fail, and
#    come back with the next listener that arms them;
#  - stats: CAP_SYS_ADMIN in the initial user namespace gets scope host and
#    every counter, 65534 scope user and only its own (listeners, notifiers,
#    queued, queue-limit = user_queue_len, delivered, dropped = its listeners'
#    missed), checked against the model of its listeners;
#  - a kern-log notifier needs CAP_SYS_ADMIN or CAP_SYSLOG in the initial user
#    namespace: 65534 gets EPERM, named in extack, and nothing is left behind;
#  - inject: seq, queued and dropped from the model of who wants the event
#    (exactly, when the model is sure: queued + dropped = repeat, each seq the
#    next one, nothing queued when a share or the queue is 0); every event
#    delivered carries what was injected (subtree included), the cmd of the
#    first matching notifier, and goes only to the socket that registered its
#    listener; multicast copies arrive only in the initial network namespace.
# The module parameters event_queue_len, user_queue_len, listener_queue_len
# and inject_arm_failures are changed at random while it runs. A registration
# that is refused (EMFILE, EPERM, ...) must not arm anything (it does not use
# up an arm failure).
#
# Scenarios between the fuzz messages:
#  - share checks: with every socket read and the queue empty, one event is
#    injected with random small event_queue_len, user_queue_len and
#    listener_queue_len: the reply, each listener's delivered and missed (from
#    listener-get), the messages each socket got, the multicast copy and
#    stats (host, and 65534's own, which must equal the sums over its
#    listeners) are all known exactly: of each user's listeners that want it,
#    in registration order, the first user_queue_len get it, the others miss
#    it;
#  - arm checks: every listener goes, the hooks disarm, inject_arm_failures=N,
#    then a registration refused for the limit (max_listeners_per_user) or for
#    kern-log must not use up a failure, and each mtab registration after it
#    must leave exactly the features whose arming failed arm-failed in ping;
#  - deferred mount-get dumps: started by one sender on a socket of its own,
#    read later, after other requests, by the same process, or (root's) by a
#    forked reader as 65534 in a chroot or in a new mount namespace, or never
#    read (closed): what is read must still be the starter's mount table. The
#    fuzzer runs in a private mount namespace with 61 more tmpfs mounts (60 of
#    them with mount points of some 1,500 bytes), so a dump spans several of
#    the module's 32 KiB parts and the reader builds some of them itself.
#
# Afterwards, with every fuzz socket closed: ping must answer, stats must
# report no listener, notifier, queued event or object, and the module's slab
# cache (usip_listener; exact with slab_nomerge on the kernel command line;
# events are kmalloc'ed and counted in stats' objects) must be empty. The
# harness then unloads the module and checks the kernel log.
#
# Environment:
#   USIP_FUZZ_SEED      the seed: an integer, or "random" (default 20261125)
#   USIP_FUZZ_MESSAGES  how many fuzz messages to send (default 12000)
#   USIP_FUZZ_DEADLINE  seconds after which the run is killed (default 900)
#   USIP_VM_RESULTS     where fuzz-report.json and fuzz-journal.txt are written
#                       (default /tmp). The journal has one line per datagram,
#                       written before it is sent: index, sender, socket,
#                       operation, case, hex. If the kernel kills the run, its
#                       last line is the message that did it.
#
# Prints a summary; exits 0 when there were no failures, 1 when there were,
# 2 when it could not run (not root, module not loaded, spec unreadable).
#
# Usage: fuzz.py
#        fuzz.py --executor   (internal: serves netlink sockets over stdin/stdout)
import bisect
import ctypes
import errno
import json
import os
import pickle
import random
import re
import signal
import socket
import struct
import subprocess
import sys
import time
import traceback

# The operations that take requests, each fuzzed with valid, semantically invalid and
# malformed messages.
REQUEST_OPS = ('ping', 'listener-register', 'listener-unregister', 'listener-get', 'inject', 'stats',
               'mount-get', 'statfs')
# Operations with a do and a dump: their dump cases are labelled dump...
DO_AND_DUMP_OPS = ('mount-get', 'statfs')

DEFAULT_SEED = 20261125
DEFAULT_MESSAGES = 12000
DEFAULT_DEADLINE_S = 900
# Events validated in full per answer; the rest of a burst only gets a quick look.
EVENTS_CHECKED = 48
NOBODY = 65534

NETLINK_GENERIC = 16
SOL_NETLINK = 270
NETLINK_ADD_MEMBERSHIP = 1
NETLINK_CAP_ACK = 10
NETLINK_EXT_ACK = 11

NLMSG_NOOP, NLMSG_ERROR, NLMSG_DONE, NLMSG_OVERRUN = 1, 2, 3, 4
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK, NLM_F_ECHO = 0x1, 0x2, 0x4, 0x8
NLM_F_DUMP_INTR, NLM_F_DUMP_FILTERED = 0x10, 0x20
NLM_F_ROOT, NLM_F_MATCH = 0x100, 0x200
NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH
NLM_F_CAPPED, NLM_F_ACK_TLVS = 0x100, 0x200
NLMSGERR_ATTR_MSG, NLMSGERR_ATTR_OFFS, NLMSGERR_ATTR_COOKIE = 1, 2, 3
NLMSGERR_ATTR_POLICY, NLMSGERR_ATTR_MISS_TYPE, NLMSGERR_ATTR_MISS_NEST = 4, 5, 6
NLA_F_NESTED, NLA_F_NET_BYTEORDER, NLA_TYPE_MASK = 0x8000, 0x4000, 0x3fff

GENL_ID_CTRL = 0x10
CTRL_CMD_GETFAMILY = 3
CTRL_ATTR_FAMILY_ID, CTRL_ATTR_FAMILY_NAME, CTRL_ATTR_MCAST_GROUPS = 1, 2, 7
CTRL_ATTR_MCAST_GRP_NAME, CTRL_ATTR_MCAST_GRP_ID = 1, 2

NLMSGHDR = struct.Struct('=IHHII')
GENLMSGHDR = struct.Struct('=BBH')
NLAHDR = struct.Struct('=HH')

RECV_BUFFER = 1 << 20
RECV_TIMEOUT_S = 20
FENCE_SEQ_BASE = 0x80000000
# Receive buffers: "active" sockets read their events before each request, sinks never do.
ACTIVE_RCVBUF = 128 << 10
SINK_RCVBUF = 4096

# Error numbers a malformed request may plausibly get: from the netlink and generic
# netlink core (policy checks, unknown commands, do/dump mismatch, unknown family) and
# from the module's own checks (permission, limits, unknown listener).
PLAUSIBLE_ERRORS = frozenset({
    errno.EINVAL, errno.ERANGE, errno.EOPNOTSUPP, errno.EPERM, errno.ENOENT,
    errno.E2BIG, errno.EMFILE, errno.EMSGSIZE,
})
# What a malformed mount-get may get: policy errors, an unknown mount, and (without unique
# ids, 6.1) EOPNOTSUPP. Never EPERM: any user may read their own mount table.
PLAUSIBLE_MOUNT_GET_ERRORS = frozenset({errno.EINVAL, errno.ERANGE, errno.ENOENT})
# The extack texts of mount-get's refusals (substrings).
MOUNT_GET_ONE_ID = 'name the mount by mount-id or by unique-id (one of them)'
MOUNT_GET_NO_SUCH = "no such mount in the caller's mount namespace, under its root"
MOUNT_GET_DUMP_ATTRS = 'a mount-get dump takes no attributes; name one mount in a do request'
# What a malformed statfs may get: policy errors, an unknown mount, a path that does not resolve
# (or, for 65534, may not be walked). Never EPERM.
PLAUSIBLE_STATFS_ERRORS = frozenset({errno.EINVAL, errno.ERANGE, errno.ENOENT, errno.ENOTDIR, errno.ENAMETOOLONG,
                                     errno.ELOOP, errno.EACCES})
STATFS_ONE_SELECTOR = 'name the mount by mount-id, by unique-id or by path (one of them)'
STATFS_NO_SUCH_PATH = 'no such file or directory'
STATFS_DUMP_ATTRS = 'a statfs dump takes only timeout-ms'
# The numbers of a statfs reply, those that do not move while the fuzzer runs, and f_flags' ST_VALID.
STATFS_NUMBERS = ('bsize', 'frsize', 'blocks', 'blocks-free', 'blocks-available', 'files', 'files-free', 'fsid',
                  'name-max', 'flags')
STATFS_STABLE = ('bsize', 'frsize', 'blocks', 'files', 'fsid', 'name-max', 'flags')
ST_VALID = 0x20
# The extack texts of registration refusals (substrings).
REGISTER_GLOBAL_EPERM = 'a global listener needs CAP_SYS_ADMIN in the initial user namespace'
REGISTER_KERN_LOG_EPERM = 'a kern-log notifier needs CAP_SYS_ADMIN or CAP_SYSLOG in the initial user namespace'
REGISTER_EMFILE = 'max_listeners_per_user'
# The fuzzer's private mount namespace gets this many more tmpfs mounts (below one more), with
# mount points of some 1,500 bytes: a mount-get dump then spans several of the module's 32 KiB
# parts (USIP_MOUNT_DUMP_ALLOC), so the reader of a deferred dump builds some of them itself.
EXTRA_MOUNTS = 60
EXTRA_MOUNT_DIR = '/tmp/usip-fuzz-mounts'


def extra_mount_point(i):
    return f'{EXTRA_MOUNT_DIR}/m{i:02d}/' + '/'.join(c * 240 for c in 'abcdef')
CLONE_NEWNS, CLONE_NEWNET = 0x20000, 0x40000000
MS_REC, MS_PRIVATE = 0x4000, 0x40000
# The event features: their hooks are armed while an mtab listener exists, and an arm
# failure (inject_arm_failures) makes them arm-failed until a later listener arms them.
EVENT_FEATURES = ('mount-events', 'remount-events', 'propagation-events', 'setattr-events')
# How often the scenarios run (in fuzz messages, on average).
SHARE_CHECK_EVERY = 220
DEFERRED_DUMP_EVERY = 90
# Module parameters the fuzzer changes at random, and the values it picks (with weights).
PARAM_CHOICES = {
    'event_queue_len': ([0, 1, 8, 64, 1024, 4096], [1, 2, 2, 2, 2, 4]),
    'user_queue_len': ([0, 1, 2, 8, 64, 1024], [1, 2, 2, 2, 2, 4]),
    'listener_queue_len': ([0, 1, 2, 8, 64, 1024], [1, 2, 2, 2, 2, 4]),
}
# Unique mount ids (statmount/listmount's) exist from Linux 6.8 on.
UNIQUE_ID_KERNEL = (6, 8)
# NLMSG_GOODSIZE on x86-64 (4 KiB pages): the most a listener may take in a dump message.
GOODSIZE = 4096 - 320
SIZE_SLACK = 256

# Characters of generated strings. The module writes paths and names to the kernel log
# (kern-log notifiers), and the harness fails a run on log lines with BUG, WARNING:, Oops,
# "hung task" and the like: without upper case letters, spaces and '_' none can appear.
SAFE_CHARS = 'abcdefghijklmnopqrstuvwxyz0123456789/.-+=:@'
SAFE_BYTES = bytes(b for b in range(1, 256) if not (0x41 <= b <= 0x5a or b in (0x20, 0x5f)))
# Tables that map random bytes onto those characters (bytes.translate is fast).
SAFE_CHAR_TABLE = bytes(SAFE_CHARS.encode()[i % len(SAFE_CHARS)] for i in range(256))
SAFE_BYTE_TABLE = bytes(SAFE_BYTES[i % len(SAFE_BYTES)] for i in range(256))

HERE = os.path.dirname(os.path.abspath(__file__))
GENERATED_TS = os.path.normpath(os.path.join(HERE, '../../../client/src/generated/usip.ts'))

# Which actions belong to which event type: the contract (semantics), by spec names.
ACTIONS_OF_TYPE = {
    'mtab': ('mount', 'umount', 'move', 'remount'),
    'storage': ('enospc', 'edquot', 'low-space', 'quota'),
}
# enospc and edquot notifiers hook every system call: an administrator's decision.
REGISTER_SPACE_ERRORS_EPERM = 'enospc and edquot notifiers hook every system call'


# --------------------------------------------------------------------------------------
# The protocol, read from the generated TypeScript tables.
# --------------------------------------------------------------------------------------

class SpecError(Exception):
    pass


class AttrSpec:
    def __init__(self, attr_id, name, key, type_, multi, nested, checks):
        self.id, self.name, self.key, self.type = attr_id, name, key, type_
        self.multi, self.nested, self.checks = multi, nested, checks


class AttrSet:
    def __init__(self, name, attrs):
        self.name = name
        self.attrs = attrs
        self.by_name = {a.name: a for a in attrs}
        self.by_id = {a.id: a for a in attrs}
        self.by_key = {a.key: a for a in attrs}
        self.max_id = max(a.id for a in attrs)


class OpSpec:
    def __init__(self, name, command, attr_set, do, dump, event):
        self.name, self.command, self.attr_set = name, command, attr_set
        self.do, self.dump, self.event = do, dump, event


class Spec:
    """Operations, attribute sets and enums of the family, parsed from usip.ts."""

    def __init__(self, path):
        try:
            with open(path, encoding='utf-8') as f:
                text = f.read()
        except OSError as e:
            raise SpecError(f'cannot read the generated protocol tables {path}: {e}') from e
        self.path = path
        self.family_name = self._const(text, 'FAMILY_NAME', r"'([^']+)'")
        self.family_version = int(self._const(text, 'FAMILY_VERSION', r'(\d+)'))
        self.protocol_version = int(self._const(text, 'PROTOCOL_VERSION', r'(\d+)'))
        self.path_max = int(self._const(text, 'PATH_MAX', r'(\d+)'))
        self.enums = {}
        for m in re.finditer(r"export const (\w+)_NAMES: Readonly<Record<number, \w+>> = \{\n(.*?)\n\};", text, re.S):
            entries = re.findall(r"^\s+(0x[0-9a-fA-F]+|\d+): '([^']+)',$", m.group(2), re.M)
            self.enums[m.group(1).lower().replace('_', '-')] = {name: int(value, 0) for value, name in entries}
        self.masks = {m.group(1).lower().replace('_', '-'): int(m.group(2), 0)
                      for m in re.finditer(r'^export const (\w+)_MASK = (0x[0-9a-fA-F]+|\d+);$', text, re.M)}
        self.sets = {}
        raw_sets = re.findall(
            r"export const \w+_ATTRIBUTE_SET: AttributeSetSpec<\w+> = \{\n  name: '([\w-]+)',\n  attributes: \[\n(.*?)\n  \],\n\};",
            text, re.S)
        const_to_set = {}
        for name, body in raw_sets:
            attrs = []
            for line in body.split('\n'):
                m = re.fullmatch(
                    r"\s+\{ id: (\d+), name: '([\w-]+)', key: '(\w+)', type: '(\w+)', bigEndian: (?:true|false), "
                    r"multi: (true|false)(?:, nested: (\w+)_ATTRIBUTE_SET)?(?:, safeNumber: true)?(?:, checks: \{ (.*?) \})? \},", line)
                if not m:
                    raise SpecError(f'{path}: cannot parse an attribute of set {name}: {line.strip()}')
                checks = {}
                for ck, cv in re.findall(r'(\w+): (-?(?:0x[0-9a-fA-F]+|\d+))n?', m.group(7) or ''):
                    checks[ck] = int(cv, 0)
                attrs.append(AttrSpec(int(m.group(1)), m.group(2), m.group(3), m.group(4), m.group(5) == 'true',
                                      m.group(6), checks))
            self.sets[name] = AttrSet(name, attrs)
            const_to_set[name.upper().replace('-', '_')] = name
        for s in self.sets.values():
            for a in s.attrs:
                if a.nested is not None:
                    if a.nested not in const_to_set:
                        raise SpecError(f'{path}: attribute {s.name}.{a.name} nests an unknown set {a.nested}')
                    a.nested = self.sets[const_to_set[a.nested]]
        self.ops = {}
        for m in re.finditer(r"export const (\w+)_OPERATION = \{\n(.*?)\n\} as const satisfies OperationSpec;", text, re.S):
            body = m.group(2)
            name = re.search(r"^  name: '([\w-]+)',$", body, re.M)
            command = re.search(r'^  command: (\d+),$', body, re.M)
            set_m = re.search(r'^  attributeSet: (\w+)_ATTRIBUTE_SET,$', body, re.M)
            if not name or not command:
                raise SpecError(f'{path}: cannot parse the operation {m.group(1)}')
            msgs = {}
            for kind in ('do', 'dump'):
                km = re.search(rf"^  {kind}: \{{ request: \[(.*?)\], reply: \[(.*?)\] \}},$", body, re.M)
                if km:
                    msgs[kind] = (re.findall(r"'(\w+)'", km.group(1)), re.findall(r"'(\w+)'", km.group(2)))
            event = re.search(r'^  event: \[(.*?)\],$', body, re.M)
            attr_set = self.sets[const_to_set[set_m.group(1)]] if set_m else None

            def names(keys, attr_set=attr_set, op=name.group(1)):
                if attr_set is None:
                    raise SpecError(f'{path}: operation {op} names attributes but has no attribute set')
                try:
                    return [attr_set.by_key[k].name for k in keys]
                except KeyError as e:
                    raise SpecError(f'{path}: operation {op} names an unknown attribute {e}') from e

            do = (names(msgs['do'][0]), names(msgs['do'][1])) if 'do' in msgs else None
            dump = (names(msgs['dump'][0]), names(msgs['dump'][1])) if 'dump' in msgs else None
            ev = names(re.findall(r"'(\w+)'", event.group(1))) if event else None
            op = OpSpec(name.group(1), int(command.group(1)), attr_set, do, dump, ev)
            self.ops[op.name] = op
        self._check()

    @staticmethod
    def _const(text, name, value_re):
        m = re.search(rf'^export const {name} = {value_re};$', text, re.M)
        if not m:
            raise SpecError(f'the generated tables have no constant {name}')
        return m.group(1)

    def _check(self):
        needed_ops = [('ping', 'do'), ('listener-register', 'do'), ('listener-unregister', 'do'),
                      ('listener-get', 'dump'), ('inject', 'do'), ('stats', 'do'), ('mount-get', 'do'),
                      ('mount-get', 'dump'), ('statfs', 'do'), ('statfs', 'dump')]
        for op, kind in needed_ops:
            if op not in self.ops or getattr(self.ops[op], kind) is None:
                raise SpecError(f'{self.path}: no {kind} operation {op}')
        for op in ('mtab-event', 'storage-event', 'missed'):
            if op not in self.ops or self.ops[op].event is None:
                raise SpecError(f'{self.path}: no event {op}')
        for enum in ('event-type', 'action', 'notifier-flags', 'listener-flags', 'scope', 'feature', 'mount-attr',
                     'unavailable-reason', 'stats-scope'):
            if enum not in self.enums:
                raise SpecError(f'{self.path}: no enum {enum}')
        for t, actions in ACTIONS_OF_TYPE.items():
            if t not in self.enums['event-type']:
                raise SpecError(f'{self.path}: event-type has no {t}')
            for a in actions:
                if a not in self.enums['action']:
                    raise SpecError(f'{self.path}: action has no {a}')
        for s in ('ping', 'feature-status', 'notifier', 'listener', 'event', 'stats', 'mount', 'statfs'):
            if s not in self.sets:
                raise SpecError(f'{self.path}: no attribute set {s}')
        if 'mount-table' not in self.enums['feature'] or 'ro' not in self.enums['mount-attr']:
            raise SpecError(f'{self.path}: no feature mount-table or mount-attr ro')
        if 'statfs' not in self.enums['feature']:
            raise SpecError(f'{self.path}: no feature statfs')
        for f in EVENT_FEATURES:
            if f not in self.enums['feature']:
                raise SpecError(f'{self.path}: no feature {f}')
        if 'arm-failed' not in self.enums['unavailable-reason']:
            raise SpecError(f'{self.path}: no unavailable-reason arm-failed')
        if 'subtree' not in self.sets['event'].by_name:
            raise SpecError(f'{self.path}: the event set has no subtree')

    # Convenience lookups.
    def cmd(self, op):
        return self.ops[op].command

    def attr(self, set_name, attr_name):
        return self.sets[set_name].by_name[attr_name].id

    def attr_name(self, set_name, attr_id):
        a = self.sets[set_name].by_id.get(attr_id)
        return a.name if a else None

    def enum(self, enum, name):
        return self.enums[enum][name]


# --------------------------------------------------------------------------------------
# Netlink encoding and decoding.
# --------------------------------------------------------------------------------------

def errname(e):
    """EINVAL for 22; EOPNOTSUPP rather than Python's ENOTSUP for 95."""
    if e == errno.EOPNOTSUPP:
        return 'EOPNOTSUPP'
    return errno.errorcode.get(e, str(e))


def align4(n):
    return (n + 3) & ~3


class A:
    """One attribute of a message being built; mutations change its fields."""
    __slots__ = ('t', 'v', 'kids', 'fl', 'len_lie', 'no_pad')

    def __init__(self, t, v=b'', kids=None, fl=0):
        self.t, self.v, self.kids, self.fl = t, v, kids, fl
        self.len_lie, self.no_pad = None, False

    def body(self):
        return self.v if self.kids is None else b''.join(k.encode() for k in self.kids)

    def encode(self):
        body = self.body()
        length = 4 + len(body) if self.len_lie is None else self.len_lie
        pad = b'' if self.no_pad else b'\0' * (align4(len(body)) - len(body))
        return NLAHDR.pack(length & 0xffff, (self.t | self.fl) & 0xffff) + body + pad

    def copy(self):
        c = A(self.t, self.v, None if self.kids is None else [k.copy() for k in self.kids], self.fl)
        c.len_lie, c.no_pad = self.len_lie, self.no_pad
        return c


def u32(v):
    return struct.pack('=I', v & 0xffffffff)


def u64(v):
    return struct.pack('=Q', v & 0xffffffffffffffff)


def nlmsg(msg_type, flags, seq, payload, pid=0, len_lie=None):
    length = 16 + len(payload) if len_lie is None else len_lie
    return NLMSGHDR.pack(length & 0xffffffff, msg_type & 0xffff, flags & 0xffff, seq, pid) + payload


def genl(cmd, attrs=b'', version=1, reserved=0):
    return GENLMSGHDR.pack(cmd & 0xff, version & 0xff, reserved & 0xffff) + attrs


def split_nlmsgs(data):
    """The netlink messages of a datagram the kernel sent; (messages, problem)."""
    out, off = [], 0
    while off < len(data):
        if len(data) - off < 16:
            return out, f'{len(data) - off} stray bytes after the last message'
        length, msg_type, flags, seq, pid = NLMSGHDR.unpack_from(data, off)
        if length < 16 or off + length > len(data):
            return out, f'nlmsg_len {length} at offset {off} does not fit the {len(data)}-byte datagram'
        out.append((msg_type, flags, seq, pid, bytes(data[off + 16:off + length])))
        off += align4(length)
    return out, None


def parse_attrs(buf):
    """Strictly parses a run of attributes: [(type, flags, payload)], or raises ValueError."""
    out, off = [], 0
    while off < len(buf):
        if len(buf) - off < 4:
            raise ValueError(f'{len(buf) - off} stray bytes after the attributes')
        length, t = NLAHDR.unpack_from(buf, off)
        if length < 4 or off + length > len(buf):
            raise ValueError(f'attribute {t & NLA_TYPE_MASK} has nla_len {length}, {len(buf) - off} bytes left')
        out.append((t & NLA_TYPE_MASK, t & ~NLA_TYPE_MASK & 0xffff, buf[off + 4:off + length]))
        off += align4(length)
    return out


def lenient_attrs(buf):
    """The attributes the kernel's nla_parse would see (last occurrence wins); never raises."""
    out, off = {}, 0
    while len(buf) - off >= 4:
        length, t = NLAHDR.unpack_from(buf, off)
        if length < 4 or off + length > len(buf):
            break
        out[t & NLA_TYPE_MASK] = buf[off + 4:off + length]
        off += align4(length)
    return out


def decode(attr_set, buf, where):
    """Decodes a kernel message's attributes against the set: (values by name, problems)."""
    values, problems = {}, []
    try:
        attrs = parse_attrs(buf)
    except ValueError as e:
        return values, [f'{where}: {e}']
    for t, fl, payload in attrs:
        spec = attr_set.by_id.get(t)
        if spec is None:
            problems.append(f'{where}: unknown attribute {t} in set {attr_set.name}')
            continue
        if spec.type == 'pad':
            continue
        name = f'{where}.{spec.name}'
        value = None
        if spec.type in ('u32', 'u64', 'u16', 'u8', 's32', 's64'):
            size = {'u8': 1, 'u16': 2, 'u32': 4, 's32': 4, 'u64': 8, 's64': 8}[spec.type]
            if len(payload) != size:
                problems.append(f'{name}: {spec.type} of {len(payload)} bytes')
                continue
            value = int.from_bytes(payload, sys.byteorder, signed=spec.type.startswith('s'))
            if 'min' in spec.checks and value < spec.checks['min']:
                problems.append(f'{name}: {value} is below min {spec.checks["min"]}')
            if 'max' in spec.checks and value > spec.checks['max']:
                problems.append(f'{name}: {value} is above max {spec.checks["max"]}')
            if 'flagsMask' in spec.checks and value & ~spec.checks['flagsMask']:
                problems.append(f'{name}: {value:#x} has bits outside {spec.checks["flagsMask"]:#x}')
        elif spec.type == 'string':
            if not payload.endswith(b'\0') or b'\0' in payload[:-1]:
                problems.append(f'{name}: string not NUL-terminated or with an inner NUL: {payload[:40]!r}')
                continue
            value = payload[:-1].decode('utf-8', 'surrogateescape')
            if 'maxLen' in spec.checks and len(payload) - 1 > spec.checks['maxLen']:
                problems.append(f'{name}: {len(payload) - 1} bytes, max-len {spec.checks["maxLen"]}')
        elif spec.type == 'nest':
            if not fl & NLA_F_NESTED:
                problems.append(f'{name}: nest without NLA_F_NESTED')
            value, sub = decode(spec.nested, payload, name)
            problems.extend(sub)
        elif spec.type == 'flag':
            value = True
        else:
            value = payload
        if spec.multi:
            values.setdefault(spec.name, []).append(value)
        elif spec.name in values:
            problems.append(f'{name}: appears twice')
        else:
            values[spec.name] = value
    return values, problems


def parse_error(payload, request):
    """An NLMSG_ERROR payload: (errno, extack dict, problems); errno 0 is an ack."""
    problems = []
    if len(payload) < 20:
        return None, {}, [f'NLMSG_ERROR of {len(payload)} bytes']
    (err,) = struct.unpack_from('=i', payload, 0)
    echoed = payload[4:20]
    if request is not None and echoed != request[:16]:
        problems.append('the error does not echo the request header')
    return err, {}, problems


def parse_ack_tlvs(flags, payload, request_len):
    """The extack TLVs of an NLMSG_ERROR: (dict, problems)."""
    problems, ext = [], {}
    (echo_len,) = struct.unpack_from('=I', payload, 4)
    start = 4 + (16 if flags & NLM_F_CAPPED else echo_len)
    if not flags & NLM_F_ACK_TLVS:
        return ext, problems
    if start > len(payload):
        return ext, [f'error echo of {echo_len} bytes exceeds the {len(payload)}-byte message']
    try:
        tlvs = parse_attrs(payload[align4(start) if not flags & NLM_F_CAPPED else start:])
    except ValueError as e:
        return ext, [f'extack TLVs: {e}']
    for t, _, v in tlvs:
        if t == NLMSGERR_ATTR_MSG:
            if not v.endswith(b'\0'):
                problems.append('extack message not NUL-terminated')
            ext['msg'] = v.rstrip(b'\0').decode('utf-8', 'replace')
        elif t == NLMSGERR_ATTR_OFFS:
            if len(v) != 4:
                problems.append(f'extack offset of {len(v)} bytes')
            else:
                (ext['offs'],) = struct.unpack('=I', v)
                if request_len is not None and not 16 <= ext['offs'] < request_len:
                    problems.append(f'extack offset {ext["offs"]} lies outside the {request_len}-byte request')
        elif t == NLMSGERR_ATTR_MISS_TYPE:
            ext['miss_type'] = int.from_bytes(v[:4], sys.byteorder) if len(v) >= 4 else None
        elif t == NLMSGERR_ATTR_MISS_NEST:
            ext['miss_nest'] = int.from_bytes(v[:4], sys.byteorder) if len(v) >= 4 else None
        elif t in (NLMSGERR_ATTR_COOKIE, NLMSGERR_ATTR_POLICY):
            pass
        else:
            problems.append(f'unknown extack TLV {t}')
    return ext, problems


# --------------------------------------------------------------------------------------
# Executors: the processes that own netlink sockets and send on them.
# --------------------------------------------------------------------------------------

class Executor:
    """Owns netlink sockets; sends datagrams and collects every answer until it is done."""

    def __init__(self):
        self.socks = {}
        self.next_handle = 1
        self.family = None
        self.ping_cmd = None
        self.fence_seq = FENCE_SEQ_BASE
        self.buf = bytearray(RECV_BUFFER)

    def hello(self, family, ping_cmd):
        self.family, self.ping_cmd = family, ping_cmd
        return {'pid': os.getpid(), 'uid': os.geteuid(), 'netns': os.stat('/proc/self/ns/net').st_ino}

    def open(self, rcvbuf, ext_ack, cap_ack):
        s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC)
        s.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1 if ext_ack else 0)
        s.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1 if cap_ack else 0)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        try:
            s.setsockopt(socket.SOL_SOCKET, 33, rcvbuf)  # SO_RCVBUFFORCE (root)
        except OSError:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.bind((0, 0))
        # Blocking with a receive timeout (not settimeout(), which would make MSG_DONTWAIT wait).
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack('=qq', RECV_TIMEOUT_S, 0))
        handle = self.next_handle
        self.next_handle += 1
        self.socks[handle] = s
        return handle, s.getsockname()[0]

    def close(self, handle):
        self.socks.pop(handle).close()

    def join(self, handle, group):
        try:
            self.socks[handle].setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, group)
            return 0
        except OSError as e:
            return e.errno

    def _recv_into(self, s, flags, out):
        n, _, msg_flags, _ = s.recvmsg_into([self.buf], 0, flags)
        if msg_flags & socket.MSG_TRUNC:
            out['truncated'] += 1
        out['datagrams'].append(bytes(self.buf[:n]))

    def _drain(self, s, out):
        while True:
            try:
                self._recv_into(s, socket.MSG_DONTWAIT, out)
            except BlockingIOError:
                return
            except OSError as e:
                if e.errno != errno.ENOBUFS:
                    raise
                out['enobufs'] += 1

    def _fence(self, s, out):
        self.fence_seq += 1
        s.send(nlmsg(self.family, NLM_F_REQUEST | NLM_F_ACK, self.fence_seq, genl(self.ping_cmd)))
        out['fences'].append(self.fence_seq)
        return self.fence_seq

    def transact(self, handle, datagram, ack_seqs, dump_seqs, fence, drain_first):
        """Sends one datagram and reads until every awaited answer is in.

        ack_seqs: requests whose answer ends with an NLMSG_ERROR (unless lost to ENOBUFS);
        dump_seqs: dumps, which end with NLMSG_DONE or NLMSG_ERROR and are never lost;
        fence: also send a ping after the datagram and wait for its ack, which tells that
        everything before it was answered (replies are queued in order).
        """
        s = self.socks[handle]
        out = {'datagrams': [], 'enobufs': 0, 'truncated': 0, 'fences': [], 'send_error': 0,
               'timeout': False, 'pre': 0}
        if drain_first:
            self._drain(s, out)
            out['pre'] = len(out['datagrams'])
        try:
            if datagram is not None:  # None: the rest of a dump sent earlier (send_only)
                s.send(datagram)
        except OSError as e:
            out['send_error'] = e.errno
            return out
        pending_ack, pending_dump = set(ack_seqs), set(dump_seqs)
        fence_seq = self._fence(s, out) if fence else None
        seen = len(out['datagrams'])
        seqs_seen = set()
        drained_after_fence = False
        while pending_ack or pending_dump or fence_seq is not None:
            # Every datagram read since the last look, the drained ones included.
            for d in out['datagrams'][seen:]:
                msgs, _ = split_nlmsgs(d)
                for msg_type, _, seq, _, payload in msgs:
                    seqs_seen.add(seq)
                    if msg_type == NLMSG_ERROR:
                        pending_ack.discard(seq)
                        # A dump that could not put its first message in a full receive
                        # buffer answers ENOBUFS, but runs on: its NLMSG_DONE still comes.
                        if payload[:4] != struct.pack('=i', -errno.ENOBUFS):
                            pending_dump.discard(seq)
                        if seq == fence_seq:
                            fence_seq = None
                    elif msg_type == NLMSG_DONE:
                        pending_dump.discard(seq)
            seen = len(out['datagrams'])
            if out['enobufs'] and fence_seq is None and pending_dump - seqs_seen:
                # A dump of which nothing came may have lost its error answer (EBUSY, or
                # ENOBUFS at its start, when it runs on). Reading the fence's answer
                # emptied the queue, which makes a running dump queue its next part at
                # once: one more look tells.
                if not drained_after_fence:
                    drained_after_fence = True
                    self._drain(s, out)
                    continue
                pending_dump &= seqs_seen
            if not (pending_ack or pending_dump or fence_seq is not None):
                break
            try:
                self._recv_into(s, 0, out)
            except BlockingIOError:  # SO_RCVTIMEO expired
                out['timeout'] = (f'still waiting for acks {sorted(pending_ack)}, dumps {sorted(pending_dump)}, '
                                  f'fence {fence_seq}; {out["enobufs"]} ENOBUFS, {len(out["datagrams"])} datagrams read')
                break
            except OSError as e:
                if e.errno != errno.ENOBUFS:
                    raise
                # Answers may have been dropped: read what is queued (that ends the
                # congestion), then a new fence tells when the rest has come.
                out['enobufs'] += 1
                self._drain(s, out)
                pending_ack = set()
                fence_seq = self._fence(s, out)
                drained_after_fence = False
        return out

    def send_only(self, handle, datagram):
        """Sends a request and reads nothing: a dump whose answer is read later (transact with
        datagram None), maybe by another process."""
        try:
            self.socks[handle].send(datagram)
            return 0
        except OSError as e:
            return e.errno

    def drain(self, handle):
        out = {'datagrams': [], 'enobufs': 0, 'truncated': 0, 'fences': [], 'send_error': 0,
               'timeout': False, 'pre': 0}
        self._drain(self.socks[handle], out)
        out['pre'] = len(out['datagrams'])
        return out


def write_frame(f, obj):
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    f.write(struct.pack('=I', len(data)) + data)
    f.flush()


def read_frame(f):
    head = f.read(4)
    if len(head) < 4:
        raise EOFError('the pipe closed')
    (n,) = struct.unpack('=I', head)
    data = f.read(n)
    if len(data) < n:
        raise EOFError('the pipe closed mid-frame')
    return pickle.loads(data)


def executor_main():
    """--executor: serve an Executor's methods over stdin/stdout until EOF."""
    ex = Executor()
    rin, wout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        try:
            method, args = read_frame(rin)
        except EOFError:
            return 0
        try:
            result = ('ok', getattr(ex, method)(*args))
        except Exception as e:  # reported to the parent, which records it
            result = ('error', f'{type(e).__name__}: {e}')
        write_frame(wout, result)


class ExecutorDied(Exception):
    pass


class Remote:
    """An Executor in a child process (another uid, or another network namespace)."""

    def __init__(self, setup):
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), '--executor'],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, preexec_fn=setup,
                                     close_fds=True)

    def call(self, method, *args):
        try:
            write_frame(self.proc.stdin, (method, args))
            status, value = read_frame(self.proc.stdout)
        except (EOFError, BrokenPipeError) as e:
            code = self.proc.poll()
            raise ExecutorDied(f'the executor process died ({e}; exit status {code})') from e
        if status != 'ok':
            raise ExecutorDied(f'the executor failed: {value}')
        return value

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def stop(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()


class Local:
    """An Executor in this process (root, initial network namespace)."""

    def __init__(self):
        self.ex = Executor()

    def call(self, method, *args):
        try:
            return getattr(self.ex, method)(*args)
        except Exception as e:
            raise ExecutorDied(f'the executor failed: {type(e).__name__}: {e}') from e

    def kill(self):
        self.stop()

    def stop(self):
        for h in list(self.ex.socks):
            self.ex.close(h)


def drop_to_nobody():
    os.setgroups([])
    os.setresgid(NOBODY, NOBODY, NOBODY)
    os.setresuid(NOBODY, NOBODY, NOBODY)


def new_netns():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(0x40000000) != 0:  # CLONE_NEWNET
        raise OSError(ctypes.get_errno(), 'unshare(CLONE_NEWNET)')


# --------------------------------------------------------------------------------------
# The model: every listener the fuzzer may have registered, and what it should look like.
# --------------------------------------------------------------------------------------

class Listener:
    def __init__(self, lid, worker, handle, port, uid, pid, flags, scope, notifiers):
        self.id, self.worker, self.handle, self.port = lid, worker, handle, port
        self.netns, self.uid, self.pid = worker.netns, uid, pid
        self.flags, self.scope, self.notifiers = flags, scope, notifiers
        self.gone = False          # it may be gone: its socket was closed, or its unregistration's
                                   # answer was lost; it lingers in the model until seen absent
        self.closed = False        # its socket was closed: certainly gone (NETLINK_URELEASE)
        self.delivered = 0         # as listener-get last showed it
        self.missed = 0            # likewise, its missed
        self.received = 0          # unicast events the fuzzer read for it


class Sock:
    def __init__(self, handle, port, role):
        self.handle, self.port, self.role = handle, port, role
        self.ids = set()           # listener ids ever registered on it
        self.events = set()        # (listener id, seq) received, to catch duplicates


class Worker:
    """One sending process, as the parent sees it: uid, network namespace and sockets."""

    def __init__(self, name, uid, make):
        self.name, self.uid, self.make = name, uid, make
        self.exe = None
        self.socks = {}
        self.netns = None
        self.pid = None
        self.mcast = None

    def start(self, family, ping_cmd):
        self.exe = self.make()
        info = self.exe.call('hello', family, ping_cmd)
        self.pid, self.netns = info['pid'], info['netns']
        if info['uid'] != self.uid:
            raise ExecutorDied(f'executor {self.name} runs as uid {info["uid"]}, not {self.uid}')
        self.socks = {}
        self.mcast = None


class Model:
    def __init__(self):
        self.listeners = {}
        self.ever = set()
        # Per network namespace: how many registrations may have succeeded unseen (lost replies).
        self.unknown = {}
        self.last_seq = 0
        # Whether last_seq is the module's last seq (an inject whose reply was lost, or a real
        # mount event, leaves it unknown until the next inject reply).
        self.seq_known = True
        self.counters = {}
        self.max_queue_limit = 0
        self.max_user_queue_limit = 0

    def live(self, uid=None, netns=None):
        return [li for li in self.listeners.values()
                if (uid is None or li.uid == uid) and (netns is None or li.netns == netns)]

    def count_range(self, uid):
        ls = self.live(uid=uid)
        sure = sum(1 for li in ls if not li.gone)
        return sure, len(ls) + sum(self.unknown.values())

    def uncertain(self, netns):
        return self.unknown.get(netns, 0) > 0


# --------------------------------------------------------------------------------------
# Cases: one message to send, and what may come back.
# --------------------------------------------------------------------------------------

class Expect:
    def __init__(self, exact, errors=frozenset(), ok=False, silent=False, extack=frozenset(), on_ok=None,
                 on_err=None, reply=None, extack_text=None):
        self.exact = exact          # the oracle knows the answer (valid or semantically invalid request)
        self.errors = frozenset(errors)
        self.ok = ok                # success allowed
        self.silent = silent        # the kernel ignores the message: no answer at all
        self.extack = frozenset(extack)   # errors that must carry an extack message
        self.on_ok = on_ok          # callback(reply values list, sub) on success
        self.on_err = on_err        # callback(errno) on an error
        self.reply = reply          # 'do' (one reply message), 'dump', None (ack only), or 'auto'
                                    # (mount-get: 'dump' if the kernel took it as a dump, else 'do')
        self.extack_text = extack_text or {}   # errno: text its extack message must contain


class Sub:
    """One netlink message of a datagram."""

    def __init__(self, seq, op, label, expect, header, ack, dump):
        self.seq, self.op, self.label, self.expect = seq, op, label, expect
        self.header = header        # the 16 header bytes as sent (echoed in errors)
        self.ack = ack              # NLM_F_ACK set: an answer always comes (unless lost)
        self.dump = dump            # the kernel will start a dump: NLMSG_DONE comes
        self.hint = None            # listener-unregister: the id the kernel will see; mount-get:
                                    # (mount-id, unique-id), None where absent
        self.attrs_len = 0          # bytes after the genetlink header
        self.multi = False          # one of several messages in a datagram
        self.flags = 0
        self.dump_flags = False
        # listener-register: it succeeded (its reply was read), or its answer was lost; whether the
        # listener has an mtab notifier (None: not known, a mutated request)
        self.reg_ok = False
        self.reg_lost = False
        self.reg_mtab = None


class Fuzzer:
    def __init__(self, spec, seed, total, journal):
        self.spec, self.seed, self.total = spec, seed, total
        self.rng = random.Random(seed)
        self.model = Model()
        self.failures = []
        self.failure_count = 0
        self.counts = {}
        self.labels = {}
        self.outcomes = {}          # per operation: how many answers of each kind (ok, EINVAL, ...)
        self.seconds = {}           # per operation (or multi): time spent sending and judging
        self.index = 0
        self.datagram = None        # the datagram being judged
        self.seq = 1000
        self.ports = {}             # (netns, port id): which socket it was, for reports
        self.stats = {'enobufs': 0, 'lost': 0, 'events': 0, 'mcast_events': 0, 'fences': 0,
                      'executor_kills': 0, 'sockets_opened': 0, 'sockets_closed': 0,
                      'registered': 0, 'unregistered': 0, 'dumps_checked': 0, 'mount_gets_checked': 0,
                      'mount_dumps_checked': 0, 'mount_dumps_interrupted': 0, 'mountinfo_reads': 0,
                      'param_changes': 0, 'arm_failures_injected': 0, 'arm_failures_used': 0,
                      'events_checked_against_inject': 0, 'real_events': 0, 'pings_checked': 0,
                      'stats_host': 0, 'stats_user': 0, 'stats_exact': 0, 'kern_log_eperm': 0,
                      'inject_exact': 0, 'inject_all_dropped': 0, 'share_checks': 0, 'share_checks_skipped': 0,
                      'share_recipients': 0, 'share_misses': 0, 'arm_checks': 0, 'arm_checks_failed_features': 0,
                      'refused_registrations_with_arm_failures': 0, 'deferred_started': 0, 'deferred_same': 0,
                      'deferred_chroot': 0, 'deferred_mntns': 0, 'deferred_abandoned': 0, 'deferred_checked': 0,
                      'deferred_reader_parts': 0, 'share_recipients_other_netns': 0,
                      'statfs_checked': 0, 'statfs_dumps_checked': 0, 'statfs_timeouts': 0,
                      'statfs_numbers_compared': 0, 'statfs_exact_compared': 0}
        self.journal = os.open(journal, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
        self.mnt_ns = os.stat('/proc/self/ns/mnt').st_ino
        self.init_netns = os.stat('/proc/self/ns/net').st_ino
        self.release = os.uname().release
        with open('/sys/module/usip/version', encoding='ascii') as f:
            self.module_version = f.read().strip()
        self.params = read_params()
        self.initial_params = dict(self.params)
        self.family, self.groups = resolve_family(spec.family_name)
        s = spec
        self.T = {n: s.enum('event-type', n) for n in ACTIONS_OF_TYPE}
        self.ACT = dict(s.enums['action'])
        self.actions_of = {self.T[t]: [self.ACT[a] for a in acts] for t, acts in ACTIONS_OF_TYPE.items()}
        self.space_error_actions = {self.ACT['enospc'], self.ACT['edquot']}
        self.NOTIFY = s.enum('notifier-flags', 'notify')
        self.KERN_LOG = s.enum('notifier-flags', 'kern-log')
        self.GLOBAL = s.enum('listener-flags', 'global')
        self.SCOPE_MNT_NS, self.SCOPE_GLOBAL = s.enum('scope', 'mnt-ns'), s.enum('scope', 'global')
        self.type_names = {v: k for k, v in s.enums['event-type'].items()}
        self.event_cmds = {s.cmd('mtab-event'): self.T['mtab'], s.cmd('storage-event'): self.T['storage']}
        # Sent to a listener when events were lost and the queue has drained.
        self.missed_cmd = s.cmd('missed')
        self.request_cmds = {s.cmd(op): op for op in REQUEST_OPS}
        self.all_cmds = {op.command: op.name for op in s.ops.values()}
        # Commands that have a dump: a request with NLM_F_DUMP starts one.
        self.dump_cmds = {s.cmd(op) for op in REQUEST_OPS if s.ops[op].dump is not None}
        # The mount table: mountinfo is the truth; unique ids come from a dump at the start.
        self.has_unique_ids = kernel_version(self.release) >= UNIQUE_ID_KERNEL
        self.mount_table = None     # the feature mount-table, from ping (learn_mounts)
        self.mounts = read_mountinfo()
        self.mounts_at_start = dict(self.mounts)
        self.unique_of = {}         # mount id: unique id
        self.by_unique = {}         # unique id: mount id
        self.ns_seqs = set()        # the ns-seq values dumps reported
        self.mount_checked = {side: {'do': 0, 'dump': 0} for side in ('root', 'nobody')}
        # statfs: the feature (from ping), statfs(2) of each mount point (its numbers that do not move),
        # and which mount each mount point's path leads to (the one on top).
        self.statfs_feature = None
        self.statfs_truth = {}      # mount id: {number: value} from fstatfs() of its mount point
        self.statfs_paths = {}      # mount point: the id of the mount its path leads to
        self.statfs_checked = {side: {'do': 0, 'dump': 0} for side in ('root', 'nobody')}
        # Injected events, by seq: [(first seq, last seq, what was injected)], in order.
        self.injects = []
        # (listener id, seq) of the unicast events read, and the seqs of the multicast copies
        # root's group socket read (for the share checks).
        self.event_log = []
        self.mcast_log = []
        # The features, from the first ping: bit -> (available, reason) for those that never
        # change, and the event features that can go arm-failed (available when loaded).
        self.feature_bits = dict(spec.enums['feature'])
        self.ARM_FAILED = spec.enum('unavailable-reason', 'arm-failed')
        self.static_features = None
        self.event_bits = []
        # How many event features are arm-failed now (None: unknown until the next ping).
        self.arm_failed = 0
        self.arm_failed_set = set()     # which ones, when known exactly (arm checks)
        self.arm_pending = self.params['inject_arm_failures']
        self.deferred = []              # deferred mount-get dumps waiting to be read
        # The kernel's taint flags: a new one (W for a WARN, D for an oops, B for a bad page, ...)
        # is a failure of the message that was just handled.
        self.taint = read_taint()
        self.next_share_check = None
        self.first_ping = None
        self.workers = [
            Worker('root', 0, Local),
            Worker('nobody', NOBODY, lambda: Remote(drop_to_nobody)),
            Worker('root-netns', 0, lambda: Remote(new_netns)),
        ]

    # ---- bookkeeping -------------------------------------------------------------------

    def fail(self, what, worker=None, sub=None, datagram=None):
        if datagram is None and sub is not None:
            datagram = self.datagram  # a failure found by an oracle callback: the message judged
        self.failure_count += 1
        if len(self.failures) >= 200:
            return
        entry = {'seed': self.seed, 'index': self.index, 'what': what}
        if worker is not None:
            entry['sender'] = f'{worker.name} (uid {worker.uid})'
        if sub is not None:
            entry['op'], entry['case'] = sub.op, sub.label
        if datagram is not None:
            entry['message_hex'] = datagram[:32768].hex()
            entry['message_len'] = len(datagram)
        self.failures.append(entry)
        print(f'FAILURE #{self.failure_count} (seed {self.seed}, message {self.index}'
              f'{", " + sub.op + "/" + sub.label if sub else ""}): {what}', flush=True)

    def next_seq(self):
        self.seq += 1
        return self.seq

    def count(self, worker, op, label):
        side = 'root' if worker.uid == 0 else 'nobody'
        self.counts.setdefault(op, {'root': 0, 'nobody': 0})[side] += 1
        self.labels[label] = self.labels.get(label, 0) + 1

    # ---- helpers to build requests -----------------------------------------------------

    def rand_string(self, n):
        return self.rng.randbytes(n).translate(SAFE_CHAR_TABLE).decode()

    def rand_path(self):
        r = self.rng.random()
        if r < 0.05:
            return '/'
        if r < 0.1:
            return '/' + self.rand_string(self.rng.randint(1, 200)) + '/'
        if r < 0.13:
            return self.rand_string(self.rng.randint(1, 20))  # relative
        parts = [self.rng.choice(['mnt', 'a', 'b', 'srv', 'x' * self.rng.randint(1, 5), self.rand_string(3)])
                 for _ in range(self.rng.randint(1, 4))]
        return '/' + '/'.join(parts)

    def rand_u32(self):
        return self.rng.choice([0, 1, 2, 0x7fffffff, 0x80000000, 0xffffffff, self.rng.getrandbits(32),
                                self.rng.randint(0, 100)])

    def rand_u64(self):
        return self.rng.choice([0, 1, 0xffffffffffffffff, self.rng.getrandbits(64), self.rng.randint(0, 10000)])

    def rand_mount_id(self):
        """A mount id the policy accepts: the spec bounds mount-id by mount-id-max (the kernel's
        ids are ints from an IDA); bigger ones are refused with ERANGE (gen_mount_get)."""
        top = self.spec.sets['mount'].by_name['mount-id'].checks['max']
        return self.rng.choice([0, 1, top, self.rng.randint(0, top), self.rng.randint(0, 10000)])

    def string_attr(self, t, s):
        return A(t, s.encode() + b'\0')

    def notifier(self, ntype=None, action=None, flags=None, selectors=True, long_prefix=False, admin=True):
        """A valid notifier: (attribute, its model dict). Without admin (CAP_SYS_ADMIN in the
        initial user namespace) kern-log is rarer: the module refuses it."""
        r = self.rng
        if ntype is None:
            ntype = r.choice(list(self.actions_of))
        if action is None:
            choices = self.actions_of[ntype]
            if not admin:
                # Mostly what it may register; now and then what it may not (EPERM).
                allowed = [a for a in choices if a not in self.space_error_actions]
                if allowed and r.random() < 0.9:
                    choices = allowed
            action = r.choice(choices)
        if flags is None:
            flags = r.choices([self.NOTIFY, self.KERN_LOG, self.NOTIFY | self.KERN_LOG],
                              [80, 5, 15] if admin else [95, 2, 3])[0]
        na = lambda n: self.spec.attr('notifier', n)  # noqa: E731
        kids = [A(na('type'), u32(ntype)), A(na('action'), u32(action)), A(na('flags'), u32(flags))]
        model = {'type': ntype, 'action': action, 'flags': flags}
        if selectors:
            if r.random() < 0.5:
                model['cmd'] = self.rand_u32()
                kids.append(A(na('cmd'), u32(model['cmd'])))
            if r.random() < 0.2:
                model['mount-id'] = self.rand_mount_id()
                kids.append(A(na('mount-id'), u64(model['mount-id'])))
            if r.random() < 0.3 or long_prefix:
                p = ('/' + self.rand_string(self.spec.path_max - 1)) if long_prefix else self.rand_path()
                model['path-prefix'] = p
                kids.append(self.string_attr(na('path-prefix'), p))
        if action == self.ACT['low-space']:
            self.space_attrs(kids, model, na)
        r.shuffle(kids)
        return A(self.spec.attr('listener', 'notifier'), kids=kids, fl=NLA_F_NESTED), model

    # Where no mount is: a low-space notifier of the fuzzer watches nothing, so it never posts a
    # real event (whose seq the model of injected seqs could not account for).
    NO_MOUNT_PREFIX = '/usip-fuzz-no-mount'

    def space_attrs(self, kids, model, na):
        """A low-space notifier's attributes (usip_notifier_parse_space): exactly one threshold,
        maybe a hysteresis and an interval, and a path-prefix under which no mount is (replacing any
        selector that could name a mount)."""
        r = self.rng
        kids[:] = [k for k in kids if k.t not in (na('mount-id'), na('path-prefix'))]
        model.pop('mount-id', None)
        prefix = f'{self.NO_MOUNT_PREFIX}/{self.rand_string(r.randint(1, 12))}'
        model['path-prefix'] = prefix
        kids.append(self.string_attr(na('path-prefix'), prefix))
        # Small thresholds: even without its prefix (a mutation) it would hardly fire.
        kind = r.choice(['threshold', 'threshold-inodes', 'threshold-bytes'])
        value = r.randint(1, 4096) if kind == 'threshold-bytes' else 1
        model[kind] = value
        kids.append(A(na(kind), u64(value) if kind == 'threshold-bytes' else u32(value)))
        # listener-get lists both, with their defaults (5 and 1000) when not given.
        model['hysteresis'], model['interval-ms'] = 5, 1000
        if r.random() < 0.5:
            model['hysteresis'] = r.choice([0, 5, 1000, r.randint(0, 1000)])
            kids.append(A(na('hysteresis'), u32(model['hysteresis'])))
        if r.random() < 0.5:
            model['interval-ms'] = r.choice([100, 1000, 3600000, r.randint(100, 3600000)])
            kids.append(A(na('interval-ms'), u32(model['interval-ms'])))

    def listener_size(self, notifiers):
        """The size of a listener's listener-get message, as docs/events.md bounds it."""
        size = 20 + 6 * 8 + 2 * 12 + 3 * 16
        for n in notifiers:
            # The nest, type, action, flags; cmd and mount-id if it has them; a low-space
            # notifier's hysteresis, interval and threshold (bytes: a u64).
            size += 4 + 3 * 8 + (8 if 'cmd' in n else 0) + (16 if 'mount-id' in n else 0)
            if n['action'] == self.ACT['low-space']:
                size += 2 * 8 + (16 if 'threshold-bytes' in n else 8)
            if 'path-prefix' in n:
                size += align4(4 + len(n['path-prefix'].encode()) + 1)
        return size

    # ---- the oracle for each operation ---------------------------------------------------

    def expect_ping(self, cookie):
        def on_ok(replies, sub, worker):
            v = self.one_reply(replies, 'ping', sub, worker)
            if v is None:
                return
            self.require(v, ['protocol-version', 'module-version', 'features', 'kernel-release'], 'ping reply', sub, worker)
            if v.get('protocol-version') != self.spec.protocol_version:
                self.fail(f'ping: protocol-version {v.get("protocol-version")}, expected {self.spec.protocol_version}', worker, sub)
            if v.get('module-version') != self.module_version:
                self.fail(f'ping: module-version {v.get("module-version")!r}, /sys/module/usip/version says {self.module_version!r}', worker, sub)
            if v.get('kernel-release') != self.release:
                self.fail(f'ping: kernel-release {v.get("kernel-release")!r}, running {self.release!r}', worker, sub)
            if v.get('cookie') != cookie:
                self.fail(f'ping: cookie {v.get("cookie")}, sent {cookie}', worker, sub)
            self.check_features(v, sub, worker)
        return Expect(True, ok=True, on_ok=on_ok, reply='do')

    def feature_name(self, bit):
        return next((n for n, b in self.feature_bits.items() if b == bit), hex(bit))

    def check_features(self, v, sub, worker):
        """ping's features and feature-status: one status per feature of the spec, features the
        mask of the available ones; what was unavailable when loaded stays so for the same reason,
        and the event features are arm-failed exactly as the model of inject_arm_failures says."""
        reasons = set(self.spec.enums['unavailable-reason'].values())
        seen = {}
        for st in v.get('feature-status') or []:
            bit, avail, reason = st.get('feature'), st.get('available'), st.get('reason')
            if bit is None or avail is None:
                self.fail(f'ping: a feature-status without feature or available: {st}', worker, sub)
                continue
            if bit not in self.feature_bits.values():
                self.fail(f'ping: feature-status of {bit:#x}, which is not one feature of the spec', worker, sub)
                continue
            if bit in seen:
                self.fail(f'ping: two feature-status for {self.feature_name(bit)}', worker, sub)
            if avail == 1 and reason is not None:
                self.fail(f'ping: {self.feature_name(bit)} is available, yet has the reason {reason}', worker, sub)
            elif avail == 0 and reason not in reasons:
                self.fail(f'ping: {self.feature_name(bit)} is unavailable with the reason {reason} (not an '
                          f'unavailable-reason)', worker, sub)
            seen[bit] = (avail, reason)
        missing = [n for n, b in self.feature_bits.items() if b not in seen]
        if missing:
            self.fail(f'ping: no feature-status for {", ".join(missing)}', worker, sub)
            return
        mask = sum(b for b, (avail, _) in seen.items() if avail)
        if v.get('features') != mask:
            self.fail(f'ping: features {v.get("features")!r}, the feature-status says {mask:#x}', worker, sub)
        event_bits = [self.feature_bits[n] for n in EVENT_FEATURES]
        if self.static_features is None:
            # The first ping: what may change later is an event feature that was available.
            self.event_bits = [b for b in event_bits if seen[b][0] or seen[b][1] == self.ARM_FAILED]
            self.static_features = {b: st for b, st in seen.items() if b not in self.event_bits}
        for b, st in self.static_features.items():
            if seen[b] != st:
                self.fail(f'ping: {self.feature_name(b)} was {st} (available, reason) when the run began, now '
                          f'{seen[b]}', worker, sub)
        failed = [b for b in self.event_bits if seen[b] != (1, None)]
        wrong = [b for b in failed if seen[b] != (0, self.ARM_FAILED)]
        if wrong:
            self.fail(f'ping: {", ".join(self.feature_name(b) + " " + str(seen[b]) for b in wrong)}: an event '
                      f'feature is available or arm-failed', worker, sub)
        names = sorted(self.feature_name(b) for b in failed)
        if self.arm_failed is None:
            self.arm_failed = len(failed)       # the model did not know: it learns
            self.arm_failed_set = set(failed)
        elif len(failed) != self.arm_failed:
            self.fail(f'ping: {len(failed)} event feature(s) arm-failed ({", ".join(names) or "none"}); arm '
                      f'failures used up say {self.arm_failed}', worker, sub)
            self.arm_failed, self.arm_failed_set = len(failed), set(failed)
        elif self.arm_failed_set is not None and set(failed) != self.arm_failed_set:
            want = sorted(self.feature_name(b) for b in self.arm_failed_set)
            self.fail(f'ping: arm-failed {names}, expected {want} (arming goes in feature order)', worker, sub)
            self.arm_failed_set = set(failed)
        elif self.arm_failed_set is None:
            self.arm_failed_set = set(failed)
        self.stats['pings_checked'] += 1

    @staticmethod
    def admin(worker):
        """CAP_SYS_ADMIN in the initial user namespace: root's senders (both network namespaces)."""
        return worker.uid == 0

    def expect_register(self, worker, sock, flags, notifiers, violation=None):
        """notifiers: model dicts; violation: the errno of a semantically invalid request."""
        sure, most = self.model.count_range(worker.uid)
        limit = self.params['max_listeners_per_user']
        errors = set()
        texts = {}
        ok = False
        # docs/events.md: a listener must fit in one listener-get message, or E2BIG.
        size = self.listener_size(notifiers)
        if size > GOODSIZE - SIZE_SLACK:
            errors.add(errno.E2BIG)
        if violation is not None:
            errors.add(violation)
            if violation == errno.EPERM:
                texts[errno.EPERM] = REGISTER_GLOBAL_EPERM
        elif size <= GOODSIZE + SIZE_SLACK:
            ok = True
        if any(not n.get('path-prefix', '/').startswith('/') for n in notifiers):
            # The contract does not say whether a relative prefix is valid; the module refuses it.
            errors.add(errno.EINVAL)
        space_errors = any(n['action'] in self.space_error_actions for n in notifiers)
        if space_errors and not self.admin(worker) and not self.params['space_errors_unprivileged']:
            errors.add(errno.EPERM)
            texts.setdefault(errno.EPERM, REGISTER_SPACE_ERRORS_EPERM)
            ok = False
        kern_log = any(n['flags'] & self.KERN_LOG for n in notifiers)
        if kern_log and not self.admin(worker):
            # The kernel log is shared: only its administrators may fill it (docs/events.md).
            errors.add(errno.EPERM)
            texts.setdefault(errno.EPERM, REGISTER_KERN_LOG_EPERM)
            ok = False
        if most >= limit:
            errors.add(errno.EMFILE)
            texts[errno.EMFILE] = REGISTER_EMFILE
            if sure >= limit:
                ok = False

        def on_ok(replies, sub, w):
            self.registered(replies, sub, w, sock, flags, notifiers)

        def on_err(e):
            if e == errno.EPERM and kern_log and not self.admin(worker):
                self.stats['kern_log_eperm'] += 1
        return Expect(True, errors=errors, ok=ok, extack=errors, on_ok=on_ok, on_err=on_err, reply='do',
                      extack_text=texts)

    def registered(self, replies, sub, worker, sock, flags, notifiers):
        """A successful registration: check the reply and add the listener to the model."""
        v = self.one_reply(replies, 'listener-register', sub, worker)
        if v is None:
            return
        self.require(v, ['id', 'group', 'scope', 'mnt-ns'], 'listener-register reply', sub, worker)
        lid = v.get('id')
        if lid is None:
            return
        if lid in self.model.ever:
            self.fail(f'listener-register returned id {lid} a second time (ids are unique while loaded)', worker, sub)
        self.model.ever.add(lid)
        scope = v.get('scope')
        if worker.uid != 0 and scope == self.SCOPE_GLOBAL:
            self.fail(f'an unprivileged user (uid {worker.uid}) registered the global listener {lid}', worker, sub)
        if flags is not None:
            want_scope = self.SCOPE_GLOBAL if flags & self.GLOBAL else self.SCOPE_MNT_NS
            if scope != want_scope:
                self.fail(f'listener {lid}: scope {scope}, expected {want_scope}', worker, sub)
        if v.get('mnt-ns') != self.mnt_ns:
            self.fail(f'listener {lid}: mnt-ns {v.get("mnt-ns")}, the caller\'s is {self.mnt_ns}', worker, sub)
        if notifiers is not None:
            want = sorted({self.type_names[n['type']] for n in notifiers})
            if sorted(v.get('group', [])) != want:
                self.fail(f'listener {lid}: groups {v.get("group")}, expected {want}', worker, sub)
        listener_flags = (self.GLOBAL if scope == self.SCOPE_GLOBAL else 0)
        self.model.listeners[lid] = Listener(lid, worker, sock.handle, sock.port, worker.uid, worker.pid,
                                             listener_flags, scope, notifiers)
        sock.ids.add(lid)
        self.stats['registered'] += 1
        sub.reg_ok = True
        if notifiers is not None:
            sub.reg_mtab = any(n['type'] == self.T['mtab'] for n in notifiers)
        elif 'group' in v:
            sub.reg_mtab = 'mtab' in v['group']     # the groups are the types of its notifiers

    def expect_unregister(self, worker, lid):
        li = self.model.listeners.get(lid)
        if li is None or li.netns != worker.netns:
            unknown = self.model.uncertain(worker.netns) and lid not in self.model.ever
            errors = {errno.ENOENT} | ({errno.EPERM} if unknown else set())
            return Expect(True, errors=errors, ok=unknown, extack=errors,
                          on_ok=lambda r, s, w: None, reply=None)
        allowed = worker.uid == 0 or worker.uid == li.uid
        errors = set() if allowed else {errno.EPERM}
        if li.gone:
            errors.add(errno.ENOENT)

        def on_ok(replies, sub, w):
            if replies:
                self.fail(f'listener-unregister answered with {len(replies)} message(s) besides the ack', w, sub)
            self.model.listeners.pop(lid, None)
            self.stats['unregistered'] += 1

        def on_err(e):
            if e == errno.ENOENT and li.gone:
                self.model.listeners.pop(lid, None)
        return Expect(True, errors=errors, ok=allowed, extack=errors, on_ok=on_ok, on_err=on_err, reply=None)

    def expect_inject(self, worker, repeat, violation=None, ev=None):
        """ev: what a valid request injects (its model dict), None for a semantically invalid one."""
        allowed = self.params['allow_inject']
        texts = {}
        if not allowed:
            errors = {errno.EOPNOTSUPP} | ({violation} if violation else set())
            texts[errno.EOPNOTSUPP] = 'allow_inject=1'
        elif not self.admin(worker):
            errors = {errno.EPERM} | ({violation} if violation else set())
            texts[errno.EPERM] = 'injecting events needs CAP_SYS_ADMIN in the initial user namespace'
        elif violation:
            errors = {violation}
        else:
            errors = set()

        def on_ok(replies, sub, w):
            self.injected(replies, sub, w, repeat, ev)
        return Expect(True, errors=errors, ok=not errors, extack=errors, on_ok=on_ok, reply='do',
                      extack_text=texts)

    # -- who wants an event: the module's matching, exactly (usip-listener.c) --

    @staticmethod
    def kernel_match(n, ev):
        """Does notifier n match the event ev (both model dicts)? A selector needs its field: a
        mount-id selector an event of that mount, a path-prefix one an event with a path at or
        below the prefix in whole components (the module keeps the prefix without trailing
        slashes, except "/"); threshold is not a selector of injected events."""
        if n['type'] != ev.get('type') or n['action'] != ev.get('action'):
            return False
        if 'mount-id' in n and ev.get('mount-id') != n['mount-id']:
            return False
        p = n.get('path-prefix')
        if p is not None:
            path = ev.get('path')
            q = p.rstrip('/') or '/'
            if path is None or not path.startswith(q):
                return False
            if not (len(path) == len(q) or path[len(q)] == '/' or q.endswith('/')):
                return False
        return True

    def what(self, li, ev):
        """The flags of li's notifiers that match ev, and the first matching one with notify."""
        flags, first = 0, None
        for n in li.notifiers:
            if self.kernel_match(n, ev):
                flags |= n['flags']
                if first is None and n['flags'] & self.NOTIFY:
                    first = n
        return flags, first

    def wanting(self, ev):
        """The listeners that want ev (every listener shares the fuzzer's mount namespace): those
        that surely do, those that may (gone or unknown notifiers), and whether a registration whose
        answer was lost may want it too."""
        sure, maybe = [], []
        for li in self.model.listeners.values():
            if li.closed:
                continue
            if li.notifiers is None:
                maybe.append(li)
            elif self.what(li, ev)[0]:
                (maybe if li.gone else sure).append(li)
        return sure, maybe, any(self.model.unknown.values())

    def injected(self, replies, sub, worker, repeat, ev):
        """An inject's reply: seq, queued and dropped against the model of who wants the event."""
        m = self.model
        if not self.admin(worker):
            self.fail(f'an unprivileged user (uid {worker.uid}) injected an event', worker, sub)
        if not self.params['allow_inject']:
            self.fail('inject succeeded although the module was loaded without allow_inject', worker, sub)
        v = self.one_reply(replies, 'inject', sub, worker)
        if v is None:
            m.seq_known = False
            return
        self.require(v, ['seq', 'queued', 'dropped'], 'inject reply', sub, worker)
        seq, queued, dropped = v.get('seq', 0), v.get('queued', 0), v.get('dropped', 0)
        posted = queued + dropped
        if ev is not None:
            sure, maybe, unknown = self.wanting(ev)
            if sure and posted != repeat:
                self.fail(f'inject: queued {queued} + dropped {dropped}, but listener(s) {[li.id for li in sure]} '
                          f'want the event: each of the {repeat} posts is queued or dropped', worker, sub)
            elif not sure and not maybe and not unknown and posted:
                self.fail(f'inject: queued {queued} + dropped {dropped}, but no listener wants the event', worker, sub)
            elif posted not in (0, repeat):
                self.fail(f'inject: queued {queued} + dropped {dropped} of repeat {repeat}', worker, sub)
            else:
                self.stats['inject_exact'] += bool(sure or not (maybe or unknown))
        elif repeat is not None and posted > repeat:
            self.fail(f'inject: queued {queued} + dropped {dropped} exceeds repeat {repeat}', worker, sub)
        no_room = [k for k in ('event_queue_len', 'user_queue_len', 'listener_queue_len') if self.params[k] == 0]
        if queued and no_room:
            self.fail(f'inject: {queued} event(s) queued although {" and ".join(no_room)} is 0', worker, sub)
        elif posted and no_room:
            self.stats['inject_all_dropped'] += 1
        if posted == 0:
            # No listener wanted the event: nothing was posted, and seq is 0.
            if seq != 0:
                self.fail(f'inject: nothing queued or dropped, yet seq {seq}', worker, sub)
            return
        if m.seq_known and seq != m.last_seq + posted:
            self.fail(f'inject: seq {seq}; the last seq was {m.last_seq} and {posted} event(s) were posted '
                      f'(each post takes the next seq)', worker, sub)
        elif seq <= m.last_seq:
            self.fail(f'inject: seq {seq} is not above an earlier one, {m.last_seq}', worker, sub)
        first = seq - posted + 1
        if not m.seq_known and first > m.last_seq + 1:
            self.injects.append((m.last_seq + 1, first - 1, None))   # seqs nobody knows the events of
        self.injects.append((first, seq, {'ev': ev, 'pid': worker.pid, 'init_netns': self.init_netns_wants(ev)}))
        del self.injects[:-4000]
        m.last_seq, m.seq_known = seq, True

    def init_netns_wants(self, ev):
        """Whether a listener of the initial network namespace may take ev with notify (then the
        mtab or storage group of the initial network namespace may get a copy)."""
        if ev is None or self.model.unknown.get(self.init_netns):
            return True
        for li in self.model.listeners.values():
            if li.closed or li.netns != self.init_netns:
                continue
            if li.notifiers is None or self.what(li, ev)[1] is not None:
                return True
        return False

    def find_inject(self, seq):
        """The inject record of an event seq: a dict, None for seqs whose events are unknown, or
        False when the fuzzer knows of no such seq."""
        i = bisect.bisect_right(self.injects, (seq, float('inf'))) - 1
        if i >= 0 and self.injects[i][0] <= seq <= self.injects[i][1]:
            return self.injects[i][2]
        if seq > self.model.last_seq or not self.injects or seq < self.injects[0][0]:
            return None
        return False

    def expect_stats(self):
        def on_ok(replies, sub, worker):
            v = self.one_reply(replies, 'stats', sub, worker)
            if v is None:
                return
            self.check_stats(v, sub, worker)    # which counters it must have depends on the scope
        return Expect(True, ok=True, on_ok=on_ok, reply='do')

    HOST_ONLY_STATS = ('posted', 'undeliverable', 'objects', 'mount-hooks', 'statfs-pending',
                       'space-errors-unreported')
    STATS = ('listeners', 'notifiers', 'queued', 'queue-limit', 'delivered', 'dropped', 'scope', 'watched-mounts')

    def check_stats(self, v, sub, worker):
        """A stats reply: scope host and every counter for CAP_SYS_ADMIN in the initial user
        namespace, scope user and the caller's own counters for everybody else."""
        m = self.model
        host = self.admin(worker)
        want_scope = self.spec.enum('stats-scope', 'host' if host else 'user')
        if v.get('scope') != want_scope:
            self.fail(f'stats: scope {v.get("scope")} for uid {worker.uid}, expected {want_scope}', worker, sub)
        missing = [k for k in self.STATS + (self.HOST_ONLY_STATS if host else ()) if k not in v]
        if missing:
            self.fail(f'stats ({"host" if host else "user"} scope) lacks {", ".join(missing)}', worker, sub)
        if not host:
            extra = [k for k in self.HOST_ONLY_STATS if k in v]
            if extra:
                self.fail(f'stats for uid {worker.uid} (user scope) carries host-wide counters: {extra}', worker, sub)
            self.check_user_stats(v, sub, worker)
            return
        self.stats['stats_host'] += 1
        ls = [li for li in m.listeners.values() if not li.closed]
        sure = sum(1 for li in ls if not li.gone)
        most = len(ls) + sum(m.unknown.values())
        n = v.get('listeners')
        if n is not None and not sure <= n <= most:
            self.fail(f'stats: listeners {n}, the fuzzer knows of {sure} to {most}', worker, sub)
        if all(li.notifiers is not None for li in ls) and not any(m.unknown.values()):
            lo = sum(len(li.notifiers) for li in ls if not li.gone)
            hi = sum(len(li.notifiers) for li in ls)
            nn = v.get('notifiers')
            if nn is not None and not lo <= nn <= hi:
                self.fail(f'stats: notifiers {nn}, the fuzzer registered {lo} to {hi}', worker, sub)
        if v.get('queue-limit') not in (None, self.params['event_queue_len']):
            self.fail(f'stats: queue-limit {v.get("queue-limit")}, event_queue_len is {self.params["event_queue_len"]}', worker, sub)
        if v.get('queued', 0) > m.max_queue_limit:
            self.fail(f'stats: queued {v.get("queued")} exceeds every queue limit used ({m.max_queue_limit})', worker, sub)
        if v.get('posted', 0) < m.last_seq:
            self.fail(f'stats: posted {v.get("posted")} is below the last inject seq {m.last_seq}', worker, sub)
        for key in ('posted', 'dropped', 'delivered', 'undeliverable'):
            if key in v:
                if v[key] < m.counters.get(key, 0):
                    self.fail(f'stats: {key} went down from {m.counters[key]} to {v[key]}', worker, sub)
                m.counters[key] = v[key]
        # Each listener is two allocations (itself and its notifiers), each queued event one.
        if 'objects' in v and n is not None and v['objects'] < 2 * n + v.get('queued', 0):
            self.fail(f'stats: objects {v["objects"]} is less than 2 x listeners {n} + queued {v.get("queued", 0)}',
                      worker, sub)

    def check_user_stats(self, v, sub, worker):
        """The user scope: the caller's listeners (every network namespace), their notifiers,
        events queued for them (at most user_queue_len, the queue-limit), delivered to them and
        missed by them, as far as the model of its listeners knows them."""
        m = self.model
        self.stats['stats_user'] += 1
        sure, most = m.count_range(worker.uid)
        ls = [li for li in m.listeners.values() if li.uid == worker.uid and not li.closed]
        n = v.get('listeners')
        if n is not None and not sure <= n <= most:
            self.fail(f'stats (user scope): listeners {n}, the fuzzer knows of {sure} to {most} of uid {worker.uid}',
                      worker, sub)
        if all(li.notifiers is not None for li in ls) and not any(m.unknown.values()):
            lo = sum(len(li.notifiers) for li in ls if not li.gone)
            hi = sum(len(li.notifiers) for li in ls)
            nn = v.get('notifiers')
            if nn is not None and not lo <= nn <= hi:
                self.fail(f'stats (user scope): notifiers {nn}, uid {worker.uid} registered {lo} to {hi}', worker, sub)
        if v.get('queue-limit') not in (None, self.params['user_queue_len']):
            self.fail(f'stats (user scope): queue-limit {v.get("queue-limit")}, user_queue_len is '
                      f'{self.params["user_queue_len"]}', worker, sub)
        if v.get('queued', 0) > m.max_user_queue_limit:
            self.fail(f'stats (user scope): queued {v.get("queued")} exceeds every user_queue_len used '
                      f'({m.max_user_queue_limit})', worker, sub)
        alive = [li for li in ls if not li.gone]
        delivered = sum(max(li.delivered, li.received) for li in alive)
        missed = sum(li.missed for li in alive)
        if v.get('delivered', 0) < delivered:
            self.fail(f'stats (user scope): delivered {v.get("delivered")}, but its listeners had {delivered} '
                      f'delivered already (listener-get, and the events read)', worker, sub)
        if v.get('dropped', 0) < missed:
            self.fail(f'stats (user scope): dropped {v.get("dropped")}, but its listeners had missed {missed} '
                      f'already (listener-get)', worker, sub)

    def expect_dump(self, worker):
        def on_ok(entries, sub, w):
            self.check_dump(entries, sub, w, exact=not sub.multi)
        return Expect(True, ok=True, on_ok=on_ok, reply='dump')

    def check_dump(self, entries, sub, worker, exact=True):
        """Compares a listener-get dump with the model. Not exact: other requests of the same
        datagram may have changed the listeners while it ran; then only what it shows is checked."""
        m = self.model
        seen = {}
        names = self.spec.ops['listener-get'].dump[1]
        for v in entries:
            self.require(v, names, 'listener-get message', sub, worker)
            lid = v.get('id')
            if lid is None:
                continue
            if lid in seen:
                self.fail(f'listener-get lists listener {lid} twice', worker, sub)
            seen[lid] = v
        visible = {li.id: li for li in m.listeners.values()
                   if li.netns == worker.netns and (worker.uid == 0 or li.uid == worker.uid)}
        for lid, v in seen.items():
            li = visible.get(lid)
            if li is None:
                owner = [s for w in self.workers if w.netns == worker.netns for s in w.socks.values()
                         if s.port == v.get('port-id')]
                if lid not in m.ever and m.uncertain(worker.netns) and owner:
                    # Registered by a request whose reply was lost: learnt from the dump.
                    w = next(w for w in self.workers if owner[0] in w.socks.values())
                    li = Listener(lid, w, owner[0].handle, owner[0].port, v.get('owner-uid'), w.pid,
                                  v.get('flags', 0), v.get('scope'),
                                  [dict(n) for n in v['notifier']] if 'notifier' in v else None)
                    m.listeners[lid] = li
                    m.ever.add(lid)
                    owner[0].ids.add(lid)
                elif not exact and lid in m.ever and lid not in m.listeners:
                    continue  # unregistered by a later message of the datagram
                elif lid in m.listeners:
                    self.fail(f'listener-get by uid {worker.uid} shows listener {lid} of uid '
                              f'{m.listeners[lid].uid} in another network namespace or of another user', worker, sub)
                    continue
                else:
                    where = self.ports.get((worker.netns, v.get('port-id')), 'a port the fuzzer never had')
                    self.fail(f'listener-get shows listener {lid} (owner uid {v.get("owner-uid")}, pid {v.get("owner-pid")}, '
                              f'port {v.get("port-id")}: {where}), which the fuzzer does not know '
                              f'(lost registration replies: {m.unknown.get(worker.netns, 0)})', worker, sub)
                    continue
            self.compare_listener(li, v, sub, worker)
        for lid, li in visible.items():
            if lid not in seen and exact:
                if li.gone or li.notifiers is None and m.uncertain(worker.netns):
                    m.listeners.pop(lid, None)
                else:
                    self.fail(f'listener {lid} (uid {li.uid}, registered by {li.worker.name} on port {li.port}) '
                              f'is missing from listener-get', worker, sub)
                    m.listeners.pop(lid, None)
        if worker.uid == 0 and exact:
            m.unknown[worker.netns] = 0
        self.stats['dumps_checked'] += 1

    def compare_listener(self, li, v, sub, worker):
        where = f'listener-get, listener {li.id}'
        if li.closed:
            self.fail(f'{where} (uid {li.uid}, port {li.port}) is listed, but its socket was closed before the dump '
                      f'(a listener dies with its socket)', worker, sub)
        elif li.gone and not sub.multi:
            li.gone = False     # its unregistration's answer was lost: it was not unregistered
        if li.notifiers is None and 'notifier' in v:
            li.notifiers = [dict(n) for n in v['notifier']]   # a mutated registration: now known
        checks = [('owner-uid', li.uid), ('port-id', li.port), ('scope', li.scope), ('mnt-ns', self.mnt_ns),
                  ('owner-pid', li.pid), ('flags', li.flags)]
        if li.gone:
            checks = [c for c in checks if c[0] != 'owner-pid']  # a killed owner may have no pid
        for key, want in checks:
            if want is not None and key in v and v[key] != want:
                self.fail(f'{where}: {key} {v[key]}, expected {want}', worker, sub)
        if 'delivered' in v:
            if v['delivered'] < li.delivered:
                self.fail(f'{where}: delivered went down from {li.delivered} to {v["delivered"]}', worker, sub)
            if v['delivered'] < li.received:
                self.fail(f'{where}: delivered {v["delivered"]}, but the fuzzer read {li.received} of its events',
                          worker, sub)
            li.delivered = v['delivered']
        if 'missed' in v:
            if v['missed'] < li.missed:
                self.fail(f'{where}: missed went down from {li.missed} to {v["missed"]}', worker, sub)
            li.missed = v['missed']
        if li.notifiers is not None and 'notifier' in v:
            got = [self.norm_notifier(n) for n in v['notifier']]
            want = [self.norm_notifier(n) for n in li.notifiers]
            if got != want:
                self.fail(f'{where}: notifiers {got}, registered {want}', worker, sub)
            groups = sorted({self.type_names[n['type']] for n in li.notifiers})
            if sorted(v.get('group', [])) != groups:
                self.fail(f'{where}: groups {v.get("group")}, expected {groups}', worker, sub)

    @staticmethod
    def norm_notifier(n):
        out = dict(n)
        p = out.get('path-prefix')
        if p is not None:
            # The module keeps prefixes without trailing slashes (except "/").
            out['path-prefix'] = p.rstrip('/') or ('/' if p.startswith('/') else p)
        return out

    # ---- the oracle for mount-get ------------------------------------------------------

    def learn_mounts(self):
        """At the start: the feature mount-table (ping), and the unique ids of the mounts (a
        dump, which must list mountinfo's mounts and carry unique ids exactly on 6.8+)."""
        s = self.spec
        err, replies = simple_request(self.family, s.cmd('ping'))
        features = None
        if err == 0 and len(replies) == 1:
            v = decode(s.sets['ping'], replies[0][4:], 'ping')[0]
            features = v.get('features')
            self.check_features(v, None, None)     # and learns what may change
            self.first_ping = v
        if features is None:
            self.fail(f'the first ping failed ({errname(err)}, {len(replies)} replies)')
            features = 0
        self.mount_table = bool(features & s.enum('feature', 'mount-table'))
        if not self.mount_table:
            self.fail(f'ping: the feature mount-table is missing (features {features:#x}); every mount-get '
                      f'must then get EOPNOTSUPP')
            return
        err, entries, intr = dump_request(self.family, s.cmd('mount-get'), s.sets['mount'])
        if err:
            self.fail(f'the first mount-get dump failed: {errname(err)}')
            return
        ids = [v.get('mount-id') for v in entries]
        if not intr and sorted(ids) != sorted(self.mounts):
            self.fail(f'the first mount-get dump lists mounts {sorted(ids)}, mountinfo {sorted(self.mounts)}')
        for v in entries:
            if ('unique-id' in v) != self.has_unique_ids:
                self.fail(f'the first mount-get dump: mount {v.get("mount-id")} {"has" if "unique-id" in v else "lacks"} '
                          f'a unique-id on {self.release}')
            if v.get('unique-id') is not None and v.get('mount-id') is not None:
                self.unique_of[v['mount-id']] = v['unique-id']
                self.by_unique[v['unique-id']] = v['mount-id']
        if len(self.by_unique) != len(self.unique_of):
            self.fail(f'the first mount-get dump gives two mounts the same unique id: {self.unique_of}')

    def pick_mount_id(self):
        """A mount id: one of mountinfo's, or one that is not there (never used, hidden outside
        the caller's root, or a known one with bit 30 set; the policy refuses ids above
        mount-id-max, see gen_mount_get)."""
        r = self.rng
        known = sorted(self.mounts)
        if known and r.random() < 0.65:
            return r.choice(known)
        top = max(known, default=0)
        hidden = [i for i in range(1, top) if i not in self.mounts]
        for _ in range(10):
            x = r.choice([0, top + 1, top + r.randint(2, 1000), 0x7fffffff, r.getrandbits(31),
                          (r.choice(known) if known else 1) | (1 << 30)]
                         + ([r.choice(hidden)] * 3 if hidden else []))
            if x not in self.mounts:
                return x
        return 0

    def pick_unique_id(self):
        """A unique id: one the first dump reported, or one it did not."""
        r = self.rng
        known = sorted(self.by_unique)
        if known and r.random() < 0.65:
            return r.choice(known)
        k = r.choice(known) if known else 1 << 31
        for _ in range(10):
            x = r.choice([0, 1, k + 1, k - 1, max(known, default=k) + r.randint(1, 1000), k ^ (1 << 40),
                          (1 << 31) + r.randint(0, 100), r.getrandbits(64), 0xffffffffffffffff,
                          self.pick_mount_id()])
            if x not in self.by_unique:
                return x
        return 0

    def expect_mount_get(self, mount_id, unique_id):
        """A do naming the mount by mount_id and/or unique_id (None: attribute absent)."""
        if not self.mount_table:
            return Expect(True, errors={errno.EOPNOTSUPP}, extack={errno.EOPNOTSUPP})
        if (mount_id is None) == (unique_id is None):
            return Expect(True, errors={errno.EINVAL}, extack={errno.EINVAL},
                          extack_text={errno.EINVAL: MOUNT_GET_ONE_ID})
        if unique_id is not None and not self.has_unique_ids:
            return Expect(True, errors={errno.EOPNOTSUPP}, extack={errno.EOPNOTSUPP})
        known = mount_id in self.mounts if unique_id is None else unique_id in self.by_unique
        if not known:
            return Expect(True, errors={errno.ENOENT}, extack={errno.ENOENT},
                          extack_text={errno.ENOENT: MOUNT_GET_NO_SUCH})

        def on_ok(replies, sub, w):
            self.check_mount_reply(replies, sub, w, mount_id, unique_id)
        return Expect(True, ok=True, on_ok=on_ok, reply='do')

    def expect_mount_dump(self, with_attrs):
        if not self.mount_table:
            return Expect(True, errors={errno.EOPNOTSUPP}, extack={errno.EOPNOTSUPP})
        if with_attrs:
            return Expect(True, errors={errno.EINVAL}, extack={errno.EINVAL},
                          extack_text={errno.EINVAL: MOUNT_GET_DUMP_ATTRS})

        def on_ok(entries, sub, w):
            self.check_mount_dump(entries, sub, w)
        return Expect(True, ok=True, on_ok=on_ok, reply='dump')

    def render_mount(self, v):
        """A mount-get message in mountinfo's terms (see read_mountinfo)."""
        attr = v.get('attr', 0)
        ro = self.spec.enum('mount-attr', 'ro')
        names = sorted((value, name) for name, value in self.spec.enums['mount-attr'].items() if value != ro)
        options = ('ro' if attr & ro else 'rw') + ''.join(f',{name}' for value, name in names if attr & value)
        optional = [f'{k.replace("-", "_")}:{v[k]}' for k in ('shared', 'master', 'propagate-from') if k in v]
        if v.get('unbindable'):
            optional.append('unbindable')
        return {'mount_id': v.get('mount-id'), 'parent_id': v.get('parent-id'), 'major': v.get('dev-major'),
                'minor': v.get('dev-minor'), 'root': v.get('root'), 'mount_point': v.get('mount-point'),
                'options': options, 'optional': ' '.join(optional), 'fs_type': v.get('fs-type'),
                'source': v.get('source'), 'super_options': v.get('super-options')}

    def mount_differences(self, v):
        """How a mount-get message differs from its mountinfo line (re-read once if it does)."""
        for attempt in (0, 1):
            if attempt:
                self.reload_mounts()
            line = self.mounts.get(v.get('mount-id'))
            got = self.render_mount(v)
            if line is None:
                diff = [f'mount {v.get("mount-id")} is not in mountinfo']
            else:
                diff = [f'{k} {got[k]!r}, mountinfo {want!r}' for k, want in line.items() if got.get(k) != want]
            if not diff:
                return []
        return diff

    def reload_mounts(self):
        self.mounts = read_mountinfo()
        self.stats['mountinfo_reads'] += 1

    def check_mount_fields(self, v, where, sub, worker):
        names = [n for n in self.spec.ops['mount-get'].dump[1]
                 if n not in ('shared', 'master', 'propagate-from', 'unbindable', 'unique-id', 'ns-seq')]
        if self.has_unique_ids:
            names.append('unique-id')
        # Both carry ns-seq: a dump's is the same in every message, a do reply's tells the
        # watcher which events its answer already reflects.
        names.append('ns-seq')
        self.require(v, names, where, sub, worker)
        if 'unique-id' in v and not self.has_unique_ids:
            self.fail(f'{where}: unique-id {v["unique-id"]} on {self.release}, which has no unique mount ids',
                      worker, sub)
        mid, uid = v.get('mount-id'), v.get('unique-id')
        if uid is not None and mid in self.unique_of and self.unique_of[mid] != uid:
            self.fail(f'{where}: mount {mid} has unique-id {uid}, the first dump said {self.unique_of[mid]}',
                      worker, sub)
        if 'mnt-ns' in v and v['mnt-ns'] != self.mnt_ns:
            self.fail(f'{where}: mnt-ns {v["mnt-ns"]}, the caller\'s is {self.mnt_ns}', worker, sub)
        diff = self.mount_differences(v)
        if diff:
            self.fail(f'{where}: {"; ".join(diff)}', worker, sub)

    def check_mount_reply(self, replies, sub, worker, mount_id, unique_id):
        """A successful do: one message, for the mount asked for, equal to its mountinfo line."""
        v = self.one_reply(replies, 'mount-get', sub, worker)
        if v is None:
            return
        where = f'mount-get of {"mount-id " + str(mount_id) if unique_id is None else "unique-id " + str(unique_id)}'
        if (mount_id is None) == (unique_id is None):
            self.fail(f'mount-get with {"both ids" if mount_id is not None else "neither id"} succeeded '
                      f'(mount {v.get("mount-id")})', worker, sub)
            return
        if unique_id is not None:
            if not self.has_unique_ids:
                self.fail(f'{where} succeeded on {self.release}, which has no unique mount ids', worker, sub)
            elif v.get('unique-id') != unique_id:
                self.fail(f'{where} answered with unique-id {v.get("unique-id")} (mount {v.get("mount-id")})',
                          worker, sub)
            elif unique_id not in self.by_unique:
                self.fail(f'{where} answered with mount {v.get("mount-id")}, but the first dump had no such '
                          f'unique id', worker, sub)
            elif v.get('mount-id') != self.by_unique[unique_id]:
                self.fail(f'{where} answered with mount {v.get("mount-id")}, the first dump says '
                          f'{self.by_unique[unique_id]}', worker, sub)
        elif v.get('mount-id') != mount_id:
            self.fail(f'{where} answered with mount-id {v.get("mount-id")}', worker, sub)
            return
        self.check_mount_fields(v, where, sub, worker)
        self.stats['mount_gets_checked'] += 1
        self.mount_checked['root' if worker.uid == 0 else 'nobody']['do'] += 1

    def check_mount_dump(self, entries, sub, worker):
        """A complete, uninterrupted mount-get dump: every mount of mountinfo, once each."""
        seen = {}
        for v in entries:
            mid = v.get('mount-id')
            if mid in seen:
                self.fail(f'the mount-get dump lists mount {mid} twice', worker, sub)
            seen[mid] = v
        for attempt in (0, 1):
            if attempt:
                self.reload_mounts()
            only_dump = sorted(set(seen) - set(self.mounts), key=str)
            only_mountinfo = sorted(set(self.mounts) - set(seen))
            if not only_dump and not only_mountinfo:
                break
        else:
            self.fail(f'the mount-get dump ({len(seen)} mounts) differs from mountinfo ({len(self.mounts)}): '
                      f'only in the dump {only_dump[:20]}, only in mountinfo {only_mountinfo[:20]}', worker, sub)
        ns_seqs = {v.get('ns-seq') for v in entries}
        if len(ns_seqs) > 1:
            self.fail(f'the messages of one mount-get dump carry different ns-seq values {sorted(ns_seqs, key=str)}',
                      worker, sub)
        self.ns_seqs |= ns_seqs - {None}
        for v in entries:
            if v.get('mount-id') in self.mounts:
                self.check_mount_fields(v, f'mount-get dump, mount {v.get("mount-id")}', sub, worker)
        self.stats['mount_dumps_checked'] += 1
        self.mount_checked['root' if worker.uid == 0 else 'nobody']['dump'] += 1

    # ---- the oracle for statfs ---------------------------------------------------------

    def learn_statfs(self):
        """At the start: the feature statfs (ping), statfs(2) of every mount point and the mount
        each one's path leads to, and a first dump, which must list mountinfo's mounts."""
        s = self.spec
        features = (self.first_ping or {}).get('features') or 0
        self.statfs_feature = bool(features & s.enum('feature', 'statfs'))
        if not self.statfs_feature:
            self.fail(f'ping: the feature statfs is missing (features {features:#x}); every statfs must then get '
                      f'EOPNOTSUPP')
            return
        for mid, line in self.mounts.items():
            top, numbers = statfs_of_path(line['mount_point'])
            if top is None:
                continue
            self.statfs_paths[line['mount_point']] = top
            if top == mid:
                self.statfs_truth[mid] = numbers
        err, entries, _ = dump_request(self.family, s.cmd('statfs'), s.sets['statfs'])
        if err:
            self.fail(f'the first statfs dump failed: {errname(err)}')
            return
        ids = [v.get('mount-id') for v in entries]
        if sorted(ids) != sorted(self.mounts):
            self.fail(f'the first statfs dump lists mounts {sorted(ids)}, mountinfo {sorted(self.mounts)}')

    def pick_timeout(self):
        """No timeout-ms (the module's default), a long one, or a very short one (statfs may then
        answer ETIMEDOUT)."""
        r = self.rng
        x = r.random()
        if x < 0.5:
            return None
        if x < 0.85:
            return r.choice([1000, 5000, 60000, r.randint(100, 60000)])
        return r.randint(1, 20)

    def pick_statfs_path(self):
        """The path of a mount point (known: the mount on top of it), or one that does not exist."""
        r = self.rng
        known = sorted(self.statfs_paths)
        if known and r.random() < 0.8:
            return r.choice(known)
        return r.choice([f'{EXTRA_MOUNT_DIR}/none-{r.randint(0, 99)}', f'/{self.rand_string(12)}-none',
                         f'{EXTRA_MOUNT_DIR}/m00/none/' + self.rand_string(8)])

    def statfs_expected_id(self, mount_id, unique_id, path):
        """The mount a statfs do names (None: unknown, or not exactly one selector)."""
        if sum(x is not None for x in (mount_id, unique_id, path)) != 1:
            return None
        if mount_id is not None:
            return mount_id if mount_id in self.mounts else None
        if unique_id is not None:
            return self.by_unique.get(unique_id)
        if path in self.statfs_paths:
            return self.statfs_paths[path]
        if path.startswith('/'):
            top, _ = statfs_of_path(path)
            return top
        return None  # relative: the sender's working directory decides

    def expect_statfs(self, mount_id, unique_id, path, worker=None):
        """A do naming the mount by mount_id, unique_id and/or path (None: absent), each valid."""
        if not self.statfs_feature:
            return Expect(True, errors={errno.EOPNOTSUPP}, extack={errno.EOPNOTSUPP})
        if sum(x is not None for x in (mount_id, unique_id, path)) != 1:
            return Expect(True, errors={errno.EINVAL}, extack={errno.EINVAL},
                          extack_text={errno.EINVAL: STATFS_ONE_SELECTOR})
        if unique_id is not None and not self.has_unique_ids:
            return Expect(True, errors={errno.EOPNOTSUPP}, extack={errno.EOPNOTSUPP})
        want = self.statfs_expected_id(mount_id, unique_id, path)
        if path is not None and path not in self.statfs_paths:
            return Expect(True, errors={errno.ENOENT}, extack={errno.ENOENT},
                          extack_text={errno.ENOENT: STATFS_NO_SUCH_PATH})
        if want is None:
            return Expect(True, errors={errno.ENOENT}, extack={errno.ENOENT},
                          extack_text={errno.ENOENT: MOUNT_GET_NO_SUCH})

        def on_ok(replies, sub, w):
            self.check_statfs_reply(replies, sub, w, want)
        # uid 65534 may not walk every path that leads to a mount point.
        errors = {errno.EACCES} if path is not None and worker is not None and worker.uid != 0 else set()
        return Expect(True, ok=True, on_ok=on_ok, reply='do', errors=errors)

    def expect_statfs_dump(self, with_selector):
        if not self.statfs_feature:
            return Expect(True, errors={errno.EOPNOTSUPP}, extack={errno.EOPNOTSUPP})
        if with_selector:
            return Expect(True, errors={errno.EINVAL}, extack={errno.EINVAL},
                          extack_text={errno.EINVAL: STATFS_DUMP_ATTRS})

        def on_ok(entries, sub, w):
            self.check_statfs_dump(entries, sub, w)
        return Expect(True, ok=True, on_ok=on_ok, reply='dump')

    def statfs_differences(self, v):
        """How a statfs message differs from its mount's mountinfo line and statfs(2) (both read
        again once if it does)."""
        mid = v.get('mount-id')
        for attempt in (0, 1):
            if attempt:
                self.reload_mounts()
                line = self.mounts.get(mid)
                if line is not None:
                    top, numbers = statfs_of_path(line['mount_point'])
                    if top == mid:
                        self.statfs_truth[mid] = numbers
            line = self.mounts.get(mid)
            if line is None:
                diff = [f'mount {mid} is not in mountinfo']
            else:
                diff = [f'{k} {v.get(k)!r}, mountinfo {line[t]!r}' for k, t in
                        (('mount-point', 'mount_point'), ('fs-type', 'fs_type'), ('source', 'source'),
                         ('dev-major', 'major'), ('dev-minor', 'minor')) if v.get(k) != line[t]]
                truth = self.statfs_truth.get(mid)
                if truth is not None and 'error' not in v:
                    exact = line['mount_point'].startswith(EXTRA_MOUNT_DIR + '/')
                    diff += [f'{k} {v.get(k)!r}, statfs(2) {truth[k]!r}'
                             for k in (STATFS_NUMBERS if exact else STATFS_STABLE) if v.get(k) != truth[k]]
            if not diff:
                return []
        return diff

    def check_statfs_fields(self, v, where, sub, worker):
        names = ['mount-id', 'mount-point', 'fs-type', 'source', 'dev-major', 'dev-minor', 'mnt-ns']
        if self.has_unique_ids:
            names.append('unique-id')
        self.require(v, names, where, sub, worker)
        if 'unique-id' in v and not self.has_unique_ids:
            self.fail(f'{where}: unique-id {v["unique-id"]} on {self.release}, which has no unique mount ids',
                      worker, sub)
        mid, uid = v.get('mount-id'), v.get('unique-id')
        if uid is not None and mid in self.unique_of and self.unique_of[mid] != uid:
            self.fail(f'{where}: mount {mid} has unique-id {uid}, the first dump said {self.unique_of[mid]}',
                      worker, sub)
        if v.get('mnt-ns') != self.mnt_ns:
            self.fail(f'{where}: mnt-ns {v.get("mnt-ns")}, the caller\'s is {self.mnt_ns}', worker, sub)
        numbers = [k for k in STATFS_NUMBERS if k in v]
        if 'error' in v:
            if v['error'] != errno.ETIMEDOUT:
                self.fail(f'{where}: error {errname(v["error"])} (only ETIMEDOUT is possible here)', worker, sub)
            if numbers:
                self.fail(f'{where}: error {errname(v["error"])} and numbers {numbers}', worker, sub)
            self.stats['statfs_timeouts'] += 1
        else:
            self.require(v, STATFS_NUMBERS, where, sub, worker)
            if not v.get('flags', 0) & ST_VALID:
                self.fail(f'{where}: flags {v.get("flags")} without ST_VALID', worker, sub)
            for part, whole in (('blocks-free', 'blocks'), ('blocks-available', 'blocks'), ('files-free', 'files')):
                if v.get(part, 0) > v.get(whole, 0):
                    self.fail(f'{where}: {part} {v.get(part)} exceeds {whole} {v.get(whole)}', worker, sub)
            if mid in self.statfs_truth:
                self.stats['statfs_numbers_compared'] += 1
                if self.mounts.get(mid, {}).get('mount_point', '').startswith(EXTRA_MOUNT_DIR + '/'):
                    self.stats['statfs_exact_compared'] += 1
        diff = self.statfs_differences(v)
        if diff:
            self.fail(f'{where}: {"; ".join(diff)}', worker, sub)

    def check_statfs_reply(self, replies, sub, worker, want):
        """A successful do: one message, for the mount named (want: its id, None if not known)."""
        v = self.one_reply(replies, 'statfs', sub, worker)
        if v is None:
            return
        mount_id, unique_id, path = sub.hint
        where = f'statfs of {"mount-id " + str(mount_id) if mount_id is not None else ""}' \
                f'{"unique-id " + str(unique_id) if unique_id is not None else ""}{"path " + repr(path) if path else ""}'
        if sum(x is not None for x in sub.hint) != 1:
            self.fail(f'{where}: a statfs naming {sum(x is not None for x in sub.hint)} mounts succeeded', worker, sub)
            return
        if unique_id is not None and not self.has_unique_ids:
            self.fail(f'{where} succeeded on {self.release}, which has no unique mount ids', worker, sub)
            return
        if want is not None and v.get('mount-id') != want:
            self.fail(f'{where} answered with mount {v.get("mount-id")}, expected {want}', worker, sub)
            return
        if want is None and mount_id is not None:
            self.fail(f'{where} answered (mount {v.get("mount-id")}), but mountinfo has no such mount', worker, sub)
            return
        self.check_statfs_fields(v, where, sub, worker)
        self.stats['statfs_checked'] += 1
        self.statfs_checked['root' if worker.uid == 0 else 'nobody']['do'] += 1

    def check_statfs_dump(self, entries, sub, worker):
        """A complete statfs dump: every mount of mountinfo, once each, each as a do would say."""
        seen = {}
        for v in entries:
            mid = v.get('mount-id')
            if mid in seen:
                self.fail(f'the statfs dump lists mount {mid} twice', worker, sub)
            seen[mid] = v
        for attempt in (0, 1):
            if attempt:
                self.reload_mounts()
            only_dump = sorted(set(seen) - set(self.mounts), key=str)
            only_mountinfo = sorted(set(self.mounts) - set(seen))
            if not only_dump and not only_mountinfo:
                break
        else:
            self.fail(f'the statfs dump ({len(seen)} mounts) differs from mountinfo ({len(self.mounts)}): '
                      f'only in the dump {only_dump[:20]}, only in mountinfo {only_mountinfo[:20]}', worker, sub)
        for v in entries:
            if v.get('mount-id') in self.mounts:
                self.check_statfs_fields(v, f'statfs dump, mount {v.get("mount-id")}', sub, worker)
        self.stats['statfs_dumps_checked'] += 1
        self.statfs_checked['root' if worker.uid == 0 else 'nobody']['dump'] += 1

    def one_reply(self, replies, op, sub, worker):
        if len(replies) != 1:
            self.fail(f'{op}: {len(replies)} reply messages, expected 1', worker, sub)
            return None
        return replies[0]

    def require(self, v, names, where, sub, worker):
        missing = [n for n in names if n not in v and n != 'cookie']
        if missing:
            self.fail(f'{where} lacks {", ".join(missing)}', worker, sub)

    # ---- building cases ----------------------------------------------------------------

    def build(self, worker, sock):
        """Chooses what to send: (list of (op, label, attrs tree, expect, header tweaks))."""
        r = self.rng
        op = r.choices(['ping', 'listener-register', 'listener-unregister', 'listener-get', 'inject', 'stats',
                        'mount-get', 'statfs', 'event-cmd', 'unknown-cmd', 'header', 'garbage'],
                       [10, 22, 13, 8, 13, 7, 9, 9, 4, 5, 8, 3])[0]
        if op == 'event-cmd':
            cmd = r.choice(list(self.event_cmds))
            attrs = [self.fuzz_attr(self.spec.sets['event']) for _ in range(r.randint(0, 3))]
            return self.plain(self.all_cmds[cmd], 'event-command', cmd, attrs,
                              Expect(True, errors={errno.EOPNOTSUPP}))
        if op == 'unknown-cmd':
            cmd = r.choice([0] + list(range(max(self.all_cmds) + 1, 256)))
            attrs = [self.fuzz_attr(self.spec.sets[r.choice(list(self.spec.sets))]) for _ in range(r.randint(0, 3))]
            return self.plain('unknown-cmd', f'cmd-{"0" if cmd == 0 else "high"}', cmd, attrs,
                              Expect(True, errors={errno.EOPNOTSUPP}))
        if op == 'header':
            return self.header_case(worker, sock)
        if op == 'garbage':
            return self.garbage_case(worker, sock)
        if op == 'listener-register' and r.random() < 0.03:
            return self.flood_case(worker, sock)
        mode = r.choices(['valid', 'semantic', 'mutate'], [40, 15, 45])[0]
        if op == 'listener-get' and mode == 'semantic':
            mode = 'valid'
        if op in ('ping', 'stats') and mode == 'semantic':
            mode = 'mutate'
        label, attrs, expect = getattr(self, 'gen_' + op.replace('-', '_'))(worker, sock, mode)
        dump = self.is_dump(op, label)
        if mode == 'mutate':
            label, attrs = self.mutate(op, attrs)
            label = f'{"dump-" if dump and op in DO_AND_DUMP_OPS else ""}{label}'
            expect = self.plausible(op, worker, sock)
        return self.plain(op, f'{mode}:{label}', self.spec.cmd(op), attrs, expect, dump)

    @staticmethod
    def is_dump(op, label):
        """Whether a generated request goes out as a dump: listener-get always; mount-get and statfs
        have a do and a dump, and gen_mount_get and gen_statfs name their dumps' labels dump..."""
        return op == 'listener-get' or op in DO_AND_DUMP_OPS and label.startswith('dump')

    def plain(self, op, label, cmd, attrs, expect, dump=None):
        """One message: dump (None: whether op is dump-only) sets NLM_F_DUMP."""
        return {'op': op, 'label': label, 'cmd': cmd, 'attrs': attrs, 'expect': expect,
                'dump': op == 'listener-get' if dump is None else dump}

    def plausible(self, op, worker, sock):
        """What a mutated request of op may get: a plausible error, or success (checked)."""
        def on_ok(replies, sub, w):
            if op == 'ping':
                v = self.one_reply(replies, op, sub, w)
                if v is not None and v.get('protocol-version') != self.spec.protocol_version:
                    self.fail(f'ping: protocol-version {v.get("protocol-version")}', w, sub)
            elif op == 'listener-register':
                self.registered(replies, sub, w, sock, None, None)
            elif op == 'listener-unregister':
                lid = sub.hint
                li = self.model.listeners.get(lid) if lid is not None else None
                if li is None:
                    if lid is not None and lid not in self.model.ever and self.model.uncertain(w.netns):
                        return  # a registration whose reply was lost
                    self.fail(f'listener-unregister of id {lid} succeeded, but no such listener was registered', w, sub)
                    return
                if w.uid != 0 and li.uid != w.uid:
                    self.fail(f'uid {w.uid} unregistered listener {lid} of uid {li.uid}', w, sub)
                if li.netns != w.netns:
                    self.fail(f'listener {lid} of another network namespace was unregistered', w, sub)
                self.model.listeners.pop(lid, None)
            elif op == 'listener-get':
                self.check_dump(replies, sub, w, exact=not sub.multi)
            elif op == 'inject':
                self.injected(replies, sub, w, None, None)
            elif op == 'stats':
                v = self.one_reply(replies, op, sub, w)
                if v is not None:
                    self.check_stats(v, sub, w)
            elif op == 'mount-get':
                if sub.dump:
                    if sub.attrs_len:
                        self.fail(f'a mount-get dump with {sub.attrs_len} bytes of attributes succeeded', w, sub)
                    else:
                        self.check_mount_dump(replies, sub, w)
                else:
                    self.check_mount_reply(replies, sub, w, *sub.hint)
            elif op == 'statfs':
                if sub.dump:
                    if any(x is not None for x in sub.hint):
                        self.fail(f'a statfs dump naming a mount succeeded: {sub.hint}', w, sub)
                    else:
                        self.check_statfs_dump(replies, sub, w)
                else:
                    self.check_statfs_reply(replies, sub, w, self.statfs_expected_id(*sub.hint))
        if op == 'statfs':
            errors = PLAUSIBLE_STATFS_ERRORS | ({errno.EOPNOTSUPP} if not self.has_unique_ids or
                                                not self.statfs_feature else set())
            return Expect(False, errors=errors, ok=True, on_ok=on_ok, reply='auto')
        if op == 'mount-get':
            errors = PLAUSIBLE_MOUNT_GET_ERRORS | ({errno.EOPNOTSUPP} if not self.has_unique_ids or
                                                   not self.mount_table else set())
            return Expect(False, errors=errors, ok=True, on_ok=on_ok, reply='auto')
        return Expect(False, errors=PLAUSIBLE_ERRORS, ok=True, on_ok=on_ok,
                      reply={'listener-unregister': None, 'listener-get': 'dump'}.get(op, 'do'))

    def gen_mount_get(self, worker, sock, mode):
        """A do by mount-id or unique-id, or a dump (labels starting with dump, see is_dump)."""
        r = self.rng
        ma = lambda n: self.spec.attr('mount', n)  # noqa: E731
        if mode == 'semantic':
            kind = r.choice(['no-id', 'both-ids', 'dump-with-attributes', 'mount-id-out-of-range'])
            if kind == 'no-id':
                return kind, [], self.expect_mount_get(None, None)
            if kind == 'mount-id-out-of-range':
                # Mount ids are ints (an IDA's): the policy's range (max mount-id-max) refuses more.
                top = self.spec.sets['mount'].by_name['mount-id'].checks['max']
                bad = r.choice([top + 1, 0xffffffff, 0xffffffffffffffff, top + 1 + r.getrandbits(40)])
                return kind, [A(ma('mount-id'), u64(bad))], Expect(True, errors={errno.ERANGE})
            mount_id, unique_id = self.pick_mount_id(), self.pick_unique_id()
            attrs = [A(ma('mount-id'), u64(mount_id)), A(ma('unique-id'), u64(unique_id))]
            r.shuffle(attrs)
            if kind == 'dump-with-attributes':
                return kind, attrs[:r.randint(1, 2)], self.expect_mount_dump(True)
            return kind, attrs, self.expect_mount_get(mount_id, unique_id)
        x = r.random()
        if x < 0.2:
            return 'dump', [], self.expect_mount_dump(False)
        if x < 0.7:
            mount_id = self.pick_mount_id()
            label = 'mount-id' if mount_id in self.mounts else 'unknown-mount-id'
            return label, [A(ma('mount-id'), u64(mount_id))], self.expect_mount_get(mount_id, None)
        unique_id = self.pick_unique_id()
        label = 'unique-id' if unique_id in self.by_unique else 'unknown-unique-id'
        return label, [A(ma('unique-id'), u64(unique_id))], self.expect_mount_get(None, unique_id)

    def gen_statfs(self, worker, sock, mode):
        """A do by mount-id, unique-id or path, or a dump (labels starting with dump, see is_dump),
        each with or without timeout-ms."""
        r = self.rng
        sa = lambda n: self.spec.attr('statfs', n)  # noqa: E731
        timeout = self.pick_timeout()
        tail = [A(sa('timeout-ms'), u32(timeout))] if timeout is not None else []
        if mode == 'semantic':
            kind = r.choice(['none', 'two', 'three', 'dump-with-selector', 'timeout-out-of-range'])
            mount_id, unique_id, path = self.pick_mount_id(), self.pick_unique_id(), self.pick_statfs_path()
            attrs = [A(sa('mount-id'), u64(mount_id)), A(sa('unique-id'), u64(unique_id)),
                     self.string_attr(sa('path'), path)]
            r.shuffle(attrs)
            if kind == 'none':
                return kind, tail, self.expect_statfs(None, None, None)
            if kind == 'dump-with-selector':
                return kind, attrs[:r.randint(1, 3)] + tail, self.expect_statfs_dump(True)
            if kind == 'timeout-out-of-range':
                out = A(sa('timeout-ms'), u32(r.choice([0, 60001, 0x7fffffff, 0xffffffff])))
                return kind, [A(sa('mount-id'), u64(mount_id)), out], Expect(True, errors={errno.ERANGE})
            chosen = attrs[:2 if kind == 'two' else 3]
            named = {a.t for a in chosen}
            return kind, chosen + tail, self.expect_statfs(mount_id if sa('mount-id') in named else None,
                                                           unique_id if sa('unique-id') in named else None,
                                                           path if sa('path') in named else None)
        x = r.random()
        if x < 0.2:
            return 'dump', tail, self.expect_statfs_dump(False)
        if x < 0.55:
            mount_id = self.pick_mount_id()
            label = 'mount-id' if mount_id in self.mounts else 'unknown-mount-id'
            return label, [A(sa('mount-id'), u64(mount_id))] + tail, self.expect_statfs(mount_id, None, None)
        if x < 0.7:
            unique_id = self.pick_unique_id()
            label = 'unique-id' if unique_id in self.by_unique else 'unknown-unique-id'
            return label, [A(sa('unique-id'), u64(unique_id))] + tail, self.expect_statfs(None, unique_id, None)
        path = self.pick_statfs_path()
        label = 'path' if path in self.statfs_paths else 'no-such-path'
        return label, [self.string_attr(sa('path'), path)] + tail, self.expect_statfs(None, None, path, worker)

    def gen_ping(self, worker, sock, mode):
        if self.rng.random() < 0.3:
            return 'no-cookie', [], self.expect_ping(None)
        cookie = self.rand_u64()
        return 'cookie', [A(self.spec.attr('ping', 'cookie'), u64(cookie))], self.expect_ping(cookie)

    def gen_stats(self, worker, sock, mode):
        return 'stats', [], self.expect_stats()

    def gen_listener_get(self, worker, sock, mode):
        return 'dump', [], self.expect_dump(worker)

    def gen_listener_register(self, worker, sock, mode):
        r = self.rng
        la = lambda n: self.spec.attr('listener', n)  # noqa: E731
        max_n = self.params['max_notifiers_per_listener']
        big = r.random() < 0.02
        if big:
            count = r.randint(1, 3)
        elif r.random() < 0.1:
            count = r.randint(1, max_n)
        else:
            count = r.randint(1, 4)
        admin = self.admin(worker)
        pairs = [self.notifier(long_prefix=big, admin=admin) for _ in range(count)]
        global_flag = worker.uid == 0 and r.random() < 0.15
        flags = self.GLOBAL if global_flag else 0
        attrs = []
        if flags or r.random() < 0.5:
            attrs.append(A(la('flags'), u32(flags)))
        label = 'big' if big else 'register'
        violation = None
        if mode == 'semantic':
            kind = r.choice(['no-notifier', 'wrong-action', 'missing', 'zero-flags', 'global-unprivileged',
                             'too-many', 'kern-log-unprivileged', 'space-attr-elsewhere', 'thresholds',
                             'threshold-zero'])
            if kind == 'no-notifier':
                pairs = []
                violation = errno.EINVAL
            elif kind == 'wrong-action':
                attr, model = pairs[r.randrange(len(pairs))]
                other = [a for a in self.ACT.values() if a not in self.actions_of[model['type']]]
                for k in attr.kids:
                    if k.t == self.spec.attr('notifier', 'action'):
                        k.v = u32(r.choice(other))
                violation = errno.EINVAL
            elif kind == 'missing':
                attr, _ = pairs[r.randrange(len(pairs))]
                drop = self.spec.attr('notifier', r.choice(['type', 'action', 'flags']))
                attr.kids = [k for k in attr.kids if k.t != drop]
                violation = errno.EINVAL
            elif kind == 'zero-flags':
                attr, _ = pairs[r.randrange(len(pairs))]
                for k in attr.kids:
                    if k.t == self.spec.attr('notifier', 'flags'):
                        k.v = u32(0)
                violation = errno.EINVAL
            elif kind == 'global-unprivileged':
                if worker.uid == 0:
                    kind, violation = 'too-many', None
                else:
                    attrs = [A(la('flags'), u32(self.GLOBAL))]
                    violation = errno.EPERM
            elif kind == 'kern-log-unprivileged':
                # A kern-log notifier among others: EPERM for 65534, a valid request for root.
                attr, model = self.notifier(flags=r.choice([self.KERN_LOG, self.KERN_LOG | self.NOTIFY]))
                pairs.insert(r.randint(0, len(pairs)), (attr, model))
                if len(pairs) > max_n:
                    pairs = pairs[:max_n]
                    if (attr, model) not in pairs:
                        pairs[-1] = (attr, model)
                violation = None    # the oracle knows who may (expect_register)
            elif kind == 'space-attr-elsewhere':
                # A low-space attribute on a notifier of another action: EINVAL naming it.
                na = lambda n: self.spec.attr('notifier', n)  # noqa: E731
                attr, model = pairs[r.randrange(len(pairs))]
                if model['action'] == self.ACT['low-space']:
                    attr, model = self.notifier(ntype=self.T['storage'], action=self.ACT['enospc'], admin=admin)
                    pairs[r.randrange(len(pairs))] = (attr, model)
                name = r.choice(['threshold', 'threshold-inodes', 'threshold-bytes', 'hysteresis', 'interval-ms'])
                value = {'threshold-bytes': u64(1 << 20), 'interval-ms': u32(1000)}.get(name, u32(10))
                attr.kids.insert(r.randint(0, len(attr.kids)), A(na(name), value))
                violation = errno.EINVAL
            elif kind in ('thresholds', 'threshold-zero'):
                # A low-space notifier with no threshold, two or three, or one of 0: EINVAL.
                na = lambda n: self.spec.attr('notifier', n)  # noqa: E731
                attr, model = self.notifier(ntype=self.T['storage'], action=self.ACT['low-space'], admin=admin)
                names = ('threshold', 'threshold-inodes', 'threshold-bytes')
                ids = {na(n): n for n in names}
                attr.kids = [k for k in attr.kids if k.t not in ids]
                if kind == 'threshold-zero':
                    chosen = [r.choice(names)]
                else:
                    chosen = r.choice([[], r.sample(names, 2), list(names)])
                for n in chosen:
                    zero = kind == 'threshold-zero'
                    v = 0 if zero else 5
                    attr.kids.append(A(na(n), u64(v if zero else 1 << 20) if n == 'threshold-bytes' else u32(v)))
                pairs[r.randrange(len(pairs))] = (attr, model)
                violation = errno.EINVAL
            if kind == 'too-many':
                extra = r.choice([1, 2, r.randint(1, 100), r.randint(100, 2000)])
                pairs = [self.notifier(selectors=False) for _ in range(max_n + extra)]
                violation = errno.E2BIG
            label = kind
        attrs.extend(a for a, _ in pairs)
        if r.random() < 0.5:
            r.shuffle(attrs)
        # The listener keeps its notifiers in the order they were sent.
        model_of = {id(a): m for a, m in pairs}
        notifiers = [model_of[id(a)] for a in attrs if id(a) in model_of]
        # Judged in order with the other messages of a datagram, so computed then.
        return label, attrs, lambda: self.expect_register(worker, sock, flags if violation is None else None,
                                                          notifiers, violation)

    def pick_id(self, worker):
        r = self.rng
        m = self.model
        own = [li.id for li in m.listeners.values() if li.worker is worker]
        others = [li.id for li in m.listeners.values() if li.worker is not worker]
        x = r.random()
        if own and x < 0.45:
            return r.choice(own)
        if others and x < 0.7:
            return r.choice(others)
        if m.ever and x < 0.8:
            return r.choice(sorted(m.ever))
        return r.choice([1, 2, 0x7fffffff, 0xffffffff, r.getrandbits(32) | 1, max(m.ever, default=0) + r.randint(1, 50)])

    def gen_listener_unregister(self, worker, sock, mode):
        lid = self.pick_id(worker)
        return 'unregister', [A(self.spec.attr('listener', 'id'), u32(lid))], lambda: self.expect_unregister(worker, lid)

    def gen_inject(self, worker, sock, mode):
        r = self.rng
        ea = lambda n: self.spec.attr('event', n)  # noqa: E731
        t = r.choice(list(self.actions_of))
        action = r.choice(self.actions_of[t])
        violation = None
        label = 'inject'
        if mode == 'semantic':
            kind = r.choice(['wrong-action', 'no-type', 'no-action'])
            label = kind
            violation = errno.EINVAL
            if kind == 'wrong-action':
                action = r.choice([a for a in self.ACT.values() if a not in self.actions_of[t]])
        ev = {'type': t, 'action': action}
        # Now and then an event a listener's selectors pick, so that selectors are exercised.
        picked = None
        live = [li for li in self.model.listeners.values() if li.notifiers and not li.gone]
        if live and r.random() < 0.4:
            picked = r.choice(r.choice(live).notifiers)
            if mode != 'semantic':
                ev['type'], ev['action'] = t, action = picked['type'], picked['action']
        attrs = []
        if label != 'no-type':
            attrs.append(A(ea('type'), u32(t)))
        if label != 'no-action':
            attrs.append(A(ea('action'), u32(action)))
        if picked is not None and 'mount-id' in picked and r.random() < 0.8:
            ev['mount-id'] = picked['mount-id']
        elif r.random() < 0.5:
            ev['mount-id'] = self.rand_mount_id()
        if r.random() < 0.3:
            ev['parent-id'] = self.rand_mount_id()
        if picked is not None and 'path-prefix' in picked and r.random() < 0.8:
            p = picked['path-prefix']
            ev['path'] = r.choice([p, p.rstrip('/') + '/' + self.rand_string(3), p + self.rand_string(2)])[:4000]
        elif r.random() < 0.6:
            ev['path'] = self.rand_path()
        if r.random() < 0.3:
            ev['fs-type'] = self.rand_string(r.randint(0, 63))
        if r.random() < 0.3:
            ev['source'] = self.rand_string(r.randint(0, 300))
        if r.random() < 0.3:
            ev['dev'] = self.rand_u32()
        if r.random() < 0.3:
            ev['count'] = r.randint(1, 0xffffffff)
        if r.random() < 0.3:
            ev['subtree'] = True
        for key, value in ev.items():
            if key in ('type', 'action'):
                continue
            if key in ('path', 'fs-type', 'source'):
                attrs.append(self.string_attr(ea(key), value))
            elif key == 'subtree':
                attrs.append(A(ea('subtree')))
            elif key in ('mount-id', 'parent-id'):
                attrs.append(A(ea(key), u64(value)))
            else:
                attrs.append(A(ea(key), u32(value)))
        repeat = None
        x = r.random()
        if x < 0.25:
            repeat = r.randint(1, 32)
        elif x < 0.31:
            repeat = r.randint(33, 1100)
        elif x < 0.32:
            repeat = r.randint(1100, 65536)
        if repeat is not None:
            attrs.append(A(ea('repeat'), u32(repeat)))
        r.shuffle(attrs)
        return label, attrs, self.expect_inject(worker, repeat or 1, violation, ev if violation is None else None)

    # ---- mutations ---------------------------------------------------------------------

    def fuzz_attr(self, attr_set):
        """A random attribute of a set, with a random (maybe wrong) payload."""
        r = self.rng
        spec = r.choice(attr_set.attrs)
        return A(spec.id, self.garbage_value(spec), fl=r.choice([0, 0, 0, NLA_F_NESTED, NLA_F_NET_BYTEORDER]))

    def garbage_value(self, spec):
        r = self.rng
        x = r.random()
        if x < 0.3:
            return r.randbytes(r.choice([0, 1, 2, 3, 4, 5, 7, 8, 9, 16, 64]))
        if x < 0.5:
            return u32(self.rand_u32())
        if x < 0.7:
            return u64(self.rand_u64())
        return self.rand_string(r.randint(0, 64)).encode() + (b'\0' if r.random() < 0.7 else b'')

    def targets(self, attrs):
        """Every (list, index) position of the tree, for mutations that pick a target."""
        out = []
        for i, a in enumerate(attrs):
            out.append((attrs, i))
            if a.kids is not None:
                out.extend(self.targets(a.kids))
        return out

    def set_of(self, op):
        return self.spec.ops[op].attr_set or self.spec.sets['ping']

    def mutate(self, op, attrs):
        r = self.rng
        kinds = ['drop', 'dup', 'unknown-id', 'reply-attr', 'len-short', 'len-long', 'str-no-nul', 'str-long',
                 'str-empty', 'str-inner-nul', 'nest-flag-missing', 'nested-flag-on-scalar', 'byteorder-flag',
                 'nest-garbage', 'nest-deep', 'out-of-range', 'nla-len-lie', 'trailing-bytes', 'random-bytes',
                 'bitflip', 'many-notifiers', 'pad-attr', 'wrong-set', 'zero-type']
        kind = r.choice(kinds)
        attrs = [a.copy() for a in attrs]
        set_ = self.set_of(op)
        spots = self.targets(attrs)
        if kind == 'drop':
            if spots:
                lst, i = r.choice(spots)
                del lst[i]
        elif kind == 'dup':
            if spots:
                lst, i = r.choice(spots)
                c = lst[i].copy()
                if c.kids is None and c.v and r.random() < 0.5:
                    c.v = r.randbytes(len(c.v))
                lst.insert(r.randint(0, len(lst)), c)
        elif kind == 'unknown-id':
            t = r.choice([0, set_.max_id + 1, set_.max_id + r.randint(2, 50), NLA_TYPE_MASK, r.getrandbits(14)])
            lst = r.choice([attrs] + [a.kids for a in attrs if a.kids is not None])
            lst.insert(r.randint(0, len(lst)), A(t, self.garbage_value(r.choice(set_.attrs))))
        elif kind == 'reply-attr':
            request = set(self.spec.ops[op].do[0] if self.spec.ops[op].do else [])
            cands = [a for a in set_.attrs if a.name not in request]
            if cands:
                a = r.choice(cands)
                attrs.insert(r.randint(0, len(attrs)), A(a.id, self.garbage_value(a),
                                                         fl=NLA_F_NESTED if a.type == 'nest' else 0))
        elif kind in ('len-short', 'len-long'):
            scalars = [(lst, i) for lst, i in spots if lst[i].kids is None]
            if scalars:
                lst, i = r.choice(scalars)
                a = lst[i]
                if kind == 'len-short':
                    a.v = a.v[:r.randint(0, max(0, len(a.v) - 1))]
                else:
                    a.v = a.v + r.randbytes(r.choice([1, 2, 3, 4, 8, 60]))
        elif kind.startswith('str-'):
            ids = self.string_ids(op)
            strs = [(lst, i) for lst, i in spots if lst[i].kids is None and lst[i].t in ids]
            if strs:
                lst, i = r.choice(strs)
                a = lst[i]
            else:
                a = A(r.choice(sorted(ids)) if ids else 1, b'')
                r.choice([attrs] + [x.kids for x in attrs if x.kids is not None]).append(a)
            if kind == 'str-no-nul':
                a.v = a.v.rstrip(b'\0') or self.rand_string(r.randint(1, 20)).encode()
            elif kind == 'str-long':
                n = r.choice([64, 4096, 4097, r.randint(4096, 20000), 65000])
                a.v = r.randbytes(n).translate(SAFE_BYTE_TABLE) + (b'\0' if r.random() < 0.8 else b'')
            elif kind == 'str-empty':
                a.v = r.choice([b'', b'\0'])
            else:
                a.v = b'/a\0/b\0' + r.randbytes(r.randint(0, 8)).translate(SAFE_BYTE_TABLE) + b'\0'
        elif kind == 'nest-flag-missing':
            nests = [(lst, i) for lst, i in spots if lst[i].kids is not None]
            if nests:
                lst, i = r.choice(nests)
                lst[i].fl &= ~NLA_F_NESTED
        elif kind == 'nested-flag-on-scalar':
            scalars = [(lst, i) for lst, i in spots if lst[i].kids is None]
            if scalars:
                lst, i = r.choice(scalars)
                lst[i].fl |= NLA_F_NESTED
        elif kind == 'byteorder-flag':
            if spots:
                lst, i = r.choice(spots)
                lst[i].fl |= NLA_F_NET_BYTEORDER
        elif kind == 'nest-garbage':
            nid = self.spec.attr('listener', 'notifier')
            g = A(nid, r.randbytes(r.randint(0, 80)), fl=NLA_F_NESTED)
            attrs.insert(r.randint(0, len(attrs)), g)
        elif kind == 'nest-deep':
            depth = r.randint(2, 64)
            t = r.choice([self.spec.attr('listener', 'notifier'), r.randint(1, 8)])
            inner = A(r.randint(1, 8), u32(1))
            for _ in range(depth):
                inner = A(t, kids=[inner], fl=NLA_F_NESTED if r.random() < 0.9 else 0)
            attrs.insert(r.randint(0, len(attrs)), inner)
        elif kind == 'out-of-range':
            cands = []
            for lst, i in spots:
                a = lst[i]
                owner = set_ if lst is attrs else self.spec.sets['notifier']
                s = owner.by_id.get(a.t)
                if s is not None and s.checks and s.type in ('u32', 'u64'):
                    cands.append((a, s))
            if cands:
                a, s = r.choice(cands)
                bad = []
                if 'min' in s.checks:
                    bad += [s.checks['min'] - 1, 0]
                if 'max' in s.checks:
                    bad += [s.checks['max'] + 1, 0xffffffff]
                if 'flagsMask' in s.checks:
                    bad += [s.checks['flagsMask'] + 1, 0xffffffff, 1 << r.randint(0, 31)]
                if 'maxLen' in s.checks or not bad:
                    bad += [0xffffffff]
                value = r.choice(bad) & 0xffffffff
                a.v = u32(value) if s.type == 'u32' else u64(value)
        elif kind == 'nla-len-lie':
            if spots:
                lst, i = r.choice(spots)
                a = lst[i]
                real = 4 + len(a.body())
                a.len_lie = r.choice([0, 1, 2, 3, real + 1, real + 4, real + r.randint(5, 100), 0xffff, real - 1])
        elif kind == 'trailing-bytes':
            attrs.append(_Raw(r.randbytes(r.randint(1, 3))))
        elif kind == 'random-bytes':
            attrs = [_Raw(r.randbytes(r.randint(1, 200)))]
        elif kind == 'bitflip':
            data = bytearray(b''.join(a.encode() for a in attrs) or b'\0\0\0\0')
            for _ in range(r.randint(1, 8)):
                data[r.randrange(len(data))] ^= 1 << r.randint(0, 7)
            attrs = [_Raw(bytes(data))]
        elif kind == 'many-notifiers':
            n = r.choice([33, 100, 1000, r.randint(1000, 4000)])
            one, _ = self.notifier(selectors=False)
            attrs = attrs + [one.copy() for _ in range(n)]
        elif kind == 'pad-attr':
            pads = [a for a in set_.attrs if a.type == 'pad']
            if pads:
                attrs.insert(r.randint(0, len(attrs)), A(pads[0].id, r.choice([b'', b'\0\0\0\0'])))
        elif kind == 'wrong-set':
            other = self.spec.sets[r.choice([s for s in self.spec.sets if s != set_.name])]
            for _ in range(r.randint(1, 4)):
                attrs.insert(r.randint(0, len(attrs)), self.fuzz_attr(other))
        elif kind == 'zero-type':
            attrs.insert(r.randint(0, len(attrs)), A(0, self.garbage_value(r.choice(set_.attrs))))
        return kind, attrs

    def string_ids(self, op):
        """Ids of the string attributes a request of op may carry (notifier's, for register)."""
        out = {a.id for a in self.set_of(op).attrs if a.type == 'string'}
        if op == 'listener-register':
            out.add(self.spec.attr('notifier', 'path-prefix'))
        return out

    def header_case(self, worker, sock):
        """Valid attributes, broken netlink or genetlink header."""
        r = self.rng
        op = r.choice(REQUEST_OPS)
        label, attrs, _ = getattr(self, 'gen_' + op.replace('-', '_'))(worker, sock, 'valid')
        kind = r.choice(['version', 'reserved', 'dump-on-do', 'do-on-dump', 'random-flags', 'no-request',
                         'len-short-lie', 'len-long-lie', 'len-tiny', 'short-datagram', 'genl-truncated',
                         'control-type', 'wrong-family', 'trailing-garbage', 'pid'])
        case = self.plain(op, f'header:{kind}', self.spec.cmd(op), attrs, self.plausible(op, worker, sock),
                          self.is_dump(op, label))
        if op == 'statfs' and kind in ('dump-on-do', 'do-on-dump'):
            # statfs has both too. A dump sent as a do names no mount; a do sent as a dump names one.
            if case['dump']:
                kind = 'do-on-dump'
                case['dump'] = False
                case['flags'] = NLM_F_REQUEST | NLM_F_ACK | r.choice([0, NLM_F_ROOT, NLM_F_MATCH])
                case['expect'] = self.expect_statfs(None, None, None)
                if case['flags'] & NLM_F_DUMP:
                    case['expect'] = Expect(True, errors={errno.EINVAL}, extack={errno.EINVAL})
            else:
                kind = 'dump-on-do'
                case['dump'] = True
                case['flags'] = NLM_F_REQUEST | NLM_F_ACK | NLM_F_DUMP
                case['expect'] = self.expect_statfs_dump(True)
            case['label'] = f'header:{kind}'
        elif op == 'mount-get' and kind in ('dump-on-do', 'do-on-dump'):
            # mount-get has both: a do sent as a dump, or a dump sent as a do (or with half of
            # NLM_F_DUMP, which the genetlink core refuses as ambiguous).
            if case['dump']:
                kind = 'do-on-dump'
                case['dump'] = False
                case['flags'] = NLM_F_REQUEST | NLM_F_ACK | r.choice([0, NLM_F_ROOT, NLM_F_MATCH])
                case['expect'] = self.expect_mount_get(None, None)
                if case['flags'] & NLM_F_DUMP:
                    case['expect'] = Expect(True, errors={errno.EINVAL}, extack={errno.EINVAL})
            else:
                kind = 'dump-on-do'
                case['dump'] = True
                case['flags'] = NLM_F_REQUEST | NLM_F_ACK | NLM_F_DUMP
                case['expect'] = self.expect_mount_dump(bool(attrs))
            case['label'] = f'header:{kind}'
        elif kind == 'version':
            case['version'] = r.choice([0, 2, 3, 0x7f, 0xff])
        elif kind == 'reserved':
            case['reserved'] = r.randint(1, 0xffff)
            case['expect'] = Expect(True, errors={errno.EINVAL})
        elif kind == 'dump-on-do':
            if op == 'listener-get':
                kind = 'do-on-dump'
            else:
                case['flags'] = NLM_F_REQUEST | NLM_F_ACK | NLM_F_DUMP
                case['expect'] = Expect(True, errors={errno.EOPNOTSUPP})
        if kind == 'do-on-dump' and op not in DO_AND_DUMP_OPS:
            case['op'], case['cmd'] = 'listener-get', self.spec.cmd('listener-get')
            case['dump'] = False
            case['attrs'] = []
            case['flags'] = NLM_F_REQUEST | NLM_F_ACK | r.choice([0, NLM_F_ROOT, NLM_F_MATCH])
            # Half of NLM_F_DUMP is "ambiguous" to the genetlink core of newer kernels (EINVAL).
            case['expect'] = Expect(True, errors={errno.EOPNOTSUPP} | ({errno.EINVAL} if case['flags'] & NLM_F_DUMP else set()))
        elif kind == 'random-flags':
            case['flags'] = r.getrandbits(16) | (NLM_F_REQUEST if r.random() < 0.8 else 0)
        elif kind == 'no-request':
            case['flags'] = r.choice([0, NLM_F_ACK, NLM_F_ACK | NLM_F_DUMP, NLM_F_ECHO | NLM_F_ACK])
            case['expect'] = Expect(True, ok=True, silent=not case['flags'] & NLM_F_ACK, reply=None)
            case['no_request'] = True
        elif kind == 'len-short-lie':
            case['len_lie'] = 'short'
        elif kind == 'len-long-lie':
            case['len_lie'] = 'long'
            case['expect'] = Expect(True, silent=True)
        elif kind == 'len-tiny':
            case['len_lie'] = 'tiny'
            case['expect'] = Expect(True, silent=True)
        elif kind == 'short-datagram':
            case['raw'] = r.randbytes(r.randint(0, 15))
            case['op'] = 'malformed-header'
            case['expect'] = Expect(True, silent=True)
        elif kind == 'genl-truncated':
            case['genl_len'] = r.randint(0, 3)
            case['expect'] = Expect(True, errors={errno.EINVAL})
        elif kind == 'control-type':
            case['type'] = r.choice([NLMSG_NOOP, NLMSG_ERROR, NLMSG_DONE, NLMSG_OVERRUN, r.randint(5, 15)])
            case['op'] = 'malformed-header'
            case['expect'] = Expect(True, ok=True, reply=None)
        elif kind == 'wrong-family':
            case['type'] = r.choice([0xfff0, 0xfffe, 0xffff, r.randint(0x1000, 0xffff)])
            case['op'] = 'other-family'
            case['expect'] = Expect(True, errors={errno.ENOENT})
        elif kind == 'trailing-garbage':
            case['trailing'] = r.randbytes(r.randint(1, 15))
        elif kind == 'pid':
            case['pid'] = r.getrandbits(32)
        return case

    def flood_case(self, worker, sock):
        """Registrations up to and past the per-user limit, in one datagram (EMFILE)."""
        _, most = self.model.count_range(worker.uid)
        n = min(80, max(1, self.params['max_listeners_per_user'] - most) + self.rng.randint(1, 5))
        la = self.spec.attr('listener', 'notifier')
        subs = []
        for _ in range(n):
            attr, model = self.notifier(selectors=False, admin=self.admin(worker))
            assert attr.t == la
            subs.append(self.plain('listener-register', 'valid:flood', self.spec.cmd('listener-register'), [attr],
                                   (lambda m=model: self.expect_register(worker, sock, 0, [m]))))
        return {'multi': subs, 'op': 'multi', 'label': 'flood'}

    def garbage_case(self, worker, sock):
        """A genetlink header for a real command followed by random bytes, or several messages."""
        r = self.rng
        op = r.choice(REQUEST_OPS)
        if r.random() < 0.5:
            raw = r.randbytes(r.choice([1, 4, 8, 31, 200, 1500]))
            dump = op == 'listener-get' or op in DO_AND_DUMP_OPS and r.random() < 0.3
            case = self.plain(op, f'garbage:{"dump-" if dump and op in DO_AND_DUMP_OPS else ""}random-attributes',
                              self.spec.cmd(op), [_Raw(raw)], self.plausible(op, worker, sock), dump)
            if op == 'listener-get':
                case['expect'] = self.plausible(op, worker, sock)
            return case
        # Several messages in one datagram, each with its own expectation.
        subs = []
        for _ in range(r.randint(2, 5)):
            c = self.build(worker, sock)
            if 'multi' in c or 'raw' in c or c.get('len_lie') or 'trailing' in c:
                c = self.plain('ping', 'valid:cookie', self.spec.cmd('ping'), [], self.expect_ping(None))
            subs.append(c)
        return {'multi': subs, 'op': 'multi', 'label': 'multi'}

    # ---- sending and judging -------------------------------------------------------------

    def encode_case(self, case, seq):
        """The bytes of one case's message, and the Sub that describes what may come back."""
        if 'raw' in case:
            sub = Sub(seq, case['op'], case['label'], case['expect'], None, False, False)
            return case['raw'], sub
        op = case['op']
        flags = case.get('flags')
        if flags is None:
            flags = NLM_F_REQUEST | NLM_F_ACK | (NLM_F_DUMP if case.get('dump') else 0)
            if self.rng.random() < 0.05:
                flags &= ~NLM_F_ACK
        body = b''.join(a.encode() for a in case['attrs'])
        payload = genl(case['cmd'], body, case.get('version', self.spec.family_version), case.get('reserved', 0))
        if 'genl_len' in case:
            payload = payload[:case['genl_len']]
        msg_type = case.get('type', self.family)
        lie = case.get('len_lie')
        length = 16 + len(payload)
        if lie == 'short':
            length = self.rng.randint(16, max(16, length - 1))
        elif lie == 'long':
            length += self.rng.choice([1, 4, 100, 0x10000])
        elif lie == 'tiny':
            length = self.rng.randint(0, 15)
        data = nlmsg(msg_type, flags, seq, payload, case.get('pid', 0), len_lie=length)
        if 'trailing' in case:
            data += case['trailing']
        ack = bool(flags & NLM_F_ACK) and lie not in ('long', 'tiny')
        processed = lie not in ('long', 'tiny')
        is_request = bool(flags & NLM_F_REQUEST)
        dump = (processed and is_request and msg_type == self.family and (flags & NLM_F_DUMP) == NLM_F_DUMP
                and case['cmd'] in self.dump_cmds and 'genl_len' not in case
                and case.get('reserved', 0) == 0 and length == 16 + len(payload))
        if dump and lie == 'short':
            dump = False
        expect = case['expect']
        if lie == 'short':
            # The kernel takes the first nlmsg_len bytes (maybe a valid request: the
            # expectation is the plausible one, which learns what it did) and parses the
            # rest of the datagram as more messages, whose answers carry garbage seqs.
            case['strays'] = True
        if not is_request and not case.get('no_request'):
            # Not a request: the kernel only acks it (if asked).
            expect = Expect(True, ok=True, silent=not ack, reply=None)
        sub = Sub(seq, op, case['label'], expect, data[:16], ack, dump)
        if op == 'listener-unregister':
            v = lenient_attrs(body).get(self.spec.attr('listener', 'id'))
            sub.hint = int.from_bytes(v, sys.byteorder) if v is not None and len(v) == 4 else None
        elif op == 'mount-get':
            seen = lenient_attrs(body)
            sub.hint = tuple(int.from_bytes(v, sys.byteorder) if v is not None and len(v) == 8 else None
                             for v in (seen.get(self.spec.attr('mount', n)) for n in ('mount-id', 'unique-id')))
        elif op == 'statfs':
            seen = lenient_attrs(body)
            ids = tuple(int.from_bytes(v, sys.byteorder) if v is not None and len(v) == 8 else None
                        for v in (seen.get(self.spec.attr('statfs', n)) for n in ('mount-id', 'unique-id')))
            path = seen.get(self.spec.attr('statfs', 'path'))
            path = path.split(b'\0')[0].decode('utf-8', 'surrogateescape') if path is not None else None
            sub.hint = ids + (path,)
        sub.attrs_len = len(body)
        sub.flags = flags
        sub.dump_flags = (flags & NLM_F_DUMP) == NLM_F_DUMP
        return data, sub

    def run_case(self, worker, sock, case):
        cases = case['multi'] if 'multi' in case else [case]
        parts, subs = [], []
        for c in cases:
            data, sub = self.encode_case(c, self.next_seq())
            sub.multi = len(cases) > 1
            if parts:
                parts.append(b'\0' * (align4(sum(len(p) for p in parts)) - sum(len(p) for p in parts)))
            parts.append(data)
            subs.append(sub)
            self.count(worker, c['op'], c['label'])
        datagram = b''.join(parts)
        strays = any(c.get('strays') for c in cases)
        self.index += 1
        self.datagram = datagram
        os.write(self.journal, f'{self.index} {worker.name} sock={sock.handle} {case["op"]} '
                               f'{"+".join(c["label"] for c in cases)} {datagram.hex()}\n'.encode())
        ack_seqs = [s.seq for s in subs if s.ack and not s.dump]
        dump_seqs = [s.seq for s in subs if s.dump]
        # Without an ack to wait for (or when a lying length makes the kernel parse our
        # attributes as more messages), a fence ping tells when every answer is in.
        fence = strays or not all(s.ack or s.dump for s in subs)
        started = time.monotonic()
        try:
            out = worker.exe.call('transact', sock.handle, datagram, ack_seqs, dump_seqs, fence,
                                  sock.role == 'active')
        except ExecutorDied as e:
            self.fail(f'{e} while sending this message', worker, subs[0], datagram)
            for sub in subs:
                self.note_lost(worker, sub)
            self.check_taint(worker, subs[0], datagram)
            self.restart(worker)
            self.after_registrations(subs)
            return
        if strays:
            # The kernel parsed our attributes as more messages: one may have been anything.
            self.model.seq_known = False
        self.judge(worker, sock, subs, datagram, out, strays, multi=len(subs) > 1)
        self.after_registrations(subs)
        self.check_taint(worker, subs[0], datagram)
        self.seconds[case['op']] = self.seconds.get(case['op'], 0) + time.monotonic() - started

    def check_taint(self, worker=None, sub=None, datagram=None):
        """A taint flag the kernel did not have before: the message just handled (or an event
        delivery since the previous message) made it WARN, oops or worse; the kernel log says
        where. Each flag is reported once, with the message."""
        now = read_taint()
        new = now & ~self.taint
        if new:
            self.taint |= new
            self.stats['kernel_taints'] = self.stats.get('kernel_taints', 0) + 1
            self.fail(f'the kernel became tainted {taint_names(new)} (now {taint_names(now)}) while handling this '
                      f'message or delivering events since the previous one: a WARN, an oops or a bad page; see '
                      f'the kernel log', worker, sub, datagram)

    def after_registrations(self, subs):
        """After a datagram with registrations: how many arm failures they used up (the module
        parameter counts down), and so which event features are arm-failed. A refused
        registration must use up none: the limits and permissions are checked before anything is
        armed. A registration of a listener with an mtab notifier arms every event feature that is
        not armed (in feature order); with N failures pending the first N attempts fail."""
        regs = [s for s in subs if s.op == 'listener-register']
        if not regs:
            return
        before = self.arm_pending
        after = read_param('inject_arm_failures')
        self.arm_pending = after
        used = before - after
        if used < 0 or (after > 0 and not self.params['allow_inject']):
            self.fail(f'inject_arm_failures went from {before} to {after} over a registration', None, regs[0])
            self.arm_failed = None
            return
        self.stats['arm_failures_used'] += used
        known = [s for s in regs if s.reg_ok and s.reg_mtab]          # armed: an mtab listener
        maybe = [s for s in regs if s.reg_lost or (s.reg_ok and s.reg_mtab is None)]
        if before and not known and not maybe:
            self.stats['refused_registrations_with_arm_failures'] += sum(1 for s in regs if not s.reg_ok)
            if used:
                self.fail(f'{used} arm failure(s) were used up by registrations that were refused or had no mtab '
                          f'notifier: something was armed for them', None, regs[0])
            return
        if not known and not maybe:
            return
        if len(known) == 1 and not maybe:
            # One arming: every unarmed event feature was tried, the first `used` failed.
            self.arm_failed = used if before else 0
            self.arm_failed_set = None
        elif before == 0 and known:
            self.arm_failed, self.arm_failed_set = 0, set()   # the last arming had no failure to make
        elif before and used == 0 and known:
            self.arm_failed, self.arm_failed_set = 0, set()   # nothing was tried: every feature is armed
        elif self.arm_failed != 0 or before:
            self.arm_failed = None                            # the next ping tells

    def judge(self, worker, sock, subs, datagram, out, strays, multi):
        first = subs[0] if subs else None
        self.stats['enobufs'] += out['enobufs']
        self.stats['fences'] += len(out['fences'])
        if out['send_error']:
            # Too big for the send buffer, or (6.12) shorter than a netlink header.
            if not (out['send_error'] == errno.EMSGSIZE and len(datagram) >= 100000 or
                    out['send_error'] == errno.ENODATA and len(datagram) < 16):
                self.fail(f'send failed: {errname(out["send_error"])}', worker,
                          first, datagram)
            return
        if out['truncated']:
            self.fail(f'{out["truncated"]} answer(s) larger than {RECV_BUFFER} bytes', worker, first, datagram)
        if out['timeout']:
            self.fail(f'no complete answer within {RECV_TIMEOUT_S} s (a hang, or a request the kernel ignored): '
                      f'{out["timeout"]} (socket {sock.handle}, {sock.role})', worker, first, datagram)
        by_seq = {s.seq: s for s in subs}
        answers = {s.seq: {'replies': [], 'error': None, 'ext': {}, 'done': None, 'intr': False, 'acks': 0}
                   for s in subs}
        fences = set(out['fences'])
        lost = out['enobufs'] > 0
        events = []
        for i, d in enumerate(out['datagrams']):
            msgs, problem = split_nlmsgs(d)
            if problem:
                self.fail(f'malformed datagram from the kernel: {problem}: {d[:64].hex()}', worker, first, datagram)
            for msg_type, flags, seq, pid, payload in msgs:
                if msg_type == self.family and seq == 0 and pid == 0:
                    events.append((flags, payload))
                    continue
                if pid != sock.port:
                    self.fail(f'a message of type {msg_type} seq {seq} carries port {pid}, not ours ({sock.port})',
                              worker, first, datagram)
                if seq in fences:
                    self.judge_fence(msg_type, payload, worker, first, datagram)
                    continue
                sub = by_seq.get(seq)
                if sub is None:
                    if not strays:
                        self.fail(f'an answer with an unknown seq {seq} (type {msg_type}, {len(payload)} bytes)',
                                  worker, first, datagram)
                    continue
                a = answers[seq]
                if msg_type == NLMSG_ERROR:
                    err, _, problems = parse_error(payload, sub.header)
                    for p in problems:
                        self.fail(p, worker, sub, datagram)
                    if err is None:
                        continue
                    ext, problems = parse_ack_tlvs(flags, payload, len(datagram))
                    for p in problems:
                        self.fail(p, worker, sub, datagram)
                    if a['error'] is not None or a['acks']:
                        self.fail('two NLMSG_ERROR answers to one request', worker, sub, datagram)
                    if err > 0:
                        self.fail(f'NLMSG_ERROR with a positive error {err}', worker, sub, datagram)
                    if err == 0:
                        a['acks'] += 1
                    else:
                        a['error'], a['ext'] = -err, ext
                elif msg_type == NLMSG_DONE:
                    if len(payload) < 4:
                        self.fail(f'NLMSG_DONE of {len(payload)} bytes', worker, sub, datagram)
                        continue
                    (a['done'],) = struct.unpack_from('=i', payload, 0)
                    if flags & NLM_F_DUMP_INTR:
                        a['intr'] = True
                    if flags & NLM_F_ACK_TLVS:
                        # A dump's error may come with an extack message (netlink_dump_done).
                        try:
                            tlvs = parse_attrs(payload[4:])
                        except ValueError as e:
                            self.fail(f'the TLVs of NLMSG_DONE: {e}', worker, sub, datagram)
                            tlvs = []
                        for t, _, v in tlvs:
                            if t == NLMSGERR_ATTR_MSG:
                                if not v.endswith(b'\0'):
                                    self.fail('extack message of NLMSG_DONE not NUL-terminated', worker, sub, datagram)
                                a['ext']['msg'] = v.rstrip(b'\0').decode('utf-8', 'replace')
                elif msg_type == self.family:
                    if flags & NLM_F_DUMP_INTR:
                        a['intr'] = True
                    a['replies'].append(payload)
                else:
                    self.fail(f'an answer of unexpected type {msg_type}', worker, sub, datagram)
        # Dumps last: one that shares a datagram with other requests may show what they did
        # (the dump goes on while its messages are read, after the others were handled).
        for sub in sorted(subs, key=lambda x: x.dump):
            self.judge_sub(worker, sock, sub, answers[sub.seq], lost, datagram, multi)
        for i, (flags, payload) in enumerate(events):
            if i < EVENTS_CHECKED:
                self.judge_event(worker, sock, payload, datagram, first)
            else:
                self.stats['events'] += 1
                if len(payload) < 4 or (payload[0] not in self.event_cmds and payload[0] != self.missed_cmd):
                    self.fail(f'a message with seq 0 and port 0 that is not an event: {payload[:32].hex()}',
                              worker, first, datagram)

    def judge_fence(self, msg_type, payload, worker, sub, datagram):
        if msg_type == NLMSG_ERROR:
            (err,) = struct.unpack_from('=i', payload, 0)
            if err != 0:
                self.fail(f'a plain ping (the fence) failed with {errname(-err)}', worker, sub, datagram)
        elif msg_type != self.family:
            self.fail(f'the fence ping got a message of type {msg_type}', worker, sub, datagram)

    def decode_reply(self, sub, payload, worker, datagram):
        if len(payload) < 4:
            self.fail(f'a reply of {len(payload)} bytes, without a genetlink header', worker, sub, datagram)
            return None
        cmd, version, reserved = GENLMSGHDR.unpack_from(payload, 0)
        op = self.all_cmds.get(cmd)
        if op is None or self.spec.ops[op].attr_set is None:
            self.fail(f'a reply with command {cmd}', worker, sub, datagram)
            return None
        if sub.op in self.request_cmds.values() and cmd != self.spec.cmd(sub.op):
            self.fail(f'{sub.op} answered with command {cmd} ({op})', worker, sub, datagram)
        values, problems = decode(self.spec.ops[op].attr_set, payload[4:], op)
        for p in problems:
            self.fail(f'reply: {p}', worker, sub, datagram)
        allowed = set(self.spec.ops[op].do[1] if self.spec.ops[op].do else []) | \
            set(self.spec.ops[op].dump[1] if self.spec.ops[op].dump else [])
        extra = [k for k in values if k not in allowed]
        if extra:
            self.fail(f'{op} reply carries attributes its spec does not list: {extra}', worker, sub, datagram)
        return values

    def judge_sub(self, worker, sock, sub, a, lost, datagram, multi):
        if callable(sub.expect):
            sub.expect = sub.expect()
        e = sub.expect
        got_error = a['error']
        if sub.dump and got_error is None and a['done'] is None:
            if lost and not a['replies']:
                self.stats['lost'] += 1  # its start's answer was lost (see Executor.transact)
            else:
                self.fail('the dump did not end with NLMSG_DONE', worker, sub, datagram)
            return
        if a['done'] is not None and a['done'] < 0:
            got_error = -a['done']
        outcome = errname(got_error) if got_error is not None else (
            'ok' if a['acks'] or a['replies'] or a['done'] is not None else 'no answer')
        tally = self.outcomes.setdefault(sub.op, {})
        tally[outcome] = tally.get(outcome, 0) + 1
        if sub.dump and got_error == errno.ENOBUFS:
            # The receive buffer was full of events when the dump started (netlink core).
            self.stats['lost'] += 1
            return
        answered = got_error is not None or a['acks'] or a['replies'] or a['done'] is not None
        if not answered:
            if lost:
                self.stats['lost'] += 1
                self.note_lost(worker, sub)
                return
            if e.silent:
                return
            if not sub.ack and e.ok and e.reply is None and not sub.dump:
                # A do without a reply and without NLM_F_ACK: success is silent.
                if e.on_ok:
                    e.on_ok([], sub, worker)
                return
            if not sub.ack and not e.exact:
                return
            self.fail('no answer', worker, sub, datagram)
            return
        if e.silent and e.exact:
            self.fail('the kernel answered a message it must ignore', worker, sub, datagram)
            return
        if got_error is not None:
            allowed = set(e.errors)
            if multi and sub.dump_flags:
                allowed.add(errno.EBUSY)
            if got_error not in allowed:
                name = errname(got_error)
                want = ', '.join(sorted(errname(x) for x in allowed)) or 'success'
                self.fail(f'error {name} ({got_error}){" extack: " + repr(a["ext"].get("msg")) if a["ext"].get("msg") else ""}, '
                          f'expected {want}', worker, sub, datagram)
            elif got_error in e.extack and sock_ext_ack(sock) and not a['ext'].get('msg'):
                self.fail(f'error {errname(got_error)} without an extack message', worker, sub, datagram)
            elif (got_error in e.extack_text and sock_ext_ack(sock)
                  and e.extack_text[got_error] not in a['ext'].get('msg', '')):
                self.fail(f'error {errname(got_error)} with the extack message {a["ext"].get("msg")!r}, expected '
                          f'{e.extack_text[got_error]!r}', worker, sub, datagram)
            if a['replies'] and not sub.dump:
                self.fail(f'an error after {len(a["replies"])} reply message(s)', worker, sub, datagram)
            if e.on_err:
                e.on_err(got_error)
            return
        if not e.ok:
            want = ', '.join(sorted(errname(x) for x in e.errors))
            self.fail(f'succeeded, expected {want}', worker, sub, datagram)
            # The model follows what the kernel did.
        if sub.ack and not sub.dump and a['acks'] != 1 and not (lost and a['acks'] == 0):
            self.fail(f'a successful request with NLM_F_ACK got {a["acks"]} acks', worker, sub, datagram)
        if a['intr']:
            if sub.op == 'mount-get':
                self.stats['mount_dumps_interrupted'] += 1
            return
        values = []
        for p in a['replies']:
            v = self.decode_reply(sub, p, worker, datagram)
            if v is not None:
                values.append(v)
        reply = e.reply
        if reply == 'auto':
            reply = 'dump' if sub.dump else 'do'
        if reply == 'do' and len(a['replies']) != 1:
            self.fail(f'{len(a["replies"])} reply messages, expected 1', worker, sub, datagram)
            return
        if reply is None and a['replies'] and not sub.dump:
            self.fail(f'{len(a["replies"])} unexpected reply message(s)', worker, sub, datagram)
        if e.on_ok is not None:
            if lost and sub.dump:
                return
            e.on_ok(values, sub, worker)

    def note_lost(self, worker, sub):
        """An answer lost to ENOBUFS: whatever it did, the model no longer knows."""
        if sub.op == 'listener-register':
            self.model.unknown[worker.netns] = self.model.unknown.get(worker.netns, 0) + 1
            sub.reg_lost = True
        elif sub.op == 'listener-unregister' and sub.hint in self.model.listeners:
            self.model.listeners[sub.hint].gone = True
        elif sub.op == 'inject':
            self.model.seq_known = False

    def judge_event(self, worker, sock, payload, datagram, sub0):
        self.stats['events'] += 1
        if len(payload) < 4:
            self.fail(f'an event of {len(payload)} bytes', worker, sub0, datagram)
            return
        cmd = payload[0]
        if cmd == self.missed_cmd:
            self.judge_missed(worker, sock, payload, datagram, sub0)
            return
        if cmd not in self.event_cmds:
            self.fail(f'a message with seq 0 and port 0 that is not an event: command {cmd}', worker, sub0, datagram)
            return
        op = self.all_cmds[cmd]
        v, problems = decode(self.spec.sets['event'], payload[4:], op)
        for p in problems:
            self.fail(f'event: {p}', worker, sub0, datagram)
        allowed = set(self.spec.ops[op].event)
        extra = [k for k in v if k not in allowed]
        if extra:
            self.fail(f'{op} carries attributes its spec does not list: {extra}', worker, sub0, datagram)
        if v.get('type') != self.event_cmds[cmd]:
            self.fail(f'{op} with type {v.get("type")}', worker, sub0, datagram)
        if v.get('action') not in self.actions_of.get(v.get('type'), []):
            self.fail(f'{op} with action {v.get("action")} of another type', worker, sub0, datagram)
        for need in ('seq', 'type', 'action', 'timestamp', 'mnt-ns'):
            if need not in v:
                self.fail(f'{op} lacks {need}', worker, sub0, datagram)
        lid = v.get('listener-id')
        if sock is worker.mcast:
            self.stats['mcast_events'] += 1
            if worker.netns != self.init_netns:
                self.fail(f'a multicast {op} (seq {v.get("seq")}) arrived in a network namespace other than the '
                          f'initial one: copies are sent in the initial network namespace only', worker, sub0, datagram)
            if lid is not None or 'cmd' in v:
                self.fail(f'a multicast {op} carries listener-id or cmd', worker, sub0, datagram)
            self.mcast_log.append(v.get('seq'))
            self.check_event_content(v, None, True, op, worker, sub0, datagram)
            return
        if lid is None:
            self.fail(f'a unicast {op} without listener-id', worker, sub0, datagram)
            return
        if lid not in sock.ids and lid not in self.model.ever and self.model.uncertain(worker.netns):
            sock.ids.add(lid)  # registered by a request whose reply was lost
        if lid not in sock.ids:
            self.fail(f'{op} for listener {lid} arrived on a socket that did not register it '
                      f'(it registered {sorted(sock.ids)})', worker, sub0, datagram)
            return
        key = (lid, v.get('seq'))
        if key in sock.events:
            self.fail(f'listener {lid} got event seq {v.get("seq")} twice', worker, sub0, datagram)
        sock.events.add(key)
        self.event_log.append(key)
        li = self.model.listeners.get(lid)
        if li is not None:
            li.received += 1
        self.check_event_content(v, li, False, op, worker, sub0, datagram)

    def check_event_content(self, v, li, mcast, op, worker, sub0, datagram):
        """An event against the inject it came from: what was injected, the injector's pid and uid
        (0), in the listener's (li; None when the model no longer has it) terms or, for a
        multicast copy, the initial namespaces' (the same: every sender is in the initial pid and
        user namespaces). A listener gets it only if one of its notifiers with notify matches,
        with that notifier's cmd."""
        if v.get('mnt-ns') != self.mnt_ns:
            # A real mount event of another mount namespace (a deferred dump's reader's, as it
            # ends), for a global listener.
            self.stats['real_events'] += 1
            if li is not None and li.scope != self.SCOPE_GLOBAL:
                self.fail(f'{op} of mount namespace {v.get("mnt-ns")} delivered to listener {li.id} of mnt-ns '
                          f'scope in {self.mnt_ns}', worker, sub0, datagram)
            return
        rec = self.find_inject(v.get('seq'))
        if rec is False:
            self.fail(f'{op} seq {v.get("seq")} of the fuzzer\'s mount namespace: no inject posted it (the seqs '
                      f'up to {self.model.last_seq} are known)', worker, sub0, datagram)
            return
        if li is not None and li.notifiers is not None:
            _, first = self.what(li, v)
            if first is None:
                self.fail(f'{op} {v.get("type")}/{v.get("action")} (mount-id {v.get("mount-id")}, path '
                          f'{v.get("path")!r}) delivered to listener {li.id}, none of whose notify notifiers matches: '
                          f'{li.notifiers}', worker, sub0, datagram)
            elif v.get('cmd') != first.get('cmd'):
                self.fail(f'{op} to listener {li.id} carries cmd {v.get("cmd")}; the first matching notifier with '
                          f'notify has {first.get("cmd")}', worker, sub0, datagram)
        if mcast and rec and not rec['init_netns']:
            self.fail(f'a multicast copy of seq {v.get("seq")}, which no listener of the initial network namespace '
                      f'could take', worker, sub0, datagram)
        if not rec or rec['ev'] is None:
            return
        ev = rec['ev']
        mtab = ev['type'] == self.T['mtab']
        want = {k: ev.get(k) for k in ('type', 'action', 'mount-id', 'path', 'fs-type', 'source', 'dev')}
        want['parent-id'] = ev.get('parent-id') if mtab else None
        want['count'] = None if mtab else ev.get('count')
        want['subtree'] = True if mtab and ev.get('subtree') else None
        want.update({'pid': rec['pid'], 'uid': 0, 'ns-seq': None, 'unique-id': None})
        diff = [f'{k} {v.get(k)!r} (injected {w!r})' for k, w in want.items() if v.get(k) != w]
        if diff:
            self.fail(f'{op} seq {v.get("seq")}{" (multicast)" if mcast else " to listener " + str(v.get("listener-id"))} differs from '
                      f'what was injected: {"; ".join(diff)}', worker, sub0, datagram)
        self.stats['events_checked_against_inject'] += 1

    def judge_missed(self, worker, sock, payload, datagram, sub0):
        """A missed message: listener-id (one of this socket's) and a count, nothing else, never multicast."""
        self.stats['missed_notices'] = self.stats.get('missed_notices', 0) + 1
        v, problems = decode(self.spec.sets['event'], payload[4:], 'missed')
        for p in problems:
            self.fail(f'missed: {p}', worker, sub0, datagram)
        extra = [k for k in v if k not in set(self.spec.ops['missed'].event)]
        if extra:
            self.fail(f'a missed message carries attributes its spec does not list: {extra}', worker, sub0, datagram)
        if sock is worker.mcast:
            self.fail('a missed message arrived on the multicast socket', worker, sub0, datagram)
            return
        if not v.get('missed'):
            self.fail(f'a missed message reports {v.get("missed")} lost events', worker, sub0, datagram)
        lid = v.get('listener-id')
        if lid not in sock.ids and lid not in self.model.ever and self.model.uncertain(worker.netns):
            sock.ids.add(lid)  # registered by a request whose reply was lost
        if lid not in sock.ids:
            self.fail(f'a missed message for listener {lid} arrived on a socket that did not register it '
                      f'(it registered {sorted(sock.ids)})', worker, sub0, datagram)

    # ---- sockets, executors, parameters ----------------------------------------------------

    def open_sock(self, worker, role=None):
        r = self.rng
        role = role or r.choices(['active', 'sink'], [80, 20])[0]
        ext_ack = r.random() < 0.9
        handle, port = worker.exe.call('open', ACTIVE_RCVBUF if role != 'sink' else SINK_RCVBUF, ext_ack,
                                       r.random() < 0.3)
        s = Sock(handle, port, role)
        s.ext_ack = ext_ack
        self.ports[(worker.netns, port)] = f'{role} socket {handle} of {worker.name} (pid {worker.pid})'
        worker.socks[handle] = s
        self.stats['sockets_opened'] += 1
        return s

    def close_sock(self, worker, sock):
        worker.exe.call('close', sock.handle)
        self.ports[(worker.netns, sock.port)] += f', closed before message {self.index + 1}'
        del worker.socks[sock.handle]
        self.forget_sock(worker, sock)
        self.stats['sockets_closed'] += 1

    def forget_sock(self, worker, sock):
        for li in self.model.listeners.values():
            if li.worker is worker and li.handle == sock.handle:
                li.gone = li.closed = True

    def restart(self, worker):
        """Kills a worker's process (its sockets die with it) and starts a new one."""
        worker.exe.kill()
        for s in worker.socks.values():
            self.forget_sock(worker, s)
            self.ports[(worker.netns, s.port)] += f', killed before message {self.index + 1}'
        for d in [d for d in self.deferred if d['worker'] is worker]:
            self.deferred.remove(d)     # its dump dies with its socket, unread
            self.stats['deferred_abandoned'] += 1
        worker.start(self.family, self.spec.cmd('ping'))
        self.setup_worker(worker)

    def setup_worker(self, worker):
        """Opens the first sockets; checks joining the multicast groups."""
        self.open_sock(worker, 'active')
        mc = self.open_sock(worker, 'active')
        worker.mcast = mc
        for name, gid in sorted(self.groups.items()):
            err = worker.exe.call('join', mc.handle, gid)
            if worker.uid == 0 and err != 0:
                self.fail(f'{worker.name}: joining the multicast group {name} failed: {errname(err)}')
            if worker.uid != 0 and err != errno.EPERM:
                self.fail(f'uid {worker.uid} joining the multicast group {name}: '
                          f'{errname(err) if err else "allowed"}, expected EPERM')

    def set_param(self, name, value):
        """Changes a module parameter (root, in /sys/module/usip/parameters) and the model's idea of it."""
        write_param(name, value)
        self.params[name] = value
        if name == 'event_queue_len':
            self.model.max_queue_limit = max(self.model.max_queue_limit, value)
        elif name == 'user_queue_len':
            self.model.max_user_queue_limit = max(self.model.max_user_queue_limit, value)
        elif name == 'inject_arm_failures':
            self.arm_pending = value
        self.stats['param_changes'] += 1

    def maybe_housekeep(self, worker):
        r = self.rng
        x = r.random()
        mine = [s for s in worker.socks.values() if s is not worker.mcast and s.role != 'deferred']
        if len(mine) < 2 or (x < 0.04 and len(mine) < 10):
            self.open_sock(worker)
        elif x < 0.07 and len(mine) > 1:
            self.close_sock(worker, r.choice(mine[1:]))
        elif x < 0.075 and worker.mcast is not None:
            out = worker.exe.call('drain', worker.mcast.handle)
            self.judge(worker, worker.mcast, [], b'', out, False, False)
        if worker.name == 'root':
            # The queue's bounds change under the running fuzzer; so do pending arm failures.
            for name, (values, weights) in PARAM_CHOICES.items():
                if r.random() < 0.003:
                    self.set_param(name, r.choices(values, weights)[0])
            if r.random() < 0.002 and self.params['allow_inject']:
                n = r.randint(1, 4)
                self.set_param('inject_arm_failures', n)
                self.stats['arm_failures_injected'] += n

    def pick_worker(self):
        root_sent = sum(c['root'] for c in self.counts.values())
        nobody_sent = sum(c['nobody'] for c in self.counts.values())
        if nobody_sent < root_sent:
            return self.workers[1]
        return self.workers[2] if self.rng.random() < 0.2 else self.workers[0]

    def pick_sock(self, worker):
        socks = [s for s in worker.socks.values() if s is not worker.mcast and s.role != 'deferred']
        actives = [s for s in socks if s.role == 'active']
        if self.rng.random() < 0.85 and actives:
            return self.rng.choice(actives)
        return self.rng.choice(socks)

    def sent(self):
        return sum(c['root'] + c['nobody'] for c in self.counts.values())

    def run(self):
        self.model.max_queue_limit = self.params['event_queue_len']
        self.model.max_user_queue_limit = self.params['user_queue_len']
        self.learn_mounts()
        self.learn_statfs()
        for w in self.workers:
            w.start(self.family, self.spec.cmd('ping'))
            self.setup_worker(w)
        next_kill = self.rng.randint(500, 1500)
        arm_at = [int(self.total * f) for f in (0.3, 0.7)]
        self.next_share_check = self.rng.randint(50, SHARE_CHECK_EVERY)
        while self.sent() < self.total:
            if arm_at and self.sent() >= arm_at[0]:
                arm_at.pop(0)
                self.arm_check()
            if self.sent() >= self.next_share_check:
                self.next_share_check = self.sent() + self.rng.randint(SHARE_CHECK_EVERY // 2,
                                                                       SHARE_CHECK_EVERY * 3 // 2)
                self.share_check()
            if self.deferred and self.rng.random() < 0.08:
                d = self.rng.choice(self.deferred)
                if d['worker'].name == 'root':
                    how = self.rng.choices(['same', 'chroot', 'mntns', 'abandon'], [3, 3, 2, 1])[0]
                else:
                    how = self.rng.choices(['same', 'abandon'], [6, 1])[0]
                self.finish_deferred(d, how)
            w = self.pick_worker()
            self.maybe_housekeep(w)
            if w.name == 'nobody' and self.sent() >= next_kill:
                next_kill += self.rng.randint(1000, 2500)
                self.stats['executor_kills'] += 1
                self.restart(w)
            if len(self.deferred) < 3 and self.rng.random() < 1 / DEFERRED_DUMP_EVERY:
                self.start_deferred(w)
                continue
            sock = self.pick_sock(w)
            if w.uid == 0 and self.rng.random() < 0.01:
                case = self.plain('listener-get', 'valid:reconcile', self.spec.cmd('listener-get'), [],
                                  self.expect_dump(w))
            else:
                case = self.build(w, sock)
            self.run_case(w, sock, case)

    def close_all(self):
        for d in list(self.deferred):
            self.finish_deferred(d, 'abandon')
        for w in self.workers:
            if w.exe is None:
                continue
            for s in list(w.socks.values()):
                if s.role == 'active':
                    out = w.exe.call('drain', s.handle)
                    self.judge(w, s, [], b'', out, False, False)
            w.exe.stop()
            for s in w.socks.values():
                self.forget_sock(w, s)
            w.socks = {}

    # ---- scenarios -------------------------------------------------------------------------

    def host_stats(self):
        """stats as root (scope host), on a socket of its own: a dict, or None (a failure)."""
        err, replies = simple_request(self.family, self.spec.cmd('stats'))
        if err or len(replies) != 1:
            self.fail(f'stats as root failed: {errname(err)}, {len(replies)} replies')
            return None
        v, problems = decode(self.spec.sets['stats'], replies[0][4:], 'stats')
        for p in problems:
            self.fail(f'stats: {p}')
        return v

    def wait_stats(self, key, what, timeout=60.0):
        """Polls host stats until key is 0: the stats, or None (a failure, named with what)."""
        deadline = time.monotonic() + timeout
        while True:
            v = self.host_stats()
            if v is None:
                return None
            if v.get(key) == 0:
                return v
            if time.monotonic() > deadline:
                self.fail(f'{what}: stats still reports {key} {v.get(key)} after {timeout:.0f} s: {v}')
                return None
            time.sleep(0.01)

    def active_sock(self, worker):
        socks = [s for s in worker.socks.values()
                 if s.role == 'active' and s is not worker.mcast]
        return self.rng.choice(socks) if socks else self.open_sock(worker, 'active')

    def drain_all(self):
        """Reads (and judges) whatever waits on every socket of every sender."""
        for w in self.workers:
            for s in list(w.socks.values()):
                if s.role != 'deferred':
                    out = w.exe.call('drain', s.handle)
                    self.judge(w, s, [], b'', out, False, False)

    def scenario(self, worker, op, label, attrs, expect, sock=None):
        """One request of a scenario, sent and judged like every other message."""
        case = self.plain(op, f'scenario:{label}', self.spec.cmd(op), attrs, expect)
        self.run_case(worker, sock or self.active_sock(worker), case)

    def list_listeners(self):
        """listener-get by root in both network namespaces (each sees every listener of its own),
        which makes the model exact; whether both dumps were read whole and compared (a dump
        whose socket overran is not: then the model's delivered and missed are older)."""
        checked = self.stats['dumps_checked']
        for w in (self.workers[0], self.workers[2]):
            self.scenario(w, 'listener-get', 'listeners', [], self.expect_dump(w))
        return self.stats['dumps_checked'] - checked == 2

    def event_attrs(self, ev):
        ea = lambda n: self.spec.attr('event', n)  # noqa: E731
        attrs = [A(ea('type'), u32(ev['type'])), A(ea('action'), u32(ev['action']))]
        for key, value in ev.items():
            if key in ('path', 'fs-type', 'source'):
                attrs.append(self.string_attr(ea(key), value))
            elif key == 'subtree':
                attrs.append(A(ea('subtree')))
            elif key in ('mount-id', 'parent-id'):
                attrs.append(A(ea(key), u64(value)))
            elif key in ('dev', 'count'):
                attrs.append(A(ea(key), u32(value)))
        return attrs

    def share_check(self):
        """With the queue empty and every socket read, one event under small queue shares: who
        gets it, who misses it, the reply, the copies and the counters are all known exactly."""
        r = self.rng
        root, nobody, _ = self.workers
        m = self.model
        if not self.params['allow_inject'] or self.wait_stats('queued', 'the event queue drains') is None:
            return
        # Every socket read first: one that overran would lose the dump's answer.
        self.drain_all()
        fresh = self.list_listeners()
        live = [li for li in m.listeners.values() if not li.closed]
        if not fresh or any(m.unknown.values()) or any(li.gone or li.notifiers is None for li in live):
            self.stats['share_checks_skipped'] += 1
            return
        # An event some listener's notifier picks (others without selectors take it too).
        cands = [n for li in live for n in li.notifiers]
        if cands and r.random() < 0.9:
            n = r.choice(cands)
            ev = {'type': n['type'], 'action': n['action']}
            if 'mount-id' in n:
                ev['mount-id'] = n['mount-id']
            if 'path-prefix' in n:
                ev['path'] = n['path-prefix']
        else:
            ev = {'type': r.choice(list(self.actions_of))}
            ev['action'] = r.choice(self.actions_of[ev['type']])
        if r.random() < 0.3:
            ev['subtree'] = True
        shares = {'event_queue_len': r.choice([0, 1, 1, 4096, 4096, 4096]),
                  'user_queue_len': r.choice([0, 1, 1, 2, 2, 3, 1024]),
                  'listener_queue_len': r.choice([0, 1, 1, 1024, 1024])}
        saved = {k: self.params[k] for k in shares}
        # The module walks the listeners of the namespace, then the global ones, each in the
        # order they were registered (ids are given in that order).
        order = sorted((li for li in live if li.scope != self.SCOPE_GLOBAL), key=lambda li: li.id) + \
            sorted((li for li in live if li.scope == self.SCOPE_GLOBAL), key=lambda li: li.id)
        wanted = [li for li in order if self.what(li, ev)[0]]
        recipients, missing = [], []
        if all(shares.values()):
            taken = {}
            for li in wanted:
                if taken.get(li.uid, 0) < shares['user_queue_len']:
                    taken[li.uid] = taken.get(li.uid, 0) + 1
                    recipients.append(li)
                else:
                    missing.append(li)
        else:
            missing = list(wanted)
        notify = {li.id for li in wanted if self.what(li, ev)[1] is not None}
        base = {li.id: (li.delivered, li.missed) for li in live}
        for k, value in shares.items():
            self.set_param(k, value)
        self.event_log.clear()
        self.mcast_log.clear()
        got = {}
        expect = self.expect_inject(root, 1, None, ev)
        plain_on_ok = expect.on_ok

        def on_ok(replies, sub, w):
            plain_on_ok(replies, sub, w)
            if len(replies) == 1:
                got.update(replies[0])
        expect.on_ok = on_ok
        self.scenario(root, 'inject', 'share-inject', self.event_attrs(ev), expect)
        for k, value in saved.items():
            self.set_param(k, value)
        where = (f'share check (event_queue_len {shares["event_queue_len"]}, user_queue_len '
                 f'{shares["user_queue_len"]}, listener_queue_len {shares["listener_queue_len"]}; wanted by '
                 f'{[li.id for li in wanted]}, to {[li.id for li in recipients]})')
        want = (0, 0) if not wanted else (1, 0) if recipients else (0, 1)
        if not got:
            return      # the failure is recorded
        if (got.get('queued'), got.get('dropped')) != want:
            self.fail(f'{where}: inject queued {got.get("queued")} and dropped {got.get("dropped")}, expected '
                      f'{want[0]} and {want[1]}', root)
        seq = got.get('seq')
        if self.wait_stats('queued', where) is None:
            return
        if not self.list_listeners():
            self.stats['share_checks_skipped'] += 1
            return
        for li in live:
            if li.id not in m.listeners:
                continue    # the failure is recorded (missing from listener-get)
            d_delivered = li.delivered - base[li.id][0]
            d_missed = li.missed - base[li.id][1]
            exp = (1, 0) if li in recipients and li.id in notify else (0, 1) if li in missing and li.id in notify \
                else (0, 0)
            if (d_delivered, d_missed) != exp:
                self.fail(f'{where}: listener {li.id} (uid {li.uid}, {"global" if li.scope == self.SCOPE_GLOBAL else "mnt-ns"}) '
                          f'delivered +{d_delivered} and missed +{d_missed}, expected +{exp[0]} and +{exp[1]}', root)
        self.drain_all()
        got_ids = sorted(lid for lid, s in self.event_log if s == seq and seq)
        want_ids = sorted(li.id for li in recipients if li.id in notify)
        if got_ids != want_ids:
            self.fail(f'{where}: the event (seq {seq}) reached the sockets of listeners {got_ids}, expected {want_ids}',
                      root)
        copy = any(li.netns == self.init_netns and li.id in notify for li in recipients)
        if (seq in self.mcast_log) != copy:
            self.fail(f'{where}: the initial network namespace\'s group {"got" if seq in self.mcast_log else "did not get"} '
                      f'a copy of seq {seq}', root)
        self.exact_stats()
        self.stats['share_checks'] += 1
        self.stats['share_recipients'] += len(recipients)
        self.stats['share_recipients_other_netns'] += sum(1 for li in recipients if li.netns != self.init_netns)
        self.stats['share_misses'] += len(missing)

    def exact_stats(self):
        """With nothing queued and the model exact: stats as root (host) and as 65534 (its own,
        which must be the sums over its listeners as listener-get just showed them)."""
        root, nobody, _ = self.workers
        live = [li for li in self.model.listeners.values() if not li.closed]
        mine = [li for li in live if li.uid == nobody.uid]
        exact = {
            root: {'listeners': len(live), 'notifiers': sum(len(li.notifiers) for li in live), 'queued': 0},
            nobody: {'listeners': len(mine), 'notifiers': sum(len(li.notifiers) for li in mine), 'queued': 0,
                     'queue-limit': self.params['user_queue_len'], 'delivered': sum(li.delivered for li in mine),
                     'dropped': sum(li.missed for li in mine)},
        }
        for w, want in exact.items():
            expect = self.expect_stats()
            plain_on_ok = expect.on_ok

            def on_ok(replies, sub, worker, want=want, plain_on_ok=plain_on_ok):
                plain_on_ok(replies, sub, worker)
                if len(replies) != 1:
                    return
                diff = [f'{k} {replies[0].get(k)} (expected {v})' for k, v in want.items() if replies[0].get(k) != v]
                if diff:
                    self.fail(f'stats as uid {worker.uid} with nothing queued: {"; ".join(diff)}', worker, sub)
                else:
                    self.stats['stats_exact'] += 1
            expect.on_ok = on_ok
            self.scenario(w, 'stats', 'exact-stats', [], expect)

    def register_one(self, worker, label, notifiers, violation=None):
        """A registration of the given notifier models (scenario); its Sub tells how it went."""
        sock = self.active_sock(worker)
        pairs = [self.notifier(ntype=n['type'], action=n['action'], flags=n['flags'], selectors=False) for n in notifiers]
        attrs = [a for a, _ in pairs]
        models = [mo for _, mo in pairs]
        case = self.plain('listener-register', f'scenario:{label}', self.spec.cmd('listener-register'), attrs,
                          lambda: self.expect_register(worker, sock, 0, models, violation))
        self.run_case(worker, sock, case)

    def arm_check(self):
        """Every listener goes and the hooks disarm; then inject_arm_failures=N: refused
        registrations use up nothing, and each mtab registration leaves arm-failed exactly the
        features whose arming failed, the first ones in feature order, until a later one arms them."""
        r = self.rng
        root, nobody, other = self.workers
        if not self.params['allow_inject']:
            return
        for d in list(self.deferred):
            self.finish_deferred(d, 'abandon')
        for w in self.workers:
            for s in list(w.socks.values()):
                if s is not w.mcast:
                    self.close_sock(w, s)
            self.open_sock(w, 'active')
        v = self.host_stats()
        if v is not None and (v.get('listeners'), v.get('notifiers')) != (0, 0):
            self.fail(f'arm check: stats reports {v.get("listeners")} listener(s), {v.get("notifiers")} notifier(s) '
                      f'right after every socket that had listeners was closed')
        # Every listener freed (after an RCU grace period), and with them every per-user record:
        # what the module holds is back to nothing.
        if self.wait_stats('objects', 'arm check: every listener, user record and event is freed') is None:
            return
        if self.wait_stats('mount-hooks', 'arm check: the mount hooks disarm after the last mtab listener') is None:
            return
        self.stats['arm_checks'] += 1
        mtab = {'type': self.T['mtab'], 'action': self.ACT['mount'], 'flags': self.NOTIFY}
        storage = {'type': self.T['storage'], 'action': self.ACT['enospc'], 'flags': self.NOTIFY}
        n = r.randint(1, len(self.event_bits) + 1)
        self.set_param('inject_arm_failures', n)
        self.stats['arm_failures_injected'] += n
        # Refused for kern-log (65534): nothing armed, no failure used (after_registrations).
        self.register_one(nobody, 'arm-kern-log-refused', [dict(mtab, flags=self.NOTIFY | self.KERN_LOG)])
        unarmed = list(self.event_bits)     # nothing is armed: every event feature is tried
        for rnd, w in enumerate((root, nobody, other)):
            if rnd == 1:
                # Refused for the limit: root has one listener, and may have one.
                self.set_param('max_listeners_per_user', 1)
                self.register_one(root, 'arm-limit-refused', [mtab])
                # A user with no listener and a limit of 0 may have none either.
                self.set_param('max_listeners_per_user', 0)
                self.register_one(nobody, 'limit-zero(max_listeners_per_user=0,uid-without-listeners)', [storage])
                self.set_param('max_listeners_per_user', self.initial_params['max_listeners_per_user'])
            if rnd == 2 and self.arm_pending:
                self.set_param('inject_arm_failures', 0)
            before = self.arm_pending
            self.register_one(w, f'arm-round-{rnd + 1}', [mtab])
            used = before - self.arm_pending
            if used != min(before, len(unarmed)):
                self.fail(f'arm check, round {rnd + 1}: the registration used up {used} arm failure(s); '
                          f'{len(unarmed)} event feature(s) were not armed and {before} failure(s) pending')
            unarmed = unarmed[:used]        # those that failed; the others are armed now
            self.arm_failed, self.arm_failed_set = len(unarmed), set(unarmed)
            self.stats['arm_checks_failed_features'] += len(unarmed)
            self.scenario(w, 'ping', f'arm-ping-{rnd + 1}', [], self.expect_ping(None))

    # ---- deferred mount-get dumps ----------------------------------------------------------

    def start_deferred(self, worker):
        """A mount-get dump on a fresh socket of its own, whose answer is read later."""
        sock = self.open_sock(worker, 'deferred')
        seq = self.next_seq()
        flags = NLM_F_REQUEST | NLM_F_DUMP | (NLM_F_ACK if self.rng.random() < 0.5 else 0)
        datagram = nlmsg(self.family, flags, seq, genl(self.spec.cmd('mount-get'), b'', self.spec.family_version))
        self.index += 1
        self.datagram = datagram
        self.count(worker, 'mount-get', 'deferred:dump')
        os.write(self.journal, f'{self.index} {worker.name} sock={sock.handle} mount-get deferred:dump '
                               f'{datagram.hex()}\n'.encode())
        try:
            err = worker.exe.call('send_only', sock.handle, datagram)
        except ExecutorDied as e:
            self.fail(f'{e} while starting a deferred dump', worker)
            self.restart(worker)
            return
        if err:
            self.fail(f'sending a mount-get dump failed: {errname(err)}', worker)
            self.close_sock(worker, sock)
            return
        self.check_taint(worker, None, datagram)
        self.deferred.append({'worker': worker, 'sock': sock, 'seq': seq, 'datagram': datagram, 'flags': flags,
                              'index': self.index})
        self.stats['deferred_started'] += 1

    def finish_deferred(self, d, how):
        """Reads a deferred dump: 'same' (its sender), 'chroot' or 'mntns' (a forked reader as
        65534 in a chroot or in a new mount namespace: root's dumps only), or 'abandon' (closes it
        unread). What is read must be the starter's mount table."""
        self.deferred.remove(d)
        w, sock = d['worker'], d['sock']
        self.stats[f'deferred_{"abandoned" if how == "abandon" else how}'] += 1
        if how == 'abandon':
            self.close_sock(w, sock)
            return
        sub = Sub(d['seq'], 'mount-get', f'deferred:{how}:sent-as-message-{d["index"]}', self.expect_mount_dump(False),
                  d['datagram'][:16], bool(d['flags'] & NLM_F_ACK), True)
        sub.flags, sub.dump_flags = d['flags'], True
        self.datagram = d['datagram']
        try:
            if how == 'same':
                out = w.exe.call('transact', sock.handle, None, [], [d['seq']], False, False)
            else:
                out = self.forked_reader(sock, d['seq'], how)
        except ExecutorDied as e:
            self.fail(f'{e} while reading a deferred dump', w, sub, d['datagram'])
            self.restart(w)
            return
        if out is not None:
            checked = self.stats['mount_dumps_checked']
            self.judge(w, sock, [sub], d['datagram'], out, False, False)
            self.check_taint(w, sub, d['datagram'])
            self.stats['deferred_checked'] += self.stats['mount_dumps_checked'] - checked
            if how != 'same':
                # The first part was made when the dump started, the others in the reader's recvmsg().
                self.stats['deferred_reader_parts'] = max(self.stats['deferred_reader_parts'],
                                                          len(out['datagrams']))
        self.close_sock(w, sock)

    def forked_reader(self, sock, seq, how):
        """Reads the rest of root's dump on sock in a forked child that is someone else: 65534,
        chrooted into one of the extra tmpfs mounts or in a new mount namespace (whose mounts all
        have other ids)."""
        s = self.workers[0].exe.ex.socks[sock.handle]
        where = extra_mount_point(self.rng.randrange(EXTRA_MOUNTS))
        rfd, wfd = os.pipe()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.close(rfd)
                if how == 'mntns':
                    libc = ctypes.CDLL(None, use_errno=True)
                    if libc.unshare(CLONE_NEWNS) != 0:
                        raise OSError(ctypes.get_errno(), 'unshare(CLONE_NEWNS)')
                else:
                    os.chroot(where)
                    os.chdir('/')
                drop_to_nobody()
                ex = Executor()
                ex.socks[1] = s
                data = pickle.dumps(('ok', ex.transact(1, None, [], [seq], False, False)))
                code = 0
            except BaseException as e:  # noqa: B036 - reported to the parent
                data = pickle.dumps(('error', f'{type(e).__name__}: {e}'))
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(wfd, view):]
            finally:
                os._exit(code)
        os.close(wfd)
        chunks = []
        while True:
            b = os.read(rfd, 1 << 16)
            if not b:
                break
            chunks.append(b)
        os.close(rfd)
        os.waitpid(pid, 0)
        if how == 'mntns':
            # Its namespace went with it: the hooks may have posted events of it (for global
            # listeners), which take seqs.
            self.model.seq_known = False
        try:
            status, out = pickle.loads(b''.join(chunks))
        except Exception as e:  # noqa: BLE001
            status, out = 'error', f'no answer from the reader ({e})'
        if status != 'ok':
            self.fail(f'the reader of a deferred dump ({how}) failed: {out}')
            return None
        return out


class _Raw:
    """Bytes that stand in for attributes (garbage, bit flips)."""

    def __init__(self, data):
        self.data, self.kids, self.t, self.fl = data, None, -1, 0

    def encode(self):
        return self.data

    def body(self):
        return self.data

    def copy(self):
        return _Raw(self.data)


def sock_ext_ack(sock):
    return getattr(sock, 'ext_ack', True)


# --------------------------------------------------------------------------------------
# Set-up and accounting.
# --------------------------------------------------------------------------------------

TAINT_LETTERS = 'PFSRMBUDAWCIOELKXTN'


def read_taint():
    with open('/proc/sys/kernel/tainted', encoding='ascii') as f:
        return int(f.read().strip())


def taint_names(bits):
    return ''.join(c for i, c in enumerate(TAINT_LETTERS) if bits >> i & 1) or '-'


PARAMS = ('max_listeners_per_user', 'max_notifiers_per_listener', 'event_queue_len', 'user_queue_len',
          'listener_queue_len', 'inject_arm_failures', 'allow_inject', 'space_errors_unprivileged')


def read_param(name):
    with open(f'/sys/module/usip/parameters/{name}', encoding='ascii') as f:
        value = f.read().strip()
    return value in ('Y', '1') if name in ('allow_inject', 'space_errors_unprivileged') else int(value)


def read_params():
    return {name: read_param(name) for name in PARAMS}


def write_param(name, value):
    with open(f'/sys/module/usip/parameters/{name}', 'w', encoding='ascii') as f:
        f.write(f'{value}\n')


def resolve_family(name):
    """The family id and multicast groups, from nlctrl."""
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC)
    try:
        s.bind((0, 0))
        attrs = A(CTRL_ATTR_FAMILY_NAME, name.encode() + b'\0').encode()
        s.send(nlmsg(GENL_ID_CTRL, NLM_F_REQUEST, 1, genl(CTRL_CMD_GETFAMILY, attrs)))
        msgs, _ = split_nlmsgs(s.recv(65536))
        msg_type, _, _, _, payload = msgs[0]
        if msg_type == NLMSG_ERROR:
            (err,) = struct.unpack_from('=i', payload)
            raise SpecError(f'the family {name} is not registered ({errname(-err)}): is usip.ko loaded?')
        top = {t: v for t, _, v in parse_attrs(payload[4:])}
        family = struct.unpack('=H', top[CTRL_ATTR_FAMILY_ID])[0]
        groups = {}
        for _, _, g in parse_attrs(top.get(CTRL_ATTR_MCAST_GROUPS, b'')):
            ga = {t: v for t, _, v in parse_attrs(g)}
            groups[ga[CTRL_ATTR_MCAST_GRP_NAME].rstrip(b'\0').decode()] = struct.unpack('=I', ga[CTRL_ATTR_MCAST_GRP_ID])[0]
        return family, groups
    finally:
        s.close()


def simple_request(family, cmd, attrs=b''):
    """One do request on a fresh socket: (error, [reply payloads])."""
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC)
    try:
        s.bind((0, 0))
        s.settimeout(RECV_TIMEOUT_S)
        s.send(nlmsg(family, NLM_F_REQUEST | NLM_F_ACK, 7, genl(cmd, attrs)))
        replies = []
        while True:
            msgs, _ = split_nlmsgs(s.recv(RECV_BUFFER))
            for msg_type, _, _, _, payload in msgs:
                if msg_type == NLMSG_ERROR:
                    (err,) = struct.unpack_from('=i', payload)
                    return -err, replies
                replies.append(payload)
    finally:
        s.close()


def slab_objects(name):
    """(objects in use after a shrink, problem): exact when the cache is not merged."""
    d = f'/sys/kernel/slab/{name}'
    if not os.path.exists(d):
        return None, f'the module has no slab cache {name} (/sys/kernel/slab/{name} does not exist)'
    if os.path.islink(d):
        return None, (f'/sys/kernel/slab/{name} is merged with {os.readlink(d)}: boot with slab_nomerge to '
                      f'count its objects')
    with open(f'{d}/shrink', 'w', encoding='ascii') as f:
        f.write('1\n')
    with open(f'{d}/objects', encoding='ascii') as f:
        return int(f.read().split()[0]), None


def alloc_traces(name):
    path = f'/sys/kernel/debug/slab/{name}/alloc_traces'
    try:
        if not os.path.exists('/sys/kernel/debug/slab'):
            subprocess.run(['mount', '-t', 'debugfs', 'debugfs', '/sys/kernel/debug'], check=False,
                           capture_output=True)
        with open(path, encoding='ascii', errors='replace') as f:
            return f.read(4000)
    except OSError as e:
        return f'({path}: {e})'


def accounting(fz, family, spec):
    """After the fuzz run: ping, stats at zero, slab caches empty."""
    out = {}
    stats_set = spec.sets['stats']
    deadline = time.monotonic() + 30
    last = None
    while True:
        err, replies = simple_request(family, spec.cmd('stats'))
        if err == 0 and len(replies) == 1:
            last, problems = decode(stats_set, replies[0][4:], 'stats')
            for p in problems:
                fz.fail(f'final stats: {p}')
        else:
            fz.fail(f'final stats failed: {errname(err)}')
            break
        if all(last.get(k) == 0 for k in ('listeners', 'notifiers', 'queued', 'objects')):
            break
        if time.monotonic() > deadline:
            fz.fail(f'30 s after every fuzz socket was closed, stats still reports {last}')
            err, entries = dump_listeners(family, spec)
            if entries:
                fz.fail(f'listeners left behind: {entries[:20]}')
            break
        time.sleep(0.2)
    out['stats'] = last
    err, replies = simple_request(family, spec.cmd('ping'))
    ping = None
    if err == 0 and len(replies) == 1:
        ping, problems = decode(spec.sets['ping'], replies[0][4:], 'ping')
        for p in problems:
            fz.fail(f'final ping: {p}')
    else:
        fz.fail(f'ping does not answer after the fuzz run: {errname(err)}')
    out['ping'] = ping
    out['slabs'] = {}
    nomerge = 'slab_nomerge' in open('/proc/cmdline', encoding='ascii').read().split()
    out['slab_nomerge'] = nomerge
    for name in SLAB_CACHES:
        deadline = time.monotonic() + 10
        while True:
            n, problem = slab_objects(name)
            if problem or n == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.2)  # objects freed after an RCU grace period
        out['slabs'][name] = n
        if problem:
            fz.fail(problem)
        elif n != 0:
            fz.fail(f'slab cache {name} still holds {n} object(s) after every fuzz socket was closed and stats '
                    f'reported {last}; allocation sites:\n{alloc_traces(name)}')
    return out


# The module's slab caches (events are kmalloc'ed, and counted in stats' objects).
SLAB_CACHES = ('usip_listener',)


def private_mount_table():
    """This process (and the senders it starts) in a mount namespace of its own, with
    EXTRA_MOUNTS + 1 more tmpfs mounts, so that a mount-get dump takes several parts. Private
    propagation: nothing of it reaches the initial namespace."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]

    def check(ret, what):
        if ret != 0:
            e = ctypes.get_errno()
            raise OSError(e, f'{what}: {os.strerror(e)}')
    check(libc.unshare(CLONE_NEWNS), 'unshare(CLONE_NEWNS)')
    check(libc.mount(None, b'/', None, MS_REC | MS_PRIVATE, None), 'mount --make-rprivate /')
    os.makedirs(EXTRA_MOUNT_DIR, exist_ok=True)
    check(libc.mount(b'usip-fuzz', EXTRA_MOUNT_DIR.encode(), b'tmpfs', 0, b'mode=0755'), f'mount {EXTRA_MOUNT_DIR}')
    for i in range(EXTRA_MOUNTS):
        d = extra_mount_point(i)
        os.makedirs(d)
        check(libc.mount(b'usip-fuzz', d.encode(), b'tmpfs', 0, b'mode=0755'), f'mount {d[:60]}...')


def kernel_version(release):
    """(major, minor) of a kernel release such as 6.12.117+deb12-amd64."""
    m = re.match(r'(\d+)\.(\d+)', release)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def unescape_mountinfo(field):
    """mountinfo's \\ooo escapes (space, tab, newline, backslash) undone, decoded as decode() does."""
    raw = field.encode('utf-8', 'surrogateescape')
    out, i = bytearray(), 0
    while i < len(raw):
        if raw[i] == 0x5c and raw[i + 1:i + 4].isdigit() and len(raw[i + 1:i + 4]) == 3:
            out.append(int(raw[i + 1:i + 4], 8) & 0xff)
            i += 4
        else:
            out.append(raw[i])
            i += 1
    return bytes(out).decode('utf-8', 'surrogateescape')


def read_mountinfo(path='/proc/self/mountinfo'):
    """This process's mount table, the truth mount-get is judged by: {mount id: fields}. The
    fuzzer's senders share its mount namespace and root, so they see the same table."""
    table = {}
    with open(path, 'rb') as f:
        text = f.read().decode('utf-8', 'surrogateescape')
    for line in text.splitlines():
        fields = line.split(' ')
        sep = fields.index('-')
        major, minor = fields[2].split(':')
        table[int(fields[0])] = {
            'mount_id': int(fields[0]), 'parent_id': int(fields[1]), 'major': int(major), 'minor': int(minor),
            'root': unescape_mountinfo(fields[3]), 'mount_point': unescape_mountinfo(fields[4]),
            'options': fields[5], 'optional': ' '.join(fields[6:sep]),
            'fs_type': unescape_mountinfo(fields[sep + 1]), 'source': unescape_mountinfo(fields[sep + 2]),
            'super_options': fields[sep + 3],
        }
    return table


class _StatfsBuf(ctypes.Structure):
    """struct statfs of x86-64 (the system call's own layout)."""
    _fields_ = [('f_type', ctypes.c_long), ('f_bsize', ctypes.c_long), ('f_blocks', ctypes.c_ulong),
                ('f_bfree', ctypes.c_ulong), ('f_bavail', ctypes.c_ulong), ('f_files', ctypes.c_ulong),
                ('f_ffree', ctypes.c_ulong), ('f_fsid', ctypes.c_int * 2), ('f_namelen', ctypes.c_long),
                ('f_frsize', ctypes.c_long), ('f_flags', ctypes.c_long), ('f_spare', ctypes.c_long * 4)]


def statfs_of_path(path):
    """(the id of the mount path leads to, statfs(2) of it in statfs's attribute names), or
    (None, None) if it cannot be opened."""
    libc = ctypes.CDLL(None, use_errno=True)
    try:
        fd = os.open(path, os.O_PATH)
    except OSError:
        return None, None
    try:
        mnt_id = None
        with open(f'/proc/self/fdinfo/{fd}', encoding='ascii') as f:
            for line in f:
                if line.startswith('mnt_id:'):
                    mnt_id = int(line.split()[1])
        buf = _StatfsBuf()
        if libc.fstatfs(fd, ctypes.byref(buf)) != 0:
            return None, None
        fsid = (buf.f_fsid[1] & 0xffffffff) << 32 | (buf.f_fsid[0] & 0xffffffff)
        return mnt_id, {'bsize': buf.f_bsize, 'frsize': buf.f_frsize, 'blocks': buf.f_blocks,
                        'blocks-free': buf.f_bfree, 'blocks-available': buf.f_bavail, 'files': buf.f_files,
                        'files-free': buf.f_ffree, 'fsid': fsid, 'name-max': buf.f_namelen, 'flags': buf.f_flags}
    finally:
        os.close(fd)


def dump_request(family, cmd, attr_set):
    """A dump on a fresh socket: (error, [decoded messages], interrupted)."""
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC)
    entries, intr = [], False
    try:
        s.bind((0, 0))
        s.settimeout(RECV_TIMEOUT_S)
        s.send(nlmsg(family, NLM_F_REQUEST | NLM_F_DUMP, 9, genl(cmd)))
        while True:
            msgs, _ = split_nlmsgs(s.recv(RECV_BUFFER))
            for msg_type, flags, _, _, payload in msgs:
                intr = intr or bool(flags & NLM_F_DUMP_INTR)
                if msg_type in (NLMSG_DONE, NLMSG_ERROR):
                    (err,) = struct.unpack_from('=i', payload)
                    return -err, entries, intr
                v, _ = decode(attr_set, payload[4:], attr_set.name)
                entries.append(v)
    except OSError as e:
        return e.errno, entries, intr
    finally:
        s.close()


def dump_listeners(family, spec):
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC)
    entries = []
    try:
        s.bind((0, 0))
        s.settimeout(RECV_TIMEOUT_S)
        s.send(nlmsg(family, NLM_F_REQUEST | NLM_F_DUMP, 9, genl(spec.cmd('listener-get'))))
        while True:
            msgs, _ = split_nlmsgs(s.recv(RECV_BUFFER))
            for msg_type, _, _, _, payload in msgs:
                if msg_type in (NLMSG_DONE, NLMSG_ERROR):
                    return 0, entries
                v, _ = decode(spec.sets['listener'], payload[4:], 'listener')
                entries.append(v)
    except OSError as e:
        return e.errno, entries
    finally:
        s.close()


def fuzz_main(seed, total, results, journal):
    """The fuzz run and the accounting (in the child of the supervisor)."""
    try:
        private_mount_table()
    except OSError as e:
        print(f'fuzz.py: cannot make the private mount table: {e}', file=sys.stderr)
        return 2
    try:
        spec = Spec(GENERATED_TS)
        fz = Fuzzer(spec, seed, total, journal)
    except SpecError as e:
        print(f'fuzz.py: {e}', file=sys.stderr)
        return 2
    print(f'fuzz.py: seed {seed} (USIP_FUZZ_SEED={seed} reproduces this run), {total} messages, '
          f'family {fz.family}, params {fz.params}', flush=True)
    # Unprivileged sockets may ask for big receive buffers too.
    with open('/proc/sys/net/core/rmem_max', encoding='ascii') as f:
        rmem_max = f.read().strip()
    with open('/proc/sys/net/core/rmem_max', 'w', encoding='ascii') as f:
        f.write(f'{ACTIVE_RCVBUF}\n')
    slabs_before = {name: slab_objects(name) for name in SLAB_CACHES}
    started = time.monotonic()
    crashed = None
    try:
        fz.run()
    except ExecutorDied as e:
        crashed = str(e)
        fz.fail(f'the fuzz run stopped: {e}')
    fuzz_seconds = time.monotonic() - started
    fz.close_all()
    fz.check_taint()
    table = read_mountinfo()
    mount_table_changed = table != fz.mounts_at_start
    for name in ('event_queue_len', 'user_queue_len', 'listener_queue_len', 'inject_arm_failures',
                 'max_listeners_per_user'):
        if fz.params[name] != fz.initial_params[name]:
            fz.set_param(name, fz.initial_params[name])
    with open('/proc/sys/net/core/rmem_max', 'w', encoding='ascii') as f:
        f.write(f'{rmem_max}\n')
    final = accounting(fz, fz.family, spec)
    report = {
        'seed': seed,
        'messages': fz.sent(),
        'requested': total,
        'per_operation': fz.counts,
        'cases': dict(sorted(fz.labels.items())),
        'outcomes': fz.outcomes,
        'seconds': {op: round(t, 1) for op, t in sorted(fz.seconds.items())},
        'failures': fz.failures,
        'failure_count': fz.failure_count,
        'crashed': crashed,
        'fuzz_seconds': round(fuzz_seconds, 1),
        'run_stats': fz.stats,
        'mount_get': {'checked': fz.mount_checked, 'mounts': len(fz.mounts_at_start),
                      'unique_ids': len(fz.by_unique), 'kernel_has_unique_ids': fz.has_unique_ids,
                      'mount_table': fz.mount_table, 'ns_seqs': sorted(fz.ns_seqs),
                      'table_changed_during_run': mount_table_changed},
        'statfs': {'checked': fz.statfs_checked, 'feature': fz.statfs_feature,
                   'mounts_with_truth': len(fz.statfs_truth), 'paths': len(fz.statfs_paths)},
        'slabs_before': {k: v[0] for k, v in slabs_before.items()},
        'final': final,
        'params': fz.params,
    }
    with open(os.path.join(results, 'fuzz-report.json'), 'w', encoding='utf-8') as f:
        json.dump(report, f, indent=1)
    print(f'fuzz.py: {fz.sent()} messages in {fuzz_seconds:.1f} s (seed {seed})')
    width = max(len(op) for op in fz.counts)
    for op in sorted(fz.counts):
        c = fz.counts[op]
        print(f'  {op:<{width}}  root {c["root"]:>6}  nobody {c["nobody"]:>6}')
    print(f'fuzz.py: run {json.dumps(fz.stats)}')
    print(f'fuzz.py: mount-get {json.dumps(report["mount_get"])}')
    print(f'fuzz.py: statfs {json.dumps(report["statfs"])}')
    print(f'fuzz.py: final {json.dumps(final)}')
    print(f'fuzz.py: {fz.failure_count} failure(s)', flush=True)
    return 1 if fz.failure_count else 0


def env_int(name, default):
    text = os.environ.get(name, str(default))
    if not re.fullmatch(r'\d+', text) or int(text) < 1:
        raise ValueError(f'{name} must be a positive integer (got {text!r})')
    return int(text)


def main():
    """Checks the set-up, then supervises the fuzz run in a child process: if the kernel kills
    it (an oops in a system call) or it overruns USIP_FUZZ_DEADLINE, the journal still tells
    which message was last sent."""
    if sys.argv[1:] == ['--executor']:
        return executor_main()
    if os.geteuid() != 0:
        print('fuzz.py: run it as root (in the test VM)', file=sys.stderr)
        return 2
    if not os.path.isdir('/sys/module/usip'):
        print('fuzz.py: usip.ko is not loaded', file=sys.stderr)
        return 2
    seed_text = os.environ.get('USIP_FUZZ_SEED', str(DEFAULT_SEED))
    try:
        if seed_text == 'random':
            seed = random.SystemRandom().getrandbits(32)
        elif re.fullmatch(r'\d+', seed_text):
            seed = int(seed_text)
        else:
            raise ValueError(f'USIP_FUZZ_SEED must be an integer or "random" (got {seed_text!r})')
        total = env_int('USIP_FUZZ_MESSAGES', DEFAULT_MESSAGES)
        deadline = env_int('USIP_FUZZ_DEADLINE', DEFAULT_DEADLINE_S)
    except ValueError as e:
        print(f'fuzz.py: {e}', file=sys.stderr)
        return 2
    results = os.environ.get('USIP_VM_RESULTS', '/tmp')
    # The journal gets a line per message: on tmpfs, as writes to the 9p results share cost
    # milliseconds each; copied to the results when the run ends, however it ends.
    journal = os.path.join('/dev/shm' if os.path.isdir('/dev/shm') else '/tmp', f'usip-fuzz-journal-{os.getpid()}.txt')
    report_path = os.path.join(results, 'fuzz-report.json')
    if os.path.exists(report_path):
        os.unlink(report_path)
    sys.stdout.flush()
    child = os.fork()
    if child == 0:
        code = 3
        try:
            code = fuzz_main(seed, total, results, journal)
        except BaseException:  # noqa: B036 - the child must never return into the supervisor
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    end = time.monotonic() + deadline
    status = None
    while status is None:
        pid, st = os.waitpid(child, os.WNOHANG)
        if pid == child:
            status = st
        elif time.monotonic() > end:
            os.kill(child, signal.SIGKILL)
            _, status = os.waitpid(child, 0)
            print(f'fuzz.py: the run did not finish within USIP_FUZZ_DEADLINE={deadline} s and was killed',
                  flush=True)
        else:
            time.sleep(0.2)
    lines = []
    if os.path.exists(journal):
        with open(journal, 'rb') as f:
            data = f.read()
        with open(os.path.join(results, 'fuzz-journal.txt'), 'wb') as f:
            f.write(data)
        os.unlink(journal)
        lines = data.decode('ascii', 'replace').splitlines()
    if os.WIFEXITED(status) and (os.path.exists(report_path) or os.WEXITSTATUS(status) == 2):
        return os.WEXITSTATUS(status)
    how = (f'was killed by signal {os.WTERMSIG(status)}' if os.WIFSIGNALED(status)
           else f'exited with status {os.WEXITSTATUS(status)} without a report')
    last = lines[-1] if lines else '(nothing was sent)'
    print(f'fuzz.py: the fuzz run {how} (seed {seed}); the last message it sent (journal: index sender socket op '
          f'case hex): {last[:2000]}', flush=True)
    with open(report_path, 'w', encoding='utf-8') as f:
        json.dump({'seed': seed, 'crashed': f'the fuzz run {how}', 'last_messages': lines[-5:],
                   'failures': [{'seed': seed, 'what': f'the fuzz run {how}', 'last_message': last[:65536]}],
                   'failure_count': 1}, f, indent=1)
    return 1


if __name__ == '__main__':
    sys.exit(main())
