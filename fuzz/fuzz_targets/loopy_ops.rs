//! Fuzz target `loopy_ops`: arbitrary operation sequences against the loopy
//! writer, checked against a model (see `loopy/tests/common/ops.rs`, which
//! `cargo test` also runs over the committed corpus).
#![no_main]

#[path = "../../loopy/tests/common/mod.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| common::ops::run_bytes(data));
