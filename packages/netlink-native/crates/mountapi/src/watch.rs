//! MountinfoWatch: a thread that waits in poll() for the mount-change signal of a mountinfo
//! file (POLLPRI | POLLERR) and keeps the latest table. A consumer takes the difference between
//! the table it saw last and the latest one, so a slow consumer gets one coalesced batch, never
//! a backlog.
//!
//! Two modes ([`Reread`]): by default the thread re-reads the whole file after each wakeup
//! (O(mounts) per change); with [`Reread::OnRequest`] it only counts wakeups (a poll() and a
//! counter: O(1) per change) and re-reads when the consumer asks ([`MountinfoWatch::request_read`]),
//! for a consumer that learns most changes elsewhere (fanotify) and needs the file only for
//! the changes nothing else reports.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread;

use tokio::sync::Notify;

use crate::error::SyscallError;
use crate::mountinfo::{Diff, Table, diff};
use crate::sys;

/// The smallest read: 64 KiB; a read asks for the previous file size plus this much, so a
/// whole table usually comes in one read() (each read takes the namespace lock once).
const READ_CHUNK: usize = 64 * 1024;

/// When the watch's thread re-reads the file.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Reread {
    /// After every wakeup (and once at the start): each batch is a difference.
    #[default]
    EveryWakeup,
    /// Once at the start, then only when asked ([`MountinfoWatch::request_read`]); a wakeup is
    /// only counted, and reported as a batch with `wakeups > 0` and `reread == false`.
    OnRequest,
}

/// What changed since the consumer's previous batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountinfoBatch {
    /// How many reads found the file changed so far (1 for the first read). A batch can cover
    /// several: the consumer gets the difference since its previous batch.
    pub generation: u64,
    pub diff: Diff,
    /// The table's size (lines) after this batch (as of the last read).
    pub lines: usize,
    /// How many wakeups (POLLPRI) the thread had since the previous batch. With `reread`, the
    /// ones before the read: a wakeup after it comes in a later batch.
    pub wakeups: u64,
    /// The file was read since the previous batch (`diff` is from that read, maybe empty). Always
    /// true with [`Reread::EveryWakeup`]; with [`Reread::OnRequest`], the answer to a request
    /// (or the first read).
    pub reread: bool,
}

#[derive(Default)]
struct State {
    latest: Option<Arc<Table>>,
    latest_generation: u64,
    delivered: Option<Arc<Table>>,
    delivered_generation: u64,
    /// Wakeups counted by the thread, in all.
    wakeups: u64,
    /// `wakeups` when the last read began.
    read_wakeups: u64,
    delivered_wakeups: u64,
    /// Reads done, in all; and how many of them the consumer has had.
    reads: u64,
    delivered_reads: u64,
    read_requested: bool,
    error: Option<SyscallError>,
    error_delivered: bool,
    closed: bool,
}

struct Shared {
    state: Mutex<State>,
    changed: Notify,
    mode: Reread,
}

pub struct MountinfoWatch {
    shared: Arc<Shared>,
    wake: Arc<OwnedFd>,
    consumer: tokio::sync::Mutex<()>,
}

impl MountinfoWatch {
    /// Opens `path` (errors are thrown now) and starts the thread, which reads the whole table
    /// at once and then after each change.
    pub fn open(path: &Path) -> Result<Self, SyscallError> {
        Self::open_with(path, Reread::EveryWakeup)
    }

    /// Like [`open`](Self::open), with the thread re-reading as `mode` says.
    pub fn open_with(path: &Path, mode: Reread) -> Result<Self, SyscallError> {
        let operation = format!("watch {}", path.display());
        let file = sys::open(path, libc::O_RDONLY)
            .map_err(|error| SyscallError::from_io(operation.clone(), "open", &error))?;
        let wake = Arc::new(
            sys::eventfd()
                .map_err(|error| SyscallError::from_io(operation.clone(), "eventfd", &error))?,
        );
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Notify::new(),
            mode,
        });
        let thread_shared = Arc::clone(&shared);
        let thread_wake = Arc::clone(&wake);
        let path = PathBuf::from(path);
        thread::Builder::new()
            .name("usip-mountinfo".into())
            .spawn(move || run(&path, &file, &thread_wake, &thread_shared))
            .map_err(|error| SyscallError::from_io(operation, "clone", &error))?;
        Ok(Self {
            shared,
            wake,
            consumer: tokio::sync::Mutex::new(()),
        })
    }

    pub fn is_closed(&self) -> bool {
        self.shared.state.lock().expect("state lock").closed
    }

    /// Stops the thread (it wakes at once from poll through an eventfd) and ends `next`.
    pub fn close(&self) {
        let mut state = self.shared.state.lock().expect("state lock");
        if state.closed {
            return;
        }
        state.closed = true;
        drop(state);
        // If the signal cannot be written the thread still stops at its next wakeup.
        let _ = sys::eventfd_signal(self.wake.as_fd());
        self.shared.changed.notify_waiters();
    }

    /// With [`Reread::OnRequest`]: asks the thread to read the file again; the difference
    /// comes as the next batch with `reread` (even if empty). Requests made before that read
    /// begins are one read. Does nothing once closed; with [`Reread::EveryWakeup`] it reads at
    /// once too.
    pub fn request_read(&self) {
        let mut state = self.shared.state.lock().expect("state lock");
        if state.closed || state.read_requested {
            return;
        }
        state.read_requested = true;
        drop(state);
        // If the signal cannot be written the read happens at the thread's next wakeup.
        let _ = sys::eventfd_signal(self.wake.as_fd());
    }

    /// The changes since the previous batch (the whole table first), waiting until there are
    /// some (with [`Reread::OnRequest`]: a read or a wakeup); `None` once closed or after an
    /// error was returned.
    pub async fn next(&self) -> Result<Option<MountinfoBatch>, SyscallError> {
        let _turn = self.consumer.lock().await;
        let on_request = self.shared.mode == Reread::OnRequest;
        loop {
            let changed = self.shared.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let taken = {
                let mut state = self.shared.state.lock().expect("state lock");
                if state.closed {
                    return Ok(None);
                }
                let read = if on_request {
                    state.reads > state.delivered_reads
                } else {
                    state.latest_generation > state.delivered_generation
                };
                if read {
                    let new = Arc::clone(state.latest.as_ref().expect("a read has a table"));
                    let taken = (
                        state.delivered.clone(),
                        new,
                        state.latest_generation,
                        state.read_wakeups.saturating_sub(state.delivered_wakeups),
                    );
                    state.delivered_wakeups = state.delivered_wakeups.max(state.read_wakeups);
                    state.delivered_reads = state.reads;
                    Some(taken)
                } else if on_request && state.wakeups > state.delivered_wakeups {
                    let wakeups = state.wakeups - state.delivered_wakeups;
                    state.delivered_wakeups = state.wakeups;
                    return Ok(Some(MountinfoBatch {
                        generation: state.delivered_generation,
                        diff: Diff::default(),
                        lines: state.delivered.as_ref().map_or(0, |table| table.len()),
                        wakeups,
                        reread: false,
                    }));
                } else if let Some(error) = state.error.clone() {
                    if state.error_delivered {
                        return Ok(None);
                    }
                    state.error_delivered = true;
                    return Err(error);
                } else {
                    None
                }
            };
            let Some((old, new, generation, wakeups)) = taken else {
                changed.await;
                continue;
            };
            let first = old.is_none();
            let change = if old.as_ref().is_some_and(|old| Arc::ptr_eq(old, &new)) {
                Diff::default()
            } else {
                diff(old.as_deref(), &new)
            };
            let lines = new.len();
            {
                let mut state = self.shared.state.lock().expect("state lock");
                state.delivered = Some(new);
                state.delivered_generation = generation;
            }
            // A table that changed and changed back between two batches has nothing to say
            // (unless it answers a request: the consumer waits for that answer).
            if first || on_request || !change.is_empty() {
                return Ok(Some(MountinfoBatch {
                    generation,
                    diff: change,
                    lines,
                    wakeups,
                    reread: true,
                }));
            }
        }
    }
}

impl Drop for MountinfoWatch {
    fn drop(&mut self) {
        self.close();
    }
}

/// Reads the whole file from offset 0 into `buffer`.
fn read_all(file: &OwnedFd, buffer: &mut Vec<u8>) -> std::io::Result<()> {
    sys::seek_to(file.as_fd(), 0)?;
    let want = buffer.len() + READ_CHUNK;
    buffer.clear();
    loop {
        let start = buffer.len();
        buffer.resize(start + want.max(READ_CHUNK), 0);
        let count = sys::read(file.as_fd(), &mut buffer[start..]);
        let count = match count {
            Ok(count) => count,
            Err(error) => {
                buffer.truncate(start);
                return Err(error);
            }
        };
        buffer.truncate(start + count);
        if count == 0 {
            return Ok(());
        }
    }
}

fn run(path: &Path, file: &OwnedFd, wake: &OwnedFd, shared: &Shared) {
    let operation = format!("watch {}", path.display());
    let fail = |error: SyscallError| {
        shared.state.lock().expect("state lock").error = Some(error);
        shared.changed.notify_waiters();
    };
    let mut buffer = Vec::new();
    let mut previous: Vec<u8> = Vec::new();
    let mut first = true;
    // Whether to read before the next poll(): at the start, after a request, and (EveryWakeup)
    // after each wakeup.
    let mut read = true;
    loop {
        {
            let mut state = shared.state.lock().expect("state lock");
            if state.closed {
                return;
            }
            if state.read_requested {
                state.read_requested = false;
                read = true;
            }
            if read {
                state.read_wakeups = state.wakeups;
            }
        }
        if read {
            read = false;
            if let Err(error) = read_table(
                &operation,
                file,
                &mut buffer,
                &mut previous,
                &mut first,
                shared,
            ) {
                return fail(error);
            }
        }
        let ready = sys::poll(
            &[
                (file.as_raw_fd(), libc::POLLPRI | libc::POLLERR),
                (wake.as_raw_fd(), libc::POLLIN),
            ],
            -1,
        );
        match ready {
            Ok(revents) if revents[0] & libc::POLLNVAL != 0 => {
                return fail(SyscallError::new(operation, "poll", libc::EBADF));
            }
            Ok(revents) => {
                if revents[1] != 0 {
                    // A request or close(): empty the eventfd (non-blocking) and look at the state.
                    let mut count = [0u8; 8];
                    let _ = sys::read(wake.as_fd(), &mut count);
                }
                if revents[0] & (libc::POLLPRI | libc::POLLERR) != 0 {
                    shared.state.lock().expect("state lock").wakeups += 1;
                    match shared.mode {
                        Reread::EveryWakeup => read = true,
                        Reread::OnRequest => shared.changed.notify_waiters(),
                    }
                }
            }
            Err(error) => return fail(SyscallError::from_io(operation, "poll", &error)),
        }
    }
}

/// Reads the whole file; a new generation when it differs from the previous read (or is the
/// first). Counts the read either way and wakes the consumer.
fn read_table(
    operation: &str,
    file: &OwnedFd,
    buffer: &mut Vec<u8>,
    previous: &mut Vec<u8>,
    first: &mut bool,
    shared: &Shared,
) -> Result<(), SyscallError> {
    read_all(file, buffer).map_err(|error| SyscallError::from_io(operation, "read", &error))?;
    let changed = *first || *buffer != *previous;
    let table = if changed {
        *first = false;
        let text = String::from_utf8_lossy(buffer);
        let table = Table::parse(&text).map_err(|detail| {
            SyscallError::new(operation, "read", libc::EPROTO).with_detail(detail)
        })?;
        std::mem::swap(previous, buffer);
        Some(table)
    } else {
        None
    };
    let mut state = shared.state.lock().expect("state lock");
    if let Some(table) = table {
        state.latest = Some(Arc::new(table));
        state.latest_generation += 1;
    }
    state.reads += 1;
    drop(state);
    if changed || shared.mode == Reread::OnRequest {
        shared.changed.notify_waiters();
    }
    Ok(())
}
