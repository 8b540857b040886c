#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
#
# Runs in the test VM with usip.ko loaded and asks the usip family questions
# with tools that are not ours: genl-ctrl-list (libnl) for the registration,
# pyroute2's GenericNetlinkSocket for ping, and raw netlink sockets for the
# malformed requests. Prints one JSON object; the host test judges it.
#
# The attribute ids and command numbers below are written out from the uapi
# contract on purpose, so that a change of the ABI makes this test fail.
#
# Usage: family_checks.py [--ping-only]
import errno
import json
import os
import socket
import struct
import subprocess
import sys

from pyroute2.netlink import NLM_F_REQUEST, genlmsg
from pyroute2.netlink.generic import GenericNetlinkSocket

USIP_CMD_PING = 1
USIP_A_PING_COOKIE = 1
USIP_A_PING_PROTOCOL_VERSION = 2
USIP_A_PING_PAD = 6

NETLINK_GENERIC = 16
SOL_NETLINK = 270
NETLINK_EXT_ACK = 11
NLMSG_ERROR = 2
NLM_F_ACK = 0x4
NLM_F_CAPPED = 0x100
NLM_F_ACK_TLVS = 0x200
NLMSGERR_ATTR_MSG = 1
NLMSGERR_ATTR_OFFS = 2


class UsipPingMsg(genlmsg):
    nla_map = (
        ('USIP_A_PING_UNSPEC', 'none'),
        ('USIP_A_PING_COOKIE', 'uint64'),
        ('USIP_A_PING_PROTOCOL_VERSION', 'uint32'),
        ('USIP_A_PING_MODULE_VERSION', 'asciiz'),
        ('USIP_A_PING_FEATURES', 'uint32'),
        ('USIP_A_PING_KERNEL_RELEASE', 'asciiz'),
        ('USIP_A_PING_PAD', 'none'),
    )


def ping_with_pyroute2(cookie):
    """One ping through pyroute2; returns the decoded reply (and the family id)."""
    sock = GenericNetlinkSocket()
    try:
        sock.bind('usip', UsipPingMsg)
        msg = UsipPingMsg()
        msg['cmd'] = USIP_CMD_PING
        msg['version'] = 1
        if cookie is not None:
            msg['attrs'] = [('USIP_A_PING_COOKIE', cookie)]
        replies = sock.nlm_request(msg, msg_type=sock.prid, msg_flags=NLM_F_REQUEST)
        reply = replies[0]
        return {
            'family_id': sock.prid,
            'replies': len(replies),
            'cmd': reply['cmd'],
            'protocol_version': reply.get_attr('USIP_A_PING_PROTOCOL_VERSION'),
            'module_version': reply.get_attr('USIP_A_PING_MODULE_VERSION'),
            'features': reply.get_attr('USIP_A_PING_FEATURES'),
            'kernel_release': reply.get_attr('USIP_A_PING_KERNEL_RELEASE'),
            # JSON numbers lose precision above 2**53: send the cookie as text.
            'cookie': None if reply.get_attr('USIP_A_PING_COOKIE') is None
            else str(reply.get_attr('USIP_A_PING_COOKIE')),
            'net_namespace': os.readlink('/proc/self/ns/net'),
        }
    finally:
        sock.close()


def nla(attr_type, payload):
    length = 4 + len(payload)
    return struct.pack('=HH', length, attr_type) + payload + b'\0' * ((4 - length % 4) % 4)


def raw_request(family_id, cmd, attrs, reserved=0):
    """Sends one genetlink request on a raw socket and returns the error/ack it gets."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC)
    try:
        sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
        sock.bind((0, 0))
        body = struct.pack('=BBH', cmd, 1, reserved) + attrs
        seq = 4242
        header = struct.pack('=IHHII', 16 + len(body), family_id, NLM_F_REQUEST | NLM_F_ACK, seq, 0)
        sock.send(header + body)
        replies = 0
        while True:
            data = sock.recv(65536)
            offset = 0
            while offset + 16 <= len(data):
                length, msg_type, flags, msg_seq, _ = struct.unpack_from('=IHHII', data, offset)
                if msg_type != NLMSG_ERROR:
                    replies += 1
                    offset += (length + 3) & ~3
                    continue
                (error,) = struct.unpack_from('=i', data, offset + 16)
                # The error carries the request's header, or all of it when not capped.
                request_length = struct.unpack_from('=I', data, offset + 20)[0]
                tlv = offset + 20 + (16 if flags & NLM_F_CAPPED else request_length)
                message, attr_offset = None, None
                if flags & NLM_F_ACK_TLVS:
                    end = offset + length
                    while tlv + 4 <= end:
                        tlv_len, tlv_type = struct.unpack_from('=HH', data, tlv)
                        if tlv_len < 4:
                            break
                        payload = data[tlv + 4:tlv + tlv_len]
                        if tlv_type == NLMSGERR_ATTR_MSG:
                            message = payload.split(b'\0')[0].decode()
                        elif tlv_type == NLMSGERR_ATTR_OFFS:
                            attr_offset = struct.unpack('=I', payload)[0]
                        tlv += (tlv_len + 3) & ~3
                return {
                    'seq': msg_seq,
                    'errno': -error,
                    'error': errno.errorcode.get(-error, str(-error)) if error else None,
                    'extack': message,
                    'extack_offset': attr_offset,
                    'replies': replies,
                }
    finally:
        sock.close()


def malformed_requests(family_id):
    u64 = struct.pack('=Q', 7)
    return {
        # The request carries what a valid ping carries, so the other cases differ by one thing.
        'valid': raw_request(family_id, USIP_CMD_PING, nla(USIP_A_PING_COOKIE, u64)),
        'short_cookie': raw_request(family_id, USIP_CMD_PING, nla(USIP_A_PING_COOKIE, struct.pack('=I', 7))),
        'long_cookie': raw_request(family_id, USIP_CMD_PING, nla(USIP_A_PING_COOKIE, u64 + u64)),
        'reply_attribute_in_request': raw_request(
            family_id, USIP_CMD_PING, nla(USIP_A_PING_PROTOCOL_VERSION, struct.pack('=I', 1))),
        'unknown_attribute': raw_request(family_id, USIP_CMD_PING, nla(99, struct.pack('=I', 1))),
        'pad_attribute': raw_request(family_id, USIP_CMD_PING, nla(USIP_A_PING_PAD, b'')),
        'reserved_header_byte': raw_request(family_id, USIP_CMD_PING, b'', reserved=1),
        'unknown_command': raw_request(family_id, 99, b''),
    }


def main():
    if sys.argv[1:] == ['--ping-only']:
        print(json.dumps(ping_with_pyroute2(0xFEEDFACECAFEBEEF)))
        return
    result = {}
    result['ctrl_list'] = subprocess.run(['genl-ctrl-list', '-d'], check=True, capture_output=True,
                                         text=True).stdout
    result['ping'] = ping_with_pyroute2(0x8877665544332211)
    result['ping_without_cookie'] = ping_with_pyroute2(None)
    result['malformed'] = malformed_requests(result['ping']['family_id'])
    other_ns = subprocess.run(['unshare', '--net', sys.executable, os.path.abspath(__file__), '--ping-only'],
                              check=False, capture_output=True, text=True)
    result['other_netns'] = {
        'exit': other_ns.returncode,
        'stderr': other_ns.stderr,
        'ping': json.loads(other_ns.stdout) if other_ns.returncode == 0 else None,
    }
    with open('/sys/module/usip/version', encoding='ascii') as version:
        result['sys_module_version'] = version.read().strip()
    print(json.dumps(result))


if __name__ == '__main__':
    main()
