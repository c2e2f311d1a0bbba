//! The loopy writer and control buffer, driven by hand: no sockets, no
//! threads, no sleeps. One test per rule of the issue.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use common::*;
use framer::hpack::HeaderField;
use framer::{Frame, GoAway, HeaderBlock, Reason, SettingId, Settings, StreamId};
use loopy::{DropCause, Event, Item, PutError, Role, SendState, StreamKey, WriteQuota};

const MAX_WINDOW: i64 = loopy::MAX_WINDOW_SIZE as i64;

// --- strict outbound classes ---------------------------------------------

#[test]
fn urgent_control_goes_before_other_control_and_data() {
    let mut h = Harness::new(Role::Server);
    let key = h.register(1);
    h.data(key, 100, false);
    h.writer
        .queue_settings(settings(SettingId::MAX_CONCURRENT_STREAMS, 10));
    h.writer.queue_window_update(StreamId::ZERO, 1000);
    h.writer.queue_ping_ack([1; 8]);
    h.writer.queue_settings_ack();
    let frames = h.write_all();
    assert_eq!(
        shape(&frames),
        vec![
            ("PING", 0),
            ("SETTINGS", 0),
            ("SETTINGS", 0),
            ("WINDOW_UPDATE", 0),
            ("DATA", 1)
        ]
    );
    assert!(matches!(&frames[0], Frame::Ping(p) if p.ack));
    assert!(matches!(&frames[1], Frame::Settings(s) if s.ack));
}

#[test]
fn control_frames_are_not_held_back_by_exhausted_windows() {
    let mut h = Harness::new(Role::Server);
    let key = h.register(1);
    h.data(key, 200_000, false);
    h.write_all();
    assert_eq!(h.writer.connection_window(), 0);
    h.writer.queue_ping_ack([9; 8]);
    h.writer
        .queue_rst(StreamId::new(7), Reason::REFUSED_STREAM, None);
    let frames = h.write_all();
    assert_eq!(shape(&frames), vec![("PING", 0), ("RST", 7)]);
}

// --- round robin ------------------------------------------------------------

#[test]
fn active_streams_are_served_round_robin_one_frame_per_turn() {
    let mut h = Harness::new(Role::Server);
    h.peer_window(0, 1_000_000);
    let keys: Vec<StreamKey> = [1, 3, 5].iter().map(|id| h.register(*id)).collect();
    for key in &keys {
        h.data(*key, 40_000, true); // 3 frames each at 16 KiB
    }
    let frames = h.write_all();
    let order: Vec<u32> = frames.iter().map(|f| f.stream_id().value()).collect();
    assert_eq!(order, vec![1, 3, 5, 1, 3, 5, 1, 3, 5]);
    for frame in &frames {
        if let Frame::Data(d) = frame {
            assert!(d.payload.len() <= 16_384);
        }
    }
    let data = data_by_stream(&frames);
    for key in keys {
        assert_eq!(&data[&(key.0 as u32)][..], &pattern(key, 40_000)[..]);
    }
}

#[test]
fn a_small_budget_yields_and_the_next_write_continues_fairly() {
    let mut h = Harness::new(Role::Server);
    let a = h.register(1);
    let b = h.register(3);
    h.data(a, 30_000, false);
    h.data(b, 30_000, false);
    let first = h.write(1);
    assert_eq!(shape(&first), vec![("DATA", 1)]);
    let second = h.write(1);
    assert_eq!(shape(&second), vec![("DATA", 3)]);
}

// --- windows ------------------------------------------------------------------

#[test]
fn data_length_is_the_minimum_of_frame_size_stream_and_connection_windows() {
    let mut h = Harness::new(Role::Server);
    let key = h.register(1);
    h.data(key, 100_000, false);
    let frames = h.write_all();
    let sizes: Vec<usize> = frames
        .iter()
        .map(|f| match f {
            Frame::Data(d) => d.payload.len(),
            _ => 0,
        })
        .collect();
    // 65,535 = 3 × 16,384 + 16,383: the initial windows cut the last frame.
    assert_eq!(sizes, vec![16_384, 16_384, 16_384, 16_383]);
    assert_eq!(h.writer.stream_window(key), Some(0));
    assert_eq!(h.writer.connection_window(), 0);
}

#[test]
fn stream_window_stall_and_resumption() {
    let mut h = Harness::new(Role::Server);
    h.peer_window(0, 1 << 20);
    let key = h.register(1);
    h.data(key, 100_000, true);
    let first = h.write_all();
    assert_eq!(data_by_stream(&first)[&1].len(), 65_535);
    assert_eq!(h.writer.stream_state(key), Some(SendState::WaitingOnWindow));
    assert_eq!(h.writer.stats().stream_window_stalls, 1);
    assert!(
        h.write_all().is_empty(),
        "nothing while the window is spent"
    );

    h.peer_window(1, 10_000);
    let second = h.write_all();
    assert_eq!(data_by_stream(&second)[&1].len(), 10_000);
    h.peer_window(1, 1 << 20);
    let third = h.write_all();
    assert_eq!(data_by_stream(&third)[&1].len(), 100_000 - 75_535);
    assert!(matches!(third.last(), Some(Frame::Data(d)) if d.end_stream));
    assert!(h.take_events().contains(&Event::Finished { key }));
}

#[test]
fn connection_window_stall_releases_every_waiting_stream() {
    let mut h = Harness::new(Role::Server);
    h.peer_settings(settings(SettingId::INITIAL_WINDOW_SIZE, 1 << 20));
    let keys: Vec<StreamKey> = (0..4).map(|i| h.register(1 + 2 * i)).collect();
    for key in &keys {
        h.data(*key, 30_000, true);
    }
    let first = h.write_all();
    let sent: usize = data_by_stream(&first).values().map(|b| b.len()).sum();
    assert_eq!(sent, 65_535, "the connection window bounds the total");
    assert!(h.writer.stats().connection_window_stalls > 0);
    h.peer_window(0, 1 << 20);
    let second = h.write_all();
    let mut all = data_by_stream(&first);
    for (id, bytes) in data_by_stream(&second) {
        all.entry(id).or_default().extend_from_slice(&bytes);
    }
    for key in keys {
        assert_eq!(
            &all[&(key.0 as u32)][..],
            &pattern(key, 30_000)[..],
            "stream {key:?}"
        );
    }
}

#[test]
fn settings_decrease_makes_windows_negative_and_data_waits() {
    // RFC 9113 §6.9.2.
    let mut h = Harness::new(Role::Server);
    h.peer_window(0, 1 << 20);
    let key = h.register(1);
    h.data(key, 60_000, false);
    h.write_all();
    assert_eq!(h.writer.stream_window(key), Some(5_535));
    h.peer_settings(settings(SettingId::INITIAL_WINDOW_SIZE, 1_000));
    h.data(key, 10_000, true);
    assert!(h.write_all().is_empty());
    assert_eq!(h.writer.stream_window(key), Some(5_535 - 64_535));
    h.peer_window(1, 50_000);
    assert!(h.write_all().is_empty(), "still negative: -9,000");
    h.peer_window(1, 9_500);
    let frames = h.write_all();
    assert_eq!(data_by_stream(&frames)[&1].len(), 500);
    // Raising the setting applies the delta too.
    h.peer_settings(settings(SettingId::INITIAL_WINDOW_SIZE, 100_000));
    let frames = h.write_all();
    assert_eq!(data_by_stream(&frames)[&1].len(), 9_500);
}

#[test]
fn settings_increase_past_2_31_minus_1_is_a_connection_flow_control_error() {
    let mut h = Harness::new(Role::Server);
    let key = h.register(1);
    h.writer
        .apply_stream_window_update(key, (MAX_WINDOW - 65_535) as u32);
    h.write_all();
    assert_eq!(h.writer.stream_window(key), Some(MAX_WINDOW));
    let err = h
        .writer
        .apply_peer_settings(&settings(SettingId::INITIAL_WINDOW_SIZE, 65_536))
        .unwrap_err();
    assert_eq!(err.reason, Reason::FLOW_CONTROL_ERROR);
}

#[test]
fn connection_window_update_overflow_is_a_connection_error() {
    let mut h = Harness::new(Role::Server);
    h.peer_window(0, (MAX_WINDOW - 65_535) as u32);
    h.write_all();
    let err = h.writer.apply_connection_window_update(1).unwrap_err();
    assert_eq!(err.reason, Reason::FLOW_CONTROL_ERROR);
}

#[test]
fn stream_window_update_overflow_resets_only_that_stream() {
    let mut h = Harness::new(Role::Server);
    let a = h.register(1);
    let b = h.register(3);
    h.peer_window(1, MAX_WINDOW as u32);
    h.data(b, 10, true);
    let frames = h.write_all();
    assert!(shape(&frames).contains(&("RST", 1)));
    assert!(matches!(&frames[0], Frame::RstStream(r) if r.reason == Reason::FLOW_CONTROL_ERROR));
    assert!(shape(&frames).contains(&("DATA", 3)));
    let events = h.take_events();
    assert!(events.iter().any(
        |e| matches!(e, Event::Dropped { key, cause: DropCause::FlowControl, .. } if *key == a)
    ));
}

#[test]
fn empty_data_with_end_stream_needs_no_window() {
    let mut h = Harness::new(Role::Server);
    let key = h.register(1);
    h.data(key, 65_535, false);
    h.write_all();
    assert_eq!(h.writer.connection_window(), 0);
    h.put(Item::Data {
        key,
        data: Bytes::new(),
        end_stream: true,
    });
    let frames = h.write_all();
    assert!(matches!(&frames[..], [Frame::Data(d)] if d.end_stream && d.payload.is_empty()));
}

#[test]
fn peer_max_frame_size_bounds_data_frames() {
    let mut h = Harness::new(Role::Server);
    h.peer_settings(
        Settings::new()
            .with(SettingId::MAX_FRAME_SIZE, 100_000)
            .with(SettingId::INITIAL_WINDOW_SIZE, 1 << 20),
    );
    h.peer_window(0, 1 << 20);
    let key = h.register(1);
    h.data(key, 250_000, true);
    let sizes: Vec<usize> = h
        .write_all()
        .iter()
        .map(|f| match f {
            Frame::Data(d) => d.payload.len(),
            _ => 0,
        })
        .collect();
    assert_eq!(sizes, vec![100_000, 100_000, 50_000]);
}

// --- trailers, reset -------------------------------------------------------------

#[test]
fn trailers_are_written_only_after_all_the_data() {
    let mut h = Harness::new(Role::Server);
    let key = h.register(1);
    h.put(Item::Headers {
        key,
        fields: vec![HeaderField::new(":status", "200")],
        end_stream: false,
    });
    h.data(key, 70_000, false);
    h.put(Item::Headers {
        key,
        fields: trailers(),
        end_stream: true,
    });
    let first = h.write_all();
    assert!(matches!(first.first(), Some(Frame::Headers(h)) if !h.end_stream));
    assert!(
        !first.iter().skip(1).any(|f| matches!(f, Frame::Headers(_))),
        "trailers must wait"
    );
    h.peer_window(0, 10_000);
    h.peer_window(1, 10_000);
    let second = h.write_all();
    assert_eq!(shape(&second), vec![("DATA", 1), ("HEADERS", 1)]);
    assert!(matches!(&second[1], Frame::Headers(t) if t.end_stream));
    assert_eq!(h.take_events().last(), Some(&Event::Finished { key }));
    assert_eq!(
        h.writer.stream_count(),
        0,
        "a finished server stream leaves loopy"
    );
}

#[test]
fn reset_mid_message_purges_the_queue_and_reports_what_was_dropped() {
    let mut h = Harness::new(Role::Server);
    h.peer_window(0, 1 << 20);
    let key = h.register(1);
    h.data(key, 100_000, true);
    let first = h.write_all();
    assert_eq!(data_by_stream(&first)[&1].len(), 65_535);
    h.put(Item::Reset {
        key,
        reason: Reason::CANCEL,
    });
    h.peer_window(1, 1 << 20);
    let second = h.write_all();
    assert_eq!(shape(&second), vec![("RST", 1)], "no DATA after the reset");
    let dropped: Vec<Event> = h
        .take_events()
        .into_iter()
        .filter(|e| matches!(e, Event::Dropped { .. }))
        .collect();
    assert_eq!(
        dropped,
        vec![Event::Dropped {
            key,
            cause: DropCause::Reset(Reason::CANCEL),
            opened: true,
            bytes: 100_000 - 65_535,
            end_stream: true
        }]
    );
    // Items for the reset stream are refused, not sent.
    h.data(key, 10, true);
    assert!(h.write_all().is_empty());
    assert!(matches!(
        h.take_events()[..],
        [Event::Dropped {
            cause: DropCause::Invalid,
            ..
        }]
    ));
}

// --- MAX_CONCURRENT_STREAMS (client) -------------------------------------------------

fn open(h: &Harness, end_stream: bool) -> StreamKey {
    let key = h.buffer.new_stream_key();
    h.put(Item::Open {
        key,
        fields: fields("/svc/M"),
        end_stream,
        quota: None,
    });
    key
}

#[test]
fn client_streams_queue_at_max_concurrent_streams_and_open_in_order() {
    let mut h = Harness::new(Role::Client);
    h.peer_settings(settings(SettingId::MAX_CONCURRENT_STREAMS, 2));
    let keys: Vec<StreamKey> = (0..5).map(|_| open(&h, false)).collect();
    for key in &keys {
        h.data(*key, 10, true);
    }
    let first = h.write_all();
    assert_eq!(
        shape(&first),
        vec![("HEADERS", 1), ("HEADERS", 3), ("DATA", 1), ("DATA", 3)],
        "only two streams open; data only on open streams"
    );
    assert_eq!(h.writer.open_streams(), 2);
    assert_eq!(h.writer.waiting_streams(), 3);
    let opened: Vec<Event> = h
        .take_events()
        .into_iter()
        .filter(|e| matches!(e, Event::Opened { .. }))
        .collect();
    assert_eq!(
        opened,
        vec![
            Event::Opened {
                key: keys[0],
                id: StreamId::new(1)
            },
            Event::Opened {
                key: keys[1],
                id: StreamId::new(3)
            },
        ]
    );

    // Reset a waiting stream: it never gets an id.
    h.put(Item::Reset {
        key: keys[2],
        reason: Reason::CANCEL,
    });
    // One open stream closes: the next waiting one opens with the next id.
    h.writer.cleanup(keys[0]);
    let second = h.write_all();
    assert_eq!(shape(&second), vec![("HEADERS", 5), ("DATA", 5)]);
    assert!(h.take_events().contains(&Event::Opened {
        key: keys[3],
        id: StreamId::new(5)
    }));

    // The peer raises its limit: the rest opens.
    h.peer_settings(settings(SettingId::MAX_CONCURRENT_STREAMS, 100));
    let third = h.write_all();
    assert_eq!(shape(&third), vec![("HEADERS", 7), ("DATA", 7)]);
    assert_eq!(h.writer.open_streams(), 3);
}

#[test]
fn client_stream_ids_are_assigned_at_write_time_in_put_order() {
    let mut h = Harness::new(Role::Client);
    let a = open(&h, true);
    let b = open(&h, true);
    let frames = h.write_all();
    assert_eq!(shape(&frames), vec![("HEADERS", 1), ("HEADERS", 3)]);
    assert!(frames
        .iter()
        .all(|f| matches!(f, Frame::Headers(h) if h.end_stream)));
    let events = h.take_events();
    assert_eq!(
        events[0],
        Event::Opened {
            key: a,
            id: StreamId::new(1)
        }
    );
    assert!(events.contains(&Event::Opened {
        key: b,
        id: StreamId::new(3)
    }));
    assert!(events.contains(&Event::Finished { key: a }));
    assert_eq!(
        h.writer.open_streams(),
        2,
        "half-closed streams still count"
    );
}

#[test]
fn headers_are_hpack_encoded_in_wire_order() {
    // Many streams with repeated fields: a decoder reading the wire in order
    // gets every block right only if encoding happened in wire order.
    let mut h = Harness::new(Role::Client);
    h.peer_settings(settings(SettingId::MAX_CONCURRENT_STREAMS, 3));
    let keys: Vec<StreamKey> = (0..20)
        .map(|i| {
            let key = h.buffer.new_stream_key();
            h.put(Item::Open {
                key,
                fields: fields(&format!("/svc/M{}", i % 4)),
                end_stream: true,
                quota: None,
            });
            key
        })
        .collect();
    let mut headers = Vec::new();
    for key in &keys {
        headers.extend(h.write_all());
        h.writer.cleanup(*key);
    }
    headers.extend(h.write_all());
    assert_eq!(headers.len(), 20);
    for (i, frame) in headers.iter().enumerate() {
        let Frame::Headers(hd) = frame else {
            panic!("{frame:?}")
        };
        assert_eq!(hd.stream_id.value(), 1 + 2 * i as u32);
        let HeaderBlock::Fields(f) = &hd.block else {
            panic!()
        };
        assert_eq!(f[1].value, format!("/svc/M{}", i % 4));
    }
}

#[test]
fn header_list_over_the_peer_limit_is_refused_before_queueing() {
    let mut h = Harness::new(Role::Client);
    h.peer_settings(settings(SettingId::MAX_HEADER_LIST_SIZE, 100));
    let key = h.buffer.new_stream_key();
    let mut big = fields("/svc/M");
    big.push(HeaderField::new("x-big", vec![b'x'; 200]));
    let err = h
        .buffer
        .put(Item::Open {
            key,
            fields: big,
            end_stream: true,
            quota: None,
        })
        .unwrap_err();
    assert!(matches!(
        err,
        PutError::HeaderListTooLarge { limit: 100, .. }
    ));
    assert!(matches!(err.into_item(), Item::Open { .. }));
}

// --- GOAWAY ----------------------------------------------------------------------------

#[test]
fn peer_goaway_drops_streams_above_last_id_as_retryable_and_refuses_new_ones() {
    let mut h = Harness::new(Role::Client);
    h.peer_settings(settings(SettingId::MAX_CONCURRENT_STREAMS, 2));
    let keys: Vec<StreamKey> = (0..3).map(|_| open(&h, false)).collect();
    h.write_all();
    h.writer.apply_peer_goaway(StreamId::new(1));
    h.data(keys[0], 5, true);
    let late = open(&h, true);
    let frames = h.write_all();
    assert_eq!(
        shape(&frames),
        vec![("DATA", 1)],
        "stream 1 was processed and goes on"
    );
    let drops: Vec<(StreamKey, DropCause, bool)> = h
        .take_events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Dropped {
                key, cause, opened, ..
            } => Some((key, cause, opened)),
            _ => None,
        })
        .collect();
    assert_eq!(
        drops,
        vec![
            (keys[1], DropCause::PeerGoAway, true),
            (keys[2], DropCause::PeerGoAway, false),
            (late, DropCause::PeerGoAway, false),
        ]
    );
}

#[test]
fn our_goaway_is_sent_as_control() {
    let mut h = Harness::new(Role::Server);
    h.writer
        .queue_goaway(GoAway::new(StreamId::new(5), Reason::NO_ERROR));
    assert_eq!(shape(&h.write_all()), vec![("GOAWAY", 0)]);
}

// --- flood control, wake-ups, close ------------------------------------------------------

#[test]
fn flood_of_transport_responses_stops_reading_until_the_writer_drains() {
    let mut h = Harness::with_limit(Role::Server, 100);
    for i in 0..99u8 {
        h.writer.queue_ping_ack([i; 8]);
    }
    assert!(h.writer.wants_read());
    h.writer.queue_settings_ack();
    assert!(!h.writer.wants_read(), "100 queued responses: stop reading");
    // A partial drain (small budget) keeps the throttle on.
    let frames = h.write(17 * 10);
    assert_eq!(frames.len(), 10);
    assert!(h.writer.wants_read(), "90 queued is under the limit again");
    assert_eq!(h.writer.transport_responses(), 90);
    h.write_all();
    assert!(h.writer.wants_read());
    assert_eq!(h.writer.transport_responses(), 0);
}

#[test]
fn flood_throttle_lifts_even_when_every_window_is_exhausted() {
    let mut h = Harness::with_limit(Role::Server, 10);
    let key = h.register(1);
    h.data(key, 1 << 20, false);
    h.write_all();
    for _ in 0..10 {
        h.writer
            .queue_rst(StreamId::new(99), Reason::STREAM_CLOSED, None);
    }
    assert!(!h.writer.wants_read());
    let frames = h.write_all();
    assert_eq!(frames.len(), 10);
    assert!(
        h.writer.wants_read(),
        "responses are not stuck behind flow control"
    );
}

#[test]
fn a_put_wakes_the_owner_only_when_it_waits() {
    let mut h = Harness::new(Role::Server);
    let key = h.register(1);
    h.data(key, 1, false);
    h.data(key, 1, false);
    assert_eq!(
        h.wake.0.load(Ordering::SeqCst),
        0,
        "the owner never said it waits"
    );
    h.write_all(); // drains, then finds the buffer empty: waiting
    h.write_all();
    h.data(key, 1, false);
    h.data(key, 1, false);
    assert_eq!(
        h.wake.0.load(Ordering::SeqCst),
        1,
        "one wake for the first put only"
    );
}

#[test]
fn a_direct_command_does_not_mark_the_owner_waiting() {
    // The connection's own commands catch up with the buffer, but the
    // owner is at work: a put after them needs no wake-up.
    let mut h = Harness::new(Role::Server);
    let key = h.register(1);
    h.buffer.consumer_busy();
    h.writer.queue_ping_ack([0; 8]);
    h.data(key, 1, false);
    assert_eq!(h.wake.0.load(Ordering::SeqCst), 0);
}

#[test]
fn after_finish_puts_are_refused_and_undelivered_items_come_back() {
    let mut h = Harness::new(Role::Server);
    let key = h.register(1);
    h.write_all();
    let quota = Arc::new(WriteQuota::new(10));
    h.writer
        .register_stream(StreamKey(3), StreamId::new(3), Some(quota.clone()));
    h.write_all();
    h.data(key, 100_000, true); // more than the window: stays queued
    h.write_all();
    h.put(Item::Reset {
        key: StreamKey(3),
        reason: Reason::CANCEL,
    });
    let undelivered = h.writer.close();
    assert!(matches!(&undelivered[..], [Item::Reset { .. }]));
    assert!(matches!(
        h.buffer.put(Item::Reset {
            key,
            reason: Reason::CANCEL
        }),
        Err(PutError::Closed(Item::Reset { .. }))
    ));
    let events = h.writer.events().collect::<Vec<_>>();
    assert!(events.iter().any(|e| matches!(e, Event::Dropped { key: k, cause: DropCause::Closed, bytes, .. } if *k == key && *bytes == 100_000 - 65_535)));
    assert!(quota.is_closed(), "waiters on a closed stream are released");
}

// --- write quota ---------------------------------------------------------------------------

#[test]
fn write_quota_is_replenished_as_data_is_written() {
    let mut h = Harness::new(Role::Server);
    let quota = Arc::new(WriteQuota::new(loopy::DEFAULT_WRITE_QUOTA));
    let key = StreamKey(1);
    h.writer
        .register_stream(key, StreamId::new(1), Some(quota.clone()));
    assert_eq!(quota.try_acquire(100_000), Ok(true));
    h.data(key, 100_000, false);
    assert_eq!(
        quota.try_acquire(1),
        Ok(false),
        "over the quota: the owner must wait"
    );
    h.write_all(); // 65,535 bytes go out
    assert_eq!(quota.available(), 65_536 - 100_000 + 65_535);
    assert_eq!(quota.try_acquire(1), Ok(true));
    h.put(Item::Reset {
        key,
        reason: Reason::CANCEL,
    });
    h.write_all();
    assert_eq!(quota.try_acquire(1), Err(loopy::QuotaError::Closed));
}

#[test]
fn items_for_unknown_streams_are_reported_not_sent() {
    let mut h = Harness::new(Role::Server);
    h.data(StreamKey(41), 10, true);
    assert!(h.write_all().is_empty());
    assert!(matches!(
        h.take_events()[..],
        [Event::Dropped {
            cause: DropCause::Invalid,
            bytes: 10,
            ..
        }]
    ));
}

#[test]
fn data_after_end_stream_is_refused() {
    let mut h = Harness::new(Role::Server);
    let key = h.register(1);
    h.data(key, 70_000, true);
    h.data(key, 10, false);
    h.write_all();
    let events = h.take_events();
    assert!(events.iter().any(|e| matches!(
        e,
        Event::Dropped {
            cause: DropCause::Invalid,
            bytes: 10,
            ..
        }
    )));
}

#[test]
fn after_a_connection_error_the_goaway_still_goes_out() {
    // Two overflowing updates: the first is the error; the second is no
    // longer applied, and the GOAWAY the connection then queues is written.
    let mut h = Harness::new(Role::Server);
    let err = h
        .writer
        .apply_connection_window_update(MAX_WINDOW as u32)
        .unwrap_err();
    assert_eq!(err.reason, Reason::FLOW_CONTROL_ERROR);
    assert_eq!(
        h.writer.apply_connection_window_update(MAX_WINDOW as u32),
        Ok(())
    );
    h.writer
        .queue_goaway(GoAway::new(StreamId::ZERO, Reason::FLOW_CONTROL_ERROR));
    assert_eq!(shape(&h.write_all()), vec![("GOAWAY", 0)]);
}

// --- direct commands keep the buffer's order ---------------------------------------------

#[test]
fn a_direct_command_comes_after_the_items_put_before_it() {
    // The application put DATA, then the stream closed (cleanup): the DATA
    // was the stream's and is reported dropped with it, not refused as
    // DATA for an unknown stream.
    let mut h = Harness::new(Role::Client);
    let key = open(&h, false);
    h.write_all();
    h.take_events();
    h.data(key, 10, true);
    h.writer.cleanup(key);
    assert!(h.write_all().is_empty());
    assert_eq!(
        h.take_events(),
        vec![Event::Dropped {
            key,
            cause: DropCause::Cleanup,
            opened: true,
            bytes: 10,
            end_stream: true
        }]
    );
}

#[test]
fn control_frames_keep_their_order_with_items_put_before_them() {
    // Items put before a RST_STREAM are applied before it: a reset the
    // application put goes out ahead of the connection's next control
    // frame, as one queue would have it.
    let mut h = Harness::new(Role::Server);
    let a = h.register(1);
    h.register(3);
    h.write_all();
    h.put(Item::Reset {
        key: a,
        reason: Reason::CANCEL,
    });
    h.writer
        .queue_rst(StreamId::new(3), Reason::STREAM_CLOSED, Some(StreamKey(3)));
    h.writer.queue_window_update(StreamId::ZERO, 100);
    assert_eq!(
        shape(&h.write_all()),
        vec![("RST", 1), ("RST", 3), ("WINDOW_UPDATE", 0)]
    );
}

#[test]
fn commands_after_close_are_ignored() {
    let mut h = Harness::new(Role::Server);
    h.writer.close();
    h.writer.queue_ping_ack([0; 8]);
    h.writer.queue_rst(StreamId::new(1), Reason::CANCEL, None);
    assert!(h.write_all().is_empty());
    assert!(h.writer.wants_read());
}
