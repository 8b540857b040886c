//! The generic netlink controller (`nlctrl`): how a family's name becomes its id, version,
//! operations and multicast groups.

use crate::message::{Attribute, AttributeWriter, WireError, attributes};

/// The controller's own fixed family id.
pub const GENL_ID_CTRL: u16 = 0x10;
/// The controller's protocol version, as the kernel registers it.
pub const CTRL_VERSION: u8 = 2;
pub const CTRL_CMD_GETFAMILY: u8 = 3;

pub const CTRL_ATTR_FAMILY_ID: u16 = 1;
pub const CTRL_ATTR_FAMILY_NAME: u16 = 2;
pub const CTRL_ATTR_VERSION: u16 = 3;
pub const CTRL_ATTR_HDRSIZE: u16 = 4;
pub const CTRL_ATTR_MAXATTR: u16 = 5;
pub const CTRL_ATTR_OPS: u16 = 6;
pub const CTRL_ATTR_MCAST_GROUPS: u16 = 7;

pub const CTRL_ATTR_OP_ID: u16 = 1;
pub const CTRL_ATTR_OP_FLAGS: u16 = 2;

pub const CTRL_ATTR_MCAST_GRP_NAME: u16 = 1;
pub const CTRL_ATTR_MCAST_GRP_ID: u16 = 2;

/// Operation flags (`CTRL_ATTR_OP_FLAGS`).
pub const GENL_ADMIN_PERM: u32 = 0x01;
pub const GENL_CMD_CAP_DO: u32 = 0x02;
pub const GENL_CMD_CAP_DUMP: u32 = 0x04;
pub const GENL_CMD_CAP_HASPOL: u32 = 0x08;
pub const GENL_UNS_ADMIN_PERM: u32 = 0x10;

/// Longest family name the kernel accepts (GENL_NAMSIZ is 16 including the NUL).
pub const MAX_FAMILY_NAME_LEN: usize = 15;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operation {
    /// The command number.
    pub id: u32,
    /// `GENL_ADMIN_PERM`, `GENL_CMD_CAP_DO`, ... (`CTRL_ATTR_OP_FLAGS`).
    pub flags: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MulticastGroup {
    pub name: String,
    pub id: u32,
}

/// What the controller says about one family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyInfo {
    pub id: u16,
    pub name: String,
    pub version: u32,
    /// Size of the family's own header after `genlmsghdr` (0 for most families).
    pub header_size: u32,
    pub max_attribute: u32,
    pub operations: Vec<Operation>,
    pub multicast_groups: Vec<MulticastGroup>,
}

impl FamilyInfo {
    pub fn operation(&self, id: u32) -> Option<&Operation> {
        self.operations.iter().find(|op| op.id == id)
    }

    pub fn multicast_group(&self, name: &str) -> Option<&MulticastGroup> {
        self.multicast_groups
            .iter()
            .find(|group| group.name == name)
    }
}

/// Checks a family name before it is sent, so a bad one gets a local, precise error.
pub fn validate_family_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the family name is empty".to_owned());
    }
    if name.contains('\0') {
        return Err(format!("the family name {name:?} contains a NUL byte"));
    }
    if name.len() > MAX_FAMILY_NAME_LEN {
        return Err(format!(
            "the family name {name:?} is {} bytes long; the kernel allows at most {MAX_FAMILY_NAME_LEN}",
            name.len()
        ));
    }
    Ok(())
}

/// The attributes of a `CTRL_CMD_GETFAMILY` request for one family by name.
pub fn family_by_name_request(name: &str) -> Result<Vec<u8>, WireError> {
    let mut writer = AttributeWriter::new();
    writer.put_str(CTRL_ATTR_FAMILY_NAME, name)?;
    Ok(writer.into_bytes())
}

fn parse_operation(entry: Attribute<'_>) -> Result<Operation, WireError> {
    let mut id = None;
    let mut flags = 0;
    for attribute in entry.nested_attributes() {
        let attribute = attribute?;
        match attribute.kind {
            CTRL_ATTR_OP_ID => id = Some(attribute.as_u32()?),
            CTRL_ATTR_OP_FLAGS => flags = attribute.as_u32()?,
            _ => {}
        }
    }
    let id = id.ok_or_else(|| WireError("an operation entry has no CTRL_ATTR_OP_ID".into()))?;
    Ok(Operation { id, flags })
}

fn parse_group(entry: Attribute<'_>) -> Result<MulticastGroup, WireError> {
    let mut name = None;
    let mut id = None;
    for attribute in entry.nested_attributes() {
        let attribute = attribute?;
        match attribute.kind {
            CTRL_ATTR_MCAST_GRP_NAME => name = Some(attribute.as_str()?.to_owned()),
            CTRL_ATTR_MCAST_GRP_ID => id = Some(attribute.as_u32()?),
            _ => {}
        }
    }
    match (name, id) {
        (Some(name), Some(id)) => Ok(MulticastGroup { name, id }),
        _ => Err(WireError(
            "a multicast group entry lacks its name or id".to_owned(),
        )),
    }
}

/// Decodes the attributes of a `CTRL_CMD_NEWFAMILY` reply.
pub fn parse_family(bytes: &[u8]) -> Result<FamilyInfo, WireError> {
    let mut id = None;
    let mut name = None;
    let mut family = FamilyInfo {
        id: 0,
        name: String::new(),
        version: 0,
        header_size: 0,
        max_attribute: 0,
        operations: Vec::new(),
        multicast_groups: Vec::new(),
    };
    for attribute in attributes(bytes) {
        let attribute = attribute?;
        match attribute.kind {
            CTRL_ATTR_FAMILY_ID => id = Some(attribute.as_u16()?),
            CTRL_ATTR_FAMILY_NAME => name = Some(attribute.as_str()?.to_owned()),
            CTRL_ATTR_VERSION => family.version = attribute.as_u32()?,
            CTRL_ATTR_HDRSIZE => family.header_size = attribute.as_u32()?,
            CTRL_ATTR_MAXATTR => family.max_attribute = attribute.as_u32()?,
            CTRL_ATTR_OPS => {
                for entry in attribute.nested_attributes() {
                    family.operations.push(parse_operation(entry?)?);
                }
            }
            CTRL_ATTR_MCAST_GROUPS => {
                for entry in attribute.nested_attributes() {
                    family.multicast_groups.push(parse_group(entry?)?);
                }
            }
            // Policies and anything newer kernels add are not needed here.
            _ => {}
        }
    }
    family.id = id.ok_or_else(|| WireError("the family has no CTRL_ATTR_FAMILY_ID".into()))?;
    family.name =
        name.ok_or_else(|| WireError("the family has no CTRL_ATTR_FAMILY_NAME".into()))?;
    Ok(family)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::NLA_F_NESTED;
    use crate::message::fixtures::attr;

    fn nest(kind: u16, entries: &[Vec<u8>]) -> Vec<u8> {
        attr(kind | NLA_F_NESTED, &entries.concat())
    }

    /// The reply the kernel gives for nlctrl itself, trimmed to two operations.
    fn nlctrl_reply() -> Vec<u8> {
        let op = |index: u16, id: u32, flags: u32| {
            let mut inner = attr(CTRL_ATTR_OP_ID, &id.to_ne_bytes());
            inner.extend(attr(CTRL_ATTR_OP_FLAGS, &flags.to_ne_bytes()));
            attr(index | NLA_F_NESTED, &inner)
        };
        let mut group = attr(CTRL_ATTR_MCAST_GRP_ID, &16u32.to_ne_bytes());
        group.extend(attr(CTRL_ATTR_MCAST_GRP_NAME, b"notify\0"));
        [
            attr(CTRL_ATTR_FAMILY_NAME, b"nlctrl\0"),
            attr(CTRL_ATTR_FAMILY_ID, &0x10u16.to_ne_bytes()),
            attr(CTRL_ATTR_VERSION, &2u32.to_ne_bytes()),
            attr(CTRL_ATTR_HDRSIZE, &0u32.to_ne_bytes()),
            attr(CTRL_ATTR_MAXATTR, &10u32.to_ne_bytes()),
            nest(
                CTRL_ATTR_OPS,
                &[
                    op(
                        1,
                        3,
                        GENL_CMD_CAP_DO | GENL_CMD_CAP_DUMP | GENL_CMD_CAP_HASPOL,
                    ),
                    op(2, 10, GENL_CMD_CAP_DUMP | GENL_CMD_CAP_HASPOL),
                ],
            ),
            nest(CTRL_ATTR_MCAST_GROUPS, &[attr(1 | NLA_F_NESTED, &group)]),
        ]
        .concat()
    }

    #[test]
    fn decodes_a_family_with_operations_and_groups() {
        let family = parse_family(&nlctrl_reply()).unwrap();
        assert_eq!(family.id, 0x10);
        assert_eq!(family.name, "nlctrl");
        assert_eq!(family.version, 2);
        assert_eq!(family.header_size, 0);
        assert_eq!(family.max_attribute, 10);
        assert_eq!(family.operations.len(), 2);
        assert_eq!(
            family.operation(3),
            Some(&Operation {
                id: 3,
                flags: GENL_CMD_CAP_DO | GENL_CMD_CAP_DUMP | GENL_CMD_CAP_HASPOL
            })
        );
        assert_eq!(
            family.multicast_group("notify"),
            Some(&MulticastGroup {
                name: "notify".into(),
                id: 16
            })
        );
    }

    #[test]
    fn a_family_without_an_id_is_rejected() {
        let error = parse_family(&attr(CTRL_ATTR_FAMILY_NAME, b"x\0")).unwrap_err();
        assert_eq!(error.0, "the family has no CTRL_ATTR_FAMILY_ID");
    }

    #[test]
    fn a_group_without_a_name_is_rejected() {
        let bytes = [
            attr(CTRL_ATTR_FAMILY_ID, &0x20u16.to_ne_bytes()),
            attr(CTRL_ATTR_FAMILY_NAME, b"x\0"),
            nest(
                CTRL_ATTR_MCAST_GROUPS,
                &[attr(
                    1 | NLA_F_NESTED,
                    &attr(CTRL_ATTR_MCAST_GRP_ID, &3u32.to_ne_bytes()),
                )],
            ),
        ]
        .concat();
        assert!(
            parse_family(&bytes)
                .unwrap_err()
                .0
                .contains("lacks its name")
        );
    }

    #[test]
    fn family_names_are_checked_before_sending() {
        assert!(validate_family_name("usip").is_ok());
        assert!(validate_family_name("123456789012345").is_ok());
        assert_eq!(
            validate_family_name("").unwrap_err(),
            "the family name is empty"
        );
        assert!(
            validate_family_name("1234567890123456")
                .unwrap_err()
                .contains("at most 15")
        );
        assert!(validate_family_name("a\0b").unwrap_err().contains("NUL"));
    }

    #[test]
    fn the_request_names_the_family_with_a_terminating_nul() {
        assert_eq!(
            family_by_name_request("usip").unwrap(),
            attr(CTRL_ATTR_FAMILY_NAME, b"usip\0")
        );
    }
}
