//! Replays every input in `fuzz/corpus/server_conn/` through the
//! `server_conn` fuzz check (`tests/common/server_conn.rs`), so `cargo
//! test` keeps the corpus passing without cargo-fuzz.

#[path = "common/server_conn.rs"]
mod server_conn;

use std::path::Path;

#[test]
fn server_conn_corpus_replays_without_a_broken_invariant() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/server_conn");
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("{}: {err}", dir.display()))
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|err| panic!("{}: {err}", dir.display()));
    entries.sort();
    assert!(!entries.is_empty(), "{} is empty", dir.display());
    for path in &entries {
        let data = std::fs::read(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
        let outcome = std::panic::catch_unwind(|| server_conn::run(&data));
        assert!(outcome.is_ok(), "{} broke an invariant", path.display());
    }
}
