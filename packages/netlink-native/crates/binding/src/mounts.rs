//! The binding of the `mountapi` crate: the kernel's own mount APIs (listmount/statmount,
//! fanotify mount events, the mountinfo change signal) and statfs with a timeout. Results
//! cross into JS once per call or batch; a failure becomes a JS `Error` named `SyscallError`
//! with `errno`, `code`, `syscall` and `operation`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mountapi::{
    FanotifyMountWatch, FanotifyOptions, KernelMount, MountEventKind, MountinfoWatch, Reread,
    Statfs, SyscallError,
};
use napi::bindgen_prelude::{
    BigInt, Env, JsObjectValue, JsValue, Object, PromiseRaw, Result, Status,
    within_runtime_if_available,
};
use napi_derive::napi;

fn js_error(env: &Env, error: &SyscallError) -> napi::Error {
    let build = || -> Result<napi::Error> {
        let mut object: Object =
            env.create_error(napi::Error::new(Status::GenericFailure, error.to_string()))?;
        object.set_named_property("name", "SyscallError")?;
        object.set_named_property("errno", error.errno())?;
        object.set_named_property("code", error.code())?;
        object.set_named_property("syscall", error.syscall())?;
        object.set_named_property("operation", error.operation())?;
        if let Some(detail) = error.detail() {
            object.set_named_property("detail", detail)?;
        }
        Ok(napi::Error::from(object.to_unknown()))
    };
    build().unwrap_or_else(|_| napi::Error::new(Status::GenericFailure, error.to_string()))
}

fn settle<'env, T, V, F>(
    env: &'env Env,
    future: F,
    convert: fn(T) -> V,
) -> Result<PromiseRaw<'env, V>>
where
    T: Send + 'static,
    V: napi::bindgen_prelude::ToNapiValue + 'static,
    F: std::future::Future<Output = std::result::Result<T, SyscallError>> + Send + 'static,
{
    env.spawn_future_with_callback(async move { Ok(future.await) }, move |env, outcome| {
        outcome.map(convert).map_err(|error| js_error(env, &error))
    })
}

#[napi(object)]
pub struct NativeFanotifyMountSupport {
    pub available: bool,
    pub reason: Option<String>,
}

#[napi(object)]
pub struct NativeMountApiSupport {
    pub listmount: bool,
    pub statmount: bool,
    pub statmount_mask: BigInt,
    pub fanotify_mount: NativeFanotifyMountSupport,
}

/// Probed once per process (the first call), then answered from memory.
#[napi]
pub fn mount_api_support() -> NativeMountApiSupport {
    let support = mountapi::support();
    NativeMountApiSupport {
        listmount: support.listmount,
        statmount: support.statmount,
        statmount_mask: BigInt::from(support.statmount_mask),
        fanotify_mount: NativeFanotifyMountSupport {
            available: support.fanotify_mount,
            reason: support.fanotify_reason.clone(),
        },
    }
}

#[napi(object)]
pub struct NativeKernelMount {
    pub id: Option<u32>,
    pub parent_id: Option<u32>,
    pub unique_id: Option<BigInt>,
    pub parent_unique_id: Option<BigInt>,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub root: Option<String>,
    pub mount_point: Option<String>,
    pub mount_attr: Option<BigInt>,
    pub propagation: Option<BigInt>,
    pub peer_group: Option<f64>,
    pub master: Option<f64>,
    pub propagate_from: Option<f64>,
    pub fs_type: Option<String>,
    pub source: Option<String>,
    pub mount_options: Option<String>,
    pub sb_flags: Option<u32>,
    pub sb_magic: Option<BigInt>,
    pub mnt_ns_id: Option<BigInt>,
}

impl From<KernelMount> for NativeKernelMount {
    fn from(mount: KernelMount) -> Self {
        // Peer group, master and propagate-from ids are small integers (ida-allocated), which
        // fit a double exactly.
        let number = |value: Option<u64>| value.map(|value| value as f64);
        Self {
            id: mount.id,
            parent_id: mount.parent_id,
            unique_id: mount.unique_id.map(BigInt::from),
            parent_unique_id: mount.parent_unique_id.map(BigInt::from),
            major: mount.major,
            minor: mount.minor,
            root: mount.root,
            mount_point: mount.mount_point,
            mount_attr: mount.mount_attr.map(BigInt::from),
            propagation: mount.propagation.map(BigInt::from),
            peer_group: number(mount.peer_group),
            master: number(mount.master),
            propagate_from: number(mount.propagate_from),
            fs_type: mount.fs_type,
            source: mount.source,
            mount_options: mount.mount_options,
            sb_flags: mount.sb_flags,
            sb_magic: mount.sb_magic.map(BigInt::from),
            mnt_ns_id: mount.mnt_ns_id.map(BigInt::from),
        }
    }
}

fn to_native_mounts(mounts: Vec<KernelMount>) -> Vec<NativeKernelMount> {
    mounts.into_iter().map(NativeKernelMount::from).collect()
}

/// listmount + statmount of every mount of the caller's namespace, on a blocking-pool thread.
#[napi(ts_return_type = "Promise<NativeKernelMount[]>")]
pub fn list_kernel_mounts(env: &Env) -> Result<PromiseRaw<'_, Vec<NativeKernelMount>>> {
    settle(
        env,
        mountapi::list_kernel_mounts_blocking(),
        to_native_mounts,
    )
}

/// statmount of one mount by unique id; null when it does not exist.
#[napi(ts_return_type = "Promise<NativeKernelMount | null>")]
pub fn stat_kernel_mount(
    env: &Env,
    unique_id: BigInt,
) -> Result<PromiseRaw<'_, Option<NativeKernelMount>>> {
    let (negative, id, lossless) = unique_id.get_u64();
    if negative || !lossless {
        return Err(napi::Error::new(
            Status::InvalidArg,
            "uniqueId must be a bigint from 0 to 2^64-1",
        ));
    }
    settle(env, mountapi::stat_kernel_mount_blocking(id), |mount| {
        mount.map(NativeKernelMount::from)
    })
}

#[napi(object)]
pub struct NativeMountinfoBatch {
    pub generation: f64,
    pub added: Vec<String>,
    pub removed: Vec<u32>,
    pub changed: Vec<String>,
    pub lines: u32,
    pub wakeups: f64,
    pub reread: bool,
}

#[napi]
pub struct NativeMountinfoWatch {
    watch: Arc<MountinfoWatch>,
}

#[napi]
impl NativeMountinfoWatch {
    /// `on_request`: the thread re-reads only when asked (`request_read`) and otherwise reports
    /// its wakeups; default false: a re-read after every wakeup.
    #[napi(constructor)]
    pub fn new(env: Env, path: String, on_request: Option<bool>) -> Result<Self> {
        let mode = if on_request.unwrap_or(false) {
            Reread::OnRequest
        } else {
            Reread::EveryWakeup
        };
        MountinfoWatch::open_with(&PathBuf::from(path), mode)
            .map(|watch| Self {
                watch: Arc::new(watch),
            })
            .map_err(|error| js_error(&env, &error))
    }

    #[napi(getter)]
    pub fn closed(&self) -> bool {
        self.watch.is_closed()
    }

    #[napi]
    pub fn close(&self) {
        self.watch.close();
    }

    /// Asks for a read of the file; its difference is the next batch with `reread`.
    #[napi]
    pub fn request_read(&self) {
        self.watch.request_read();
    }

    /// The next batch, or null once closed (or after an error was delivered).
    #[napi(ts_return_type = "Promise<NativeMountinfoBatch | null>")]
    pub fn next<'env>(
        &self,
        env: &'env Env,
    ) -> Result<PromiseRaw<'env, Option<NativeMountinfoBatch>>> {
        let watch = Arc::clone(&self.watch);
        settle(env, async move { watch.next().await }, |batch| {
            batch.map(|batch| NativeMountinfoBatch {
                generation: batch.generation as f64,
                added: batch.diff.added,
                removed: batch.diff.removed,
                changed: batch.diff.changed,
                lines: u32::try_from(batch.lines).unwrap_or(u32::MAX),
                wakeups: batch.wakeups as f64,
                reread: batch.reread,
            })
        })
    }
}

#[napi(object)]
pub struct NativeMountEvent {
    pub kind: String,
    pub unique_id: BigInt,
}

#[napi(object)]
pub struct NativeMountEventBatch {
    pub events: Vec<NativeMountEvent>,
    pub overflow: bool,
    /// With the statmount option: per event, the mount (null for a detach or a mount gone).
    pub mounts: Option<Vec<Option<NativeKernelMount>>>,
}

#[napi]
pub struct NativeFanotifyMountWatch {
    watch: Arc<FanotifyMountWatch>,
}

#[napi]
impl NativeFanotifyMountWatch {
    #[napi(constructor)]
    pub fn new(env: Env, ns_path: Option<String>, statmount: Option<bool>) -> Result<Self> {
        let mut options = FanotifyOptions::default();
        if let Some(path) = ns_path {
            options.ns_path = PathBuf::from(path);
        }
        options.statmount = statmount.unwrap_or(false);
        // The descriptor registers with the reactor of napi-rs's tokio runtime.
        within_runtime_if_available(|| FanotifyMountWatch::open(options))
            .map(|watch| Self {
                watch: Arc::new(watch),
            })
            .map_err(|error| js_error(&env, &error))
    }

    #[napi(getter)]
    pub fn closed(&self) -> bool {
        self.watch.is_closed()
    }

    #[napi]
    pub fn close(&self) {
        self.watch.close();
    }

    #[napi(ts_return_type = "Promise<NativeMountEventBatch | null>")]
    pub fn next<'env>(
        &self,
        env: &'env Env,
    ) -> Result<PromiseRaw<'env, Option<NativeMountEventBatch>>> {
        let watch = Arc::clone(&self.watch);
        settle(env, async move { watch.next().await }, |batch| {
            batch.map(|batch| NativeMountEventBatch {
                events: batch
                    .events
                    .into_iter()
                    .map(|event| NativeMountEvent {
                        kind: match event.kind {
                            MountEventKind::Attach => "attach",
                            MountEventKind::Detach => "detach",
                            MountEventKind::Move => "move",
                        }
                        .to_owned(),
                        unique_id: BigInt::from(event.unique_id),
                    })
                    .collect(),
                overflow: batch.overflow,
                mounts: batch.mounts.map(|mounts| {
                    mounts
                        .into_iter()
                        .map(|mount| mount.map(NativeKernelMount::from))
                        .collect()
                }),
            })
        })
    }
}

#[napi(object)]
pub struct NativeStatfs {
    pub r#type: BigInt,
    pub block_size: BigInt,
    pub fragment_size: BigInt,
    pub blocks: BigInt,
    pub blocks_free: BigInt,
    pub blocks_available: BigInt,
    pub files: BigInt,
    pub files_free: BigInt,
    pub fsid: BigInt,
    pub name_max: BigInt,
    pub flags: BigInt,
}

impl From<Statfs> for NativeStatfs {
    fn from(s: Statfs) -> Self {
        Self {
            r#type: s.fs_type.into(),
            block_size: s.block_size.into(),
            fragment_size: s.fragment_size.into(),
            blocks: s.blocks.into(),
            blocks_free: s.blocks_free.into(),
            blocks_available: s.blocks_available.into(),
            files: s.files.into(),
            files_free: s.files_free.into(),
            fsid: s.fsid.into(),
            name_max: s.name_max.into(),
            flags: s.flags.into(),
        }
    }
}

/// statfs(2) on a thread of its own (at most MAX_STATFS_THREADS at once); rejects with
/// ETIMEDOUT after `timeout_ms` (0 or absent: no timeout).
#[napi(ts_return_type = "Promise<NativeStatfs>")]
pub fn statfs_path(
    env: &Env,
    path: String,
    timeout_ms: Option<u32>,
) -> Result<PromiseRaw<'_, NativeStatfs>> {
    let timeout = timeout_ms
        .filter(|&ms| ms > 0)
        .map(|ms| Duration::from_millis(u64::from(ms)));
    settle(
        env,
        mountapi::statfs_path(PathBuf::from(path), timeout),
        NativeStatfs::from,
    )
}
