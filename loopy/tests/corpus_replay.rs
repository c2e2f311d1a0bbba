//! Replays every committed `loopy_ops` fuzz corpus input through the same
//! model check the fuzz target runs, on stable.

mod common;

#[test]
fn loopy_ops_corpus() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/loopy_ops");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let result = std::panic::catch_unwind(|| common::ops::run_bytes(&data));
        assert!(
            result.is_ok(),
            "corpus input {} failed its check",
            path.display()
        );
        count += 1;
    }
    assert!(count > 0, "no corpus inputs in {}", dir.display());
}
