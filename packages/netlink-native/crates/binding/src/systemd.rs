//! sd_notify(3) for the agent: Node has no unix datagram sockets, so the one datagram that tells
//! systemd about the service (`READY=1`, `STATUS=...`, `WATCHDOG=1`) is sent from here. The
//! protocol is a single datagram of newline-separated assignments to the socket named by
//! `$NOTIFY_SOCKET`: a path, or an abstract name written with a leading `@`.

use std::ffi::OsStr;
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

use napi::{Error, Result, Status};
use napi_derive::napi;

/// Where `NOTIFY_SOCKET` says to send: a path or an abstract name. `None`: unset or empty.
fn notify_address(value: Option<&OsStr>) -> io::Result<Option<SocketAddr>> {
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let bytes = value.as_bytes();
    match bytes[0] {
        // "@name": the abstract namespace, the name without the '@'.
        b'@' => SocketAddr::from_abstract_name(&bytes[1..]).map(Some),
        b'/' => SocketAddr::from_pathname(value).map(Some),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "NOTIFY_SOCKET={:?} is neither an absolute path nor an abstract name (@...)",
                value
            ),
        )),
    }
}

/// Sends `state` to the socket `socket` names (the value of `NOTIFY_SOCKET`). Ok(false) when it
/// names none: the process was not started by systemd as a Type=notify service.
pub fn notify(socket: Option<&OsStr>, state: &str) -> io::Result<bool> {
    let Some(address) = notify_address(socket)? else {
        return Ok(false);
    };
    let sender = UnixDatagram::unbound()?;
    let sent = sender.send_to_addr(state.as_bytes(), &address)?;
    if sent != state.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            format!("sent {sent} of {} bytes", state.len()),
        ));
    }
    Ok(true)
}

/// Sends `state` (e.g. "READY=1\nSTATUS=3 files") to systemd's `$NOTIFY_SOCKET`. Returns false
/// when `NOTIFY_SOCKET` is unset or empty; throws when it is malformed or sending fails.
#[napi]
pub fn notify_systemd(state: String) -> Result<bool> {
    if state.is_empty() {
        return Err(Error::new(
            Status::InvalidArg,
            "notifySystemd: the state is empty",
        ));
    }
    let socket = std::env::var_os("NOTIFY_SOCKET");
    notify(socket.as_deref(), &state).map_err(|error| {
        Error::new(
            Status::GenericFailure,
            format!(
                "notifying systemd on NOTIFY_SOCKET={:?} failed: {error}",
                socket.as_deref().unwrap_or_default()
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStringExt;
    use std::time::Duration;

    fn receive(socket: &UnixDatagram) -> String {
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut buffer = [0u8; 4096];
        let n = socket.recv(&mut buffer).unwrap();
        String::from_utf8(buffer[..n].to_vec()).unwrap()
    }

    #[test]
    fn unset_or_empty_sends_nothing() {
        assert!(!notify(None, "READY=1").unwrap());
        assert!(!notify(Some(OsStr::new("")), "READY=1").unwrap());
    }

    #[test]
    fn sends_to_a_path() {
        let dir = std::env::temp_dir().join(format!("usip-notify-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify");
        let _ = std::fs::remove_file(&path);
        let receiver = UnixDatagram::bind(&path).unwrap();
        assert!(notify(Some(path.as_os_str()), "READY=1\nSTATUS=ready").unwrap());
        assert_eq!(receive(&receiver), "READY=1\nSTATUS=ready");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn sends_to_an_abstract_name() {
        let name = format!("usip-notify-test-{}", std::process::id());
        let receiver =
            UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap())
                .unwrap();
        let value = OsString::from_vec(format!("@{name}").into_bytes());
        assert!(notify(Some(&value), "WATCHDOG=1").unwrap());
        assert_eq!(receive(&receiver), "WATCHDOG=1");
    }

    #[test]
    fn refuses_a_relative_name() {
        let error = notify(Some(OsStr::new("run/notify")), "READY=1").unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        assert!(error.to_string().contains("neither an absolute path"));
    }

    #[test]
    fn reports_a_socket_nobody_listens_on() {
        let path = std::env::temp_dir().join(format!("usip-notify-none-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        assert_eq!(
            notify(Some(path.as_os_str()), "READY=1")
                .unwrap_err()
                .kind(),
            io::ErrorKind::NotFound
        );
    }
}
