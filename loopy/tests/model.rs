//! Model-based property test of the writer: random operation sequences
//! (see `common/ops.rs`, shared with the `loopy_ops` fuzz target) checked
//! against a model of the peer's windows and stream limit.

mod common;

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn writer_respects_windows_limits_and_order(bytes in proptest::collection::vec(any::<u8>(), 0..3000)) {
        common::ops::run_bytes(&bytes);
    }
}

/// A hand-written sequence that exercises every op at least once, so the
/// model itself is known to run through all its branches.
#[test]
fn every_op_in_one_sequence() {
    use common::ops::Op;
    common::ops::run(vec![
        Op::MaxConcurrent(2),
        Op::Open { end_stream: false },
        Op::Open { end_stream: false },
        Op::Open { end_stream: false },
        Op::Data {
            stream: 0,
            len: 40_000,
            end_stream: false,
        },
        Op::Data {
            stream: 1,
            len: 1_000,
            end_stream: true,
        },
        Op::Data {
            stream: 2,
            len: 500,
            end_stream: false,
        },
        Op::Write { budget: 100 },
        Op::MaxFrameSize(1),
        Op::InitialWindow(1000),
        Op::Write { budget: 60_000 },
        Op::WindowUpdate {
            stream: 0,
            connection: false,
            increment: 100_000,
        },
        Op::WindowUpdate {
            stream: 0,
            connection: true,
            increment: 100_000,
        },
        Op::Trailers { stream: 0 },
        Op::Write { budget: 60_000 },
        Op::Cleanup { stream: 1 },
        Op::Reset { stream: 0 },
        Op::Write { budget: 60_000 },
        Op::Open { end_stream: true },
        Op::GoAway { last: 5 },
        Op::Write { budget: 60_000 },
    ]);
}

#[test]
fn random_bytes_give_long_op_sequences() {
    // Guards the harness: the property test is only as good as its ops.
    let bytes: Vec<u8> = (0..3000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    assert!(common::ops::ops_from_bytes(&bytes).len() > 100);
}
