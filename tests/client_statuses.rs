//! Statuses a person can read: a channel pointed at a server that does
//! not speak HTTP/2 (an HTTP/1 server, or one that answers with an HTML
//! page) fails its call with UNAVAILABLE and a message in plain words
//! naming the server — no Debug text; and `http://host:port` targets work
//! as tonic users type them, while `https://` is refused in words.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener};

use bytes::Bytes;
use common::wait::PATIENCE;
use mio_grpc::client::{CallOptions, Channel, ChannelError, ChannelOptions};
use mio_grpc::grpc::{Code, Status};
use mio_grpc::server::{Context, MethodDesc, Server, ServiceDesc};

/// A server that answers every connection with `answer` and closes it
/// (a call may be retried transparently on a new connection): its port.
fn answering_server(answer: &'static [u8]) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                // Whatever the client sends first (its preface), then the
                // answer.
                let _ = stream.read(&mut buf);
                let _ = stream.write_all(answer);
                let _ = stream.shutdown(Shutdown::Write);
                // Read to the client's close, so closing here resets nothing.
                while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
            });
        }
    });
    port
}

fn call(target: &str) -> Status {
    let channel = Channel::new(target, ChannelOptions::default()).unwrap();
    channel
        .unary_raw(
            "/t.S/Echo",
            Bytes::from_static(b"x"),
            CallOptions::default().timeout(PATIENCE),
        )
        .unwrap_err()
}

fn assert_plain(message: &str) {
    for debug in ["{", "}", "LocalError", "Unknown(", "Some(", "\\\""] {
        assert!(
            !message.contains(debug),
            "Debug text `{debug}` in the status message: {message}"
        );
    }
}

#[test]
fn an_http1_server_is_named_as_one() {
    let port = answering_server(
        b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n\
          Content-Length: 11\r\nConnection: close\r\n\r\nBad Request",
    );
    let status = call(&format!("127.0.0.1:{port}"));
    assert_eq!(status.code(), Code::Unavailable, "{status}");
    let message = status.message();
    assert!(
        message.contains(&format!(
            "the server at 127.0.0.1:{port} does not speak HTTP/2"
        )),
        "{message}"
    );
    assert!(message.contains("HTTP/1"), "{message}");
    assert_plain(message);
}

#[test]
fn a_server_answering_with_an_html_page_is_named_as_not_http2() {
    let port = answering_server(b"<!DOCTYPE html><html><body>hello</body></html>\n");
    let status = call(&format!("http://127.0.0.1:{port}"));
    assert_eq!(status.code(), Code::Unavailable, "{status}");
    let message = status.message();
    assert!(
        message.contains(&format!(
            "the server at 127.0.0.1:{port} does not speak HTTP/2"
        )),
        "{message}"
    );
    assert!(message.contains("<!DO"), "{message}");
    assert_plain(message);
}

#[test]
fn http_targets_reach_a_plaintext_server_and_https_is_refused_in_words() {
    let mut server = Server::builder().event_loops(1).build();
    server
        .add_service(ServiceDesc::new("t.S").method(MethodDesc::raw_unary(
            "Echo",
            |_ctx: &Context, req: Bytes| Ok(req),
        )))
        .unwrap();
    let server = server.start("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = server.local_addr().port();
    for target in [
        format!("http://127.0.0.1:{port}"),
        format!("http://localhost:{port}/"),
    ] {
        let channel = Channel::new(&target, ChannelOptions::default()).unwrap();
        let reply = channel
            .unary_raw(
                "/t.S/Echo",
                Bytes::from_static(b"plain"),
                CallOptions::default().timeout(PATIENCE),
            )
            .unwrap();
        assert_eq!(&reply[..], b"plain", "{target}");
    }
    let refused = Channel::new(
        &format!("https://127.0.0.1:{port}"),
        ChannelOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(refused, ChannelError::Target(_)));
    let text = refused.to_string();
    assert!(text.contains("TLS") && text.contains("http://"), "{text}");
    assert_plain(&text);
}
