//! GOAWAY (RFC 9113 §6.8): connection shutdown, with the last stream the
//! sender may have processed.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::forbid_stream;
use crate::{FrameError, Head, Kind, Reason, StreamId, Violation};

/// A GOAWAY frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoAway {
    /// The highest stream the sender might have acted on; streams above it
    /// were not processed and may be retried.
    pub last_stream_id: StreamId,
    /// Why the connection is closing.
    pub reason: Reason,
    /// Opaque diagnostic data (gRPC puts e.g. `too_many_pings` here).
    pub debug_data: Bytes,
}

impl GoAway {
    /// A GOAWAY with no debug data.
    pub fn new(last_stream_id: StreamId, reason: Reason) -> GoAway {
        GoAway {
            last_stream_id,
            reason,
            debug_data: Bytes::new(),
        }
    }

    pub(crate) fn load(head: &Head, mut payload: Bytes) -> Result<GoAway, FrameError> {
        forbid_stream(head)?;
        if payload.len() < 8 {
            return Err(FrameError::connection(
                Reason::FRAME_SIZE_ERROR,
                Violation::FrameTooShort {
                    kind: Kind::GoAway,
                    length: head.length,
                },
            ));
        }
        let last_stream_id = StreamId::new(payload.get_u32());
        let reason = Reason::from(payload.get_u32());
        Ok(GoAway {
            last_stream_id,
            reason,
            debug_data: payload,
        })
    }

    /// Writes the frame.
    pub fn encode(&self, dst: &mut BytesMut) {
        let length = u32::try_from(8 + self.debug_data.len()).unwrap_or(u32::MAX);
        Head {
            length,
            kind: Kind::GoAway,
            flags: 0,
            stream_id: StreamId::ZERO,
        }
        .encode(dst);
        dst.put_u32(self.last_stream_id.value());
        dst.put_u32(self.reason.code());
        dst.extend_from_slice(&self.debug_data);
    }
}
