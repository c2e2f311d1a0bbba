//! PING (RFC 9113 §6.7): round-trip measurement and liveness.

use bytes::BytesMut;

use super::forbid_stream;
use crate::{flags, FrameError, Head, Kind, Reason, StreamId, Violation};

/// A PING frame or its acknowledgement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ping {
    /// ACK: this answers a PING with the same payload.
    pub ack: bool,
    /// The opaque 8 octets.
    pub payload: [u8; 8],
}

impl Ping {
    /// A PING carrying `payload`.
    pub fn new(payload: [u8; 8]) -> Ping {
        Ping {
            ack: false,
            payload,
        }
    }

    /// The acknowledgement of a PING with `payload`.
    pub fn pong(payload: [u8; 8]) -> Ping {
        Ping { ack: true, payload }
    }

    pub(crate) fn load(head: &Head, payload: &[u8]) -> Result<Ping, FrameError> {
        forbid_stream(head)?;
        let payload: [u8; 8] = payload.try_into().map_err(|_| {
            FrameError::connection(
                Reason::FRAME_SIZE_ERROR,
                Violation::PingLength {
                    length: head.length,
                },
            )
        })?;
        Ok(Ping {
            ack: head.has(flags::ACK),
            payload,
        })
    }

    /// Writes the frame.
    pub fn encode(&self, dst: &mut BytesMut) {
        let flags = if self.ack { flags::ACK } else { 0 };
        Head {
            length: 8,
            kind: Kind::Ping,
            flags,
            stream_id: StreamId::ZERO,
        }
        .encode(dst);
        dst.extend_from_slice(&self.payload);
    }
}
