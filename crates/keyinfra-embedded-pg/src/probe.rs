//! "Is the server accepting connections?" without a client library or `pg_isready`.
//!
//! This mirrors libpq's `PQping`: send a protocol 3.0 startup message and look at the first
//! reply. Authentication requests and most errors mean the server is up; SQLSTATE 57P03
//! ("the database system is starting up") means it is not yet.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

const PROTOCOL_3_0: i32 = 196_608;
const CANNOT_CONNECT_NOW: &[u8] = b"57P03";

/// Whether the server behind the unix socket at `socket` accepts connections for `user`.
pub(crate) fn accepting(socket: &Path, user: &str) -> bool {
    let Ok(mut stream) = UnixStream::connect(socket) else {
        return false;
    };
    let timeout = Some(Duration::from_secs(2));
    if stream.set_read_timeout(timeout).is_err() || stream.set_write_timeout(timeout).is_err() {
        return false;
    }
    if stream.write_all(&startup_message(user)).is_err() {
        return false;
    }
    let mut header = [0_u8; 5];
    if stream.read_exact(&mut header).is_err() {
        return false;
    }
    let ready = match header[0] {
        b'R' => true,
        b'E' => {
            let len = i32::from_be_bytes([header[1], header[2], header[3], header[4]]);
            let body_len = usize::try_from(len.saturating_sub(4))
                .unwrap_or(0)
                .min(8192);
            let mut body = vec![0_u8; body_len];
            stream.read_exact(&mut body).is_ok() && sqlstate(&body) != Some(CANNOT_CONNECT_NOW)
        }
        _ => false,
    };
    // Terminate, so the server does not log a broken connection.
    let _ = stream.write_all(&[b'X', 0, 0, 0, 4]);
    ready
}

fn startup_message(user: &str) -> Vec<u8> {
    let mut body = Vec::with_capacity(64);
    body.extend_from_slice(&PROTOCOL_3_0.to_be_bytes());
    for (key, value) in [("user", user), ("database", "postgres")] {
        body.extend_from_slice(key.as_bytes());
        body.push(0);
        body.extend_from_slice(value.as_bytes());
        body.push(0);
    }
    body.push(0);
    let len = i32::try_from(body.len() + 4).unwrap_or(i32::MAX);
    let mut message = len.to_be_bytes().to_vec();
    message.extend_from_slice(&body);
    message
}

/// Extracts the `C` (SQLSTATE) field from an ErrorResponse body.
fn sqlstate(body: &[u8]) -> Option<&[u8]> {
    let mut rest = body;
    while let Some((&code, tail)) = rest.split_first() {
        if code == 0 {
            return None;
        }
        let end = tail.iter().position(|&b| b == 0)?;
        if code == b'C' {
            return Some(&tail[..end]);
        }
        rest = &tail[end + 1..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_sqlstate_field() {
        let body = b"SFATAL\0VFATAL\0C57P03\0Mthe database system is starting up\0\0";
        assert_eq!(sqlstate(body), Some(CANNOT_CONNECT_NOW));
        assert_eq!(sqlstate(b"SFATAL\0\0"), None);
    }

    #[test]
    fn startup_message_is_length_prefixed() {
        let message = startup_message("keyinfra");
        let len = i32::from_be_bytes([message[0], message[1], message[2], message[3]]);
        assert_eq!(usize::try_from(len).unwrap(), message.len());
        assert!(message.ends_with(b"postgres\0\0"));
    }
}
