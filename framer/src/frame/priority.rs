//! PRIORITY (RFC 9113 §6.3) and the stream dependency fields it shares with
//! HEADERS. RFC 9113 deprecates the priority scheme; the frames are still
//! parsed and checked (length, self-dependency) and otherwise ignored.

use bytes::{BufMut, BytesMut};

use super::require_stream;
use crate::{FrameError, Head, Kind, Reason, StreamId, Violation};

/// The Exclusive, Stream Dependency and Weight fields (RFC 9113 §5.3.1,
/// §6.2, §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamDependency {
    /// The stream this one depends on.
    pub dependency: StreamId,
    /// The weight octet as sent: the weight minus one (0 means 1, 255
    /// means 256).
    pub weight: u8,
    /// The E flag.
    pub exclusive: bool,
}

impl StreamDependency {
    /// Length of the fields on the wire.
    pub const LEN: usize = 5;

    pub(crate) fn parse(octets: [u8; 5]) -> StreamDependency {
        let [d0, d1, d2, d3, weight] = octets;
        let raw = u32::from_be_bytes([d0, d1, d2, d3]);
        StreamDependency {
            dependency: StreamId::new(raw),
            weight,
            exclusive: raw & 0x8000_0000 != 0,
        }
    }

    pub(crate) fn encode(&self, dst: &mut BytesMut) {
        let exclusive = if self.exclusive { 0x8000_0000 } else { 0 };
        dst.put_u32(self.dependency.value() | exclusive);
        dst.put_u8(self.weight);
    }
}

/// A PRIORITY frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Priority {
    /// The stream whose priority is given (never 0).
    pub stream_id: StreamId,
    /// Its dependency.
    pub dependency: StreamDependency,
}

impl Priority {
    pub(crate) fn load(head: &Head, payload: &[u8]) -> Result<Priority, FrameError> {
        require_stream(head)?;
        let octets: [u8; 5] = payload.try_into().map_err(|_| {
            // §6.3: "a stream error of type FRAME_SIZE_ERROR".
            FrameError::stream(
                head.stream_id,
                Reason::FRAME_SIZE_ERROR,
                Violation::PriorityLength {
                    length: head.length,
                },
            )
        })?;
        let dependency = StreamDependency::parse(octets);
        if dependency.dependency == head.stream_id {
            // §5.3.1: "A stream cannot depend on itself ... a stream error
            // of type PROTOCOL_ERROR."
            return Err(FrameError::stream(
                head.stream_id,
                Reason::PROTOCOL_ERROR,
                Violation::SelfDependency,
            ));
        }
        Ok(Priority {
            stream_id: head.stream_id,
            dependency,
        })
    }

    /// Writes the frame.
    pub fn encode(&self, dst: &mut BytesMut) {
        Head {
            length: 5,
            kind: Kind::Priority,
            flags: 0,
            stream_id: self.stream_id,
        }
        .encode(dst);
        self.dependency.encode(dst);
    }
}
