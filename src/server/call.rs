//! One call on the server: the state its handler, the connection's session
//! and the loop share ([`CallShared`]), and the handler's view of it
//! ([`Context`], a cheap handle on that state).
//!
//! Completion happens exactly once, under the call's lock: the handler's
//! result, a deadline, a client reset or a protocol failure, whichever
//! comes first; later attempts are no-ops and the handler's further sends
//! fail with CANCELLED.
//!
//! Sending never waits here: [`CallShared::send_message`] takes the
//! stream's write quota if any is left and otherwise says so (the callback
//! core turns that into "not ready, `on_ready` comes later"; the blocking
//! sink of [`super::blocking`] into a wait on a worker thread).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use framer::hpack::{HeaderField, HeaderList};
use parking_lot::{Condvar, Mutex};

use super::links::ConnLink;
use crate::backlog::Backlog;
use crate::conn::{Command, QuotaError, Slot, StreamKey, Wake, WriteQuota};
use crate::grpc::{self, Code, Encoding, Metadata, Status};

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

/// What the request said about the call.
pub(crate) struct RequestFacts {
    pub(crate) peer: SocketAddr,
    pub(crate) metadata: Metadata,
    pub(crate) deadline: Option<Instant>,
    pub(crate) method: String,
    pub(crate) encodings: CallEncodings,
}

#[derive(Default)]
struct CallState {
    headers_sent: bool,
    finished: bool,
    headers: Metadata,
    trailers: Metadata,
}

/// Why a message could not be queued.
pub(crate) enum SendRefused {
    /// The stream's write quota is spent: `waiter` will be woken.
    Full,
    /// The call is over (or the message is not sendable): this status.
    Failed(Status),
}

/// The state of one call, shared by its handler (any thread), the
/// connection's session and the loop.
pub(crate) struct CallShared {
    pub(crate) key: StreamKey,
    /// The connection: sends, and work for the session on the loop
    /// (window releases, readiness).
    pub(crate) link: Arc<ConnLink>,
    cancelled: AtomicBool,
    state: Mutex<CallState>,
    /// Wakes `Context::sleep` when the call is cancelled.
    cancel_cond: Condvar,
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
    /// Request bytes taken from the connection and not yet by the handler.
    pub(crate) backlog: Backlog,
    /// The connection's handler slot, held until the call is over (or
    /// handed to a blocking handler's job, which holds it until the
    /// handler returns).
    slot: Mutex<Option<Slot>>,
    /// Who hears that the quota has room again (set by the callback core).
    pub(crate) ready_waiter: OnceLock<Arc<dyn Wake>>,
    peer: SocketAddr,
    metadata: Metadata,
    deadline: Option<Instant>,
    method: String,
}

impl CallShared {
    pub(crate) fn new(
        key: StreamKey,
        link: Arc<ConnLink>,
        quota: Option<Arc<WriteQuota>>,
        max_send: usize,
        backlog_limit: usize,
        slot: Option<Slot>,
        facts: RequestFacts,
    ) -> CallShared {
        CallShared {
            key,
            link,
            cancelled: AtomicBool::new(false),
            state: Mutex::new(CallState::default()),
            cancel_cond: Condvar::new(),
            quota,
            max_send,
            send_encoding: AtomicU8::new(encoding_code(facts.encodings.send)),
            plain_messages: AtomicBool::new(false),
            accepts_gzip: facts.encodings.accepts_gzip,
            request_encoding: facts.encodings.request,
            backlog: Backlog::new(backlog_limit),
            slot: Mutex::new(slot),
            ready_waiter: OnceLock::new(),
            peer: facts.peer,
            metadata: facts.metadata,
            deadline: facts.deadline,
            method: facts.method,
        }
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.state.lock().finished
    }

    /// Takes the handler slot (a blocking handler's job holds it).
    pub(crate) fn take_slot(&self) -> Option<Slot> {
        self.slot.lock().take()
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

    /// Checks and frames one response message.
    pub(crate) fn frame_for_send(&self, payload: &[u8]) -> Result<Bytes, Status> {
        self.check_send(payload)?;
        self.frame(payload)
    }

    /// Frames `payload` and takes write quota for it without waiting:
    /// `Full` registers `waiter` (woken when an acquire may succeed).
    pub(crate) fn prepare(
        &self,
        payload: &[u8],
        waiter: &Arc<dyn Wake>,
    ) -> Result<Bytes, SendRefused> {
        let framed = self.frame_for_send(payload).map_err(SendRefused::Failed)?;
        if let Some(quota) = &self.quota {
            match quota.poll_acquire(framed.len(), waiter) {
                Ok(true) => {}
                Ok(false) => return Err(SendRefused::Full),
                Err(_) => {
                    return Err(SendRefused::Failed(Status::cancelled(
                        "the call was cancelled",
                    )))
                }
            }
        }
        Ok(framed)
    }

    /// Takes `n` bytes of write quota, waiting (on this thread, which must
    /// not be a loop thread) while it is spent, until the call's deadline.
    pub(crate) fn acquire_blocking(&self, n: usize) -> Result<(), Status> {
        let Some(quota) = &self.quota else {
            return Ok(());
        };
        if crate::runtime::on_loop_thread() {
            // Nothing may wait on a loop: take it if there is room, else
            // say so (blocking sinks belong on worker threads).
            return match quota.try_acquire(n) {
                Ok(true) => Ok(()),
                Ok(false) => Err(Status::resource_exhausted(
                    "the stream's send queue is full and a blocking send on an event-loop \
                     thread cannot wait (use ServerCall from a callback handler)",
                )),
                Err(_) => Err(Status::cancelled("the call was cancelled")),
            };
        }
        crate::wait::acquire_blocking(quota, n, self.deadline).map_err(|e| match e {
            QuotaError::TimedOut => Status::deadline_exceeded("deadline exceeded"),
            QuotaError::Closed => Status::cancelled("the call was cancelled"),
        })
    }

    /// True if another message may be queued now; otherwise `waiter` is
    /// registered and woken once it may. A closed quota (the stream is
    /// gone) is never ready: the cancellation follows.
    pub(crate) fn poll_ready(&self, waiter: &Arc<dyn Wake>) -> bool {
        match &self.quota {
            Some(quota) => quota.poll_ready(waiter).unwrap_or(false),
            None => true,
        }
    }

    /// Queues a framed message whose quota is taken (headers first if
    /// they have not gone).
    pub(crate) fn queue_framed(&self, framed: Bytes) -> Result<(), Status> {
        let mut items = Vec::with_capacity(2);
        {
            let mut state = self.state.lock();
            if state.finished || self.is_cancelled() {
                return Err(Status::cancelled("the call was cancelled"));
            }
            if !state.headers_sent {
                state.headers_sent = true;
                items.push(Command::Headers {
                    key: self.key,
                    fields: self.response_headers(&state),
                    end_stream: false,
                });
            }
            items.push(Command::Data {
                key: self.key,
                data: framed,
                end_stream: false,
            });
        }
        self.link
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
        let item = Command::Headers {
            key: self.key,
            fields: self.response_headers(&state),
            end_stream: false,
        };
        drop(state);
        self.link
            .send([item])
            .map_err(|_| Status::unavailable("the connection is closed"))
    }

    /// Ends the call: an optional last message, then the status in the
    /// trailers (or a trailers-only response). Exactly once; returns false
    /// if the call had already ended. The handler slot is freed just
    /// before the last frame goes out: a client that sees the stream end
    /// may open the next one.
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
                items.push(Command::Headers {
                    key: self.key,
                    fields: self.response_headers(&state),
                    end_stream: false,
                });
            }
            if let Some(framed) = framed {
                items.push(Command::Data {
                    key: self.key,
                    data: framed,
                    end_stream: false,
                });
            }
            let metadata = merge(&state.trailers, status.metadata());
            let status = status.with_metadata(metadata);
            status.to_trailers(&mut trailers);
            items.push(Command::Headers {
                key: self.key,
                fields: trailers,
                end_stream: true,
            });
            items
        };
        drop(self.take_slot());
        let _ = self.link.send(items);
        true
    }

    /// The call is over for the handler (client reset, deadline,
    /// connection closed): its sends fail with CANCELLED, its quota
    /// closes, a sleeping handler wakes. Returns false if it already was.
    pub(crate) fn cancel(&self) -> bool {
        if self.cancelled.swap(true, Ordering::AcqRel) {
            return false;
        }
        if let Some(quota) = &self.quota {
            quota.close();
        }
        drop(self.take_slot());
        let _guard = self.state.lock();
        self.cancel_cond.notify_all();
        true
    }

    /// Marks the call finished without sending anything (the stream is
    /// gone).
    pub(crate) fn mark_finished(&self) {
        self.state.lock().finished = true;
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
/// metadata. Cheap to clone (one shared record per call).
#[derive(Clone)]
pub struct Context {
    pub(crate) call: Arc<CallShared>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("method", &self.call.method)
            .field("peer", &self.call.peer)
            .field("deadline", &self.call.deadline)
            .finish_non_exhaustive()
    }
}

impl Context {
    /// The client's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.call.peer
    }

    /// The request metadata (custom headers; reserved ones are not here).
    pub fn metadata(&self) -> &Metadata {
        &self.call.metadata
    }

    /// The full method name, `/package.Service/Method`.
    pub fn method(&self) -> &str {
        &self.call.method
    }

    /// The call's deadline, from the client's `grpc-timeout`.
    pub fn deadline(&self) -> Option<Instant> {
        self.call.deadline
    }

    /// Time left before the deadline (`None`: no deadline).
    pub fn time_remaining(&self) -> Option<Duration> {
        self.call
            .deadline
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

    /// Waits up to `d` (blocking handlers only), returning early (false)
    /// if the call is cancelled: the cancellation wakes it. On an event
    /// loop thread it does not wait (nothing may block a loop) and
    /// returns whether the call is still live.
    pub fn sleep(&self, d: Duration) -> bool {
        if crate::runtime::on_loop_thread() {
            return !self.is_cancelled();
        }
        let end = Instant::now() + d;
        let mut state = self.call.state.lock();
        while !self.is_cancelled() {
            if self
                .call
                .cancel_cond
                .wait_until(&mut state, end)
                .timed_out()
            {
                break;
            }
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

/// The status a handler's error becomes; `Code::Ok` from a handler error is
/// turned into UNKNOWN (an error must not look like success).
pub(crate) fn error_status(status: Status) -> Status {
    if status.code() == Code::Ok {
        Status::unknown("handler returned an error with code OK")
    } else {
        status
    }
}
