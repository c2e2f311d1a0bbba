//! `loopy`: the outbound half of an HTTP/2 connection (control buffer,
//! loopy writer, flow control, stream quota), sans-IO.
//!
//! Empty until its issue lands; the workspace layout is fixed here so the
//! other crates can depend on it.
#![forbid(unsafe_code)]
