//! listmount(2) and statmount(2) (Linux 6.8+): the caller's mount table without reading
//! mountinfo. `struct statmount` is decoded from bytes at the offsets of
//! include/uapi/linux/mount.h, so the parser is tested on crafted buffers.

use std::io;

use crate::error::SyscallError;
use crate::sys::{self, MntIdReq};

pub const STATMOUNT_SB_BASIC: u64 = 0x0001;
pub const STATMOUNT_MNT_BASIC: u64 = 0x0002;
pub const STATMOUNT_PROPAGATE_FROM: u64 = 0x0004;
pub const STATMOUNT_MNT_ROOT: u64 = 0x0008;
pub const STATMOUNT_MNT_POINT: u64 = 0x0010;
pub const STATMOUNT_FS_TYPE: u64 = 0x0020;
pub const STATMOUNT_MNT_NS_ID: u64 = 0x0040;
pub const STATMOUNT_MNT_OPTS: u64 = 0x0080;
pub const STATMOUNT_FS_SUBTYPE: u64 = 0x0100;
pub const STATMOUNT_SB_SOURCE: u64 = 0x0200;
pub const STATMOUNT_OPT_ARRAY: u64 = 0x0400;
pub const STATMOUNT_OPT_SEC_ARRAY: u64 = 0x0800;
pub const STATMOUNT_SUPPORTED_MASK: u64 = 0x1000;
pub const STATMOUNT_MNT_UIDMAP: u64 = 0x2000;
pub const STATMOUNT_MNT_GIDMAP: u64 = 0x4000;
/// Every request bit include/uapi/linux/mount.h of Linux 7.3 defines.
pub const STATMOUNT_ALL_KNOWN: u64 = 0x7fff;
/// What a [`KernelMount`] is made of.
pub const STATMOUNT_WANTED: u64 = STATMOUNT_SB_BASIC
    | STATMOUNT_MNT_BASIC
    | STATMOUNT_PROPAGATE_FROM
    | STATMOUNT_MNT_ROOT
    | STATMOUNT_MNT_POINT
    | STATMOUNT_FS_TYPE
    | STATMOUNT_MNT_NS_ID
    | STATMOUNT_MNT_OPTS
    | STATMOUNT_FS_SUBTYPE
    | STATMOUNT_SB_SOURCE;

/// `LSMT_ROOT`: listmount from the caller's root.
pub const LSMT_ROOT: u64 = u64::MAX;

/// sizeof(struct statmount): the fixed part; the strings follow it (`str[]`).
pub const STATMOUNT_HEADER: usize = 512;

// Offsets of the fields of struct statmount.
const OFF_SIZE: usize = 0;
const OFF_MNT_OPTS: usize = 4;
const OFF_MASK: usize = 8;
const OFF_SB_DEV_MAJOR: usize = 16;
const OFF_SB_DEV_MINOR: usize = 20;
const OFF_SB_MAGIC: usize = 24;
const OFF_SB_FLAGS: usize = 32;
const OFF_FS_TYPE: usize = 36;
const OFF_MNT_ID: usize = 40;
const OFF_MNT_PARENT_ID: usize = 48;
const OFF_MNT_ID_OLD: usize = 56;
const OFF_MNT_PARENT_ID_OLD: usize = 60;
const OFF_MNT_ATTR: usize = 64;
const OFF_MNT_PROPAGATION: usize = 72;
const OFF_MNT_PEER_GROUP: usize = 80;
const OFF_MNT_MASTER: usize = 88;
const OFF_PROPAGATE_FROM: usize = 96;
const OFF_MNT_ROOT: usize = 104;
const OFF_MNT_POINT: usize = 108;
const OFF_MNT_NS_ID: usize = 112;
const OFF_FS_SUBTYPE: usize = 120;
const OFF_SB_SOURCE: usize = 124;
const OFF_SUPPORTED_MASK: usize = 144;

/// The request bits a buffer says were answered (`mask`), and the kernel's own list of the
/// bits it supports when it answered STATMOUNT_SUPPORTED_MASK (6.15+).
pub fn answered_masks(buffer: &[u8]) -> (u64, Option<u64>) {
    if buffer.len() < STATMOUNT_HEADER {
        return (0, None);
    }
    let mask = u64_at(buffer, OFF_MASK);
    let supported =
        (mask & STATMOUNT_SUPPORTED_MASK != 0).then(|| u64_at(buffer, OFF_SUPPORTED_MASK));
    (mask, supported)
}

/// One mount as statmount(2) describes it. `None`: the kernel did not answer that field (its
/// request bit is not in `mask`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KernelMount {
    /// The bits the kernel answered.
    pub mask: u64,
    pub unique_id: Option<u64>,
    pub parent_unique_id: Option<u64>,
    pub id: Option<u32>,
    pub parent_id: Option<u32>,
    pub mount_attr: Option<u64>,
    pub propagation: Option<u64>,
    pub peer_group: Option<u64>,
    pub master: Option<u64>,
    pub propagate_from: Option<u64>,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub sb_magic: Option<u64>,
    pub sb_flags: Option<u32>,
    pub root: Option<String>,
    pub mount_point: Option<String>,
    /// `fs_type`, with `.subtype` appended when the kernel gives one.
    pub fs_type: Option<String>,
    pub source: Option<String>,
    pub mount_options: Option<String>,
    pub mnt_ns_id: Option<u64>,
}

fn u32_at(buffer: &[u8], offset: usize) -> u32 {
    u32::from_ne_bytes(buffer[offset..offset + 4].try_into().expect("4 bytes"))
}

fn u64_at(buffer: &[u8], offset: usize) -> u64 {
    u64::from_ne_bytes(buffer[offset..offset + 8].try_into().expect("8 bytes"))
}

/// The NUL-terminated string at `offset` of the string area, which ends at `end`.
fn string_at(buffer: &[u8], end: usize, offset_field: usize) -> Result<String, String> {
    let start = STATMOUNT_HEADER + u32_at(buffer, offset_field) as usize;
    if start >= end {
        return Err(format!(
            "string offset {} of the field at byte {offset_field} is beyond the {end} bytes returned",
            start - STATMOUNT_HEADER
        ));
    }
    let bytes = &buffer[start..end];
    let length = bytes
        .iter()
        .position(|&b| b == 0)
        .ok_or_else(|| format!("the string of the field at byte {offset_field} has no NUL"))?;
    Ok(String::from_utf8_lossy(&bytes[..length]).into_owned())
}

/// Decodes a struct statmount the kernel wrote into `buffer`. `supported`: the request bits
/// this kernel knows ([`crate::support`]); a known string it left out because it was empty
/// (mount options, source) is `Some("")` rather than `None`.
pub fn parse_statmount(
    buffer: &[u8],
    requested: u64,
    supported: u64,
) -> Result<KernelMount, String> {
    if buffer.len() < STATMOUNT_HEADER {
        return Err(format!(
            "statmount buffer of {} bytes is shorter than its header",
            buffer.len()
        ));
    }
    let size = u32_at(buffer, OFF_SIZE) as usize;
    if size > buffer.len() {
        return Err(format!(
            "statmount size {size} does not fit the {} byte buffer",
            buffer.len()
        ));
    }
    let end = size.max(STATMOUNT_HEADER);
    let mask = u64_at(buffer, OFF_MASK);
    let has = |bit: u64| mask & bit != 0;
    let string = |bit: u64, field: usize| -> Result<Option<String>, String> {
        if has(bit) {
            string_at(buffer, end, field).map(Some)
        } else {
            Ok(None)
        }
    };
    let mut mount = KernelMount {
        mask,
        ..KernelMount::default()
    };
    if has(STATMOUNT_SB_BASIC) {
        mount.major = Some(u32_at(buffer, OFF_SB_DEV_MAJOR));
        mount.minor = Some(u32_at(buffer, OFF_SB_DEV_MINOR));
        mount.sb_magic = Some(u64_at(buffer, OFF_SB_MAGIC));
        mount.sb_flags = Some(u32_at(buffer, OFF_SB_FLAGS));
    }
    if has(STATMOUNT_MNT_BASIC) {
        mount.unique_id = Some(u64_at(buffer, OFF_MNT_ID));
        mount.parent_unique_id = Some(u64_at(buffer, OFF_MNT_PARENT_ID));
        mount.id = Some(u32_at(buffer, OFF_MNT_ID_OLD));
        mount.parent_id = Some(u32_at(buffer, OFF_MNT_PARENT_ID_OLD));
        mount.mount_attr = Some(u64_at(buffer, OFF_MNT_ATTR));
        mount.propagation = Some(u64_at(buffer, OFF_MNT_PROPAGATION));
        mount.peer_group = Some(u64_at(buffer, OFF_MNT_PEER_GROUP));
        mount.master = Some(u64_at(buffer, OFF_MNT_MASTER));
    }
    if has(STATMOUNT_PROPAGATE_FROM) {
        mount.propagate_from = Some(u64_at(buffer, OFF_PROPAGATE_FROM));
    }
    if has(STATMOUNT_MNT_NS_ID) {
        mount.mnt_ns_id = Some(u64_at(buffer, OFF_MNT_NS_ID));
    }
    mount.root = string(STATMOUNT_MNT_ROOT, OFF_MNT_ROOT)?;
    mount.mount_point = string(STATMOUNT_MNT_POINT, OFF_MNT_POINT)?;
    mount.fs_type = string(STATMOUNT_FS_TYPE, OFF_FS_TYPE)?;
    if let (Some(fs_type), Some(subtype)) = (
        &mut mount.fs_type,
        string(STATMOUNT_FS_SUBTYPE, OFF_FS_SUBTYPE)?,
    ) && !subtype.is_empty()
    {
        fs_type.push('.');
        fs_type.push_str(&subtype);
    }
    let empty_if_known = |bit: u64| (requested & supported & bit != 0).then(String::new);
    mount.source =
        string(STATMOUNT_SB_SOURCE, OFF_SB_SOURCE)?.or_else(|| empty_if_known(STATMOUNT_SB_SOURCE));
    mount.mount_options =
        string(STATMOUNT_MNT_OPTS, OFF_MNT_OPTS)?.or_else(|| empty_if_known(STATMOUNT_MNT_OPTS));
    Ok(mount)
}

const INITIAL_BUFFER: usize = 4096;
const MAX_BUFFER: usize = 64 << 20;

/// A reusable statmount buffer that grows on EOVERFLOW.
#[derive(Debug)]
pub struct Statmounter {
    buffer: Vec<u8>,
}

impl Default for Statmounter {
    fn default() -> Self {
        Self::new()
    }
}

impl Statmounter {
    pub fn new() -> Self {
        Self {
            buffer: vec![0; INITIAL_BUFFER],
        }
    }

    /// The raw answer for one mount: the bytes the kernel wrote (io errors as they are).
    pub fn raw(&mut self, unique_id: u64, mask: u64, mnt_ns_id: u64) -> io::Result<&[u8]> {
        let req = MntIdReq::new(unique_id, mask, mnt_ns_id);
        loop {
            // Zero the header so fields of a smaller (older) kernel struct read as 0.
            self.buffer[..STATMOUNT_HEADER].fill(0);
            match sys::statmount(&req, &mut self.buffer) {
                Ok(()) => break,
                Err(error)
                    if error.raw_os_error() == Some(libc::EOVERFLOW)
                        && self.buffer.len() < MAX_BUFFER =>
                {
                    let grown = self.buffer.len() * 2;
                    self.buffer.resize(grown, 0);
                }
                Err(error) => return Err(error),
            }
        }
        Ok(&self.buffer)
    }

    /// statmount of one mount; `Ok(None)` when it does not exist (ENOENT).
    pub fn stat(
        &mut self,
        unique_id: u64,
        mask: u64,
        mnt_ns_id: u64,
    ) -> Result<Option<KernelMount>, SyscallError> {
        let operation = || format!("statmount of mount {unique_id}");
        match self.raw(unique_id, mask, mnt_ns_id) {
            Ok(bytes) => parse_statmount(bytes, mask, crate::support::statmount_mask())
                .map(Some)
                .map_err(|detail| {
                    SyscallError::new(operation(), "statmount", libc::EPROTO).with_detail(detail)
                }),
            Err(error) if error.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(error) => Err(SyscallError::from_io(operation(), "statmount", &error)),
        }
    }
}

/// listmount(2) of every mount below `root` (LSMT_ROOT: the caller's root) in batches of
/// `batch` ids.
pub fn list_mount_ids(root: u64, mnt_ns_id: u64, batch: usize) -> Result<Vec<u64>, SyscallError> {
    let mut ids = Vec::new();
    let mut chunk = vec![0u64; batch.max(1)];
    let mut last = 0u64;
    loop {
        let req = MntIdReq::new(root, last, mnt_ns_id);
        let count = sys::listmount(&req, &mut chunk).map_err(|error| {
            SyscallError::from_io(
                "list the mounts of the caller's namespace",
                "listmount",
                &error,
            )
        })?;
        ids.extend_from_slice(&chunk[..count]);
        if count < chunk.len() {
            return Ok(ids);
        }
        last = chunk[count - 1];
    }
}

/// Every mount of the caller's namespace (reachable from its root), in listmount's order
/// (ascending unique id), each described by statmount. A mount that vanishes between the two
/// calls is left out.
pub fn list_kernel_mounts(mask: u64) -> Result<Vec<KernelMount>, SyscallError> {
    let ids = list_mount_ids(LSMT_ROOT, 0, 4096)?;
    let mut statmounter = Statmounter::new();
    let mut mounts = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(mount) = statmounter.stat(id, mask, 0)? {
            mounts.push(mount);
        }
    }
    Ok(mounts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put32(buffer: &mut [u8], offset: usize, value: u32) {
        buffer[offset..offset + 4].copy_from_slice(&value.to_ne_bytes());
    }
    fn put64(buffer: &mut [u8], offset: usize, value: u64) {
        buffer[offset..offset + 8].copy_from_slice(&value.to_ne_bytes());
    }

    /// A struct statmount with the given strings (field offset, text).
    fn crafted(mask: u64, strings: &[(usize, &str)]) -> Vec<u8> {
        let mut buffer = vec![0u8; STATMOUNT_HEADER];
        for (field, text) in strings {
            let at = buffer.len() - STATMOUNT_HEADER;
            put32(&mut buffer, *field, at as u32);
            buffer.extend_from_slice(text.as_bytes());
            buffer.push(0);
        }
        let size = buffer.len() as u32;
        put32(&mut buffer, OFF_SIZE, size);
        put64(&mut buffer, OFF_MASK, mask);
        buffer.resize(buffer.len() + 100, 0xaa); // what the kernel did not write
        buffer
    }

    #[test]
    fn decodes_numbers_and_strings_at_the_uapi_offsets() {
        let mut buffer = crafted(
            STATMOUNT_WANTED,
            &[
                (OFF_MNT_ROOT, "/"),
                (OFF_MNT_POINT, "/mnt/a b"),
                (OFF_FS_TYPE, "fuse"),
                (OFF_FS_SUBTYPE, "sshfs"),
                (OFF_SB_SOURCE, "me@host:"),
                (OFF_MNT_OPTS, "user_id=0,group_id=0"),
            ],
        );
        put32(&mut buffer, OFF_SB_DEV_MAJOR, 0);
        put32(&mut buffer, OFF_SB_DEV_MINOR, 52);
        put32(&mut buffer, OFF_SB_FLAGS, 1);
        put64(&mut buffer, OFF_MNT_ID, 0x1_0000_0042);
        put64(&mut buffer, OFF_MNT_PARENT_ID, 0x1_0000_0001);
        put32(&mut buffer, OFF_MNT_ID_OLD, 66);
        put32(&mut buffer, OFF_MNT_PARENT_ID_OLD, 1);
        put64(&mut buffer, OFF_MNT_ATTR, 0x2 | 0x4);
        put64(&mut buffer, OFF_MNT_PROPAGATION, 1 << 20);
        put64(&mut buffer, OFF_MNT_PEER_GROUP, 7);
        put64(&mut buffer, OFF_MNT_MASTER, 3);
        put64(&mut buffer, OFF_PROPAGATE_FROM, 2);
        put64(&mut buffer, OFF_MNT_NS_ID, 0x1_0000_0000);
        let mount = parse_statmount(&buffer, 0, 0).unwrap();
        assert_eq!(mount.unique_id, Some(0x1_0000_0042));
        assert_eq!(mount.parent_unique_id, Some(0x1_0000_0001));
        assert_eq!((mount.id, mount.parent_id), (Some(66), Some(1)));
        assert_eq!(
            (mount.major, mount.minor, mount.sb_flags),
            (Some(0), Some(52), Some(1))
        );
        assert_eq!(mount.mount_attr, Some(6));
        assert_eq!(mount.propagation, Some(1 << 20));
        assert_eq!(
            (mount.peer_group, mount.master, mount.propagate_from),
            (Some(7), Some(3), Some(2))
        );
        assert_eq!(mount.root.as_deref(), Some("/"));
        assert_eq!(mount.mount_point.as_deref(), Some("/mnt/a b"));
        assert_eq!(mount.fs_type.as_deref(), Some("fuse.sshfs"));
        assert_eq!(mount.source.as_deref(), Some("me@host:"));
        assert_eq!(mount.mount_options.as_deref(), Some("user_id=0,group_id=0"));
        assert_eq!(mount.mnt_ns_id, Some(0x1_0000_0000));
    }

    #[test]
    fn fields_outside_the_mask_are_none() {
        // A 6.12 kernel: no FS_SUBTYPE, no SB_SOURCE.
        let mask =
            STATMOUNT_WANTED & !(STATMOUNT_FS_SUBTYPE | STATMOUNT_SB_SOURCE | STATMOUNT_MNT_OPTS);
        let buffer = crafted(
            mask,
            &[
                (OFF_MNT_ROOT, "/"),
                (OFF_MNT_POINT, "/"),
                (OFF_FS_TYPE, "ext4"),
            ],
        );
        let mount = parse_statmount(&buffer, 0, 0).unwrap();
        assert_eq!(mount.fs_type.as_deref(), Some("ext4"));
        assert_eq!(mount.source, None);
        assert_eq!(mount.mount_options, None);
        // A kernel that knows MNT_OPTS and left it out had none: empty, not unknown.
        let known =
            parse_statmount(&buffer, mask | STATMOUNT_MNT_OPTS, STATMOUNT_ALL_KNOWN).unwrap();
        assert_eq!(known.mount_options.as_deref(), Some(""));
        assert_eq!(known.source, None); // not requested
        // An empty subtype adds no dot.
        let buffer = crafted(
            STATMOUNT_FS_TYPE | STATMOUNT_FS_SUBTYPE,
            &[(OFF_FS_TYPE, "tmpfs"), (OFF_FS_SUBTYPE, "")],
        );
        assert_eq!(
            parse_statmount(&buffer, 0, 0).unwrap().fs_type.as_deref(),
            Some("tmpfs")
        );
        let buffer = crafted(STATMOUNT_SB_BASIC, &[]);
        let mount = parse_statmount(&buffer, 0, 0).unwrap();
        assert_eq!((mount.unique_id, mount.root), (None, None));
        assert_eq!(mount.major, Some(0));
    }

    #[test]
    fn malformed_buffers_are_errors_not_panics() {
        assert!(parse_statmount(&[0u8; 100], 0, 0).is_err());
        let mut buffer = crafted(STATMOUNT_MNT_ROOT, &[(OFF_MNT_ROOT, "/")]);
        put32(&mut buffer, OFF_MNT_ROOT, 10_000);
        assert!(
            parse_statmount(&buffer, 0, 0)
                .unwrap_err()
                .contains("beyond")
        );
        let mut buffer = crafted(STATMOUNT_MNT_ROOT, &[(OFF_MNT_ROOT, "/abc")]);
        let size = u32_at(&buffer, OFF_SIZE) as usize;
        buffer[size - 1] = b'x'; // the NUL overwritten
        assert!(
            parse_statmount(&buffer, 0, 0)
                .unwrap_err()
                .contains("no NUL")
        );
        let mut buffer = crafted(0, &[]);
        put32(&mut buffer, OFF_SIZE, 100_000);
        assert!(parse_statmount(&buffer, 0, 0).is_err());
    }
}
