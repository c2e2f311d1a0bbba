//! Fuzz target `frame_decode`: see `framer/tests/common/fuzz_checks.rs`, which
//! `cargo test` also runs over the committed corpus.
#![no_main]

#[path = "../../framer/tests/common/fuzz_checks.rs"]
mod fuzz_checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::frame_decode(data));
