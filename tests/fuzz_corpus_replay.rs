//! Replays every committed input of the `server_conn`, `client_conn`,
//! `grpc_message` and `text_parsers` fuzz corpora (`fuzz/corpus/<target>/`) through the same
//! checks the fuzz targets run (`tests/common/<target>.rs`), so `cargo
//! test` keeps them passing on stable, without cargo-fuzz.

#[path = "common/client_conn.rs"]
mod client_conn;
#[path = "common/grpc_message.rs"]
mod grpc_message;
#[path = "common/server_conn.rs"]
mod server_conn;
#[path = "common/text_parsers.rs"]
mod text_parsers;

use std::path::Path;

/// Runs `check` over every file in `fuzz/corpus/<target>/`, naming the
/// first input that breaks it.
fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("{}: {err}", dir.display()))
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|err| panic!("{}: {err}", dir.display()));
    entries.sort();
    assert!(!entries.is_empty(), "{} is empty", dir.display());
    for path in &entries {
        let data = std::fs::read(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(outcome.is_ok(), "{} broke an invariant", path.display());
    }
}

#[test]
fn server_conn_corpus_replays_without_a_broken_invariant() {
    replay("server_conn", server_conn::run);
}

#[test]
fn client_conn_corpus_replays_without_a_broken_invariant() {
    replay("client_conn", client_conn::run);
}

#[test]
fn grpc_message_corpus_replays_without_a_broken_invariant() {
    replay("grpc_message", grpc_message::run);
}

#[test]
fn text_parsers_corpus_replays_without_a_broken_invariant() {
    replay("text_parsers", text_parsers::run);
}
