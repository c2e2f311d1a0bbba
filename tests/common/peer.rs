//! The raw HTTP/2 peer of the RFC 9113 conformance suite (`tests/h2_*.rs`):
//! a blocking `TcpStream` client that writes exactly the frames a test
//! asks for — well-formed through the `framer` encoder, or deliberately
//! broken through [`Peer::send_raw`] — and reads the server's frames back
//! through the `framer` decoder, in the style of h2's frames DSL
//! (`frames::headers(1).request("GET", "/").eos()`).
//!
//! Invariants:
//! - Nothing blocks forever: every expectation has a deadline
//!   ([`TIMEOUT`]) and panics with what it saw instead.
//! - The HPACK contexts stay in step with the server: the encoder is used
//!   once per block, in wire order; the decoder sees every field block.
//! - Like any client, the peer acknowledges the server's SETTINGS and
//!   PINGs as it reads them (unless [`Peer::auto_ack`] is off) and tracks
//!   its send windows from the server's WINDOW_UPDATEs and SETTINGS.
//!
//! [`start_server`] runs a `mio_grpc::http::Server` on 127.0.0.1:0 with
//! one event loop: `/` answers `200 hello\n` after reading the body.
//!
//! The same peer plays the server for client tests: [`Peer::accept`] takes
//! the connection the client under test makes, [`Peer::server_handshake`]
//! does the server's side of the preface, and the frames DSL writes
//! whatever responses the test needs (a compressed flag with no encoding,
//! an unknown `grpc-encoding`, ...).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{HashMap, VecDeque};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use mio_grpc::conn::ConnConfig;
use mio_grpc::framer::hpack::{HeaderField, HeaderList};
use mio_grpc::framer::{
    Data, Decoder, DecoderConfig, Encoder, Frame, GoAway, HeaderBlock, Headers, Ping, Reason,
    RstStream, Settings, StreamId, WindowUpdate, MAX_MAX_FRAME_SIZE, PREFACE,
};
use mio_grpc::http::{Execution, Request, Response, Server, ServerConfig};
use mio_grpc::runtime::RuntimeConfig;

pub use mio_grpc::framer::{Continuation, Priority, SettingId, StreamDependency, Unknown};

/// How long any expectation waits for the server.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// The body `/` answers with.
pub const HELLO: &[u8] = b"hello\n";

/// Size of the `/big` response body.
pub const BIG_BODY_LEN: usize = 100_000;

// ---------------------------------------------------------------------------
// The server under test
// ---------------------------------------------------------------------------

/// A server with the default connection settings.
pub fn start_server() -> (Server, SocketAddr) {
    start_server_with(|_| {})
}

/// A server whose `ConnConfig` `configure` adjusts (small
/// MAX_CONCURRENT_STREAMS, static windows, a short SETTINGS timeout...).
///
/// Handlers run on two workers, not inline: a handler that reads a request
/// body blocks until DATA arrives, which on the event-loop thread would
/// stop the very loop that delivers it.
pub fn start_server_with(configure: impl FnOnce(&mut ConnConfig)) -> (Server, SocketAddr) {
    let mut conn = ConnConfig::default();
    configure(&mut conn);
    let config = ServerConfig {
        conn,
        runtime: RuntimeConfig {
            event_loops: 1,
            ..RuntimeConfig::default()
        },
        execution: Execution::Workers(2),
        ..ServerConfig::default()
    };
    let server = Server::bind(SocketAddr::from(([127, 0, 0, 1], 0)), config, handle)
        .expect("bind the test server");
    let addr = server.local_addr();
    (server, addr)
}

/// A default server and a peer that has completed the handshake.
pub fn connected() -> (Server, Peer) {
    connected_with(|_| {})
}

/// [`start_server_with`] and a peer that has completed the handshake.
pub fn connected_with(configure: impl FnOnce(&mut ConnConfig)) -> (Server, Peer) {
    let (server, addr) = start_server_with(configure);
    let mut peer = Peer::connect(addr);
    peer.handshake();
    (server, peer)
}

/// The test handler. Reads the whole body first, then by `:path`:
/// - `/`: 200 `hello\n` (empty for HEAD);
/// - `/echo`: 200 with the request body;
/// - `/summary`: 200 `len=N trailers=name:value,...`;
/// - `/headers`: 200 with the regular request fields, `name: value\n`
///   each (what the server's HPACK decoder made of them);
/// - `/big`: 200 with [`BIG_BODY_LEN`] octets of `x`;
/// - `/hold`: waits 500 ms before reading the body (its receive window
///   stays closed meanwhile), then 200 `hello\n`;
/// - anything else: 404.
fn handle(mut request: Request) -> Response {
    let path = request.head.path.clone().unwrap_or_default();
    if &path[..] == b"/hold" {
        // The behaviour under test, not an ordering: a slow handler whose
        // stream stays open (and whose receive window stays shut) a while.
        std::thread::sleep(Duration::from_millis(500));
    }
    let body = match request.body.read_all() {
        Ok(body) => body,
        Err(_) => return Response::new(500, "reset\n"),
    };
    let head = &request.head.method[..] == b"HEAD";
    match &path[..] {
        b"/" if head => Response::new(200, Bytes::new()),
        b"/" => Response::new(200, HELLO),
        b"/echo" => Response::new(200, body),
        b"/summary" => {
            let trailers: Vec<String> = request
                .body
                .trailers()
                .map(|t| {
                    t.iter()
                        .map(|f| {
                            format!(
                                "{}:{}",
                                String::from_utf8_lossy(&f.name),
                                String::from_utf8_lossy(&f.value)
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let text = format!("len={} trailers={}", body.len(), trailers.join(","));
            Response::new(200, text)
        }
        b"/headers" => {
            let mut text = Vec::new();
            for f in &request.head.fields {
                text.extend_from_slice(&f.name);
                text.extend_from_slice(b": ");
                text.extend_from_slice(&f.value);
                text.push(b'\n');
            }
            Response::new(200, text)
        }
        b"/big" => Response::new(200, vec![b'x'; BIG_BODY_LEN]),
        b"/hold" => Response::new(200, HELLO),
        _ => Response::new(404, "not found\n"),
    }
}

// ---------------------------------------------------------------------------
// Frame builders
// ---------------------------------------------------------------------------

/// Something the peer can send: a frame, or a builder that may need the
/// peer's HPACK encoder to become one.
pub trait IntoFrame {
    /// The frame, HPACK-encoding with `encoder` if the builder must.
    fn into_frame(self, encoder: &mut Encoder) -> Frame;
}

impl IntoFrame for Frame {
    fn into_frame(self, _: &mut Encoder) -> Frame {
        self
    }
}

macro_rules! into_frame {
    ($($ty:ident),*) => {$(
        impl IntoFrame for $ty {
            fn into_frame(self, _: &mut Encoder) -> Frame {
                Frame::from(self)
            }
        }
    )*};
}
into_frame!(
    Data,
    Headers,
    Priority,
    RstStream,
    Settings,
    Ping,
    GoAway,
    WindowUpdate,
    Continuation,
    Unknown
);

/// HPACK-encodes `fields` as one field block with the peer's encoder.
fn encode_block(encoder: &mut Encoder, fields: &[HeaderField]) -> Bytes {
    let mut block = BytesMut::new();
    encoder.hpack_mut().encode(fields, &mut block);
    block.freeze()
}

fn field(name: &str, value: &str) -> HeaderField {
    HeaderField::new(
        Bytes::copy_from_slice(name.as_bytes()),
        Bytes::copy_from_slice(value.as_bytes()),
    )
}

/// The frames DSL: each function reads like the RFC's description.
pub mod frames {
    use super::*;

    /// The four pseudo-header fields of a request to this server.
    pub fn request_fields(method: &str, path: &str) -> HeaderList {
        vec![
            field(":method", method),
            field(":scheme", "http"),
            field(":path", path),
            field(":authority", "127.0.0.1"),
        ]
    }

    /// A HEADERS frame on `stream`.
    pub fn headers(stream: u32) -> HeadersBuilder {
        HeadersBuilder {
            stream_id: StreamId::new(stream),
            fields: Vec::new(),
            fragment: None,
            end_stream: false,
            end_headers: true,
            priority: None,
            pad_len: None,
        }
    }

    /// A DATA frame on `stream`.
    pub fn data(stream: u32, payload: impl AsRef<[u8]>) -> DataBuilder {
        DataBuilder(Data::new(
            StreamId::new(stream),
            Bytes::copy_from_slice(payload.as_ref()),
        ))
    }

    /// A SETTINGS frame (no parameters until added).
    pub fn settings() -> SettingsBuilder {
        SettingsBuilder(Settings::new())
    }

    /// A SETTINGS frame with the ACK flag.
    pub fn settings_ack() -> Settings {
        Settings::ack()
    }

    /// RST_STREAM.
    pub fn rst(stream: u32, reason: Reason) -> RstStream {
        RstStream::new(StreamId::new(stream), reason)
    }

    /// WINDOW_UPDATE (the increment's reserved bit is masked by the encoder).
    pub fn window_update(stream: u32, increment: u32) -> WindowUpdate {
        WindowUpdate::new(StreamId::new(stream), increment)
    }

    /// PING.
    pub fn ping(payload: [u8; 8]) -> Ping {
        Ping::new(payload)
    }

    /// PING with the ACK flag.
    pub fn pong(payload: [u8; 8]) -> Ping {
        Ping::pong(payload)
    }

    /// GOAWAY.
    pub fn goaway(last_stream: u32, reason: Reason) -> GoAway {
        GoAway::new(StreamId::new(last_stream), reason)
    }

    /// PRIORITY: `stream` depends on `depends_on`.
    pub fn priority(stream: u32, depends_on: u32, weight: u8, exclusive: bool) -> Priority {
        Priority {
            stream_id: StreamId::new(stream),
            dependency: StreamDependency {
                dependency: StreamId::new(depends_on),
                weight,
                exclusive,
            },
        }
    }

    /// A CONTINUATION frame on `stream` (no END_HEADERS until asked).
    pub fn continuation(stream: u32) -> ContinuationBuilder {
        ContinuationBuilder {
            stream_id: StreamId::new(stream),
            fields: Vec::new(),
            fragment: None,
            end_headers: false,
        }
    }

    /// A frame of type `kind`, which must be one RFC 9113 does not define.
    pub fn unknown(kind: u8, stream: u32, payload: impl AsRef<[u8]>) -> Unknown {
        Unknown {
            kind,
            flags: 0,
            stream_id: StreamId::new(stream),
            payload: Bytes::copy_from_slice(payload.as_ref()),
        }
    }

    /// The octets of a frame with any header fields and payload, for
    /// [`Peer::send_raw`]: the length is the payload's.
    pub fn raw(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        raw_with_length(payload.len() as u32, kind, flags, stream, payload)
    }

    /// Like [`raw`], with a length field that may lie about the payload.
    pub fn raw_with_length(
        length: u32,
        kind: u8,
        flags: u8,
        stream: u32,
        payload: &[u8],
    ) -> Vec<u8> {
        let mut out = Vec::with_capacity(9 + payload.len());
        out.extend_from_slice(&length.to_be_bytes()[1..]);
        out.push(kind);
        out.push(flags);
        out.extend_from_slice(&stream.to_be_bytes());
        out.extend_from_slice(payload);
        out
    }
}

/// Builds a HEADERS frame; see [`frames::headers`].
#[derive(Clone, Debug)]
pub struct HeadersBuilder {
    stream_id: StreamId,
    fields: HeaderList,
    fragment: Option<Bytes>,
    end_stream: bool,
    end_headers: bool,
    priority: Option<StreamDependency>,
    pad_len: Option<u8>,
}

impl HeadersBuilder {
    /// Adds `:method`, `:scheme` (http), `:path` and `:authority`.
    pub fn request(mut self, method: &str, path: &str) -> Self {
        self.fields.extend(frames::request_fields(method, path));
        self
    }

    /// Adds one field (any octets: names are not lower-cased).
    pub fn field(mut self, name: &str, value: &str) -> Self {
        self.fields.push(field(name, value));
        self
    }

    /// Adds one field from raw octets.
    pub fn field_bytes(mut self, name: &[u8], value: &[u8]) -> Self {
        self.fields.push(HeaderField::new(
            Bytes::copy_from_slice(name),
            Bytes::copy_from_slice(value),
        ));
        self
    }

    /// Adds fields.
    pub fn fields(mut self, fields: impl IntoIterator<Item = HeaderField>) -> Self {
        self.fields.extend(fields);
        self
    }

    /// END_STREAM.
    pub fn eos(mut self) -> Self {
        self.end_stream = true;
        self
    }

    /// No END_HEADERS: CONTINUATION frames must follow.
    pub fn no_end_headers(mut self) -> Self {
        self.end_headers = false;
        self
    }

    /// The PRIORITY flag with these dependency fields.
    pub fn priority(mut self, depends_on: u32, weight: u8, exclusive: bool) -> Self {
        self.priority = Some(StreamDependency {
            dependency: StreamId::new(depends_on),
            weight,
            exclusive,
        });
        self
    }

    /// The PADDED flag with `pad_len` octets of padding.
    pub fn padded(mut self, pad_len: u8) -> Self {
        self.pad_len = Some(pad_len);
        self
    }

    /// Sends `fragment` as the field block, verbatim (no HPACK encoding).
    pub fn fragment(mut self, fragment: impl AsRef<[u8]>) -> Self {
        self.fragment = Some(Bytes::copy_from_slice(fragment.as_ref()));
        self
    }
}

impl IntoFrame for HeadersBuilder {
    fn into_frame(self, encoder: &mut Encoder) -> Frame {
        let block = match (self.fragment, self.end_headers) {
            (Some(fragment), _) => HeaderBlock::Encoded(fragment),
            // The encoder splits a decoded block into CONTINUATION frames
            // itself, with END_HEADERS on the last.
            (None, true) => HeaderBlock::Fields(self.fields),
            (None, false) => HeaderBlock::Encoded(encode_block(encoder, &self.fields)),
        };
        Frame::Headers(Headers {
            stream_id: self.stream_id,
            end_stream: self.end_stream,
            end_headers: self.end_headers,
            priority: self.priority,
            pad_len: self.pad_len,
            block,
        })
    }
}

/// Builds a DATA frame; see [`frames::data`].
#[derive(Clone, Debug)]
pub struct DataBuilder(Data);

impl DataBuilder {
    /// END_STREAM.
    pub fn eos(mut self) -> Self {
        self.0.end_stream = true;
        self
    }

    /// The PADDED flag with `pad_len` octets of padding.
    pub fn padded(mut self, pad_len: u8) -> Self {
        self.0.pad_len = Some(pad_len);
        self
    }
}

impl IntoFrame for DataBuilder {
    fn into_frame(self, _: &mut Encoder) -> Frame {
        Frame::Data(self.0)
    }
}

/// Builds a SETTINGS frame; see [`frames::settings`].
#[derive(Clone, Debug)]
pub struct SettingsBuilder(Settings);

impl SettingsBuilder {
    /// SETTINGS_HEADER_TABLE_SIZE.
    pub fn header_table_size(self, v: u32) -> Self {
        self.param(SettingId::HEADER_TABLE_SIZE.0, v)
    }

    /// SETTINGS_ENABLE_PUSH.
    pub fn enable_push(self, v: u32) -> Self {
        self.param(SettingId::ENABLE_PUSH.0, v)
    }

    /// SETTINGS_MAX_CONCURRENT_STREAMS.
    pub fn max_concurrent_streams(self, v: u32) -> Self {
        self.param(SettingId::MAX_CONCURRENT_STREAMS.0, v)
    }

    /// SETTINGS_INITIAL_WINDOW_SIZE.
    pub fn initial_window_size(self, v: u32) -> Self {
        self.param(SettingId::INITIAL_WINDOW_SIZE.0, v)
    }

    /// SETTINGS_MAX_FRAME_SIZE.
    pub fn max_frame_size(self, v: u32) -> Self {
        self.param(SettingId::MAX_FRAME_SIZE.0, v)
    }

    /// SETTINGS_MAX_HEADER_LIST_SIZE.
    pub fn max_header_list_size(self, v: u32) -> Self {
        self.param(SettingId::MAX_HEADER_LIST_SIZE.0, v)
    }

    /// Any parameter, known or not.
    pub fn param(self, id: u16, value: u32) -> Self {
        SettingsBuilder(self.0.with(SettingId(id), value))
    }
}

impl IntoFrame for SettingsBuilder {
    fn into_frame(self, _: &mut Encoder) -> Frame {
        Frame::Settings(self.0)
    }
}

/// Builds a CONTINUATION frame; see [`frames::continuation`].
#[derive(Clone, Debug)]
pub struct ContinuationBuilder {
    stream_id: StreamId,
    fields: HeaderList,
    fragment: Option<Bytes>,
    end_headers: bool,
}

impl ContinuationBuilder {
    /// Adds one field (HPACK-encoded as a block of its own when sent).
    pub fn field(mut self, name: &str, value: &str) -> Self {
        self.fields.push(field(name, value));
        self
    }

    /// Sends `fragment` verbatim.
    pub fn fragment(mut self, fragment: impl AsRef<[u8]>) -> Self {
        self.fragment = Some(Bytes::copy_from_slice(fragment.as_ref()));
        self
    }

    /// END_HEADERS.
    pub fn end_headers(mut self) -> Self {
        self.end_headers = true;
        self
    }
}

impl IntoFrame for ContinuationBuilder {
    fn into_frame(self, encoder: &mut Encoder) -> Frame {
        let fragment = match self.fragment {
            Some(fragment) => fragment,
            None => encode_block(encoder, &self.fields),
        };
        Frame::Continuation(Continuation {
            stream_id: self.stream_id,
            end_headers: self.end_headers,
            fragment,
        })
    }
}

// ---------------------------------------------------------------------------
// The peer
// ---------------------------------------------------------------------------

/// What reading from the server produced.
#[derive(Debug)]
pub enum Event {
    /// A frame (field blocks decoded).
    Frame(Frame),
    /// The server closed the connection (EOF, or a reset).
    Closed,
    /// Nothing arrived before the deadline.
    Timeout,
}

/// How the server answered a protocol error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorSeen {
    /// RST_STREAM on the stream, with this code.
    Stream(Reason),
    /// GOAWAY with this code (and the connection closed after it).
    Connection(Reason),
}

/// A raw HTTP/2 client connection to the server under test.
pub struct Peer {
    stream: TcpStream,
    encoder: Encoder,
    decoder: Decoder,
    read_buf: BytesMut,
    /// Frames read but not yet handed to the test.
    pending: VecDeque<Frame>,
    /// Our SETTINGS not yet acknowledged, oldest first.
    unacked_settings: VecDeque<Settings>,
    /// The server's first SETTINGS frame.
    pub server_settings: Settings,
    /// Acknowledge the server's SETTINGS and PINGs as they are read.
    pub auto_ack: bool,
    /// Our send windows: the connection's, the server's
    /// SETTINGS_INITIAL_WINDOW_SIZE, and each stream's.
    conn_window: i64,
    initial_window: i64,
    stream_windows: HashMap<u32, i64>,
    /// PING payloads sent by `expect_alive`, to keep them unique.
    pings_sent: u64,
    closed: bool,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("pending", &self.pending)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

/// A short description of a frame for failure messages.
pub fn describe(frame: &Frame) -> String {
    match frame {
        Frame::GoAway(g) => format!(
            "GOAWAY(last={}, {}, {:?})",
            g.last_stream_id,
            g.reason,
            String::from_utf8_lossy(&g.debug_data)
        ),
        Frame::RstStream(r) => format!("RST_STREAM({}, {})", r.stream_id, r.reason),
        Frame::Data(d) => format!(
            "DATA({}, {} octets{})",
            d.stream_id,
            d.payload.len(),
            if d.end_stream { ", END_STREAM" } else { "" }
        ),
        Frame::Headers(h) => format!(
            "HEADERS({}, {:?}{})",
            h.stream_id,
            h.block.fields().map(|f| f
                .iter()
                .map(|f| format!(
                    "{}: {}",
                    String::from_utf8_lossy(&f.name),
                    String::from_utf8_lossy(&f.value)
                ))
                .collect::<Vec<_>>()),
            if h.end_stream { ", END_STREAM" } else { "" }
        ),
        other => format!("{other:?}"),
    }
}

impl Peer {
    /// Connects (TCP_NODELAY, a read timeout); sends nothing yet.
    pub fn connect(addr: SocketAddr) -> Peer {
        let stream = TcpStream::connect_timeout(&addr, TIMEOUT).expect("connect to the server");
        Peer::over(stream)
    }

    /// Plays the server: accepts the next connection on `listener` (the
    /// client under test dialing in); panics if none comes within
    /// [`TIMEOUT`]. Sends nothing yet; [`Peer::server_handshake`] follows.
    pub fn accept(listener: &TcpListener) -> Peer {
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let mut accepted = None;
        let connected = super::wait::wait_until(
            || match listener.accept() {
                Ok((stream, _)) => {
                    accepted = Some(stream);
                    true
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => false,
                Err(e) => panic!("accept: {e}"),
            },
            TIMEOUT,
        );
        assert!(connected, "no client connected within {TIMEOUT:?}");
        let stream = accepted.expect("accepted");
        stream.set_nonblocking(false).expect("blocking stream");
        Peer::over(stream)
    }

    /// A peer on a connected socket (TCP_NODELAY, read and write timeouts).
    fn over(stream: TcpStream) -> Peer {
        stream.set_nodelay(true).expect("TCP_NODELAY");
        stream
            .set_read_timeout(Some(TIMEOUT))
            .expect("read timeout");
        stream
            .set_write_timeout(Some(TIMEOUT))
            .expect("write timeout");
        let decoder = Decoder::new(DecoderConfig {
            max_frame_size: MAX_MAX_FRAME_SIZE,
            header_table_size: 4096,
            max_header_list_size: u32::MAX,
            max_header_block_size: 64 << 20,
            max_continuation_frames: 1 << 20,
        });
        Peer {
            stream,
            encoder: Encoder::new(),
            decoder,
            read_buf: BytesMut::with_capacity(64 << 10),
            pending: VecDeque::new(),
            unacked_settings: VecDeque::new(),
            server_settings: Settings::new(),
            auto_ack: true,
            conn_window: 65_535,
            initial_window: 65_535,
            stream_windows: HashMap::new(),
            pings_sent: 0,
            closed: false,
        }
    }

    /// The connection preface with an empty SETTINGS; see
    /// [`Peer::handshake_with`].
    pub fn handshake(&mut self) {
        self.handshake_with(frames::settings());
    }

    /// Sends the preface and `settings`, reads the server's SETTINGS
    /// (which must be the first frame it sends, RFC 9113 §3.4), acknowledges
    /// it and waits for the acknowledgement of ours. Other frames read
    /// meanwhile are kept for the test.
    pub fn handshake_with(&mut self, settings: SettingsBuilder) {
        self.send_raw(PREFACE);
        self.send(settings);
        self.expect_server_preface();
        self.wait_for_settings_ack();
    }

    /// Reads the server's first frame, which must be a SETTINGS without
    /// ACK; applies and (if `auto_ack`) acknowledges it.
    pub fn expect_server_preface(&mut self) {
        self.expect_first_settings("server");
    }

    /// The peer's first frame: a SETTINGS without ACK (RFC 9113 §3.4),
    /// applied and (if `auto_ack`) acknowledged. `who` names the peer.
    fn expect_first_settings(&mut self, who: &str) {
        let deadline = Instant::now() + TIMEOUT;
        match self.read_frame(deadline) {
            Event::Frame(Frame::Settings(s)) if !s.ack => {
                self.server_settings = s.clone();
                self.on_server_settings(&s);
            }
            Event::Frame(other) => panic!(
                "RFC 9113 §3.4: the {who}'s first frame must be SETTINGS, got {}",
                describe(&other)
            ),
            other => panic!("no {who} preface: {other:?}"),
        }
    }

    // --- playing the server ------------------------------------------------

    /// The server's side of the handshake (RFC 9113 §3.4): reads the
    /// client's connection preface, sends `settings` as ours, reads the
    /// client's SETTINGS (its first frame), acknowledges it and waits for
    /// the acknowledgement of ours. (The client's SETTINGS is kept in
    /// `server_settings`: the fields are named for the usual role.)
    pub fn server_handshake_with(&mut self, settings: SettingsBuilder) {
        let deadline = Instant::now() + TIMEOUT;
        while self.read_buf.len() < PREFACE.len() {
            if let Some(event) = self.fill(deadline) {
                panic!(
                    "no client preface ({event:?}); got {:?}",
                    &self.read_buf[..]
                );
            }
        }
        let preface = self.read_buf.split_to(PREFACE.len());
        assert_eq!(&preface[..], PREFACE, "RFC 9113 §3.4: the client preface");
        self.send(settings);
        self.expect_first_settings("client");
        self.wait_for_settings_ack();
    }

    /// [`Peer::server_handshake_with`] an empty SETTINGS.
    pub fn server_handshake(&mut self) {
        self.server_handshake_with(frames::settings());
    }

    /// Reads until the server has acknowledged every SETTINGS frame we
    /// sent; other frames are kept for the test.
    pub fn wait_for_settings_ack(&mut self) {
        let deadline = Instant::now() + TIMEOUT;
        let mut kept = Vec::new();
        while !self.unacked_settings.is_empty() {
            match self.read_frame(deadline) {
                Event::Frame(frame) => {
                    self.process(&frame);
                    let is_ack = matches!(&frame, Frame::Settings(s) if s.ack);
                    if !is_ack {
                        kept.push(frame);
                    }
                }
                other => panic!(
                    "no SETTINGS ACK from the server ({other:?}); frames: {:?}",
                    kept.iter().map(describe).collect::<Vec<_>>()
                ),
            }
        }
        self.pending.extend(kept);
    }

    // --- sending -----------------------------------------------------------

    /// Sends one frame (HPACK-encoding field blocks with the connection's
    /// encoder). Write errors are ignored: the server may already have
    /// closed, and the expectations that follow say what it did.
    pub fn send(&mut self, frame: impl IntoFrame) {
        let frame = frame.into_frame(&mut self.encoder);
        match &frame {
            Frame::Settings(s) if !s.ack => self.unacked_settings.push_back(s.clone()),
            Frame::Data(d) => {
                let n = i64::from(d.flow_len());
                self.conn_window -= n;
                *self.stream_window(d.stream_id.value()) -= n;
            }
            _ => {}
        }
        let mut out = BytesMut::new();
        self.encoder.encode(&frame, &mut out);
        self.send_raw(&out);
    }

    /// Sends `frames` in one write, so the server reads them together.
    pub fn send_together<F: IntoFrame>(&mut self, frames: impl IntoIterator<Item = F>) {
        let mut out = BytesMut::new();
        for frame in frames {
            let frame = frame.into_frame(&mut self.encoder);
            if let Frame::Settings(s) = &frame {
                if !s.ack {
                    self.unacked_settings.push_back(s.clone());
                }
            }
            self.encoder.encode(&frame, &mut out);
        }
        self.send_raw(&out);
    }

    /// Writes `bytes` as they are.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes);
    }

    /// HPACK-encodes `fields` as a block with the connection's encoder, for
    /// a raw HEADERS fragment. The block must then be sent (the server's
    /// decoder must see it) or the HPACK contexts part ways.
    pub fn encode_fields(&mut self, fields: &[HeaderField]) -> Vec<u8> {
        encode_block(&mut self.encoder, fields).to_vec()
    }

    /// A GET of `path` on `stream`, with END_STREAM.
    pub fn send_get(&mut self, stream: u32, path: &str) {
        self.send(frames::headers(stream).request("GET", path).eos());
    }

    /// Sends `body` on `stream` as DATA frames within the server's windows
    /// and MAX_FRAME_SIZE, waiting for WINDOW_UPDATEs as needed; END_STREAM
    /// on the last frame if `eos`. Panics if the windows stay shut.
    pub fn send_body(&mut self, stream: u32, body: &[u8], eos: bool) {
        self.send_body_padded(stream, body, None, eos);
    }

    /// [`Peer::send_body`] with every frame PADDED with `pad` octets
    /// (which count against flow control too).
    pub fn send_body_padded(&mut self, stream: u32, body: &[u8], pad: Option<u8>, eos: bool) {
        let overhead = pad.map_or(0, |p| 1 + i64::from(p));
        let max_frame = i64::from(
            self.server_settings
                .max_frame_size()
                .unwrap_or(16_384)
                .min(16_384),
        );
        let mut rest = body;
        let mut kept = Vec::new();
        loop {
            let window = self.conn_window.min(*self.stream_window(stream));
            let room = (window.min(max_frame) - overhead).max(0);
            let n = rest.len().min(room as usize);
            let last = n == rest.len();
            if (n > 0 || (rest.is_empty() && eos)) && window >= overhead {
                let (chunk, tail) = rest.split_at(n);
                rest = tail;
                let mut frame = frames::data(stream, chunk);
                if let Some(pad) = pad {
                    frame = frame.padded(pad);
                }
                if last && eos {
                    frame = frame.eos();
                }
                self.send(frame);
                if last {
                    break;
                }
                continue;
            }
            if rest.is_empty() && !eos {
                break;
            }
            // Wait for credit.
            let deadline = Instant::now() + TIMEOUT;
            match self.read_frame(deadline) {
                Event::Frame(frame) => {
                    self.process(&frame);
                    kept.push(frame);
                }
                other => panic!(
                    "sending {} octets on stream {stream}: {} left, the server's windows \
                     stay shut (connection {}, stream {}): {other:?}; frames: {:?}",
                    body.len(),
                    rest.len(),
                    self.conn_window,
                    self.stream_windows
                        .get(&stream)
                        .copied()
                        .unwrap_or(self.initial_window),
                    kept.iter().map(describe).collect::<Vec<_>>()
                ),
            }
        }
        self.pending.extend(kept);
    }

    /// Our send window on the connection.
    pub fn conn_window(&self) -> i64 {
        self.conn_window
    }

    fn stream_window(&mut self, stream: u32) -> &mut i64 {
        let initial = self.initial_window;
        self.stream_windows.entry(stream).or_insert(initial)
    }

    // --- receiving ---------------------------------------------------------

    /// Reads one frame from the socket (not from `pending`), or EOF, or
    /// the deadline passing.
    fn read_frame(&mut self, deadline: Instant) -> Event {
        loop {
            match self.decoder.decode(&mut self.read_buf) {
                Ok(Some(frame)) => return Event::Frame(frame),
                Ok(None) => {}
                Err(err) => panic!("the server sent an invalid frame: {err:?}"),
            }
            if let Some(event) = self.fill(deadline) {
                return event;
            }
        }
    }

    /// Reads what the socket has into `read_buf` (waiting up to
    /// `deadline`); `Some` if the connection is closed or the deadline
    /// passed instead.
    fn fill(&mut self, deadline: Instant) -> Option<Event> {
        if self.closed {
            return Some(Event::Closed);
        }
        let now = Instant::now();
        if now >= deadline {
            return Some(Event::Timeout);
        }
        self.stream
            .set_read_timeout(Some(deadline - now))
            .expect("read timeout");
        let mut chunk = [0u8; 16 << 10];
        match self.stream.read(&mut chunk) {
            Ok(0) => self.closed = true,
            Ok(n) => self.read_buf.put_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Some(Event::Timeout)
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => self.closed = true,
        }
        None
    }

    /// Bookkeeping for a frame just read: acks, windows, settings.
    fn process(&mut self, frame: &Frame) {
        match frame {
            Frame::Settings(s) if s.ack => {
                if let Some(ours) = self.unacked_settings.pop_front() {
                    // Our limits bind once the server has acknowledged them.
                    if let Some(size) = ours.header_table_size() {
                        self.decoder.set_header_table_size(size);
                    }
                }
            }
            Frame::Settings(s) => self.on_server_settings(s),
            Frame::Ping(p) if !p.ack && self.auto_ack => self.send(frames::pong(p.payload)),
            Frame::WindowUpdate(w) if w.stream_id.is_zero() => {
                self.conn_window += i64::from(w.increment)
            }
            Frame::WindowUpdate(w) => {
                *self.stream_window(w.stream_id.value()) += i64::from(w.increment)
            }
            _ => {}
        }
    }

    fn on_server_settings(&mut self, s: &Settings) {
        if let Some(size) = s.max_frame_size() {
            self.encoder.set_max_frame_size(size);
        }
        if let Some(size) = s.header_table_size() {
            self.encoder.set_header_table_size(size);
        }
        if let Some(initial) = s.initial_window_size() {
            let delta = i64::from(initial) - self.initial_window;
            self.initial_window = i64::from(initial);
            for window in self.stream_windows.values_mut() {
                *window += delta;
            }
        }
        if self.auto_ack {
            self.send(frames::settings_ack());
        }
    }

    /// The next frame, or EOF, or the deadline passing.
    pub fn next_event(&mut self, deadline: Instant) -> Event {
        if let Some(frame) = self.pending.pop_front() {
            return Event::Frame(frame);
        }
        let event = self.read_frame(deadline);
        if let Event::Frame(frame) = &event {
            self.process(frame);
        }
        event
    }

    /// The next frame; panics on EOF or after [`TIMEOUT`].
    pub fn recv(&mut self) -> Frame {
        match self.next_event(Instant::now() + TIMEOUT) {
            Event::Frame(frame) => frame,
            other => panic!("expected a frame from the server, got {other:?}"),
        }
    }

    /// Reads until `pick` accepts a frame; panics (listing what came) on
    /// EOF or timeout. Frames `pick` declines stay unread, in order, for
    /// the next expectation.
    pub fn expect<T>(&mut self, what: &str, mut pick: impl FnMut(&Frame) -> Option<T>) -> T {
        let deadline = Instant::now() + TIMEOUT;
        let mut kept = Vec::new();
        loop {
            match self.next_event(deadline) {
                Event::Frame(frame) => match pick(&frame) {
                    Some(found) => {
                        self.unread(kept);
                        return found;
                    }
                    None => kept.push(frame),
                },
                other => panic!(
                    "expected {what}, got {other:?} after {:?}",
                    kept.iter().map(describe).collect::<Vec<_>>()
                ),
            }
        }
    }

    /// Puts `frames` back, ahead of anything still unread.
    fn unread(&mut self, frames: Vec<Frame>) {
        for frame in frames.into_iter().rev() {
            self.pending.push_front(frame);
        }
    }

    /// How the server answered an error on `stream`: the first RST_STREAM
    /// on it or GOAWAY (after which the connection must close).
    pub fn expect_error(&mut self, stream: u32) -> ErrorSeen {
        let what = format!("RST_STREAM on stream {stream} or GOAWAY");
        let seen = self.expect(&what, |frame| match frame {
            Frame::RstStream(r) if r.stream_id.value() == stream => {
                Some(ErrorSeen::Stream(r.reason))
            }
            Frame::GoAway(g) => Some(ErrorSeen::Connection(g.reason)),
            _ => None,
        });
        if let ErrorSeen::Connection(_) = seen {
            self.expect_closed();
        }
        seen
    }

    /// A connection error: GOAWAY with `reason`, then the TCP connection
    /// closes (RFC 9113 §5.4.1). Other frames before it are skipped.
    pub fn expect_goaway(&mut self, reason: Reason) -> GoAway {
        let goaway = self.expect(&format!("GOAWAY({reason})"), |frame| match frame {
            Frame::GoAway(g) => Some(g.clone()),
            _ => None,
        });
        assert_eq!(
            goaway.reason,
            reason,
            "expected GOAWAY({reason}), got {}",
            describe(&Frame::GoAway(goaway.clone()))
        );
        self.expect_closed();
        goaway
    }

    /// A connection error with any of `reasons`.
    pub fn expect_goaway_any(&mut self, reasons: &[Reason]) -> GoAway {
        let goaway = self.expect("GOAWAY", |frame| match frame {
            Frame::GoAway(g) => Some(g.clone()),
            _ => None,
        });
        assert!(
            reasons.contains(&goaway.reason),
            "expected GOAWAY with one of {reasons:?}, got {}",
            describe(&Frame::GoAway(goaway.clone()))
        );
        self.expect_closed();
        goaway
    }

    /// A stream error: RST_STREAM on `stream` with `reason`. A GOAWAY
    /// instead fails the test.
    pub fn expect_rst(&mut self, stream: u32, reason: Reason) {
        self.expect_rst_any(stream, &[reason]);
    }

    /// A stream error with any of `reasons`.
    pub fn expect_rst_any(&mut self, stream: u32, reasons: &[Reason]) {
        let what = format!("RST_STREAM({stream}, one of {reasons:?})");
        let frame = self.expect(&what, |frame| match frame {
            Frame::RstStream(r) if r.stream_id.value() == stream => Some(frame.clone()),
            Frame::GoAway(_) => Some(frame.clone()),
            _ => None,
        });
        match frame {
            Frame::RstStream(r) => assert!(
                reasons.contains(&r.reason),
                "expected {what}, got RST_STREAM({stream}, {})",
                r.reason
            ),
            other => panic!("expected {what} (a stream error), got {}", describe(&other)),
        }
    }

    /// An error the RFC lets the server report either way: RST_STREAM on
    /// `stream` or GOAWAY, with one of `reasons`.
    pub fn expect_stream_or_connection_error(&mut self, stream: u32, reasons: &[Reason]) {
        match self.expect_error(stream) {
            ErrorSeen::Stream(r) | ErrorSeen::Connection(r) => assert!(
                reasons.contains(&r),
                "expected RST_STREAM({stream}) or GOAWAY with one of {reasons:?}, got {r}"
            ),
        }
    }

    /// The server closes the TCP connection (EOF or reset). Frames before
    /// the close (unread ones included) are ignored.
    pub fn expect_closed(&mut self) {
        self.pending.clear();
        let deadline = Instant::now() + TIMEOUT;
        let mut seen = Vec::new();
        loop {
            match self.next_event(deadline) {
                Event::Closed => return,
                Event::Frame(frame) => seen.push(describe(&frame)),
                Event::Timeout => panic!("the server did not close the connection; got {seen:?}"),
            }
        }
    }

    /// The response HEADERS on `stream`. Panics on RST_STREAM for it or a
    /// GOAWAY.
    pub fn expect_headers(&mut self, stream: u32) -> Headers {
        let frame = self.expect(&format!("HEADERS on stream {stream}"), |frame| {
            stream_frame(frame, stream, |f| matches!(f, Frame::Headers(_)))
        });
        match frame {
            Frame::Headers(h) => h,
            other => panic!(
                "expected HEADERS on stream {stream}, got {}",
                describe(&other)
            ),
        }
    }

    /// The next DATA on `stream`. Panics on RST_STREAM for it or a GOAWAY.
    pub fn expect_data(&mut self, stream: u32) -> Data {
        let frame = self.expect(&format!("DATA on stream {stream}"), |frame| {
            stream_frame(frame, stream, |f| matches!(f, Frame::Data(_)))
        });
        match frame {
            Frame::Data(d) => d,
            other => panic!("expected DATA on stream {stream}, got {}", describe(&other)),
        }
    }

    /// A whole response on `stream`: `(status, body)`. Trailers, if any,
    /// end it.
    pub fn expect_response(&mut self, stream: u32) -> (u16, Vec<u8>) {
        let (status, fields, body, _) = self.expect_full_response(stream);
        assert_valid_response_fields(&fields);
        (status, body)
    }

    /// A whole response on `stream`: status, header fields, body, trailers.
    pub fn expect_full_response(
        &mut self,
        stream: u32,
    ) -> (u16, HeaderList, Vec<u8>, Option<HeaderList>) {
        let headers = self.expect_headers(stream);
        let fields = headers.block.fields().cloned().unwrap_or_default();
        let status = status(&headers);
        let mut body = Vec::new();
        let mut trailers = None;
        let mut done = headers.end_stream;
        while !done {
            let frame = self.expect(&format!("the rest of the response on {stream}"), |f| {
                stream_frame(f, stream, |f| {
                    matches!(f, Frame::Data(_) | Frame::Headers(_))
                })
            });
            match frame {
                Frame::Data(d) => {
                    body.extend_from_slice(&d.payload);
                    done = d.end_stream;
                }
                Frame::Headers(h) => {
                    assert!(h.end_stream, "trailers without END_STREAM on {stream}");
                    trailers = h.block.fields().cloned();
                    done = true;
                }
                other => panic!("unexpected {} on stream {stream}", describe(&other)),
            }
        }
        (status, fields, body, trailers)
    }

    /// A response on `stream` whose body may exceed the windows: each DATA
    /// frame's length is given back at once with WINDOW_UPDATEs on the
    /// stream and the connection. Returns the status, the body and the
    /// length of each DATA frame.
    pub fn expect_response_granting(&mut self, stream: u32) -> (u16, Vec<u8>, Vec<usize>) {
        let headers = self.expect_headers(stream);
        let fields = headers.block.fields().cloned().unwrap_or_default();
        assert_valid_response_fields(&fields);
        let status = status(&headers);
        let mut body = Vec::new();
        let mut sizes = Vec::new();
        let mut done = headers.end_stream;
        while !done {
            let data = self.expect_data(stream);
            body.extend_from_slice(&data.payload);
            sizes.push(data.payload.len());
            done = data.end_stream;
            let n = data.flow_len();
            if n > 0 {
                self.send(frames::window_update(0, n));
                if !done {
                    self.send(frames::window_update(stream, n));
                }
            }
        }
        (status, body, sizes)
    }

    /// Sends a PING and reads until its ACK: the connection is still fine.
    /// Panics on GOAWAY, EOF or timeout. Returns the frames read before
    /// the ACK (they also stay unread). (The server's keepalive enforcement strikes a client that
    /// pings too often with no stream open: at most three per connection.)
    pub fn expect_alive(&mut self) -> Vec<Frame> {
        self.pings_sent += 1;
        let payload = (0x616c_6976_6500_0000u64 + self.pings_sent).to_be_bytes();
        self.send(frames::ping(payload));
        let deadline = Instant::now() + TIMEOUT;
        let mut seen = Vec::new();
        loop {
            match self.next_event(deadline) {
                Event::Frame(Frame::Ping(p)) if p.ack && p.payload == payload => {
                    self.unread(seen.clone());
                    return seen;
                }
                Event::Frame(Frame::GoAway(g)) => panic!(
                    "expected the connection to stay up, got {}",
                    describe(&Frame::GoAway(g))
                ),
                Event::Frame(frame) => seen.push(frame),
                other => panic!(
                    "expected the PING ACK, got {other:?} after {:?}",
                    seen.iter().map(describe).collect::<Vec<_>>()
                ),
            }
        }
    }

    /// Like [`Peer::expect_alive`], and no RST_STREAM came for `stream`.
    pub fn expect_no_rst(&mut self, stream: u32) {
        let seen = self.expect_alive();
        for frame in &seen {
            if let Frame::RstStream(r) = frame {
                assert_ne!(
                    r.stream_id.value(),
                    stream,
                    "unexpected {}",
                    describe(frame)
                );
            }
        }
    }

    /// Reads for `d`: no GOAWAY, no RST_STREAM, no close.
    pub fn expect_no_error_for(&mut self, d: Duration) -> Vec<Frame> {
        self.expect_quiet_for(d, |f| !matches!(f, Frame::GoAway(_) | Frame::RstStream(_)))
    }

    /// Reads for `d`: nothing arrives but frames `allowed` accepts, and
    /// the connection stays open. Returns what came.
    pub fn expect_quiet_for(
        &mut self,
        d: Duration,
        allowed: impl Fn(&Frame) -> bool,
    ) -> Vec<Frame> {
        let deadline = Instant::now() + d;
        let mut seen = Vec::new();
        loop {
            match self.next_event(deadline) {
                Event::Timeout => return seen,
                Event::Frame(frame) if allowed(&frame) => seen.push(frame),
                Event::Frame(frame) => panic!("unexpected {}", describe(&frame)),
                Event::Closed => panic!("the server closed the connection"),
            }
        }
    }
}

/// The `:status` of response HEADERS (which must come first).
pub fn status(headers: &Headers) -> u16 {
    let fields = headers.block.fields().cloned().unwrap_or_default();
    fields
        .first()
        .filter(|f| &f.name[..] == b":status")
        .and_then(|f| std::str::from_utf8(&f.value).ok()?.parse().ok())
        .unwrap_or_else(|| panic!("response without :status first: {fields:?}"))
}

/// `Some(frame)` if it is on `stream` and `want` accepts it; panics on a
/// RST_STREAM for `stream` or a GOAWAY.
fn stream_frame(frame: &Frame, stream: u32, want: impl Fn(&Frame) -> bool) -> Option<Frame> {
    match frame {
        Frame::RstStream(r) if r.stream_id.value() == stream => {
            panic!("stream {stream} was reset: {}", describe(frame))
        }
        Frame::GoAway(_) => panic!("connection error: {}", describe(frame)),
        f if f.stream_id().value() == stream && want(f) => Some(f.clone()),
        _ => None,
    }
}

/// RFC 9113 §8.2, §8.3.2: a response's field section: `:status` only as
/// pseudo-header, first; lower-case names; no connection-specific fields.
pub fn assert_valid_response_fields(fields: &[HeaderField]) {
    for (i, f) in fields.iter().enumerate() {
        let name = &f.name[..];
        if name.starts_with(b":") {
            assert!(
                i == 0 && name == b":status",
                "only :status, first, may be a pseudo-header in a response: {fields:?}"
            );
        }
        assert!(
            !name.iter().any(u8::is_ascii_uppercase),
            "upper-case field name in a response: {fields:?}"
        );
        for banned in [
            &b"connection"[..],
            b"keep-alive",
            b"proxy-connection",
            b"transfer-encoding",
            b"upgrade",
        ] {
            assert_ne!(name, banned, "connection-specific field in a response");
        }
    }
}
