//! One call on the server: the state shared by its handler, the
//! connection's session and the deadline timer ([`CallShared`]), the
//! handler's [`Context`], and the blocking request stream and response sink.
//!
//! Completion happens exactly once, under the call's lock: the handler's
//! result, a deadline, a client reset or a protocol failure, whichever
//! comes first; later attempts are no-ops and the handler's further sends
//! fail with CANCELLED.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use crossbeam_channel::{Receiver, Sender};
use framer::hpack::{HeaderField, HeaderList};
use framer::Reason;
use loopy::{Item, StreamKey, WriteQuota};
use parking_lot::Mutex;

use super::service::Codec;
use crate::backlog::Backlog;
use crate::grpc::{self, Code, Encoding, Metadata, Status};
use crate::runtime::ConnHandle;

/// What the session hands a streaming handler.
pub(crate) enum Incoming {
    /// One message and the wire bytes it took (released when consumed).
    Message(Bytes, usize),
    /// The client half-closed.
    End,
    /// The call failed (reset, deadline, bad message).
    Error(Status),
}

/// The compression facts of one call, from its request headers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CallEncodings {
    /// The server's default response encoding, if the client accepts it.
    pub(crate) send: Encoding,
    /// Whether the client's grpc-accept-encoding lists gzip.
    pub(crate) accepts_gzip: bool,
    /// The client's grpc-encoding.
    pub(crate) request: Encoding,
}

#[derive(Default)]
struct CallState {
    headers_sent: bool,
    finished: bool,
    headers: Metadata,
    trailers: Metadata,
}

/// The state of one call, shared by the handler thread, the connection's
/// session and the deadline timer.
pub(crate) struct CallShared {
    pub(crate) key: StreamKey,
    pub(crate) handle: ConnHandle,
    cancelled: AtomicBool,
    state: Mutex<CallState>,
    quota: Option<Arc<WriteQuota>>,
    max_send: usize,
    /// The response encoding (`encoding_code`): the server's default, or
    /// the handler's choice (`Context::set_send_compression`), changed only
    /// under the state lock before the headers go. Atomic so framing a
    /// message reads it without taking the lock.
    send_encoding: AtomicU8,
    /// True after `Context::set_message_compression(false)`: messages go
    /// out uncompressed (flag 0) even on a compressed call.
    plain_messages: AtomicBool,
    /// Whether the client's grpc-accept-encoding lists gzip.
    accepts_gzip: bool,
    /// The client's grpc-encoding (what its compressed messages use).
    request_encoding: Encoding,
    /// Streaming calls: where failures reach a handler blocked in `recv`.
    incoming: Mutex<Option<Sender<Incoming>>>,
    /// Streaming calls: request bytes waiting for the handler.
    pub(crate) backlog: Backlog,
}

impl CallShared {
    pub(crate) fn new(
        key: StreamKey,
        handle: ConnHandle,
        quota: Option<Arc<WriteQuota>>,
        max_send: usize,
        encodings: CallEncodings,
        backlog_limit: usize,
    ) -> CallShared {
        CallShared {
            key,
            handle,
            cancelled: AtomicBool::new(false),
            state: Mutex::new(CallState::default()),
            quota,
            max_send,
            send_encoding: AtomicU8::new(encoding_code(encodings.send)),
            plain_messages: AtomicBool::new(false),
            accepts_gzip: encodings.accepts_gzip,
            request_encoding: encodings.request,
            incoming: Mutex::new(None),
            backlog: Backlog::new(backlog_limit),
        }
    }

    pub(crate) fn set_incoming(&self, tx: Sender<Incoming>) {
        *self.incoming.lock() = Some(tx);
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.state.lock().finished
    }

    /// The call's response encoding.
    fn send_encoding(&self) -> Encoding {
        encoding_of(self.send_encoding.load(Ordering::Acquire))
    }

    fn response_headers(&self, state: &CallState) -> HeaderList {
        let mut fields = vec![
            HeaderField::new(":status", "200"),
            HeaderField::new("content-type", "application/grpc"),
            HeaderField::new("grpc-accept-encoding", grpc::accept_encoding_header()),
        ];
        let encoding = self.send_encoding();
        if encoding != Encoding::Identity {
            fields.push(HeaderField::new("grpc-encoding", encoding.as_str()));
        }
        state.headers.to_headers(&mut fields);
        fields
    }

    /// The encoding the next message goes out in (identity when the
    /// handler turned message compression off).
    fn message_encoding(&self) -> Encoding {
        if self.plain_messages.load(Ordering::Acquire) {
            Encoding::Identity
        } else {
            self.send_encoding()
        }
    }

    /// The length-prefixed (and, if negotiated, compressed) message.
    fn frame(&self, payload: &[u8]) -> Result<Bytes, Status> {
        // Compressed bodies are made apart; a plain one is copied once,
        // straight after its prefix.
        let compressed_body;
        let (compressed, body): (bool, &[u8]) = match self.message_encoding() {
            Encoding::Identity => (false, payload),
            encoding => {
                compressed_body = grpc::compress(encoding, payload).map_err(|e| {
                    Status::internal(format!("failed to compress the message: {e}"))
                })?;
                (true, &compressed_body)
            }
        };
        if body.len() > grpc::message::MAX_WIRE_LEN {
            return Err(Status::resource_exhausted(format!(
                "a message of {} bytes does not fit a gRPC frame",
                body.len()
            )));
        }
        let mut framed = BytesMut::with_capacity(5 + body.len());
        framed.extend_from_slice(&grpc::message_prefix(body.len(), compressed));
        framed.extend_from_slice(body);
        Ok(framed.freeze())
    }

    fn check_send(&self, payload: &[u8]) -> Result<(), Status> {
        if self.is_cancelled() {
            return Err(Status::cancelled("the call was cancelled"));
        }
        if payload.len() > self.max_send {
            return Err(Status::resource_exhausted(format!(
                "trying to send message larger than max ({} vs. {})",
                payload.len(),
                self.max_send
            )));
        }
        Ok(())
    }

    /// Sends one response message, waiting while the stream's write quota
    /// is spent (flow-control backpressure).
    pub(crate) fn send_message(
        &self,
        payload: &[u8],
        deadline: Option<Instant>,
    ) -> Result<(), Status> {
        self.check_send(payload)?;
        let framed = self.frame(payload)?;
        if let Some(quota) = &self.quota {
            crate::wait::acquire_blocking(quota, framed.len(), deadline).map_err(|e| match e {
                loopy::QuotaError::TimedOut => Status::deadline_exceeded("deadline exceeded"),
                loopy::QuotaError::Closed => Status::cancelled("the call was cancelled"),
            })?;
        }
        let mut items = Vec::with_capacity(2);
        {
            let mut state = self.state.lock();
            if state.finished || self.is_cancelled() {
                return Err(Status::cancelled("the call was cancelled"));
            }
            if !state.headers_sent {
                state.headers_sent = true;
                items.push(Item::Headers {
                    key: self.key,
                    fields: self.response_headers(&state),
                    end_stream: false,
                });
            }
            items.push(Item::Data {
                key: self.key,
                data: framed,
                end_stream: false,
            });
        }
        self.handle
            .send(items)
            .map_err(|_| Status::unavailable("the connection is closed"))
    }

    /// Sends the response headers now (before any message).
    pub(crate) fn send_headers(&self) -> Result<(), Status> {
        let mut state = self.state.lock();
        if state.finished || self.is_cancelled() {
            return Err(Status::cancelled("the call was cancelled"));
        }
        if state.headers_sent {
            return Ok(());
        }
        state.headers_sent = true;
        let item = Item::Headers {
            key: self.key,
            fields: self.response_headers(&state),
            end_stream: false,
        };
        drop(state);
        self.handle
            .send([item])
            .map_err(|_| Status::unavailable("the connection is closed"))
    }

    /// Ends the call: an optional last message, then the status in the
    /// trailers (or a trailers-only response). Exactly once; returns false
    /// if the call had already ended.
    pub(crate) fn finish(&self, message: Option<&[u8]>, status: Status) -> bool {
        let mut status = status;
        let framed = match message {
            Some(payload) => match self.check_send(payload).and_then(|()| self.frame(payload)) {
                Ok(framed) => Some(framed),
                Err(err) => {
                    status = err;
                    None
                }
            },
            None => None,
        };
        let items = {
            let mut state = self.state.lock();
            if state.finished {
                return false;
            }
            state.finished = true;
            let mut items = Vec::with_capacity(3);
            let mut trailers = Vec::with_capacity(4);
            if !state.headers_sent && framed.is_none() {
                // Trailers-only: one HEADERS with the status.
                trailers = self.response_headers(&state);
            } else if !state.headers_sent {
                state.headers_sent = true;
                items.push(Item::Headers {
                    key: self.key,
                    fields: self.response_headers(&state),
                    end_stream: false,
                });
            }
            if let Some(framed) = framed {
                items.push(Item::Data {
                    key: self.key,
                    data: framed,
                    end_stream: false,
                });
            }
            let metadata = merge(&state.trailers, status.metadata());
            let status = status.with_metadata(metadata);
            status.to_trailers(&mut trailers);
            items.push(Item::Headers {
                key: self.key,
                fields: trailers,
                end_stream: true,
            });
            items
        };
        let _ = self.handle.send(items);
        true
    }

    /// The client went away (reset, connection closed): the handler's
    /// blocked operations fail with CANCELLED, nothing more is sent.
    pub(crate) fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
        self.state.lock().finished = true;
        self.fail_incoming(Status::cancelled("the call was cancelled by the client"));
        if let Some(quota) = &self.quota {
            quota.close();
        }
    }

    fn fail_incoming(&self, status: Status) {
        if let Some(tx) = self.incoming.lock().take() {
            let _ = tx.send(Incoming::Error(status));
        }
    }
}

impl crate::deadline::Expire for CallShared {
    /// The deadline passed: the handler sees cancellation, the client gets
    /// DEADLINE_EXCEEDED in the trailers, and if it is still sending, the
    /// trailers are followed by RST_STREAM(NO_ERROR) (RFC 9113 §8.1: the
    /// response is complete, stop sending the request).
    ///
    /// NO_ERROR, not CANCEL, as grpc-go's and C-core's servers do: a
    /// C-core client that gets RST_STREAM(CANCEL) before its application
    /// has read the trailers reports CANCELLED instead of the
    /// DEADLINE_EXCEEDED the trailers carry (seen in the interop suite's
    /// timeout_on_sleeping_server, about half the runs). A call already
    /// finished is left alone.
    fn expire(&self) {
        if self.is_finished() {
            return;
        }
        self.cancelled.store(true, Ordering::Release);
        self.fail_incoming(Status::deadline_exceeded("deadline exceeded"));
        if let Some(quota) = &self.quota {
            quota.close();
        }
        if self.finish(None, Status::deadline_exceeded("deadline exceeded")) {
            let key = self.key;
            self.handle
                .with(|conn| conn.reset_after_response(key, Reason::NO_ERROR, Instant::now()));
        }
    }
}

/// An [`Encoding`] as the byte `CallShared::send_encoding` holds.
fn encoding_code(encoding: Encoding) -> u8 {
    match encoding {
        Encoding::Identity => 0,
        Encoding::Gzip => 1,
    }
}

/// The [`Encoding`] an [`encoding_code`] byte stands for.
fn encoding_of(code: u8) -> Encoding {
    match code {
        1 => Encoding::Gzip,
        _ => Encoding::Identity,
    }
}

/// `base` then `extra`, as one metadata set.
fn merge(base: &Metadata, extra: &Metadata) -> Metadata {
    let mut merged = base.clone();
    for (key, value) in extra.iter_raw() {
        merged.append_raw(key, value);
    }
    merged
}

/// What a handler knows about its call, and how it shapes the response
/// metadata.
pub struct Context {
    pub(crate) call: Arc<CallShared>,
    pub(crate) peer: SocketAddr,
    pub(crate) metadata: Metadata,
    pub(crate) deadline: Option<Instant>,
    pub(crate) method: String,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("method", &self.method)
            .field("peer", &self.peer)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl Context {
    /// The client's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// The request metadata (custom headers; reserved ones are not here).
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The full method name, `/package.Service/Method`.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The call's deadline, from the client's `grpc-timeout`.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Time left before the deadline (`None`: no deadline).
    pub fn time_remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// True once the client cancelled, the deadline passed, or the
    /// connection went away: stop working, the answer will not be sent.
    pub fn is_cancelled(&self) -> bool {
        self.call.is_cancelled()
    }

    /// Adds response header metadata (before the first message is sent).
    pub fn set_header(&self, metadata: &Metadata) {
        let mut state = self.call.state.lock();
        for (key, value) in metadata.iter_raw() {
            state.headers.append_raw(key, value);
        }
    }

    /// Adds trailer metadata (sent with the status).
    pub fn set_trailer(&self, metadata: &Metadata) {
        let mut state = self.call.state.lock();
        for (key, value) in metadata.iter_raw() {
            state.trailers.append_raw(key, value);
        }
    }

    /// Sends the response headers now, before any message.
    pub fn send_headers(&self) -> Result<(), Status> {
        self.call.send_headers()
    }

    /// The encoding the client declared for its messages (`grpc-encoding`;
    /// identity when it sent none). A message the client sent compressed
    /// arrives here already decompressed; this tells a handler whether
    /// the call was a compressed one (the interop `expect_compressed`
    /// check). An uncompressed message on a gzip call is still possible.
    pub fn request_encoding(&self) -> Encoding {
        self.call.request_encoding
    }

    /// Chooses this call's response compression, overriding the server's
    /// default (`ServerBuilder::send_compression`), as grpc-go's
    /// `SetSendCompressor`. Only before the response headers are sent, and
    /// only an encoding the client accepts; `Encoding::Identity` turns
    /// compression off for the call.
    ///
    /// ```
    /// use mio_grpc::grpc::Encoding;
    /// use mio_grpc::server::{Context, SetCompressionError};
    ///
    /// fn compress_if_possible(ctx: &Context) {
    ///     match ctx.set_send_compression(Encoding::Gzip) {
    ///         Ok(()) | Err(SetCompressionError::NotAccepted(_)) => {}
    ///         Err(SetCompressionError::HeadersSent) => unreachable!("set before sending"),
    ///     }
    /// }
    /// ```
    pub fn set_send_compression(&self, encoding: Encoding) -> Result<(), SetCompressionError> {
        let accepted = match encoding {
            Encoding::Identity => true,
            Encoding::Gzip => self.call.accepts_gzip,
        };
        if !accepted {
            return Err(SetCompressionError::NotAccepted(encoding));
        }
        let state = self.call.state.lock();
        if state.headers_sent {
            return Err(SetCompressionError::HeadersSent);
        }
        // Under the state lock, so the headers (built under it) and this
        // choice cannot cross.
        self.call
            .send_encoding
            .store(encoding_code(encoding), Ordering::Release);
        drop(state);
        Ok(())
    }

    /// Turns compression of the following response messages off (`false`)
    /// or back on (`true`) on a compressed call — C-core's
    /// `GRPC_WRITE_NO_COMPRESS` per message: an uncompressed message on a
    /// compressed call carries flag 0, which every gRPC peer accepts. No
    /// effect on an uncompressed call.
    pub fn set_message_compression(&self, on: bool) {
        self.call.plain_messages.store(!on, Ordering::Release);
    }

    /// Sleeps up to `d`, returning early (false) if the call is cancelled.
    pub fn sleep(&self, d: Duration) -> bool {
        let end = Instant::now() + d;
        while Instant::now() < end {
            if self.is_cancelled() {
                return false;
            }
            std::thread::sleep((end - Instant::now()).min(Duration::from_millis(5)));
        }
        !self.is_cancelled()
    }
}

/// Why [`Context::set_send_compression`] refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetCompressionError {
    /// The response headers (which name the encoding) are already sent.
    HeadersSent,
    /// The client's `grpc-accept-encoding` does not list this encoding.
    NotAccepted(Encoding),
}

impl std::fmt::Display for SetCompressionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SetCompressionError::HeadersSent => {
                f.write_str("the response headers are already sent")
            }
            SetCompressionError::NotAccepted(e) => {
                write!(f, "the client does not accept {} responses", e.as_str())
            }
        }
    }
}

impl std::error::Error for SetCompressionError {}

/// The request messages of a streaming call, as bytes.
pub struct RawRequests {
    rx: Receiver<Incoming>,
    call: Arc<CallShared>,
    done: bool,
}

impl std::fmt::Debug for RawRequests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawRequests")
            .field("done", &self.done)
            .finish()
    }
}

impl RawRequests {
    pub(crate) fn new(rx: Receiver<Incoming>, call: Arc<CallShared>) -> RawRequests {
        RawRequests {
            rx,
            call,
            done: false,
        }
    }

    /// The next request message; `Ok(None)` once the client half-closed.
    /// Blocks until a message arrives; fails with CANCELLED (or
    /// DEADLINE_EXCEEDED) if the call ends first.
    pub fn recv(&mut self) -> Result<Option<Bytes>, Status> {
        if self.done {
            return Ok(None);
        }
        match self.rx.recv() {
            Ok(Incoming::Message(message, wire)) => {
                let release = self.call.backlog.consumed(wire);
                if release > 0 {
                    let key = self.call.key;
                    self.call
                        .handle
                        .with(|conn| conn.release_capacity(key, release));
                }
                Ok(Some(message))
            }
            Ok(Incoming::End) => {
                self.done = true;
                Ok(None)
            }
            Ok(Incoming::Error(status)) => {
                self.done = true;
                Err(status)
            }
            Err(_) => {
                self.done = true;
                Err(Status::cancelled("the call was cancelled"))
            }
        }
    }
}

type DecodeFn<T> = Arc<dyn Fn(Bytes) -> Result<T, Status> + Send + Sync>;
type EncodeFn<T> = Arc<dyn Fn(&T, &mut BytesMut) -> Result<(), Status> + Send + Sync>;

/// A streaming call's requests, decoded with the method's codec.
pub struct RequestStream<T> {
    raw: RawRequests,
    decode: DecodeFn<T>,
}

impl<T> std::fmt::Debug for RequestStream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.raw.fmt(f)
    }
}

impl<T: Send + 'static> RequestStream<T> {
    pub(crate) fn new<C: Codec<Decode = T>>(raw: RawRequests, codec: Arc<C>) -> RequestStream<T> {
        RequestStream {
            raw,
            decode: Arc::new(move |bytes| codec.decode(bytes)),
        }
    }

    /// The next request; `Ok(None)` once the client half-closed.
    pub fn recv(&mut self) -> Result<Option<T>, Status> {
        match self.raw.recv()? {
            Some(bytes) => (self.decode)(bytes).map(Some),
            None => Ok(None),
        }
    }
}

impl<T: Send + 'static> Iterator for RequestStream<T> {
    type Item = Result<T, Status>;

    fn next(&mut self) -> Option<Self::Item> {
        self.recv().transpose()
    }
}

/// Where a streaming handler sends response messages, as bytes.
pub struct RawSink {
    call: Arc<CallShared>,
    deadline: Option<Instant>,
}

impl std::fmt::Debug for RawSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawSink")
            .field("key", &self.call.key)
            .finish()
    }
}

impl RawSink {
    pub(crate) fn new(call: Arc<CallShared>, deadline: Option<Instant>) -> RawSink {
        RawSink { call, deadline }
    }

    /// Sends one message. Blocks while the stream's buffered output is over
    /// its quota (the client reads slowly); fails once the call is over.
    pub fn send(&self, message: &[u8]) -> Result<(), Status> {
        self.call.send_message(message, self.deadline)
    }
}

/// A streaming call's responses, encoded with the method's codec.
pub struct ResponseSink<T> {
    raw: RawSink,
    encode: EncodeFn<T>,
}

impl<T> std::fmt::Debug for ResponseSink<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.raw.fmt(f)
    }
}

impl<T: Send + 'static> ResponseSink<T> {
    pub(crate) fn new<C: Codec<Encode = T>>(raw: RawSink, codec: Arc<C>) -> ResponseSink<T> {
        ResponseSink {
            raw,
            encode: Arc::new(move |item, dst| codec.encode(item, dst)),
        }
    }

    /// Sends one response (see [`RawSink::send`]).
    pub fn send(&self, item: &T) -> Result<(), Status> {
        let mut buf = BytesMut::new();
        (self.encode)(item, &mut buf)?;
        self.raw.send(&buf)
    }
}

/// The status a handler's error becomes; `Code::Ok` from a handler error is
/// turned into UNKNOWN (an error must not look like success).
pub(crate) fn error_status(status: Status) -> Status {
    if status.code() == Code::Ok {
        Status::unknown("handler returned an error with code OK")
    } else {
        status
    }
}
