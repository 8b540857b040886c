//! The socket layer: the only module with `unsafe`. It wraps the few system calls a generic
//! netlink client needs in safe functions that return `io::Result`. The socket is non-blocking;
//! waiting for readiness is the caller's business (see `client.rs`).

use std::io;
use std::mem::{self, MaybeUninit};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use tokio::io::unix::AsyncFd;

/// Generic netlink datagram socket bound to a kernel-assigned port id.
#[derive(Debug)]
pub(crate) struct NetlinkSocket {
    fd: OwnedFd,
    port_id: u32,
}

/// Which system call failed while opening a socket, with its error.
#[derive(Debug)]
pub(crate) struct OpenError {
    pub syscall: &'static str,
    pub error: io::Error,
}

fn check(result: libc::c_int) -> io::Result<libc::c_int> {
    if result < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(result)
    }
}

fn check_size(result: libc::ssize_t) -> io::Result<usize> {
    if result < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(result as usize)
    }
}

fn kernel_address() -> libc::sockaddr_nl {
    // SAFETY: sockaddr_nl is plain old data; all-zero is valid (port 0 = the kernel, no groups).
    let mut address: libc::sockaddr_nl = unsafe { mem::zeroed() };
    address.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    address
}

const SOCKADDR_NL_LEN: libc::socklen_t = mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t;

impl NetlinkSocket {
    /// Opens a non-blocking `NETLINK_GENERIC` socket with extended acks (the kernel's error
    /// messages), capped acks (errors do not echo the whole request) and packet info (the
    /// multicast group of each datagram), bound to a port id the kernel picks.
    pub(crate) fn open_generic() -> Result<Self, OpenError> {
        let fail = |syscall| move |error| OpenError { syscall, error };
        // SAFETY: socket() takes no pointers; a negative result is turned into an error.
        let raw = check(unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                libc::NETLINK_GENERIC,
            )
        })
        .map_err(fail("socket"))?;
        // SAFETY: `raw` is a descriptor socket() just returned and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        set_int_option(&fd, libc::SOL_NETLINK, libc::NETLINK_EXT_ACK, 1)
            .map_err(fail("setsockopt(NETLINK_EXT_ACK)"))?;
        set_int_option(&fd, libc::SOL_NETLINK, libc::NETLINK_CAP_ACK, 1)
            .map_err(fail("setsockopt(NETLINK_CAP_ACK)"))?;
        // Each received datagram then carries the multicast group it was sent to (0 for a
        // unicast), which tells notifications from replies even for group ids above 32.
        set_int_option(&fd, libc::SOL_NETLINK, libc::NETLINK_PKTINFO, 1)
            .map_err(fail("setsockopt(NETLINK_PKTINFO)"))?;

        let address = kernel_address();
        // SAFETY: `address` is a valid sockaddr_nl and the length passed is its size.
        check(unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&raw const address).cast::<libc::sockaddr>(),
                SOCKADDR_NL_LEN,
            )
        })
        .map_err(fail("bind"))?;

        let mut bound = kernel_address();
        let mut length = SOCKADDR_NL_LEN;
        // SAFETY: `bound` and `length` are valid for writes and `length` holds bound's size.
        check(unsafe {
            libc::getsockname(
                fd.as_raw_fd(),
                (&raw mut bound).cast::<libc::sockaddr>(),
                &mut length,
            )
        })
        .map_err(fail("getsockname"))?;
        Ok(Self {
            fd,
            port_id: bound.nl_pid,
        })
    }

    /// Registers the socket with the current tokio runtime's reactor, which then reports when
    /// it is readable or writable. Must run within a runtime that has I/O enabled.
    pub(crate) fn register(self) -> io::Result<AsyncFd<Self>> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(io::Error::other(
                "not called within a tokio runtime, whose reactor would drive the socket",
            ));
        }
        // SAFETY: the descriptor is an OwnedFd this value owns for its whole life, so it stays
        // open and the same while the AsyncFd holds it, and as_raw_fd always returns it.
        unsafe { AsyncFd::register(self) }.map_err(io::Error::from)
    }

    /// The port id the kernel assigned; replies to us carry it.
    pub(crate) fn port_id(&self) -> u32 {
        self.port_id
    }

    /// Sends one complete message to the kernel (port 0). Netlink datagrams are sent whole or
    /// not at all; a short count would be a kernel bug and is reported as an error.
    pub(crate) fn send_to_kernel(&self, message: &[u8]) -> io::Result<()> {
        let address = kernel_address();
        // SAFETY: `message` is valid for reads of its length; `address` is a valid sockaddr_nl
        // of the given size.
        let sent = check_size(unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                message.as_ptr().cast(),
                message.len(),
                0,
                (&raw const address).cast::<libc::sockaddr>(),
                SOCKADDR_NL_LEN,
            )
        })?;
        if sent != message.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("sent {sent} of {} bytes", message.len()),
            ));
        }
        Ok(())
    }

    /// Sends a datagram to another socket's port, or to multicast groups (`groups` is the
    /// sockaddr_nl bit mask: group n is bit n-1). Tests only: they play a process that forges
    /// messages; the kernel allows it to CAP_NET_ADMIN only.
    #[cfg(test)]
    pub(crate) fn send_to(&self, port_id: u32, groups: u32, message: &[u8]) -> io::Result<()> {
        let mut address = kernel_address();
        address.nl_pid = port_id;
        address.nl_groups = groups;
        // SAFETY: `message` is valid for reads of its length; `address` is a valid sockaddr_nl
        // of the given size.
        check_size(unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                message.as_ptr().cast(),
                message.len(),
                libc::MSG_DONTWAIT,
                (&raw const address).cast::<libc::sockaddr>(),
                SOCKADDR_NL_LEN,
            )
        })
        .map(drop)
    }

    /// The full size of the next datagram, without consuming or copying it (MSG_PEEK with a
    /// zero-length buffer and MSG_TRUNC makes netlink report the real length).
    #[cfg(test)]
    pub(crate) fn next_datagram_size(&self) -> io::Result<usize> {
        let mut empty = [0u8; 0];
        // SAFETY: a zero-length buffer is never written to; the pointer is valid and non-null.
        check_size(unsafe {
            libc::recv(
                self.fd.as_raw_fd(),
                empty.as_mut_ptr().cast(),
                0,
                libc::MSG_PEEK | libc::MSG_TRUNC,
            )
        })
    }

    /// Receives one datagram into `buffer`: its length, the sender's port id (0 for the kernel)
    /// and the multicast group it was sent to (0 for a unicast to this socket). A datagram
    /// longer than `buffer` is an error rather than silently cut short.
    pub(crate) fn receive(&self, buffer: &mut [u8]) -> io::Result<Datagram> {
        let mut sender = MaybeUninit::<libc::sockaddr_nl>::zeroed();
        let mut io_vector = libc::iovec {
            iov_base: buffer.as_mut_ptr().cast(),
            iov_len: buffer.len(),
        };
        // Room for one cmsghdr + nl_pktinfo (CMSG_SPACE(4) is 24 bytes on 64-bit, 16 on
        // 32-bit), aligned like cmsghdr, with spare space.
        let mut control = [0u64; 8];
        // SAFETY: msghdr is plain old data; all-zero is a valid empty header.
        let mut header: libc::msghdr = unsafe { mem::zeroed() };
        header.msg_name = sender.as_mut_ptr().cast();
        header.msg_namelen = SOCKADDR_NL_LEN;
        header.msg_iov = &raw mut io_vector;
        header.msg_iovlen = 1;
        header.msg_control = control.as_mut_ptr().cast();
        header.msg_controllen = mem::size_of_val(&control) as _;
        // SAFETY: every pointer in `header` points at a live local (`sender`, `io_vector`,
        // `control`) or at `buffer`, each valid for writes of the length given next to it.
        let length = check_size(unsafe {
            libc::recvmsg(self.fd.as_raw_fd(), &raw mut header, libc::MSG_TRUNC)
        })?;
        if length > buffer.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "a {length}-byte datagram did not fit the {}-byte receive buffer",
                    buffer.len()
                ),
            ));
        }
        let mut group = 0;
        // SAFETY: `header` was filled in by recvmsg, so CMSG_FIRSTHDR/CMSG_NXTHDR walk the
        // control messages the kernel wrote within `control` (they return null at its end);
        // a NETLINK_PKTINFO message carries a struct nl_pktinfo, read unaligned to be safe.
        unsafe {
            let mut message = libc::CMSG_FIRSTHDR(&raw const header);
            while !message.is_null() {
                if (*message).cmsg_level == libc::SOL_NETLINK
                    && (*message).cmsg_type == libc::NETLINK_PKTINFO
                {
                    let info = libc::CMSG_DATA(message).cast::<libc::nl_pktinfo>();
                    group = info.read_unaligned().group;
                }
                message = libc::CMSG_NXTHDR(&raw const header, message);
            }
        }
        // SAFETY: zero-initialised above, and recvmsg only ever fills it with a sockaddr_nl.
        let sender = unsafe { sender.assume_init() };
        Ok(Datagram {
            length,
            sender: sender.nl_pid,
            group,
        })
    }

    /// Joins (`NETLINK_ADD_MEMBERSHIP`) or leaves (`NETLINK_DROP_MEMBERSHIP`) a multicast
    /// group by id. The kernel checks the group's capability requirement here (EPERM).
    pub(crate) fn set_membership(&self, group: u32, member: bool) -> io::Result<()> {
        let option = if member {
            libc::NETLINK_ADD_MEMBERSHIP
        } else {
            libc::NETLINK_DROP_MEMBERSHIP
        };
        // The kernel reads the group id as a u32 (an int-sized option).
        set_int_option(
            &self.fd,
            libc::SOL_NETLINK,
            option,
            libc::c_int::from_ne_bytes(group.to_ne_bytes()),
        )
    }

    /// Sets SO_RCVBUF; the kernel doubles the value (for its bookkeeping) and caps it at
    /// net.core.rmem_max.
    pub(crate) fn set_receive_buffer_size(&self, bytes: libc::c_int) -> io::Result<()> {
        set_int_option(&self.fd, libc::SOL_SOCKET, libc::SO_RCVBUF, bytes)
    }

    /// Sets SO_RCVBUFFORCE: as SO_RCVBUF, without net.core.rmem_max's cap; needs CAP_NET_ADMIN.
    pub(crate) fn force_receive_buffer_size(&self, bytes: libc::c_int) -> io::Result<()> {
        set_int_option(&self.fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, bytes)
    }

    /// SO_RCVBUF as the kernel applies it (twice the value set, within its limits).
    pub(crate) fn receive_buffer_size(&self) -> io::Result<libc::c_int> {
        let mut value: libc::c_int = 0;
        let mut length = mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `value` and `length` are valid for writes and `length` holds value's size.
        check(unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                (&raw mut value).cast(),
                &mut length,
            )
        })?;
        Ok(value)
    }
}

/// What [`NetlinkSocket::receive`] read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Datagram {
    pub length: usize,
    /// The sender's port id: 0 for the kernel.
    pub sender: u32,
    /// The multicast group it was sent to; 0 for a unicast to this socket.
    pub group: u32,
}

fn set_int_option(
    fd: &OwnedFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: `value` is a valid c_int for reads and the length passed is its size.
    check(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&raw const value).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    })
    .map(drop)
}

impl AsRawFd for NetlinkSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::family::{CTRL_CMD_GETFAMILY, CTRL_VERSION, GENL_ID_CTRL, family_by_name_request};
    use crate::message::{NLM_F_ACK, NLM_F_REQUEST, build_genl_request};

    /// Waits until the non-blocking socket has a datagram, with poll(2) (tests only).
    fn wait_readable(socket: &NetlinkSocket) {
        let mut poll_fd = libc::pollfd {
            fd: socket.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd; no timeout, since the kernel answers synchronously.
        let ready = unsafe { libc::poll(&mut poll_fd, 1, -1) };
        assert_eq!(ready, 1);
    }

    #[test]
    fn two_sockets_get_distinct_nonzero_port_ids() {
        let first = NetlinkSocket::open_generic().expect("open a generic netlink socket");
        let second = NetlinkSocket::open_generic().expect("open a second one");
        assert_ne!(first.port_id(), 0);
        assert_ne!(first.port_id(), second.port_id());
    }

    #[test]
    fn nothing_to_receive_is_would_block_not_a_hang() {
        let socket = NetlinkSocket::open_generic().unwrap();
        let error = socket.next_datagram_size().unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn peeks_the_size_then_receives_the_kernel_reply() {
        let socket = NetlinkSocket::open_generic().unwrap();
        let request = build_genl_request(
            GENL_ID_CTRL,
            NLM_F_REQUEST | NLM_F_ACK,
            1,
            CTRL_CMD_GETFAMILY,
            CTRL_VERSION,
            &family_by_name_request("nlctrl").unwrap(),
        )
        .unwrap();
        socket.send_to_kernel(&request).unwrap();
        wait_readable(&socket);
        let size = socket.next_datagram_size().unwrap();
        assert!(size > 20, "a family reply is more than headers: {size}");
        // Peeking again sees the same datagram: it was not consumed.
        assert_eq!(socket.next_datagram_size().unwrap(), size);

        let mut small = vec![0u8; 16];
        let error = socket.receive(&mut small).unwrap_err();
        assert!(error.to_string().contains("did not fit"), "{error}");

        // The truncated datagram is gone; the ack that follows fits a small buffer.
        wait_readable(&socket);
        let mut buffer = vec![0u8; socket.next_datagram_size().unwrap()];
        let datagram = socket.receive(&mut buffer).unwrap();
        assert_eq!(datagram.length, buffer.len());
        assert_eq!(datagram.sender, 0, "replies come from the kernel");
        assert_eq!(
            datagram.group, 0,
            "a reply is a unicast, not a group message"
        );
    }
}
