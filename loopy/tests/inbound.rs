//! Inbound flow control and the BDP estimator, driven by hand: a virtual
//! clock (`Instant` + `Duration`), no sleeps, no threads.

use std::time::{Duration, Instant};

use framer::{Data, StreamId};
use loopy::{
    BdpEstimator, ConnRecvWindow, FlowError, InboundAction, InboundConfig, InboundFlow,
    StreamRecvWindow, WindowUpdateNeeded, BDP_LIMIT, BDP_PING_PAYLOAD, DEFAULT_WINDOW_SIZE,
    MAX_WINDOW_SIZE,
};

const MIB: u32 = 1 << 20;

fn actions(a: loopy::InboundActions) -> Vec<InboundAction> {
    a.into_iter().collect()
}

fn conn_update(increment: u32) -> InboundAction {
    InboundAction::SendWindowUpdate(WindowUpdateNeeded::connection(increment))
}

// ---------------------------------------------------------------- connection

#[test]
fn conn_update_is_sent_exactly_when_a_quarter_is_unacked() {
    let mut conn = ConnRecvWindow::new(DEFAULT_WINDOW_SIZE);
    let quarter = DEFAULT_WINDOW_SIZE / 4; // 16,383
    assert_eq!(conn.on_data(quarter - 1), Ok(None));
    assert_eq!(
        conn.available(),
        i64::from(DEFAULT_WINDOW_SIZE - quarter + 1)
    );
    assert_eq!(conn.on_data(1), Ok(Some(quarter)));
    assert_eq!(conn.available(), i64::from(DEFAULT_WINDOW_SIZE));
    // A single big frame: everything it consumed comes back at once.
    assert_eq!(conn.on_data(40_000), Ok(Some(40_000)));
}

#[test]
fn conn_update_replenishes_on_arrival_in_many_small_frames() {
    let mut conn = ConnRecvWindow::new(MIB);
    let mut sent = 0u64;
    for _ in 0..1_000 {
        if let Some(increment) = conn.on_data(1_000).unwrap() {
            assert_eq!(increment, 263_000); // first multiple of 1,000 ≥ 262,144
            sent += u64::from(increment);
        }
    }
    // 1,000,000 received: three updates of 263,000, the rest still unacked.
    assert_eq!(sent, 3 * 263_000);
    assert_eq!(conn.available(), i64::from(MIB) - (1_000_000 - 3 * 263_000));
}

#[test]
fn conn_initial_update_raises_the_rfc_window() {
    assert_eq!(
        ConnRecvWindow::new(DEFAULT_WINDOW_SIZE).initial_update(),
        None
    );
    let mut conn = ConnRecvWindow::new(MIB);
    assert_eq!(conn.initial_update(), Some(MIB - 65_535));
    assert_eq!(conn.available(), i64::from(MIB));
    // Fixed at creation: later steps don't change what the preface owes.
    let _ = conn.on_data(MIB / 2);
    let _ = conn.set_limit(4 * MIB);
    assert_eq!(conn.initial_update(), Some(MIB - 65_535));
}

#[test]
fn sec6_9_1_conn_data_beyond_window_is_flow_control_error_with_amounts() {
    let mut conn = ConnRecvWindow::new(DEFAULT_WINDOW_SIZE);
    assert_eq!(conn.on_data(10_000), Ok(None));
    let err = conn.on_data(60_000).unwrap_err();
    assert_eq!(
        err,
        FlowError {
            received: 60_000,
            window: 55_535
        }
    );
    assert_eq!(
        err.to_string(),
        "received 60000 flow-controlled bytes with a window of 55535"
    );
    let _: &dyn std::error::Error = &err;
    // The error changes nothing.
    assert_eq!(conn.available(), 55_535);
    assert_eq!(conn.on_data(55_535), Ok(Some(65_535)));
}

#[test]
fn conn_flush_sends_everything_unacked() {
    let mut conn = ConnRecvWindow::new(DEFAULT_WINDOW_SIZE);
    assert_eq!(conn.flush(), None);
    assert_eq!(conn.on_data(100), Ok(None));
    assert_eq!(conn.flush(), Some(100));
    assert_eq!(conn.flush(), None);
}

#[test]
fn conn_raising_the_limit_sends_the_raise_plus_the_unacked() {
    let mut conn = ConnRecvWindow::new(DEFAULT_WINDOW_SIZE);
    assert_eq!(conn.on_data(1_000), Ok(None));
    assert_eq!(conn.set_limit(131_070), Some(65_535 + 1_000));
    assert_eq!(conn.limit(), 131_070);
    assert_eq!(conn.available(), 131_070);
    // Same limit again: nothing owed.
    assert_eq!(conn.set_limit(131_070), None);
}

#[test]
fn conn_lowering_the_limit_drains_and_never_goes_negative() {
    let mut conn = ConnRecvWindow::new(MIB);
    assert_eq!(conn.set_limit(DEFAULT_WINDOW_SIZE), None);
    assert_eq!(conn.available(), i64::from(MIB));
    // Credit already granted is spent before any update.
    let mut received = 0u32;
    while received < MIB - 65_535 {
        assert_eq!(conn.on_data(1_000), Ok(None));
        received += 1_000;
    }
    assert!(conn.available() <= 65_535);
    // From here, the usual quarter rule on the new limit.
    let mut update = None;
    while update.is_none() {
        update = conn.on_data(1_000).unwrap();
        assert!(conn.available() >= 0);
    }
    assert_eq!(conn.available(), 65_535);
    assert!(update.unwrap() >= 65_535 / 4);
    // Lowering to zero: the peer's credit drains and is never topped up.
    assert_eq!(conn.set_limit(0), None);
    assert_eq!(conn.on_data(65_535), Ok(None));
    assert!(conn.on_data(1).is_err());
}

#[test]
fn conn_arithmetic_edges_do_not_overflow() {
    let mut conn = ConnRecvWindow::new(u32::MAX);
    assert_eq!(conn.limit(), MAX_WINDOW_SIZE);
    assert_eq!(conn.initial_update(), Some(MAX_WINDOW_SIZE - 65_535));
    assert_eq!(conn.on_data(0), Ok(None));
    assert_eq!(
        conn.on_data(u32::MAX),
        Err(FlowError {
            received: u64::from(u32::MAX),
            window: u64::from(MAX_WINDOW_SIZE)
        })
    );
    assert_eq!(conn.on_data(MAX_WINDOW_SIZE), Ok(Some(MAX_WINDOW_SIZE)));
    assert_eq!(conn.set_limit(u32::MAX), None);

    let mut small = ConnRecvWindow::new(0);
    assert_eq!(small.initial_update(), None);
    assert_eq!(small.on_data(0), Ok(None));
    assert_eq!(small.set_limit(u32::MAX), Some(MAX_WINDOW_SIZE - 65_535));
    assert_eq!(small.available(), i64::from(MAX_WINDOW_SIZE));
}

// ------------------------------------------------------------------- streams

#[test]
fn stream_updates_only_on_consumption_not_arrival() {
    let mut stream = StreamRecvWindow::new(DEFAULT_WINDOW_SIZE);
    stream.on_data(DEFAULT_WINDOW_SIZE).unwrap();
    assert_eq!(stream.available(), 0);
    assert_eq!(stream.unconsumed(), DEFAULT_WINDOW_SIZE);
    assert_eq!(stream.on_consumed(16_382), None);
    assert_eq!(stream.on_consumed(1), Some(16_383));
    assert_eq!(stream.available(), 16_383);
    assert_eq!(
        stream.on_consumed(DEFAULT_WINDOW_SIZE),
        Some(65_535 - 16_383)
    );
    assert_eq!(stream.unconsumed(), 0);
    assert_eq!(stream.available(), 65_535);
}

#[test]
fn stream_consuming_more_than_received_counts_what_was_received() {
    let mut stream = StreamRecvWindow::new(DEFAULT_WINDOW_SIZE);
    stream.on_data(20_000).unwrap();
    assert_eq!(stream.on_consumed(u32::MAX), Some(20_000));
    assert_eq!(stream.on_consumed(u32::MAX), None);
    assert_eq!(stream.available(), 65_535);
}

#[test]
fn sec6_9_1_stream_data_beyond_window_is_flow_control_error() {
    let mut stream = StreamRecvWindow::new(DEFAULT_WINDOW_SIZE);
    stream.on_data(65_000).unwrap();
    assert_eq!(
        stream.on_data(536),
        Err(FlowError {
            received: 536,
            window: 535
        })
    );
    assert_eq!(stream.unconsumed(), 65_000);
    stream.on_data(535).unwrap();
    // Zero-length frames (END_STREAM) pass on an empty window.
    stream.on_data(0).unwrap();
    assert!(stream.on_data(1).is_err());
}

#[test]
fn stream_padding_counts_against_the_window_and_comes_back_at_once() {
    let mut stream = StreamRecvWindow::new(DEFAULT_WINDOW_SIZE);
    let mut frame = Data::new(StreamId::new(1), vec![7u8; 1_000]);
    frame.pad_len = Some(255);
    assert_eq!(frame.flow_len(), 1_256);
    // 256 bytes of padding (with the Pad Length octet): below a quarter.
    assert_eq!(stream.on_data_frame(&frame), Ok(None));
    assert_eq!(stream.unconsumed(), 1_000);
    assert_eq!(stream.available(), 65_535 - 1_256);
    // Padding alone reopens the window once a quarter has accrued.
    let mut padding_only = Data::new(StreamId::new(1), Vec::new());
    padding_only.pad_len = Some(255);
    assert_eq!(padding_only.flow_len(), 256);
    let mut update = None;
    let mut frames = 1;
    while update.is_none() {
        update = stream.on_data_frame(&padding_only).unwrap();
        frames += 1;
    }
    assert_eq!(frames, 64); // 64 × 256 = 16,384 ≥ 16,383
    assert_eq!(update, Some(64 * 256));
    assert_eq!(stream.unconsumed(), 1_000);
    assert_eq!(stream.available(), 65_535 - 1_000);
    // The same with on_data + on_padding.
    let mut other = StreamRecvWindow::new(DEFAULT_WINDOW_SIZE);
    other.on_data(1_256).unwrap();
    assert_eq!(other.on_padding(256), None);
    assert_eq!(other.unconsumed(), 1_000);
}

#[test]
fn stream_padded_frame_beyond_window_is_an_error() {
    let mut stream = StreamRecvWindow::new(1_000);
    let mut frame = Data::new(StreamId::new(1), vec![0u8; 990]);
    frame.pad_len = Some(10);
    assert_eq!(
        stream.on_data_frame(&frame),
        Err(FlowError {
            received: 1_001,
            window: 1_000
        })
    );
}

#[test]
fn stream_pre_grant_lets_a_large_message_through_then_returns_to_normal() {
    let mut stream = StreamRecvWindow::new(DEFAULT_WINDOW_SIZE);
    let message = 4 * MIB;
    // Fits in the window: nothing to grant.
    assert_eq!(stream.pre_grant(1_000), None);
    // 4 MiB can never arrive through 64 KiB unless it is read first.
    assert_eq!(stream.pre_grant(message), Some(message));
    assert_eq!(stream.available(), i64::from(message + 65_535));
    // Asking again while the grant is outstanding grants nothing more.
    assert_eq!(stream.pre_grant(message), None);
    // The whole message arrives without the application reading any of it.
    for _ in 0..(message / 16_384) {
        stream.on_data(16_384).unwrap();
    }
    assert_eq!(stream.unconsumed(), message);
    assert_eq!(stream.available(), 65_535);
    // Reading it pays the grant back: no updates until the window is
    // owed a quarter of the limit again.
    assert_eq!(stream.on_consumed(message), None);
    assert_eq!(stream.available(), 65_535);
    // Back to normal.
    stream.on_data(65_535).unwrap();
    assert!(stream.on_data(1).is_err());
    assert_eq!(stream.on_consumed(16_383), Some(16_383));
}

#[test]
fn stream_pre_grant_with_part_of_the_message_already_received() {
    let mut stream = StreamRecvWindow::new(DEFAULT_WINDOW_SIZE);
    stream.on_data(60_000).unwrap();
    // 40,000 still to come, 5,535 of credit: grant the whole message.
    assert_eq!(stream.pre_grant(100_000), Some(100_000));
    stream.on_data(40_000).unwrap();
    // Consumed as it arrives (a streaming reader): no updates owed.
    assert_eq!(stream.on_consumed(100_000), None);
    assert_eq!(stream.available(), 65_535);
    // Already received in full: nothing to grant.
    stream.on_data(30_000).unwrap();
    assert_eq!(stream.pre_grant(30_000), None);
}

#[test]
fn stream_pre_grant_of_huge_messages_stays_below_the_settings_headroom() {
    let mut stream = StreamRecvWindow::new(DEFAULT_WINDOW_SIZE);
    let increment = stream.pre_grant(u32::MAX).unwrap();
    assert_eq!(
        i64::from(increment) + 65_535,
        i64::from(MAX_WINDOW_SIZE - BDP_LIMIT)
    );
    assert_eq!(stream.pre_grant(u32::MAX), None);
    // A later BDP raise to the cap keeps the peer's window legal (§6.9.2).
    assert_eq!(stream.set_limit(BDP_LIMIT), None);
    assert!(stream.available() <= i64::from(MAX_WINDOW_SIZE));
}

#[test]
fn sec6_9_2_raising_initial_window_adds_the_delta_without_an_update() {
    let mut stream = StreamRecvWindow::new(DEFAULT_WINDOW_SIZE);
    stream.on_data(50_000).unwrap();
    assert_eq!(stream.on_consumed(10_000), None);
    assert_eq!(stream.set_limit(MIB), None);
    assert_eq!(stream.limit(), MIB);
    assert_eq!(stream.available(), i64::from(MIB) - 50_000);
    // The owed 10,000 is below a quarter of the new limit until more is read.
    assert_eq!(stream.on_consumed(40_000), None);
    stream.on_data(MIB - 50_000).unwrap();
    assert!(stream.on_data(1).is_err());
}

#[test]
fn sec6_9_2_lowering_initial_window_tolerates_in_flight_data_until_acked() {
    let mut stream = StreamRecvWindow::new(MIB);
    stream.on_data(100_000).unwrap();
    assert_eq!(stream.set_limit(DEFAULT_WINDOW_SIZE), None);
    // The peer's window is now negative, as the peer will see it.
    assert_eq!(stream.available(), 65_535 - 100_000);
    // Until it acks our SETTINGS it may still send under the old window.
    stream.on_data(200_000).unwrap();
    stream.on_settings_acked();
    assert_eq!(
        stream.on_data(1),
        Err(FlowError {
            received: 1,
            window: 0
        })
    );
    // Reading everything credits back exactly enough for the new limit.
    // The peer's own view: 1 MiB − 300,000 sent − 983,041 lowered = −234,465.
    assert_eq!(stream.on_consumed(300_000), Some(300_000));
    assert_eq!(stream.available(), 65_535);
}

#[test]
fn lowering_stream_limit_may_release_an_owed_update_never_a_negative_one() {
    let mut stream = StreamRecvWindow::new(DEFAULT_WINDOW_SIZE);
    stream.on_data(10_000).unwrap();
    assert_eq!(stream.on_consumed(10_000), None); // < 16,383
    assert_eq!(stream.set_limit(20_000), Some(10_000)); // ≥ 5,000
    assert_eq!(stream.available(), 20_000);
    // Lowering to zero with nothing owed: no update at all.
    assert_eq!(stream.set_limit(0), None);
    assert_eq!(stream.available(), 0);
    assert_eq!(stream.on_consumed(u32::MAX), None);
}

#[test]
fn stream_arithmetic_edges_do_not_overflow() {
    let mut stream = StreamRecvWindow::new(u32::MAX);
    assert_eq!(stream.limit(), MAX_WINDOW_SIZE);
    assert_eq!(
        stream.on_data(u32::MAX),
        Err(FlowError {
            received: u64::from(u32::MAX),
            window: u64::from(MAX_WINDOW_SIZE)
        })
    );
    stream.on_data(MAX_WINDOW_SIZE).unwrap();
    assert_eq!(stream.pre_grant(u32::MAX), None); // already received
    assert_eq!(stream.on_consumed(u32::MAX), Some(MAX_WINDOW_SIZE));
    // Repeated lowerings and raises without acks: tolerance stays ≤ 2^31 − 1.
    for _ in 0..4 {
        let _ = stream.set_limit(0);
        let _ = stream.set_limit(u32::MAX);
    }
    let _ = stream.set_limit(0);
    assert_eq!(
        stream.on_data(u32::MAX),
        Err(FlowError {
            received: u64::from(u32::MAX),
            window: u64::from(MAX_WINDOW_SIZE)
        })
    );
    let mut zero = StreamRecvWindow::new(0);
    zero.on_data(0).unwrap();
    assert!(zero.on_data(1).is_err());
    assert_eq!(zero.on_consumed(0), None);
    assert_eq!(zero.on_padding(u32::MAX), None);
}

// ---------------------------------------------------------- InboundFlow, BDP

/// A link of `bytes_per_rtt` bandwidth-delay product and `rtt`, sending
/// as much as the windows allow in 16 KiB frames, with the application
/// reading everything as it arrives. Returns the stream limit after each
/// round and the number of BDP PINGs sent.
fn run_link(
    flow: &mut InboundFlow,
    bytes_per_rtt: u64,
    rtt: Duration,
    rounds: usize,
) -> (Vec<u32>, usize) {
    let mut streams = [flow.new_stream(), flow.new_stream()];
    let mut now = Instant::now();
    let mut limits = Vec::new();
    let mut pings = 0;
    for _ in 0..rounds {
        // One RTT's worth: capped by the link and by the stream window.
        let mut left = bytes_per_rtt.min(u64::from(flow.stream_limit()));
        let mut ping_this_round = false;
        while left > 0 {
            let len = u32::try_from(left.min(16_384)).unwrap();
            left -= u64::from(len);
            for action in flow.on_data(len).expect("within the connection window") {
                if action == InboundAction::SendPing(BDP_PING_PAYLOAD) {
                    assert!(!ping_this_round, "a second BDP PING while one is in flight");
                    ping_this_round = true;
                    pings += 1;
                    flow.on_ping_sent(BDP_PING_PAYLOAD, now);
                }
            }
            let [a, _] = &mut streams;
            a.on_data(len).expect("within the stream window");
            let _ = a.on_consumed(len);
        }
        now += rtt;
        let before = flow.stream_limit();
        let conn_owed = i64::from(flow.conn().limit()) - flow.conn().available();
        let acked = actions(flow.on_ping_ack(BDP_PING_PAYLOAD, now, streams.iter_mut()));
        let after = flow.stream_limit();
        if after > before {
            // The raise, plus what was still unacked on the connection.
            let increment = u32::try_from(i64::from(after - before) + conn_owed).unwrap();
            assert_eq!(
                acked,
                [
                    conn_update(increment),
                    InboundAction::SendSettingsInitialWindow(after)
                ]
            );
            assert_eq!(flow.conn().available(), i64::from(after));
            assert!(streams.iter().all(|s| s.limit() == after));
            assert_eq!(flow.conn().limit(), after);
        } else {
            assert!(acked.is_empty());
        }
        limits.push(after);
    }
    (limits, pings)
}

#[test]
fn bdp_on_a_fast_link_grows_the_windows_to_the_16_mib_cap() {
    let mut flow = InboundFlow::new(InboundConfig::default());
    // 10 Gbit/s × 50 ms ≈ 62 MB in flight: far past the cap.
    let (limits, pings) = run_link(&mut flow, 62_500_000, Duration::from_millis(50), 20);
    let expected: Vec<u32> = (1..=8).map(|k| 65_535 << k).collect();
    assert_eq!(limits[..8], expected[..]);
    assert_eq!(limits[8], BDP_LIMIT);
    assert!(limits[8..].iter().all(|&l| l == BDP_LIMIT));
    // At the cap the estimator stops pinging.
    assert_eq!(pings, 9);
    assert_eq!(flow.bdp().unwrap().bdp(), BDP_LIMIT);
    assert_eq!(flow.new_stream().limit(), BDP_LIMIT);
    let rtt = flow.bdp().unwrap().rtt().unwrap();
    assert!((rtt.as_secs_f64() - 0.05).abs() < 1e-6, "{rtt:?}");
}

#[test]
fn bdp_settles_near_twice_a_medium_links_bdp() {
    let mut flow = InboundFlow::new(InboundConfig::default());
    // 1 MB per RTT: grows while the window is the limit, then stops.
    let (limits, pings) = run_link(&mut flow, 1_000_000, Duration::from_millis(20), 30);
    assert_eq!(limits.last().copied(), Some(2_000_000));
    assert!(limits.windows(2).all(|w| w[0] <= w[1]));
    // Below the cap it keeps measuring: every round while growing, then,
    // with a 2 MB window over 1 MB per round, every third round (a cycle,
    // then a pause of one window).
    assert_eq!(pings, 14);
}

#[test]
fn bdp_does_not_grow_on_a_slow_link() {
    let mut flow = InboundFlow::new(InboundConfig::default());
    // 1 MB/s × 10 ms = 10 KB per RTT: well under 2/3 of 64 KiB.
    let (limits, pings) = run_link(&mut flow, 10_000, Duration::from_millis(10), 50);
    assert!(limits.iter().all(|&l| l == DEFAULT_WINDOW_SIZE));
    // A cycle, then a pause until 64 KiB more have come (7 rounds of 10 KB).
    assert_eq!(pings, 7);
    assert_eq!(flow.conn().limit(), DEFAULT_WINDOW_SIZE);
}

#[test]
fn bdp_ping_is_preceded_by_a_flush_of_the_connection_window() {
    let mut flow = InboundFlow::new(InboundConfig::default());
    assert_eq!(
        actions(flow.on_data(100).unwrap()),
        [conn_update(100), InboundAction::SendPing(BDP_PING_PAYLOAD)]
    );
    // In flight: data only counts toward the window and the sample.
    assert!(flow.on_data(100).unwrap().is_empty());
    assert!(flow.bdp().unwrap().sample_in_flight());
}

#[test]
fn bdp_foreign_ping_ack_is_ignored() {
    let mut flow = InboundFlow::new(InboundConfig::default());
    let mut stream = flow.new_stream();
    let t0 = Instant::now();
    let _ = flow.on_data(65_535).unwrap();
    flow.on_ping_sent([0; 8], t0); // a keepalive PING: not ours
    flow.on_ping_sent(BDP_PING_PAYLOAD, t0);
    let later = t0 + Duration::from_millis(1);
    assert!(flow
        .on_ping_ack(*b"keepaliv", later, [&mut stream])
        .is_empty());
    assert!(flow.bdp().unwrap().sample_in_flight());
    assert_eq!(stream.limit(), 65_535);
    // Ours still counts afterwards.
    assert_eq!(
        flow.on_ping_ack(BDP_PING_PAYLOAD, later, [&mut stream])
            .len(),
        2
    );
    assert_eq!(stream.limit(), 131_070);
    // A duplicate ACK of ours, with no sample open: nothing.
    assert!(flow
        .on_ping_ack(BDP_PING_PAYLOAD, later, [&mut stream])
        .is_empty());
}

#[test]
fn bdp_estimator_no_second_ping_while_one_is_in_flight() {
    let mut bdp = BdpEstimator::new(65_535);
    let t0 = Instant::now();
    assert!(bdp.on_data(1_000));
    bdp.on_ping_sent(t0);
    for _ in 0..100 {
        assert!(!bdp.on_data(u32::MAX)); // the sample saturates, no panic
    }
    assert_eq!(bdp.on_ping_ack([1; 8], t0), None);
    assert!(bdp.sample_in_flight());
    assert_eq!(
        bdp.on_ping_ack(BDP_PING_PAYLOAD, t0 + Duration::from_secs(1)),
        Some(BDP_LIMIT)
    );
    assert!(!bdp.sample_in_flight());
    assert!(!bdp.on_data(1)); // at the cap
}

#[test]
fn bdp_estimator_small_sample_does_not_grow() {
    let mut bdp = BdpEstimator::new(65_535);
    let mut now = Instant::now();
    for _ in 0..20 {
        assert!(bdp.on_data(43_000)); // just under 0.66 × 65,535 = 43,253
        bdp.on_ping_sent(now);
        now += Duration::from_micros(100);
        assert_eq!(bdp.on_ping_ack(BDP_PING_PAYLOAD, now), None);
        // No growth: the next cycle waits for a window's worth of bytes.
        assert!(!bdp.on_data(65_535));
    }
    assert_eq!(bdp.bdp(), 65_535);
}

#[test]
fn bdp_estimator_needs_the_highest_bandwidth_to_grow() {
    let mut bdp = BdpEstimator::new(65_535);
    let t0 = Instant::now();
    assert!(bdp.on_data(65_535));
    bdp.on_ping_sent(t0);
    assert_eq!(
        bdp.on_ping_ack(BDP_PING_PAYLOAD, t0 + Duration::from_millis(1)),
        Some(131_070)
    );
    // A big enough sample, but over a much longer RTT: lower bandwidth.
    let t1 = t0 + Duration::from_secs(1);
    assert!(bdp.on_data(131_070));
    bdp.on_ping_sent(t1);
    assert_eq!(
        bdp.on_ping_ack(BDP_PING_PAYLOAD, t1 + Duration::from_secs(10)),
        None
    );
    assert_eq!(bdp.bdp(), 131_070);
}

#[test]
fn static_windows_turn_bdp_off_and_announce_the_windows() {
    let mut flow = InboundFlow::new(InboundConfig::static_windows(4 * MIB, MIB));
    assert!(flow.bdp().is_none());
    assert_eq!(
        actions(flow.start()),
        [
            InboundAction::SendSettingsInitialWindow(MIB),
            conn_update(4 * MIB - 65_535)
        ]
    );
    assert_eq!(flow.new_stream().limit(), MIB);
    for _ in 0..100 {
        for action in flow.on_data(16_384).unwrap() {
            assert!(matches!(action, InboundAction::SendWindowUpdate(_)));
        }
    }
    let mut stream = flow.new_stream();
    assert!(flow
        .on_ping_ack(BDP_PING_PAYLOAD, Instant::now(), [&mut stream])
        .is_empty());
}

#[test]
fn config_windows_are_clamped_to_the_rfc_range() {
    let flow = InboundFlow::new(InboundConfig {
        conn_window: 0,
        stream_window: 1,
        bdp: true,
    });
    assert_eq!(flow.stream_limit(), DEFAULT_WINDOW_SIZE);
    assert_eq!(flow.conn().limit(), DEFAULT_WINDOW_SIZE);
    assert!(flow.start().is_empty());
    let flow = InboundFlow::new(InboundConfig::static_windows(u32::MAX, u32::MAX));
    assert_eq!(flow.stream_limit(), MAX_WINDOW_SIZE);
    assert_eq!(
        actions(flow.start()),
        [
            InboundAction::SendSettingsInitialWindow(MAX_WINDOW_SIZE),
            conn_update(MAX_WINDOW_SIZE - 65_535)
        ]
    );
}

#[test]
fn inbound_flow_conn_errors_and_edges() {
    let mut flow = InboundFlow::new(InboundConfig::default());
    assert!(flow.on_data(0).unwrap().is_empty()); // no PING for an empty frame
    assert_eq!(
        flow.on_data(u32::MAX),
        Err(FlowError {
            received: u64::from(u32::MAX),
            window: 65_535
        })
    );
    // The failed frame changed nothing: no sample opened either.
    assert!(!flow.bdp().unwrap().sample_in_flight());
    let update = WindowUpdateNeeded::stream(StreamId::new(3), 7);
    assert_eq!(
        framer::WindowUpdate::from(update),
        framer::WindowUpdate::new(StreamId::new(3), 7)
    );
}
