//! The runtime end to end over real sockets: a client connection made with
//! `Runtime::connect` talking to `http::Server`, the direct-write path, the
//! stats API, SO_REUSEPORT listeners, and connect errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender};
use framer::hpack::HeaderField;
use mio_grpc::conn::{Command, ConnConfig, ConnEvent, Connection, StreamKey};
use mio_grpc::http::{Execution, Request, Response, Server, ServerConfig};
use mio_grpc::runtime::{ListenerConfig, Runtime, RuntimeConfig, Session};

/// A client session that forwards every event to the test.
struct Forward(Sender<ConnEvent>);

impl Session for Forward {
    fn on_event(&mut self, conn: &mut Connection, event: ConnEvent) {
        if let ConnEvent::Data { key, data, .. } = &event {
            conn.release_capacity(*key, data.len());
        }
        let _ = self.0.send(event);
    }
}

fn echo_server(config: ServerConfig) -> Server {
    Server::bind(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        config,
        |mut req: Request| {
            let body = req.body.read_all().unwrap_or_default();
            if body.is_empty() {
                Response::new(200, "hello\n")
            } else {
                Response::new(200, body)
            }
        },
    )
    .unwrap()
}

fn request(path: &str) -> Vec<HeaderField> {
    vec![
        HeaderField::new(":method", "POST"),
        HeaderField::new(":scheme", "http"),
        HeaderField::new(":path", path.to_string()),
        HeaderField::new(":authority", "localhost"),
    ]
}

/// Waits for the response to `key`: status, body, until `Closed`.
fn response(events: &Receiver<ConnEvent>, key: StreamKey) -> (u16, Vec<u8>) {
    let mut status = 0;
    let mut body = Vec::new();
    loop {
        match events
            .recv_timeout(Duration::from_secs(5))
            .expect("an event")
        {
            ConnEvent::Response { key: k, head, .. } if k == key => status = head.status,
            ConnEvent::Data { key: k, data, .. } if k == key => body.extend_from_slice(&data),
            ConnEvent::Closed { key: k } if k == key => return (status, body),
            ConnEvent::Reset { key: k, reason, .. } if k == key => panic!("reset: {reason}"),
            ConnEvent::ConnectionClosed { reason } => panic!("connection closed: {reason:?}"),
            _ => {}
        }
    }
}

fn client_runtime() -> Runtime {
    Runtime::new(RuntimeConfig {
        event_loops: 1,
        ..RuntimeConfig::default()
    })
    .unwrap()
}

#[test]
fn a_client_connection_on_the_runtime_gets_responses() {
    let server = echo_server(ServerConfig::default());
    let runtime = client_runtime();
    let (tx, rx) = crossbeam_channel::unbounded();
    let handle = runtime
        .connect(
            server.local_addr(),
            Duration::from_secs(5),
            ConnConfig::default(),
            move |_| Box::new(Forward(tx)),
        )
        .unwrap();
    for i in 0..20 {
        let key = handle.new_stream_key();
        let body = Bytes::from(format!("message {i}"));
        handle
            .send([
                Command::Open {
                    key,
                    fields: request("/echo"),
                    end_stream: false,
                    quota: None,
                },
                Command::Data {
                    key,
                    data: body.clone(),
                    end_stream: true,
                },
            ])
            .unwrap();
        assert_eq!(response(&rx, key), (200, body.to_vec()));
    }
    let stats = handle.stats();
    assert!(
        stats.write_syscalls > 0 && stats.read_syscalls > 0,
        "{stats:?}"
    );
    assert_eq!(stats.frames_out.headers, 20, "20 HEADERS sent");
    assert_eq!(
        stats.frames_in.headers, 20,
        "20 response HEADERS (no trailers)"
    );
    assert_eq!(stats.streams_opened, 20);
    assert!(stats.bytes_out_by_type.data > 0 && stats.bytes_in_by_type.data > 0);
    runtime.shutdown();
}

#[test]
fn a_large_body_crosses_the_flow_control_windows_both_ways() {
    let server = echo_server(ServerConfig::default());
    let runtime = client_runtime();
    let (tx, rx) = crossbeam_channel::unbounded();
    let handle = runtime
        .connect(
            server.local_addr(),
            Duration::from_secs(5),
            ConnConfig::default(),
            move |_| Box::new(Forward(tx)),
        )
        .unwrap();
    let body: Bytes = (0..3_000_000u32)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<u8>>()
        .into();
    let key = handle.new_stream_key();
    handle
        .send([
            Command::Open {
                key,
                fields: request("/echo"),
                end_stream: false,
                quota: None,
            },
            Command::Data {
                key,
                data: body.clone(),
                end_stream: true,
            },
        ])
        .unwrap();
    let (status, echoed) = response(&rx, key);
    assert_eq!(status, 200);
    assert!(echoed == body, "echoed {} bytes", echoed.len());
    assert!(
        handle.stats().window_stalls > 0,
        "3 MB over 64 KiB windows must stall"
    );
    runtime.shutdown();
}

#[test]
fn many_connections_on_a_reuse_port_server_all_get_answers() {
    let config = ServerConfig {
        runtime: RuntimeConfig {
            event_loops: 2,
            ..RuntimeConfig::default()
        },
        listener: ListenerConfig {
            reuse_port: true,
            ..ListenerConfig::default()
        },
        execution: Execution::Inline,
        ..ServerConfig::default()
    };
    let server = echo_server(config);
    let runtime = Runtime::new(RuntimeConfig {
        event_loops: 2,
        ..RuntimeConfig::default()
    })
    .unwrap();
    let mut clients = Vec::new();
    for _ in 0..16 {
        let (tx, rx) = crossbeam_channel::unbounded();
        let handle = runtime
            .connect(
                server.local_addr(),
                Duration::from_secs(5),
                ConnConfig::default(),
                move |_| Box::new(Forward(tx)),
            )
            .unwrap();
        clients.push((handle, rx));
    }
    for (handle, rx) in &clients {
        let key = handle.new_stream_key();
        handle
            .send([Command::Open {
                key,
                fields: request("/"),
                end_stream: true,
                quota: None,
            }])
            .unwrap();
        assert_eq!(response(rx, key), (200, b"hello\n".to_vec()));
    }
    runtime.shutdown();
}

#[test]
fn connecting_to_a_closed_port_is_an_error_not_a_hang() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let runtime = client_runtime();
    let started = std::time::Instant::now();
    let result = runtime.connect(addr, Duration::from_secs(5), ConnConfig::default(), |_| {
        Box::new(Forward(crossbeam_channel::unbounded().0))
    });
    assert_eq!(
        result.unwrap_err().kind(),
        std::io::ErrorKind::ConnectionRefused
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    runtime.shutdown();
}

#[test]
fn when_the_server_goes_away_the_client_hears_connection_closed() {
    let server = echo_server(ServerConfig::default());
    let runtime = client_runtime();
    let (tx, rx) = crossbeam_channel::unbounded();
    let handle = runtime
        .connect(
            server.local_addr(),
            Duration::from_secs(5),
            ConnConfig::default(),
            move |_| Box::new(Forward(tx)),
        )
        .unwrap();
    let key = handle.new_stream_key();
    handle
        .send([Command::Open {
            key,
            fields: request("/"),
            end_stream: true,
            quota: None,
        }])
        .unwrap();
    assert_eq!(response(&rx, key).0, 200);
    server.shutdown();
    loop {
        match rx
            .recv_timeout(Duration::from_secs(5))
            .expect("ConnectionClosed")
        {
            ConnEvent::ConnectionClosed { .. } => break,
            _ => continue,
        }
    }
    // Puts after the close are refused with the item handed back.
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while !handle.is_closed() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(handle.is_closed());
    let key = handle.new_stream_key();
    assert!(handle
        .send([Command::Open {
            key,
            fields: request("/"),
            end_stream: true,
            quota: None
        }])
        .is_err());
    runtime.shutdown();
}
