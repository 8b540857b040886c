//! A generic netlink client for Linux: resolve a family by name (id, version, operations,
//! multicast groups), send a request and collect its reply, run a dump, join multicast groups
//! and receive notifications (multicast and unsolicited messages) with overruns reported.
//! Kernel errors carry the errno and the kernel's extended ack message. I/O is asynchronous on
//! tokio.
//!
//! Layers, bottom up: `socket` (system calls, the only `unsafe`), `message` (wire format),
//! `exchange` (which replies belong to a request and when it is done), `notification` (the
//! bounded notification queue), `router` (which received message goes where), `family` (the
//! nlctrl controller), `client` (the async socket that ties them together).

mod client;
pub mod errno;
mod error;
pub mod exchange;
pub mod family;
pub mod follow_up;
pub mod message;
pub mod notification;
mod router;
mod socket;

pub use client::{GenlSocket, Request, SocketOptions};
pub use error::{ErrorKind, NetlinkError};
pub use exchange::{BatchEntry, GenlMessage, MessageBatch};
pub use family::{FamilyInfo, MulticastGroup, Operation};
pub use follow_up::{FollowUp, Plan};
pub use message::ExtAck;
pub use notification::{
    DEFAULT_NOTIFICATION_QUEUE_LIMIT, Notification, NotificationBatch, NotificationEntry,
};
