//! Per-message compression (PROTOCOL-HTTP2.md "Message-Encoding", grpc/grpc
//! `doc/compression.md`): the `grpc-encoding` a stream's compressed
//! messages use, and the `grpc-accept-encoding` we advertise.
//!
//! We speak `identity` and `gzip` (through `flate2`, pure Rust). Each
//! message is compressed on its own: no context spans messages.
//!
//! Decompression is bounded: [`decompress`] stops as soon as the output
//! passes the receive limit, so a small message that inflates to gigabytes
//! (a zip bomb) costs at most the limit in memory and the time to inflate
//! that much, and fails with [`CompressionError::TooLarge`].

use std::fmt;
use std::io::{Read, Write};

use bytes::Bytes;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;

/// A message encoding (`grpc-encoding` value).
///
/// ```
/// use mio_grpc::grpc::{compress, decompress, Encoding};
///
/// assert_eq!(Encoding::from_header(b"gzip"), Some(Encoding::Gzip));
/// assert_eq!(Encoding::from_header(b"snappy"), None);
/// assert_eq!(Encoding::Gzip.as_str(), "gzip");
///
/// let message = b"hello hello hello hello".repeat(10);
/// let packed = compress(Encoding::Gzip, &message)?;
/// assert!(packed.len() < message.len());
/// assert_eq!(decompress(Encoding::Gzip, &packed, 4 << 20)?, message);
/// # Ok::<(), mio_grpc::grpc::CompressionError>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// No compression (the default).
    #[default]
    Identity,
    /// gzip (RFC 1952).
    Gzip,
}

impl Encoding {
    /// The encoding a `grpc-encoding` value names; `None` for one we do not
    /// support (the server answers UNIMPLEMENTED). Names compare
    /// ASCII-case-insensitively, surrounding spaces ignored.
    #[must_use]
    pub fn from_header(value: &[u8]) -> Option<Encoding> {
        let value = value.trim_ascii();
        if value.eq_ignore_ascii_case(b"identity") {
            Some(Encoding::Identity)
        } else if value.eq_ignore_ascii_case(b"gzip") {
            Some(Encoding::Gzip)
        } else {
            None
        }
    }

    /// The name, as sent in `grpc-encoding`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Encoding::Identity => "identity",
            Encoding::Gzip => "gzip",
        }
    }

    /// Whether a peer's `grpc-accept-encoding` (a comma-separated list)
    /// accepts this encoding. `identity` is always accepted.
    ///
    /// ```
    /// use mio_grpc::grpc::Encoding;
    ///
    /// assert!(Encoding::Gzip.accepted_by(b"deflate, gzip"));
    /// assert!(!Encoding::Gzip.accepted_by(b"deflate"));
    /// assert!(Encoding::Identity.accepted_by(b""));
    /// ```
    #[must_use]
    pub fn accepted_by(self, accept_encoding: &[u8]) -> bool {
        self == Encoding::Identity
            || accept_encoding
                .split(|&b| b == b',')
                .any(|name| Encoding::from_header(name) == Some(self))
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Our `grpc-accept-encoding`: the encodings we decompress besides
/// `identity`, which is implicit.
#[must_use]
pub const fn accept_encoding_header() -> &'static str {
    "gzip"
}

/// Why a message could not be compressed or decompressed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CompressionError {
    /// The decompressed message would be longer than the limit.
    TooLarge {
        /// The limit.
        max: usize,
    },
    /// The compressed data is not valid for its encoding (bad header,
    /// checksum, truncated, …); the text says what.
    Corrupt(String),
    /// Compressing failed; the text says why.
    Compress(String),
}

impl fmt::Display for CompressionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompressionError::TooLarge { max } => write!(
                f,
                "decompressed message is larger than the limit of {max} octets"
            ),
            CompressionError::Corrupt(why) => write!(f, "corrupt compressed message: {why}"),
            CompressionError::Compress(why) => write!(f, "compressing a message failed: {why}"),
        }
    }
}

impl std::error::Error for CompressionError {}

/// `message` compressed with `encoding` (a copy for `Identity`).
///
/// # Errors
///
/// [`CompressionError::Compress`] if the compressor fails (it does not,
/// writing to memory; the error is kept rather than a panic).
pub fn compress(encoding: Encoding, message: &[u8]) -> Result<Bytes, CompressionError> {
    match encoding {
        Encoding::Identity => Ok(Bytes::copy_from_slice(message)),
        Encoding::Gzip => {
            let out = Vec::with_capacity(message.len() / 2 + 32);
            let mut encoder = GzEncoder::new(out, Compression::default());
            encoder
                .write_all(message)
                .and_then(|()| encoder.finish())
                .map(Bytes::from)
                .map_err(|err| CompressionError::Compress(err.to_string()))
        }
    }
}

/// `data` decompressed with `encoding`, at most `max_len` octets of it.
///
/// For `Identity` this is a copy, checked against the limit; a caller
/// holding the payload as `Bytes` should use it as it is instead.
///
/// # Errors
///
/// [`CompressionError::TooLarge`] as soon as the output passes `max_len`
/// (memory stays bounded by the limit), [`CompressionError::Corrupt`] if
/// `data` is not valid for `encoding` (an empty gzip message included).
pub fn decompress(
    encoding: Encoding,
    data: &[u8],
    max_len: usize,
) -> Result<Bytes, CompressionError> {
    match encoding {
        Encoding::Identity => {
            if data.len() > max_len {
                Err(CompressionError::TooLarge { max: max_len })
            } else {
                Ok(Bytes::copy_from_slice(data))
            }
        }
        Encoding::Gzip => {
            // Read one octet past the limit to tell "exactly the limit"
            // from "more".
            let cap = u64::try_from(max_len).unwrap_or(u64::MAX).saturating_add(1);
            // Start from a guess, not the limit: a peer's tiny message must
            // not reserve max_len.
            let guess = data.len().saturating_mul(4).min(max_len).min(1 << 20);
            let mut out = Vec::with_capacity(guess);
            MultiGzDecoder::new(data)
                .take(cap)
                .read_to_end(&mut out)
                .map_err(|err| CompressionError::Corrupt(err.to_string()))?;
            if out.len() > max_len {
                return Err(CompressionError::TooLarge { max: max_len });
            }
            Ok(Bytes::from(out))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_the_limit_is_allowed() {
        let message = vec![7u8; 1000];
        let packed = compress(Encoding::Gzip, &message).unwrap();
        assert_eq!(
            decompress(Encoding::Gzip, &packed, 1000).unwrap().len(),
            1000
        );
        assert_eq!(
            decompress(Encoding::Gzip, &packed, 999),
            Err(CompressionError::TooLarge { max: 999 })
        );
        assert_eq!(
            decompress(Encoding::Identity, &message, 1000)
                .unwrap()
                .len(),
            1000
        );
        assert_eq!(
            decompress(Encoding::Identity, &message, 999),
            Err(CompressionError::TooLarge { max: 999 })
        );
    }

    #[test]
    fn usize_max_limit_does_not_overflow() {
        let packed = compress(Encoding::Gzip, b"abc").unwrap();
        assert_eq!(
            &decompress(Encoding::Gzip, &packed, usize::MAX).unwrap()[..],
            b"abc"
        );
    }
}
