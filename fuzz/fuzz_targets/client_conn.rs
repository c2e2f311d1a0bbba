//! Fuzz target `client_conn`: a server's arbitrary bytes into a client
//! `conn::Connection` with streams open. The check lives in
//! `tests/common/client_conn.rs`, which `tests/fuzz_corpus_replay.rs` also
//! runs over the committed corpus.
#![no_main]

#[path = "../../tests/common/client_conn.rs"]
mod client_conn;

libfuzzer_sys::fuzz_target!(|data: &[u8]| client_conn::run(data));
