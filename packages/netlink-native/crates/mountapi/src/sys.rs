//! The system-call layer: the only module of this crate with `unsafe`. Each function wraps one
//! system call in a safe signature returning `io::Result`; the uapi structures and constants
//! are defined here from the kernel's `include/uapi/linux/{mount,fanotify,nsfs}.h` (the `libc`
//! crate does not have them all).

use std::ffi::CString;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use tokio::io::unix::AsyncFd;

// System call numbers: the same on every architecture that uses the generic table (x86_64's
// own table numbers them 457 and 458 too, arch/x86/entry/syscalls/syscall_64.tbl).
pub const SYS_STATMOUNT: libc::c_long = 457;
pub const SYS_LISTMOUNT: libc::c_long = 458;

/// `struct mnt_id_req` (MNT_ID_REQ_SIZE_VER1 = 32 bytes; a kernel that knows only VER0 accepts
/// the larger size when `mnt_ns_id` is 0).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct MntIdReq {
    pub size: u32,
    /// `mnt_ns_fd` / `mnt_fd` (6.18+, with flags); 0 here.
    pub spare: u32,
    pub mnt_id: u64,
    pub param: u64,
    pub mnt_ns_id: u64,
}

pub const MNT_ID_REQ_SIZE_VER1: u32 = 32;
const _: () = assert!(std::mem::size_of::<MntIdReq>() == MNT_ID_REQ_SIZE_VER1 as usize);

impl MntIdReq {
    pub fn new(mnt_id: u64, param: u64, mnt_ns_id: u64) -> Self {
        Self {
            size: MNT_ID_REQ_SIZE_VER1,
            spare: 0,
            mnt_id,
            param,
            mnt_ns_id,
        }
    }
}

fn check(result: libc::c_long) -> io::Result<usize> {
    if result < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(result as usize)
    }
}

/// listmount(2): fills `ids` with the unique ids of the mounts below `req.mnt_id` whose id is
/// greater than `req.param`; returns how many.
pub fn listmount(req: &MntIdReq, ids: &mut [u64]) -> io::Result<usize> {
    // SAFETY: `req` points at a valid, initialised mnt_id_req whose `size` is its size; `ids` is
    // valid for writes of `ids.len()` u64s; flags 0.
    check(unsafe {
        libc::syscall(
            SYS_LISTMOUNT,
            req as *const MntIdReq,
            ids.as_mut_ptr(),
            ids.len(),
            0u32,
        )
    })
}

/// statmount(2) into `buffer` (the kernel writes at most `buffer.len()` bytes). EOVERFLOW
/// means the strings did not fit: retry with a larger buffer.
pub fn statmount(req: &MntIdReq, buffer: &mut [u8]) -> io::Result<()> {
    // SAFETY: `req` is a valid mnt_id_req; `buffer` is valid for writes of its length (the
    // kernel copies with copy_to_user, which needs no alignment); flags 0.
    check(unsafe {
        libc::syscall(
            SYS_STATMOUNT,
            req as *const MntIdReq,
            buffer.as_mut_ptr(),
            buffer.len(),
            0u32,
        )
    })
    .map(|_| ())
}

// include/uapi/linux/fanotify.h
pub const FAN_CLOEXEC: u32 = 0x0000_0001;
pub const FAN_NONBLOCK: u32 = 0x0000_0002;
pub const FAN_CLASS_NOTIF: u32 = 0;
pub const FAN_REPORT_MNT: u32 = 0x0000_4000;
pub const FAN_MARK_ADD: u32 = 0x0000_0001;
pub const FAN_MARK_MNTNS: u32 = 0x0000_0110;
pub const FAN_MNT_ATTACH: u64 = 0x0100_0000;
pub const FAN_MNT_DETACH: u64 = 0x0200_0000;
pub const FAN_Q_OVERFLOW: u64 = 0x0000_4000;

/// fanotify_init(2); the descriptor is owned by the result.
pub fn fanotify_init(flags: u32, event_flags: u32) -> io::Result<OwnedFd> {
    // SAFETY: fanotify_init takes no pointers.
    let fd = unsafe { libc::fanotify_init(flags, event_flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by the kernel and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// fanotify_mark(2) of an object given by descriptor (`pathname` NULL).
pub fn fanotify_mark(
    group: BorrowedFd<'_>,
    flags: u32,
    mask: u64,
    dirfd: BorrowedFd<'_>,
) -> io::Result<()> {
    // SAFETY: both descriptors are borrowed, so open for the call; a NULL pathname makes the
    // kernel use `dirfd` itself.
    let result = unsafe {
        libc::fanotify_mark(
            group.as_raw_fd(),
            flags,
            mask,
            dirfd.as_raw_fd(),
            std::ptr::null(),
        )
    };
    if result < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// open(2) with `O_CLOEXEC` added.
pub fn open(path: &Path, flags: libc::c_int) -> io::Result<OwnedFd> {
    let path = c_path(path)?;
    // SAFETY: `path` is a NUL-terminated string that outlives the call.
    let fd = unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by the kernel and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// read(2) into `buffer`; 0 is end of file.
pub fn read(fd: BorrowedFd<'_>, buffer: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buffer` is valid for writes of its length; the descriptor is open (borrowed).
    let result = unsafe { libc::read(fd.as_raw_fd(), buffer.as_mut_ptr().cast(), buffer.len()) };
    check(result as libc::c_long)
}

/// lseek(fd, offset, SEEK_SET).
pub fn seek_to(fd: BorrowedFd<'_>, offset: i64) -> io::Result<()> {
    // SAFETY: lseek takes no pointers; the descriptor is open (borrowed).
    let result = unsafe { libc::lseek(fd.as_raw_fd(), offset, libc::SEEK_SET) };
    check(result as libc::c_long).map(|_| ())
}

/// An eventfd(2) (non-blocking, close-on-exec) used to wake a thread blocked in poll().
pub fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: eventfd takes no pointers.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by the kernel and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Adds 1 to an eventfd's counter, which makes it readable.
pub fn eventfd_signal(fd: BorrowedFd<'_>) -> io::Result<()> {
    let one: u64 = 1;
    // SAFETY: `one` is valid for reads of 8 bytes, the size an eventfd write takes.
    let result = unsafe { libc::write(fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
    check(result as libc::c_long).map(|_| ())
}

/// poll(2) on `fds` (descriptor, requested events); returns the returned events of each, in
/// order. EINTR is retried.
pub fn poll(
    fds: &[(RawFd, libc::c_short)],
    timeout_ms: libc::c_int,
) -> io::Result<Vec<libc::c_short>> {
    let mut poll_fds: Vec<libc::pollfd> = fds
        .iter()
        .map(|&(fd, events)| libc::pollfd {
            fd,
            events,
            revents: 0,
        })
        .collect();
    loop {
        // SAFETY: `poll_fds` is a valid array of `len()` pollfds for reads and writes.
        let result = unsafe {
            libc::poll(
                poll_fds.as_mut_ptr(),
                poll_fds.len() as libc::nfds_t,
                timeout_ms,
            )
        };
        if result >= 0 {
            return Ok(poll_fds.iter().map(|p| p.revents).collect());
        }
        let error = io::Error::last_os_error();
        if error.raw_os_error() != Some(libc::EINTR) {
            return Err(error);
        }
    }
}

/// The kernel's `struct statfs` on 64-bit architectures (include/uapi/asm-generic/statfs.h
/// with `__statfs_word` = long): glibc's keeps `f_flags` in its padding.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct KernelStatfs {
    pub f_type: i64,
    pub f_bsize: i64,
    pub f_blocks: u64,
    pub f_bfree: u64,
    pub f_bavail: u64,
    pub f_files: u64,
    pub f_ffree: u64,
    pub f_fsid: [i32; 2],
    pub f_namelen: i64,
    pub f_frsize: i64,
    pub f_flags: i64,
    pub f_spare: [i64; 4],
}

#[cfg(not(target_pointer_width = "64"))]
compile_error!("KernelStatfs is the 64-bit layout of struct statfs");

/// statfs(2) of a path.
pub fn statfs(path: &Path) -> io::Result<KernelStatfs> {
    let path = c_path(path)?;
    let mut buffer = KernelStatfs::default();
    // SAFETY: `path` is NUL-terminated; `buffer` is valid for writes of one kernel struct
    // statfs (120 bytes, the layout above).
    check(unsafe {
        libc::syscall(
            libc::SYS_statfs,
            path.as_ptr(),
            &mut buffer as *mut KernelStatfs,
        )
    })?;
    Ok(buffer)
}

/// Registers a non-blocking descriptor with the current tokio runtime's reactor.
pub fn register(fd: OwnedFd) -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: the descriptor is an OwnedFd the AsyncFd owns for its whole life, so it stays
    // open (and is not reused) while registered; it is deregistered when the AsyncFd drops.
    unsafe { AsyncFd::register(fd) }.map_err(io::Error::from)
}

/// `NS_GET_MNTNS_ID` = _IOR(0xb7, 5, __u64) (include/uapi/linux/nsfs.h, 6.12+).
const NS_GET_MNTNS_ID: libc::c_ulong = (2 << 30) | (8 << 16) | (0xb7 << 8) | 5;

/// The id of the mount namespace a `/proc/<pid>/ns/mnt` descriptor refers to.
pub fn mount_namespace_id(ns: BorrowedFd<'_>) -> io::Result<u64> {
    let mut id: u64 = 0;
    // SAFETY: the ioctl writes one u64 through the pointer, which is valid for that write.
    let result = unsafe { libc::ioctl(ns.as_raw_fd(), NS_GET_MNTNS_ID, &mut id as *mut u64) };
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(id)
}

/// `STATX_MNT_ID_UNIQUE` (include/uapi/linux/stat.h, 6.8+).
const STATX_MNT_ID_UNIQUE: u32 = 0x0000_4000;

/// The unique mount id of the mount `path` is on (statx with STATX_MNT_ID_UNIQUE), or `None`
/// when the kernel answers only the old id.
pub fn unique_mount_id(path: &Path) -> io::Result<Option<u64>> {
    let path = c_path(path)?;
    let mut buffer = MaybeUninit::<libc::statx>::zeroed();
    // SAFETY: `path` is NUL-terminated; `buffer` is valid for writes of one struct statx.
    let result = unsafe {
        libc::statx(
            libc::AT_FDCWD,
            path.as_ptr(),
            0,
            STATX_MNT_ID_UNIQUE,
            buffer.as_mut_ptr(),
        )
    };
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: statx succeeded and filled the struct (it was zeroed before anyway).
    let statx = unsafe { buffer.assume_init() };
    Ok((statx.stx_mask & STATX_MNT_ID_UNIQUE != 0).then_some(statx.stx_mnt_id))
}
