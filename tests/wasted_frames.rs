//! The wasted-frames budget on a real server (`mio_grpc::http::Server`
//! over TCP), each flood beside a well-behaved connection that keeps
//! getting answers: PRIORITY frames, unknown frame types, DATA on closed
//! streams (each answered with RST_STREAM), WINDOW_UPDATE on closed
//! streams. Before the budget these were accepted forever (issue 11: 1.7
//! GB of PRIORITY and 27 GB of unknown frames in 9 s, no answer).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::peer::{frames, start_server, Peer, HELLO};
use framer::{Frame, GoAway, Reason};

/// More frames than the default budget (1,000 per 10 s) allows.
const FLOOD: u32 = 1_500;

fn still_serves(good: &mut Peer, stream: u32) {
    good.send_get(stream, "/");
    let (status, body) = good.expect_response(stream);
    assert_eq!((status, &body[..]), (200, HELLO));
}

/// `flood` returns the GOAWAY if it read it itself.
fn flood_beside_a_neighbour(flood: impl FnOnce(&mut Peer) -> Option<GoAway>) {
    let (_server, addr) = start_server();
    let mut good = Peer::connect(addr);
    good.handshake();
    still_serves(&mut good, 1);
    let mut attacker = Peer::connect(addr);
    attacker.handshake();
    let goaway = match flood(&mut attacker) {
        Some(goaway) => goaway,
        None => attacker.expect_goaway(Reason::ENHANCE_YOUR_CALM),
    };
    assert_eq!(goaway.reason, Reason::ENHANCE_YOUR_CALM);
    assert!(
        goaway.debug_data.starts_with(b"wasted_frames"),
        "{:?}",
        String::from_utf8_lossy(&goaway.debug_data)
    );
    still_serves(&mut good, 3);
}

#[test]
fn a_priority_flood_gets_goaway_wasted_frames() {
    flood_beside_a_neighbour(|attacker| {
        let frames: Vec<_> = (0..FLOOD)
            .map(|i| frames::priority(1 + 2 * i, 0, 16, false))
            .collect();
        attacker.send_together(frames);
        None
    });
}

#[test]
fn an_unknown_frame_flood_gets_goaway_wasted_frames() {
    flood_beside_a_neighbour(|attacker| {
        let frames: Vec<_> = (0..FLOOD).map(|_| frames::unknown(0xfa, 0, [])).collect();
        attacker.send_together(frames);
        None
    });
}

#[test]
fn data_on_closed_streams_gets_goaway_wasted_frames() {
    flood_beside_a_neighbour(|attacker| {
        // Streams that closed normally, then DATA on each: every one is
        // answered with RST_STREAM STREAM_CLOSED and costs from the budget.
        for chunk in 0..FLOOD / 50 {
            let ids: Vec<u32> = (0..50).map(|i| 1 + 2 * (chunk * 50 + i)).collect();
            for &id in &ids {
                attacker.send_get(id, "/");
            }
            for &id in &ids {
                let goaway = attacker.expect(&format!("a response on {id}"), |f| match f {
                    Frame::Headers(h) if h.stream_id.value() == id => Some(None),
                    Frame::GoAway(g) => Some(Some(g.clone())),
                    _ => None,
                });
                if goaway.is_some() {
                    return goaway;
                }
            }
            let data: Vec<_> = ids.iter().map(|&id| frames::data(id, b"x")).collect();
            attacker.send_together(data);
        }
        None
    });
}

#[test]
fn window_updates_on_a_closed_stream_get_goaway_wasted_frames() {
    flood_beside_a_neighbour(|attacker| {
        attacker.send_get(1, "/");
        let _ = attacker.expect_response(1);
        let frames: Vec<_> = (0..FLOOD).map(|_| frames::window_update(1, 1)).collect();
        attacker.send_together(frames);
        None
    });
}
