//! The runtime over Unix-domain sockets: a server built directly on
//! `Runtime::listen_unix` (and `listen_unix_abstract`) with a small echo
//! session, a client made with `Runtime::connect_unix` (and
//! `connect_unix_abstract`) forwarding its events to the test; requests
//! and responses over a path socket and an abstract one, a body larger
//! than the flow-control windows both ways, peer addresses, connect
//! errors (missing file, stale socket, a full backlog), the peer's EOF
//! arriving with its last bytes, and TCP and Unix listeners side by side
//! on one runtime.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender};
use framer::hpack::HeaderField;
use mio_grpc::conn::{Command, ConnConfig, ConnEvent, Connection, StreamKey};
use mio_grpc::runtime::{
    Acceptor, ConnHandle, ListenerConfig, PeerAddr, Runtime, RuntimeConfig, Session,
};

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

/// Answers every request with `:status 200` and its body echoed, or
/// `hello` when the request has none.
struct Echo {
    bodies: HashMap<StreamKey, Vec<u8>>,
}

impl Echo {
    fn respond(conn: &mut Connection, key: StreamKey, body: Vec<u8>) {
        let body = if body.is_empty() {
            Bytes::from_static(b"hello")
        } else {
            Bytes::from(body)
        };
        let _ = conn.send(Command::Headers {
            key,
            fields: vec![HeaderField::new(":status", "200")],
            end_stream: false,
        });
        let _ = conn.send(Command::Data {
            key,
            data: body,
            end_stream: true,
        });
    }
}

impl Session for Echo {
    fn on_event(&mut self, conn: &mut Connection, event: ConnEvent) {
        match event {
            ConnEvent::Request { id, end_stream, .. } => {
                let key = StreamKey::from(id);
                if end_stream {
                    Echo::respond(conn, key, Vec::new());
                } else {
                    self.bodies.insert(key, Vec::new());
                }
            }
            ConnEvent::Data {
                key,
                data,
                end_stream,
            } => {
                conn.release_capacity(key, data.len());
                if let Some(body) = self.bodies.get_mut(&key) {
                    body.extend_from_slice(&data);
                }
                if end_stream {
                    let body = self.bodies.remove(&key).unwrap_or_default();
                    Echo::respond(conn, key, body);
                }
            }
            ConnEvent::Reset { key, .. } | ConnEvent::Closed { key } => {
                self.bodies.remove(&key);
            }
            _ => {}
        }
    }
}

/// Makes `Echo` sessions and reports each accepted connection's peer.
struct EchoAcceptor(Sender<PeerAddr>);

impl Acceptor for EchoAcceptor {
    fn conn_config(&self) -> ConnConfig {
        ConnConfig::default()
    }

    fn accept(&self, handle: ConnHandle) -> Box<dyn Session> {
        let _ = self.0.send(handle.peer());
        Box::new(Echo {
            bodies: HashMap::new(),
        })
    }
}

fn runtime(event_loops: usize) -> Runtime {
    Runtime::new(RuntimeConfig {
        event_loops,
        ..RuntimeConfig::default()
    })
    .unwrap()
}

fn echo_acceptor() -> (Arc<dyn Acceptor>, Receiver<PeerAddr>) {
    let (tx, rx) = crossbeam_channel::unbounded();
    (Arc::new(EchoAcceptor(tx)), rx)
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "mio-grpc-unix-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An abstract name no other test (or process) uses.
#[cfg(target_os = "linux")]
fn abstract_name(tag: &str) -> Vec<u8> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("mio-grpc-test-{tag}-{}-{nanos}", std::process::id()).into_bytes()
}

fn request(path: &str) -> Vec<HeaderField> {
    vec![
        HeaderField::new(":method", "POST"),
        HeaderField::new(":scheme", "http"),
        HeaderField::new(":path", path.to_string()),
        HeaderField::new(":authority", "localhost"),
    ]
}

/// Sends a request with `body` (none if empty) on a new stream.
fn send(handle: &ConnHandle, body: &Bytes) -> StreamKey {
    let key = handle.new_stream_key();
    let mut items = vec![Command::Open {
        key,
        fields: request("/echo"),
        end_stream: body.is_empty(),
        quota: None,
    }];
    if !body.is_empty() {
        items.push(Command::Data {
            key,
            data: body.clone(),
            end_stream: true,
        });
    }
    handle.send(items).unwrap();
    key
}

/// Waits for the response to `key`: status, body, until `Closed`.
fn response(events: &Receiver<ConnEvent>, key: StreamKey) -> (u16, Vec<u8>) {
    let mut status = 0;
    let mut body = Vec::new();
    loop {
        match events
            .recv_timeout(Duration::from_secs(10))
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

fn connect(runtime: &Runtime, path: &Path) -> (ConnHandle, Receiver<ConnEvent>) {
    let (tx, rx) = crossbeam_channel::unbounded();
    let handle = runtime
        .connect_unix(
            path,
            Duration::from_secs(5),
            ConnConfig::default(),
            move |_| Box::new(Forward(tx)),
        )
        .unwrap();
    (handle, rx)
}

#[test]
fn requests_get_responses_over_a_path_socket() {
    let dir = TempDir::new();
    let path = dir.join("echo.sock");
    let server = runtime(2);
    let (acceptor, peers) = echo_acceptor();
    let listener = server.listen_unix(&path, acceptor).unwrap();
    assert_eq!(listener.unix_path(), Some(path.as_path()));
    assert!(listener.local_addr().ip().is_unspecified());
    assert_eq!(listener.local_addr().port(), 0);

    let client = runtime(1);
    let (handle, rx) = connect(&client, &path);
    assert_eq!(handle.peer(), PeerAddr::Unix(Some(path.clone())));
    assert_eq!(handle.peer().unix_path(), Some(path.as_path()));
    assert!(handle.peer_addr().ip().is_unspecified());
    assert_eq!(
        handle.peer().to_string(),
        format!("unix:{}", path.display())
    );

    for i in 0..20 {
        let key = send(&handle, &Bytes::new());
        assert_eq!(response(&rx, key), (200, b"hello".to_vec()), "request {i}");
        let body = Bytes::from(format!("message {i}"));
        let key = send(&handle, &body);
        assert_eq!(response(&rx, key), (200, body.to_vec()), "request {i}");
    }
    // The client's socket is unnamed: the server sees no path.
    let seen = peers.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(seen, PeerAddr::Unix(None));
    assert!(seen.is_unix());
    assert_eq!(seen.to_string(), "unix:");

    let stats = handle.stats();
    assert_eq!(stats.streams_opened, 40);
    assert!(stats.write_syscalls > 0 && stats.read_syscalls > 0);

    // Closing the listener leaves the socket file: removing it is ours.
    listener.close();
    assert!(path.exists());
    client.shutdown();
    server.shutdown();
}

#[cfg(target_os = "linux")]
#[test]
fn requests_get_responses_over_an_abstract_socket() {
    let name = abstract_name("echo");
    let server = runtime(2);
    let (acceptor, peers) = echo_acceptor();
    let listener = server.listen_unix_abstract(&name, acceptor).unwrap();
    assert_eq!(listener.unix_path(), None);
    assert!(listener.local_addr().ip().is_unspecified());

    let client = runtime(1);
    let (tx, rx) = crossbeam_channel::unbounded();
    let handle = client
        .connect_unix_abstract(
            &name,
            Duration::from_secs(5),
            ConnConfig::default(),
            move |_| Box::new(Forward(tx)),
        )
        .unwrap();
    assert_eq!(handle.peer(), PeerAddr::Unix(None));
    for i in 0..10 {
        let body = Bytes::from(format!("abstract {i}"));
        let key = send(&handle, &body);
        assert_eq!(response(&rx, key), (200, body.to_vec()));
    }
    assert_eq!(
        peers.recv_timeout(Duration::from_secs(5)).unwrap(),
        PeerAddr::Unix(None)
    );

    // A second listener on the same name is refused while the first lives.
    let (again, _) = echo_acceptor();
    assert_eq!(
        server
            .listen_unix_abstract(&name, again)
            .unwrap_err()
            .kind(),
        std::io::ErrorKind::AddrInUse
    );
    client.shutdown();
    server.shutdown();
}

#[cfg(target_os = "linux")]
#[test]
fn connecting_to_an_abstract_name_nobody_listens_on_is_refused() {
    let client = runtime(1);
    let result = client.connect_unix_abstract(
        &abstract_name("nobody"),
        Duration::from_secs(5),
        ConnConfig::default(),
        |_| Box::new(Forward(crossbeam_channel::unbounded().0)),
    );
    assert_eq!(
        result.unwrap_err().kind(),
        std::io::ErrorKind::ConnectionRefused
    );
    // Longer than sun_path can hold.
    let result = client.connect_unix_abstract(
        &[b'x'; 200],
        Duration::from_secs(5),
        ConnConfig::default(),
        |_| Box::new(Forward(crossbeam_channel::unbounded().0)),
    );
    assert_eq!(result.unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
    client.shutdown();
}

#[test]
fn a_large_body_crosses_the_flow_control_windows_both_ways() {
    let dir = TempDir::new();
    let path = dir.join("big.sock");
    let server = runtime(1);
    let (acceptor, _peers) = echo_acceptor();
    let _listener = server.listen_unix(&path, acceptor).unwrap();
    let client = runtime(1);
    let (handle, rx) = connect(&client, &path);
    let body: Bytes = (0..1_048_576u32)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<u8>>()
        .into();
    for _ in 0..2 {
        let key = send(&handle, &body);
        let (status, echoed) = response(&rx, key);
        assert_eq!(status, 200);
        assert!(echoed == body, "echoed {} bytes", echoed.len());
    }
    let stats = handle.stats();
    assert!(
        stats.window_stalls > 0,
        "1 MB over 64 KiB windows must stall: {stats:?}"
    );
    assert!(stats.bytes_in_by_type.data >= 2 * body.len() as u64);
    assert!(stats.bytes_out_by_type.data >= 2 * body.len() as u64);
    client.shutdown();
    server.shutdown();
}

#[test]
fn connecting_to_a_missing_path_is_an_error_not_a_hang() {
    let dir = TempDir::new();
    let client = runtime(1);
    let started = Instant::now();
    let result = client.connect_unix(
        &dir.join("missing.sock"),
        Duration::from_secs(5),
        ConnConfig::default(),
        |_| Box::new(Forward(crossbeam_channel::unbounded().0)),
    );
    assert_eq!(result.unwrap_err().kind(), std::io::ErrorKind::NotFound);
    assert!(started.elapsed() < Duration::from_secs(2));
    client.shutdown();
}

#[test]
fn a_stale_socket_file_refuses_connections_and_blocks_listening() {
    let dir = TempDir::new();
    let path = dir.join("stale.sock");
    // A listener that went away without removing its file.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let client = runtime(1);
    let result = client.connect_unix(&path, Duration::from_secs(5), ConnConfig::default(), |_| {
        Box::new(Forward(crossbeam_channel::unbounded().0))
    });
    assert_eq!(
        result.unwrap_err().kind(),
        std::io::ErrorKind::ConnectionRefused
    );
    // The runtime never deletes files: listening there fails until the
    // caller removes the stale one.
    let server = runtime(1);
    let (first, _) = echo_acceptor();
    assert_eq!(
        server.listen_unix(&path, first).unwrap_err().kind(),
        std::io::ErrorKind::AddrInUse
    );
    std::fs::remove_file(&path).unwrap();
    let (second, _) = echo_acceptor();
    let _listener = server.listen_unix(&path, second).unwrap();
    let (handle, rx) = connect(&client, &path);
    let key = send(&handle, &Bytes::new());
    assert_eq!(response(&rx, key), (200, b"hello".to_vec()));
    client.shutdown();
    server.shutdown();
}

#[test]
fn a_connect_while_the_backlog_is_full_times_out() {
    let dir = TempDir::new();
    let path = dir.join("full.sock");
    // A listener with backlog 0 that never accepts: one connection queues,
    // the next waits for room.
    let listener =
        socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None).unwrap();
    listener
        .bind(&socket2::SockAddr::unix(&path).unwrap())
        .unwrap();
    listener.listen(0).unwrap();
    let client = runtime(1);
    let timeout = Duration::from_millis(200);
    let mut timed_out = None;
    for _ in 0..8 {
        let started = Instant::now();
        match client.connect_unix(&path, timeout, ConnConfig::default(), |_| {
            Box::new(Forward(crossbeam_channel::unbounded().0))
        }) {
            Ok(_) => continue,
            Err(err) => {
                timed_out = Some((err, started.elapsed()));
                break;
            }
        }
    }
    let (err, elapsed) = timed_out.expect("the backlog fills");
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
    assert!(
        elapsed >= Duration::from_millis(150) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
    client.shutdown();
}

#[test]
fn the_client_hears_connection_closed_when_the_server_goes_away() {
    let dir = TempDir::new();
    let path = dir.join("gone.sock");
    let server = runtime(1);
    let (acceptor, _peers) = echo_acceptor();
    let _listener = server.listen_unix(&path, acceptor).unwrap();
    let client = runtime(1);
    let (handle, rx) = connect(&client, &path);
    let key = send(&handle, &Bytes::new());
    assert_eq!(response(&rx, key).0, 200);
    server.shutdown();
    wait_closed(&rx, &handle);
    client.shutdown();
}

/// Waits for `ConnectionClosed`, then for the handle to say closed.
fn wait_closed(rx: &Receiver<ConnEvent>, handle: &ConnHandle) {
    loop {
        match rx
            .recv_timeout(Duration::from_secs(5))
            .expect("ConnectionClosed")
        {
            ConnEvent::ConnectionClosed { .. } => break,
            _ => continue,
        }
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while !handle.is_closed() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(handle.is_closed());
}

/// Reads a client's connection preface and frames up to its SETTINGS ACK.
fn read_until_settings_ack(peer: &mut std::os::unix::net::UnixStream) {
    let mut preface = [0u8; 24];
    peer.read_exact(&mut preface).unwrap();
    assert_eq!(&preface, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    loop {
        let mut head = [0u8; 9];
        peer.read_exact(&mut head).unwrap();
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let mut payload = vec![0u8; len];
        peer.read_exact(&mut payload).unwrap();
        if head[3] == 4 && head[4] & 1 == 1 {
            return;
        }
    }
}

/// The last bytes and the peer's EOF can come in one edge-triggered event:
/// the short read of the bytes must not end the read before the EOF.
#[test]
fn data_and_eof_arriving_together_still_close_the_connection() {
    let dir = TempDir::new();
    let path = dir.join("eof.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let client = runtime(1);
    for _ in 0..50 {
        let (tx, rx) = crossbeam_channel::unbounded();
        let handle = client
            .connect_unix(
                &path,
                Duration::from_secs(5),
                ConnConfig::default(),
                move |_| Box::new(Forward(tx)),
            )
            .unwrap();
        let (mut peer, _) = listener.accept().unwrap();
        // Our SETTINGS; the client's preface, SETTINGS and ACK of ours.
        peer.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).unwrap();
        read_until_settings_ack(&mut peer);
        // Now the client is idle: bytes that need no answer (the ACK of
        // its SETTINGS), then EOF at once.
        peer.write_all(&[0, 0, 0, 4, 1, 0, 0, 0, 0]).unwrap();
        drop(peer);
        wait_closed(&rx, &handle);
    }
    client.shutdown();
}

#[test]
fn one_runtime_serves_tcp_and_unix_listeners_side_by_side() {
    let dir = TempDir::new();
    let path = dir.join("both.sock");
    let server = runtime(2);
    let (acceptor, peers) = echo_acceptor();
    let tcp = server
        .listen(
            "127.0.0.1:0".parse().unwrap(),
            ListenerConfig::default(),
            acceptor.clone(),
        )
        .unwrap();
    assert_eq!(tcp.unix_path(), None);
    let unix = server.listen_unix(&path, acceptor).unwrap();

    let client = runtime(2);
    let (tx, tcp_rx) = crossbeam_channel::unbounded();
    let tcp_handle = client
        .connect(
            tcp.local_addr(),
            Duration::from_secs(5),
            ConnConfig::default(),
            move |_| Box::new(Forward(tx)),
        )
        .unwrap();
    assert_eq!(tcp_handle.peer(), PeerAddr::Tcp(tcp.local_addr()));
    assert_eq!(tcp_handle.peer_addr(), tcp.local_addr());
    assert_eq!(tcp_handle.peer().unix_path(), None);
    assert!(!tcp_handle.peer().is_unix());
    assert_eq!(
        tcp_handle.peer().to_string(),
        format!("ipv4:{}", tcp.local_addr())
    );
    let (unix_handle, unix_rx) = connect(&client, &path);

    for i in 0..10 {
        let body = Bytes::from(format!("both {i}"));
        let a = send(&tcp_handle, &body);
        let b = send(&unix_handle, &body);
        assert_eq!(response(&tcp_rx, a), (200, body.to_vec()));
        assert_eq!(response(&unix_rx, b), (200, body.to_vec()));
    }
    let mut seen = [
        peers.recv_timeout(Duration::from_secs(5)).unwrap(),
        peers.recv_timeout(Duration::from_secs(5)).unwrap(),
    ];
    seen.sort_by_key(PeerAddr::is_unix);
    assert!(matches!(seen[0], PeerAddr::Tcp(addr) if addr.ip().is_loopback()));
    assert_eq!(seen[1], PeerAddr::Unix(None));
    tcp.close();
    unix.close();
    client.shutdown();
    server.shutdown();
}
