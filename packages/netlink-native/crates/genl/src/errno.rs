//! Errno names ("EPERM") and descriptions ("Operation not permitted") for error messages.
//!
//! The names come from the `libc` constants of the target, so they follow the architecture's
//! numbering; Rust's standard library has descriptions but no names.

use std::io;

/// "Protocol error": for a reply that does not have the shape its request promises.
pub const EPROTO: i32 = libc::EPROTO;

macro_rules! errno_names {
    ($($name:ident),* $(,)?) => {
        /// The symbolic name of a positive errno value, if it is one this platform defines.
        fn known_errno_name(errno: i32) -> Option<&'static str> {
            match errno {
                $(libc::$name => Some(stringify!($name)),)*
                _ => None,
            }
        }
    };
}

// EWOULDBLOCK and EDEADLOCK are aliases of EAGAIN and EDEADLK on Linux, so they are left out.
errno_names!(
    EPERM,
    ENOENT,
    ESRCH,
    EINTR,
    EIO,
    ENXIO,
    E2BIG,
    ENOEXEC,
    EBADF,
    ECHILD,
    EAGAIN,
    ENOMEM,
    EACCES,
    EFAULT,
    ENOTBLK,
    EBUSY,
    EEXIST,
    EXDEV,
    ENODEV,
    ENOTDIR,
    EISDIR,
    EINVAL,
    ENFILE,
    EMFILE,
    ENOTTY,
    ETXTBSY,
    EFBIG,
    ENOSPC,
    ESPIPE,
    EROFS,
    EMLINK,
    EPIPE,
    EDOM,
    ERANGE,
    EDEADLK,
    ENAMETOOLONG,
    ENOLCK,
    ENOSYS,
    ENOTEMPTY,
    ELOOP,
    ENOMSG,
    EIDRM,
    ECHRNG,
    EL2NSYNC,
    EL3HLT,
    EL3RST,
    ELNRNG,
    EUNATCH,
    ENOCSI,
    EL2HLT,
    EBADE,
    EBADR,
    EXFULL,
    ENOANO,
    EBADRQC,
    EBADSLT,
    EBFONT,
    ENOSTR,
    ENODATA,
    ETIME,
    ENOSR,
    ENONET,
    ENOPKG,
    EREMOTE,
    ENOLINK,
    EADV,
    ESRMNT,
    ECOMM,
    EPROTO,
    EMULTIHOP,
    EDOTDOT,
    EBADMSG,
    EOVERFLOW,
    ENOTUNIQ,
    EBADFD,
    EREMCHG,
    ELIBACC,
    ELIBBAD,
    ELIBSCN,
    ELIBMAX,
    ELIBEXEC,
    EILSEQ,
    ERESTART,
    ESTRPIPE,
    EUSERS,
    ENOTSOCK,
    EDESTADDRREQ,
    EMSGSIZE,
    EPROTOTYPE,
    ENOPROTOOPT,
    EPROTONOSUPPORT,
    ESOCKTNOSUPPORT,
    EOPNOTSUPP,
    EPFNOSUPPORT,
    EAFNOSUPPORT,
    EADDRINUSE,
    EADDRNOTAVAIL,
    ENETDOWN,
    ENETUNREACH,
    ENETRESET,
    ECONNABORTED,
    ECONNRESET,
    ENOBUFS,
    EISCONN,
    ENOTCONN,
    ESHUTDOWN,
    ETOOMANYREFS,
    ETIMEDOUT,
    ECONNREFUSED,
    EHOSTDOWN,
    EHOSTUNREACH,
    EALREADY,
    EINPROGRESS,
    ESTALE,
    EUCLEAN,
    ENOTNAM,
    ENAVAIL,
    EISNAM,
    EREMOTEIO,
    EDQUOT,
    ENOMEDIUM,
    EMEDIUMTYPE,
    ECANCELED,
    ENOKEY,
    EKEYEXPIRED,
    EKEYREVOKED,
    EKEYREJECTED,
    EOWNERDEAD,
    ENOTRECOVERABLE,
    ERFKILL,
    EHWPOISON,
);

/// A kernel-internal errno that some subsystems let escape to user space (include/linux/errno.h).
const ENOTSUPP: i32 = 524;

/// The symbolic name of a positive errno value: "EPERM", or "ERRNO_<n>" for a number the platform
/// does not name, so a code is always present.
pub fn errno_name(errno: i32) -> String {
    match known_errno_name(errno) {
        Some(name) => name.to_owned(),
        None if errno == ENOTSUPP => "ENOTSUPP".to_owned(),
        None => format!("ERRNO_{errno}"),
    }
}

/// The C library's description of a positive errno value, e.g. "Operation not permitted".
pub fn errno_description(errno: i32) -> String {
    if errno == ENOTSUPP {
        return "Operation not supported by the kernel".to_owned();
    }
    let text = io::Error::from_raw_os_error(errno).to_string();
    // std formats OS errors as "<description> (os error <n>)"; keep only the description.
    match text.strip_suffix(&format!(" (os error {errno})")) {
        Some(description) => description.to_owned(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_platform_numbers() {
        assert_eq!(errno_name(1), "EPERM");
        assert_eq!(errno_name(2), "ENOENT");
        assert_eq!(errno_name(libc::EINVAL), "EINVAL");
        assert_eq!(errno_name(libc::EAGAIN), "EAGAIN");
        assert_eq!(errno_name(libc::ENOBUFS), "ENOBUFS");
        assert_eq!(errno_name(524), "ENOTSUPP");
        assert_eq!(errno_name(4000), "ERRNO_4000");
    }

    #[test]
    fn descriptions_drop_the_os_error_suffix() {
        assert_eq!(errno_description(libc::EPERM), "Operation not permitted");
        assert_eq!(errno_description(libc::ENOENT), "No such file or directory");
        assert!(!errno_description(libc::EINVAL).contains("os error"));
    }
}
