//! Length-prefixed messages (PROTOCOL-HTTP2.md "Length-Prefixed-Message"),
//! the framing of gRPC messages inside a stream's DATA:
//!
//! ```text
//! Length-Prefixed-Message → Compressed-Flag Message-Length Message
//! Compressed-Flag         → 0 / 1      ; 1 octet
//! Message-Length          → {length}   ; 4 octets, big endian
//! Message                 → *{binary octet}
//! ```
//!
//! DATA frame boundaries have no relation to message boundaries, so
//! [`MessageDecoder`] takes DATA payloads as they come and hands out whole
//! messages:
//!
//! - **Zero-copy** when a message lies within one chunk: its payload is a
//!   slice of that chunk. A message spanning chunks is copied once, into a
//!   buffer that grows as its bytes arrive (never sized from the declared
//!   length up front, so a peer cannot make it allocate what it does not
//!   send).
//! - **Bounded.** A declared length above the limit is an error as soon as
//!   the 5-octet prefix is in, before any of the payload is kept. Once
//!   [`MessageDecoder::next`] has returned `Ok(None)`, the decoder holds at
//!   most the partial message it is waiting for (under the limit) and its
//!   prefix; no chunks.
//! - **Sticky errors.** After an error the stream's framing is lost; every
//!   later call returns the same error.

use std::collections::VecDeque;
use std::fmt;

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// The length of the prefix before each message: flag + length.
pub const PREFIX_LEN: usize = 5;

/// The largest length the 4-octet length field can carry.
pub const MAX_WIRE_LEN: usize = u32::MAX as usize;

/// Why a message stream cannot be framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageError {
    /// A message is longer than the limit: on receipt, its declared length
    /// (seen in its prefix) is above the decoder's `max_len`; on sending,
    /// the payload does not fit the 4-octet length (`max` is
    /// [`MAX_WIRE_LEN`]).
    TooLarge {
        /// The message's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The Compressed-Flag is neither 0 nor 1.
    BadFlag(u8),
    /// The stream ended inside a message (its prefix or its payload).
    Truncated,
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageError::TooLarge { len, max } => write!(
                f,
                "message of {len} octets is larger than the limit of {max}"
            ),
            MessageError::BadFlag(flag) => {
                write!(f, "message compressed-flag {flag} is neither 0 nor 1")
            }
            MessageError::Truncated => f.write_str("stream ended inside a message"),
        }
    }
}

impl std::error::Error for MessageError {}

/// One message as framed: its payload still compressed if `compressed`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawMessage {
    /// The Compressed-Flag: the payload is compressed with the stream's
    /// `grpc-encoding`.
    pub compressed: bool,
    /// The message bytes.
    pub payload: Bytes,
}

/// The 5-octet prefix of a message of `len` octets: the Compressed-Flag,
/// then the length, big endian. For writing the prefix and the payload as
/// separate buffers (no copy of the payload).
///
/// The length field has four octets: a `len` above [`MAX_WIRE_LEN`]
/// cannot be framed, and is written as `MAX_WIRE_LEN` (the peer then
/// refuses the message or loses the framing; it never sees a wrong short
/// message). Refuse such messages first: keep the send limit at or below
/// `MAX_WIRE_LEN`, and check the length after compression.
/// [`encode_message`] checks it.
///
/// ```
/// use mio_grpc::grpc::message_prefix;
///
/// assert_eq!(message_prefix(0x0102, true), [1, 0, 0, 1, 2]);
/// ```
#[must_use]
pub fn message_prefix(len: usize, compressed: bool) -> [u8; PREFIX_LEN] {
    let wire_len = u32::try_from(len).unwrap_or(u32::MAX);
    let [a, b, c, d] = wire_len.to_be_bytes();
    [u8::from(compressed), a, b, c, d]
}

/// Appends `payload` to `dst` as one length-prefixed message.
///
/// ```
/// use bytes::BytesMut;
/// use mio_grpc::grpc::encode_message;
///
/// let mut dst = BytesMut::new();
/// encode_message(b"hi", false, &mut dst)?;
/// assert_eq!(&dst[..], b"\x00\x00\x00\x00\x02hi");
/// # Ok::<(), mio_grpc::grpc::MessageError>(())
/// ```
///
/// # Errors
///
/// [`MessageError::TooLarge`] if the payload is longer than
/// [`MAX_WIRE_LEN`]; `dst` is left as it was.
pub fn encode_message(
    payload: &[u8],
    compressed: bool,
    dst: &mut BytesMut,
) -> Result<(), MessageError> {
    if payload.len() > MAX_WIRE_LEN {
        return Err(MessageError::TooLarge {
            len: payload.len(),
            max: MAX_WIRE_LEN,
        });
    }
    let prefix = message_prefix(payload.len(), compressed);
    dst.reserve(PREFIX_LEN + payload.len());
    dst.put_slice(&prefix);
    dst.put_slice(payload);
    Ok(())
}

/// A message's prefix, parsed.
#[derive(Clone, Copy, Debug)]
struct Prefix {
    compressed: bool,
    len: usize,
}

/// Turns a stream's DATA chunks into messages.
///
/// Feed each chunk with [`push`](MessageDecoder::push), then call
/// [`next`](MessageDecoder::next) until it returns `Ok(None)`; at the end
/// of the stream, [`finish`](MessageDecoder::finish) says whether it ended
/// between messages.
///
/// ```
/// use bytes::Bytes;
/// use mio_grpc::grpc::{MessageDecoder, MessageError, RawMessage};
///
/// let mut decoder = MessageDecoder::new(4 << 20);
/// decoder.push(Bytes::from_static(b"\x00\x00\x00\x00\x03abc\x01\x00"));
/// assert_eq!(
///     decoder.next()?,
///     Some(RawMessage { compressed: false, payload: Bytes::from_static(b"abc") })
/// );
/// assert_eq!(decoder.next()?, None); // the next prefix is incomplete
/// decoder.push(Bytes::from_static(b"\x00\x00\x01z"));
/// assert_eq!(decoder.next()?.map(|m| m.compressed), Some(true));
/// decoder.finish()?;
///
/// // A declared length over the limit fails on its prefix alone.
/// let mut decoder = MessageDecoder::new(1024);
/// decoder.push(Bytes::from_static(b"\x00\x00\x10\x00\x00"));
/// assert_eq!(decoder.next(), Err(MessageError::TooLarge { len: 1 << 20, max: 1024 }));
/// # Ok::<(), MessageError>(())
/// ```
#[derive(Debug)]
pub struct MessageDecoder {
    max_len: usize,
    /// Chunks pushed and not yet taken apart, in order.
    chunks: VecDeque<Bytes>,
    /// The octets of the current prefix seen so far (`prefix_len` of them).
    prefix: [u8; PREFIX_LEN],
    prefix_len: usize,
    /// The current message's prefix, once complete.
    current: Option<Prefix>,
    /// The current message's payload so far, when it spans chunks.
    partial: BytesMut,
    /// The first error; every later call returns it.
    error: Option<MessageError>,
}

impl MessageDecoder {
    /// A decoder that refuses messages longer than `max_len` octets (the
    /// receive limit; grpc-go's default is 4 MiB).
    #[must_use]
    pub fn new(max_len: usize) -> MessageDecoder {
        MessageDecoder {
            max_len,
            chunks: VecDeque::new(),
            prefix: [0; PREFIX_LEN],
            prefix_len: 0,
            current: None,
            partial: BytesMut::new(),
            error: None,
        }
    }

    /// The limit on a message's length.
    #[must_use]
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// The octets held: unread chunks, a partial prefix and a partial
    /// payload.
    #[must_use]
    pub fn buffered(&self) -> usize {
        self.chunks.iter().map(Bytes::len).sum::<usize>() + self.prefix_len + self.partial.len()
    }

    /// Adds a chunk of the stream (a DATA payload). Empty chunks are
    /// ignored; chunks after an error are dropped.
    pub fn push(&mut self, data: Bytes) {
        if !data.is_empty() && self.error.is_none() {
            self.chunks.push_back(data);
        }
    }

    /// The next complete message, `Ok(None)` if more data is needed.
    ///
    /// # Errors
    ///
    /// [`MessageError::TooLarge`] when a prefix declares a length above
    /// the limit, [`MessageError::BadFlag`] when its flag is not 0 or 1.
    /// Either is final: the decoder returns it from then on.
    #[allow(clippy::should_implement_trait)] // fallible: not an Iterator
    pub fn next(&mut self) -> Result<Option<RawMessage>, MessageError> {
        if let Some(err) = self.error {
            return Err(err);
        }
        let prefix = match self.current {
            Some(prefix) => prefix,
            None => match self.read_prefix() {
                Ok(Some(prefix)) => prefix,
                Ok(None) => return Ok(None),
                Err(err) => {
                    self.fail(err);
                    return Err(err);
                }
            },
        };
        self.current = Some(prefix);
        let payload = match self.read_payload(prefix.len) {
            Some(payload) => payload,
            None => return Ok(None),
        };
        self.current = None;
        Ok(Some(RawMessage {
            compressed: prefix.compressed,
            payload,
        }))
    }

    /// Checks that the stream ended between messages; call at its end,
    /// after [`next`](MessageDecoder::next) has returned `Ok(None)`.
    ///
    /// # Errors
    ///
    /// The decoder's error if it had one, else [`MessageError::Truncated`]
    /// if part of a message is held.
    pub fn finish(&self) -> Result<(), MessageError> {
        if let Some(err) = self.error {
            return Err(err);
        }
        if self.prefix_len > 0 || self.current.is_some() || !self.chunks.is_empty() {
            return Err(MessageError::Truncated);
        }
        Ok(())
    }

    /// Completes the current prefix from the chunks; `None` if they run
    /// out first.
    fn read_prefix(&mut self) -> Result<Option<Prefix>, MessageError> {
        while self.prefix_len < PREFIX_LEN {
            let Some(front) = self.chunks.front_mut() else {
                return Ok(None);
            };
            let want = PREFIX_LEN - self.prefix_len;
            let take = want.min(front.len());
            if let (Some(dst), Some(src)) = (
                self.prefix.get_mut(self.prefix_len..self.prefix_len + take),
                front.get(..take),
            ) {
                dst.copy_from_slice(src);
            }
            front.advance(take);
            self.prefix_len += take;
            if front.is_empty() {
                self.chunks.pop_front();
            }
        }
        self.prefix_len = 0;
        let [flag, a, b, c, d] = self.prefix;
        let compressed = match flag {
            0 => false,
            1 => true,
            other => return Err(MessageError::BadFlag(other)),
        };
        // u32 → usize: lossless on the 32- and 64-bit targets we build for;
        // saturating elsewhere, which the limit then refuses.
        let len = usize::try_from(u32::from_be_bytes([a, b, c, d])).unwrap_or(usize::MAX);
        if len > self.max_len {
            return Err(MessageError::TooLarge {
                len,
                max: self.max_len,
            });
        }
        Ok(Some(Prefix { compressed, len }))
    }

    /// The payload of `len` octets if all of it is here; else copies what
    /// is here into `partial` (releasing the chunks) and returns `None`.
    fn read_payload(&mut self, len: usize) -> Option<Bytes> {
        if self.partial.is_empty() {
            if len == 0 {
                return Some(Bytes::new());
            }
            // Zero-copy: the whole payload is in the first chunk.
            if let Some(front) = self.chunks.front_mut() {
                if front.len() >= len {
                    let payload = front.split_to(len);
                    if front.is_empty() {
                        self.chunks.pop_front();
                    }
                    return Some(payload);
                }
            }
        }
        while self.partial.len() < len {
            let front = self.chunks.front_mut()?;
            let take = (len - self.partial.len()).min(front.len());
            let piece = front.split_to(take);
            if front.is_empty() {
                self.chunks.pop_front();
            }
            self.partial.extend_from_slice(&piece);
        }
        Some(std::mem::take(&mut self.partial).freeze())
    }

    /// Records a fatal error and drops what is held.
    fn fail(&mut self, err: MessageError) {
        self.error = Some(err);
        self.chunks.clear();
        self.partial = BytesMut::new();
        self.current = None;
        self.prefix_len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_payload_releases_chunks() {
        let mut decoder = MessageDecoder::new(100);
        decoder.push(Bytes::from_static(b"\x00\x00\x00\x00\x0aabc"));
        assert_eq!(decoder.next(), Ok(None));
        assert!(decoder.chunks.is_empty());
        assert_eq!(decoder.partial.len(), 3);
        assert_eq!(decoder.buffered(), 3);
        decoder.push(Bytes::from_static(b"defghij\x00"));
        let message = decoder.next().unwrap().unwrap();
        assert_eq!(&message.payload[..], b"abcdefghij");
        assert_eq!(decoder.next(), Ok(None));
        assert_eq!(decoder.prefix_len, 1);
        assert_eq!(decoder.finish(), Err(MessageError::Truncated));
    }

    #[test]
    fn prefix_split_one_octet_at_a_time() {
        let mut decoder = MessageDecoder::new(100);
        for &b in b"\x01\x00\x00\x00\x01" {
            assert_eq!(decoder.next(), Ok(None));
            decoder.push(Bytes::copy_from_slice(&[b]));
        }
        assert_eq!(decoder.next(), Ok(None));
        decoder.push(Bytes::from_static(b"x"));
        let message = decoder.next().unwrap().unwrap();
        assert!(message.compressed);
        assert_eq!(&message.payload[..], b"x");
        decoder.finish().unwrap();
    }

    #[test]
    fn errors_are_sticky_and_release_memory() {
        let mut decoder = MessageDecoder::new(100);
        decoder.push(Bytes::from_static(
            b"\x02\x00\x00\x00\x01x\x00\x00\x00\x00\x00",
        ));
        assert_eq!(decoder.next(), Err(MessageError::BadFlag(2)));
        assert_eq!(decoder.buffered(), 0);
        decoder.push(Bytes::from_static(b"\x00\x00\x00\x00\x00"));
        assert_eq!(decoder.buffered(), 0);
        assert_eq!(decoder.next(), Err(MessageError::BadFlag(2)));
        assert_eq!(decoder.finish(), Err(MessageError::BadFlag(2)));
    }
}
