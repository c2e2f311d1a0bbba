//! `StreamId`: the 31-bit stream identifier of RFC 9113 §5.1.1.
//!
//! The reserved high bit is masked off on the way in (RFC 9113 §4.1: it
//! "MUST remain unset when sending and MUST be ignored when receiving"), so
//! a `StreamId` always holds a value in `0..=2^31-1`.

use std::fmt;

/// A stream identifier: 31 bits, the reserved bit always clear.
///
/// ```
/// use framer::StreamId;
/// let id = StreamId::new(0x8000_0003); // reserved bit set on the wire
/// assert_eq!(id.value(), 3);
/// assert!(id.is_client_initiated());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId(u32);

impl StreamId {
    /// Stream 0: the connection itself.
    pub const ZERO: StreamId = StreamId(0);
    /// The largest stream identifier, 2^31 − 1.
    pub const MAX: StreamId = StreamId(0x7fff_ffff);

    /// A stream id from 32 bits, ignoring the reserved bit.
    pub const fn new(raw: u32) -> StreamId {
        StreamId(raw & 0x7fff_ffff)
    }

    /// The 31-bit value.
    pub const fn value(self) -> u32 {
        self.0
    }

    /// True for stream 0, the connection control stream.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// True for odd ids, which clients open (RFC 9113 §5.1.1).
    pub const fn is_client_initiated(self) -> bool {
        self.0 % 2 == 1
    }

    /// True for non-zero even ids, which servers open (push).
    pub const fn is_server_initiated(self) -> bool {
        self.0 != 0 && self.0 % 2 == 0
    }

    /// The next id of the same parity, or `None` past 2^31 − 1.
    pub const fn next(self) -> Option<StreamId> {
        if self.0 >= StreamId::MAX.0 - 1 {
            None
        } else {
            Some(StreamId(self.0 + 2))
        }
    }
}

impl From<u32> for StreamId {
    fn from(raw: u32) -> StreamId {
        StreamId::new(raw)
    }
}

impl From<StreamId> for u32 {
    fn from(id: StreamId) -> u32 {
        id.0
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
