//! Replays every committed fuzz corpus input (`fuzz/corpus/<target>/`)
//! through the same checks the fuzz targets run, on stable, so CI guards
//! them.

mod common;

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut count = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let result = std::panic::catch_unwind(|| check(&data));
        assert!(
            result.is_ok(),
            "corpus input {} failed its check",
            path.display()
        );
        count += 1;
    }
    assert!(count > 0, "no corpus inputs in {}", dir.display());
}

#[test]
fn frame_decode_corpus() {
    replay("frame_decode", common::fuzz_checks::frame_decode);
}

#[test]
fn hpack_decode_corpus() {
    replay("hpack_decode", common::fuzz_checks::hpack_decode);
}

#[test]
fn header_block_corpus() {
    replay("header_block", common::fuzz_checks::header_block);
}
