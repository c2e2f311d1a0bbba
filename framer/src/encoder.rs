//! The frame encoder: [`Frame`]s → bytes, HPACK-encoding field blocks and
//! splitting them at the peer's SETTINGS_MAX_FRAME_SIZE into HEADERS (or
//! PUSH_PROMISE) + CONTINUATION frames (RFC 9113 §4.3, §6.10).
//!
//! Frames other than field blocks are written exactly as given: the caller
//! (the loopy writer) cuts DATA to the peer's limits; a test peer may
//! write deliberately bad frames.

use bytes::BytesMut;

use crate::head::{DEFAULT_MAX_FRAME_SIZE, MAX_MAX_FRAME_SIZE};
use crate::{hpack, Frame};

/// Writes frames for one connection. Stateful: it holds the HPACK encoding
/// context (so frames must be written in the order they are encoded) and
/// the peer's SETTINGS_MAX_FRAME_SIZE.
///
/// ```
/// use bytes::BytesMut;
/// use framer::{Encoder, Frame, GoAway, Reason, StreamId};
///
/// let mut wire = BytesMut::new();
/// let goaway = GoAway::new(StreamId::new(7), Reason::NO_ERROR);
/// Encoder::default().encode(&Frame::GoAway(goaway), &mut wire);
/// assert_eq!(&wire[..], &[0, 0, 8, 7, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0]);
/// ```
#[derive(Default)]
pub struct Encoder {
    hpack: hpack::Encoder,
    max_frame_size: Option<u32>,
    scratch: BytesMut,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("max_frame_size", &self.max_frame_size())
            .finish_non_exhaustive()
    }
}

impl Encoder {
    /// An encoder for a peer with the RFC's initial settings.
    pub fn new() -> Encoder {
        Encoder::default()
    }

    /// The peer's SETTINGS_MAX_FRAME_SIZE in force.
    pub fn max_frame_size(&self) -> u32 {
        self.max_frame_size.unwrap_or(DEFAULT_MAX_FRAME_SIZE)
    }

    /// Applies the peer's SETTINGS_MAX_FRAME_SIZE (clamped to the RFC range).
    pub fn set_max_frame_size(&mut self, max: u32) {
        self.max_frame_size = Some(max.clamp(DEFAULT_MAX_FRAME_SIZE, MAX_MAX_FRAME_SIZE));
    }

    /// Applies the peer's SETTINGS_HEADER_TABLE_SIZE.
    pub fn set_header_table_size(&mut self, size: u32) {
        self.hpack
            .set_max_table_size(usize::try_from(size).unwrap_or(usize::MAX));
    }

    /// The HPACK encoder, e.g. to mark more field names never-indexed.
    pub fn hpack_mut(&mut self) -> &mut hpack::Encoder {
        &mut self.hpack
    }

    /// Appends `frame` to `dst`. A [`HeaderBlock::Fields`](crate::HeaderBlock::Fields)
    /// block is HPACK-encoded now (so the wire order must be the encode
    /// order) and split into CONTINUATION frames as needed.
    pub fn encode(&mut self, frame: &Frame, dst: &mut BytesMut) {
        let max = self.max_frame_size();
        match frame {
            Frame::Data(f) => f.encode(dst),
            Frame::Headers(f) => f.encode(&mut self.hpack, &mut self.scratch, max, dst),
            Frame::Priority(f) => f.encode(dst),
            Frame::RstStream(f) => f.encode(dst),
            Frame::Settings(f) => f.encode(dst),
            Frame::PushPromise(f) => f.encode(&mut self.hpack, &mut self.scratch, max, dst),
            Frame::Ping(f) => f.encode(dst),
            Frame::GoAway(f) => f.encode(dst),
            Frame::WindowUpdate(f) => f.encode(dst),
            Frame::Continuation(f) => f.encode(dst),
            Frame::Unknown(f) => f.encode(dst),
        }
    }
}
