#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
#
# Runs in the test VM with usip.ko loaded with fail_check=mount-events, the module parameter that
# makes the load-time checks of the named features fail as if the kernel did not match, and
# records how the module degrades:
#
#   loaded     the kernel log of the load (one line for mount-events, and no other feature
#              off), the parameter as sysfs shows it, ping's features mask and feature-status
#   refusals   mount, umount and move notifiers refused (EOPNOTSUPP, extack naming
#              mount-events), nothing registered or armed; a remount notifier (its other
#              sources still work) and a storage notifier accepted
#   storage    an enospc notifier still hears a real failing write on a full tmpfs
#   reload     loaded without the parameter: what this kernel offers, to compare with;
#              fail_check naming no feature refuses to load (EINVAL, said in the kernel log);
#              fail_check=mount-table,quota-warnings takes out the table, what needs it and
#              quota-warnings; loaded again as it started
#
# The sockets and the protocol come from listener_checks.py and hardening_checks.py. The script
# judges nothing: each check writes one JSON line to $USIP_VM_RESULTS/fail-check-checks.jsonl and
# fail-check.test.ts judges them.
#
# Usage: fail_check_checks.py KO
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import hardening_checks as hc  # noqa: E402  (after the path is set)
import listener_checks as lc  # noqa: E402
from hardening_checks import CMD, ENOSPC, MOUNT, MTAB, NOTIFY, P, STORAGE, UMOUNT  # noqa: E402

MOVE, REMOUNT = P['ACTION_MOVE'], P['ACTION_REMOUNT']
FULL = '/tmp/usip-fail-check-full'
MNT_DETACH = 2


def features(sock):
    names = P.names('USIP_FEATURE_')
    reasons = P.names('USIP_UNAVAILABLE_REASON_')
    reply = hc.ping(sock)
    return {'mask': reply.get('features'),
            'status': {names.get(s.get('feature'), s.get('feature')): {
                'available': s.get('available'), 'reason': reasons.get(s.get('reason'))}
                for s in reply.get('feature_status', [])}}


def boot_log():
    """The module's lines in the kernel log of this boot (it was loaded once, by the harness)."""
    out = subprocess.run(['dmesg'], capture_output=True, text=True, check=False).stdout.splitlines()
    return [line.split('] ', 1)[-1] for line in out if 'usip: ' in line]


def insmod(ko, *params):
    """Loads the module; its exit, and the module's kernel log lines of the load."""
    log = hc.KernelLog()
    try:
        r = subprocess.run(['insmod', ko, *params], capture_output=True, text=True, check=False)
        time.sleep(0.2)
        return {'exit': r.returncode, 'stderr': r.stderr.strip(), 'log': log.lines('usip: ')}
    finally:
        log.close()


class Checks:
    def __init__(self, rec, ko):
        self.rec = rec
        self.ko = ko
        self.connect()

    def connect(self):
        self.family, self.groups = lc.resolve_family()
        self.ctl = lc.Genl(self.family)

    def record(self, check, value):
        self.rec.record(check, value)

    def loaded(self):
        self.record('loaded.log', boot_log())
        self.record('loaded.param', hc.try_read_param('fail_check'))
        self.record('loaded.features', {**features(self.ctl), 'spec_mask': P['FEATURE_MASK'],
                                        'feature_flags': P.names('USIP_FEATURE_')})

    def refusals(self):
        out = {}
        for name, action in (('mount', MOUNT), ('umount', UMOUNT), ('move', MOVE)):
            with lc.Genl(self.family) as s:
                got = hc.register(s, [hc.notifier(MTAB, action, NOTIFY)])
                out[name] = {k: got.get(k) for k in ('errno', 'error', 'extack', 'extack_offset')}
        # One refused notifier among good ones refuses the listener.
        with lc.Genl(self.family) as s:
            got = hc.register(s, [hc.notifier(STORAGE, ENOSPC, NOTIFY), hc.notifier(MTAB, MOUNT, NOTIFY)])
            out['mixed'] = {k: got.get(k) for k in ('errno', 'error', 'extack')}
        out['listeners_after'] = hc.stats(self.ctl).get('listeners')
        out['mount_hooks_after'] = hc.stats(self.ctl).get('mount_hooks')
        self.record('refusals.mtab', out)
        with lc.Genl(self.family) as s:
            got = hc.register(s, [hc.notifier(MTAB, REMOUNT, NOTIFY)])
            self.record('refusals.remount', {'errno': got.get('errno'), 'extack': got.get('extack'),
                                             'mount_hooks': hc.stats(self.ctl).get('mount_hooks')})

    def storage(self):
        os.makedirs(FULL, exist_ok=True)
        if lc.LIBC.mount(b'usip-full', FULL.encode(), b'tmpfs', 0, b'size=64k') != 0:
            raise OSError(f'mount tmpfs on {FULL} failed')
        try:
            with lc.Genl(self.family) as s:
                got = hc.register(s, [hc.notifier(STORAGE, ENOSPC, NOTIFY)])
                write_errno = None
                try:
                    with open(os.path.join(FULL, 'fill'), 'wb') as f:
                        for _ in range(64):
                            f.write(b'\0' * 4096)
                            f.flush()
                            os.fsync(f.fileno())
                except OSError as e:
                    write_errno = lc.errname(e.errno)
                event = hc.next_message(s, 10)
                self.record('storage.enospc', {
                    'register': {'errno': got.get('errno'), 'extack': got.get('extack')},
                    'write_errno': write_errno, 'mount_point': FULL,
                    'event': None if event is None else {k: event.get(k) for k in (
                        'genl_cmd', 'type', 'action', 'path', 'fs_type', 'pid')},
                    'pid': os.getpid(), 'storage_event_cmd': CMD['STORAGE_EVENT'],
                })
        finally:
            # Lazily: the module keeps the mount a moment for the failures it coalesces.
            hc.umount(FULL, MNT_DETACH)
            os.rmdir(FULL)

    def reload(self):
        self.ctl.close()
        removed = subprocess.run(['rmmod', 'usip'], capture_output=True, text=True, check=False)
        # What this kernel offers without the parameter, to compare with.
        baseline = insmod(self.ko)
        if baseline['exit'] == 0:
            self.connect()
            baseline['features'] = features(self.ctl)
            self.ctl.close()
            baseline['rmmod'] = subprocess.run(['rmmod', 'usip'], check=False).returncode
        bogus = insmod(self.ko, 'fail_check=mount-events,no-such-feature')
        bogus['loaded'] = os.path.exists('/sys/module/usip')
        table = insmod(self.ko, 'fail_check=mount-table,quota-warnings')
        if table['exit'] == 0:
            self.connect()
            table['features'] = features(self.ctl)
            self.ctl.close()
            table['rmmod'] = subprocess.run(['rmmod', 'usip'], check=False).returncode
        again = insmod(self.ko, 'fail_check=mount-events')
        self.connect()
        self.record('reload', {'rmmod': removed.returncode, 'baseline': baseline, 'bogus': bogus, 'table': table, 'again': again,
                               'param': hc.try_read_param('fail_check'), 'features': features(self.ctl)})


def main():
    results = os.environ.get('USIP_VM_RESULTS')
    if not results or len(sys.argv) != 2:
        sys.exit('usage: fail_check_checks.py KO (in the usip-vm guest, $USIP_VM_RESULTS set)')
    rec = lc.Recorder(os.path.join(results, 'fail-check-checks.jsonl'))
    checks = Checks(rec, sys.argv[1])
    for name, fn in (('loaded', checks.loaded), ('refusals', checks.refusals), ('storage', checks.storage),
                     ('reload', checks.reload)):
        rec.section(name, fn)
    time.sleep(0.1)
    rec.record('cleanup', {'stats': hc.stats(checks.ctl)})
    checks.ctl.close()
    rec.write({'check': 'end', 'value': True})


if __name__ == '__main__':
    main()
