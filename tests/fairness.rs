//! Fairness between the connections of one event loop (issue 11, item 1):
//! a connection that keeps its loop busy must not freeze its neighbours.
//!
//! The server has one event loop. A well-behaved gRPC channel connects
//! first; then an attacker connection writes a continuous stream of legal
//! frames that cost the server reading work, as fast as the server takes
//! them (connection-level WINDOW_UPDATEs with increment 1: thirteen octets
//! each, legal, and not "wasted" — each grows the server's send window).
//! Once the attacker has written a good deal more than its send buffer
//! holds, the neighbour makes unary calls. They must complete while the attack is
//! still running: the attacker stops only when the neighbour says it is
//! done (or at its own bounds, which fails the test), and then checks that
//! its connection is still open and served (a PING answered).
//!
//! Two more tests check the mechanism with budgets far below any normal
//! traffic, where every wake-up runs out: nothing is lost or stalled when
//! the loop comes back to a connection without a new event (large bodies
//! both ways and a burst of calls; bytes that arrived with the peer's
//! hang-up, after which no edge ever comes).
//!
//! Ordering, not timing: nothing here sleeps to order events. Every wait
//! has a deadline and says what it waited for when it runs out.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use crossbeam_channel::{Receiver, Sender};
use framer::hpack::HeaderField;
use framer::{
    Data, Encoder, Frame, HeaderBlock, Headers, Ping, Settings, StreamId, WindowUpdate, PREFACE,
};
use mio_grpc::client::{CallOptions, Channel, ChannelOptions};
use mio_grpc::conn::{CloseReason, Command, ConnConfig, ConnEvent, Connection, StreamKey};
use mio_grpc::http;
use mio_grpc::runtime::{Acceptor, ConnHandle, ListenerConfig, Runtime, RuntimeConfig, Session};
use mio_grpc::server::{Context, MethodDesc, Server, ServerHandle, ServiceDesc};

const MIB: u64 = 1 << 20;
/// The neighbour calls only once the attacker has written this much (the
/// server's loop is busy reading it by then: the attacker's send buffer
/// holds 8 MiB, and the server reads it as fast as it can).
const UNDER_WAY: u64 = 32 * MIB;
/// The attack's bounds: reaching either before the neighbour is done
/// fails the test.
const ATTACK_MAX_BYTES: u64 = 2048 * MIB;
const ATTACK_MAX_TIME: Duration = Duration::from_secs(20);
/// The attacker's SO_SNDBUF (Linux doubles it, within `wmem_max`).
const ATTACK_SEND_BUFFER: usize = 4 << 20;
/// How long the attacker's write may block before it looks at its flags.
const WRITE_SLICE: Duration = Duration::from_millis(50);
/// The neighbour's calls, each with this deadline.
const CALLS: usize = 5;
const CALL_DEADLINE: Duration = Duration::from_secs(3);
const ECHO: &str = "/fair.S/Echo";

fn server() -> ServerHandle {
    let service = ServiceDesc::new("fair.S").method(MethodDesc::raw_unary(
        "Echo",
        |_ctx: &Context, req: Bytes| Ok(req),
    ));
    let mut server = Server::builder().event_loops(1).build();
    server.add_service(service).unwrap();
    server.start("127.0.0.1:0".parse().unwrap()).unwrap()
}

/// Why the attacker stopped writing.
#[derive(Debug, PartialEq)]
enum Stop {
    /// The neighbour said it was done: the attack ran throughout.
    NeighbourDone,
    /// [`ATTACK_MAX_BYTES`] written.
    ByteLimit,
    /// [`ATTACK_MAX_TIME`] passed.
    TimeLimit,
    /// The server closed or reset the connection.
    WriteFailed(String),
}

/// What the attacker saw.
#[derive(Debug)]
struct Report {
    stop: Stop,
    /// Bytes the server took (the preface excluded).
    written: u64,
    /// After stopping: the server answered a PING on the attack
    /// connection (Ok), or what happened instead.
    served: Result<(), String>,
}

/// An attacker connection writing from its own thread.
struct Attacker {
    thread: JoinHandle<Report>,
    /// One message once [`UNDER_WAY`] bytes are written.
    under_way: Receiver<()>,
    neighbour_done: Arc<AtomicBool>,
}

fn encode(frames: &[Frame]) -> BytesMut {
    let mut encoder = Encoder::new();
    let mut buf = BytesMut::new();
    for frame in frames {
        encoder.encode(frame, &mut buf);
    }
    buf
}

/// Reads frames from `socket` until `want` matches one, for at most
/// `limit`. Frames are decoded without connection state (the server sends
/// the attacker no field blocks).
fn read_until(
    socket: &mut TcpStream,
    buf: &mut BytesMut,
    limit: Duration,
    mut want: impl FnMut(&Frame) -> bool,
) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        while let Some(frame) = framer::decode_frame(buf, framer::MAX_MAX_FRAME_SIZE)
            .map_err(|e| format!("undecodable frame from the server: {e:?}"))?
        {
            if let Frame::GoAway(goaway) = &frame {
                return Err(format!("the server sent GOAWAY {}", goaway.reason));
            }
            if want(&frame) {
                return Ok(());
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("nothing expected from the server within {limit:?}"));
        }
        socket.set_read_timeout(Some(left)).unwrap();
        match socket.read(&mut chunk) {
            Ok(0) => return Err("the server closed the connection".into()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("reading from the server: {e}")),
        }
    }
}

impl Attacker {
    /// Connects, completes the HTTP/2 handshake, and starts writing.
    fn start(addr: SocketAddr) -> Attacker {
        let mut socket = TcpStream::connect(addr).unwrap();
        socket.set_nodelay(true).unwrap();
        // A large send buffer keeps the server's receive queue full even
        // while this thread waits for a CPU.
        socket2::SockRef::from(&socket)
            .set_send_buffer_size(ATTACK_SEND_BUFFER)
            .unwrap();
        let mut preface = BytesMut::from(&PREFACE[..]);
        preface.extend_from_slice(&encode(&[Frame::Settings(Settings::new())]));
        socket.write_all(&preface).unwrap();
        let mut inbound = BytesMut::new();
        let limit = Duration::from_secs(5);
        read_until(
            &mut socket,
            &mut inbound,
            limit,
            |f| matches!(f, Frame::Settings(s) if !s.ack),
        )
        .expect("the server's SETTINGS");
        socket
            .write_all(&encode(&[Frame::Settings(Settings::ack())]))
            .unwrap();
        read_until(
            &mut socket,
            &mut inbound,
            limit,
            |f| matches!(f, Frame::Settings(s) if s.ack),
        )
        .expect("the server's SETTINGS ack");

        let (tx, under_way) = crossbeam_channel::bounded(1);
        let neighbour_done = Arc::new(AtomicBool::new(false));
        let done = neighbour_done.clone();
        let thread = std::thread::Builder::new()
            .name("attacker".into())
            .spawn(move || {
                let (stop, written) = flood(&mut socket, &done, || {
                    let _ = tx.try_send(());
                });
                let served = match stop {
                    Stop::NeighbourDone => ping(&mut socket, &mut inbound),
                    _ => Err(format!("not checked: the attack stopped early ({stop:?})")),
                };
                Report {
                    stop,
                    written,
                    served,
                }
            })
            .unwrap();
        Attacker {
            thread,
            under_way,
            neighbour_done,
        }
    }
}

/// Writes connection-level WINDOW_UPDATEs (increment 1) in 1 MiB writes
/// until the neighbour is done or a bound is reached; `under_way` is
/// called once [`UNDER_WAY`] bytes are out. On `NeighbourDone` the last
/// frame is whole.
fn flood(socket: &mut TcpStream, done: &AtomicBool, under_way: impl Fn()) -> (Stop, u64) {
    let update = Frame::WindowUpdate(WindowUpdate::new(StreamId::new(0), 1));
    let one = encode(&[update]);
    let block: Vec<u8> = one
        .iter()
        .copied()
        .cycle()
        .take(one.len() * 80_660)
        .collect();
    socket.set_write_timeout(Some(WRITE_SLICE)).unwrap();
    let started = Instant::now();
    let mut written = 0u64;
    // Where in `block` the next write starts: whole frames go out in
    // order across partial writes, since the block holds whole frames.
    let mut at = 0usize;
    loop {
        if done.load(Ordering::Acquire) {
            // Finish the frame a partial write may have left half out.
            let rest = (one.len() - at % one.len()) % one.len();
            socket
                .set_write_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            if let Err(e) = socket.write_all(&block[at..at + rest]) {
                return (Stop::WriteFailed(e.to_string()), written);
            }
            return (Stop::NeighbourDone, written);
        }
        if written >= ATTACK_MAX_BYTES {
            return (Stop::ByteLimit, written);
        }
        if started.elapsed() >= ATTACK_MAX_TIME {
            return (Stop::TimeLimit, written);
        }
        match socket.write(&block[at..]) {
            Ok(0) => return (Stop::WriteFailed("write returned 0".into()), written),
            Ok(n) => {
                let before = written;
                written += n as u64;
                at = (at + n) % block.len();
                if before < UNDER_WAY && written >= UNDER_WAY {
                    under_way();
                }
            }
            // The server has not taken more within WRITE_SLICE.
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return (Stop::WriteFailed(e.to_string()), written),
        }
    }
}

/// Sends a PING and waits for its ack (the server first reads the rest of
/// the flood still in the sockets).
fn ping(socket: &mut TcpStream, inbound: &mut BytesMut) -> Result<(), String> {
    let payload = *b"fairness";
    socket
        .write_all(&encode(&[Frame::Ping(Ping::new(payload))]))
        .map_err(|e| format!("writing a PING: {e}"))?;
    read_until(
        socket,
        inbound,
        Duration::from_secs(15),
        |f| matches!(f, Frame::Ping(p) if p.ack && p.payload == payload),
    )
}

#[test]
fn a_flooding_connection_does_not_freeze_its_neighbour_on_the_same_loop() {
    let server = server();
    let channel = Channel::new(
        &format!("127.0.0.1:{}", server.local_addr().port()),
        ChannelOptions::default(),
    )
    .unwrap();
    let options = || CallOptions::default().timeout(CALL_DEADLINE);
    // The neighbour is connected and served before the attack starts
    // (the listener runs on the same loop).
    let reply = channel.unary_raw(ECHO, Bytes::from_static(b"before"), options());
    assert_eq!(reply.unwrap(), Bytes::from_static(b"before"));

    let attacker = Attacker::start(server.local_addr());
    let under_way = attacker.under_way.recv_timeout(ATTACK_MAX_TIME);
    if under_way.is_err() {
        attacker.neighbour_done.store(true, Ordering::Release);
        let report = attacker.thread.join().unwrap();
        panic!("the attack never got {UNDER_WAY} bytes to the server: {report:?}");
    }

    // The neighbour's calls, while the attacker keeps writing.
    let started = Instant::now();
    let mut failure = None;
    for i in 0..CALLS {
        let request = Bytes::from(format!("call {i}"));
        match channel.unary_raw(ECHO, request.clone(), options()) {
            Ok(reply) => assert_eq!(reply, request),
            Err(status) => {
                failure = Some(format!(
                    "call {i} failed after {:?}: {status:?}",
                    started.elapsed()
                ));
                break;
            }
        }
    }
    let took = started.elapsed();
    attacker.neighbour_done.store(true, Ordering::Release);
    let report = attacker.thread.join().unwrap();
    eprintln!(
        "neighbour: {CALLS} calls in {took:?}; attacker: {:?} after {} MiB; served: {:?}",
        report.stop,
        report.written / MIB,
        report.served
    );

    if let Some(failure) = failure {
        panic!(
            "the neighbour's {failure}, with a {CALL_DEADLINE:?} deadline, while the attacker \
             flooded the same event loop ({} MiB written, then {:?}): the loop never got to it",
            report.written / MIB,
            report.stop
        );
    }
    assert_eq!(
        report.stop,
        Stop::NeighbourDone,
        "the attack ended before the neighbour's calls completed ({} MiB written): the loop \
         served the neighbour only once the flood stopped",
        report.written / MIB
    );
    assert!(report.written > UNDER_WAY, "{report:?}");
    assert_eq!(
        report.served,
        Ok(()),
        "the attacker's connection must stay open and served: its frames are legal"
    );
}

// ---------------------------------------------------------------------------
// Budgets far below normal traffic: every wake-up runs out
// ---------------------------------------------------------------------------

/// Budgets that run out on every wake-up of any real exchange.
fn tiny_budgets() -> RuntimeConfig {
    RuntimeConfig {
        event_loops: 1,
        read_budget: 100,
        event_budget: 1,
        write_budget: 1,
        write_batch: 512,
        ..RuntimeConfig::default()
    }
}

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

fn post(path: &str) -> Vec<HeaderField> {
    vec![
        HeaderField::new(":method", "POST"),
        HeaderField::new(":scheme", "http"),
        HeaderField::new(":path", path.to_string()),
        HeaderField::new(":authority", "localhost"),
    ]
}

/// Collects the responses to `keys` (status and body each), in any order.
fn responses(events: &Receiver<ConnEvent>, keys: &[StreamKey]) -> Vec<(u16, Vec<u8>)> {
    let mut status = vec![0u16; keys.len()];
    let mut bodies = vec![Vec::new(); keys.len()];
    let mut open = keys.len();
    let index = |key: &StreamKey| keys.iter().position(|k| k == key);
    while open > 0 {
        let event = events
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("{open} of {} responses never completed", keys.len()));
        match event {
            ConnEvent::Response { key, head, .. } => {
                if let Some(i) = index(&key) {
                    status[i] = head.status;
                }
            }
            ConnEvent::Data { key, data, .. } => {
                if let Some(i) = index(&key) {
                    bodies[i].extend_from_slice(&data);
                }
            }
            ConnEvent::Closed { key } if index(&key).is_some() => open -= 1,
            ConnEvent::Reset { key, reason, .. } => panic!("{key:?} reset: {reason}"),
            ConnEvent::ConnectionClosed { reason } => panic!("connection closed: {reason:?}"),
            _ => {}
        }
    }
    status.into_iter().zip(bodies).collect()
}

#[test]
fn tiny_budgets_still_move_large_bodies_and_bursts_both_ways() {
    // Both ends run out on every wake-up; a connection not served again
    // without an event would stall one of these exchanges for good.
    let config = http::ServerConfig {
        runtime: tiny_budgets(),
        ..http::ServerConfig::default()
    };
    let server = http::Server::bind(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        config,
        |mut req: http::Request| {
            let body = req.body.read_all().unwrap_or_default();
            http::Response::new(200, body)
        },
    )
    .unwrap();
    let runtime = Runtime::new(tiny_budgets()).unwrap();
    let (tx, rx) = crossbeam_channel::unbounded();
    let handle = runtime
        .connect(
            server.local_addr(),
            Duration::from_secs(5),
            ConnConfig::default(),
            move |_| Box::new(Forward(tx)),
        )
        .unwrap();

    // One body across the flow-control windows both ways, then a burst of
    // 64 small calls put at once.
    let large: Bytes = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let mut bodies = vec![large];
    bodies.extend((0..64).map(|i| Bytes::from(format!("call {i}"))));
    let mut items = Vec::new();
    let mut keys = Vec::new();
    for body in &bodies {
        let key = handle.new_stream_key();
        keys.push(key);
        items.push(Command::Open {
            key,
            fields: post("/echo"),
            end_stream: false,
            quota: None,
        });
        items.push(Command::Data {
            key,
            data: body.clone(),
            end_stream: true,
        });
    }
    handle.send(items).unwrap();
    for (i, (status, echoed)) in responses(&rx, &keys).into_iter().enumerate() {
        assert_eq!(status, 200, "call {i}");
        assert!(echoed == bodies[i], "call {i}: {} bytes back", echoed.len());
    }
    runtime.shutdown();
}

/// Forwards the server side's events to the test.
struct Record(Sender<ConnEvent>);

impl Acceptor for Record {
    fn conn_config(&self) -> ConnConfig {
        ConnConfig::default()
    }

    fn accept(&self, _handle: ConnHandle) -> Box<dyn Session> {
        Box::new(Forward(self.0.clone()))
    }
}

#[test]
fn bytes_that_came_with_the_hang_up_are_all_read_over_many_wake_ups() {
    // The request and the EOF reach the server together; at 100 bytes a
    // wake-up, reading it takes hundreds of wake-ups after the last edge.
    let runtime = Runtime::new(tiny_budgets()).unwrap();
    let (tx, rx) = crossbeam_channel::unbounded();
    let listener = runtime
        .listen(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            ListenerConfig::default(),
            Arc::new(Record(tx)),
        )
        .unwrap();

    const BODY: usize = 60_000; // within the default windows, in 4 DATA frames
    let id = StreamId::new(1);
    let headers = Headers::new(id, HeaderBlock::Fields(post("/upload")));
    let mut frames = vec![Frame::Settings(Settings::new()), Frame::Headers(headers)];
    for i in 0..4 {
        let mut data = Data::new(id, Bytes::from(vec![7u8; BODY / 4]));
        data.end_stream = i == 3;
        frames.push(Frame::Data(data));
    }
    let mut wire = BytesMut::from(&PREFACE[..]);
    wire.extend_from_slice(&encode(&frames));
    let mut socket = TcpStream::connect(listener.local_addr()).unwrap();
    socket.write_all(&wire).unwrap();
    socket.shutdown(std::net::Shutdown::Write).unwrap();

    let mut request = false;
    let mut received = 0usize;
    let mut ended = false;
    loop {
        let event = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| {
                panic!("stalled: request {request}, {received} of {BODY} bytes, ended {ended}")
            });
        match event {
            ConnEvent::Request { .. } => request = true,
            ConnEvent::Data {
                data, end_stream, ..
            } => {
                received += data.len();
                ended |= end_stream;
            }
            ConnEvent::ConnectionClosed { reason } => {
                assert!(
                    matches!(reason, CloseReason::Transport(_)),
                    "closed by the EOF, not {reason:?}"
                );
                break;
            }
            _ => {}
        }
    }
    assert!(request, "the request head was read");
    assert_eq!(received, BODY, "every byte before the EOF was read");
    assert!(ended, "END_STREAM was read");
    runtime.shutdown();
}
