//! The one error type of this crate: every failure carries a positive errno (as in C), the
//! operation that failed, and the kernel's extended ack when it sent one.

use std::fmt;
use std::io;

use crate::errno::{errno_description, errno_name};
use crate::message::{ExtAck, Status, WireError};

/// What kind of failure a [`NetlinkError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The kernel answered with an error: an `NLMSG_ERROR`, or a dump's `NLMSG_DONE` with one.
    Kernel,
    /// The kernel flagged a dump `NLM_F_DUMP_INTR`: its data changed while it was dumped, so the
    /// result may be inconsistent. Retrying the dump is the remedy.
    DumpInterrupted,
    /// A system call on the socket failed.
    Os { syscall: &'static str },
    /// The kernel's reply did not follow the netlink wire format.
    Protocol,
    /// The caller passed an argument that cannot be sent.
    InvalidInput,
    /// The socket was already closed when the call was made.
    Closed,
    /// The socket was closed while the call was waiting for its turn or for its reply.
    Cancelled,
    /// Something named by the caller does not exist (`ENOENT`), e.g. a multicast group.
    NotFound,
    /// The socket's receive buffer overflowed while the call waited for its reply (`ENOBUFS`):
    /// the kernel dropped messages, possibly the reply. Retrying the call is the remedy.
    Overrun,
}

/// A failed netlink call. Boxed so a `Result` carrying it stays one pointer wide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetlinkError(Box<Details>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Details {
    kind: ErrorKind,
    errno: i32,
    operation: String,
    detail: Option<String>,
    ext_ack: ExtAck,
}

impl NetlinkError {
    fn new(kind: ErrorKind, errno: i32, operation: &str, detail: Option<String>) -> Self {
        Self(Box::new(Details {
            kind,
            errno,
            operation: operation.to_owned(),
            detail,
            ext_ack: ExtAck::default(),
        }))
    }

    /// An error status the kernel replied with (`status.errno` must be non-zero).
    pub fn kernel(operation: &str, status: Status) -> Self {
        let mut error = Self::new(ErrorKind::Kernel, status.errno, operation, None);
        error.0.ext_ack = status.ext_ack;
        error
    }

    pub fn dump_interrupted(operation: &str) -> Self {
        Self::new(ErrorKind::DumpInterrupted, libc::EINTR, operation, None)
    }

    pub fn os(operation: &str, syscall: &'static str, error: &io::Error) -> Self {
        // An io::Error made by std rather than by the OS has no errno; EIO stands in for it.
        let errno = error.raw_os_error().unwrap_or(libc::EIO);
        let detail = error.raw_os_error().is_none().then(|| error.to_string());
        Self::new(ErrorKind::Os { syscall }, errno, operation, detail)
    }

    pub fn protocol(operation: &str, error: WireError) -> Self {
        Self::new(ErrorKind::Protocol, libc::EPROTO, operation, Some(error.0))
    }

    pub fn invalid_input(operation: &str, detail: impl Into<String>) -> Self {
        Self::new(
            ErrorKind::InvalidInput,
            libc::EINVAL,
            operation,
            Some(detail.into()),
        )
    }

    pub fn closed(operation: &str) -> Self {
        Self::new(ErrorKind::Closed, libc::EBADF, operation, None)
    }

    pub fn cancelled(operation: &str) -> Self {
        Self::new(ErrorKind::Cancelled, libc::ECANCELED, operation, None)
    }

    pub fn not_found(operation: &str, detail: impl Into<String>) -> Self {
        Self::new(
            ErrorKind::NotFound,
            libc::ENOENT,
            operation,
            Some(detail.into()),
        )
    }

    pub fn overrun(operation: &str) -> Self {
        Self::new(ErrorKind::Overrun, libc::ENOBUFS, operation, None)
    }

    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// Positive errno, as in C: `EPERM` is 1.
    pub fn errno(&self) -> i32 {
        self.0.errno
    }

    /// The errno's symbolic name, e.g. "EPERM".
    pub fn code(&self) -> String {
        errno_name(self.0.errno)
    }

    /// What was being done, e.g. `resolve generic netlink family "usip"`.
    pub fn operation(&self) -> &str {
        &self.0.operation
    }

    /// The failing system call, for [`ErrorKind::Os`].
    pub fn syscall(&self) -> Option<&'static str> {
        match self.0.kind {
            ErrorKind::Os { syscall } => Some(syscall),
            _ => None,
        }
    }

    /// The kernel's extended ack (message, offending attribute offset, missing attribute).
    pub fn ext_ack(&self) -> &ExtAck {
        &self.0.ext_ack
    }

    /// Replaces the operation name, e.g. to name the family command a caller was running.
    pub fn with_operation(mut self, operation: &str) -> Self {
        operation.clone_into(&mut self.0.operation);
        self
    }
}

impl fmt::Display for NetlinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code = self.code();
        let operation = &self.0.operation;
        match self.0.kind {
            ErrorKind::Kernel => {
                write!(
                    f,
                    "{operation}: {} ({code})",
                    errno_description(self.0.errno)
                )?;
                if let Some(message) = &self.0.ext_ack.message {
                    write!(f, ": {message}")?;
                } else if let Some(missing) = self.0.ext_ack.missing_type {
                    write!(f, ": required attribute {missing} is missing")?;
                }
                Ok(())
            }
            ErrorKind::DumpInterrupted => write!(
                f,
                "{operation}: dump interrupted because the kernel's data changed while it was \
                 being dumped; retry the dump ({code})"
            ),
            ErrorKind::Os { syscall } => {
                // "socket() failed", but "setsockopt(NETLINK_PKTINFO) failed".
                let call = if syscall.ends_with(')') {
                    syscall.to_owned()
                } else {
                    format!("{syscall}()")
                };
                match &self.0.detail {
                    Some(detail) => write!(f, "{operation}: {call} failed: {detail} ({code})"),
                    None => write!(
                        f,
                        "{operation}: {call} failed: {} ({code})",
                        errno_description(self.0.errno)
                    ),
                }
            }
            ErrorKind::Protocol => write!(
                f,
                "{operation}: malformed reply from the kernel: {} ({code})",
                self.0.detail.as_deref().unwrap_or("unknown")
            ),
            ErrorKind::InvalidInput => write!(
                f,
                "{operation}: {} ({code})",
                self.0.detail.as_deref().unwrap_or("invalid argument")
            ),
            ErrorKind::Closed => write!(f, "{operation}: the socket is closed ({code})"),
            ErrorKind::Cancelled => write!(
                f,
                "{operation}: the socket was closed before the reply arrived ({code})"
            ),
            ErrorKind::NotFound => write!(
                f,
                "{operation}: {} ({code})",
                self.0.detail.as_deref().unwrap_or("not found")
            ),
            ErrorKind::Overrun => write!(
                f,
                "{operation}: the socket's receive buffer overflowed and the kernel dropped \
                 messages, possibly this call's reply; retry the call ({code})"
            ),
        }
    }
}

impl std::error::Error for NetlinkError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_errors_read_like_the_c_tools() {
        let error = NetlinkError::kernel(
            "usip ping",
            Status {
                errno: libc::EPERM,
                ext_ack: ExtAck {
                    message: Some("only the admin may ping".into()),
                    ..ExtAck::default()
                },
            },
        );
        assert_eq!(
            error.to_string(),
            "usip ping: Operation not permitted (EPERM): only the admin may ping"
        );
        assert_eq!(error.errno(), 1);
        assert_eq!(error.code(), "EPERM");
        assert_eq!(error.kind(), ErrorKind::Kernel);
        assert_eq!(error.syscall(), None);
    }

    #[test]
    fn a_missing_attribute_is_named_when_the_kernel_gives_no_message() {
        let error = NetlinkError::kernel(
            "usip get-mount",
            Status {
                errno: libc::EINVAL,
                ext_ack: ExtAck {
                    missing_type: Some(3),
                    ..ExtAck::default()
                },
            },
        );
        assert_eq!(
            error.to_string(),
            "usip get-mount: Invalid argument (EINVAL): required attribute 3 is missing"
        );
    }

    #[test]
    fn os_errors_name_the_syscall() {
        let error = NetlinkError::os(
            "open generic netlink socket",
            "socket",
            &io::Error::from_raw_os_error(libc::EAFNOSUPPORT),
        );
        assert_eq!(error.syscall(), Some("socket"));
        assert_eq!(error.code(), "EAFNOSUPPORT");
        assert!(
            error
                .to_string()
                .starts_with("open generic netlink socket: socket() failed: "),
            "{error}"
        );
    }

    #[test]
    fn each_local_failure_has_its_own_code() {
        assert_eq!(NetlinkError::closed("x").code(), "EBADF");
        assert_eq!(NetlinkError::cancelled("x").code(), "ECANCELED");
        assert_eq!(NetlinkError::dump_interrupted("x").code(), "EINTR");
        assert_eq!(NetlinkError::invalid_input("x", "bad").code(), "EINVAL");
        let protocol = NetlinkError::protocol("x", WireError("short".into()));
        assert_eq!(protocol.code(), "EPROTO");
        assert_eq!(
            protocol.to_string(),
            "x: malformed reply from the kernel: short (EPROTO)"
        );
        assert_eq!(
            NetlinkError::closed("x").with_operation("y").to_string(),
            "y: the socket is closed (EBADF)"
        );
        let missing = NetlinkError::not_found("join", "family \"f\" has no group \"g\"");
        assert_eq!(missing.code(), "ENOENT");
        assert_eq!(missing.kind(), ErrorKind::NotFound);
        assert_eq!(
            missing.to_string(),
            "join: family \"f\" has no group \"g\" (ENOENT)"
        );
        let overrun = NetlinkError::overrun("usip stats");
        assert_eq!(overrun.code(), "ENOBUFS");
        assert!(overrun.to_string().contains("retry the call"), "{overrun}");
    }

    #[test]
    fn a_syscall_named_with_its_option_is_not_given_a_second_pair_of_parentheses() {
        let error = NetlinkError::os(
            "join",
            "setsockopt(NETLINK_ADD_MEMBERSHIP)",
            &io::Error::from_raw_os_error(libc::EPERM),
        );
        assert!(
            error
                .to_string()
                .starts_with("join: setsockopt(NETLINK_ADD_MEMBERSHIP) failed: "),
            "{error}"
        );
    }
}
