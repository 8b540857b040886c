//! The error of this crate: a failed system call (or a refusal with an errno), naming the call
//! and what was being done.

use std::fmt;
use std::io;

use genl::errno::{errno_description, errno_name};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyscallError {
    errno: i32,
    syscall: &'static str,
    operation: String,
    detail: Option<String>,
}

impl SyscallError {
    pub fn new(operation: impl Into<String>, syscall: &'static str, errno: i32) -> Self {
        Self {
            errno,
            syscall,
            operation: operation.into(),
            detail: None,
        }
    }

    pub fn from_io(operation: impl Into<String>, syscall: &'static str, error: &io::Error) -> Self {
        let mut made = Self::new(
            operation,
            syscall,
            error.raw_os_error().unwrap_or(libc::EIO),
        );
        if error.raw_os_error().is_none() {
            made.detail = Some(error.to_string());
        }
        made
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Positive errno, as in C.
    pub fn errno(&self) -> i32 {
        self.errno
    }

    /// "EPERM", "ENOSYS", ...
    pub fn code(&self) -> String {
        errno_name(self.errno)
    }

    pub fn syscall(&self) -> &'static str {
        self.syscall
    }

    pub fn operation(&self) -> &str {
        &self.operation
    }

    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }
}

impl fmt::Display for SyscallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}: {} ({})",
            self.operation,
            self.syscall,
            errno_description(self.errno),
            self.code()
        )?;
        if let Some(detail) = &self.detail {
            write!(f, ": {detail}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SyscallError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_names_operation_call_and_code() {
        let error = SyscallError::new("mark /proc/self/ns/mnt", "fanotify_mark", libc::EPERM)
            .with_detail("needs CAP_SYS_ADMIN");
        assert_eq!(error.code(), "EPERM");
        assert_eq!(
            error.to_string(),
            "mark /proc/self/ns/mnt: fanotify_mark: Operation not permitted (EPERM): needs CAP_SYS_ADMIN"
        );
    }
}
