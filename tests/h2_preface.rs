//! RFC 9113 §3.4 (HTTP/2 connection preface) against a real server over
//! TCP: the server's preface is a SETTINGS frame sent first, the client's
//! preface must be the 24-octet magic followed by SETTINGS, and anything
//! else is a connection error of type PROTOCOL_ERROR. h2spec `http2/3.5`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::peer::*;
use mio_grpc::framer::{Reason, PREFACE};

#[test]
fn sec3_4_valid_preface_is_answered_with_settings_first() {
    let (_server, addr) = start_server();
    let mut peer = Peer::connect(addr);
    peer.send_raw(PREFACE);
    peer.send(frames::settings());
    // §3.4: "The server connection preface consists of a potentially empty
    // SETTINGS frame that MUST be the first frame the server sends".
    peer.expect_server_preface();
    peer.wait_for_settings_ack();
    // §6.5.2: "A server MUST NOT explicitly set this value to 1."
    assert_ne!(peer.server_settings.enable_push(), Some(true));
    peer.expect_alive();
}

#[test]
fn sec3_4_server_preface_does_not_wait_for_the_client_settings() {
    let (_server, addr) = start_server();
    let mut peer = Peer::connect(addr);
    peer.send_raw(PREFACE);
    // No SETTINGS from us yet: the server's SETTINGS comes anyway. (Not
    // acknowledged before ours is sent: our preface must start with a
    // SETTINGS frame that is not an ACK.)
    peer.auto_ack = false;
    peer.expect_server_preface();
    peer.send(frames::settings());
    peer.send(frames::settings_ack());
    peer.auto_ack = true;
    peer.wait_for_settings_ack();
    peer.expect_alive();
}

#[test]
fn sec3_4_preface_split_across_reads_is_accepted() {
    let (_server, addr) = start_server();
    let mut peer = Peer::connect(addr);
    for byte in PREFACE.iter() {
        peer.send_raw(&[*byte]);
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    peer.send(frames::settings());
    peer.expect_server_preface();
    peer.wait_for_settings_ack();
    peer.send_get(1, "/");
    assert_eq!(peer.expect_response(1), (200, HELLO.to_vec()));
}

#[test]
fn sec3_4_invalid_preface_is_connection_error() {
    let (_server, addr) = start_server();
    let mut peer = Peer::connect(addr);
    // h2spec 3.5/2: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r" with a wrong octet.
    peer.send_raw(b"INVALID CONNECTION PREFACE\r\n\r\n");
    // "Clients and servers MUST treat an invalid connection preface as a
    // connection error (Section 5.4.1) of type PROTOCOL_ERROR."
    peer.expect_goaway(Reason::PROTOCOL_ERROR);
}

#[test]
fn sec3_4_preface_with_one_wrong_octet_is_connection_error() {
    let (_server, addr) = start_server();
    let mut peer = Peer::connect(addr);
    let mut preface = PREFACE.to_vec();
    preface[20] = b'X';
    peer.send_raw(&preface);
    peer.send(frames::settings());
    peer.expect_goaway(Reason::PROTOCOL_ERROR);
}

#[test]
fn sec3_4_http1_request_is_connection_error() {
    let (_server, addr) = start_server();
    let mut peer = Peer::connect(addr);
    peer.send_raw(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    peer.expect_goaway(Reason::PROTOCOL_ERROR);
}

#[test]
fn sec3_4_first_frame_not_settings_is_connection_error() {
    let (_server, addr) = start_server();
    let mut peer = Peer::connect(addr);
    peer.send_raw(PREFACE);
    // "The client connection preface ... MUST be followed by a SETTINGS
    // frame"; a PING instead is an invalid preface.
    peer.send(frames::ping(*b"notsettg"));
    peer.expect_goaway(Reason::PROTOCOL_ERROR);
}

#[test]
fn sec3_4_headers_before_settings_is_connection_error() {
    let (_server, addr) = start_server();
    let mut peer = Peer::connect(addr);
    peer.send_raw(PREFACE);
    peer.send(frames::headers(1).request("GET", "/").eos());
    let goaway = peer.expect_goaway(Reason::PROTOCOL_ERROR);
    // The request was never processed.
    assert_eq!(goaway.last_stream_id.value(), 0);
}

#[test]
fn sec3_4_preface_settings_and_request_in_one_burst_are_accepted() {
    let (_server, addr) = start_server();
    let mut peer = Peer::connect(addr);
    // Preface, SETTINGS with parameters and a request, before any reply:
    // "clients [may] send additional frames ... without waiting to
    // receive the server connection preface."
    peer.send_raw(PREFACE);
    peer.send(
        frames::settings()
            .initial_window_size(1 << 20)
            .max_frame_size(1 << 15),
    );
    peer.send_get(1, "/");
    peer.expect_server_preface();
    peer.wait_for_settings_ack();
    assert_eq!(peer.expect_response(1), (200, HELLO.to_vec()));
}
