#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
#
# A FUSE file system that hangs: mounts itself at TARGET through /dev/fuse (mount(2) with
# fd=N,rootmode=40000,user_id=0,group_id=0), answers FUSE_INIT, answers every other request
# with ENOSYS, and never answers FUSE_STATFS. Prints "ready" once FUSE_INIT is answered, then
# serves until killed (which aborts the connection: statfs calls waiting on it end).
#
# Usage: hung-fuse.py TARGET [SUBTYPE]
import ctypes
import errno
import os
import struct
import sys

FUSE_INIT, FUSE_STATFS, FUSE_FORGET, FUSE_BATCH_FORGET = 26, 17, 2, 42
IN_HEADER = struct.Struct('=IIQQIIIHH')


def main():
    target = sys.argv[1]
    subtype = sys.argv[2] if len(sys.argv) > 2 else 'hung'
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
    fd = os.open('/dev/fuse', os.O_RDWR)
    options = f'fd={fd},rootmode=40000,user_id=0,group_id=0'.encode()
    if libc.mount(b'hung', target.encode(), f'fuse.{subtype}'.encode(), 0, options) != 0:
        e = ctypes.get_errno()
        sys.exit(f'hung-fuse.py: mount {target}: {os.strerror(e)}')
    while True:
        data = os.read(fd, 1 << 18)
        _length, opcode, unique = struct.unpack_from('=IIQ', data)
        if opcode == FUSE_INIT:
            _major, minor, max_readahead, _flags = struct.unpack_from('=IIII', data, IN_HEADER.size)
            body = struct.pack('=IIIIHHIIHHI', 7, min(minor, 31), max_readahead, 0, 16, 12, 65536, 1, 0, 0, 0)
            body += b'\0' * (64 - len(body))
            os.write(fd, struct.pack('=IiQ', 16 + len(body), 0, unique) + body)
            print('ready', flush=True)
        elif opcode == FUSE_STATFS:
            continue  # never answered
        elif opcode not in (FUSE_FORGET, FUSE_BATCH_FORGET):
            os.write(fd, struct.pack('=IiQ', 16, -errno.ENOSYS, unique))


if __name__ == '__main__':
    main()
