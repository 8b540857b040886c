//! One request/reply exchange as a state machine fed with received datagrams: which messages
//! belong to it, when it is complete, and how it failed. It does no I/O, so tests drive it with
//! byte fixtures.

use crate::error::NetlinkError;
use crate::message::{
    NLM_F_DUMP_INTR, NLMSG_DONE, NLMSG_ERROR, NLMSG_MIN_TYPE, NLMSG_NOOP, NLMSG_OVERRUN,
    NetlinkMessage, NlmsgHeader, WireError, messages, parse_done_payload, parse_error_payload,
    split_genl_payload,
};

/// Whether a request is a `do` (one operation, ended by the kernel's ack) or a dump (many
/// `NLM_F_MULTI` messages, ended by `NLMSG_DONE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyMode {
    Do,
    Dump,
}

/// Where one message's bytes sit in a [`MessageBatch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchEntry {
    pub command: u8,
    pub version: u8,
    /// Start of the message's attributes in the batch payload.
    pub start: u32,
    /// End (exclusive) of the message's attributes in the batch payload.
    pub end: u32,
}

/// The generic netlink messages of one reply, stored back to back in one buffer so a dump of
/// thousands of messages costs one allocation to hand over, not one per message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageBatch {
    payload: Vec<u8>,
    entries: Vec<BatchEntry>,
}

/// One generic netlink message borrowed from a [`MessageBatch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenlMessage<'a> {
    pub command: u8,
    pub version: u8,
    /// Everything after the `genlmsghdr`: the family header (if any) and the attributes.
    pub attributes: &'a [u8],
}

impl MessageBatch {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = GenlMessage<'_>> + '_ {
        self.entries.iter().map(|entry| GenlMessage {
            command: entry.command,
            version: entry.version,
            attributes: &self.payload[entry.start as usize..entry.end as usize],
        })
    }

    /// The shared payload buffer and where each message sits in it.
    pub fn into_parts(self) -> (Vec<u8>, Vec<BatchEntry>) {
        (self.payload, self.entries)
    }

    fn push(&mut self, command: u8, version: u8, attributes: &[u8]) -> Result<(), WireError> {
        let too_big = || WireError("a reply larger than 4 GiB cannot be collected".to_owned());
        let start = u32::try_from(self.payload.len()).map_err(|_| too_big())?;
        let end = u32::try_from(self.payload.len() + attributes.len()).map_err(|_| too_big())?;
        self.payload.extend_from_slice(attributes);
        self.entries.push(BatchEntry {
            command,
            version,
            start,
            end,
        });
        Ok(())
    }
}

/// Whether an exchange needs more datagrams.
#[derive(Debug, PartialEq, Eq)]
pub enum Progress {
    Incomplete,
    Complete(MessageBatch),
}

/// Collects the replies to one request, identified by its sequence number and our port id.
#[derive(Debug)]
pub struct ReplyCollector {
    mode: ReplyMode,
    family_id: u16,
    sequence: u32,
    port_id: u32,
    operation: String,
    batch: MessageBatch,
    interrupted: bool,
    /// A malformed message inside the exchange: kept until its end, so the socket is left with
    /// no unread part of this exchange (a dump left running would make the next dump EBUSY).
    deferred_error: Option<NetlinkError>,
}

impl ReplyCollector {
    pub fn new(
        mode: ReplyMode,
        family_id: u16,
        sequence: u32,
        port_id: u32,
        operation: &str,
    ) -> Self {
        Self {
            mode,
            family_id,
            sequence,
            port_id,
            operation: operation.to_owned(),
            batch: MessageBatch::default(),
            interrupted: false,
            deferred_error: None,
        }
    }

    /// Consumes one datagram received from the kernel. Messages of other exchanges (a stale
    /// sequence number or another port id) are skipped.
    pub fn feed(&mut self, datagram: &[u8]) -> Result<Progress, NetlinkError> {
        for message in messages(datagram) {
            let message = message.map_err(|e| NetlinkError::protocol(&self.operation, e))?;
            if !self.belongs(&message.header) {
                continue;
            }
            if let Progress::Complete(batch) = self.accept(message)? {
                return Ok(Progress::Complete(batch));
            }
        }
        Ok(Progress::Incomplete)
    }

    /// Whether a message is part of this exchange: our sequence number and port id.
    pub fn belongs(&self, header: &NlmsgHeader) -> bool {
        header.sequence == self.sequence && header.port_id == self.port_id
    }

    /// Consumes one message of this exchange (see [`ReplyCollector::belongs`]).
    pub fn accept(&mut self, message: NetlinkMessage<'_>) -> Result<Progress, NetlinkError> {
        match self.take(message) {
            Some(end) => end.map(Progress::Complete),
            None => Ok(Progress::Incomplete),
        }
    }

    /// What is being done, for error messages.
    pub fn operation(&self) -> &str {
        &self.operation
    }

    /// Handles one message of this exchange; `Some` when it ended the exchange, successfully or
    /// not.
    fn take(&mut self, message: NetlinkMessage<'_>) -> Option<Result<MessageBatch, NetlinkError>> {
        let header = message.header;
        let protocol = |e: WireError| NetlinkError::protocol(&self.operation, e);
        match header.kind {
            NLMSG_NOOP => None,
            NLMSG_ERROR => Some(match parse_error_payload(header.flags, message.payload) {
                Err(e) => Err(protocol(e)),
                Ok(status) if status.errno != 0 => {
                    Err(NetlinkError::kernel(&self.operation, status))
                }
                // The ack ends a `do`. A dump is not acked, but if one were, it would end it.
                Ok(_) => self.finish(),
            }),
            // A `do` answered with a multi-part reply: the ack still follows its DONE.
            NLMSG_DONE if self.mode == ReplyMode::Do => None,
            NLMSG_DONE => Some(match parse_done_payload(header.flags, message.payload) {
                Err(e) => Err(protocol(e)),
                Ok(status) if status.errno != 0 => {
                    Err(NetlinkError::kernel(&self.operation, status))
                }
                Ok(_) => {
                    // The kernel also marks the DONE of an inconsistent dump, even an empty one.
                    if header.flags & NLM_F_DUMP_INTR != 0 {
                        self.interrupted = true;
                    }
                    self.finish()
                }
            }),
            NLMSG_OVERRUN => Some(Err(protocol(WireError(
                "the kernel reported NLMSG_OVERRUN: data was lost".to_owned(),
            )))),
            // Other reserved control message types carry nothing for us.
            kind if kind < NLMSG_MIN_TYPE => None,
            kind => {
                if header.flags & NLM_F_DUMP_INTR != 0 && !self.interrupted {
                    // The dump fails at its end whatever follows: nothing more is kept (a busy
                    // namespace interrupts dump after dump of thousands of messages).
                    self.interrupted = true;
                    self.batch = MessageBatch::default();
                }
                let stored = if kind != self.family_id {
                    Err(WireError(format!(
                        "reply of message type {kind:#x} to a request to family {:#x}",
                        self.family_id
                    )))
                } else if self.interrupted {
                    Ok(())
                } else {
                    split_genl_payload(message.payload).and_then(|(genl, attributes)| {
                        self.batch.push(genl.command, genl.version, attributes)
                    })
                };
                if let Err(e) = stored {
                    let error = protocol(e);
                    self.deferred_error.get_or_insert(error);
                }
                None
            }
        }
    }

    fn finish(&mut self) -> Result<MessageBatch, NetlinkError> {
        if let Some(error) = self.deferred_error.take() {
            return Err(error);
        }
        if self.interrupted {
            return Err(NetlinkError::dump_interrupted(&self.operation));
        }
        Ok(std::mem::take(&mut self.batch))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::message::fixtures::*;
    use crate::message::*;

    const FAMILY: u16 = 0x1d;
    const PORT: u32 = 4242;
    const SEQ: u32 = 7;

    fn request_header() -> NlmsgHeader {
        NlmsgHeader {
            length: 20,
            kind: FAMILY,
            flags: NLM_F_REQUEST | NLM_F_ACK,
            sequence: SEQ,
            port_id: 0,
        }
    }

    fn ack(sequence: u32) -> Vec<u8> {
        nlmsg(
            NLMSG_ERROR,
            NLM_F_CAPPED,
            sequence,
            PORT,
            &capped_error(0, request_header(), &[]),
        )
    }

    fn reply(flags: u16, command: u8, attributes: &[u8]) -> Vec<u8> {
        nlmsg(FAMILY, flags, SEQ, PORT, &genl(command, 1, attributes))
    }

    fn done(errno: i32, tlvs: &[u8]) -> Vec<u8> {
        let mut payload = (-errno).to_ne_bytes().to_vec();
        payload.extend_from_slice(tlvs);
        let flags = if tlvs.is_empty() {
            NLM_F_MULTI
        } else {
            NLM_F_MULTI | NLM_F_ACK_TLVS
        };
        nlmsg(NLMSG_DONE, flags, SEQ, PORT, &payload)
    }

    fn collect(mode: ReplyMode, datagrams: &[Vec<u8>]) -> Result<MessageBatch, NetlinkError> {
        let mut collector = ReplyCollector::new(mode, FAMILY, SEQ, PORT, "usip test");
        for (index, datagram) in datagrams.iter().enumerate() {
            match collector.feed(datagram)? {
                Progress::Complete(batch) => {
                    assert_eq!(
                        index,
                        datagrams.len() - 1,
                        "completed before the last datagram"
                    );
                    return Ok(batch);
                }
                Progress::Incomplete => {}
            }
        }
        panic!("the exchange did not complete");
    }

    #[test]
    fn a_do_returns_its_reply_when_acked() {
        let mut datagram = reply(0, 1, &attr(1, &5u32.to_ne_bytes()));
        datagram.extend(ack(SEQ));
        let batch = collect(ReplyMode::Do, &[datagram]).unwrap();
        let replies: Vec<_> = batch.iter().collect();
        assert_eq!(replies.len(), 1);
        assert_eq!(replies[0].command, 1);
        assert_eq!(replies[0].version, 1);
        assert_eq!(
            replies[0].attributes,
            attr(1, &5u32.to_ne_bytes()).as_slice()
        );
    }

    #[test]
    fn a_do_that_only_acks_returns_no_message() {
        let batch = collect(ReplyMode::Do, &[ack(SEQ)]).unwrap();
        assert!(batch.is_empty());
    }

    #[test]
    fn a_do_error_carries_errno_and_extack() {
        let mut tlvs = attr(NLMSGERR_ATTR_MSG, b"cookie attribute has the wrong size\0");
        tlvs.extend(attr(NLMSGERR_ATTR_OFFS, &20u32.to_ne_bytes()));
        let error_message = nlmsg(
            NLMSG_ERROR,
            NLM_F_CAPPED | NLM_F_ACK_TLVS,
            SEQ,
            PORT,
            &capped_error(libc::EINVAL, request_header(), &tlvs),
        );
        let error = collect(ReplyMode::Do, &[error_message]).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Kernel);
        assert_eq!(error.errno(), libc::EINVAL);
        assert_eq!(error.ext_ack().offset, Some(20));
        assert_eq!(
            error.to_string(),
            "usip test: Invalid argument (EINVAL): cookie attribute has the wrong size"
        );
    }

    #[test]
    fn stale_and_foreign_messages_are_skipped() {
        let mut datagram = nlmsg(FAMILY, 0, SEQ - 1, PORT, &genl(9, 1, &[]));
        datagram.extend(ack(SEQ - 1));
        datagram.extend(nlmsg(FAMILY, 0, SEQ, PORT + 1, &genl(9, 1, &[])));
        datagram.extend(reply(0, 2, &[]));
        datagram.extend(ack(SEQ));
        let batch = collect(ReplyMode::Do, &[datagram]).unwrap();
        let commands: Vec<u8> = batch.iter().map(|m| m.command).collect();
        assert_eq!(commands, vec![2]);
    }

    #[test]
    fn a_dump_collects_multipart_messages_across_datagrams_until_done() {
        let mut first = reply(NLM_F_MULTI, 1, &attr(1, b"a\0"));
        first.extend(reply(NLM_F_MULTI, 1, &attr(1, b"bb\0")));
        let mut second = reply(NLM_F_MULTI, 1, &attr(1, b"ccc\0"));
        second.extend(done(0, &[]));
        let batch = collect(ReplyMode::Dump, &[first, second]).unwrap();
        let names: Vec<String> = batch
            .iter()
            .map(|m| {
                let attribute = attributes(m.attributes).next().unwrap().unwrap();
                attribute.as_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(names, ["a", "bb", "ccc"]);
        let (payload, entries) = batch.into_parts();
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[2].end as usize, payload.len());
        assert_eq!(entries[1].start, entries[0].end);
    }

    #[test]
    fn a_dump_that_fails_midway_rejects_instead_of_returning_a_partial_list() {
        let mut datagram = reply(NLM_F_MULTI, 1, &[]);
        datagram.extend(done(
            libc::EMSGSIZE,
            &attr(NLMSGERR_ATTR_MSG, b"entry too big for a message\0"),
        ));
        let error = collect(ReplyMode::Dump, &[datagram]).unwrap_err();
        assert_eq!(error.errno(), libc::EMSGSIZE);
        assert_eq!(
            error.ext_ack().message.as_deref(),
            Some("entry too big for a message")
        );
    }

    #[test]
    fn a_dump_refused_at_start_gets_an_nlmsgerr() {
        let refused = nlmsg(
            NLMSG_ERROR,
            NLM_F_CAPPED,
            SEQ,
            PORT,
            &capped_error(libc::EPERM, request_header(), &[]),
        );
        let error = collect(ReplyMode::Dump, &[refused]).unwrap_err();
        assert_eq!(error.code(), "EPERM");
    }

    #[test]
    fn an_interrupted_dump_is_reported_after_it_is_drained() {
        let mut datagram = reply(NLM_F_MULTI, 1, &[]);
        datagram.extend(reply(NLM_F_MULTI | NLM_F_DUMP_INTR, 1, &[]));
        let mut collector = ReplyCollector::new(ReplyMode::Dump, FAMILY, SEQ, PORT, "usip dump");
        assert_eq!(collector.feed(&datagram).unwrap(), Progress::Incomplete);
        let error = collector.feed(&done(0, &[])).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::DumpInterrupted);
        assert_eq!(error.errno(), libc::EINTR);
        assert_eq!(error.code(), "EINTR");
    }

    #[test]
    fn an_interrupted_flag_on_done_alone_is_reported() {
        let mut done_interrupted = done(0, &[]);
        done_interrupted[6..8].copy_from_slice(&(NLM_F_MULTI | NLM_F_DUMP_INTR).to_ne_bytes());
        let error = collect(ReplyMode::Dump, &[done_interrupted]).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::DumpInterrupted);
    }

    #[test]
    fn a_do_with_a_multipart_reply_waits_for_the_ack_after_done() {
        let mut datagram = reply(NLM_F_MULTI, 4, &[]);
        datagram.extend(done(0, &[]));
        let mut collector = ReplyCollector::new(ReplyMode::Do, FAMILY, SEQ, PORT, "usip do");
        assert_eq!(collector.feed(&datagram).unwrap(), Progress::Incomplete);
        match collector.feed(&ack(SEQ)).unwrap() {
            Progress::Complete(batch) => assert_eq!(batch.len(), 1),
            Progress::Incomplete => panic!("the ack should complete the do"),
        }
    }

    #[test]
    fn a_reply_without_a_genl_header_fails_after_the_exchange_ends() {
        let mut datagram = nlmsg(FAMILY, NLM_F_MULTI, SEQ, PORT, &[1, 2]);
        datagram.extend(reply(NLM_F_MULTI, 1, &[]));
        let mut collector = ReplyCollector::new(ReplyMode::Dump, FAMILY, SEQ, PORT, "usip dump");
        assert_eq!(collector.feed(&datagram).unwrap(), Progress::Incomplete);
        let error = collector.feed(&done(0, &[])).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Protocol);
        assert!(
            error
                .to_string()
                .contains("no room for its 4-byte genlmsghdr")
        );
    }

    #[test]
    fn a_reply_of_another_family_is_a_protocol_error() {
        let mut datagram = nlmsg(FAMILY + 1, 0, SEQ, PORT, &genl(1, 1, &[]));
        datagram.extend(ack(SEQ));
        let error = collect(ReplyMode::Do, &[datagram]).unwrap_err();
        assert!(error.to_string().contains("message type 0x1e"), "{error}");
    }

    #[test]
    fn broken_framing_fails_at_once() {
        let mut datagram = reply(0, 1, &[]);
        datagram[0..4].copy_from_slice(&1000u32.to_ne_bytes());
        let mut collector = ReplyCollector::new(ReplyMode::Do, FAMILY, SEQ, PORT, "usip do");
        let error = collector.feed(&datagram).unwrap_err();
        assert_eq!(error.code(), "EPROTO");
    }
}
