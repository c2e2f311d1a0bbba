//! The order of a connection's output when the receive path calls the
//! writer directly while the application's items wait in the control
//! buffer, through the scripted [`Raw`] peer on a virtual clock: a direct
//! command never overtakes an item put before it; the peer's SETTINGS bind
//! before their ack (RFC 9113 §6.5.3); a send window the peer overflows
//! (§6.9.1, §6.9.2) ends the connection at once, with nothing after it
//! answered.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

#[path = "common/pair.rs"]
mod pair;

use bytes::{Bytes, BytesMut};
use mio_grpc::conn::{CloseReason, ConnConfig, ConnEvent, ConnViolation};
use mio_grpc::framer::{Frame, Reason, SettingId, Settings};
use mio_grpc::loopy::{Item, StreamKey};
use pair::*;

const MAX_WINDOW: u32 = 0x7fff_ffff;

/// Frames encoded back to back, to arrive in one read.
fn together(raw: &mut Raw, frames: Vec<Frame>) -> BytesMut {
    let mut wire = BytesMut::new();
    for frame in frames {
        raw.encoder.encode(&frame, &mut wire);
    }
    wire
}

/// Client: opens a stream (its HEADERS written); returns its key.
fn open(raw: &mut Raw) -> StreamKey {
    let key = raw.conn.buffer().new_stream_key();
    raw.put(Item::Open {
        key,
        fields: grpc_request("/svc/M"),
        end_stream: false,
        quota: None,
    });
    assert_eq!(raw.take_described(), ["HEADERS s=1"]);
    raw.take_events();
    key
}

#[test]
fn data_put_before_the_peer_resets_the_stream_goes_with_the_stream() {
    // The application's DATA waits in the buffer when the peer's
    // RST_STREAM arrives: the stream's cleanup comes after it, so the DATA
    // is dropped with the stream, never reported as unopened (which would
    // tell a client the request is safe to retry).
    let mut raw = Raw::client(ConnConfig::default(), Settings::new());
    let key = open(&mut raw);
    raw.conn
        .buffer()
        .put(Item::Data {
            key,
            data: Bytes::from_static(b"late"),
            end_stream: true,
        })
        .unwrap();
    raw.send(rst(1, Reason::CANCEL));
    assert_eq!(
        raw.take_events(),
        [ConnEvent::Reset {
            key,
            reason: Reason::CANCEL,
            remote: true
        }]
    );
    assert_eq!(raw.take_described(), [] as [String; 0]);
}

#[test]
fn a_reset_put_before_a_stream_error_is_written_first() {
    // One FIFO: the application's reset of stream 1 was put before the
    // peer's stream error on stream 3 was found.
    let mut raw = Raw::server(ConnConfig::default());
    raw.send(headers(1, grpc_request("/svc/M"), false));
    raw.send(headers(3, grpc_request("/svc/M"), false));
    raw.take_events();
    raw.conn
        .buffer()
        .put(Item::Reset {
            key: key(1),
            reason: Reason::CANCEL,
        })
        .unwrap();
    // A zero WINDOW_UPDATE on 3: a stream error PROTOCOL_ERROR (§6.9).
    raw.send(window_update(3, 0));
    assert_eq!(
        raw.take_described(),
        ["RST_STREAM s=1 CANCEL", "RST_STREAM s=3 PROTOCOL_ERROR"]
    );
}

#[test]
fn sec6_5_3_peer_settings_bind_before_their_ack_and_the_data_behind_it() {
    // The response's DATA is queued when SETTINGS_INITIAL_WINDOW_SIZE = 0
    // arrives: the ack goes out and the DATA waits for window.
    let mut raw = Raw::server(ConnConfig::default());
    raw.send(headers(1, grpc_request("/svc/M"), true));
    raw.conn
        .buffer()
        .put(Item::Data {
            key: key(1),
            data: Bytes::from_static(b"answer"),
            end_stream: false,
        })
        .unwrap();
    raw.send(Settings::new().with(SettingId::INITIAL_WINDOW_SIZE, 0));
    assert_eq!(raw.take_described(), ["SETTINGS ack"]);
    raw.send(window_update(1, 6));
    assert_eq!(raw.take_described(), ["DATA s=1 len=6"]);
}

#[test]
fn sec6_9_1_a_connection_window_overflow_ends_the_connection_at_once() {
    // The PING behind the overflowing WINDOW_UPDATE, read in the same go,
    // is not answered: the connection error ends reading there.
    let mut raw = Raw::server(ConnConfig::default());
    let wire = together(
        &mut raw,
        vec![window_update(0, MAX_WINDOW), ping(*b"behind!!")],
    );
    raw.send_bytes(&wire);
    assert_eq!(
        raw.take_described(),
        ["GOAWAY last=0 FLOW_CONTROL_ERROR \"WINDOW_UPDATE overflowed the connection send window\""]
    );
    assert_eq!(
        raw.take_events(),
        [ConnEvent::ConnectionClosed {
            reason: CloseReason::LocalError(ConnViolation::SendWindowOverflow(
                "WINDOW_UPDATE overflowed the connection send window"
            ))
        }]
    );
}

#[test]
fn sec6_9_2_settings_overflowing_a_stream_window_are_not_acknowledged() {
    let mut raw = Raw::server(ConnConfig::default());
    raw.send(headers(1, grpc_request("/svc/M"), false));
    raw.send(window_update(1, MAX_WINDOW - 65_535));
    raw.take_described();
    raw.send(Settings::new().with(SettingId::INITIAL_WINDOW_SIZE, 65_536));
    assert_eq!(
        raw.take_described(),
        ["GOAWAY last=1 FLOW_CONTROL_ERROR \"SETTINGS_INITIAL_WINDOW_SIZE overflowed a stream send window\""]
    );
    assert!(raw.conn.is_finished());
}
