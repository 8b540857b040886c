//! Which of the kernel's mount APIs this kernel and this caller have, probed once per process
//! by calling them: listmount/statmount (6.8+), the statmount request bits answered, and
//! fanotify mount events (6.15+, CAP_SYS_ADMIN over the marked namespace).

use std::path::Path;
use std::sync::OnceLock;

use crate::fanotify;
use crate::statmount::{self, LSMT_ROOT, STATMOUNT_ALL_KNOWN, Statmounter};
use crate::sys::{self, MntIdReq};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountApiSupport {
    pub listmount: bool,
    pub statmount: bool,
    /// The STATMOUNT_* request bits this kernel answers: its STATMOUNT_SUPPORTED_MASK answer
    /// where it has one (6.15+), else the bits it answered for the root mount when asked for
    /// all of them.
    pub statmount_mask: u64,
    pub fanotify_mount: bool,
    /// Why fanotify mount events are not available, e.g. "EPERM: ...".
    pub fanotify_reason: Option<String>,
}

static SUPPORT: OnceLock<MountApiSupport> = OnceLock::new();

/// The probe's answer, computed on first use.
pub fn support() -> &'static MountApiSupport {
    SUPPORT.get_or_init(probe)
}

/// The statmount bits this kernel answers (0 without statmount).
pub fn statmount_mask() -> u64 {
    support().statmount_mask
}

fn probe() -> MountApiSupport {
    let mut ids = [0u64; 1];
    // Any refusal (ENOSYS, or a seccomp filter's EPERM) means it cannot serve.
    let listmount = sys::listmount(&MntIdReq::new(LSMT_ROOT, 0, 0), &mut ids).is_ok();
    let (statmount, statmount_mask) = probe_statmount();
    let (fanotify_mount, fanotify_reason) =
        match fanotify::check_mount_events(Path::new("/proc/self/ns/mnt")) {
            Ok(()) => (true, None),
            Err(reason) => (false, Some(reason)),
        };
    MountApiSupport {
        listmount,
        statmount,
        statmount_mask,
        fanotify_mount,
        fanotify_reason,
    }
}

fn probe_statmount() -> (bool, u64) {
    let mut statmounter = Statmounter::new();
    // The root's unique id (statx, 6.8+ like statmount); failing that, any id listmount gives.
    let root = sys::unique_mount_id(Path::new("/"))
        .ok()
        .flatten()
        .or_else(|| {
            statmount::list_mount_ids(LSMT_ROOT, 0, 1)
                .ok()
                .and_then(|ids| ids.first().copied())
        });
    match root {
        Some(id) => match statmounter.raw(id, STATMOUNT_ALL_KNOWN, 0) {
            Ok(bytes) => {
                let (mask, supported) = statmount::answered_masks(bytes);
                (true, supported.unwrap_or(mask) & STATMOUNT_ALL_KNOWN)
            }
            Err(_) => (false, 0),
        },
        // No unique id: a kernel before 6.8 (statx does not know it, no listmount); tell
        // ENOSYS from the rest by asking statmount about an impossible id.
        None => match statmounter.raw(0, 0, 0) {
            Err(error) if error.raw_os_error() == Some(libc::ENOSYS) => (false, 0),
            _ => (true, 0),
        },
    }
}
