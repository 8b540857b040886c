//! fanotify mount events (Linux 6.15+): a group with FAN_REPORT_MNT marks a mount namespace
//! (FAN_MARK_MNTNS) for FAN_MNT_ATTACH | FAN_MNT_DETACH; each event carries the mount's
//! unique id in an info record of type FAN_EVENT_INFO_TYPE_MNT. The descriptor is
//! non-blocking and driven by the tokio reactor (`AsyncFd`), so waiting costs no thread.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::io::unix::AsyncFd;
use tokio::sync::watch;

use crate::error::SyscallError;
use crate::statmount::{KernelMount, STATMOUNT_WANTED, Statmounter};
use crate::sys::{
    self, FAN_CLASS_NOTIF, FAN_CLOEXEC, FAN_MARK_ADD, FAN_MARK_MNTNS, FAN_MNT_ATTACH,
    FAN_MNT_DETACH, FAN_NONBLOCK, FAN_Q_OVERFLOW, FAN_REPORT_MNT,
};

/// `struct fanotify_event_metadata` is 24 bytes; `FANOTIFY_METADATA_VERSION` 3.
const METADATA_LEN: usize = 24;
const METADATA_VERSION: u8 = 3;
/// `FAN_EVENT_INFO_TYPE_MNT`, and the size of `struct fanotify_event_info_mnt`.
const INFO_TYPE_MNT: u8 = 7;
const INFO_MNT_LEN: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountEventKind {
    Attach,
    Detach,
    /// A move: one event with both FAN_MNT_ATTACH and FAN_MNT_DETACH.
    Move,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MountEvent {
    pub kind: MountEventKind,
    pub unique_id: u64,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MountEventBatch {
    pub events: Vec<MountEvent>,
    /// The kernel's queue overflowed (FAN_Q_OVERFLOW): events were lost here.
    pub overflow: bool,
    /// With the statmount option: per event, the attached or moved mount as statmount saw it
    /// when the batch was read (`None` for a detach, or a mount gone by then or refused).
    pub mounts: Option<Vec<Option<KernelMount>>>,
}

fn u16_at(buffer: &[u8], offset: usize) -> u16 {
    u16::from_ne_bytes(buffer[offset..offset + 2].try_into().expect("2 bytes"))
}
fn u32_at(buffer: &[u8], offset: usize) -> u32 {
    u32::from_ne_bytes(buffer[offset..offset + 4].try_into().expect("4 bytes"))
}
fn u64_at(buffer: &[u8], offset: usize) -> u64 {
    u64::from_ne_bytes(buffer[offset..offset + 8].try_into().expect("8 bytes"))
}

/// Decodes the events of one read() into `batch`.
pub fn parse_events(buffer: &[u8], batch: &mut MountEventBatch) -> Result<(), String> {
    let mut offset = 0;
    while offset < buffer.len() {
        let rest = &buffer[offset..];
        if rest.len() < METADATA_LEN {
            return Err(format!(
                "a truncated fanotify event of {} bytes",
                rest.len()
            ));
        }
        let event_len = u32_at(rest, 0) as usize;
        let version = rest[4];
        let metadata_len = u16_at(rest, 6) as usize;
        let mask = u64_at(rest, 8);
        if version != METADATA_VERSION {
            return Err(format!(
                "fanotify metadata version {version}, expected {METADATA_VERSION}"
            ));
        }
        if event_len < METADATA_LEN
            || metadata_len < METADATA_LEN
            || metadata_len > event_len
            || event_len > rest.len()
        {
            return Err(format!(
                "a fanotify event of {event_len} bytes (metadata {metadata_len}) in {} bytes",
                rest.len()
            ));
        }
        if mask & FAN_Q_OVERFLOW != 0 {
            batch.overflow = true;
        }
        let kind = match (mask & FAN_MNT_ATTACH != 0, mask & FAN_MNT_DETACH != 0) {
            (true, true) => Some(MountEventKind::Move),
            (true, false) => Some(MountEventKind::Attach),
            (false, true) => Some(MountEventKind::Detach),
            (false, false) => None,
        };
        if let Some(kind) = kind {
            let mut info = metadata_len;
            let mut unique_id = None;
            while info + 4 <= event_len {
                let info_type = rest[info];
                let info_len = u16_at(rest, info + 2) as usize;
                if info_len < 4 || info + info_len > event_len {
                    return Err(format!(
                        "a fanotify info record of {info_len} bytes at {info}"
                    ));
                }
                if info_type == INFO_TYPE_MNT && info_len >= INFO_MNT_LEN {
                    unique_id = Some(u64_at(rest, info + 8));
                }
                info += info_len;
            }
            let unique_id = unique_id.ok_or_else(|| {
                format!("a mount event (mask {mask:#x}) without a mount id record")
            })?;
            batch.events.push(MountEvent { kind, unique_id });
        }
        offset += event_len;
    }
    Ok(())
}

/// Why a failed call means no mount events, in words ("EPERM: ...").
fn reason(syscall: &str, error: &io::Error) -> String {
    let errno = error.raw_os_error().unwrap_or(libc::EIO);
    let code = genl::errno::errno_name(errno);
    match (syscall, errno) {
        (_, libc::EPERM) => {
            format!("{code}: marking a mount namespace needs CAP_SYS_ADMIN in its user namespace")
        }
        ("fanotify_init", libc::EINVAL) => {
            format!("{code}: the kernel has no fanotify mount events (Linux 6.15+)")
        }
        ("fanotify_init", libc::ENOSYS) => format!("{code}: the kernel has no fanotify"),
        _ => format!(
            "{code}: {syscall} failed: {}",
            genl::errno::errno_description(errno)
        ),
    }
}

struct Marked {
    group: OwnedFd,
    namespace: OwnedFd,
}

fn mark(ns_path: &Path) -> Result<Marked, (&'static str, io::Error)> {
    let group = sys::fanotify_init(
        FAN_CLASS_NOTIF | FAN_REPORT_MNT | FAN_CLOEXEC | FAN_NONBLOCK,
        libc::O_RDONLY as u32,
    )
    .map_err(|error| ("fanotify_init", error))?;
    let namespace = sys::open(ns_path, libc::O_RDONLY).map_err(|error| ("open", error))?;
    sys::fanotify_mark(
        group.as_fd(),
        FAN_MARK_ADD | FAN_MARK_MNTNS,
        FAN_MNT_ATTACH | FAN_MNT_DETACH,
        namespace.as_fd(),
    )
    .map_err(|error| ("fanotify_mark", error))?;
    Ok(Marked { group, namespace })
}

/// Whether a group could mark `ns_path` for mount events; the reason if not.
pub fn check_mount_events(ns_path: &Path) -> Result<(), String> {
    mark(ns_path)
        .map(drop)
        .map_err(|(syscall, error)| reason(syscall, &error))
}

/// Options of [`FanotifyMountWatch::open`].
#[derive(Debug, Clone)]
pub struct FanotifyOptions {
    /// The mount namespace to mark (default `/proc/self/ns/mnt`).
    pub ns_path: PathBuf,
    /// statmount each attached or moved mount before delivering the batch.
    pub statmount: bool,
}

impl Default for FanotifyOptions {
    fn default() -> Self {
        Self {
            ns_path: PathBuf::from("/proc/self/ns/mnt"),
            statmount: false,
        }
    }
}

/// The most events one batch takes before it is delivered (a read of 64 KiB holds ~1600).
const BATCH_EVENTS: usize = 16_384;
const READ_BUFFER: usize = 64 * 1024;

/// A fanotify group marking one mount namespace for mount events.
pub struct FanotifyMountWatch {
    fd: Mutex<Option<Arc<AsyncFd<OwnedFd>>>>,
    closed: watch::Sender<bool>,
    statmount: bool,
    /// The marked namespace's id, for statmount of its mounts (0: the caller's own).
    mnt_ns_id: u64,
    /// Serializes readers, so a batch holds consecutive events.
    reader: tokio::sync::Mutex<Vec<u8>>,
}

impl FanotifyMountWatch {
    /// Must run inside a tokio runtime (the descriptor registers with its reactor).
    pub fn open(options: FanotifyOptions) -> Result<Self, SyscallError> {
        let operation = format!("watch the mounts of {}", options.ns_path.display());
        let marked = mark(&options.ns_path).map_err(|(syscall, error)| {
            SyscallError::from_io(operation.clone(), syscall, &error)
                .with_detail(reason(syscall, &error))
        })?;
        let mnt_ns_id = if options.statmount {
            sys::mount_namespace_id(marked.namespace.as_fd()).unwrap_or(0)
        } else {
            0
        };
        drop(marked.namespace);
        let fd = sys::register(marked.group)
            .map_err(|error| SyscallError::from_io(operation, "epoll_ctl", &error))?;
        Ok(Self {
            fd: Mutex::new(Some(Arc::new(fd))),
            closed: watch::channel(false).0,
            statmount: options.statmount,
            mnt_ns_id,
            reader: tokio::sync::Mutex::new(vec![0; READ_BUFFER]),
        })
    }

    pub fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    /// Closes the group: the marks go with it; a pending `next` resolves `None`.
    pub fn close(&self) {
        self.closed.send_replace(true);
        self.fd.lock().expect("fd lock").take();
    }

    /// The events available now (at least one event or an overflow), waiting for them; `None`
    /// once closed.
    pub async fn next(&self) -> Result<Option<MountEventBatch>, SyscallError> {
        let mut buffer = self.reader.lock().await;
        let mut closed = self.closed.subscribe();
        let Some(fd) = self.fd.lock().expect("fd lock").clone() else {
            return Ok(None);
        };
        let mut batch = MountEventBatch::default();
        loop {
            if *closed.borrow_and_update() {
                return Ok(None);
            }
            let mut guard = tokio::select! {
                ready = fd.readable() => ready.map_err(|error| SyscallError::from_io("read mount events", "epoll_wait", &error))?,
                _ = closed.changed() => return Ok(None),
            };
            match guard.try_io(|inner| sys::read(inner.get_ref().as_fd(), &mut buffer)) {
                Ok(Ok(length)) => {
                    parse_events(&buffer[..length], &mut batch).map_err(|detail| {
                        SyscallError::new("read mount events", "read", libc::EPROTO)
                            .with_detail(detail)
                    })?;
                    if batch.events.len() >= BATCH_EVENTS {
                        break;
                    }
                }
                Ok(Err(error)) => {
                    return Err(SyscallError::from_io("read mount events", "read", &error));
                }
                // Would block: nothing more now.
                Err(_would_block) => {
                    if !batch.events.is_empty() || batch.overflow {
                        break;
                    }
                }
            }
        }
        drop(buffer);
        if self.statmount {
            // On the blocking pool: a batch of thousands of statmounts (each takes the
            // namespace lock for read) must not hold up the runtime's other tasks.
            let mnt_ns_id = self.mnt_ns_id;
            batch = tokio::task::spawn_blocking(move || describe(batch, mnt_ns_id))
                .await
                .map_err(|error| {
                    SyscallError::new("statmount of attached mounts", "thread", libc::EIO)
                        .with_detail(error.to_string())
                })?;
        }
        Ok(Some(batch))
    }
}

/// statmount of each attached or moved mount of a batch. A mount statmount cannot describe
/// (gone already, or refused) is `None`: the events themselves are never dropped for it.
fn describe(mut batch: MountEventBatch, mnt_ns_id: u64) -> MountEventBatch {
    let mut statmounter = Statmounter::new();
    let mounts = batch
        .events
        .iter()
        .map(|event| match event.kind {
            MountEventKind::Detach => None,
            _ => statmounter
                .stat(event.unique_id, STATMOUNT_WANTED, mnt_ns_id)
                .ok()
                .flatten(),
        })
        .collect();
    batch.mounts = Some(mounts);
    batch
}

impl Drop for FanotifyMountWatch {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(mask: u64, mnt_id: Option<u64>) -> Vec<u8> {
        let mut bytes = vec![0u8; METADATA_LEN];
        bytes[4] = METADATA_VERSION;
        bytes[6..8].copy_from_slice(&(METADATA_LEN as u16).to_ne_bytes());
        bytes[8..16].copy_from_slice(&mask.to_ne_bytes());
        bytes[16..20].copy_from_slice(&(-1i32).to_ne_bytes());
        if let Some(id) = mnt_id {
            let mut info = vec![INFO_TYPE_MNT, 0];
            info.extend_from_slice(&(INFO_MNT_LEN as u16).to_ne_bytes());
            info.extend_from_slice(&[0; 4]);
            info.extend_from_slice(&id.to_ne_bytes());
            bytes.extend_from_slice(&info);
        }
        let length = bytes.len() as u32;
        bytes[0..4].copy_from_slice(&length.to_ne_bytes());
        bytes
    }

    #[test]
    fn attach_detach_move_and_overflow() {
        let mut buffer = event(FAN_MNT_ATTACH, Some(0x1_0000_0040));
        buffer.extend(event(FAN_MNT_DETACH, Some(0x1_0000_0041)));
        buffer.extend(event(FAN_MNT_ATTACH | FAN_MNT_DETACH, Some(0x1_0000_0042)));
        buffer.extend(event(FAN_Q_OVERFLOW, None));
        let mut batch = MountEventBatch::default();
        parse_events(&buffer, &mut batch).unwrap();
        assert_eq!(
            batch.events,
            vec![
                MountEvent {
                    kind: MountEventKind::Attach,
                    unique_id: 0x1_0000_0040
                },
                MountEvent {
                    kind: MountEventKind::Detach,
                    unique_id: 0x1_0000_0041
                },
                MountEvent {
                    kind: MountEventKind::Move,
                    unique_id: 0x1_0000_0042
                },
            ]
        );
        assert!(batch.overflow);
    }

    #[test]
    fn malformed_events_are_errors() {
        let mut batch = MountEventBatch::default();
        assert!(
            parse_events(&[0u8; 10], &mut batch)
                .unwrap_err()
                .contains("truncated")
        );
        let mut wrong_version = event(FAN_MNT_ATTACH, Some(1));
        wrong_version[4] = 2;
        assert!(
            parse_events(&wrong_version, &mut batch)
                .unwrap_err()
                .contains("version")
        );
        let mut too_long = event(FAN_MNT_ATTACH, Some(1));
        too_long[0..4].copy_from_slice(&1000u32.to_ne_bytes());
        assert!(parse_events(&too_long, &mut batch).is_err());
        assert!(
            parse_events(&event(FAN_MNT_ATTACH, None), &mut batch)
                .unwrap_err()
                .contains("mount id")
        );
    }

    #[test]
    fn reasons_say_what_is_missing() {
        let eperm = io::Error::from_raw_os_error(libc::EPERM);
        assert_eq!(
            reason("fanotify_mark", &eperm),
            "EPERM: marking a mount namespace needs CAP_SYS_ADMIN in its user namespace"
        );
        let einval = io::Error::from_raw_os_error(libc::EINVAL);
        assert_eq!(
            reason("fanotify_init", &einval),
            "EINVAL: the kernel has no fanotify mount events (Linux 6.15+)"
        );
    }
}
