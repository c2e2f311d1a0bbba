//! Raw frame bytes for the framer's integration tests.
#![allow(dead_code, missing_docs)]

use bytes::{BufMut, BytesMut};

/// The bytes of one frame: a 9-octet header and `payload`, the length
/// taken from the payload.
pub fn raw(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> BytesMut {
    raw_len(payload.len() as u32, kind, flags, stream, payload)
}

/// The bytes of one frame whose header claims `length` octets.
pub fn raw_len(length: u32, kind: u8, flags: u8, stream: u32, payload: &[u8]) -> BytesMut {
    let mut buf = BytesMut::new();
    let l = length.to_be_bytes();
    buf.put_slice(&[l[1], l[2], l[3], kind, flags]);
    buf.put_u32(stream);
    buf.put_slice(payload);
    buf
}

pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const PRIORITY: u8 = 0x2;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PUSH_PROMISE: u8 = 0x5;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const WINDOW_UPDATE: u8 = 0x8;
pub const CONTINUATION: u8 = 0x9;

pub const END_STREAM: u8 = 0x1;
pub const ACK: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;
pub const PADDED: u8 = 0x8;
pub const PRIORITY_FLAG: u8 = 0x20;

/// One HPACK-encoded field `:status: 200` (static index 8).
pub const STATUS_200: &[u8] = &[0x88];
