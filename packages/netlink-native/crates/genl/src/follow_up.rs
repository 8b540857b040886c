//! Follow-up requests: for each notification of one kind (a family's event command), one `do`
//! request keyed by an attribute the event carries, e.g. a usip mtab event and the `mount-get`
//! of its mount. Planning is pure (tests feed crafted batches); the binding sends the planned
//! requests with `GenlSocket::request_each` and hands the notifications and the replies to
//! JavaScript together, so a wake-up costs one call however many events it brought.

use crate::client::Request;
use crate::message::{AttributeWriter, attributes};
use crate::notification::{Notification, NotificationBatch};

/// Which notifications get a request, and how it is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowUp {
    /// The family and command of the notifications followed up (unicast or multicast).
    pub family_id: u16,
    pub event_command: u8,
    /// The request: the same family, this command and version.
    pub request_command: u8,
    pub version: u8,
    /// Event attribute -> request attribute, in order of preference: the first the event
    /// carries is copied, payload as is, into the request, which then holds that one attribute.
    /// An event with none of them gets no request.
    pub keys: Vec<(u16, u16)>,
    /// An event whose u32 attribute `skip.0` holds one of `skip.1` gets no request.
    pub skip: Option<(u16, Vec<u32>)>,
    /// Only events whose u64 attribute `minimum.0` is at least `minimum.1` get a request (e.g.
    /// a sequence number the reader is past); events without it get none.
    pub minimum: Option<(u16, u64)>,
    /// Names the requests in errors.
    pub label: String,
}

/// The requests for one batch, and which notification each answers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// One request per distinct key: events of one batch with the same key share it (the
    /// latest state serves all of them).
    pub requests: Vec<Request>,
    /// Per notification of the batch: the index of its request in `requests`, if it has one.
    pub index: Vec<Option<u32>>,
}

/// Plans the follow-up requests of `batch`. When the batch would need more than `limit`
/// requests, none are made (the caller reads what it needs in another way, e.g. one dump), and
/// every index is `None`; likewise for a batch with an overrun mark (messages were lost: its
/// reader has to start afresh, and answers to its events would be thrown away). A malformed
/// event (attributes that cannot be walked) gets no request.
pub fn plan(batch: &NotificationBatch, spec: &FollowUp, limit: usize) -> Plan {
    let mut plan = Plan {
        requests: Vec::new(),
        index: Vec::with_capacity(batch.len()),
    };
    // Keys seen in this batch: (request attribute, payload) -> request index. Batches are at
    // most a few thousand events, and most name distinct mounts: a linear map would be O(n^2).
    let mut seen: std::collections::HashMap<(u16, Vec<u8>), u32> = std::collections::HashMap::new();
    if batch
        .iter()
        .any(|notification| matches!(notification, Notification::Overrun { .. }))
    {
        plan.index.resize(batch.len(), None);
        return plan;
    }
    for notification in batch.iter() {
        let key = match notification {
            Notification::Message {
                family_id,
                command,
                attributes: bytes,
                ..
            } if family_id == spec.family_id && command == spec.event_command => {
                key_of(bytes, spec)
            }
            _ => None,
        };
        let Some((kind, payload)) = key else {
            plan.index.push(None);
            continue;
        };
        let next = u32::try_from(plan.requests.len()).unwrap_or(u32::MAX);
        let index = *seen.entry((kind, payload.clone())).or_insert(next);
        if index == next {
            let mut writer = AttributeWriter::new();
            // A payload that does not fit an attribute cannot be a key: no request.
            if writer.put(kind, &payload).is_err() {
                seen.remove(&(kind, payload));
                plan.index.push(None);
                continue;
            }
            plan.requests.push(Request {
                family_id: spec.family_id,
                command: spec.request_command,
                version: spec.version,
                payload: writer.into_bytes(),
                label: Some(spec.label.clone()),
            });
        }
        plan.index.push(Some(index));
    }
    if plan.requests.len() > limit {
        plan.requests.clear();
        plan.index.iter_mut().for_each(|index| *index = None);
    }
    plan
}

/// The request attribute and payload for one event, or None (skipped, no key, malformed).
fn key_of(bytes: &[u8], spec: &FollowUp) -> Option<(u16, Vec<u8>)> {
    let mut found: Vec<Option<&[u8]>> = vec![None; spec.keys.len()];
    let mut reached = spec.minimum.is_none();
    for attribute in attributes(bytes) {
        let attribute = attribute.ok()?;
        if let Some((kind, minimum)) = spec.minimum
            && attribute.kind == kind
        {
            reached = attribute.as_u64().ok()? >= minimum;
        }
        if let Some((skip, values)) = &spec.skip
            && attribute.kind == *skip
        {
            let value = attribute.as_u32().ok()?;
            if values.contains(&value) {
                return None;
            }
        }
        if let Some(slot) = spec
            .keys
            .iter()
            .position(|(event, _)| *event == attribute.kind)
        {
            found[slot] = Some(attribute.payload);
        }
    }
    if !reached {
        return None;
    }
    spec.keys
        .iter()
        .zip(found)
        .find_map(|((_, request), payload)| payload.map(|payload| (*request, payload.to_vec())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::fixtures::attr;
    use crate::notification::NotificationQueue;

    const FAMILY: u16 = 0x1d;
    const EVENT: u8 = 7;
    const GET: u8 = 9;
    const ACTION: u16 = 2;
    const MOUNT_ID: u16 = 4;
    const UNIQUE_ID: u16 = 6;
    const GET_MOUNT_ID: u16 = 1;
    const GET_UNIQUE_ID: u16 = 3;
    const UMOUNT: u32 = 2;

    fn spec() -> FollowUp {
        FollowUp {
            family_id: FAMILY,
            event_command: EVENT,
            request_command: GET,
            version: 1,
            keys: vec![(UNIQUE_ID, GET_UNIQUE_ID), (MOUNT_ID, GET_MOUNT_ID)],
            skip: Some((ACTION, vec![UMOUNT])),
            minimum: None,
            label: "usip mount-get".to_owned(),
        }
    }

    fn event(action: u32, mount_id: u64, unique_id: Option<u64>) -> Vec<u8> {
        let mut bytes = attr(ACTION, &action.to_ne_bytes());
        bytes.extend(attr(MOUNT_ID, &mount_id.to_ne_bytes()));
        if let Some(unique) = unique_id {
            bytes.extend(attr(UNIQUE_ID, &unique.to_ne_bytes()));
        }
        bytes
    }

    fn batch(items: &[(u8, Vec<u8>)]) -> NotificationBatch {
        let mut queue = NotificationQueue::new(1024);
        for (command, bytes) in items {
            queue.push_message(FAMILY, *command, 1, 0, bytes);
        }
        queue.take(usize::MAX)
    }

    fn keys(plan: &Plan) -> Vec<(u16, u64)> {
        plan.requests
            .iter()
            .map(|request| {
                assert_eq!(
                    (request.family_id, request.command, request.version),
                    (FAMILY, GET, 1)
                );
                let attribute = attributes(&request.payload).next().unwrap().unwrap();
                (attribute.kind, attribute.as_u64().unwrap())
            })
            .collect()
    }

    #[test]
    fn one_request_per_distinct_key_preferring_the_first_key_and_skipping_umounts() {
        let plan = plan(
            &batch(&[
                (EVENT, event(1, 10, Some(1000))),
                (EVENT, event(1, 11, None)),
                (EVENT, event(UMOUNT, 12, Some(1002))),
                (EVENT, event(4, 10, Some(1000))),
                (3, event(1, 13, Some(1003))),
            ]),
            &spec(),
            usize::MAX,
        );
        assert_eq!(keys(&plan), [(GET_UNIQUE_ID, 1000), (GET_MOUNT_ID, 11)]);
        assert_eq!(plan.index, [Some(0), Some(1), None, Some(0), None]);
    }

    #[test]
    fn events_below_the_minimum_or_without_it_get_none() {
        const SEQ: u16 = 8;
        let with_seq = |mount_id: u64, seq: Option<u64>| {
            let mut bytes = event(1, mount_id, None);
            if let Some(seq) = seq {
                bytes.extend(attr(SEQ, &seq.to_ne_bytes()));
            }
            (EVENT, bytes)
        };
        let spec = FollowUp {
            minimum: Some((SEQ, 10)),
            ..spec()
        };
        let plan = plan(
            &batch(&[
                with_seq(1, Some(9)),
                with_seq(2, Some(10)),
                with_seq(3, None),
                with_seq(4, Some(11)),
            ]),
            &spec,
            usize::MAX,
        );
        assert_eq!(keys(&plan), [(GET_MOUNT_ID, 2), (GET_MOUNT_ID, 4)]);
        assert_eq!(plan.index, [None, Some(0), None, Some(1)]);
    }

    #[test]
    fn a_batch_past_the_limit_gets_no_requests() {
        let items: Vec<_> = (0..5).map(|i| (EVENT, event(1, i, None))).collect();
        let over = plan(&batch(&items), &spec(), 4);
        assert!(over.requests.is_empty());
        assert_eq!(over.index, [None; 5]);
        let within = plan(&batch(&items), &spec(), 5);
        assert_eq!(within.requests.len(), 5);
    }

    #[test]
    fn a_batch_with_an_overrun_gets_no_requests() {
        let mut queue = NotificationQueue::new(8);
        queue.push_message(FAMILY, EVENT, 1, 0, &event(1, 1, Some(5)));
        queue.push_kernel_overrun();
        queue.push_message(FAMILY, EVENT, 1, 0, &event(1, 2, Some(6)));
        let plan = plan(&queue.take(usize::MAX), &spec(), usize::MAX);
        assert!(plan.requests.is_empty());
        assert_eq!(plan.index, [None; 3]);
    }

    #[test]
    fn other_families_and_malformed_events_get_none() {
        let mut queue = NotificationQueue::new(8);
        queue.push_message(FAMILY, EVENT, 1, 0, &event(1, 1, Some(5)));
        queue.push_message(FAMILY + 1, EVENT, 1, 0, &event(1, 2, Some(6)));
        // A header that claims more bytes than there are.
        queue.push_message(FAMILY, EVENT, 1, 0, &[200, 0, 6, 0, 1, 2, 3, 4]);
        // A skip attribute of the wrong size: the event cannot be judged.
        queue.push_message(FAMILY, EVENT, 1, 0, &attr(ACTION, &[1, 0]));
        let plan = plan(&queue.take(usize::MAX), &spec(), usize::MAX);
        assert_eq!(keys(&plan), [(GET_UNIQUE_ID, 5)]);
        assert_eq!(plan.index, [Some(0), None, None, None]);
    }
}
