//! RST_STREAM (RFC 9113 §6.4): terminate one stream.

use bytes::{BufMut, BytesMut};

use super::require_stream;
use crate::{FrameError, Head, Kind, Reason, StreamId, Violation};

/// An RST_STREAM frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RstStream {
    /// The stream to reset (never 0).
    pub stream_id: StreamId,
    /// Why.
    pub reason: Reason,
}

impl RstStream {
    /// A reset of `stream_id` with `reason`.
    pub fn new(stream_id: StreamId, reason: Reason) -> RstStream {
        RstStream { stream_id, reason }
    }

    pub(crate) fn load(head: &Head, payload: &[u8]) -> Result<RstStream, FrameError> {
        require_stream(head)?;
        let octets: [u8; 4] = payload.try_into().map_err(|_| {
            FrameError::connection(
                Reason::FRAME_SIZE_ERROR,
                Violation::RstStreamLength {
                    length: head.length,
                },
            )
        })?;
        Ok(RstStream {
            stream_id: head.stream_id,
            reason: u32::from_be_bytes(octets).into(),
        })
    }

    /// Writes the frame.
    pub fn encode(&self, dst: &mut BytesMut) {
        Head {
            length: 4,
            kind: Kind::RstStream,
            flags: 0,
            stream_id: self.stream_id,
        }
        .encode(dst);
        dst.put_u32(self.reason.code());
    }
}
