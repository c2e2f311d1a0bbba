//! Fuzz target `text_parsers`: `grpc-timeout`, `grpc-message`
//! percent-encoding, `-bin` base64, service config JSON, channel targets
//! and trailers, each parsed and printed back (byte 0 picks the parser).
//! The check lives in `tests/common/text_parsers.rs`, which
//! `tests/fuzz_corpus_replay.rs` also runs over the committed corpus.
#![no_main]

#[path = "../../tests/common/text_parsers.rs"]
mod text_parsers;

libfuzzer_sys::fuzz_target!(|data: &[u8]| text_parsers::run(data));
