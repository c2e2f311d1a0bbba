//! WINDOW_UPDATE (RFC 9113 §6.9): flow-control credit for a stream or the
//! connection.

use bytes::{BufMut, BytesMut};

use crate::{FrameError, Head, Kind, Reason, StreamId, Violation};

/// A WINDOW_UPDATE frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowUpdate {
    /// The stream, or 0 for the connection window.
    pub stream_id: StreamId,
    /// The increment, 1 ..= 2^31 − 1 (the reserved bit is masked off).
    pub increment: u32,
}

impl WindowUpdate {
    /// An update of `stream_id`'s window by `increment`.
    pub fn new(stream_id: StreamId, increment: u32) -> WindowUpdate {
        WindowUpdate {
            stream_id,
            increment,
        }
    }

    pub(crate) fn load(head: &Head, payload: &[u8]) -> Result<WindowUpdate, FrameError> {
        let octets: [u8; 4] = payload.try_into().map_err(|_| {
            // §6.9: "A WINDOW_UPDATE frame with a length other than 4
            // octets MUST be treated as a connection error of type
            // FRAME_SIZE_ERROR."
            FrameError::connection(
                Reason::FRAME_SIZE_ERROR,
                Violation::WindowUpdateLength {
                    length: head.length,
                },
            )
        })?;
        let increment = u32::from_be_bytes(octets) & 0x7fff_ffff;
        if increment == 0 {
            // §6.9: a stream error on a stream, a connection error on 0.
            let error = if head.stream_id.is_zero() {
                FrameError::connection(Reason::PROTOCOL_ERROR, Violation::ZeroWindowIncrement)
            } else {
                FrameError::stream(
                    head.stream_id,
                    Reason::PROTOCOL_ERROR,
                    Violation::ZeroWindowIncrement,
                )
            };
            return Err(error);
        }
        Ok(WindowUpdate {
            stream_id: head.stream_id,
            increment,
        })
    }

    /// Writes the frame.
    pub fn encode(&self, dst: &mut BytesMut) {
        Head {
            length: 4,
            kind: Kind::WindowUpdate,
            flags: 0,
            stream_id: self.stream_id,
        }
        .encode(dst);
        dst.put_u32(self.increment & 0x7fff_ffff);
    }
}
