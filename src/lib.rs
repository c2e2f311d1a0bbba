//! `mio-grpc`: a gRPC runtime with no async runtime.
//!
//! A hand-written HTTP/2 stack — the [`framer`] crate (frames and HPACK),
//! the `loopy` crate (control buffer and writer) — driven by a mio event
//! loop, with blocking gRPC client and server APIs on top. Today this crate
//! re-exports the framer; the connection, runtime, server and client layers
//! land with their issues (see `DESIGN.md` in the shared notes).
#![forbid(unsafe_code)]

pub use framer;
