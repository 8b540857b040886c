#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
#
# Runs in the test VM with usip.ko loaded, as root, and drives the module
# with the kernel's own YNL CLI (tools/net/ynl/cli.py, or pyynl/cli.py in
# newer kernels) and our spec, packages/kernel-module/spec/usip.yaml: the
# client is the kernel's, the only thing of ours is the spec. The CLI and its
# schema come from Debian's linux-source of a supported series, fetched on
# the host by scripts/fetch-kernel-ynl.sh (the guest sees the host's root).
#
#   - ping: --do ping with a cookie;
#   - mount dump: --dump mount-get, next to /proc/self/mountinfo;
#   - listener: --subscribe mtab --sleep 2 --do listener-register with an
#     mtab notifier (flags notify) for mounts under a fresh directory; once
#     the listener is registered (a listener-get dump shows it, with the CLI's
#     pid as owner), a tmpfs is mounted there, and the CLI must print the
#     mtab-event of that mount: the copy sent to its listener (with
#     listener-id) and the mtab group's copy (without).
#
# The CLI of 6.12 sleeps before its request and, after the reply, reads only
# the notifications already queued on its socket (newer CLIs keep reading
# for --sleep seconds after the request). So that its listener lives until
# the event has arrived, its stdout is a pipe this script has filled: the CLI
# blocks writing the reply, after registering and before reading
# notifications, until the event is on its socket (the listener's delivered
# count, from listener-get, and the group copy seen by this script, a member
# of the group too) and the pipe is drained. listener-get is
# dumped through the kernel's YNL library (the lib/ next to cli.py), in this
# process: a Python YNL start takes seconds under TCG, so the script waits for
# what it needs to see, never for a fixed time.
#
# It judges nothing: one JSON line per check goes to
# $USIP_VM_RESULTS/ynl-cli-checks.jsonl and ynl-cli.test.ts asserts on them.
#
# Usage: ynl_cli_checks.py --cli CLI --schema GENETLINK_YAML --spec SPEC
import argparse
import fcntl
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback

PYTHON = '/usr/bin/python3'
# A Python YNL start takes seconds under TCG; these are guards, not expected times.
CLI_TIMEOUT_S = 240
WAIT_S = 180
# Above 32 bits, below 2**53 (JavaScript reads the results as numbers).
COOKIE = 0x123456789abc


def plain(obj):
    """What the YNL library returns that JSON lacks: flags as sets, binary as bytes (as the CLI prints them)."""
    if isinstance(obj, set):
        return sorted(obj)
    if isinstance(obj, bytes):
        return obj.hex()
    raise TypeError(f'{type(obj).__name__} is not JSON serializable')


class Recorder:
    def __init__(self, path):
        self.out = open(path, 'w', encoding='utf-8')

    def record(self, check, value):
        self.out.write(json.dumps({'check': check, 'value': value}, default=plain) + '\n')
        self.out.flush()

    def error(self, check, message):
        self.out.write(json.dumps({'check': check, 'error': message}) + '\n')
        self.out.flush()


def tail(text, n=4000):
    return text if len(text) <= n else '...' + text[-n:]


def unescape_mountinfo(field):
    """mountinfo escapes space, tab, newline and backslash as \\ooo."""
    out, i = bytearray(), 0
    raw = field.encode('utf-8', 'surrogateescape')
    while i < len(raw):
        if raw[i] == 0x5c and i + 4 <= len(raw) and raw[i + 1:i + 4].isdigit():
            out.append(int(raw[i + 1:i + 4], 8))
            i += 4
        else:
            out.append(raw[i])
            i += 1
    return out.decode('utf-8', 'surrogateescape')


def mountinfo():
    """Each mount of /proc/self/mountinfo: id, mount point, file system type."""
    mounts = []
    with open('/proc/self/mountinfo', encoding='utf-8', errors='surrogateescape') as f:
        for line in f:
            fields = line.rstrip('\n').split(' ')
            sep = fields.index('-')
            mounts.append({'mount_id': int(fields[0]), 'mount_point': unescape_mountinfo(fields[4]),
                           'fs_type': fields[sep + 1]})
    return mounts


class Cli:
    def __init__(self, cli, schema, spec):
        self.base = [PYTHON, '-u', cli, '--spec', spec, '--schema', schema, '--output-json']

    def argv(self, *args):
        return self.base + list(args)

    def run(self, *args):
        start = time.monotonic()
        r = subprocess.run(self.argv(*args), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=CLI_TIMEOUT_S)
        return {'argv': args, 'returncode': r.returncode, 'stdout': r.stdout, 'stderr': tail(r.stderr),
                'seconds': round(time.monotonic() - start, 1), 'json': json_lines(r.stdout)}


def json_lines(text):
    """The CLI prints one JSON document per line with --output-json."""
    docs = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            docs.append(json.loads(line))
        except ValueError:
            docs.append({'unparsed': line})
    return docs


def check_ping(rec, cli):
    rec.record('ping', cli.run('--do', 'ping', '--json', json.dumps({'cookie': COOKIE})))


def check_mount_dump(rec, cli):
    before = mountinfo()
    result = cli.run('--dump', 'mount-get')
    after = mountinfo()
    dumped = result['json'][0] if result['json'] else None
    result['stdout'] = tail(result['stdout'], 2000)
    result['mounts'] = ([{'mount_id': m.get('mount-id'), 'mount_point': m.get('mount-point'),
                          'fs_type': m.get('fs-type')} for m in dumped]
                        if isinstance(dumped, list) else None)
    del result['json']
    result['mountinfo_before'] = before
    result['mountinfo_after'] = after
    rec.record('mount-dump', result)


def fill_pipe(fd):
    """Fills a pipe so that any further write blocks; returns how many bytes it took."""
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_NONBLOCK)
    written = 0
    for chunk in (b'\0' * 4096, b'\0'):
        while True:
            try:
                written += os.write(fd, chunk)
            except BlockingIOError:
                break
    # The CLI must block, not fail with EAGAIN: O_NONBLOCK belongs to the open file, shared.
    fcntl.fcntl(fd, fcntl.F_SETFL, flags)
    return written


def read_exactly(fd, n):
    while n > 0:
        chunk = os.read(fd, min(n, 65536))
        if not chunk:
            raise EOFError(f'{n} bytes of padding still unread at end of file')
        n -= len(chunk)


def read_all(fd):
    parts = []
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            return b''.join(parts)
        parts.append(chunk)


def check_listener(rec, cli, cli_path, schema, spec):
    # The kernel's YNL library, from next to the CLI, for the listener-get dumps.
    sys.path.insert(0, os.path.dirname(os.path.abspath(cli_path)))
    from lib import YnlFamily  # noqa: E402  (the kernel's tools/net/ynl/lib)
    ynl = YnlFamily(spec, schema)
    # A member of the mtab group too: the module sends a group copy to every member in one call,
    # so once this socket has the copy of the mount's event, the CLI's socket has it as well. A
    # socket of its own: 6.12's library fails a request whose answer shares a read with a
    # notification.
    member = YnlFamily(spec, schema)
    member.ntf_subscribe('mtab')

    def listener_of(pid):
        for listener in ynl.dump('listener-get', {}):
            if listener.get('owner-pid') == pid:
                return listener
        return None

    def group_copy_seen():
        member.check_ntf()
        queue = member.async_msg_queue  # a list in 6.12, a queue.Queue in newer kernels
        for ntf in (queue if isinstance(queue, list) else list(queue.queue)):
            msg = ntf.get('msg', {})
            if ntf.get('name') == 'mtab-event' and 'listener-id' not in msg and msg.get('path') == where:
                return True
        return False

    where = tempfile.mkdtemp(prefix='usip-ynl-cli-', dir='/tmp')
    request = {'notifier': [{'type': 'mtab', 'action': 'mount', 'cmd': 7, 'flags': ['notify'],
                             'path-prefix': where}]}
    argv = ('--subscribe', 'mtab', '--sleep', '2', '--do', 'listener-register', '--json', json.dumps(request))
    value = {'argv': argv, 'where': where}
    r, w = os.pipe()
    value['padding'] = padding = fill_pipe(w)
    err = tempfile.TemporaryFile()
    start = time.monotonic()
    proc = subprocess.Popen(cli.argv(*argv), stdin=subprocess.DEVNULL, stdout=w, stderr=err)
    os.close(w)
    mounted = False
    try:
        listener = None
        while time.monotonic() - start < WAIT_S and proc.poll() is None:
            listener = listener_of(proc.pid)
            if listener is not None:
                break
            time.sleep(0.05)
        value['registered_after_s'] = round(time.monotonic() - start, 1)
        value['listener'] = listener
        if listener is not None:
            subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=1m', 'usip-ynl-cli', where], check=True)
            mounted = True
            value['mount'] = next((m for m in mountinfo() if m['mount_point'] == where), None)
            # Until the event is on the CLI's socket: its own copy (the listener's delivered
            # count) and the group's.
            delivered, group_copy = None, False
            while time.monotonic() - start < WAIT_S and proc.poll() is None:
                delivered = listener_of(proc.pid)
                group_copy = group_copy or group_copy_seen()
                if delivered is not None and delivered.get('delivered', 0) >= 1 and group_copy:
                    break
                time.sleep(0.05)
            value['delivered_after_s'] = round(time.monotonic() - start, 1)
            value['listener_after_mount'] = delivered
            value['group_copy_seen'] = group_copy
        # Let the CLI go on: its reply, then what its socket holds.
        read_exactly(r, padding)
        out = read_all(r)
        try:
            proc.wait(timeout=CLI_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            value['killed'] = True
        value['returncode'] = proc.returncode
        value['stdout'] = tail(out.decode('utf-8', 'replace'))
        docs = json_lines(out.decode('utf-8', 'replace'))
        value['reply'] = docs[0] if docs else None
        # 6.12's CLI prints the notifications as one list after the reply, newer ones one per line.
        notifications = []
        for doc in docs[1:]:
            notifications.extend(doc if isinstance(doc, list) else [doc])
        value['notifications'] = notifications
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(r)
        err.seek(0)
        value['stderr'] = tail(err.read().decode('utf-8', 'replace'))
        if mounted:
            subprocess.run(['umount', where], check=False)
        os.rmdir(where)
    rec.record('listener', value)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--cli', required=True)
    parser.add_argument('--schema', required=True)
    parser.add_argument('--spec', required=True)
    args = parser.parse_args()
    results = os.environ.get('USIP_VM_RESULTS')
    if not results:
        sys.exit('ynl_cli_checks.py: $USIP_VM_RESULTS is not set (run it in the usip-vm guest)')
    rec = Recorder(os.path.join(results, 'ynl-cli-checks.jsonl'))
    rec.record('start', {'python': sys.version.split()[0], 'uid': os.getuid(), 'cli': args.cli,
                         'schema': args.schema, 'release': os.uname().release})
    cli = Cli(args.cli, args.schema, args.spec)
    for name, check in (('ping', lambda: check_ping(rec, cli)),
                        ('mount-dump', lambda: check_mount_dump(rec, cli)),
                        ('listener', lambda: check_listener(rec, cli, args.cli, args.schema, args.spec))):
        try:
            check()
        except Exception:  # one broken group must not hide the others
            rec.error(name, traceback.format_exc())
    rec.record('end', True)


if __name__ == '__main__':
    main()
