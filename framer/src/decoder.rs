//! The frame decoder: bytes → [`Frame`]s, with every single-frame rule of
//! RFC 9113 §4 and §6 checked, field blocks assembled from HEADERS /
//! PUSH_PROMISE + CONTINUATION (§4.3, §6.10) and HPACK-decoded.
//!
//! Invariants:
//! - A frame is rejected by its 9-octet header alone when it is too large
//!   or interrupts a field block, so an oversized payload is never waited
//!   for or buffered.
//! - A field block in progress is bounded in octets and in CONTINUATION
//!   frames (the CVE-2024-27316 class of floods).
//! - After a stream error the decoder is ready for the next frame and its
//!   HPACK context is intact; after a connection error it must be dropped.

use bytes::{Buf, BytesMut};

use crate::head::{DEFAULT_MAX_FRAME_SIZE, HEAD_LEN};
use crate::hpack::{self, HpackError};
use crate::{Frame, FrameError, Head, HeaderBlock, Kind, Reason, StreamId, Violation};

/// The receive limits a [`Decoder`] enforces. All are ours to choose; the
/// first three are what we advertise in SETTINGS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecoderConfig {
    /// Our SETTINGS_MAX_FRAME_SIZE: larger frames are FRAME_SIZE_ERROR.
    /// Default 16,384 (the RFC's initial value).
    pub max_frame_size: u32,
    /// Our SETTINGS_HEADER_TABLE_SIZE in force: the most dynamic-table
    /// octets the peer's encoder may use. Default 4,096. A connection
    /// starts at 4,096 whatever it advertises (the peer encodes with the
    /// RFC default until it has seen our SETTINGS) and applies a smaller
    /// value with [`Decoder::set_header_table_size`] once it is acknowledged.
    pub header_table_size: u32,
    /// Our SETTINGS_MAX_HEADER_LIST_SIZE: a larger decoded field section is
    /// a stream error (REFUSED_STREAM). Default 64 KiB.
    pub max_header_list_size: u32,
    /// The most octets of one field block buffered across HEADERS and
    /// CONTINUATION frames; more is a connection error (ENHANCE_YOUR_CALM).
    /// Default 128 KiB.
    pub max_header_block_size: usize,
    /// The most CONTINUATION frames in one field block; more is a
    /// connection error (ENHANCE_YOUR_CALM). Default 128.
    pub max_continuation_frames: usize,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        DecoderConfig {
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            header_table_size: 4096,
            max_header_list_size: 64 * 1024,
            max_header_block_size: 128 * 1024,
            max_continuation_frames: 128,
        }
    }
}

/// A field block whose END_HEADERS has not arrived yet.
#[derive(Debug)]
struct OpenBlock {
    /// The HEADERS or PUSH_PROMISE that opened it (its block still empty).
    first: Frame,
    stream_id: StreamId,
    fragments: BytesMut,
    continuations: usize,
}

/// Turns bytes into frames for one connection. Stateful: it holds the
/// HPACK decoding context and any field block in progress.
///
/// ```
/// use bytes::BytesMut;
/// use framer::{Decoder, Frame, Ping};
///
/// let mut decoder = Decoder::default();
/// let mut buf = BytesMut::from(&[0, 0, 8, 6, 0, 0, 0, 0, 0][..]); // a PING header
/// assert_eq!(decoder.decode(&mut buf).unwrap(), None); // payload not here yet
/// buf.extend_from_slice(b"12345678");
/// assert_eq!(decoder.decode(&mut buf).unwrap(), Some(Frame::Ping(Ping::new(*b"12345678"))));
/// assert!(buf.is_empty());
/// ```
pub struct Decoder {
    config: DecoderConfig,
    hpack: hpack::Decoder,
    open: Option<OpenBlock>,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(DecoderConfig::default())
    }
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("config", &self.config)
            .field("open", &self.open)
            .finish_non_exhaustive()
    }
}

impl Decoder {
    /// A decoder enforcing `config`.
    pub fn new(config: DecoderConfig) -> Decoder {
        let table = usize::try_from(config.header_table_size).unwrap_or(usize::MAX);
        Decoder {
            config,
            hpack: hpack::Decoder::new(table),
            open: None,
        }
    }

    /// The limits in force.
    pub fn config(&self) -> &DecoderConfig {
        &self.config
    }

    /// Applies a new SETTINGS_MAX_FRAME_SIZE of ours (once the peer has
    /// acknowledged it). Clamped to the RFC's range.
    pub fn set_max_frame_size(&mut self, max: u32) {
        self.config.max_frame_size =
            max.clamp(DEFAULT_MAX_FRAME_SIZE, crate::head::MAX_MAX_FRAME_SIZE);
    }

    /// Applies a new SETTINGS_HEADER_TABLE_SIZE of ours (once acknowledged).
    pub fn set_header_table_size(&mut self, size: u32) {
        self.config.header_table_size = size;
        self.hpack
            .set_max_table_size(usize::try_from(size).unwrap_or(usize::MAX));
    }

    /// Applies a new SETTINGS_MAX_HEADER_LIST_SIZE of ours.
    pub fn set_max_header_list_size(&mut self, size: u32) {
        self.config.max_header_list_size = size;
    }

    /// True while a field block awaits its CONTINUATION frames.
    pub fn in_header_block(&self) -> bool {
        self.open.is_some()
    }

    /// Decodes the next frame from `buf`, consuming its octets.
    ///
    /// Returns `Ok(None)` when `buf` does not yet hold a whole frame (or
    /// holds only part of a field block); call again with more bytes.
    /// HEADERS and PUSH_PROMISE come out once, assembled and decoded
    /// ([`HeaderBlock::Fields`], `end_headers` set); CONTINUATION frames
    /// never come out. DATA payloads are split off `buf` without a copy.
    ///
    /// On a [stream error](crate::Scope::Stream) the offending frame has
    /// been consumed and decoding can go on; on a connection error the
    /// decoder must not be used again.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        loop {
            let Some(head) = peek_head(buf) else {
                return Ok(None);
            };
            check_size(&head, self.config.max_frame_size)?;
            self.check_sequence(&head)?;
            let Some(frame) = take_frame(&head, buf)? else {
                return Ok(None);
            };
            match frame {
                Frame::Headers(headers) if headers.end_headers => {
                    return self.finish(Frame::Headers(headers)).map(Some);
                }
                Frame::PushPromise(promise) if promise.end_headers => {
                    return self.finish(Frame::PushPromise(promise)).map(Some);
                }
                Frame::Headers(_) | Frame::PushPromise(_) => self.open_block(frame)?,
                Frame::Continuation(continuation) => {
                    if let Some(frame) = self.continue_block(continuation)? {
                        return Ok(Some(frame));
                    }
                }
                other => return Ok(Some(other)),
            }
        }
    }

    /// §4.3, §6.10: only CONTINUATION on the same stream may follow an
    /// unfinished field block, and CONTINUATION may follow nothing else.
    fn check_sequence(&self, head: &Head) -> Result<(), FrameError> {
        match (&self.open, head.kind) {
            (Some(open), Kind::Continuation) if open.stream_id == head.stream_id => Ok(()),
            (Some(_), kind) => Err(FrameError::connection(
                Reason::PROTOCOL_ERROR,
                Violation::InterruptedHeaderBlock {
                    kind,
                    stream_id: head.stream_id,
                },
            )),
            (None, Kind::Continuation) => Err(FrameError::connection(
                Reason::PROTOCOL_ERROR,
                Violation::UnexpectedContinuation,
            )),
            (None, _) => Ok(()),
        }
    }

    fn open_block(&mut self, mut first: Frame) -> Result<(), FrameError> {
        let fragment = match &mut first {
            Frame::Headers(h) => {
                std::mem::replace(&mut h.block, HeaderBlock::Encoded(Default::default()))
            }
            Frame::PushPromise(p) => {
                std::mem::replace(&mut p.block, HeaderBlock::Encoded(Default::default()))
            }
            _ => return Ok(()),
        };
        let HeaderBlock::Encoded(fragment) = fragment else {
            return Ok(());
        };
        check_block_size(fragment.len(), self.config.max_header_block_size)?;
        let mut fragments = BytesMut::with_capacity(fragment.len().saturating_mul(2));
        fragments.extend_from_slice(&fragment);
        let stream_id = first.stream_id();
        self.open = Some(OpenBlock {
            first,
            stream_id,
            fragments,
            continuations: 0,
        });
        Ok(())
    }

    fn continue_block(
        &mut self,
        continuation: crate::Continuation,
    ) -> Result<Option<Frame>, FrameError> {
        let Some(open) = self.open.as_mut() else {
            // check_sequence rejected this case already.
            return Err(FrameError::connection(
                Reason::PROTOCOL_ERROR,
                Violation::UnexpectedContinuation,
            ));
        };
        open.continuations += 1;
        if open.continuations > self.config.max_continuation_frames {
            return Err(FrameError::connection(
                Reason::ENHANCE_YOUR_CALM,
                Violation::TooManyContinuations {
                    limit: self.config.max_continuation_frames,
                },
            ));
        }
        let size = open
            .fragments
            .len()
            .saturating_add(continuation.fragment.len());
        check_block_size(size, self.config.max_header_block_size)?;
        open.fragments.extend_from_slice(&continuation.fragment);
        if !continuation.end_headers {
            return Ok(None);
        }
        let Some(OpenBlock {
            mut first,
            fragments,
            ..
        }) = self.open.take()
        else {
            return Ok(None);
        };
        match &mut first {
            Frame::Headers(h) => h.block = HeaderBlock::Encoded(fragments.freeze()),
            Frame::PushPromise(p) => p.block = HeaderBlock::Encoded(fragments.freeze()),
            _ => {}
        }
        self.finish(first).map(Some)
    }

    /// HPACK-decodes a complete field block (`HeaderBlock::Encoded`) into
    /// `Fields` and applies the checks that must wait for it.
    fn finish(&mut self, mut frame: Frame) -> Result<Frame, FrameError> {
        let (block, error_stream) = match &mut frame {
            Frame::Headers(h) => {
                h.end_headers = true;
                (&mut h.block, h.stream_id)
            }
            Frame::PushPromise(p) => {
                p.end_headers = true;
                (&mut p.block, p.promised_id)
            }
            _ => return Ok(frame),
        };
        if let HeaderBlock::Encoded(encoded) = block {
            let limit = usize::try_from(self.config.max_header_list_size).unwrap_or(usize::MAX);
            let fields = self.hpack.decode(encoded, limit).map_err(|e| match e {
                HpackError::Compression(why) => {
                    FrameError::connection(Reason::COMPRESSION_ERROR, Violation::Compression(why))
                }
                HpackError::ListTooLarge { size, limit } => FrameError::stream(
                    error_stream,
                    Reason::REFUSED_STREAM,
                    Violation::HeaderListTooLarge { size, limit },
                ),
            })?;
            *block = HeaderBlock::Fields(fields);
        }
        if let Frame::Headers(h) = &frame {
            h.check_dependency()?;
        }
        Ok(frame)
    }
}

/// Decodes one frame from `buf` with no connection state: field blocks are
/// returned raw ([`HeaderBlock::Encoded`]) and CONTINUATION frames as they
/// are; the sequencing of field blocks is not checked. For test peers,
/// tools and fuzzing; a connection uses [`Decoder::decode`].
///
/// ```
/// use bytes::BytesMut;
/// use framer::{decode_frame, Frame, WindowUpdate, StreamId};
///
/// let mut buf = BytesMut::from(&[0, 0, 4, 8, 0, 0, 0, 0, 3, 0, 0, 1, 0][..]);
/// let frame = decode_frame(&mut buf, 16_384).unwrap();
/// assert_eq!(frame, Some(Frame::WindowUpdate(WindowUpdate::new(StreamId::new(3), 256))));
/// ```
pub fn decode_frame(buf: &mut BytesMut, max_frame_size: u32) -> Result<Option<Frame>, FrameError> {
    let Some(head) = peek_head(buf) else {
        return Ok(None);
    };
    check_size(&head, max_frame_size)?;
    take_frame(&head, buf)
}

/// The CVE-2024-27316 bound on a buffered field block.
fn check_block_size(size: usize, limit: usize) -> Result<(), FrameError> {
    if size > limit {
        return Err(FrameError::connection(
            Reason::ENHANCE_YOUR_CALM,
            Violation::HeaderBlockTooLarge { size, limit },
        ));
    }
    Ok(())
}

fn peek_head(buf: &BytesMut) -> Option<Head> {
    let octets: [u8; HEAD_LEN] = buf.get(..HEAD_LEN)?.try_into().ok()?;
    Some(Head::parse(octets))
}

/// §4.2: "An endpoint MUST send an error code of FRAME_SIZE_ERROR if a
/// frame exceeds the size defined in SETTINGS_MAX_FRAME_SIZE". Reported as a
/// connection error for every type: the payload is never read.
fn check_size(head: &Head, max_frame_size: u32) -> Result<(), FrameError> {
    if head.length > max_frame_size {
        return Err(FrameError::connection(
            Reason::FRAME_SIZE_ERROR,
            Violation::FrameTooLarge {
                kind: head.kind,
                length: head.length,
                max: max_frame_size,
            },
        ));
    }
    Ok(())
}

/// Splits the frame off `buf` once all of it is there, and loads it.
fn take_frame(head: &Head, buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
    let length = usize::try_from(head.length).unwrap_or(usize::MAX);
    let total = HEAD_LEN.saturating_add(length);
    if buf.len() < total {
        buf.reserve(total - buf.len());
        return Ok(None);
    }
    buf.advance(HEAD_LEN);
    let payload = buf.split_to(length).freeze();
    Frame::load(head, payload).map(Some)
}
