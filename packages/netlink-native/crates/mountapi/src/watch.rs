//! MountinfoWatch: a thread that waits in poll() for the mount-change signal of a mountinfo
//! file (POLLPRI | POLLERR), re-reads the whole file after each wakeup and keeps the latest
//! table. A consumer takes the difference between the table it saw last and the latest one,
//! so a slow consumer gets one coalesced batch, never a backlog.

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

/// What changed since the consumer's previous batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountinfoBatch {
    /// How many reads found the file changed so far (1 for the first read). A batch can cover
    /// several: the consumer gets the difference since its previous batch.
    pub generation: u64,
    pub diff: Diff,
    /// The table's size (lines) after this batch.
    pub lines: usize,
}

#[derive(Default)]
struct State {
    latest: Option<Arc<Table>>,
    latest_generation: u64,
    delivered: Option<Arc<Table>>,
    delivered_generation: u64,
    error: Option<SyscallError>,
    error_delivered: bool,
    closed: bool,
}

struct Shared {
    state: Mutex<State>,
    changed: Notify,
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

    /// The changes since the previous batch (the whole table first), waiting until there are
    /// some; `None` once closed or after an error was returned.
    pub async fn next(&self) -> Result<Option<MountinfoBatch>, SyscallError> {
        let _turn = self.consumer.lock().await;
        loop {
            let changed = self.shared.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let taken = {
                let mut state = self.shared.state.lock().expect("state lock");
                if state.closed {
                    return Ok(None);
                }
                if state.latest_generation > state.delivered_generation {
                    let new = Arc::clone(state.latest.as_ref().expect("a generation has a table"));
                    Some((state.delivered.clone(), new, state.latest_generation))
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
            let Some((old, new, generation)) = taken else {
                changed.await;
                continue;
            };
            let first = old.is_none();
            let change = diff(old.as_deref(), &new);
            let lines = new.len();
            {
                let mut state = self.shared.state.lock().expect("state lock");
                state.delivered = Some(new);
                state.delivered_generation = generation;
            }
            // A table that changed and changed back between two batches has nothing to say.
            if first || !change.is_empty() {
                return Ok(Some(MountinfoBatch {
                    generation,
                    diff: change,
                    lines,
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
    loop {
        if shared.state.lock().expect("state lock").closed {
            return;
        }
        if let Err(error) = read_all(file, &mut buffer) {
            return fail(SyscallError::from_io(operation, "read", &error));
        }
        if first || buffer != previous {
            first = false;
            let text = String::from_utf8_lossy(&buffer);
            let table = match Table::parse(&text) {
                Ok(table) => table,
                Err(detail) => {
                    return fail(
                        SyscallError::new(operation, "read", libc::EPROTO).with_detail(detail),
                    );
                }
            };
            std::mem::swap(&mut previous, &mut buffer);
            let mut state = shared.state.lock().expect("state lock");
            state.latest = Some(Arc::new(table));
            state.latest_generation += 1;
            drop(state);
            shared.changed.notify_waiters();
        }
        let ready = sys::poll(
            &[
                (file.as_raw_fd(), libc::POLLPRI | libc::POLLERR),
                (wake.as_raw_fd(), libc::POLLIN),
            ],
            -1,
        );
        match ready {
            Ok(revents) if revents[1] != 0 => return, // closed
            Ok(revents) if revents[0] & libc::POLLNVAL != 0 => {
                return fail(SyscallError::new(operation, "poll", libc::EBADF));
            }
            Ok(_) => {}
            Err(error) => return fail(SyscallError::from_io(operation, "poll", &error)),
        }
    }
}
