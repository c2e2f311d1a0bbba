//! Shared helpers of the integration tests: `pair` (in-memory
//! `Connection` pairs on a virtual clock), `peer` (a raw HTTP/2 peer over
//! TCP: a client for the RFC 9113 conformance suite, or a scripted server
//! for client tests) and `wait` (waiting on a condition, not a sleep).

pub mod pair;
pub mod peer;
pub mod wait;
