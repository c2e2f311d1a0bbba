//! The gRPC pieces the server and the client share, sans-IO: bytes and
//! header lists in, values out, and back. The wire spec is grpc/grpc
//! `doc/PROTOCOL-HTTP2.md`; the codes are `doc/statuscodes.md`.
//!
//! - [`status`]: [`Code`], [`Status`] and the trailers that carry them
//!   (`grpc-status`, percent-encoded `grpc-message`,
//!   `grpc-status-details-bin`); HTTP-status and RST_STREAM mappings.
//! - [`metadata`]: [`Metadata`], custom metadata with `-bin` binary values.
//! - [`timeout`]: the `grpc-timeout` header.
//! - [`message`]: length-prefixed messages and the zero-copy, bounded
//!   [`MessageDecoder`].
//! - [`compression`]: `identity` and `gzip`, decompression bounded by the
//!   receive limit.
//! - [`base64`]: for binary metadata; emits unpadded, accepts both.
//!
//! Nothing here panics on peer bytes, and nothing a peer sends makes it
//! allocate past the limits it is given: non-test code denies `unwrap`,
//! `expect`, `panic!` and slice indexing.
//!
//! ```
//! use bytes::{Bytes, BytesMut};
//! use mio_grpc::grpc::{encode_message, MessageDecoder, Status};
//!
//! // A response body, and the trailers that end it.
//! let mut body = BytesMut::new();
//! encode_message(b"reply", false, &mut body)?;
//! let mut trailers = Vec::new();
//! Status::not_found("no such user").to_trailers(&mut trailers);
//!
//! // The receiving side.
//! let mut decoder = MessageDecoder::new(4 << 20);
//! decoder.push(body.freeze());
//! assert_eq!(&decoder.next()?.unwrap().payload[..], b"reply");
//! decoder.finish()?;
//! let status = Status::from_trailers(&trailers);
//! assert_eq!(status.to_string(), "NOT_FOUND: no such user");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

pub mod base64;
pub mod compression;
pub mod message;
pub mod metadata;
pub mod status;
pub mod timeout;

pub use compression::{accept_encoding_header, compress, decompress, CompressionError, Encoding};
pub use message::{
    encode_message, message_prefix, MessageDecoder, MessageError, RawMessage, MAX_WIRE_LEN,
    PREFIX_LEN,
};
pub use metadata::{Metadata, MetadataError, MetadataValue};
pub use status::{percent_decode, percent_encode, Code, Status};
pub use timeout::{format_timeout, parse_timeout, TimeoutError, MAX_TIMEOUT_DIGITS};
