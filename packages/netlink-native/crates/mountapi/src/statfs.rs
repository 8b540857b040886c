//! statfs(2) of a path on a thread of its own, with a timeout. A statfs of a hung file system
//! (a dead NFS server) blocks in the kernel and cannot be cancelled: its thread stays blocked
//! until the kernel returns. So at most [`MAX_STATFS_THREADS`] threads run statfs at once; a
//! call waits for a free one (its timeout counts from the call), and a hung thread keeps its
//! place until it returns.

use std::path::PathBuf;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use tokio::sync::{Semaphore, oneshot};

use crate::error::SyscallError;
use crate::sys;

/// How many statfs threads may exist at once, blocked ones included.
pub const MAX_STATFS_THREADS: usize = 16;

static THREADS: LazyLock<Arc<Semaphore>> =
    LazyLock::new(|| Arc::new(Semaphore::new(MAX_STATFS_THREADS)));

/// `struct statfs`, widened to u64.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Statfs {
    pub fs_type: u64,
    pub block_size: u64,
    pub fragment_size: u64,
    pub blocks: u64,
    pub blocks_free: u64,
    pub blocks_available: u64,
    pub files: u64,
    pub files_free: u64,
    pub fsid: u64,
    pub name_max: u64,
    pub flags: u64,
}

fn convert(raw: &sys::KernelStatfs) -> Statfs {
    // The kernel fills the signed fields with non-negative values (f_type is a magic number:
    // kept as its bits).
    Statfs {
        fs_type: raw.f_type as u64,
        block_size: raw.f_bsize as u64,
        fragment_size: raw.f_frsize as u64,
        blocks: raw.f_blocks,
        blocks_free: raw.f_bfree,
        blocks_available: raw.f_bavail,
        files: raw.f_files,
        files_free: raw.f_ffree,
        // As glibc's statvfs gives f_fsid: __val[0] | __val[1] << 32.
        fsid: u64::from(raw.f_fsid[0] as u32) | (u64::from(raw.f_fsid[1] as u32) << 32),
        name_max: raw.f_namelen as u64,
        flags: raw.f_flags as u64,
    }
}

/// statfs of `path` (blocking; the caller's thread).
pub fn statfs_now(path: &std::path::Path) -> Result<Statfs, SyscallError> {
    sys::statfs(path).map(|raw| convert(&raw)).map_err(|error| {
        SyscallError::from_io(format!("statfs {}", path.display()), "statfs", &error)
    })
}

/// statfs of `path` on a thread; rejects with ETIMEDOUT after `timeout` (waiting for a free
/// thread included). Must run in a tokio runtime with time enabled.
pub async fn statfs_path(path: PathBuf, timeout: Option<Duration>) -> Result<Statfs, SyscallError> {
    let operation = format!("statfs {}", path.display());
    let work = async {
        let permit = Arc::clone(&THREADS)
            .acquire_owned()
            .await
            .map_err(|_| SyscallError::new(operation.clone(), "statfs", libc::ECANCELED))?;
        let (sender, receiver) = oneshot::channel();
        std::thread::Builder::new()
            .name("usip-statfs".into())
            .spawn(move || {
                let result = statfs_now(&path);
                drop(permit); // the thread's place is free once the kernel returned
                let _ = sender.send(result);
            })
            .map_err(|error| SyscallError::from_io(operation.clone(), "clone", &error))?;
        receiver
            .await
            .map_err(|_| SyscallError::new(operation.clone(), "statfs", libc::ECANCELED))?
    };
    match timeout {
        None => work.await,
        Some(limit) => match tokio::time::timeout(limit, work).await {
            Ok(result) => result,
            Err(_) => Err(SyscallError::new(operation.clone(), "statfs", libc::ETIMEDOUT).with_detail(format!(
                "no answer within {} ms; the thread stays blocked until the kernel returns (at most {MAX_STATFS_THREADS} such threads)",
                limit.as_millis()
            ))),
        },
    }
}
