//! PUSH_PROMISE (RFC 9113 §6.6). gRPC never pushes; the frame is parsed so
//! that a connection can reject it with the right error and keep its HPACK
//! context in sync.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::headers::FirstFrame;
use super::{padding_overhead, require_stream, strip_padding, HeaderBlock};
use crate::hpack;
use crate::{flags, FrameError, Head, Kind, Reason, StreamId, Violation};

/// A PUSH_PROMISE frame (with its CONTINUATION frames, once assembled).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushPromise {
    /// The stream the promise is made on (never 0).
    pub stream_id: StreamId,
    /// The stream the server reserves for the pushed response.
    pub promised_id: StreamId,
    /// END_HEADERS, as for [`Headers::end_headers`](crate::Headers::end_headers).
    pub end_headers: bool,
    /// Padding length when PADDED.
    pub pad_len: Option<u8>,
    /// The field block of the promised request.
    pub block: HeaderBlock,
}

impl PushPromise {
    pub(crate) fn load(head: &Head, payload: Bytes) -> Result<PushPromise, FrameError> {
        require_stream(head)?;
        let (mut payload, pad_len) = strip_padding(head, payload)?;
        if payload.len() < 4 {
            return Err(FrameError::connection(
                Reason::FRAME_SIZE_ERROR,
                Violation::FrameTooShort {
                    kind: Kind::PushPromise,
                    length: head.length,
                },
            ));
        }
        let promised_id = StreamId::new(payload.get_u32());
        Ok(PushPromise {
            stream_id: head.stream_id,
            promised_id,
            end_headers: head.has(flags::END_HEADERS),
            pad_len,
            block: HeaderBlock::Encoded(payload),
        })
    }

    pub(crate) fn encode(
        &self,
        hpack: &mut hpack::Encoder,
        scratch: &mut BytesMut,
        max_frame_size: u32,
        dst: &mut BytesMut,
    ) {
        let mut prefix = BytesMut::with_capacity(5);
        if let Some(pad) = self.pad_len {
            prefix.put_u8(pad);
        }
        prefix.put_u32(self.promised_id.value());
        let (_, padded) = padding_overhead(self.pad_len);
        let first = FirstFrame {
            kind: Kind::PushPromise,
            flags: padded,
            stream_id: self.stream_id,
            prefix: &prefix,
            pad_len: self.pad_len.unwrap_or(0),
        };
        first.put_block(
            &self.block,
            self.end_headers,
            hpack,
            scratch,
            max_frame_size,
            dst,
        );
    }
}
