//! Notifications: the messages a socket receives that are not replies to its own requests
//! (multicast messages of joined groups, unsolicited unicasts from the kernel), queued in
//! process until the consumer takes them, and the `overrun` marks that say where messages were
//! lost. Pure data structures; `router.rs` fills the queue, `client.rs` drains it.

use std::collections::VecDeque;

/// How many messages a socket's notification queue holds by default before it drops (and
/// counts) further ones.
pub const DEFAULT_NOTIFICATION_QUEUE_LIMIT: usize = 4096;

/// A batch stops taking messages once its payload is this big, which keeps every offset in it
/// far from the u32 limit of its index (one netlink message is at most 4 GiB by its header,
/// and in practice at most the 64 KiB-ish datagrams generic netlink sends).
pub const BATCH_PAYLOAD_BYTES: usize = 32 << 20;

/// One queued generic netlink message.
#[derive(Debug, Clone, PartialEq, Eq)]
struct QueuedMessage {
    family_id: u16,
    command: u8,
    version: u8,
    group: u32,
    attributes: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Message(QueuedMessage),
    /// Messages were lost here: `Some(n)` when this process dropped n of them (queue full),
    /// `None` when the kernel reported that it dropped some (ENOBUFS; the count is unknown).
    Overrun(Option<u64>),
}

/// A bounded FIFO of notifications. When `limit` messages wait, further messages are dropped
/// and counted in an overrun mark placed after the last queued message, so the consumer learns
/// of the gap where it happened. Marks do not count toward the limit; two marks are never
/// adjacent (they merge), so there are at most as many marks as messages, plus one.
#[derive(Debug, Clone)]
pub struct NotificationQueue {
    items: VecDeque<Item>,
    messages: usize,
    limit: usize,
}

impl NotificationQueue {
    /// A queue that holds up to `limit` messages (at least 1).
    pub fn new(limit: usize) -> Self {
        Self {
            items: VecDeque::new(),
            messages: 0,
            limit: limit.max(1),
        }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// True when nothing (neither a message nor an overrun mark) waits.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// True when `limit` messages wait: the next message would be dropped.
    pub fn is_full(&self) -> bool {
        self.messages >= self.limit
    }

    /// Messages waiting (overrun marks not counted).
    pub fn len(&self) -> usize {
        self.messages
    }

    /// Queues a message; when the queue is full, drops it and counts it. Returns whether it
    /// was queued.
    pub fn push_message(
        &mut self,
        family_id: u16,
        command: u8,
        version: u8,
        group: u32,
        attributes: &[u8],
    ) -> bool {
        if self.is_full() {
            match self.items.back_mut() {
                Some(Item::Overrun(Some(lost))) => *lost = lost.saturating_add(1),
                // Already a loss of unknown size at this point: it now includes this one.
                Some(Item::Overrun(None)) => {}
                _ => self.items.push_back(Item::Overrun(Some(1))),
            }
            return false;
        }
        self.items.push_back(Item::Message(QueuedMessage {
            family_id,
            command,
            version,
            group,
            attributes: attributes.to_vec(),
        }));
        self.messages += 1;
        true
    }

    /// Records that the kernel dropped messages for this socket (recv failed with ENOBUFS).
    pub fn push_kernel_overrun(&mut self) {
        match self.items.back_mut() {
            Some(Item::Overrun(lost)) => *lost = None,
            _ => self.items.push_back(Item::Overrun(None)),
        }
    }

    /// Takes up to `max` items (at least one if any wait) from the front, in order; a batch
    /// stops early once its payload passes [`BATCH_PAYLOAD_BYTES`].
    pub fn take(&mut self, max: usize) -> NotificationBatch {
        let mut batch = NotificationBatch::default();
        while batch.entries.len() < max.max(1) && batch.payload.len() < BATCH_PAYLOAD_BYTES {
            let Some(item) = self.items.pop_front() else {
                break;
            };
            match item {
                Item::Message(message) => {
                    self.messages -= 1;
                    batch.push_message(message);
                }
                Item::Overrun(lost) => batch.entries.push(NotificationEntry::Overrun { lost }),
            }
        }
        batch
    }

    /// Drops everything (when the socket is closed).
    pub fn clear(&mut self) {
        self.items = VecDeque::new();
        self.messages = 0;
    }
}

/// Where one notification sits in a [`NotificationBatch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotificationEntry {
    Message {
        family_id: u16,
        command: u8,
        version: u8,
        /// The multicast group it arrived on; 0 for a unicast to this socket.
        group: u32,
        /// Start of its attributes (everything after the genlmsghdr) in the batch payload.
        start: u32,
        /// End (exclusive) of its attributes in the batch payload.
        end: u32,
    },
    /// Messages were lost at this point: `Some(n)` dropped by this process because the queue
    /// was full, `None` dropped by the kernel (the socket's receive buffer was full; ENOBUFS).
    Overrun { lost: Option<u64> },
}

/// Notifications taken from the queue together: every message's attributes back to back in one
/// buffer, so a burst of thousands crosses into JavaScript as one buffer and one index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotificationBatch {
    payload: Vec<u8>,
    entries: Vec<NotificationEntry>,
}

/// One notification borrowed from a [`NotificationBatch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notification<'a> {
    Message {
        family_id: u16,
        command: u8,
        version: u8,
        group: u32,
        attributes: &'a [u8],
    },
    Overrun {
        lost: Option<u64>,
    },
}

impl NotificationBatch {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = Notification<'_>> + '_ {
        self.entries.iter().map(|entry| match *entry {
            NotificationEntry::Message {
                family_id,
                command,
                version,
                group,
                start,
                end,
            } => Notification::Message {
                family_id,
                command,
                version,
                group,
                attributes: &self.payload[start as usize..end as usize],
            },
            NotificationEntry::Overrun { lost } => Notification::Overrun { lost },
        })
    }

    /// The shared payload buffer and the entries that index it.
    pub fn into_parts(self) -> (Vec<u8>, Vec<NotificationEntry>) {
        (self.payload, self.entries)
    }

    fn push_message(&mut self, message: QueuedMessage) {
        // Below BATCH_PAYLOAD_BYTES before this message, and a message is far smaller than
        // 4 GiB: the offsets fit (saturating is only a guard against the impossible).
        let start = u32::try_from(self.payload.len()).unwrap_or(u32::MAX);
        self.payload.extend_from_slice(&message.attributes);
        let end = u32::try_from(self.payload.len()).unwrap_or(u32::MAX);
        self.entries.push(NotificationEntry::Message {
            family_id: message.family_id,
            command: message.command,
            version: message.version,
            group: message.group,
            start,
            end,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn describe(batch: &NotificationBatch) -> Vec<String> {
        batch
            .iter()
            .map(|notification| match notification {
                Notification::Message {
                    command,
                    attributes,
                    ..
                } => format!("{command}:{}", String::from_utf8_lossy(attributes)),
                Notification::Overrun { lost: Some(lost) } => format!("lost {lost}"),
                Notification::Overrun { lost: None } => "lost ?".to_owned(),
            })
            .collect()
    }

    #[test]
    fn messages_come_out_in_order_with_their_fields() {
        let mut queue = NotificationQueue::new(8);
        assert!(queue.push_message(0x1d, 7, 1, 3, b"a"));
        assert!(queue.push_message(0x1d, 8, 1, 0, b"bb"));
        assert_eq!(queue.len(), 2);
        let batch = queue.take(usize::MAX);
        assert!(queue.is_empty());
        let all: Vec<_> = batch.iter().collect();
        assert_eq!(
            all,
            [
                Notification::Message {
                    family_id: 0x1d,
                    command: 7,
                    version: 1,
                    group: 3,
                    attributes: b"a"
                },
                Notification::Message {
                    family_id: 0x1d,
                    command: 8,
                    version: 1,
                    group: 0,
                    attributes: b"bb"
                },
            ]
        );
        let (payload, entries) = batch.into_parts();
        assert_eq!(payload, b"abb");
        assert_eq!(entries.len(), 2);
    }

    #[test]
    fn a_full_queue_drops_and_counts_then_marks_the_gap_after_the_last_queued_message() {
        let mut queue = NotificationQueue::new(2);
        assert!(queue.push_message(0x1d, 1, 1, 0, b"1"));
        assert!(queue.push_message(0x1d, 1, 1, 0, b"2"));
        assert!(queue.is_full());
        assert!(!queue.push_message(0x1d, 1, 1, 0, b"3"));
        assert!(!queue.push_message(0x1d, 1, 1, 0, b"4"));
        assert_eq!(queue.len(), 2, "drops are not stored");
        // The consumer takes one: there is room again, and the next message follows the mark.
        assert_eq!(describe(&queue.take(1)), ["1:1"]);
        assert!(queue.push_message(0x1d, 1, 1, 0, b"5"));
        assert_eq!(describe(&queue.take(10)), ["1:2", "lost 2", "1:5"]);
    }

    #[test]
    fn a_kernel_overrun_is_a_mark_of_unknown_size_that_absorbs_adjacent_losses() {
        let mut queue = NotificationQueue::new(1);
        queue.push_kernel_overrun();
        queue.push_kernel_overrun();
        assert!(queue.push_message(0x1d, 1, 1, 0, b"a"));
        assert!(!queue.push_message(0x1d, 1, 1, 0, b"b"));
        queue.push_kernel_overrun();
        assert!(!queue.push_message(0x1d, 1, 1, 0, b"c"));
        assert_eq!(describe(&queue.take(10)), ["lost ?", "1:a", "lost ?"]);
    }

    #[test]
    fn marks_alone_are_taken_and_the_queue_never_grows_past_its_limit() {
        let mut queue = NotificationQueue::new(3);
        for index in 0..10_000u32 {
            queue.push_message(0x1d, 1, 1, 0, &index.to_ne_bytes());
        }
        assert_eq!(queue.len(), 3);
        let batch = queue.take(usize::MAX);
        assert_eq!(batch.len(), 4);
        assert_eq!(
            batch.iter().last(),
            Some(Notification::Overrun { lost: Some(9_997) })
        );
        assert!(queue.take(usize::MAX).is_empty());
    }

    #[test]
    fn clear_empties_and_a_zero_limit_means_one() {
        let mut queue = NotificationQueue::new(0);
        assert_eq!(queue.limit(), 1);
        queue.push_message(0x1d, 1, 1, 0, b"x");
        queue.push_kernel_overrun();
        queue.clear();
        assert!(queue.is_empty());
        assert!(!queue.is_full());
    }
}
