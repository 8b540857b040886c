//! The kernel's own mount APIs, for serving a mount table and its changes without the usip
//! module: listmount/statmount (6.8+), fanotify mount events (6.15+), the mountinfo change
//! signal (every kernel), and statfs with a timeout.
//!
//! `sys` is the system-call layer, the only module with `unsafe` (each block has a SAFETY
//! comment); the parsers (`statmount`, `mountinfo`, `fanotify::parse_events`) are plain code
//! tested on crafted input.

pub mod error;
pub mod fanotify;
pub mod mountinfo;
pub mod statfs;
pub mod statmount;
pub mod support;
mod sys;
pub mod watch;

pub use error::SyscallError;
pub use fanotify::{
    FanotifyMountWatch, FanotifyOptions, MountEvent, MountEventBatch, MountEventKind,
};
pub use mountinfo::{Diff, Table};
pub use statfs::{MAX_STATFS_THREADS, Statfs, statfs_path};
pub use statmount::{KernelMount, STATMOUNT_WANTED, list_kernel_mounts};
pub use support::{MountApiSupport, support};
pub use watch::{MountinfoBatch, MountinfoWatch, Reread};

/// statmount of one mount of the caller's namespace by unique id; `None` if there is none.
pub fn stat_kernel_mount(unique_id: u64) -> Result<Option<KernelMount>, SyscallError> {
    statmount::Statmounter::new().stat(unique_id, STATMOUNT_WANTED, 0)
}

fn joined<T>(
    operation: &str,
    result: Result<Result<T, SyscallError>, tokio::task::JoinError>,
) -> Result<T, SyscallError> {
    result.unwrap_or_else(|error| {
        Err(SyscallError::new(operation, "thread", libc::EIO).with_detail(error.to_string()))
    })
}

/// [`list_kernel_mounts`] on the runtime's blocking pool.
pub async fn list_kernel_mounts_blocking() -> Result<Vec<KernelMount>, SyscallError> {
    let result = tokio::task::spawn_blocking(|| list_kernel_mounts(STATMOUNT_WANTED)).await;
    joined("list the mounts of the caller's namespace", result)
}

/// [`stat_kernel_mount`] on the runtime's blocking pool.
pub async fn stat_kernel_mount_blocking(
    unique_id: u64,
) -> Result<Option<KernelMount>, SyscallError> {
    let result = tokio::task::spawn_blocking(move || stat_kernel_mount(unique_id)).await;
    joined("statmount", result)
}
