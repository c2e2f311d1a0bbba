//! `framer`: HTTP/2 frames (RFC 9113 §4, §6) and HPACK (RFC 7541) for
//! mio-grpc. Sans-IO: bytes in, frames out, and back; no sockets, no
//! threads, no clock.
//!
//! - [`Decoder::decode`] turns a read buffer into [`Frame`]s. Every rule a
//!   single frame can break is checked and reported as a [`FrameError`]
//!   that names the [`Violation`], its [`Scope`] (connection → GOAWAY,
//!   stream → RST_STREAM) and the RFC [`Reason`] code. DATA payloads are
//!   `Bytes` split off the read buffer (no copy). HEADERS / PUSH_PROMISE +
//!   CONTINUATION are assembled under limits and HPACK-decoded.
//! - [`Encoder::encode`] writes frames, HPACK-encoding field blocks at
//!   that moment (encoder order = wire order) and splitting them at the
//!   peer's SETTINGS_MAX_FRAME_SIZE.
//! - [`hpack`] holds the header compression: decoding through
//!   `loona-hpack`, bounded; encoding our own, tuned for gRPC.
//!
//! Nothing reachable from peer bytes panics: non-test code denies
//! `unwrap`, `expect` and slice indexing, and the decoders are fuzzed
//! (`fuzz/`).
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

mod decoder;
mod encoder;
mod error;
mod frame;
mod head;
pub mod hpack;
mod preface;
mod reason;
mod stream_id;

pub use decoder::{decode_frame, Decoder, DecoderConfig};
pub use encoder::Encoder;
pub use error::{FrameError, Scope, Violation};
pub use frame::{
    Continuation, Data, Frame, GoAway, HeaderBlock, Headers, Ping, Priority, PushPromise,
    RstStream, Setting, SettingId, Settings, StreamDependency, Unknown, WindowUpdate,
};
pub use head::{flags, Head, Kind, DEFAULT_MAX_FRAME_SIZE, HEAD_LEN, MAX_MAX_FRAME_SIZE};
pub use preface::{read_preface, PREFACE};
pub use reason::Reason;
pub use stream_id::StreamId;
