//! HEADERS (RFC 9113 §6.2), the `HeaderBlock` it carries, and the writing
//! of a field block across HEADERS/PUSH_PROMISE + CONTINUATION frames.

use bytes::{BufMut, Bytes, BytesMut};

use super::{padding_overhead, require_stream, strip_padding, StreamDependency};
use crate::hpack::{self, HeaderList};
use crate::{flags, FrameError, Head, Kind, Reason, StreamId, Violation};

/// A field block: the HPACK-encoded octets as they are on the wire, or the
/// decoded field list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderBlock {
    /// A raw, HPACK-encoded fragment: what
    /// [`decode_frame`](crate::decode_frame) yields and what a test peer
    /// sends verbatim (one frame, flags as given).
    Encoded(Bytes),
    /// Decoded fields: what [`Decoder::decode`](crate::Decoder::decode)
    /// yields once HEADERS and CONTINUATION are assembled, and what
    /// [`Encoder`](crate::Encoder) HPACK-encodes (split at the peer's
    /// MAX_FRAME_SIZE into CONTINUATION frames as needed).
    Fields(HeaderList),
}

impl HeaderBlock {
    /// The decoded fields, if this block is decoded.
    pub fn fields(&self) -> Option<&HeaderList> {
        match self {
            HeaderBlock::Fields(fields) => Some(fields),
            HeaderBlock::Encoded(_) => None,
        }
    }
}

/// A HEADERS frame (with its CONTINUATION frames, once assembled).
///
/// ```
/// use bytes::BytesMut;
/// use framer::{hpack::HeaderField, Decoder, Encoder, Frame, HeaderBlock, Headers, StreamId};
///
/// let fields = vec![HeaderField::new(":status", "200"), HeaderField::new("grpc-status", "0")];
/// let mut headers = Headers::new(StreamId::new(1), HeaderBlock::Fields(fields));
/// headers.end_stream = true;
/// let mut wire = BytesMut::new();
/// Encoder::default().encode(&headers.clone().into(), &mut wire);
/// let decoded = Decoder::default().decode(&mut wire).unwrap();
/// assert_eq!(decoded, Some(Frame::Headers(headers)));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Headers {
    /// The stream (never 0).
    pub stream_id: StreamId,
    /// END_STREAM: no DATA follows (a trailers block, or a headers-only
    /// request or response).
    pub end_stream: bool,
    /// END_HEADERS: no CONTINUATION follows. Always true on decoded
    /// frames; ignored when encoding [`HeaderBlock::Fields`], which the
    /// encoder splits itself.
    pub end_headers: bool,
    /// The deprecated priority fields (PRIORITY flag), if present.
    pub priority: Option<StreamDependency>,
    /// Padding length when PADDED.
    pub pad_len: Option<u8>,
    /// The field block.
    pub block: HeaderBlock,
}

impl Headers {
    /// A HEADERS frame with END_HEADERS, no END_STREAM, no priority, no
    /// padding.
    pub fn new(stream_id: StreamId, block: HeaderBlock) -> Headers {
        Headers {
            stream_id,
            end_stream: false,
            end_headers: true,
            priority: None,
            pad_len: None,
            block,
        }
    }

    pub(crate) fn load(head: &Head, payload: Bytes) -> Result<Headers, FrameError> {
        require_stream(head)?;
        let (mut payload, pad_len) = strip_padding(head, payload)?;
        let priority = if head.has(flags::PRIORITY) {
            if payload.len() < StreamDependency::LEN {
                return Err(FrameError::connection(
                    Reason::FRAME_SIZE_ERROR,
                    Violation::FrameTooShort {
                        kind: Kind::Headers,
                        length: head.length,
                    },
                ));
            }
            let fields = payload.split_to(StreamDependency::LEN);
            let octets: [u8; 5] = fields.as_ref().try_into().unwrap_or_default();
            // Self-dependency (§5.3.1) is a stream error, checked by the
            // decoder after the field block is decoded, so that the HPACK
            // context stays in sync.
            Some(StreamDependency::parse(octets))
        } else {
            None
        };
        Ok(Headers {
            stream_id: head.stream_id,
            end_stream: head.has(flags::END_STREAM),
            end_headers: head.has(flags::END_HEADERS),
            priority,
            pad_len,
            block: HeaderBlock::Encoded(payload),
        })
    }

    /// §5.3.1: a stream error if the frame makes its stream depend on itself.
    pub(crate) fn check_dependency(&self) -> Result<(), FrameError> {
        match self.priority {
            Some(dep) if dep.dependency == self.stream_id => Err(FrameError::stream(
                self.stream_id,
                Reason::PROTOCOL_ERROR,
                Violation::SelfDependency,
            )),
            _ => Ok(()),
        }
    }

    /// Writes the frame; `Fields` are HPACK-encoded with `hpack` (into
    /// `scratch`) and split at `max_frame_size`.
    pub(crate) fn encode(
        &self,
        hpack: &mut hpack::Encoder,
        scratch: &mut BytesMut,
        max_frame_size: u32,
        dst: &mut BytesMut,
    ) {
        let mut prefix = BytesMut::with_capacity(6);
        let (_, mut flag_bits) = padding_overhead(self.pad_len);
        if let Some(pad) = self.pad_len {
            prefix.put_u8(pad);
        }
        if let Some(dep) = &self.priority {
            dep.encode(&mut prefix);
            flag_bits |= flags::PRIORITY;
        }
        if self.end_stream {
            flag_bits |= flags::END_STREAM;
        }
        let first = FirstFrame {
            kind: Kind::Headers,
            flags: flag_bits,
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

/// The first frame of a field block: HEADERS or PUSH_PROMISE, with the
/// octets that precede the fragment (pad length, priority or promised id)
/// and the padding that follows it.
pub(crate) struct FirstFrame<'a> {
    pub(crate) kind: Kind,
    /// Flags other than END_HEADERS.
    pub(crate) flags: u8,
    pub(crate) stream_id: StreamId,
    pub(crate) prefix: &'a [u8],
    pub(crate) pad_len: u8,
}

impl FirstFrame<'_> {
    fn put_head(&self, fragment_len: usize, end_headers: bool, dst: &mut BytesMut) {
        let length = self.prefix.len() + fragment_len + usize::from(self.pad_len);
        let end = if end_headers { flags::END_HEADERS } else { 0 };
        Head {
            length: u32::try_from(length).unwrap_or(u32::MAX),
            kind: self.kind,
            flags: self.flags | end,
            stream_id: self.stream_id,
        }
        .encode(dst);
        dst.put_slice(self.prefix);
    }

    /// Writes `block`: an encoded fragment as one frame with `end_headers`
    /// as given; fields HPACK-encoded (into `scratch`) and split.
    pub(crate) fn put_block(
        &self,
        block: &HeaderBlock,
        end_headers: bool,
        hpack: &mut hpack::Encoder,
        scratch: &mut BytesMut,
        max_frame_size: u32,
        dst: &mut BytesMut,
    ) {
        match block {
            HeaderBlock::Encoded(fragment) => self.put_single(fragment, end_headers, dst),
            HeaderBlock::Fields(fields) => {
                scratch.clear();
                hpack.encode(fields, scratch);
                self.put_split(scratch, max_frame_size, dst);
            }
        }
    }

    /// One frame carrying `fragment` as given.
    pub(crate) fn put_single(&self, fragment: &[u8], end_headers: bool, dst: &mut BytesMut) {
        self.put_head(fragment.len(), end_headers, dst);
        dst.put_slice(fragment);
        dst.put_bytes(0, usize::from(self.pad_len));
    }

    /// The whole `block`, split into this frame and CONTINUATION frames of
    /// at most `max_frame_size` octets; END_HEADERS on the last.
    pub(crate) fn put_split(&self, block: &[u8], max_frame_size: u32, dst: &mut BytesMut) {
        let max = usize::try_from(max_frame_size).unwrap_or(usize::MAX).max(1);
        let overhead = self.prefix.len() + usize::from(self.pad_len);
        let room = max.saturating_sub(overhead);
        let (first, mut rest) = block.split_at(room.min(block.len()));
        self.put_head(first.len(), rest.is_empty(), dst);
        dst.put_slice(first);
        dst.put_bytes(0, usize::from(self.pad_len));
        while !rest.is_empty() {
            let (chunk, tail) = rest.split_at(max.min(rest.len()));
            rest = tail;
            let end = if rest.is_empty() {
                flags::END_HEADERS
            } else {
                0
            };
            Head {
                length: u32::try_from(chunk.len()).unwrap_or(u32::MAX),
                kind: Kind::Continuation,
                flags: end,
                stream_id: self.stream_id,
            }
            .encode(dst);
            dst.put_slice(chunk);
        }
    }
}
