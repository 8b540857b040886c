//! Where each received datagram goes. Requests and notifications share one socket (a usip
//! listener lives as long as the socket that registered it, and its events are unicast to that
//! socket), so every message read is routed: a reply or ack to the pending request, anything
//! else to the notification queue. No I/O here: tests feed crafted datagrams.
//!
//! The rules, per message:
//! - a datagram from another process (sender port id not 0) is dropped whole: only the kernel
//!   speaks for a family, and a process must not be able to forge its events;
//! - a message sent to a multicast group (`NETLINK_PKTINFO` group not 0) is a notification,
//!   whatever its sequence number (some families copy the triggering request's);
//! - a unicast with a sequence number is a reply: to the pending request if the number and
//!   port id are its own, else a stale reply to a request that was given up, dropped;
//! - a unicast with sequence number 0 (requests never use it) is an unsolicited notification,
//!   e.g. a usip event for a listener registered through this socket;
//! - netlink control messages (`NLMSG_DONE`, ...) and messages too short for a `genlmsghdr`
//!   are not notifications and are dropped.

use crate::error::NetlinkError;
use crate::exchange::{MessageBatch, Progress, ReplyCollector};
use crate::message::{NLMSG_MIN_TYPE, NetlinkMessage, messages, split_genl_payload};
use crate::notification::{NotificationBatch, NotificationQueue};

/// The request in flight (calls on a socket run one at a time) and what became of it.
#[derive(Debug)]
struct PendingExchange {
    sequence: u32,
    collector: ReplyCollector,
    /// Set just before the request is sent: from then on its reply can be lost.
    sent: bool,
    outcome: Option<Result<MessageBatch, NetlinkError>>,
}

/// Routes received datagrams; one per socket, shared by whoever reads it.
#[derive(Debug)]
pub(crate) struct Router {
    next_sequence: u32,
    exchange: Option<PendingExchange>,
    queue: NotificationQueue,
}

impl Router {
    pub(crate) fn new(queue_limit: usize) -> Self {
        Self {
            next_sequence: 1,
            exchange: None,
            queue: NotificationQueue::new(queue_limit),
        }
    }

    /// Registers the next request: picks its sequence number (never 0, which marks unsolicited
    /// messages) and the collector of its replies, made for that number. Replaces an exchange
    /// still registered, which callers prevent by running one call at a time.
    pub(crate) fn begin(&mut self, collector: impl FnOnce(u32) -> ReplyCollector) -> u32 {
        let sequence = self.next_sequence;
        self.next_sequence = match self.next_sequence.wrapping_add(1) {
            0 => 1,
            next => next,
        };
        self.exchange = Some(PendingExchange {
            sequence,
            collector: collector(sequence),
            sent: false,
            outcome: None,
        });
        sequence
    }

    /// The request is about to be sent: a kernel overrun from now on may have cost its reply.
    pub(crate) fn mark_sent(&mut self, sequence: u32) {
        if let Some(exchange) = self.exchange_mut(sequence) {
            exchange.sent = true;
        }
    }

    /// The outcome of the request, once it has one; the exchange is then over.
    pub(crate) fn take_outcome(
        &mut self,
        sequence: u32,
    ) -> Option<Result<MessageBatch, NetlinkError>> {
        let exchange = self.exchange_mut(sequence)?;
        let outcome = exchange.outcome.take()?;
        self.exchange = None;
        Some(outcome)
    }

    pub(crate) fn has_outcome(&self, sequence: u32) -> bool {
        self.exchange
            .as_ref()
            .is_some_and(|exchange| exchange.sequence == sequence && exchange.outcome.is_some())
    }

    /// Forgets a request whose caller gave up (closed socket, failed send); replies to it that
    /// still arrive are stale and dropped.
    pub(crate) fn abandon(&mut self, sequence: u32) {
        if self.exchange_mut(sequence).is_some() {
            self.exchange = None;
        }
    }

    fn exchange_mut(&mut self, sequence: u32) -> Option<&mut PendingExchange> {
        self.exchange
            .as_mut()
            .filter(|exchange| exchange.sequence == sequence)
    }

    /// Routes one datagram: `sender` is the sender's port id (0 for the kernel), `group` the
    /// multicast group it was sent to (0 for a unicast to us).
    pub(crate) fn route(&mut self, datagram: &[u8], sender: u32, group: u32) {
        if sender != 0 {
            return;
        }
        for message in messages(datagram) {
            let message = match message {
                Ok(message) => message,
                Err(error) => {
                    // The rest of the datagram cannot be framed. A unicast may have been (part
                    // of) the reply: the request fails rather than waits for it forever.
                    if group == 0
                        && let Some(exchange) = self.live_exchange()
                    {
                        let operation = exchange.collector.operation().to_owned();
                        exchange.outcome = Some(Err(NetlinkError::protocol(&operation, error)));
                    }
                    return;
                }
            };
            if group == 0 && message.header.sequence != 0 {
                self.reply(message);
            } else {
                self.notification(message, group);
            }
        }
    }

    fn live_exchange(&mut self) -> Option<&mut PendingExchange> {
        self.exchange
            .as_mut()
            .filter(|exchange| exchange.sent && exchange.outcome.is_none())
    }

    fn reply(&mut self, message: NetlinkMessage<'_>) {
        let Some(exchange) = self.exchange.as_mut().filter(|exchange| {
            exchange.outcome.is_none() && exchange.collector.belongs(&message.header)
        }) else {
            return;
        };
        match exchange.collector.accept(message) {
            Ok(Progress::Incomplete) => {}
            Ok(Progress::Complete(batch)) => exchange.outcome = Some(Ok(batch)),
            Err(error) => exchange.outcome = Some(Err(error)),
        }
    }

    fn notification(&mut self, message: NetlinkMessage<'_>, group: u32) {
        let kind = message.header.kind;
        if kind < NLMSG_MIN_TYPE {
            return;
        }
        if let Ok((genl, attributes)) = split_genl_payload(message.payload) {
            self.queue
                .push_message(kind, genl.command, genl.version, group, attributes);
        }
    }

    /// The kernel dropped messages for this socket (recv failed with ENOBUFS): an overrun mark
    /// goes into the notification queue, and a request already sent fails with ENOBUFS, since
    /// its reply may have been among them.
    pub(crate) fn kernel_overrun(&mut self) {
        self.queue.push_kernel_overrun();
        if let Some(exchange) = self.live_exchange() {
            let operation = exchange.collector.operation().to_owned();
            exchange.outcome = Some(Err(NetlinkError::overrun(&operation)));
        }
    }

    pub(crate) fn has_notifications(&self) -> bool {
        !self.queue.is_empty()
    }

    pub(crate) fn notifications_full(&self) -> bool {
        self.queue.is_full()
    }

    pub(crate) fn take_notifications(&mut self) -> NotificationBatch {
        self.queue.take(usize::MAX)
    }

    pub(crate) fn clear_notifications(&mut self) {
        self.queue.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::exchange::ReplyMode;
    use crate::message::fixtures::*;
    use crate::message::*;
    use crate::notification::Notification;

    const FAMILY: u16 = 0x1d;
    const PORT: u32 = 4242;
    const MTAB_GROUP: u32 = 40;

    fn router() -> Router {
        Router::new(16)
    }

    fn start(router: &mut Router, mode: ReplyMode) -> u32 {
        let sequence =
            router.begin(|sequence| ReplyCollector::new(mode, FAMILY, sequence, PORT, "usip op"));
        router.mark_sent(sequence);
        sequence
    }

    fn ack(sequence: u32) -> Vec<u8> {
        let request = NlmsgHeader {
            length: 20,
            kind: FAMILY,
            flags: NLM_F_REQUEST | NLM_F_ACK,
            sequence,
            port_id: 0,
        };
        nlmsg(
            NLMSG_ERROR,
            NLM_F_CAPPED,
            sequence,
            PORT,
            &capped_error(0, request, &[]),
        )
    }

    /// A usip event as the kernel unicasts it to a listener's socket: seq 0, port 0.
    fn event(command: u8, path: &str) -> Vec<u8> {
        let mut text = path.as_bytes().to_vec();
        text.push(0);
        nlmsg(FAMILY, 0, 0, 0, &genl(command, 1, &attr(13, &text)))
    }

    fn paths(batch: &NotificationBatch) -> Vec<String> {
        batch
            .iter()
            .map(|notification| match notification {
                Notification::Message {
                    attributes: bytes,
                    group,
                    ..
                } => {
                    let attribute = attributes(bytes).next().unwrap().unwrap();
                    format!("{}@{group}", attribute.as_str().unwrap())
                }
                Notification::Overrun { lost } => format!("overrun {lost:?}"),
            })
            .collect()
    }

    #[test]
    fn the_reply_goes_to_the_request_and_an_unsolicited_event_to_the_queue() {
        let mut router = router();
        let sequence = start(&mut router, ReplyMode::Do);
        assert_ne!(sequence, 0);
        let mut datagram = nlmsg(FAMILY, 0, sequence, PORT, &genl(6, 1, &attr(1, b"x\0")));
        datagram.extend(ack(sequence));
        router.route(&event(7, "/mnt/a"), 0, 0);
        assert!(!router.has_outcome(sequence));
        router.route(&datagram, 0, 0);
        let batch = router.take_outcome(sequence).unwrap().unwrap();
        assert_eq!(batch.iter().map(|m| m.command).collect::<Vec<_>>(), [6]);
        assert_eq!(paths(&router.take_notifications()), ["/mnt/a@0"]);
        assert!(!router.has_notifications());
    }

    #[test]
    fn notifications_are_received_with_no_request_pending() {
        let mut router = router();
        router.route(&event(7, "/a"), 0, 0);
        router.route(&event(8, "/b"), 0, MTAB_GROUP);
        let batch = router.take_notifications();
        let all: Vec<_> = batch.iter().collect();
        assert!(matches!(
            all[0],
            Notification::Message {
                family_id: FAMILY,
                command: 7,
                version: 1,
                group: 0,
                ..
            }
        ));
        assert!(matches!(
            all[1],
            Notification::Message {
                command: 8,
                group: MTAB_GROUP,
                ..
            }
        ));
    }

    #[test]
    fn a_multicast_message_is_a_notification_even_with_the_pending_requests_sequence() {
        let mut router = router();
        let sequence = start(&mut router, ReplyMode::Do);
        // Some families copy the triggering request's sequence and port into the notification.
        let multicast = nlmsg(FAMILY, 0, sequence, PORT, &genl(7, 1, &attr(13, b"/m\0")));
        router.route(&multicast, 0, MTAB_GROUP);
        assert!(!router.has_outcome(sequence));
        assert_eq!(
            paths(&router.take_notifications()),
            [format!("/m@{MTAB_GROUP}")]
        );
        router.route(&ack(sequence), 0, 0);
        assert!(router.take_outcome(sequence).unwrap().unwrap().is_empty());
    }

    #[test]
    fn a_dump_and_events_interleaved_in_one_datagram_are_split() {
        let mut router = router();
        let sequence = start(&mut router, ReplyMode::Dump);
        let mut datagram = nlmsg(FAMILY, NLM_F_MULTI, sequence, PORT, &genl(4, 1, &[]));
        datagram.extend(event(7, "/between"));
        datagram.extend(nlmsg(FAMILY, NLM_F_MULTI, sequence, PORT, &genl(4, 1, &[])));
        datagram.extend(nlmsg(
            NLMSG_DONE,
            NLM_F_MULTI,
            sequence,
            PORT,
            &0i32.to_ne_bytes(),
        ));
        router.route(&datagram, 0, 0);
        assert_eq!(router.take_outcome(sequence).unwrap().unwrap().len(), 2);
        assert_eq!(paths(&router.take_notifications()), ["/between@0"]);
    }

    #[test]
    fn stale_replies_and_other_processes_messages_are_dropped() {
        let mut router = router();
        let old = start(&mut router, ReplyMode::Do);
        router.abandon(old);
        let current = start(&mut router, ReplyMode::Do);
        // The late reply of the abandoned request, then a reply for another port.
        router.route(&nlmsg(FAMILY, 0, old, PORT, &genl(6, 1, &[])), 0, 0);
        router.route(&ack(old), 0, 0);
        router.route(&nlmsg(FAMILY, 0, current, PORT + 1, &genl(6, 1, &[])), 0, 0);
        // Another process (port 999) unicasting or multicasting forged events.
        router.route(&event(7, "/forged"), 999, 0);
        router.route(&event(7, "/forged"), 999, MTAB_GROUP);
        assert!(!router.has_outcome(current));
        assert!(!router.has_notifications());
        router.route(&ack(current), 0, 0);
        assert!(router.take_outcome(current).unwrap().unwrap().is_empty());
    }

    #[test]
    fn control_messages_and_headerless_messages_are_not_notifications() {
        let mut router = router();
        router.route(&nlmsg(NLMSG_NOOP, 0, 0, 0, &[]), 0, 0);
        router.route(
            &nlmsg(NLMSG_DONE, NLM_F_MULTI, 0, 0, &0i32.to_ne_bytes()),
            0,
            0,
        );
        router.route(&nlmsg(FAMILY, 0, 0, 0, &[7, 1]), 0, MTAB_GROUP);
        assert!(!router.has_notifications());
    }

    #[test]
    fn a_kernel_overrun_marks_the_queue_and_fails_the_request_that_was_sent() {
        let mut router = router();
        router.route(&event(7, "/before"), 0, 0);
        let sequence = start(&mut router, ReplyMode::Do);
        router.kernel_overrun();
        let error = router.take_outcome(sequence).unwrap().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Overrun);
        assert_eq!(error.code(), "ENOBUFS");
        assert!(error.to_string().starts_with("usip op: "), "{error}");
        // The reply, if it still comes, is stale.
        router.route(&ack(sequence), 0, 0);
        router.route(&event(7, "/after"), 0, 0);
        assert_eq!(
            paths(&router.take_notifications()),
            ["/before@0", "overrun None", "/after@0"]
        );
    }

    #[test]
    fn an_overrun_before_the_request_is_sent_does_not_fail_it() {
        let mut router = router();
        let sequence =
            router.begin(|s| ReplyCollector::new(ReplyMode::Do, FAMILY, s, PORT, "usip op"));
        router.kernel_overrun();
        assert!(!router.has_outcome(sequence));
        router.mark_sent(sequence);
        router.route(&ack(sequence), 0, 0);
        assert!(router.take_outcome(sequence).unwrap().is_ok());
    }

    #[test]
    fn a_full_queue_drops_notifications_but_never_a_reply() {
        let mut router = Router::new(2);
        let sequence = start(&mut router, ReplyMode::Do);
        for index in 0..5 {
            router.route(&event(7, &format!("/{index}")), 0, 0);
        }
        assert!(router.notifications_full());
        router.route(&ack(sequence), 0, 0);
        assert!(router.take_outcome(sequence).unwrap().is_ok());
        assert_eq!(
            paths(&router.take_notifications()),
            ["/0@0", "/1@0", "overrun Some(3)"]
        );
    }

    #[test]
    fn broken_framing_in_a_unicast_fails_the_sent_request() {
        let mut router = router();
        let sequence = start(&mut router, ReplyMode::Do);
        let mut datagram = ack(sequence);
        datagram[0..4].copy_from_slice(&1000u32.to_ne_bytes());
        router.route(&datagram, 0, 0);
        let error = router.take_outcome(sequence).unwrap().unwrap_err();
        assert_eq!(error.code(), "EPROTO");
    }

    #[test]
    fn sequence_numbers_skip_zero_when_they_wrap() {
        let mut router = router();
        router.next_sequence = u32::MAX;
        let collector = |s| ReplyCollector::new(ReplyMode::Do, FAMILY, s, PORT, "op");
        assert_eq!(router.begin(collector), u32::MAX);
        assert_eq!(router.begin(collector), 1);
    }
}
