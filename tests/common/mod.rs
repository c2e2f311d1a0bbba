//! Shared helpers of the integration tests: `pair` (in-memory
//! `Connection` pairs on a virtual clock) and `peer` (a raw HTTP/2 client
//! over TCP for the RFC 9113 conformance suite).

pub mod pair;
pub mod peer;
