//! The client connection preface (RFC 9113 §3.4).

use bytes::{Buf, BytesMut};

use crate::{FrameError, Reason, Violation};

/// The 24 octets every client sends first, before its SETTINGS frame.
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Consumes the client preface from the start of `buf` (server side).
///
/// `Ok(true)` once it has been read and removed; `Ok(false)` while the
/// bytes so far are a proper prefix of it; a connection error
/// (PROTOCOL_ERROR, §3.4) as soon as a byte differs, so an HTTP/1.1 request
/// or garbage is turned away without waiting for 24 octets.
///
/// ```
/// use bytes::BytesMut;
/// use framer::{read_preface, PREFACE};
///
/// let mut buf = BytesMut::from(&PREFACE[..10]);
/// assert_eq!(read_preface(&mut buf), Ok(false));
/// buf.extend_from_slice(&PREFACE[10..]);
/// assert_eq!(read_preface(&mut buf), Ok(true));
/// assert!(read_preface(&mut BytesMut::from(&b"GET / HTTP/1.1\r\n"[..])).is_err());
/// ```
pub fn read_preface(buf: &mut BytesMut) -> Result<bool, FrameError> {
    let n = buf.len().min(PREFACE.len());
    if buf.get(..n) != PREFACE.get(..n) {
        return Err(FrameError::connection(
            Reason::PROTOCOL_ERROR,
            Violation::BadPreface,
        ));
    }
    if n < PREFACE.len() {
        return Ok(false);
    }
    buf.advance(PREFACE.len());
    Ok(true)
}
