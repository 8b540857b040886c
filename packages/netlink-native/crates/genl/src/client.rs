//! The async generic netlink client. The socket is non-blocking and registered with tokio's
//! reactor (`AsyncFd`), so waiting for the kernel never ties up a thread. Calls on one socket
//! run one at a time (a fair tokio mutex keeps them in call order), which keeps each reply
//! stream whole; `close()` wakes every waiting call.
//!
//! Reading is driven by demand: whoever needs a datagram (a call waiting for its reply, a
//! consumer waiting for notifications) takes the reader lock, reads what is there and routes
//! every message (`router.rs`): replies to the pending call, the rest to the notification
//! queue, then wakes the others. So notifications arrive without a request pending, replies
//! arrive while a consumer waits, and nothing reads when nobody waits: unconsumed messages then
//! stay in the kernel's receive buffer, whose overflow the kernel reports (ENOBUFS), which
//! becomes an overrun notification.

use std::collections::HashMap;
use std::io;
use std::pin::pin;
use std::sync::{Arc, Mutex as StdMutex, MutexGuard, PoisonError};

use tokio::io::unix::AsyncFd;
use tokio::sync::{Mutex, Notify, watch};

use crate::error::{ErrorKind, NetlinkError};
use crate::exchange::{MessageBatch, ReplyCollector, ReplyMode};
use crate::family::{
    CTRL_CMD_GETFAMILY, CTRL_VERSION, FamilyInfo, GENL_ID_CTRL, family_by_name_request,
    parse_family, validate_family_name,
};
use crate::message::{NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, WireError, build_genl_request};
use crate::notification::{DEFAULT_NOTIFICATION_QUEUE_LIMIT, NotificationBatch};
use crate::router::Router;
use crate::socket::NetlinkSocket;

/// Receive buffer: at least 32 KiB lets the kernel pack dumps into its largest (32 KiB)
/// datagrams; the kernel's netlink documentation asks for 8 KiB or a page at least.
const INITIAL_RECEIVE_BUFFER: usize = 64 * 1024;

/// A reader gives the reader lock back after this many datagrams, so a flood of notifications
/// cannot keep a waiting call from being woken.
const MAX_DATAGRAMS_PER_READ: usize = 1024;

/// At most this many datagrams are read before a request is sent (see `Shared::exchange`). A
/// socket whose buffer overflowed takes no more messages until it is emptied, so the queue only
/// shrinks and this bound is never reached in practice; it keeps a pathological flood from
/// holding a call back forever.
const DRAIN_LIMIT: usize = 1 << 20;

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

/// Options of [`GenlSocket::open_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketOptions {
    /// How many notifications the socket keeps in process for the consumer; further ones are
    /// dropped and reported as an overrun with their count. At least 1.
    pub notification_queue_limit: usize,
}

impl Default for SocketOptions {
    fn default() -> Self {
        Self {
            notification_queue_limit: DEFAULT_NOTIFICATION_QUEUE_LIMIT,
        }
    }
}

struct Shared {
    port_id: u32,
    /// `None` once closed. Users clone the `Arc` for the duration of one operation, so the
    /// descriptor closes when the last of them ends (at once when the socket is idle).
    socket: StdMutex<Option<Arc<AsyncFd<NetlinkSocket>>>>,
    /// Held for a whole call: calls run one at a time, in call order (a fair mutex).
    turn: Mutex<()>,
    /// Held by whoever reads the socket; guards the receive buffer.
    reader: Mutex<Vec<u8>>,
    router: StdMutex<Router>,
    /// Woken after datagrams were routed (a reply completed, notifications were queued).
    routed: Notify,
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
    /// Opens a socket with the default options. Must be called within a tokio runtime with
    /// I/O enabled, whose reactor will drive the socket.
    pub fn open() -> Result<Self, NetlinkError> {
        Self::open_with(SocketOptions::default())
    }

    /// Opens a socket. Must be called within a tokio runtime with I/O enabled, whose reactor
    /// will drive the socket.
    pub fn open_with(options: SocketOptions) -> Result<Self, NetlinkError> {
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
                socket: StdMutex::new(Some(Arc::new(socket))),
                turn: Mutex::new(()),
                reader: Mutex::new(vec![0; INITIAL_RECEIVE_BUFFER]),
                router: StdMutex::new(Router::new(options.notification_queue_limit)),
                routed: Notify::new(),
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
    /// `ECANCELED`; later calls fail with `EBADF`; a consumer waiting for notifications gets
    /// `None`, and queued notifications are discarded. The descriptor is closed now, or, if an
    /// operation is using it at this moment, as soon as that operation sees the close.
    pub fn close(&self) {
        self.shared.closed.send_replace(true);
        let socket = self.shared.take_socket();
        drop(socket);
        self.shared.router().clear_notifications();
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

    /// Several `do` requests back to back in one turn of the socket, each with its own outcome,
    /// in order. A generic netlink `do` is answered while its `sendmsg` runs, so sending them one
    /// after another costs little more than pipelining would, and the caller is woken once for
    /// all of them instead of once per request. Closing behaves as for
    /// [`GenlSocket::request`]: the requests not yet answered fail with `ECANCELED`.
    pub fn request_each(
        &self,
        requests: Vec<Request>,
    ) -> impl Future<Output = Vec<Result<MessageBatch, NetlinkError>>> + Send + 'static {
        let operations: Vec<String> = requests
            .iter()
            .map(|request| self.operation_name(ReplyMode::Do, request))
            .collect();
        let closed_before_the_call = self.is_closed();
        let this = self.clone();
        async move {
            let mut outcomes = Vec::with_capacity(requests.len());
            if closed_before_the_call {
                outcomes.extend(operations.iter().map(|op| Err(NetlinkError::closed(op))));
                return outcomes;
            }
            if requests.is_empty() {
                return outcomes;
            }
            let mut closed = this.shared.closed.subscribe();
            let turn = tokio::select! {
                biased;
                _ = closed.wait_for(|closed| *closed) => None,
                turn = this.shared.turn.lock() => Some(turn),
            };
            for (request, operation) in requests.iter().zip(&operations) {
                if turn.is_none() || this.is_closed() {
                    outcomes.push(Err(NetlinkError::cancelled(operation)));
                    continue;
                }
                // The first drains what waits (see exchange_in_turn); the others read all
                // that arrives before their replies anyway.
                let drain = outcomes.is_empty();
                let outcome = tokio::select! {
                    biased;
                    _ = closed.wait_for(|closed| *closed) => Err(NetlinkError::cancelled(operation)),
                    result = this.shared.exchange_in_turn(ReplyMode::Do, request, operation, drain) => result,
                };
                outcomes.push(outcome);
            }
            outcomes
        }
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
            tokio::select! {
                biased;
                _ = closed.wait_for(|closed| *closed) => Err(NetlinkError::cancelled(&operation)),
                result = this.shared.exchange(mode, &request, &operation) => result,
            }
        }
    }

    /// Joins a multicast group of a family, both by name: resolves the family's groups with
    /// nlctrl, then `NETLINK_ADD_MEMBERSHIP`. Returns the group's id. `ENOENT` (naming it) when
    /// the family or the group does not exist, `EPERM` when the group needs a capability the
    /// caller lacks. Joining a group twice is harmless.
    pub fn join_group(
        &self,
        family: &str,
        group: &str,
    ) -> impl Future<Output = Result<u32, NetlinkError>> + Send + 'static {
        self.membership(family, group, true)
    }

    /// Leaves a multicast group (`NETLINK_DROP_MEMBERSHIP`), found by name as for
    /// [`GenlSocket::join_group`]. Leaving a group not joined is harmless.
    pub fn leave_group(
        &self,
        family: &str,
        group: &str,
    ) -> impl Future<Output = Result<u32, NetlinkError>> + Send + 'static {
        self.membership(family, group, false)
    }

    fn membership(
        &self,
        family: &str,
        group: &str,
        join: bool,
    ) -> impl Future<Output = Result<u32, NetlinkError>> + Send + 'static {
        let verb = if join { "join" } else { "leave" };
        let operation =
            format!("{verb} multicast group {group:?} of generic netlink family {family:?}");
        let resolve = self.resolve_family(family);
        let (family, group) = (family.to_owned(), group.to_owned());
        let this = self.clone();
        async move {
            let info = resolve.await.map_err(|error| {
                if error.kind() == ErrorKind::Kernel && error.errno() == libc::ENOENT {
                    NetlinkError::not_found(
                        &operation,
                        format!("no generic netlink family {family:?} is registered"),
                    )
                } else {
                    error.with_operation(&operation)
                }
            })?;
            let Some(found) = info.multicast_group(&group) else {
                let names: Vec<String> = info
                    .multicast_groups
                    .iter()
                    .map(|group| format!("{:?}", group.name))
                    .collect();
                let known = if names.is_empty() {
                    "it has none".to_owned()
                } else {
                    format!("it has {}", names.join(", "))
                };
                return Err(NetlinkError::not_found(
                    &operation,
                    format!("family {family:?} has no multicast group {group:?} ({known})"),
                ));
            };
            let id = found.id;
            let socket = this
                .shared
                .socket()
                .ok_or_else(|| NetlinkError::closed(&operation))?;
            let syscall = if join {
                "setsockopt(NETLINK_ADD_MEMBERSHIP)"
            } else {
                "setsockopt(NETLINK_DROP_MEMBERSHIP)"
            };
            socket
                .get_ref()
                .set_membership(id, join)
                .map_err(|e| NetlinkError::os(&operation, syscall, &e))?;
            Ok(id)
        }
    }

    /// Sets the socket's receive buffer (SO_RCVBUF) in bytes; the kernel doubles the value and
    /// caps it at net.core.rmem_max. When it overflows, the kernel drops messages for this
    /// socket and the notifications report an overrun.
    ///
    /// With `force`, SO_RCVBUFFORCE instead: not capped by net.core.rmem_max, and refused with
    /// EPERM without CAP_NET_ADMIN.
    pub fn set_receive_buffer_size(&self, bytes: u32, force: bool) -> Result<(), NetlinkError> {
        const OPERATION: &str = "set the receive buffer size";
        let bytes = libc::c_int::try_from(bytes).map_err(|_| {
            NetlinkError::invalid_input(
                OPERATION,
                format!("{bytes} bytes is more than SO_RCVBUF can take (at most 2147483647)"),
            )
        })?;
        let socket = self
            .shared
            .socket()
            .ok_or_else(|| NetlinkError::closed(OPERATION))?;
        if force {
            socket
                .get_ref()
                .force_receive_buffer_size(bytes)
                .map_err(|e| NetlinkError::os(OPERATION, "setsockopt(SO_RCVBUFFORCE)", &e))
        } else {
            socket
                .get_ref()
                .set_receive_buffer_size(bytes)
                .map_err(|e| NetlinkError::os(OPERATION, "setsockopt(SO_RCVBUF)", &e))
        }
    }

    /// The receive buffer size the kernel applies (SO_RCVBUF: twice what was set).
    pub fn receive_buffer_size(&self) -> Result<u32, NetlinkError> {
        const OPERATION: &str = "get the receive buffer size";
        let socket = self
            .shared
            .socket()
            .ok_or_else(|| NetlinkError::closed(OPERATION))?;
        let size = socket
            .get_ref()
            .receive_buffer_size()
            .map_err(|e| NetlinkError::os(OPERATION, "getsockopt(SO_RCVBUF)", &e))?;
        Ok(u32::try_from(size).unwrap_or(0))
    }

    /// Waits for notifications: the messages that are not replies to this socket's requests
    /// (multicast messages of joined groups, unsolicited unicasts from the kernel), and overrun
    /// marks where some were lost. Resolves with every notification queued by then (at least
    /// one), or `None` once the socket is closed. Meant for one consumer at a time; two would
    /// split the notifications between them in no defined way.
    pub fn next_notifications(
        &self,
    ) -> impl Future<Output = Result<Option<NotificationBatch>, NetlinkError>> + Send + 'static
    {
        let this = self.clone();
        async move {
            let mut closed = this.shared.closed.subscribe();
            tokio::select! {
                biased;
                _ = closed.wait_for(|closed| *closed) => Ok(None),
                batch = this.shared.notifications() => batch,
            }
        }
    }
}

impl Shared {
    fn router(&self) -> MutexGuard<'_, Router> {
        // The router's state stays consistent even if a holder panicked: it is only ever
        // changed by complete method calls.
        self.router.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn socket(&self) -> Option<Arc<AsyncFd<NetlinkSocket>>> {
        self.socket
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn take_socket(&self) -> Option<Arc<AsyncFd<NetlinkSocket>>> {
        self.socket
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    async fn exchange(
        &self,
        mode: ReplyMode,
        request: &Request,
        operation: &str,
    ) -> Result<MessageBatch, NetlinkError> {
        let _turn = self.turn.lock().await;
        self.exchange_in_turn(mode, request, operation, true).await
    }

    /// One exchange; the caller holds the turn. `drain`: first read what already waits (every
    /// call but the later ones of a `request_each`, whose first did).
    async fn exchange_in_turn(
        &self,
        mode: ReplyMode,
        request: &Request,
        operation: &str,
        drain: bool,
    ) -> Result<MessageBatch, NetlinkError> {
        let socket = self
            .socket()
            .ok_or_else(|| NetlinkError::cancelled(operation))?;
        let flags = match mode {
            ReplyMode::Do => NLM_F_REQUEST | NLM_F_ACK,
            ReplyMode::Dump => NLM_F_REQUEST | NLM_F_DUMP,
        };
        let sequence;
        let _registered;
        {
            // Under the reader lock, first read everything already waiting. After the kernel
            // overflowed a socket's buffer it silently drops every further message to it until
            // that buffer is emptied; only the first drop is reported (ENOBUFS). Emptying it
            // here means a reply dropped from now on is reported, which fails this call,
            // instead of being lost without a trace while the call waits forever.
            let mut buffer = self.reader.lock().await;
            if drain {
                let drained = self.drain(socket.get_ref(), &mut buffer, &|_| false, DRAIN_LIMIT);
                self.routed.notify_waiters();
                drained.map_err(|e| NetlinkError::os(operation, "recvmsg", &e))?;
            }

            sequence = self.router().begin(|sequence| {
                ReplyCollector::new(mode, request.family_id, sequence, self.port_id, operation)
            });
            // However this future ends (done, failed, dropped on close), the exchange is over.
            _registered = Registered {
                shared: self,
                sequence,
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
            self.router().mark_sent(sequence);
            send(&socket, &message)
                .await
                .map_err(|e| NetlinkError::os(operation, "sendto", &e))?;
            // The kernel runs a request to it within sendto(): its answer (or a dump's first
            // part) is queued already. Read it now, not after a turn of the reactor (an
            // epoll_wait and a wake-up per request, most of a batch of mount-gets' cost).
            let drained = self.drain(
                socket.get_ref(),
                &mut buffer,
                &|router| router.has_outcome(sequence),
                MAX_DATAGRAMS_PER_READ,
            );
            self.routed.notify_waiters();
            drained.map_err(|e| NetlinkError::os(operation, "recvmsg", &e))?;
        }

        loop {
            let mut routed = pin!(self.routed.notified());
            routed.as_mut().enable();
            if let Some(outcome) = self.router().take_outcome(sequence) {
                return outcome;
            }
            tokio::select! {
                biased;
                () = routed.as_mut() => {}
                read = self.read(&socket, |router| router.has_outcome(sequence)) => {
                    read.map_err(|e| NetlinkError::os(operation, "recvmsg", &e))?;
                }
            }
        }
    }

    async fn notifications(&self) -> Result<Option<NotificationBatch>, NetlinkError> {
        let Some(socket) = self.socket() else {
            return Ok(None);
        };
        loop {
            let mut routed = pin!(self.routed.notified());
            routed.as_mut().enable();
            {
                let mut router = self.router();
                if router.has_notifications() {
                    return Ok(Some(router.take_notifications()));
                }
            }
            tokio::select! {
                biased;
                () = routed.as_mut() => {}
                // Read all there is (one batch for a burst), but no more than the queue holds:
                // the rest waits in the kernel's buffer rather than being dropped here.
                read = self.read(&socket, Router::notifications_full) => {
                    read.map_err(|e| NetlinkError::os("receive notifications", "recvmsg", &e))?;
                }
            }
        }
    }

    /// Waits until the socket is readable (without holding the reader lock, so a call can
    /// send meanwhile), then, under the reader lock, reads and routes what is there (see
    /// [`Shared::drain`]) and wakes the waiters.
    async fn read(
        &self,
        socket: &AsyncFd<NetlinkSocket>,
        enough: impl Fn(&Router) -> bool,
    ) -> io::Result<()> {
        let mut ready = socket.readable().await?;
        let drained = {
            let mut buffer = self.reader.lock().await;
            self.drain(
                socket.get_ref(),
                &mut buffer,
                &enough,
                MAX_DATAGRAMS_PER_READ,
            )
        };
        self.routed.notify_waiters();
        if drained? {
            // Only clears the readiness this guard saw: data that arrived since is not missed.
            ready.clear_ready();
        }
        Ok(())
    }

    /// Reads and routes the datagrams waiting in the socket, without waiting: until there are
    /// none (then returns true), `enough` says so, or `limit` were read. The caller holds the
    /// reader lock, whose receive buffer is `buffer`.
    fn drain(
        &self,
        socket: &NetlinkSocket,
        buffer: &mut [u8],
        enough: &dyn Fn(&Router) -> bool,
        limit: usize,
    ) -> io::Result<bool> {
        for _ in 0..limit {
            // One recvmsg per datagram, no MSG_PEEK for its size first (that doubled the system
            // calls of a storm of events): the kernel's netlink datagrams fit 64 KiB (it packs
            // dumps into at most 32 KiB; a message of its own is a page or so). One that did
            // not would fail the read with its size rather than be cut short silently.
            let received = socket.receive(buffer);
            match received {
                Ok(datagram) => {
                    self.router()
                        .route(&buffer[..datagram.length], datagram.sender, datagram.group)
                }
                // The kernel dropped messages for us because the receive buffer was full.
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    self.router().kernel_overrun();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            if enough(&self.router()) {
                break;
            }
        }
        Ok(false)
    }
}

/// Forgets the exchange when the call ends, however it ends.
struct Registered<'a> {
    shared: &'a Shared,
    sequence: u32,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.shared.router().abandon(self.sequence);
    }
}

async fn send(socket: &AsyncFd<NetlinkSocket>, message: &[u8]) -> io::Result<()> {
    loop {
        let mut ready = socket.writable().await?;
        match ready.try_io(|socket| socket.get_ref().send_to_kernel(message)) {
            Ok(result) => return result,
            Err(_would_block) => continue,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn closing_cancels_a_call_waiting_for_its_turn_and_releases_the_socket() {
        let socket = GenlSocket::open().unwrap();
        // Stand in for a call in progress: hold the turn.
        let held = socket.shared.turn.lock().await;
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
        assert!(socket.shared.socket().is_none());
    }

    #[tokio::test]
    async fn closing_ends_a_consumer_waiting_for_notifications() {
        let socket = GenlSocket::open().unwrap();
        let waiting = tokio::spawn({
            let socket = socket.clone();
            async move { socket.next_notifications().await }
        });
        tokio::task::yield_now().await;
        socket.close();
        assert_eq!(waiting.await.unwrap().unwrap(), None);
        assert_eq!(socket.next_notifications().await.unwrap(), None);
    }

    fn get_family(name: &str) -> Request {
        Request {
            family_id: GENL_ID_CTRL,
            command: CTRL_CMD_GETFAMILY,
            version: CTRL_VERSION,
            payload: family_by_name_request(name).unwrap(),
            label: Some(format!("get {name}")),
        }
    }

    #[tokio::test]
    async fn requests_made_together_each_get_their_own_outcome_in_order() {
        let socket = GenlSocket::open().unwrap();
        let outcomes = socket
            .request_each(vec![
                get_family("nlctrl"),
                get_family("nosuchfamily"),
                get_family("nlctrl"),
            ])
            .await;
        assert_eq!(outcomes.len(), 3);
        for index in [0, 2] {
            let batch = outcomes[index].as_ref().unwrap();
            let family = parse_family(batch.iter().next().unwrap().attributes).unwrap();
            assert_eq!(family.name, "nlctrl");
        }
        let error = outcomes[1].as_ref().unwrap_err();
        assert_eq!(error.code(), "ENOENT");
        assert_eq!(error.operation(), "get nosuchfamily");
        assert!(socket.request_each(Vec::new()).await.is_empty());
        // The socket still works for single calls after a batch.
        assert_eq!(
            socket.resolve_family("nlctrl").await.unwrap().name,
            "nlctrl"
        );
    }

    #[tokio::test]
    async fn requests_made_together_on_a_closed_socket_fail_each() {
        let socket = GenlSocket::open().unwrap();
        socket.close();
        let outcomes = socket
            .request_each(vec![get_family("nlctrl"), get_family("nlctrl")])
            .await;
        let codes: Vec<String> = outcomes
            .iter()
            .map(|o| o.as_ref().unwrap_err().code())
            .collect();
        assert_eq!(codes, ["EBADF", "EBADF"]);
    }

    /// A genl message as a forger would send it: our family id and command, sequence 0.
    fn forged_event() -> Vec<u8> {
        build_genl_request(0x1d, 0, 0, 7, 1, &[]).unwrap()
    }

    #[tokio::test]
    async fn messages_another_process_sends_are_not_notifications() {
        let receiver = GenlSocket::open().unwrap();
        let forger = NetlinkSocket::open_generic().unwrap();
        match forger.send_to(receiver.port_id(), 0, &forged_event()) {
            Ok(()) => {}
            // Sending to another process's port needs CAP_NET_ADMIN, so unprivileged processes
            // cannot forge at all; nothing to check then.
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => return,
            Err(e) => panic!("forging failed: {e}"),
        }
        // The forged datagram is queued before the reply, so the request reads through it.
        receiver.resolve_family("nlctrl").await.unwrap();
        assert!(!receiver.shared.router().has_notifications());
    }

    #[tokio::test]
    async fn a_receive_buffer_overflow_is_an_overrun_and_the_next_request_still_gets_its_reply() {
        let receiver = GenlSocket::open().unwrap();
        let notify = receiver.join_group("nlctrl", "notify").await.unwrap();
        assert!(
            (1..=32).contains(&notify),
            "nlctrl's notify group is {notify}"
        );
        receiver.set_receive_buffer_size(1, false).unwrap();
        let forger = NetlinkSocket::open_generic().unwrap();
        // The kernel drops a multicast for a socket whose receive buffer is full and reports
        // ENOBUFS on it, whoever sent it. Multicasting from user space needs CAP_NET_ADMIN.
        for _ in 0..64 {
            match forger.send_to(0, 1 << (notify - 1), &forged_event()) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EPERM) => return,
                Err(e) => panic!("multicasting failed: {e}"),
            }
        }
        // From now on the kernel drops every message for this socket until its buffer has been
        // emptied: the request first reads what waits, so its reply is not lost.
        assert_eq!(
            receiver.resolve_family("nlctrl").await.unwrap().name,
            "nlctrl"
        );
        let batch = receiver.next_notifications().await.unwrap().unwrap();
        // The forged messages themselves were dropped; the overrun is what is left.
        let all: Vec<_> = batch.iter().collect();
        assert_eq!(all, [crate::Notification::Overrun { lost: None }]);
        assert_eq!(
            receiver.resolve_family("nlctrl").await.unwrap().name,
            "nlctrl"
        );
    }
}
