//! The netlink and generic netlink wire format: building requests, walking the messages of a
//! datagram, reading attributes, error replies (`nlmsgerr` with extended ack TLVs) and the
//! `NLMSG_DONE` that ends a dump. Pure functions over byte slices in native byte order, so
//! every branch is testable with byte-level fixtures.

use std::fmt;

/// Size of `struct nlmsghdr`.
pub const NLMSG_HDRLEN: usize = 16;
/// Size of `struct genlmsghdr`.
pub const GENL_HDRLEN: usize = 4;
/// Size of `struct nlattr`.
pub const NLA_HDRLEN: usize = 4;

pub const NLMSG_NOOP: u16 = 1;
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const NLMSG_OVERRUN: u16 = 4;
/// Message types below this are netlink control messages; family ids start here.
pub const NLMSG_MIN_TYPE: u16 = 0x10;

pub const NLM_F_REQUEST: u16 = 0x01;
pub const NLM_F_MULTI: u16 = 0x02;
pub const NLM_F_ACK: u16 = 0x04;
pub const NLM_F_DUMP_INTR: u16 = 0x10;
pub const NLM_F_ROOT: u16 = 0x100;
pub const NLM_F_MATCH: u16 = 0x200;
pub const NLM_F_DUMP: u16 = NLM_F_ROOT | NLM_F_MATCH;
/// On an `NLMSG_ERROR`: the original request was not echoed back (`NETLINK_CAP_ACK`).
pub const NLM_F_CAPPED: u16 = 0x100;
/// On an `NLMSG_ERROR` or `NLMSG_DONE`: extended ack TLVs follow.
pub const NLM_F_ACK_TLVS: u16 = 0x200;

pub const NLA_F_NESTED: u16 = 0x8000;
pub const NLA_F_NET_BYTEORDER: u16 = 0x4000;
pub const NLA_TYPE_MASK: u16 = !(NLA_F_NESTED | NLA_F_NET_BYTEORDER);

pub const NLMSGERR_ATTR_MSG: u16 = 1;
pub const NLMSGERR_ATTR_OFFS: u16 = 2;
pub const NLMSGERR_ATTR_MISS_TYPE: u16 = 5;
pub const NLMSGERR_ATTR_MISS_NEST: u16 = 6;

/// Rounds a length up to the 4-byte alignment netlink uses for messages and attributes.
pub const fn align4(length: usize) -> usize {
    (length + 3) & !3
}

/// Bytes that do not follow the netlink wire format, with a description of what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError(pub String);

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WireError {}

fn read_u16(bytes: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([bytes[at], bytes[at + 1]])
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// `struct nlmsghdr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NlmsgHeader {
    pub length: u32,
    pub kind: u16,
    pub flags: u16,
    pub sequence: u32,
    pub port_id: u32,
}

impl NlmsgHeader {
    /// Reads a header from the first 16 bytes; `None` when fewer are given.
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        if bytes.len() < NLMSG_HDRLEN {
            return None;
        }
        Some(Self {
            length: read_u32(bytes, 0),
            kind: read_u16(bytes, 4),
            flags: read_u16(bytes, 6),
            sequence: read_u32(bytes, 8),
            port_id: read_u32(bytes, 12),
        })
    }

    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.length.to_ne_bytes());
        out.extend_from_slice(&self.kind.to_ne_bytes());
        out.extend_from_slice(&self.flags.to_ne_bytes());
        out.extend_from_slice(&self.sequence.to_ne_bytes());
        out.extend_from_slice(&self.port_id.to_ne_bytes());
    }
}

/// Builds one generic netlink request: `nlmsghdr`, `genlmsghdr`, then `payload` (the family's
/// own header, if it has one, followed by attributes), padded to 4 bytes.
pub fn build_genl_request(
    family_id: u16,
    flags: u16,
    sequence: u32,
    command: u8,
    version: u8,
    payload: &[u8],
) -> Result<Vec<u8>, WireError> {
    let length = NLMSG_HDRLEN + GENL_HDRLEN + payload.len();
    let length_field = u32::try_from(length).map_err(|_| {
        WireError(format!(
            "the request payload is {} bytes, more than a netlink message can carry",
            payload.len()
        ))
    })?;
    let mut message = Vec::with_capacity(align4(length));
    NlmsgHeader {
        length: length_field,
        kind: family_id,
        flags,
        sequence,
        port_id: 0,
    }
    .write_to(&mut message);
    message.extend_from_slice(&[command, version, 0, 0]);
    message.extend_from_slice(payload);
    message.resize(align4(length), 0);
    Ok(message)
}

/// One netlink message of a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetlinkMessage<'a> {
    pub header: NlmsgHeader,
    /// The bytes after the header, up to `header.length`.
    pub payload: &'a [u8],
}

/// Walks the messages packed into one received datagram.
pub fn messages(datagram: &[u8]) -> Messages<'_> {
    Messages {
        rest: datagram,
        offset: 0,
    }
}

pub struct Messages<'a> {
    rest: &'a [u8],
    offset: usize,
}

impl<'a> Iterator for Messages<'a> {
    type Item = Result<NetlinkMessage<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let Some(header) = NlmsgHeader::parse(self.rest) else {
            let error = WireError(format!(
                "{} stray bytes at offset {} of a datagram, too short for a message header",
                self.rest.len(),
                self.offset
            ));
            self.rest = &[];
            return Some(Err(error));
        };
        let length = header.length as usize;
        if length < NLMSG_HDRLEN || length > self.rest.len() {
            let error = WireError(format!(
                "message at offset {} claims {} bytes but {} remain in the datagram",
                self.offset,
                length,
                self.rest.len()
            ));
            self.rest = &[];
            return Some(Err(error));
        }
        let message = NetlinkMessage {
            header,
            payload: &self.rest[NLMSG_HDRLEN..length],
        };
        let step = align4(length).min(self.rest.len());
        self.rest = &self.rest[step..];
        self.offset += step;
        Some(Ok(message))
    }
}

/// `struct genlmsghdr` (the reserved field is ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenlHeader {
    pub command: u8,
    pub version: u8,
}

/// Splits a generic netlink message payload into its header and what follows it.
pub fn split_genl_payload(payload: &[u8]) -> Result<(GenlHeader, &[u8]), WireError> {
    if payload.len() < GENL_HDRLEN {
        return Err(WireError(format!(
            "generic netlink message of {} bytes has no room for its 4-byte genlmsghdr",
            payload.len()
        )));
    }
    Ok((
        GenlHeader {
            command: payload[0],
            version: payload[1],
        },
        &payload[GENL_HDRLEN..],
    ))
}

/// One attribute (`struct nlattr` and its payload).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attribute<'a> {
    /// The type with the NESTED and NET_BYTEORDER flag bits removed.
    pub kind: u16,
    pub nested: bool,
    pub payload: &'a [u8],
}

impl<'a> Attribute<'a> {
    fn exact<const N: usize>(&self, what: &str) -> Result<[u8; N], WireError> {
        self.payload.try_into().map_err(|_| {
            WireError(format!(
                "attribute {} should hold a {what} ({N} bytes) but holds {} bytes",
                self.kind,
                self.payload.len()
            ))
        })
    }

    pub fn as_u16(&self) -> Result<u16, WireError> {
        Ok(u16::from_ne_bytes(self.exact("u16")?))
    }

    pub fn as_u32(&self) -> Result<u32, WireError> {
        Ok(u32::from_ne_bytes(self.exact("u32")?))
    }

    pub fn as_u64(&self) -> Result<u64, WireError> {
        Ok(u64::from_ne_bytes(self.exact("u64")?))
    }

    /// A NUL-terminated (NLA_NUL_STRING / NLA_STRING) string; trailing NULs are dropped.
    pub fn as_str(&self) -> Result<&'a str, WireError> {
        let end = self
            .payload
            .iter()
            .position(|&byte| byte == 0)
            .unwrap_or(self.payload.len());
        std::str::from_utf8(&self.payload[..end]).map_err(|_| {
            WireError(format!(
                "attribute {} should hold a UTF-8 string but does not",
                self.kind
            ))
        })
    }

    /// The attributes nested inside this one.
    pub fn nested_attributes(&self) -> Attributes<'a> {
        attributes(self.payload)
    }
}

/// Walks a run of attributes.
pub fn attributes(bytes: &[u8]) -> Attributes<'_> {
    Attributes {
        rest: bytes,
        offset: 0,
    }
}

pub struct Attributes<'a> {
    rest: &'a [u8],
    offset: usize,
}

impl<'a> Iterator for Attributes<'a> {
    type Item = Result<Attribute<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let malformed = |detail: String| {
            Some(Err(WireError(format!(
                "attribute at offset {}: {detail}",
                self.offset
            ))))
        };
        if self.rest.len() < NLA_HDRLEN {
            let remaining = self.rest.len();
            self.rest = &[];
            return malformed(format!("{remaining} stray bytes, too short for a header"));
        }
        let length = read_u16(self.rest, 0) as usize;
        let raw_kind = read_u16(self.rest, 2);
        if length < NLA_HDRLEN || length > self.rest.len() {
            let remaining = self.rest.len();
            self.rest = &[];
            return malformed(format!(
                "claims {length} bytes but {remaining} remain (minimum 4)"
            ));
        }
        let attribute = Attribute {
            kind: raw_kind & NLA_TYPE_MASK,
            nested: raw_kind & NLA_F_NESTED != 0,
            payload: &self.rest[NLA_HDRLEN..length],
        };
        let step = align4(length).min(self.rest.len());
        self.rest = &self.rest[step..];
        self.offset += step;
        Some(Ok(attribute))
    }
}

/// Appends attributes to a buffer; used to build request payloads.
#[derive(Debug, Default, Clone)]
pub struct AttributeWriter {
    bytes: Vec<u8>,
}

impl AttributeWriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one attribute; fails if the payload is too long for the 16-bit length field.
    pub fn put(&mut self, kind: u16, payload: &[u8]) -> Result<&mut Self, WireError> {
        let length = u16::try_from(NLA_HDRLEN + payload.len()).map_err(|_| {
            WireError(format!(
                "attribute {kind} payload of {} bytes exceeds the 65531-byte attribute limit",
                payload.len()
            ))
        })?;
        self.bytes.extend_from_slice(&length.to_ne_bytes());
        self.bytes.extend_from_slice(&kind.to_ne_bytes());
        self.bytes.extend_from_slice(payload);
        self.bytes.resize(align4(self.bytes.len()), 0);
        Ok(self)
    }

    pub fn put_u32(&mut self, kind: u16, value: u32) -> Result<&mut Self, WireError> {
        self.put(kind, &value.to_ne_bytes())
    }

    pub fn put_u16(&mut self, kind: u16, value: u16) -> Result<&mut Self, WireError> {
        self.put(kind, &value.to_ne_bytes())
    }

    /// Appends a string with its terminating NUL, as NLA_NUL_STRING and NLA_STRING expect.
    pub fn put_str(&mut self, kind: u16, value: &str) -> Result<&mut Self, WireError> {
        let mut payload = Vec::with_capacity(value.len() + 1);
        payload.extend_from_slice(value.as_bytes());
        payload.push(0);
        self.put(kind, &payload)
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

/// What the kernel's extended ack adds to an error (or to a `NLMSG_DONE`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtAck {
    /// NLMSGERR_ATTR_MSG: the kernel's human-readable reason.
    pub message: Option<String>,
    /// NLMSGERR_ATTR_OFFS: byte offset of the offending attribute in the request message.
    pub offset: Option<u32>,
    /// NLMSGERR_ATTR_MISS_TYPE: type of a required attribute that was missing.
    pub missing_type: Option<u32>,
    /// NLMSGERR_ATTR_MISS_NEST: offset of the nest that misses it.
    pub missing_nest: Option<u32>,
}

impl ExtAck {
    fn parse(tlvs: &[u8]) -> Result<Self, WireError> {
        let mut ext_ack = ExtAck::default();
        for attribute in attributes(tlvs) {
            let attribute = attribute?;
            match attribute.kind {
                NLMSGERR_ATTR_MSG => {
                    let message = attribute.as_str()?;
                    if !message.is_empty() {
                        ext_ack.message = Some(message.to_owned());
                    }
                }
                NLMSGERR_ATTR_OFFS => ext_ack.offset = Some(attribute.as_u32()?),
                NLMSGERR_ATTR_MISS_TYPE => ext_ack.missing_type = Some(attribute.as_u32()?),
                NLMSGERR_ATTR_MISS_NEST => ext_ack.missing_nest = Some(attribute.as_u32()?),
                // The cookie and policy attributes are not surfaced.
                _ => {}
            }
        }
        Ok(ext_ack)
    }
}

/// A decoded `NLMSG_ERROR` (an error, or an ack when `errno` is 0) or `NLMSG_DONE` status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    /// Positive errno, as in C (`EPERM` is 1); 0 for success.
    pub errno: i32,
    pub ext_ack: ExtAck,
}

fn status_from(raw_error: i32, ext_ack: ExtAck) -> Result<Status, WireError> {
    if raw_error > 0 {
        return Err(WireError(format!(
            "error code {raw_error} is positive; the kernel sends 0 or a negative errno"
        )));
    }
    Ok(Status {
        errno: raw_error.checked_neg().ok_or_else(|| {
            WireError(format!("error code {raw_error} is out of the errno range"))
        })?,
        ext_ack,
    })
}

/// Decodes the payload of an `NLMSG_ERROR`: `struct nlmsgerr` (the error code and the request's
/// header, or the whole request when not capped) followed by extended ack TLVs when flagged.
pub fn parse_error_payload(flags: u16, payload: &[u8]) -> Result<Status, WireError> {
    const ERRNO_LEN: usize = 4;
    if payload.len() < ERRNO_LEN + NLMSG_HDRLEN {
        return Err(WireError(format!(
            "error message payload of {} bytes is shorter than struct nlmsgerr (20 bytes)",
            payload.len()
        )));
    }
    let raw_error = read_u32(payload, 0) as i32;
    let echoed_length = if flags & NLM_F_CAPPED != 0 {
        NLMSG_HDRLEN
    } else {
        // Not capped: the whole original request is echoed back; its header says how long.
        let original = NlmsgHeader::parse(&payload[ERRNO_LEN..]).map_or(0, |h| h.length);
        align4(original as usize)
    };
    let tlv_start = ERRNO_LEN + echoed_length;
    let ext_ack = if flags & NLM_F_ACK_TLVS != 0 {
        if tlv_start > payload.len() {
            return Err(WireError(format!(
                "error message echoes a {echoed_length}-byte request but has only {} bytes",
                payload.len() - ERRNO_LEN
            )));
        }
        ExtAck::parse(&payload[tlv_start..])?
    } else {
        ExtAck::default()
    };
    status_from(raw_error, ext_ack)
}

/// Decodes the payload of an `NLMSG_DONE`: the dump's final status (0 or a negative errno) and,
/// when flagged, extended ack TLVs.
pub fn parse_done_payload(flags: u16, payload: &[u8]) -> Result<Status, WireError> {
    if payload.len() < 4 {
        // Some old kernels and families end a dump with an empty DONE: that means success.
        return Ok(Status::default());
    }
    let raw_error = read_u32(payload, 0) as i32;
    let ext_ack = if flags & NLM_F_ACK_TLVS != 0 {
        ExtAck::parse(&payload[4..])?
    } else {
        ExtAck::default()
    };
    status_from(raw_error, ext_ack)
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! Byte-level builders for kernel replies, shared by the unit tests of several modules.
    use super::*;

    pub fn nlmsg(kind: u16, flags: u16, sequence: u32, port_id: u32, payload: &[u8]) -> Vec<u8> {
        let length = (NLMSG_HDRLEN + payload.len()) as u32;
        let mut out = Vec::new();
        NlmsgHeader {
            length,
            kind,
            flags,
            sequence,
            port_id,
        }
        .write_to(&mut out);
        out.extend_from_slice(payload);
        out.resize(align4(out.len()), 0);
        out
    }

    pub fn genl(command: u8, version: u8, attributes: &[u8]) -> Vec<u8> {
        let mut out = vec![command, version, 0, 0];
        out.extend_from_slice(attributes);
        out
    }

    pub fn attr(kind: u16, payload: &[u8]) -> Vec<u8> {
        let mut writer = AttributeWriter::new();
        writer.put(kind, payload).unwrap();
        writer.into_bytes()
    }

    /// An `nlmsgerr` payload as a `NETLINK_CAP_ACK` socket receives it.
    pub fn capped_error(errno: i32, request: NlmsgHeader, tlvs: &[u8]) -> Vec<u8> {
        let mut out = (-errno).to_ne_bytes().to_vec();
        request.write_to(&mut out);
        out.extend_from_slice(tlvs);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;

    #[test]
    fn request_layout_is_header_genl_header_payload_padded() {
        let message = build_genl_request(0x10, NLM_F_REQUEST | NLM_F_ACK, 7, 3, 2, &[1, 2, 3])
            .expect("small request");
        let mut expected = vec![];
        expected.extend_from_slice(&23u32.to_ne_bytes()); // length excludes padding
        expected.extend_from_slice(&0x10u16.to_ne_bytes());
        expected.extend_from_slice(&5u16.to_ne_bytes());
        expected.extend_from_slice(&7u32.to_ne_bytes());
        expected.extend_from_slice(&0u32.to_ne_bytes());
        expected.extend_from_slice(&[3, 2, 0, 0, 1, 2, 3, 0]);
        assert_eq!(message, expected);
    }

    #[test]
    fn header_round_trips() {
        let header = NlmsgHeader {
            length: 36,
            kind: 0x1d,
            flags: NLM_F_MULTI | NLM_F_DUMP_INTR,
            sequence: 0xdead_beef,
            port_id: 4242,
        };
        let mut bytes = Vec::new();
        header.write_to(&mut bytes);
        assert_eq!(bytes.len(), NLMSG_HDRLEN);
        assert_eq!(NlmsgHeader::parse(&bytes), Some(header));
        assert_eq!(NlmsgHeader::parse(&bytes[..15]), None);
    }

    #[test]
    fn walks_several_messages_with_padding() {
        let mut datagram = nlmsg(0x10, NLM_F_MULTI, 1, 9, &genl(1, 2, &[0xaa]));
        datagram.extend(nlmsg(NLMSG_DONE, NLM_F_MULTI, 1, 9, &0i32.to_ne_bytes()));
        let parsed: Vec<_> = messages(&datagram).collect::<Result<_, _>>().unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].header.kind, 0x10);
        assert_eq!(parsed[0].payload, &[1, 2, 0, 0, 0xaa]);
        assert_eq!(parsed[1].header.kind, NLMSG_DONE);
        assert_eq!(parsed[1].payload, &[0, 0, 0, 0]);
    }

    #[test]
    fn rejects_a_message_longer_than_the_datagram() {
        let mut datagram = nlmsg(0x10, 0, 1, 9, &[0; 8]);
        datagram[0..4].copy_from_slice(&200u32.to_ne_bytes());
        let error = messages(&datagram).next().unwrap().unwrap_err();
        assert!(
            error.0.contains("claims 200 bytes but 24 remain"),
            "{error}"
        );
    }

    #[test]
    fn rejects_stray_trailing_bytes() {
        let mut datagram = nlmsg(0x10, 0, 1, 9, &[]);
        datagram.extend_from_slice(&[1, 2, 3, 4]);
        let mut walk = messages(&datagram);
        assert!(walk.next().unwrap().is_ok());
        let error = walk.next().unwrap().unwrap_err();
        assert!(error.0.contains("4 stray bytes at offset 16"), "{error}");
        assert!(walk.next().is_none());
    }

    #[test]
    fn reads_typed_and_nested_attributes() {
        let mut inner = attr(1, &7u32.to_ne_bytes());
        inner.extend(attr(2, b"notify\0"));
        let mut bytes = attr(6 | NLA_F_NESTED, &inner);
        bytes.extend(attr(3, &0x1234u16.to_ne_bytes()));
        bytes.extend(attr(4, &u64::MAX.to_ne_bytes()));
        let parsed: Vec<_> = attributes(&bytes).collect::<Result<_, _>>().unwrap();
        assert_eq!(parsed.len(), 3);
        assert_eq!(parsed[0].kind, 6);
        assert!(parsed[0].nested);
        let nested: Vec<_> = parsed[0]
            .nested_attributes()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(nested[0].as_u32().unwrap(), 7);
        assert_eq!(nested[1].as_str().unwrap(), "notify");
        assert_eq!(parsed[1].as_u16().unwrap(), 0x1234);
        assert_eq!(parsed[2].as_u64().unwrap(), u64::MAX);
    }

    #[test]
    fn typed_reads_check_the_length() {
        let bytes = attr(5, &[1, 2, 3]);
        let attribute = attributes(&bytes).next().unwrap().unwrap();
        let error = attribute.as_u32().unwrap_err();
        assert_eq!(
            error.0,
            "attribute 5 should hold a u32 (4 bytes) but holds 3 bytes"
        );
    }

    #[test]
    fn rejects_an_attribute_shorter_than_its_header() {
        let bytes = [2u8, 0, 1, 0];
        let error = attributes(&bytes).next().unwrap().unwrap_err();
        assert!(error.0.contains("claims 2 bytes"), "{error}");
    }

    #[test]
    fn writer_pads_and_terminates_strings() {
        let mut writer = AttributeWriter::new();
        writer.put_str(2, "nlctrl").unwrap().put_u32(1, 5).unwrap();
        let bytes = writer.into_bytes();
        let mut expected = vec![11, 0, 2, 0];
        expected.extend_from_slice(b"nlctrl\0\0");
        expected.extend_from_slice(&[8, 0, 1, 0]);
        expected.extend_from_slice(&5u32.to_ne_bytes());
        assert_eq!(bytes, expected);
        let error = AttributeWriter::new().put(1, &[0; 70_000]).unwrap_err();
        assert!(error.0.contains("exceeds the 65531-byte attribute limit"));
    }

    fn request_header() -> NlmsgHeader {
        NlmsgHeader {
            length: 40,
            kind: 0x10,
            flags: NLM_F_REQUEST | NLM_F_ACK,
            sequence: 3,
            port_id: 0,
        }
    }

    #[test]
    fn decodes_a_capped_error_with_extack_message_and_offset() {
        let mut tlvs = attr(NLMSGERR_ATTR_MSG, b"Attribute failed policy validation\0");
        tlvs.extend(attr(NLMSGERR_ATTR_OFFS, &24u32.to_ne_bytes()));
        let payload = capped_error(libc::EINVAL, request_header(), &tlvs);
        let status = parse_error_payload(NLM_F_CAPPED | NLM_F_ACK_TLVS, &payload).unwrap();
        assert_eq!(status.errno, libc::EINVAL);
        assert_eq!(
            status.ext_ack.message.as_deref(),
            Some("Attribute failed policy validation")
        );
        assert_eq!(status.ext_ack.offset, Some(24));
        assert_eq!(status.ext_ack.missing_type, None);
    }

    #[test]
    fn decodes_missing_attribute_tlvs() {
        let mut tlvs = attr(NLMSGERR_ATTR_MISS_TYPE, &2u32.to_ne_bytes());
        tlvs.extend(attr(NLMSGERR_ATTR_MISS_NEST, &20u32.to_ne_bytes()));
        let payload = capped_error(libc::EINVAL, request_header(), &tlvs);
        let status = parse_error_payload(NLM_F_CAPPED | NLM_F_ACK_TLVS, &payload).unwrap();
        assert_eq!(status.ext_ack.missing_type, Some(2));
        assert_eq!(status.ext_ack.missing_nest, Some(20));
        assert_eq!(status.ext_ack.message, None);
    }

    #[test]
    fn decodes_an_uncapped_error_that_echoes_the_request() {
        let request = build_genl_request(0x10, NLM_F_REQUEST, 3, 3, 2, &[9; 6]).unwrap();
        let mut payload = (-libc::EPERM).to_ne_bytes().to_vec();
        payload.extend_from_slice(&request);
        payload.extend(attr(NLMSGERR_ATTR_MSG, b"denied\0"));
        let status = parse_error_payload(NLM_F_ACK_TLVS, &payload).unwrap();
        assert_eq!(status.errno, libc::EPERM);
        assert_eq!(status.ext_ack.message.as_deref(), Some("denied"));
    }

    #[test]
    fn an_ack_is_an_error_of_zero() {
        let payload = capped_error(0, request_header(), &[]);
        let status = parse_error_payload(NLM_F_CAPPED, &payload).unwrap();
        assert_eq!(status, Status::default());
    }

    #[test]
    fn rejects_a_truncated_nlmsgerr() {
        let error = parse_error_payload(0, &[0; 12]).unwrap_err();
        assert!(error.0.contains("shorter than struct nlmsgerr"), "{error}");
    }

    #[test]
    fn rejects_a_positive_error_code() {
        let payload = capped_error(-5, request_header(), &[]);
        let error = parse_error_payload(NLM_F_CAPPED, &payload).unwrap_err();
        assert!(error.0.contains("is positive"), "{error}");
    }

    #[test]
    fn done_carries_the_dump_status_and_extack() {
        assert_eq!(parse_done_payload(0, &[]).unwrap(), Status::default());
        assert_eq!(
            parse_done_payload(0, &0i32.to_ne_bytes()).unwrap(),
            Status::default()
        );
        let mut payload = (-libc::EMSGSIZE).to_ne_bytes().to_vec();
        payload.extend(attr(NLMSGERR_ATTR_MSG, b"mount table changed\0"));
        let status = parse_done_payload(NLM_F_MULTI | NLM_F_ACK_TLVS, &payload).unwrap();
        assert_eq!(status.errno, libc::EMSGSIZE);
        assert_eq!(
            status.ext_ack.message.as_deref(),
            Some("mount table changed")
        );
    }

    #[test]
    fn genl_payload_needs_its_header() {
        let (header, rest) = split_genl_payload(&[3, 2, 0, 0, 8, 0]).unwrap();
        assert_eq!(
            header,
            GenlHeader {
                command: 3,
                version: 2
            }
        );
        assert_eq!(rest, &[8, 0]);
        assert!(split_genl_payload(&[3, 2]).is_err());
    }
}
