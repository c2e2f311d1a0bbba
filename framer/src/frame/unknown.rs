//! Frames of unknown type (RFC 9113 §4.1, §5.5): carried so the connection
//! can ignore them (or a test peer can send them).

use bytes::{Bytes, BytesMut};

use crate::{Head, Kind, StreamId};

/// A frame whose type octet this crate does not know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unknown {
    /// The type octet.
    pub kind: u8,
    /// The flags as sent.
    pub flags: u8,
    /// The stream as sent.
    pub stream_id: StreamId,
    /// The payload.
    pub payload: Bytes,
}

impl Unknown {
    pub(crate) fn load(kind: u8, head: &Head, payload: Bytes) -> Unknown {
        Unknown {
            kind,
            flags: head.flags,
            stream_id: head.stream_id,
            payload,
        }
    }

    /// Writes the frame.
    pub fn encode(&self, dst: &mut BytesMut) {
        let length = u32::try_from(self.payload.len()).unwrap_or(u32::MAX);
        Head {
            length,
            kind: Kind::Unknown(self.kind),
            flags: self.flags,
            stream_id: self.stream_id,
        }
        .encode(dst);
        dst.extend_from_slice(&self.payload);
    }
}
