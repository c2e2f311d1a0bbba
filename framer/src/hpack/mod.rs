//! HPACK (RFC 7541) for the framer: header blocks to header lists and back.
//!
//! # Decoding
//!
//! [`Decoder`] wraps `loona-hpack` and adds what HTTP/2 needs from it:
//!
//! - **Bounded table.** The dynamic table never grows past our
//!   SETTINGS_HEADER_TABLE_SIZE; a size update above it is a
//!   [`HpackError::Compression`]. When our setting goes below the size the
//!   peer's encoder is using, the next block must start with a size update
//!   that brings it down (RFC 7541 §4.2).
//! - **Size updates only at the start** of a block, at most two (§4.2);
//!   anywhere else is a compression error.
//! - **Bounded header list.** Fields are counted as RFC 9113 §6.5.2 says
//!   (name + value + 32). Past the limit the decoder stops keeping fields
//!   but decodes on to the end of the block, so the dynamic table stays in
//!   sync, and returns [`HpackError::ListTooLarge`]: a stream error, not a
//!   connection error. Memory stays bounded by the limit however much a
//!   block amplifies (one-octet references to a 4 KiB entry).
//! - **Never-indexed** literals (§6.2.3) come back with
//!   [`HeaderField::sensitive`] set: the decoder walks the representations
//!   itself alongside `loona-hpack`, which does not report them.
//! - **Our Huffman decoding.** Huffman-coded strings are decoded by this
//!   module and handed to `loona-hpack` raw: its own Huffman decoder builds
//!   hash maps for every string (some 9 µs per string, against well under
//!   a microsecond for a whole block here).
//! - Any malformed input is an error, never a panic.
//!
//! # Encoding
//!
//! [`Encoder`] is our own, tuned for gRPC, where the same few values repeat
//! on every call of a connection. Each field gets the first that applies:
//!
//! 1. **Sensitive** ([`HeaderField::sensitive`], or a name in the never-index
//!    set: `authorization`, `proxy-authorization`, `cookie`, plus
//!    [`Encoder::never_index`]): a literal never indexed (§6.2.3), with the
//!    name by index when a table has it. Never an indexed reference, so the
//!    peer sees the never-indexed flag every time.
//! 2. **In a table** (name and value, static or dynamic): indexed (§6.1),
//!    one octet for indices below 127.
//! 3. **A name whose values repeat**: a literal with incremental indexing
//!    (§6.2.1), so the next block sends one octet. These names are the static
//!    table's (`:path`, `:authority`, `:method`, `:scheme`, `:status`,
//!    `content-type`, `user-agent`, `accept-encoding`, …), `te`, and names
//!    starting with `grpc-` (`grpc-encoding`, `grpc-accept-encoding`,
//!    `grpc-status`, …), except the ones whose values change from call to
//!    call: `content-length`, `date`, `age`, `etag`, `expires`,
//!    `last-modified`, `location`, `set-cookie`, the conditional and range
//!    request headers, `grpc-timeout`, `grpc-message`,
//!    `grpc-status-details-bin`, `grpc-previous-rpc-attempts`,
//!    `grpc-retry-pushback-ms`, `grpc-trace-bin`, `grpc-tags-bin`. A field
//!    whose entry would take more than half the dynamic table is not indexed
//!    either: it would evict everything else.
//! 4. **Anything else** (custom metadata): a literal without indexing
//!    (§6.2.2), name by index when a table has it.
//!
//! A string literal is Huffman-coded (§5.2) when that is shorter than raw.
//!
//! The encoder's dynamic table is the peer's SETTINGS_HEADER_TABLE_SIZE,
//! capped at [`ENCODER_TABLE_CAP`] (4096, as grpc-go's encoder): a gRPC
//! connection's repeated headers fit in far less. A change is sent as size
//! updates at the start of the next non-empty block: the smallest size since
//! the last block first when the size went down and up again, then the
//! final one (§4.2).
//!
//! # Example
//!
//! ```
//! use bytes::BytesMut;
//! use framer::hpack::{Decoder, Encoder, HeaderField, DEFAULT_TABLE_SIZE};
//!
//! let request = [
//!     HeaderField::new(":method", "POST"),
//!     HeaderField::new(":path", "/helloworld.Greeter/SayHello"),
//!     HeaderField::new("content-type", "application/grpc"),
//! ];
//! let mut encoder = Encoder::new();
//! let mut decoder = Decoder::new(DEFAULT_TABLE_SIZE);
//!
//! let mut cold = BytesMut::new();
//! encoder.encode(&request, &mut cold);
//! assert_eq!(decoder.decode(&cold, 16 << 10)?, request);
//!
//! // The second time, every field is one octet.
//! let mut warm = BytesMut::new();
//! encoder.encode(&request, &mut warm);
//! assert_eq!(warm.len(), 3);
//! assert_eq!(decoder.decode(&warm, 16 << 10)?, request);
//! # Ok::<(), framer::hpack::HpackError>(())
//! ```

mod decoder;
mod encoder;
mod huffman;
mod static_table;
mod wire;

use std::fmt;

use bytes::Bytes;

pub use decoder::Decoder;
pub use encoder::{Encoder, ENCODER_TABLE_CAP};

/// The dynamic table size both ends start with: the initial value of
/// SETTINGS_HEADER_TABLE_SIZE (RFC 9113 §6.5.2).
pub const DEFAULT_TABLE_SIZE: usize = 4096;

/// One header field: a name and a value, both raw bytes.
///
/// `sensitive` fields are encoded as never-indexed literals (RFC 7541
/// §6.2.3) and a decoded never-indexed field comes back with it set.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HeaderField {
    /// The field name (lowercase on the wire in HTTP/2).
    pub name: Bytes,
    /// The field value.
    pub value: Bytes,
    /// Never index this field (RFC 7541 §7.1.3).
    pub sensitive: bool,
}

impl HeaderField {
    /// A field from a name and a value; not sensitive.
    #[must_use]
    pub fn new(name: impl Into<Bytes>, value: impl Into<Bytes>) -> Self {
        HeaderField {
            name: name.into(),
            value: value.into(),
            sensitive: false,
        }
    }

    /// A field from a name and a value that must never be indexed
    /// (credentials, tokens): `sensitive` set.
    #[must_use]
    pub fn new_sensitive(name: impl Into<Bytes>, value: impl Into<Bytes>) -> Self {
        HeaderField {
            name: name.into(),
            value: value.into(),
            sensitive: true,
        }
    }

    /// The size RFC 9113 §6.5.2 charges this field against
    /// SETTINGS_MAX_HEADER_LIST_SIZE: name + value + 32 octets. Also the
    /// size of its dynamic table entry (RFC 7541 §4.1).
    #[must_use]
    pub fn list_size(&self) -> usize {
        self.name.len() + self.value.len() + 32
    }
}

/// A decoded header block, in wire order.
pub type HeaderList = Vec<HeaderField>;

/// Why a header block could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HpackError {
    /// The block is not valid HPACK: a connection error of type
    /// COMPRESSION_ERROR (RFC 9113 §4.3). The decoder's state is lost.
    Compression(&'static str),
    /// The decoded list exceeds the header list size limit. The block was
    /// decoded to the end, so the dynamic table stays in sync and the
    /// connection can go on (a stream error).
    ListTooLarge {
        /// The decoded size of the whole block (RFC 9113 §6.5.2).
        size: usize,
        /// The limit.
        limit: usize,
    },
}

impl fmt::Display for HpackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HpackError::Compression(why) => write!(f, "HPACK compression error: {why}"),
            HpackError::ListTooLarge { size, limit } => {
                write!(
                    f,
                    "header list of {size} octets exceeds the limit of {limit}"
                )
            }
        }
    }
}

impl std::error::Error for HpackError {}
