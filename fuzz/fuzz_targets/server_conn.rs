//! Fuzz target `server_conn`: arbitrary bytes into a server
//! `conn::Connection`. The check lives in `tests/common/server_conn.rs`,
//! which `tests/server_conn_corpus.rs` also runs over the committed corpus.
#![no_main]

#[path = "../../tests/common/server_conn.rs"]
mod server_conn;

libfuzzer_sys::fuzz_target!(|data: &[u8]| server_conn::run(data));
