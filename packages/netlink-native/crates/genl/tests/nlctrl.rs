//! Against the running kernel's own generic netlink controller (`nlctrl`), which every Linux
//! kernel has: no module needed.

use genl::family::{
    CTRL_ATTR_FAMILY_ID, CTRL_ATTR_FAMILY_NAME, CTRL_CMD_GETFAMILY, CTRL_VERSION, GENL_CMD_CAP_DO,
    GENL_CMD_CAP_DUMP, GENL_ID_CTRL, parse_family,
};
use genl::message::AttributeWriter;
use genl::{ErrorKind, GenlSocket, Request};

fn getfamily(payload: Vec<u8>) -> Request {
    Request {
        family_id: GENL_ID_CTRL,
        command: CTRL_CMD_GETFAMILY,
        version: CTRL_VERSION,
        payload,
        label: None,
    }
}

#[tokio::test]
async fn resolves_nlctrl_with_its_operations_and_notify_group() {
    let socket = GenlSocket::open().expect("open a generic netlink socket");
    let family = socket
        .resolve_family("nlctrl")
        .await
        .expect("nlctrl exists");
    assert_eq!(family.id, GENL_ID_CTRL);
    assert_eq!(family.name, "nlctrl");
    assert_eq!(family.version, 2);
    let getfamily = family
        .operation(u32::from(CTRL_CMD_GETFAMILY))
        .expect("nlctrl offers CTRL_CMD_GETFAMILY");
    assert_eq!(
        getfamily.flags & (GENL_CMD_CAP_DO | GENL_CMD_CAP_DUMP),
        GENL_CMD_CAP_DO | GENL_CMD_CAP_DUMP
    );
    let notify = family.multicast_group("notify").expect("group notify");
    assert!(notify.id > 0);
}

#[tokio::test]
async fn a_dump_lists_every_family_including_nlctrl() {
    let socket = GenlSocket::open().unwrap();
    let families = socket.list_families().await.expect("dump families");
    assert!(families.iter().any(|f| f.name == "nlctrl" && f.id == 0x10));
    // The raw dump gives the same messages the typed listing decoded.
    let batch = socket.dump(getfamily(Vec::new())).await.unwrap();
    assert_eq!(batch.len(), families.len());
    for message in batch.iter() {
        assert_eq!(message.command, 1, "replies are CTRL_CMD_NEWFAMILY");
        parse_family(message.attributes).expect("each message is a family");
    }
}

#[tokio::test]
async fn an_unknown_family_is_enoent() {
    let socket = GenlSocket::open().unwrap();
    let error = socket
        .resolve_family("no-such-family")
        .await
        .expect_err("no such family");
    assert_eq!(error.kind(), ErrorKind::Kernel);
    assert_eq!(error.errno(), libc::ENOENT);
    assert_eq!(error.code(), "ENOENT");
    assert_eq!(
        error.to_string(),
        "resolve generic netlink family \"no-such-family\": No such file or directory (ENOENT)"
    );
}

#[tokio::test]
async fn a_family_name_the_kernel_cannot_take_is_refused_locally() {
    let socket = GenlSocket::open().unwrap();
    let error = socket
        .resolve_family("a-name-longer-than-fifteen")
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
    assert_eq!(error.code(), "EINVAL");
    assert!(error.to_string().contains("at most 15"), "{error}");
}

#[tokio::test]
async fn an_attribute_that_fails_policy_gets_einval_with_the_kernels_extack() {
    let socket = GenlSocket::open().unwrap();
    // CTRL_ATTR_FAMILY_NAME is a NUL-terminated string in nlctrl's policy.
    let mut attributes = AttributeWriter::new();
    attributes.put(CTRL_ATTR_FAMILY_NAME, b"nlctrl").unwrap();
    let error = socket
        .request(getfamily(attributes.into_bytes()))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Kernel);
    assert_eq!(error.code(), "EINVAL");
    let message = error.ext_ack().message.clone();
    assert!(message.is_some(), "the kernel explains: {error:?}");
    // The offending attribute starts right after nlmsghdr + genlmsghdr.
    assert_eq!(error.ext_ack().offset, Some(20));
    assert!(
        error
            .to_string()
            .ends_with(&format!(": {}", message.unwrap())),
        "{error}"
    );
}

#[tokio::test]
async fn a_request_to_a_missing_family_id_is_refused_by_the_kernel() {
    let socket = GenlSocket::open().unwrap();
    let request = Request {
        family_id: 0xfff0,
        command: 1,
        version: 1,
        payload: Vec::new(),
        label: Some("probe".into()),
    };
    let error = socket.request(request).await.unwrap_err();
    assert_eq!(error.code(), "ENOENT");
    assert!(error.to_string().starts_with("probe: "), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_on_one_socket_each_get_their_own_reply() {
    let socket = GenlSocket::open().unwrap();
    let families = socket.list_families().await.unwrap();
    let mut lookups = Vec::new();
    let mut dumps = Vec::new();
    for _ in 0..8 {
        for family in &families {
            let socket = socket.clone();
            let name = family.name.clone();
            lookups.push(tokio::spawn(async move {
                let found = socket.resolve_family(&name).await;
                (name, found)
            }));
        }
        let socket = socket.clone();
        dumps.push(tokio::spawn(async move { socket.list_families().await }));
    }
    for lookup in lookups {
        let (name, found) = lookup.await.unwrap();
        assert_eq!(found.expect(&name).name, name);
    }
    for dump in dumps {
        assert_eq!(dump.await.unwrap().unwrap().len(), families.len());
    }
}

#[tokio::test]
async fn closing_is_idempotent_and_later_calls_fail_with_ebadf() {
    let socket = GenlSocket::open().unwrap();
    assert!(!socket.is_closed());
    socket.close();
    socket.close();
    assert!(socket.is_closed());
    let error = socket.resolve_family("nlctrl").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Closed);
    assert_eq!(error.code(), "EBADF");
    assert_eq!(
        error.to_string(),
        "resolve generic netlink family \"nlctrl\": the socket is closed (EBADF)"
    );
}

#[tokio::test]
async fn a_wrong_sized_attribute_gets_erange_with_the_kernels_extack() {
    let socket = GenlSocket::open().unwrap();
    // CTRL_ATTR_FAMILY_ID is a u16 in nlctrl's policy; one byte is too short.
    let mut attributes = AttributeWriter::new();
    attributes.put(CTRL_ATTR_FAMILY_ID, &[1]).unwrap();
    let error = socket
        .request(getfamily(attributes.into_bytes()))
        .await
        .unwrap_err();
    assert_eq!(error.code(), "ERANGE");
    assert!(error.ext_ack().message.is_some(), "{error:?}");
}

#[tokio::test]
async fn the_default_error_label_names_the_family_once_resolved() {
    let socket = GenlSocket::open().unwrap();
    let unterminated_name = || {
        let mut attributes = AttributeWriter::new();
        attributes.put(CTRL_ATTR_FAMILY_NAME, b"nlctrl").unwrap();
        getfamily(attributes.into_bytes())
    };
    let before = socket.request(unterminated_name()).await.unwrap_err();
    assert!(
        before
            .to_string()
            .starts_with("family 0x10 request of command 3: Invalid argument (EINVAL)"),
        "{before}"
    );
    socket.resolve_family("nlctrl").await.unwrap();
    let after = socket.dump(unterminated_name()).await.unwrap_err();
    assert!(
        after
            .to_string()
            .starts_with("nlctrl dump of command 3: Invalid argument (EINVAL)"),
        "{after}"
    );
}

#[tokio::test]
async fn joining_and_leaving_nlctrls_notify_group_by_name() {
    let socket = GenlSocket::open().unwrap();
    let family = socket.resolve_family("nlctrl").await.unwrap();
    let notify = family.multicast_group("notify").unwrap().id;
    assert_eq!(socket.join_group("nlctrl", "notify").await.unwrap(), notify);
    // Idempotent, both ways.
    assert_eq!(socket.join_group("nlctrl", "notify").await.unwrap(), notify);
    assert_eq!(
        socket.leave_group("nlctrl", "notify").await.unwrap(),
        notify
    );
    assert_eq!(
        socket.leave_group("nlctrl", "notify").await.unwrap(),
        notify
    );
}

#[tokio::test]
async fn an_unknown_group_or_family_is_enoent_naming_it() {
    let socket = GenlSocket::open().unwrap();
    let error = socket
        .join_group("nlctrl", "no-such-group")
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound);
    assert_eq!(error.code(), "ENOENT");
    assert_eq!(
        error.to_string(),
        "join multicast group \"no-such-group\" of generic netlink family \"nlctrl\": \
         family \"nlctrl\" has no multicast group \"no-such-group\" (it has \"notify\") (ENOENT)"
    );
    let error = socket.leave_group("no-such-family", "x").await.unwrap_err();
    assert_eq!(error.code(), "ENOENT");
    assert_eq!(
        error.to_string(),
        "leave multicast group \"x\" of generic netlink family \"no-such-family\": \
         no generic netlink family \"no-such-family\" is registered (ENOENT)"
    );
    let error = socket.join_group("", "x").await.unwrap_err();
    assert_eq!(error.code(), "EINVAL");
    assert!(
        error.to_string().starts_with("join multicast group"),
        "{error}"
    );
    socket.close();
    let error = socket.join_group("nlctrl", "notify").await.unwrap_err();
    assert_eq!(error.code(), "EBADF");
}

#[tokio::test]
async fn the_receive_buffer_size_is_set_and_read_back_doubled() {
    let socket = GenlSocket::open().unwrap();
    socket.set_receive_buffer_size(8192, false).unwrap();
    assert_eq!(socket.receive_buffer_size().unwrap(), 16384);
    let error = socket.set_receive_buffer_size(u32::MAX, false).unwrap_err();
    assert_eq!(error.code(), "EINVAL");
    socket.close();
    assert_eq!(
        socket
            .set_receive_buffer_size(8192, false)
            .unwrap_err()
            .code(),
        "EBADF"
    );
}

/// net.core.rmem_max, the cap of SO_RCVBUF.
fn rmem_max() -> u32 {
    std::fs::read_to_string("/proc/sys/net/core/rmem_max")
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_forced_receive_buffer_goes_past_rmem_max_for_cap_net_admin_and_is_refused_otherwise() {
    let socket = GenlSocket::open().unwrap();
    let wanted = rmem_max() * 4;
    socket.set_receive_buffer_size(wanted, false).unwrap();
    assert_eq!(
        socket.receive_buffer_size().unwrap(),
        rmem_max() * 2,
        "SO_RCVBUF is capped"
    );
    // /proc/self belongs to the process's effective uid.
    let root = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").unwrap()) == 0;
    match socket.set_receive_buffer_size(wanted, true) {
        Ok(()) => {
            assert!(root, "SO_RCVBUFFORCE worked without privilege");
            assert_eq!(socket.receive_buffer_size().unwrap(), wanted * 2);
        }
        Err(error) => {
            assert!(!root, "SO_RCVBUFFORCE failed for root: {error}");
            assert_eq!(error.code(), "EPERM");
        }
    }
}
