//! CONTINUATION (RFC 9113 §6.10): the rest of a field block. The decoder
//! absorbs these into the HEADERS or PUSH_PROMISE they continue; they are
//! seen as frames only through [`decode_frame`](crate::decode_frame).

use bytes::{Bytes, BytesMut};

use super::require_stream;
use crate::{flags, FrameError, Head, Kind, StreamId};

/// A CONTINUATION frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Continuation {
    /// The stream (never 0; must match the open field block's).
    pub stream_id: StreamId,
    /// END_HEADERS: the field block ends here.
    pub end_headers: bool,
    /// The HPACK-encoded fragment.
    pub fragment: Bytes,
}

impl Continuation {
    pub(crate) fn load(head: &Head, payload: Bytes) -> Result<Continuation, FrameError> {
        require_stream(head)?;
        Ok(Continuation {
            stream_id: head.stream_id,
            end_headers: head.has(flags::END_HEADERS),
            fragment: payload,
        })
    }

    /// Writes the frame.
    pub fn encode(&self, dst: &mut BytesMut) {
        let end = if self.end_headers {
            flags::END_HEADERS
        } else {
            0
        };
        Head {
            length: u32::try_from(self.fragment.len()).unwrap_or(u32::MAX),
            kind: Kind::Continuation,
            flags: end,
            stream_id: self.stream_id,
        }
        .encode(dst);
        dst.extend_from_slice(&self.fragment);
    }
}
