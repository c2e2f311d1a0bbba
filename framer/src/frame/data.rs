//! DATA (RFC 9113 §6.1): a stream's payload octets.

use bytes::{Bytes, BytesMut};

use super::{padding_overhead, put_pad_len, put_padding, require_stream, strip_padding};
use crate::{flags, FrameError, Head, Kind, StreamId};

/// A DATA frame. The payload is split off the read buffer without a copy.
///
/// ```
/// use bytes::BytesMut;
/// use framer::{Data, Decoder, Encoder, Frame, StreamId};
///
/// let mut data = Data::new(StreamId::new(1), &b"hello"[..]);
/// data.end_stream = true;
/// let mut wire = BytesMut::new();
/// Encoder::default().encode(&data.clone().into(), &mut wire);
/// assert_eq!(Decoder::default().decode(&mut wire).unwrap(), Some(Frame::Data(data)));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Data {
    /// The stream (never 0).
    pub stream_id: StreamId,
    /// END_STREAM: the sender's last frame on this stream.
    pub end_stream: bool,
    /// Padding length when the frame is PADDED. Padding is stripped on
    /// decode but still counts against flow control ([`Data::flow_len`]).
    pub pad_len: Option<u8>,
    /// The application data.
    pub payload: Bytes,
}

impl Data {
    /// An unpadded DATA frame without END_STREAM.
    pub fn new(stream_id: StreamId, payload: impl Into<Bytes>) -> Data {
        Data {
            stream_id,
            end_stream: false,
            pad_len: None,
            payload: payload.into(),
        }
    }

    /// The flow-controlled length: the whole frame payload, Pad Length
    /// octet and padding included (RFC 9113 §6.9.1).
    pub fn flow_len(&self) -> u32 {
        // The payload came from (or goes into) one frame, so it fits in 24 bits.
        let (overhead, _) = padding_overhead(self.pad_len);
        u32::try_from(self.payload.len())
            .unwrap_or(u32::MAX)
            .saturating_add(overhead)
    }

    /// The frame header this frame encodes with.
    pub fn head(&self) -> Head {
        let (_, padded) = padding_overhead(self.pad_len);
        let end_stream = if self.end_stream {
            flags::END_STREAM
        } else {
            0
        };
        Head {
            length: self.flow_len(),
            kind: Kind::Data,
            flags: padded | end_stream,
            stream_id: self.stream_id,
        }
    }

    pub(crate) fn load(head: &Head, payload: Bytes) -> Result<Data, FrameError> {
        require_stream(head)?;
        let (payload, pad_len) = strip_padding(head, payload)?;
        Ok(Data {
            stream_id: head.stream_id,
            end_stream: head.has(flags::END_STREAM),
            pad_len,
            payload,
        })
    }

    /// Writes the frame: header, then payload (with zeroed padding).
    pub fn encode(&self, dst: &mut BytesMut) {
        self.head().encode(dst);
        put_pad_len(self.pad_len, dst);
        dst.extend_from_slice(&self.payload);
        put_padding(self.pad_len, dst);
    }
}
