//! `mio-grpc`: a gRPC runtime with no async runtime.
//!
//! A hand-written HTTP/2 stack — the [`framer`] crate (frames and HPACK),
//! the `loopy` crate (control buffer and writer) — driven by a mio event
//! loop, with blocking gRPC client and server APIs on top.
//!
//! - [`conn`]: one HTTP/2 connection, both roles, sans-IO.
//! - [`runtime`]: event loops on mio, listeners, the direct-write path.
//!
//! The gRPC server and client layers land with their issues.
#![forbid(unsafe_code)]

pub use framer;
pub use loopy;

mod backlog;
pub mod client;
pub mod conn;
mod deadline;
pub mod grpc;
pub mod http;
mod pool;
pub mod runtime;
pub mod server;
mod wait;
