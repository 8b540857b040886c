//! The async generic netlink client. The socket is non-blocking and registered with tokio's
//! reactor (`AsyncFd`), so waiting for the kernel never ties up a thread. Calls on one socket
//! run one at a time (a fair tokio mutex keeps them in call order), which keeps each reply
//! stream whole; `close()` wakes every waiting call.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex as StdMutex};

use tokio::io::unix::AsyncFd;
use tokio::sync::{Mutex, watch};

use crate::error::NetlinkError;
use crate::exchange::{MessageBatch, Progress, ReplyCollector, ReplyMode};
use crate::family::{
    CTRL_CMD_GETFAMILY, CTRL_VERSION, FamilyInfo, GENL_ID_CTRL, family_by_name_request,
    parse_family, validate_family_name,
};
use crate::message::{NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, WireError, build_genl_request};
use crate::socket::NetlinkSocket;

/// Receive buffer to start with: at least 32 KiB lets the kernel pack dumps into its largest
/// (32 KiB) datagrams. It grows if a bigger datagram is announced.
const INITIAL_RECEIVE_BUFFER: usize = 64 * 1024;

/// One request to a generic netlink family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub family_id: u16,
    pub command: u8,
    pub version: u8,
    /// Everything after the `genlmsghdr`: the family header (if any) and the attributes.
    pub payload: Vec<u8>,
    /// Names the operation in errors, e.g. "usip ping"; by default the family and command.
    pub label: Option<String>,
}

/// The socket and what only the call holding the lock may touch.
struct Connection {
    socket: AsyncFd<NetlinkSocket>,
    receive_buffer: Vec<u8>,
    next_sequence: u32,
}

struct Shared {
    port_id: u32,
    /// `None` once closed: dropping the connection closes the descriptor.
    connection: Mutex<Option<Connection>>,
    closed: watch::Sender<bool>,
    /// Names of families resolved on this socket, for error messages.
    family_names: StdMutex<HashMap<u16, String>>,
}

/// A generic netlink socket. Cloning gives another handle to the same socket.
#[derive(Clone)]
pub struct GenlSocket {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for GenlSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GenlSocket")
            .field("port_id", &self.shared.port_id)
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl GenlSocket {
    /// Opens a socket. Must be called within a tokio runtime with I/O enabled, whose reactor
    /// will drive the socket.
    pub fn open() -> Result<Self, NetlinkError> {
        const OPERATION: &str = "open generic netlink socket";
        let socket = NetlinkSocket::open_generic()
            .map_err(|e| NetlinkError::os(OPERATION, e.syscall, &e.error))?;
        let port_id = socket.port_id();
        let socket = socket
            .register()
            .map_err(|e| NetlinkError::os(OPERATION, "epoll_ctl", &e))?;
        let (closed, _) = watch::channel(false);
        Ok(Self {
            shared: Arc::new(Shared {
                port_id,
                connection: Mutex::new(Some(Connection {
                    socket,
                    receive_buffer: vec![0; INITIAL_RECEIVE_BUFFER],
                    next_sequence: 1,
                })),
                closed,
                family_names: StdMutex::new(HashMap::new()),
            }),
        })
    }

    /// The port id the kernel assigned to this socket.
    pub fn port_id(&self) -> u32 {
        self.shared.port_id
    }

    pub fn is_closed(&self) -> bool {
        *self.shared.closed.borrow()
    }

    /// Closes the socket. Idempotent. Calls waiting for their turn or their reply fail with
    /// `ECANCELED`; later calls fail with `EBADF`.
    pub fn close(&self) {
        self.shared.closed.send_replace(true);
        self.release_if_closed();
    }

    /// Drops the connection (closing the descriptor) unless a call holds it; that call drops
    /// it when it sees the socket closed.
    fn release_if_closed(&self) {
        if self.is_closed()
            && let Ok(mut connection) = self.shared.connection.try_lock()
        {
            connection.take();
        }
    }

    /// A `do`: sends the request with `NLM_F_ACK` and returns the replies (none when the
    /// operation only acks).
    ///
    /// The call counts from when it is made, not from when the future is first polled: if the
    /// socket is closed by then, the future fails with `EBADF`; if it is closed later, before
    /// the reply, with `ECANCELED`.
    pub fn request(
        &self,
        request: Request,
    ) -> impl Future<Output = Result<MessageBatch, NetlinkError>> + Send + 'static {
        self.exchange(ReplyMode::Do, request)
    }

    /// A dump: sends the request with `NLM_F_DUMP` and returns every message up to
    /// `NLMSG_DONE`. A dump that fails midway fails as a whole; an interrupted one (the data
    /// changed meanwhile) fails with `EINTR` so the caller can retry. Closing behaves as for
    /// [`GenlSocket::request`].
    pub fn dump(
        &self,
        request: Request,
    ) -> impl Future<Output = Result<MessageBatch, NetlinkError>> + Send + 'static {
        self.exchange(ReplyMode::Dump, request)
    }

    /// Looks a family up by name; `ENOENT` when no such family is registered.
    pub fn resolve_family(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<FamilyInfo, NetlinkError>> + Send + 'static {
        let operation = format!("resolve generic netlink family {name:?}");
        let exchange = validate_family_name(name)
            .and_then(|()| family_by_name_request(name).map_err(|e| e.0))
            .map_err(|e| NetlinkError::invalid_input(&operation, e))
            .map(|payload| {
                self.request(Request {
                    family_id: GENL_ID_CTRL,
                    command: CTRL_CMD_GETFAMILY,
                    version: CTRL_VERSION,
                    payload,
                    label: Some(operation.clone()),
                })
            });
        let this = self.clone();
        async move {
            let batch = exchange?.await?;
            let mut replies = batch.iter();
            let (Some(reply), None) = (replies.next(), replies.next()) else {
                return Err(NetlinkError::protocol(
                    &operation,
                    WireError(format!(
                        "expected one family description, got {}",
                        batch.len()
                    )),
                ));
            };
            let family = parse_family(reply.attributes)
                .map_err(|e| NetlinkError::protocol(&operation, e))?;
            this.remember_family(&family);
            Ok(family)
        }
    }

    /// Every generic netlink family the kernel has registered (a `CTRL_CMD_GETFAMILY` dump).
    pub fn list_families(
        &self,
    ) -> impl Future<Output = Result<Vec<FamilyInfo>, NetlinkError>> + Send + 'static {
        const OPERATION: &str = "list generic netlink families";
        let dump = self.dump(Request {
            family_id: GENL_ID_CTRL,
            command: CTRL_CMD_GETFAMILY,
            version: CTRL_VERSION,
            payload: Vec::new(),
            label: Some(OPERATION.to_owned()),
        });
        let this = self.clone();
        async move {
            let batch = dump.await?;
            let families = batch
                .iter()
                .map(|reply| parse_family(reply.attributes))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| NetlinkError::protocol(OPERATION, e))?;
            for family in &families {
                this.remember_family(family);
            }
            Ok(families)
        }
    }

    fn remember_family(&self, family: &FamilyInfo) {
        if let Ok(mut names) = self.shared.family_names.lock() {
            names.insert(family.id, family.name.clone());
        }
    }

    fn operation_name(&self, mode: ReplyMode, request: &Request) -> String {
        if let Some(label) = &request.label {
            return label.clone();
        }
        let kind = match mode {
            ReplyMode::Do => "request",
            ReplyMode::Dump => "dump",
        };
        let family = self
            .shared
            .family_names
            .lock()
            .ok()
            .and_then(|names| names.get(&request.family_id).cloned())
            .unwrap_or_else(|| format!("family {:#x}", request.family_id));
        format!("{family} {kind} of command {}", request.command)
    }

    fn exchange(
        &self,
        mode: ReplyMode,
        request: Request,
    ) -> impl Future<Output = Result<MessageBatch, NetlinkError>> + Send + 'static {
        let operation = self.operation_name(mode, &request);
        let closed_before_the_call = self.is_closed();
        let this = self.clone();
        async move {
            if closed_before_the_call {
                return Err(NetlinkError::closed(&operation));
            }
            let mut closed = this.shared.closed.subscribe();
            let run = async {
                let mut connection = this.shared.connection.lock().await;
                match connection.as_mut() {
                    Some(connection) => {
                        connection
                            .exchange(this.shared.port_id, mode, &request, &operation)
                            .await
                    }
                    None => Err(NetlinkError::cancelled(&operation)),
                }
            };
            let result = tokio::select! {
                biased;
                _ = closed.wait_for(|closed| *closed) => Err(NetlinkError::cancelled(&operation)),
                result = run => result,
            };
            this.release_if_closed();
            result
        }
    }
}

impl Connection {
    fn take_sequence(&mut self) -> u32 {
        let sequence = self.next_sequence;
        self.next_sequence = self.next_sequence.wrapping_add(1);
        sequence
    }

    async fn exchange(
        &mut self,
        port_id: u32,
        mode: ReplyMode,
        request: &Request,
        operation: &str,
    ) -> Result<MessageBatch, NetlinkError> {
        let sequence = self.take_sequence();
        let flags = match mode {
            ReplyMode::Do => NLM_F_REQUEST | NLM_F_ACK,
            ReplyMode::Dump => NLM_F_REQUEST | NLM_F_DUMP,
        };
        let message = build_genl_request(
            request.family_id,
            flags,
            sequence,
            request.command,
            request.version,
            &request.payload,
        )
        .map_err(|e| NetlinkError::invalid_input(operation, e.0))?;
        self.send(&message)
            .await
            .map_err(|e| NetlinkError::os(operation, "sendto", &e))?;

        let mut collector =
            ReplyCollector::new(mode, request.family_id, sequence, port_id, operation);
        loop {
            let (length, sender) = self
                .receive()
                .await
                .map_err(|e| NetlinkError::os(operation, "recvfrom", &e))?;
            if sender != 0 {
                // Another process can unicast to our port; only the kernel's replies count.
                continue;
            }
            if let Progress::Complete(batch) = collector.feed(&self.receive_buffer[..length])? {
                return Ok(batch);
            }
        }
    }

    async fn send(&self, message: &[u8]) -> io::Result<()> {
        loop {
            let mut ready = self.socket.writable().await?;
            match ready.try_io(|socket| socket.get_ref().send_to_kernel(message)) {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }

    /// Waits for the next datagram and reads it whole into the receive buffer, growing the
    /// buffer first if the datagram is bigger.
    async fn receive(&mut self) -> io::Result<(usize, u32)> {
        let Self {
            socket,
            receive_buffer,
            ..
        } = self;
        loop {
            let mut ready = socket.readable().await?;
            let attempt = ready.try_io(|socket| {
                let socket = socket.get_ref();
                let size = socket.next_datagram_size()?;
                if size > receive_buffer.len() {
                    receive_buffer.resize(size, 0);
                }
                socket.receive(receive_buffer)
            });
            match attempt {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[tokio::test]
    async fn closing_cancels_a_call_waiting_for_its_turn_and_releases_the_socket() {
        let socket = GenlSocket::open().unwrap();
        // Stand in for a call in progress: hold the connection.
        let held = socket.shared.connection.lock().await;
        let waiting = tokio::spawn({
            let socket = socket.clone();
            async move { socket.resolve_family("nlctrl").await }
        });
        // On this single-threaded runtime, yielding lets the spawned call run until it queues.
        tokio::task::yield_now().await;
        socket.close();
        let error = waiting.await.unwrap().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Cancelled);
        assert_eq!(error.code(), "ECANCELED");
        drop(held);
        socket.close();
        assert!(socket.shared.connection.lock().await.is_none());
    }
}
