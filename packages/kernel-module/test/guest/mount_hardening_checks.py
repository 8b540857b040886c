#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
#
# Runs in the test VM with usip.ko loaded: what the module must refuse to show,
# and the mount changes it must not spend unbounded work on, checked against
# the kernel's own /proc/self/mountinfo with a client that is not ours (raw
# netlink from Python, the helpers of listener_checks.py and
# mount_checks.py):
#
#  - scope: a chrooted reader (a root path over 2 KiB long, a root on a
#    detached mount) is told only of mounts below its root, with mountinfo's
#    paths, by events and dumps alike, and a dump answers for the namespace
#    and root of the task that started it, whoever reads the rest;
#  - containers: a process in its own user, network, pid and mount
#    namespaces (unshare -Urnpfm) gets only its own namespace's events, with
#    its own pids, uids and paths, and no multicast copies;
#  - bounded hooks: a tree of mounts attached, detached or changed at once
#    is one subtree event; a superblock remounted in more places than the
#    hooks report one by one is a missed message and a hole in ns-seq;
#  - a dump left unread pins no mount (umount without MNT_DETACH succeeds).
#
# As the other guest scripts, it judges nothing: one JSON line per check goes
# to $USIP_VM_RESULTS/mount-hardening-checks.jsonl, mount-hardening.test.ts
# asserts on them.
#
# Usage: mount_hardening_checks.py [--only SECTION]...
#        mount_hardening_checks.py --container   (the part run inside unshare -Urnpfm)
import argparse
import json
import os
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from listener_checks import (  # noqa: E402
    CLONE_NEWNS, MOUNT, MOVE, NOBODY, NLM_F_DUMP, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR, REMOUNT, UMOUNT,
    Child, Genl, Recorder, errname, parse_error, parse_messages, resolve_family, unshare,
)
from mount_checks import Checks as MountChecks  # noqa: E402
from mount_checks import (  # noqa: E402
    CMD_MOUNT_GET, EVENT_SCHEMA, MNT_DETACH, MOUNT_PAD, MOUNT_SCHEMA, MS_BIND, MS_PRIVATE, MS_RDONLY,
    MS_REC, MS_REMOUNT, MS_SHARED, AT_RECURSIVE, MOUNT_ATTR_NOEXEC, Listener, compare, decode,
    mount, mount_setattr, mountinfo, tmpfs, truth_compare, umount,
)

CMD_MISSED = 11
A_EVENT_SUBTREE = 24
SCHEMA = dict(EVENT_SCHEMA)
SCHEMA[A_EVENT_SUBTREE] = ('subtree', 'flag')
ACTIONS = {MOUNT: 'mount', UMOUNT: 'umount', MOVE: 'move', REMOUNT: 'remount'}


def events_of(listener, settle=1.0):
    """What a listener got until none came for `settle` s: events (with subtree) and missed messages."""
    out = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        batch = listener.sock._recv(settle)
        if batch is None:
            break
        listener.sock.pending.extend(m for m in batch if m['seq'] == 0)
    while listener.sock.pending:
        m = listener.sock.pending.pop(0)
        cmd = m['payload'][0]
        ev = decode(m['payload'][4:], SCHEMA, 21)
        if cmd == CMD_MISSED:
            out.append({'kind': 'missed', 'missed': ev.get('missed')})
            continue
        out.append({'kind': ACTIONS.get(ev.get('action')), 'path': ev.get('path'),
                    'mount_id': ev.get('mount_id'), 'ns_seq': ev.get('ns_seq'),
                    'subtree': ev.get('subtree', False), 'pid': ev.get('pid'), 'uid': ev.get('uid'),
                    'mnt_ns': ev.get('mnt_ns'), 'missed': ev.get('missed')})
    return out


def dump_socket(family, rcvbuf):
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 16)
    sock.setsockopt(270, 11, 1)  # NETLINK_EXT_ACK
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.bind((0, 0))
    body = struct.pack('=BBH', CMD_MOUNT_GET, 1, 0)
    sock.send(struct.pack('=IHHII', 16 + len(body), family, NLM_F_REQUEST | NLM_F_DUMP, 9, 0) + body)
    return sock


def read_dump(sock, limit=None):
    """Mount records from a dump in progress: all of them, or the first `limit` datagrams' worth."""
    records, datagrams, done, err = [], 0, False, 0
    while not done and (limit is None or datagrams < limit):
        data = sock.recv(1 << 20)
        datagrams += 1
        for msg_type, flags, _seq, _pid, payload in parse_messages(data):
            if msg_type in (NLMSG_DONE, NLMSG_ERROR):
                err = parse_error(flags, payload, done=msg_type == NLMSG_DONE)[0]
                done = True
                break
            records.append(decode(payload[4:], MOUNT_SCHEMA, MOUNT_PAD))
    return records, datagrams, done, err


def long_dir(base, total):
    """A directory under base whose path is over `total` bytes long, in components of 200."""
    path = base
    i = 0
    while len(path) < len(base) + total:
        path += '/' + (chr(ord('a') + i % 26) * 200)
        i += 1
    os.makedirs(path)
    return path


class Checks:
    def __init__(self, rec):
        self.rec = rec
        self.family, self.groups = resolve_family()

    def record(self, check, value):
        self.rec.record(check, value)

    def private(self, fn):
        """fn(chan) in a child with a private mount namespace; its records forwarded."""
        MountChecks.in_private_namespace(self, None, fn)

    # -- a chrooted reader sees only what is below its root
    def scope(self):
        family = self.family

        def body(chan):
            tmpfs('/tmp/s', 'scope', 'size=4m')
            root = long_dir('/tmp/s', 2100)
            tmpfs(f'{root}/in0', 'in0')
            tmpfs('/tmp/s/out0', 'out0')
            os.makedirs(f'{root}/in1')
            os.makedirs('/tmp/s/out1')
            os.makedirs('/tmp/s/out2')

            def jailed(jail):
                proc = os.open('/proc/self', os.O_RDONLY | os.O_DIRECTORY)
                os.chdir(root)
                os.chroot('.')
                listener = Listener(family)
                jail.send({'ready': True, 'mountinfo_paths': sorted(
                    r['mount_point'] for r in mountinfo(proc_fd=proc).values())})
                jail.recv(timeout=120)
                jail.send({'events': events_of(listener), 'truth': truth_compare(family, proc_fd=proc)})
                listener.close()

            jail = Child(jailed)
            try:
                ready = jail.recv(timeout=120)
                # Inside the root, then outside it; events of both kinds.
                tmpfs(f'{root}/in1', 'in1')
                mount(None, f'{root}/in1', None, MS_REMOUNT | MS_BIND | MS_RDONLY)
                tmpfs('/tmp/s/out1', 'out1')
                mount(None, '/tmp/s/out1', None, MS_REMOUNT | MS_BIND | MS_RDONLY)
                mount('/tmp/s/out1', '/tmp/s/out2', None, 0x2000)  # MS_MOVE
                umount('/tmp/s/out2')
                umount(f'{root}/in1')
                jail.send('collect')
                seen = jail.recv(timeout=120)
            finally:
                jail.wait(timeout=60)
            chan.send({'check': 'scope.long-root', 'value': {
                'root_length': len(root) - len('/tmp/s'), 'ready': ready, **seen}})

            # A root on a mount that was detached: nothing of the namespace is below it.
            tmpfs('/tmp/s/gone', 'gone')
            os.makedirs('/tmp/s/gone/dir')
            tmpfs('/tmp/s/gone/dir', 'gone-child')
            os.makedirs('/tmp/s/after')

            def detached(jail):
                proc = os.open('/proc/self', os.O_RDONLY | os.O_DIRECTORY)
                os.chdir('/tmp/s/gone')
                os.chroot('.')
                before = Listener(family)
                jail.send({'ready': True})
                jail.recv(timeout=120)
                after = Listener(family)
                jail.send({'ready': True, 'mountinfo': len(mountinfo(proc_fd=proc))})
                jail.recv(timeout=120)
                jail.send({'before': events_of(before), 'after': events_of(after),
                           'truth': truth_compare(family, proc_fd=proc)})
                before.close()
                after.close()

            jail = Child(detached)
            try:
                jail.recv(timeout=120)
                umount('/tmp/s/gone', MNT_DETACH)
                jail.send('detached')
                ready = jail.recv(timeout=120)
                tmpfs('/tmp/s/after', 'after')
                umount('/tmp/s/after')
                jail.send('collect')
                seen = jail.recv(timeout=120)
            finally:
                jail.wait(timeout=60)
            chan.send({'check': 'scope.detached-root', 'value': {'ready': ready, **seen}})
            chan.send({'check': 'done', 'value': None, 'done': True})

        self.private(body)

    # -- a dump answers for the task that started it, whoever reads the rest
    def dump_fixed(self):
        family = self.family

        def body(chan):
            tmpfs('/tmp/f', 'fixed', 'size=4m')
            root = '/tmp/f/jail'
            os.makedirs(root)
            # Enough for batches read, and refilled, by the second reader (netlink refills the
            # buffer in the reader's recvmsg(): the first batches come from the jailed task).
            for i in range(800):
                tmpfs(f'{root}/m{i}', f'm{i}', 'size=16k')
            tmpfs('/tmp/f/outside', 'outside')
            # An abstract unix socket: reachable from a chroot (a child keeps no other descriptor).
            address = f'\0usip-dump-fixed-{os.getpid()}'
            server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            server.bind(address)
            server.listen(1)

            def jailed(jail):
                hand = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                hand.connect(address)
                proc = os.open('/proc/self', os.O_RDONLY | os.O_DIRECTORY)
                os.chdir(root)
                os.chroot('.')
                sock = dump_socket(family, 32768)
                first, _, done, _ = read_dump(sock, limit=1)
                # Hand the rest of the dump to a task in another root and namespace.
                socket.send_fds(hand, [b'x'], [sock.fileno()])
                jail.send({'first': first, 'done': done, 'truth': mountinfo(proc_fd=proc)})
                sock.close()
                jail.recv(timeout=120)

            jail = Child(jailed)
            try:
                conn, _ = server.accept()
                _, fds, _, _ = socket.recv_fds(conn, 16, 1)
                started = jail.recv(timeout=120)
                # The reader of the rest is in another mount namespace, with another root.
                unshare(CLONE_NEWNS)
                umount('/tmp/f/outside')
                sock = socket.socket(fileno=fds[0])
                rest, datagrams, done, err = read_dump(sock)
                sock.close()
                jail.send('done')
            finally:
                jail.wait(timeout=60)
            truth = {int(k): v for k, v in started['truth'].items()}
            chan.send({'check': 'scope.dump-fixed', 'value': {
                'first_batch': len(started['first']), 'done_after_first': started['done'],
                'rest': len(rest), 'rest_datagrams': datagrams, 'errno': errname(err),
                'compare': compare(started['first'] + rest, truth),
            }})
            chan.send({'check': 'done', 'value': None, 'done': True})

        self.private(body)

    # -- a container gets only its own
    def containers(self):
        script = os.path.abspath(__file__)
        host = Listener(self.family)
        runs = {}
        for label, flags, uid in (('own-netns', '-Urnpfm', NOBODY), ('own-netns-root', '-Urnpfm', 0),
                                  ('host-netns', '-Urpfm', NOBODY)):
            command = ['unshare', flags, '--mount-proc', sys.executable, script, '--container']
            if uid:
                command = ['setpriv', f'--reuid={uid}', f'--regid={uid}', '--clear-groups'] + command
            proc = subprocess.run(command, capture_output=True, timeout=300, text=True)
            try:
                runs[label] = json.loads(proc.stdout.strip().splitlines()[-1])
            except (IndexError, ValueError):
                runs[label] = {'error': f'exit {proc.returncode}: {proc.stdout[-2000:]} {proc.stderr[-2000:]}'}
        # The host's own listener in the initial mount namespace saw none of it.
        host_events = events_of(host)
        host.close()
        self.record('containers', {'runs': runs, 'host_events': host_events,
                                   'host_mnt_ns': os.stat('/proc/self/ns/mnt').st_ino})

    # -- bounded hooks: trees, superblocks, recursive changes
    def trees(self):
        family = self.family

        def tree(base, count):
            tmpfs(base, 'top', 'size=256k')
            for i in range(count - 1):
                tmpfs(f'{base}/t{i}', f't{i}', 'size=16k')

        def body(chan):
            listener = Listener(family)
            out = {}
            # A tree of 40 bound at once; a tree of 4.
            tree('/tmp/big', 40)
            tree('/tmp/small', 4)
            events_of(listener)
            for name in ('big', 'small'):
                os.makedirs(f'/tmp/{name}-copy')
                mount(f'/tmp/{name}', f'/tmp/{name}-copy', None, MS_BIND | MS_REC)
                out[f'rbind-{name}'] = events_of(listener)
            # Recursive setattr of the 40.
            mount_setattr('/tmp/big-copy', AT_RECURSIVE, MOUNT_ATTR_NOEXEC)
            out['setattr-recursive-big'] = events_of(listener)
            # Moved under a shared mount: all 40 became shared.
            tmpfs('/tmp/shared', 'shared')
            mount(None, '/tmp/shared', None, MS_SHARED)
            os.makedirs('/tmp/shared/in')
            mount('/tmp/big-copy', '/tmp/shared/in', None, 0x2000)  # MS_MOVE
            out['move-under-shared-big'] = events_of(listener)
            # Detached at once.
            umount('/tmp/shared/in', MNT_DETACH)
            out['umount-lazy-big'] = events_of(listener)
            umount('/tmp/small-copy', MNT_DETACH)
            out['umount-lazy-small'] = events_of(listener)
            # One superblock mounted in 20 places, remounted; then one in 3 places.
            for name, places in (('sb20', 20), ('sb3', 3)):
                tmpfs(f'/tmp/{name}', name)
                for i in range(places - 1):
                    os.makedirs(f'/tmp/{name}-b{i}')
                    mount(f'/tmp/{name}', f'/tmp/{name}-b{i}', None, MS_BIND)
                events_of(listener)
                mount(None, f'/tmp/{name}', None, MS_REMOUNT, 'size=512k')
                out[f'remount-{name}'] = events_of(listener)
            out['truth'] = truth_compare(family)
            listener.close()
            chan.send({'check': 'trees', 'value': out})
            chan.send({'check': 'done', 'value': None, 'done': True})

        self.private(body)

    # -- a dump left unread pins nothing
    def unpinned(self):
        family = self.family

        def body(chan):
            tmpfs('/tmp/busy', 'busy', 'size=1m')
            for i in range(200):
                tmpfs(f'/tmp/busy/m{i}', f'b{i}', 'size=16k')
            sock = dump_socket(family, 32768)
            first, _, done, _ = read_dump(sock, limit=1)
            failures = []
            for i in range(200):
                try:
                    umount(f'/tmp/busy/m{i}')
                except OSError as e:
                    failures.append({'mount': f'm{i}', 'error': errname(e.errno)})
            sock.close()
            chan.send({'check': 'unpinned', 'value': {'first_batch': len(first), 'done': done,
                                                      'failures': failures}})
            chan.send({'check': 'done', 'value': None, 'done': True})

        self.private(body)


def container():
    """Inside unshare -Ur[n]pfm --mount-proc: what this process's listener and groups get."""
    family, groups = resolve_family()
    out = {'pid': os.getpid(), 'uid': os.getuid(), 'mnt_ns': os.stat('/proc/self/ns/mnt').st_ino}
    mount(None, '/', None, MS_REC | MS_PRIVATE)
    listener = Listener(family)
    sub = Genl(family)
    try:
        sub.join(groups['mtab'])
        out['join'] = 'ok'
    except OSError as e:
        out['join'] = errname(e.errno)
    tmpfs('/tmp/c1', 'c1')
    umount('/tmp/c1')
    out['events'] = events_of(listener)
    out['copies'] = sub.drain() if out['join'] == 'ok' else []
    listener.close()
    sub.close()
    print(json.dumps(out, default=str), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--only', action='append', help='run only these sections')
    parser.add_argument('--container', action='store_true', help='the part run in a container')
    args = parser.parse_args()
    if args.container:
        container()
        return
    out = os.path.join(os.environ.get('USIP_VM_RESULTS', '.'), 'mount-hardening-checks.jsonl')
    rec = Recorder(out)
    checks = Checks(rec)
    for name, fn in (('scope', checks.scope), ('dump-fixed', checks.dump_fixed),
                     ('containers', checks.containers), ('trees', checks.trees),
                     ('unpinned', checks.unpinned)):
        if args.only and name not in args.only:
            continue
        rec.section(name, fn)
    rec.record('end', True)


if __name__ == '__main__':
    main()
