//! Node.js binding of the `genl` crate. It converts arguments and results and turns a
//! `NetlinkError` into a JS `Error` carrying `errno`, `code`, `extack` and friends; everything
//! else lives in `genl`. Calls return promises settled from napi-rs's tokio runtime, so no
//! socket I/O happens on the JS thread. The TypeScript wrapper (src/index.ts) is the public API.

#![deny(unsafe_code)]

use genl::{
    FamilyInfo, FollowUp, GenlSocket, MessageBatch, NetlinkError, NotificationBatch,
    NotificationEntry, Request, SocketOptions,
};
use napi::bindgen_prelude::{
    Buffer, Env, Int32Array, JsObjectValue, JsValue, Object, PromiseRaw, Result, Status,
    Uint32Array, within_runtime_if_available,
};
use napi_derive::napi;

pub mod mounts;
pub mod systemd;

#[napi(object)]
pub struct NativeOperation {
    pub id: u32,
    pub flags: u32,
}

#[napi(object)]
pub struct NativeMulticastGroup {
    pub name: String,
    pub id: u32,
}

#[napi(object)]
pub struct NativeFamilyInfo {
    pub id: u32,
    pub name: String,
    pub version: u32,
    pub header_size: u32,
    pub max_attr: u32,
    pub operations: Vec<NativeOperation>,
    pub multicast_groups: Vec<NativeMulticastGroup>,
}

impl From<FamilyInfo> for NativeFamilyInfo {
    fn from(family: FamilyInfo) -> Self {
        Self {
            id: u32::from(family.id),
            name: family.name,
            version: family.version,
            header_size: family.header_size,
            max_attr: family.max_attribute,
            operations: family
                .operations
                .into_iter()
                .map(|op| NativeOperation {
                    id: op.id,
                    flags: op.flags,
                })
                .collect(),
            multicast_groups: family
                .multicast_groups
                .into_iter()
                .map(|group| NativeMulticastGroup {
                    name: group.name,
                    id: group.id,
                })
                .collect(),
        }
    }
}

/// All messages of one reply in one buffer; `layout` holds four numbers per message: command,
/// version, start and end of its attributes in `payload`. One buffer for a whole dump keeps a
/// 20,000-message dump from costing 20,000 native allocations and boundary crossings.
#[napi(object)]
pub struct NativeMessageBatch {
    pub payload: Buffer,
    pub layout: Uint32Array,
}

impl From<MessageBatch> for NativeMessageBatch {
    fn from(batch: MessageBatch) -> Self {
        let (payload, entries) = batch.into_parts();
        let mut layout = Vec::with_capacity(entries.len() * 4);
        for entry in entries {
            layout.extend_from_slice(&[
                u32::from(entry.command),
                u32::from(entry.version),
                entry.start,
                entry.end,
            ]);
        }
        Self {
            payload: payload.into(),
            layout: layout.into(),
        }
    }
}

/// Notifications taken together, in one buffer; `layout` holds seven numbers per notification:
/// kind, then for a message (kind 0) family id, command, version, group, start and end of its
/// attributes in `payload`; for an overrun with a known count (kind 1) 0, 0, 0, 0 and the count
/// as low and high 32 bits; for an overrun the kernel reported (kind 2, count unknown) zeros.
#[napi(object)]
pub struct NativeNotificationBatch {
    pub payload: Buffer,
    pub layout: Uint32Array,
}

const NOTIFICATION_MESSAGE: u32 = 0;
const NOTIFICATION_OVERRUN: u32 = 1;
const NOTIFICATION_KERNEL_OVERRUN: u32 = 2;

impl From<NotificationBatch> for NativeNotificationBatch {
    fn from(batch: NotificationBatch) -> Self {
        let (payload, entries) = batch.into_parts();
        let mut layout = Vec::with_capacity(entries.len() * 7);
        for entry in entries {
            let fields = match entry {
                NotificationEntry::Message {
                    family_id,
                    command,
                    version,
                    group,
                    start,
                    end,
                } => [
                    NOTIFICATION_MESSAGE,
                    u32::from(family_id),
                    u32::from(command),
                    u32::from(version),
                    group,
                    start,
                    end,
                ],
                NotificationEntry::Overrun { lost: Some(lost) } => [
                    NOTIFICATION_OVERRUN,
                    0,
                    0,
                    0,
                    0,
                    // Split into 32-bit halves; the truncations are the point.
                    (lost & 0xffff_ffff) as u32,
                    (lost >> 32) as u32,
                ],
                NotificationEntry::Overrun { lost: None } => {
                    [NOTIFICATION_KERNEL_OVERRUN, 0, 0, 0, 0, 0, 0]
                }
            };
            layout.extend_from_slice(&fields);
        }
        Self {
            payload: payload.into(),
            layout: layout.into(),
        }
    }
}

/// Which notifications get a follow-up request (see `genl::follow_up`): `keys` are pairs of
/// (event attribute, request attribute), flattened, in order of preference; an event whose u32
/// attribute `skipAttribute` holds one of `skipValues` gets none.
#[napi(object)]
pub struct NativeFollowUp {
    pub family_id: u32,
    pub event_command: u32,
    pub request_command: u32,
    pub version: u32,
    pub keys: Vec<u32>,
    pub skip_attribute: Option<u32>,
    pub skip_values: Vec<u32>,
    /// Only events whose u64 attribute `minimumAttribute` is at least `minimum` get a request.
    pub minimum_attribute: Option<u32>,
    pub minimum: Option<i64>,
    pub label: String,
}

impl NativeFollowUp {
    fn checked(self) -> std::result::Result<FollowUp, NetlinkError> {
        let operation = self.label.clone();
        if !self.keys.len().is_multiple_of(2) {
            return Err(NetlinkError::invalid_input(
                &operation,
                "keys must be pairs of (event attribute, request attribute)",
            ));
        }
        let attribute = |value: u32| checked::<u16>(value, "attribute", &operation);
        let mut keys = Vec::with_capacity(self.keys.len() / 2);
        for pair in self.keys.chunks_exact(2) {
            keys.push((attribute(pair[0])?, attribute(pair[1])?));
        }
        let skip = match self.skip_attribute {
            Some(kind) => Some((attribute(kind)?, self.skip_values)),
            None => None,
        };
        let minimum = match (self.minimum_attribute, self.minimum) {
            (Some(kind), Some(value)) => Some((
                attribute(kind)?,
                u64::try_from(value).map_err(|_| {
                    NetlinkError::invalid_input(
                        &operation,
                        format!("minimum must not be negative, got {value}"),
                    )
                })?,
            )),
            (None, None) => None,
            _ => {
                return Err(NetlinkError::invalid_input(
                    &operation,
                    "minimumAttribute and minimum go together",
                ));
            }
        };
        Ok(FollowUp {
            family_id: checked(self.family_id, "familyId", &operation)?,
            event_command: checked(self.event_command, "eventCommand", &operation)?,
            request_command: checked(self.request_command, "requestCommand", &operation)?,
            version: checked(self.version, "version", &operation)?,
            keys,
            skip,
            minimum,
            label: self.label,
        })
    }
}

/// Notifications with the replies to their follow-up requests: `payload` and `layout` as in
/// `NativeNotificationBatch`; `replyLayout` holds three numbers per notification: 0 (no
/// request), or 1 and the start and end of the reply's attributes in `replies`, or 2 and the
/// errno of the request's failure (EPROTO for a reply of other than one message).
#[napi(object)]
pub struct NativeFollowedBatch {
    pub payload: Buffer,
    pub layout: Uint32Array,
    pub replies: Buffer,
    pub reply_layout: Int32Array,
}

const REPLY_NONE: i32 = 0;
const REPLY_MESSAGE: i32 = 1;
const REPLY_ERROR: i32 = 2;

fn followed_batch(
    batch: NotificationBatch,
    index: Vec<Option<u32>>,
    outcomes: Vec<std::result::Result<MessageBatch, NetlinkError>>,
) -> NativeFollowedBatch {
    // Each request's reply once in `replies`, shared by the notifications that asked for it.
    let mut replies = Vec::new();
    let mut placed = Vec::with_capacity(outcomes.len());
    for outcome in &outcomes {
        placed.push(match outcome {
            Ok(reply) if reply.len() == 1 => {
                let attributes = reply.iter().next().map_or(&[][..], |m| m.attributes);
                let start = offset(replies.len());
                replies.extend_from_slice(attributes);
                [REPLY_MESSAGE, start, offset(replies.len())]
            }
            Ok(_) => [REPLY_ERROR, genl::errno::EPROTO, 0],
            Err(error) => [REPLY_ERROR, error.errno(), 0],
        });
    }
    let mut reply_layout = Vec::with_capacity(index.len() * 3);
    for slot in index {
        match slot.and_then(|i| placed.get(i as usize)) {
            Some(fields) => reply_layout.extend_from_slice(fields),
            None => reply_layout.extend_from_slice(&[REPLY_NONE, 0, 0]),
        }
    }
    let NativeNotificationBatch { payload, layout } = NativeNotificationBatch::from(batch);
    NativeFollowedBatch {
        payload,
        layout,
        replies: replies.into(),
        reply_layout: reply_layout.into(),
    }
}

/// An offset into the replies buffer as the i32 of the layout; replies of one batch stay far
/// below 2 GiB (a batch is at most 32 MiB of events, and a mount-get reply is a few hundred
/// bytes per event).
fn offset(length: usize) -> i32 {
    i32::try_from(length).unwrap_or(i32::MAX)
}

/// Builds the JS Error for a failure: the message is the error's text, and the fields a caller
/// branches on are properties. It becomes the thrown or rejected value as is.
fn js_error(env: &Env, error: &NetlinkError) -> napi::Error {
    let build = || -> Result<napi::Error> {
        let mut object: Object =
            env.create_error(napi::Error::new(Status::GenericFailure, error.to_string()))?;
        object.set_named_property("name", "NetlinkError")?;
        object.set_named_property("errno", error.errno())?;
        object.set_named_property("code", error.code())?;
        object.set_named_property("operation", error.operation())?;
        if let Some(syscall) = error.syscall() {
            object.set_named_property("syscall", syscall)?;
        }
        let ext_ack = error.ext_ack();
        if let Some(message) = &ext_ack.message {
            object.set_named_property("extack", message.as_str())?;
        }
        if let Some(offset) = ext_ack.offset {
            object.set_named_property("extackOffset", offset)?;
        }
        if let Some(missing) = ext_ack.missing_type {
            object.set_named_property("missingAttribute", missing)?;
        }
        if let Some(nest) = ext_ack.missing_nest {
            object.set_named_property("missingNest", nest)?;
        }
        if error.kind() == genl::ErrorKind::DumpInterrupted {
            object.set_named_property("dumpInterrupted", true)?;
        }
        Ok(napi::Error::from(object.to_unknown()))
    };
    // If even building the error fails, the text still reaches JS.
    build().unwrap_or_else(|_| napi::Error::new(Status::GenericFailure, error.to_string()))
}

/// Runs a `genl` future on the tokio runtime and settles a promise with its result, converting
/// a `NetlinkError` into a JS error on the JS thread.
fn settle<'env, T, V, F>(
    env: &'env Env,
    future: F,
    convert: fn(T) -> V,
) -> Result<PromiseRaw<'env, V>>
where
    T: Send + 'static,
    V: napi::bindgen_prelude::ToNapiValue + 'static,
    F: std::future::Future<Output = std::result::Result<T, NetlinkError>> + Send + 'static,
{
    env.spawn_future_with_callback(async move { Ok(future.await) }, move |env, outcome| {
        outcome.map(convert).map_err(|error| js_error(env, &error))
    })
}

fn checked<T: TryFrom<u32>>(
    value: u32,
    name: &str,
    operation: &str,
) -> std::result::Result<T, NetlinkError> {
    T::try_from(value).map_err(|_| {
        let bits = std::mem::size_of::<T>() * 8;
        NetlinkError::invalid_input(
            operation,
            format!("{name} must fit in {bits} bits, got {value}"),
        )
    })
}

#[napi]
pub struct NativeGenlSocket {
    socket: GenlSocket,
}

#[napi]
impl NativeGenlSocket {
    /// `notification_queue_limit`: see `SocketOptions` (default 4096); the TypeScript wrapper
    /// checks its range.
    #[napi(constructor)]
    pub fn new(env: Env, notification_queue_limit: Option<u32>) -> Result<Self> {
        let mut options = SocketOptions::default();
        if let Some(limit) = notification_queue_limit {
            options.notification_queue_limit = limit as usize;
        }
        // The socket registers with the reactor of napi-rs's tokio runtime, which will drive it.
        let socket = within_runtime_if_available(|| GenlSocket::open_with(options));
        socket
            .map(|socket| Self { socket })
            .map_err(|error| js_error(&env, &error))
    }

    #[napi(getter)]
    pub fn port_id(&self) -> u32 {
        self.socket.port_id()
    }

    #[napi(getter)]
    pub fn closed(&self) -> bool {
        self.socket.is_closed()
    }

    #[napi]
    pub fn close(&self) {
        self.socket.close();
    }

    #[napi(ts_return_type = "Promise<NativeFamilyInfo>")]
    pub fn resolve_family<'env>(
        &self,
        env: &'env Env,
        name: String,
    ) -> Result<PromiseRaw<'env, NativeFamilyInfo>> {
        settle(
            env,
            self.socket.resolve_family(&name),
            NativeFamilyInfo::from,
        )
    }

    #[napi(ts_return_type = "Promise<NativeFamilyInfo[]>")]
    pub fn list_families<'env>(
        &self,
        env: &'env Env,
    ) -> Result<PromiseRaw<'env, Vec<NativeFamilyInfo>>> {
        settle(env, self.socket.list_families(), |families| {
            families.into_iter().map(NativeFamilyInfo::from).collect()
        })
    }

    /// A `do` request; `attributes` is copied before this returns, so the caller may reuse it.
    #[napi(ts_return_type = "Promise<NativeMessageBatch>")]
    pub fn request<'env>(
        &self,
        env: &'env Env,
        family_id: u32,
        command: u32,
        version: u32,
        attributes: &[u8],
        label: Option<String>,
    ) -> Result<PromiseRaw<'env, NativeMessageBatch>> {
        // Arguments are checked and copied now; the call counts from now (see GenlSocket).
        let call = build_request(family_id, command, version, attributes, label)
            .map(|request| self.socket.request(request));
        settle(env, async move { call?.await }, NativeMessageBatch::from)
    }

    #[napi(ts_return_type = "Promise<NativeMessageBatch>")]
    pub fn dump<'env>(
        &self,
        env: &'env Env,
        family_id: u32,
        command: u32,
        version: u32,
        attributes: &[u8],
        label: Option<String>,
    ) -> Result<PromiseRaw<'env, NativeMessageBatch>> {
        // Arguments are checked and copied now; the call counts from now (see GenlSocket).
        let call = build_request(family_id, command, version, attributes, label)
            .map(|request| self.socket.dump(request));
        settle(env, async move { call?.await }, NativeMessageBatch::from)
    }

    /// Resolves with the group's id.
    #[napi(ts_return_type = "Promise<number>")]
    pub fn join_group<'env>(
        &self,
        env: &'env Env,
        family: String,
        group: String,
    ) -> Result<PromiseRaw<'env, u32>> {
        settle(env, self.socket.join_group(&family, &group), |id| id)
    }

    #[napi(ts_return_type = "Promise<number>")]
    pub fn leave_group<'env>(
        &self,
        env: &'env Env,
        family: String,
        group: String,
    ) -> Result<PromiseRaw<'env, u32>> {
        settle(env, self.socket.leave_group(&family, &group), |id| id)
    }

    #[napi]
    pub fn set_receive_buffer_size(&self, env: Env, bytes: u32, force: bool) -> Result<()> {
        self.socket
            .set_receive_buffer_size(bytes, force)
            .map_err(|error| js_error(&env, &error))
    }

    #[napi(getter)]
    pub fn receive_buffer_size(&self, env: Env) -> Result<u32> {
        self.socket
            .receive_buffer_size()
            .map_err(|error| js_error(&env, &error))
    }

    /// As `nextNotifications`, and for each event `followUp` names, one request on `requester`
    /// (one per distinct key; none at all when the batch would need more than `limit`), all
    /// made before the promise settles: one call into JavaScript per batch, replies included.
    #[napi(ts_return_type = "Promise<NativeFollowedBatch | null>")]
    pub fn next_notifications_followed<'env>(
        &self,
        env: &'env Env,
        requester: &NativeGenlSocket,
        follow_up: NativeFollowUp,
        limit: u32,
    ) -> Result<PromiseRaw<'env, Option<NativeFollowedBatch>>> {
        let spec = follow_up.checked();
        let listener = self.socket.clone();
        let requester = requester.socket.clone();
        settle(
            env,
            async move {
                let spec = spec?;
                let Some(batch) = listener.next_notifications().await? else {
                    return Ok(None);
                };
                let plan = genl::follow_up::plan(&batch, &spec, limit as usize);
                let outcomes = requester.request_each(plan.requests).await;
                Ok(Some((batch, plan.index, outcomes)))
            },
            |found| found.map(|(batch, index, outcomes)| followed_batch(batch, index, outcomes)),
        )
    }

    /// Resolves with the notifications queued by then (at least one), or null once the socket
    /// is closed.
    #[napi(ts_return_type = "Promise<NativeNotificationBatch | null>")]
    pub fn next_notifications<'env>(
        &self,
        env: &'env Env,
    ) -> Result<PromiseRaw<'env, Option<NativeNotificationBatch>>> {
        settle(env, self.socket.next_notifications(), |batch| {
            batch.map(NativeNotificationBatch::from)
        })
    }
}

fn build_request(
    family_id: u32,
    command: u32,
    version: u32,
    attributes: &[u8],
    label: Option<String>,
) -> std::result::Result<Request, NetlinkError> {
    let operation = label
        .clone()
        .unwrap_or_else(|| format!("request to family {family_id:#x} command {command}"));
    Ok(Request {
        family_id: checked(family_id, "familyId", &operation)?,
        command: checked(command, "command", &operation)?,
        version: checked(version, "version", &operation)?,
        payload: attributes.to_vec(),
        label,
    })
}
