//! A gRPC server's call logic driven with no sockets: [`GrpcPair`] wraps a
//! [`Pair`](crate::pair::Pair) (a client and a server `Connection` back to
//! back on a virtual clock) and feeds the server side into a
//! `ServerSession` from `Server::detached`, as the runtime's driver does:
//! at every step the session is polled at the pair's "now" (its notion of
//! time, and the work other threads posted), then handed the server's new
//! events; the session's timers (call deadlines) are fired at their own
//! instant when the clock advances.
//!
//! The client side opens gRPC requests with the client `Connection` and
//! reads each stream's response (headers, length-prefixed messages,
//! trailers, reset) into a [`Call`].
//!
//! Include it next to `pair.rs` (it names `crate::pair`):
//! `#[path = "common/pair.rs"] mod pair;` and
//! `#[path = "common/grpc_pair.rs"] mod grpc_pair;`.
#![allow(dead_code)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use mio_grpc::conn::{ConnConfig, ConnEvent};
use mio_grpc::framer::hpack::{HeaderField, HeaderList};
use mio_grpc::framer::Reason;
use mio_grpc::grpc::{encode_message, MessageDecoder, Status};
use mio_grpc::loopy::{Item, StreamKey};
use mio_grpc::runtime::Session;
use mio_grpc::server::{DetachedServer, Server, ServerSession};

use crate::pair::Pair;

/// Steps `drive` takes before it declares a livelock.
const STEP_LIMIT: usize = 100_000;

/// What the client saw of one call.
pub struct Call {
    /// The response headers (the whole head of a trailers-only response).
    pub headers: Option<HeaderList>,
    /// The response's `:status`.
    pub http_status: Option<u16>,
    /// The response was trailers-only (one HEADERS with END_STREAM).
    pub trailers_only: bool,
    /// Response messages, in order.
    pub messages: Vec<Bytes>,
    /// The trailers (`None` for a trailers-only response: see `headers`).
    pub trailers: Option<HeaderList>,
    /// The stream was reset (by the server, or by us).
    pub reset: Option<Reason>,
    /// DATA bytes received and not released yet (when the client does not
    /// release automatically).
    pub unreleased: usize,
    /// DATA bytes received in all.
    pub data_bytes: usize,
    decoder: MessageDecoder,
}

impl Default for Call {
    fn default() -> Call {
        Call::new()
    }
}

impl Call {
    fn new() -> Call {
        Call {
            headers: None,
            http_status: None,
            trailers_only: false,
            messages: Vec::new(),
            trailers: None,
            reset: None,
            unreleased: 0,
            data_bytes: 0,
            decoder: MessageDecoder::new(usize::MAX),
        }
    }

    /// The call's status, once its trailers (or trailers-only head) came.
    pub fn status(&self) -> Option<Status> {
        if self.trailers_only {
            return self.headers.as_deref().map(Status::from_trailers);
        }
        self.trailers.as_deref().map(Status::from_trailers)
    }

    /// True once the response ended (trailers) or the stream was reset.
    pub fn ended(&self) -> bool {
        self.status().is_some() || self.reset.is_some()
    }
}

/// A client connection, and a server connection whose gRPC session is a
/// detached server's.
pub struct GrpcPair {
    /// The two connections and the clock.
    pub pair: Pair,
    /// The server's call logic for the server connection.
    pub session: ServerSession,
    /// The server (its counts).
    pub server: DetachedServer,
    /// What the client saw of each call, by its key.
    pub calls: HashMap<StreamKey, Call>,
    /// Every event the session was given, in order.
    pub server_events: Vec<ConnEvent>,
}

/// A header field from owned or borrowed strings.
pub fn hf(name: &str, value: &str) -> HeaderField {
    HeaderField::new(name.to_string(), value.to_string())
}

/// One length-prefixed, uncompressed message.
pub fn frame(message: &[u8]) -> Bytes {
    let mut out = BytesMut::new();
    encode_message(message, false, &mut out).expect("a small message");
    out.freeze()
}

impl GrpcPair {
    /// `server` detached, on a connected pair with these configs (the
    /// client releases the DATA it gets automatically; see
    /// [`GrpcPair::manual_release`]).
    pub fn new(mut server: Server, client: ConnConfig, server_conn: ConnConfig) -> GrpcPair {
        let mut pair = Pair::connected(client, server_conn);
        let detached = server.detached().expect("a fresh server");
        let session = detached.session(&pair.server.conn);
        pair.client.auto_release = true;
        // A session's clock starts at the real time it was made and only
        // goes forward from there; bring the virtual clock up to it so
        // that deadlines count from `pair.now`.
        let real = Instant::now();
        if real > pair.now {
            pair.advance(real - pair.now);
        }
        let mut grpc = GrpcPair {
            pair,
            session,
            server: detached,
            calls: HashMap::new(),
            server_events: Vec::new(),
        };
        grpc.drive();
        grpc
    }

    /// `server` on connections with default configs.
    pub fn with_server(server: Server) -> GrpcPair {
        GrpcPair::new(server, ConnConfig::default(), ConnConfig::default())
    }

    /// From now on the client releases received DATA only through
    /// [`GrpcPair::release`].
    pub fn manual_release(&mut self) {
        self.pair.client.auto_release = false;
    }

    /// The virtual time.
    pub fn now(&self) -> Instant {
        self.pair.now
    }

    /// One service of the server connection, in the runtime driver's
    /// order: the session is polled (its due deadlines, the work pool
    /// threads posted), then bytes move both ways once (firing due
    /// connection timers), and every event the server connection reported
    /// meanwhile is handed to the session before the next poll (as the
    /// driver delivers what one read produced before its next wake-up).
    /// What the client got is collected. True if anything happened.
    pub fn step(&mut self) -> bool {
        let now = self.pair.now;
        self.session.poll(&mut self.pair.server.conn, now);
        let mut fed = self.feed();
        let moved = self.pair.step();
        fed |= self.feed();
        let got = self.collect_client();
        fed || moved || got
    }

    /// A step whose reads are delivered only after the next poll: the
    /// runtime driver's order when a wake-up's event budget ran out and
    /// the rest of a read is held for the next wake-up (which polls the
    /// session first).
    pub fn step_delivering_late(&mut self) -> bool {
        let now = self.pair.now;
        let moved = self.pair.step();
        self.session.poll(&mut self.pair.server.conn, now);
        let fed = self.feed();
        let got = self.collect_client();
        moved || fed || got
    }

    /// Hands the server connection's new events to the session.
    fn feed(&mut self) -> bool {
        let mut any = false;
        // Handling an event may make the connection report more (a reset
        // it queues): those go in too, in order.
        loop {
            while let Some(event) = self.pair.server.conn.poll_event() {
                self.pair.server.events.push(event);
            }
            let events = self.pair.server.take_events();
            if events.is_empty() {
                return any;
            }
            any = true;
            for event in events {
                self.server_events.push(event.clone());
                self.session.on_event(&mut self.pair.server.conn, event);
            }
        }
    }

    /// Steps until nothing moves.
    pub fn drive(&mut self) {
        for _ in 0..STEP_LIMIT {
            if !self.step() {
                return;
            }
        }
        panic!("the gRPC pair never went quiet");
    }

    /// Drives until `condition` holds (work done on pool threads arrives
    /// through the session's inbox and the control buffer); false if it
    /// did not within [`PATIENCE`](crate::wait::PATIENCE)-like `timeout`.
    pub fn drive_until(
        &mut self,
        timeout: Duration,
        mut condition: impl FnMut(&mut GrpcPair) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        let mut polls = 0u32;
        loop {
            self.drive();
            if condition(self) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            polls += 1;
            if polls < 100 {
                std::thread::yield_now();
            } else {
                // The polling step, not a guess at how long anything takes.
                std::thread::sleep(Duration::from_micros(u64::from(polls.min(1000))));
            }
        }
    }

    /// Moves the virtual clock by `d`, firing the connections' and the
    /// session's timers each at its own instant, driving after each.
    pub fn advance(&mut self, d: Duration) {
        let target = self.pair.now + d;
        self.drive();
        for _ in 0..STEP_LIMIT {
            let next = [
                self.pair.client.conn.next_timeout(),
                self.pair.server.conn.next_timeout(),
                self.session.next_timeout(),
            ]
            .into_iter()
            .flatten()
            .min();
            match next {
                Some(at) if at <= target => {
                    self.pair.now = self.pair.now.max(at);
                    self.drive();
                }
                _ => {
                    self.pair.now = target;
                    self.drive();
                    return;
                }
            }
        }
        panic!("timers kept firing at one instant");
    }

    /// How long until the session's next timer (a call deadline).
    pub fn session_deadline_in(&self) -> Option<Duration> {
        self.session
            .next_timeout()
            .map(|at| at.saturating_duration_since(self.pair.now))
    }

    /// Client: opens a gRPC call to `path` with `extra` request fields.
    /// With `end_stream` the request has no body at all.
    pub fn open_with(&mut self, path: &str, extra: &[(&str, &str)], end_stream: bool) -> StreamKey {
        let mut fields = vec![
            hf(":method", "POST"),
            hf(":scheme", "http"),
            hf(":path", path),
            hf(":authority", "localhost"),
            hf("content-type", "application/grpc"),
            hf("te", "trailers"),
        ];
        fields.extend(extra.iter().map(|(n, v)| hf(n, v)));
        let key = self.pair.client.conn.buffer().new_stream_key();
        self.pair.client.put(Item::Open {
            key,
            fields,
            end_stream,
            quota: None,
        });
        self.calls.insert(key, Call::new());
        key
    }

    /// Client: opens a gRPC call to `path` (request body to follow).
    pub fn open(&mut self, path: &str) -> StreamKey {
        self.open_with(path, &[], false)
    }

    /// Client: sends one request message on `key`.
    pub fn send(&mut self, key: StreamKey, message: &[u8], end_stream: bool) {
        self.pair.client.put(Item::Data {
            key,
            data: frame(message),
            end_stream,
        });
    }

    /// Client: half-closes `key` (an empty DATA with END_STREAM).
    pub fn half_close(&mut self, key: StreamKey) {
        self.pair.client.put(Item::Data {
            key,
            data: Bytes::new(),
            end_stream: true,
        });
    }

    /// Client: resets `key` with `reason`.
    pub fn reset(&mut self, key: StreamKey, reason: Reason) {
        let now = self.pair.now;
        self.pair.client.conn.reset(key, reason, now);
    }

    /// Client: releases the DATA of `key` received so far (manual mode);
    /// returns how many bytes.
    pub fn release(&mut self, key: StreamKey) -> usize {
        let call = self.calls.get_mut(&key).expect("a call of ours");
        let n = std::mem::take(&mut call.unreleased);
        if n > 0 {
            self.pair.client.conn.release_capacity(key, n);
        }
        n
    }

    /// A unary call: `message` then half-close, driven to quiet.
    pub fn unary(&mut self, path: &str, message: &[u8]) -> StreamKey {
        let key = self.open(path);
        self.send(key, message, true);
        self.drive();
        key
    }

    /// What the client saw of `key`.
    pub fn call(&self, key: StreamKey) -> &Call {
        self.calls.get(&key).expect("a call of ours")
    }

    /// `key`'s status (panics if the call has not ended with one).
    pub fn status(&self, key: StreamKey) -> Status {
        match self.call(key).status() {
            Some(status) => status,
            None => panic!("call {key:?} has no status yet"),
        }
    }

    fn collect_client(&mut self) -> bool {
        let events = self.pair.client.take_events();
        let any = !events.is_empty();
        let manual = !self.pair.client.auto_release;
        for event in events {
            match event {
                ConnEvent::Response {
                    key,
                    head,
                    end_stream,
                } => {
                    if let Some(call) = self.calls.get_mut(&key) {
                        call.http_status = Some(head.status);
                        call.headers = Some(head.fields);
                        call.trailers_only = end_stream;
                    }
                }
                ConnEvent::Data { key, data, .. } => {
                    if let Some(call) = self.calls.get_mut(&key) {
                        call.data_bytes += data.len();
                        if manual {
                            call.unreleased += data.len();
                        }
                        call.decoder.push(data);
                        while let Some(message) =
                            call.decoder.next().expect("well-framed response messages")
                        {
                            assert!(!message.compressed, "no compression negotiated");
                            call.messages.push(message.payload);
                        }
                    }
                }
                ConnEvent::Trailers { key, fields } => {
                    if let Some(call) = self.calls.get_mut(&key) {
                        call.trailers = Some(fields);
                    }
                }
                ConnEvent::Reset { key, reason, .. } => {
                    if let Some(call) = self.calls.get_mut(&key) {
                        call.reset = Some(reason);
                    }
                }
                _ => {}
            }
        }
        any
    }
}
