//! One client call: its state as the connection's session fills it in
//! (response headers, messages, trailers, or a failure), the blocking waits
//! on it, completion handles with callbacks, and the streaming call object.
//!
//! Every way a call can end maps to a status: trailers (or a trailers-only
//! response) give the server's; RST_STREAM codes map per the gRPC spec
//! (CANCEL → CANCELLED, REFUSED_STREAM → UNAVAILABLE, …); a GOAWAY above
//! our stream, a lost connection or a refused connect give UNAVAILABLE; our
//! deadline gives DEADLINE_EXCEEDED; a message whose compressed flag the
//! response's `grpc-encoding` does not back (none named, `identity`, or one
//! we cannot decompress) gives INTERNAL, as in grpc-go.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use framer::hpack::HeaderList;
use framer::Reason;
use parking_lot::{Condvar, Mutex};

use crate::backlog::Backlog;
use crate::conn::{Command, QuotaError, ResponseHead, StreamKey, WriteQuota, DEFAULT_WRITE_QUOTA};
use crate::deadline::Expire;
use crate::grpc::{self, Code, Encoding, MessageDecoder, Metadata, RawMessage, Status};
use crate::runtime::ConnHandle;

type Callback = Box<dyn FnOnce(&Status) + Send>;

/// A streaming call's per-message callback: `Ok(Some(message))` per
/// response, then once `Ok(None)` (clean end) or `Err(status)`.
pub(crate) type MessageCallback = Box<dyn FnMut(Result<Option<Bytes>, Status>) + Send>;

fn end_result(status: &Status) -> Result<Option<Bytes>, Status> {
    if status.code() == Code::Ok {
        Ok(None)
    } else {
        Err(status.clone())
    }
}

/// The response's `grpc-encoding`, as it bears on reading its messages.
/// Only a message with the compressed flag set needs a decompressor: an
/// uncompressed one reads the same whatever the headers name.
#[derive(Debug)]
enum ResponseEncoding {
    /// One we know; `Identity` when the headers name none. A compressed
    /// message under `Identity` is a protocol error: nothing says how to
    /// decompress it.
    Known(Encoding),
    /// One we have no decompressor for (its name, for the error).
    Unknown(String),
}

impl Default for ResponseEncoding {
    /// Before the response headers: none named.
    fn default() -> ResponseEncoding {
        ResponseEncoding::Known(Encoding::Identity)
    }
}

impl ResponseEncoding {
    /// The encoding `fields` (the response headers) name.
    fn from_fields(fields: &HeaderList) -> ResponseEncoding {
        match fields.iter().find(|f| f.name == "grpc-encoding") {
            None => ResponseEncoding::Known(Encoding::Identity),
            Some(f) => match Encoding::from_header(&f.value) {
                Some(encoding) => ResponseEncoding::Known(encoding),
                None => ResponseEncoding::Unknown(String::from_utf8_lossy(&f.value).into_owned()),
            },
        }
    }

    /// The payload of `message`, decompressed if its flag says so (at
    /// most `max` octets); INTERNAL if nothing backs the flag (grpc-go's
    /// `checkRecvPayload`), RESOURCE_EXHAUSTED if decompressing fails.
    fn payload(&self, message: RawMessage, max: usize) -> Result<Bytes, Status> {
        if !message.compressed {
            return Ok(message.payload);
        }
        match self {
            ResponseEncoding::Known(Encoding::Identity) => Err(Status::internal(
                "grpc: compressed flag set with identity or empty encoding",
            )),
            ResponseEncoding::Known(encoding) => grpc::decompress(*encoding, &message.payload, max)
                .map_err(|e| {
                    Status::resource_exhausted(format!("failed to decompress the response: {e}"))
                }),
            ResponseEncoding::Unknown(name) => Err(Status::internal(format!(
                "grpc: a compressed message in grpc-encoding \"{}\", which this client \
                 has no decompressor for",
                name.escape_default()
            ))),
        }
    }
}

#[derive(Default)]
struct State {
    headers: Option<Metadata>,
    messages: VecDeque<(Bytes, usize)>,
    decoder: Option<MessageDecoder>,
    encoding: ResponseEncoding,
    /// Published: waiters return.
    status: Option<Status>,
    /// Decided (first completion wins); the callback may still be running.
    ending: Option<Status>,
    trailers: Metadata,
    callback: Option<Callback>,
    /// Messages go here instead of `messages` once set. Whoever takes it
    /// out (to call it without the lock) puts it back, or delivers the end
    /// if the call ended meanwhile.
    on_message: Option<MessageCallback>,
    /// The message callback is registered (it may be out being called).
    message_mode: bool,
}

/// The shared state of one client call.
pub(crate) struct ClientCall {
    pub(crate) key: StreamKey,
    pub(crate) handle: ConnHandle,
    pub(crate) quota: Arc<WriteQuota>,
    state: Mutex<State>,
    cond: Condvar,
    max_recv: usize,
    max_send: usize,
    send_encoding: Encoding,
    /// Messages waiting for the reader, and window withheld for them.
    backlog: Backlog,
    /// The server never saw the stream (dropped before its HEADERS left,
    /// REFUSED_STREAM): safe to retry transparently.
    unsent: std::sync::atomic::AtomicBool,
    /// The channel's in-flight counter, decremented when the call ends.
    inflight: Mutex<Option<Arc<std::sync::atomic::AtomicUsize>>>,
}

impl ClientCall {
    pub(crate) fn new(
        key: StreamKey,
        handle: ConnHandle,
        max_recv: usize,
        max_send: usize,
        send_encoding: Encoding,
    ) -> ClientCall {
        ClientCall {
            key,
            handle,
            quota: Arc::new(WriteQuota::new(DEFAULT_WRITE_QUOTA)),
            state: Mutex::new(State {
                decoder: Some(MessageDecoder::new(max_recv)),
                ..State::default()
            }),
            cond: Condvar::new(),
            max_recv,
            max_send,
            send_encoding,
            backlog: Backlog::new(max_recv),
            unsent: std::sync::atomic::AtomicBool::new(false),
            inflight: Mutex::new(None),
        }
    }

    // --- from the connection's session (loop thread, connection locked) ---

    pub(crate) fn on_response(&self, head: ResponseHead, end_stream: bool) -> Option<usize> {
        if (100..200).contains(&head.status) {
            return None; // informational
        }
        let mut state = self.state.lock();
        if end_stream {
            // Trailers-only (or an HTTP error without a body).
            let status = if head.fields.iter().any(|f| f.name == "grpc-status") {
                Status::from_trailers(&head.fields)
            } else {
                http_status(head.status)
            };
            state.trailers = Metadata::from_headers(&head.fields);
            drop(state);
            self.complete(status);
            return None;
        }
        if head.status != 200 {
            drop(state);
            self.complete(http_status(head.status));
            return None;
        }
        let content_type = head
            .fields
            .iter()
            .find(|f| f.name == "content-type")
            .map(|f| f.value.clone());
        if !content_type
            .as_deref()
            .is_some_and(|v| v.starts_with(b"application/grpc"))
        {
            drop(state);
            self.complete(Status::unknown("the response is not gRPC (content-type)"));
            return None;
        }
        state.encoding = ResponseEncoding::from_fields(&head.fields);
        state.headers = Some(Metadata::from_headers(&head.fields));
        drop(state);
        self.cond.notify_all();
        None
    }

    /// DATA arrived; returns the bytes whose window may reopen now.
    pub(crate) fn on_data(&self, data: Bytes) -> usize {
        let n = data.len();
        let release = self.backlog.on_arrival(n);
        let mut state = self.state.lock();
        if state.ending.is_some() {
            return n;
        }
        let mut failure = None;
        // Messages for the callback: the usual one frame = one message needs
        // no allocation; more spill into `more`.
        let mut first: Option<Bytes> = None;
        let mut more = Vec::new();
        let inner = &mut *state;
        if let Some(decoder) = inner.decoder.as_mut() {
            decoder.push(data);
            loop {
                match decoder.next() {
                    Ok(Some(message)) => {
                        let wire = 5 + message.payload.len();
                        let payload = match inner.encoding.payload(message, self.max_recv) {
                            Ok(payload) => payload,
                            Err(status) => {
                                failure = Some(status);
                                break;
                            }
                        };
                        if inner.message_mode {
                            match first {
                                None => first = Some(payload),
                                Some(_) => more.push(payload),
                            }
                        } else {
                            inner.messages.push_back((payload, wire));
                            self.backlog.queued(wire);
                        }
                    }
                    Ok(None) => break,
                    Err(grpc::MessageError::TooLarge { len, max }) => {
                        failure = Some(Status::resource_exhausted(format!(
                            "grpc: received message larger than max ({len} vs. {max})"
                        )));
                        break;
                    }
                    Err(e) => {
                        failure = Some(Status::internal(format!("grpc: {e}")));
                        break;
                    }
                }
            }
        }
        let callback = match first {
            Some(_) => inner.on_message.take(),
            None => None,
        };
        drop(state);
        if let Some(callback) = callback {
            self.deliver_messages(callback, first.into_iter().chain(more));
        }
        self.cond.notify_all();
        if let Some(status) = failure {
            self.complete(status);
            let key = self.key;
            // We are in the session with the connection locked: queue it.
            let _ = self.handle.queue(Command::Reset {
                key,
                reason: Reason::CANCEL,
            });
            return n;
        }
        release
    }

    pub(crate) fn on_trailers(&self, fields: &HeaderList) {
        let status = Status::from_trailers(fields);
        self.state.lock().trailers = Metadata::from_headers(fields);
        self.complete(status);
    }

    pub(crate) fn on_reset(&self, reason: Reason) {
        self.complete(Status::new(
            Code::from_h2_reason(reason),
            format!("stream reset by the server: {reason}"),
        ));
    }

    /// Calls `callback` with `messages` (without the lock), then puts it
    /// back, or gives it the end if the call ended meanwhile.
    fn deliver_messages(
        &self,
        mut callback: MessageCallback,
        messages: impl IntoIterator<Item = Bytes>,
    ) {
        for message in messages {
            callback(Ok(Some(message)));
        }
        let mut state = self.state.lock();
        match state.ending.clone() {
            Some(status) => {
                drop(state);
                callback(end_result(&status));
            }
            None => state.on_message = Some(callback),
        }
    }

    /// The application took a queued message of `wire` bytes: reopen the
    /// window withheld for it, if any (not from the loop thread).
    fn consumed(&self, wire: usize) {
        let release = self.backlog.consumed(wire);
        if release > 0 {
            let key = self.key;
            self.handle.release_capacity(key, release);
        }
    }

    /// Sends every later response message to `callback` instead of the
    /// queue `recv` reads (messages already queued go first, from this
    /// thread), and then the end.
    pub(crate) fn set_on_message(&self, mut callback: MessageCallback) {
        let mut state = self.state.lock();
        loop {
            if let Some((message, wire)) = state.messages.pop_front() {
                drop(state);
                self.consumed(wire);
                callback(Ok(Some(message)));
                state = self.state.lock();
                continue;
            }
            if let Some(status) = state.ending.clone() {
                drop(state);
                callback(end_result(&status));
                return;
            }
            state.message_mode = true;
            state.on_message = Some(callback);
            return;
        }
    }

    /// Ends the call with `status` (first one wins) and runs the callback.
    /// The completion callback runs before the status is published, so a
    /// waiter that returns has seen its callback done.
    pub(crate) fn complete(&self, status: Status) {
        let (status, callback, on_message) = {
            let mut state = self.state.lock();
            if state.ending.is_some() {
                return;
            }
            // A clean end with a message cut short is an error.
            let status = if status.code() == Code::Ok
                && state.decoder.as_ref().is_some_and(|d| d.finish().is_err())
            {
                Status::internal("the response ended inside a message")
            } else {
                status
            };
            state.ending = Some(status.clone());
            // A message callback that is out being called gets the end
            // from whoever holds it (`deliver_messages`).
            let on_message = state.on_message.take();
            (status, state.callback.take(), on_message)
        };
        if let Some(inflight) = self.inflight.lock().take() {
            inflight.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
        }
        if let Some(callback) = callback {
            callback(&status);
        }
        self.state.lock().status = Some(status.clone());
        self.quota.close();
        self.cond.notify_all();
        if let Some(mut on_message) = on_message {
            on_message(end_result(&status));
        }
    }

    // --- from the application ----------------------------------------------

    pub(crate) fn send_message(
        &self,
        payload: &[u8],
        end: bool,
        deadline: Option<Instant>,
    ) -> Result<(), Status> {
        if payload.len() > self.max_send {
            return Err(Status::resource_exhausted(format!(
                "trying to send message larger than max ({} vs. {})",
                payload.len(),
                self.max_send
            )));
        }
        // One buffer: the 5-octet prefix and the (possibly compressed) body.
        let compressed;
        let body: &[u8] = match self.send_encoding {
            Encoding::Identity => payload,
            e => {
                compressed = grpc::compress(e, payload)
                    .map_err(|e| Status::internal(format!("compression failed: {e}")))?;
                &compressed
            }
        };
        let mut framed = BytesMut::with_capacity(5 + body.len());
        framed.extend_from_slice(&grpc::message_prefix(
            body.len(),
            self.send_encoding != Encoding::Identity,
        ));
        framed.extend_from_slice(body);
        if let Err(e) = crate::wait::acquire_blocking(&self.quota, framed.len(), deadline) {
            return Err(self.status().unwrap_or_else(|| match e {
                QuotaError::TimedOut => Status::deadline_exceeded("deadline exceeded"),
                QuotaError::Closed => Status::cancelled("the call ended"),
            }));
        }
        self.handle
            .send([Command::Data {
                key: self.key,
                data: framed.freeze(),
                end_stream: end,
            }])
            .map_err(|_| Status::unavailable("the connection is closed"))
    }

    pub(crate) fn close_send(&self) -> Result<(), Status> {
        self.handle
            .send([Command::Data {
                key: self.key,
                data: Bytes::new(),
                end_stream: true,
            }])
            .map_err(|_| Status::unavailable("the connection is closed"))
    }

    /// The final status, if the call has ended.
    pub(crate) fn status(&self) -> Option<Status> {
        self.state.lock().status.clone()
    }

    /// Waits for the next message; `Ok(None)` at a clean end.
    pub(crate) fn recv(&self, deadline: Option<Instant>) -> Result<Option<Bytes>, Status> {
        let mut state = self.state.lock();
        loop {
            if let Some((message, wire)) = state.messages.pop_front() {
                drop(state);
                self.consumed(wire);
                return Ok(Some(message));
            }
            if let Some(status) = &state.status {
                return if status.code() == Code::Ok {
                    Ok(None)
                } else {
                    Err(status.clone())
                };
            }
            if wait(&self.cond, &mut state, deadline) {
                drop(state);
                self.expire();
                state = self.state.lock();
            }
        }
    }

    /// Waits for the response headers (or the end).
    pub(crate) fn headers(&self, deadline: Option<Instant>) -> Result<Metadata, Status> {
        let mut state = self.state.lock();
        loop {
            if let Some(headers) = &state.headers {
                return Ok(headers.clone());
            }
            if let Some(status) = &state.status {
                return if status.code() == Code::Ok {
                    Ok(Metadata::new())
                } else {
                    Err(status.clone())
                };
            }
            if wait(&self.cond, &mut state, deadline) {
                drop(state);
                self.expire();
                state = self.state.lock();
            }
        }
    }

    /// Waits for the end; the status and trailers.
    pub(crate) fn finish(&self, deadline: Option<Instant>) -> (Status, Metadata) {
        let mut state = self.state.lock();
        loop {
            if let Some(status) = &state.status {
                return (status.clone(), state.trailers.clone());
            }
            if wait(&self.cond, &mut state, deadline) {
                drop(state);
                self.expire();
                state = self.state.lock();
            }
        }
    }

    pub(crate) fn on_complete(&self, callback: Callback) {
        let mut state = self.state.lock();
        match state.ending.clone() {
            Some(status) => {
                drop(state);
                callback(&status);
            }
            None => state.callback = Some(callback),
        }
    }

    /// The application gives up (drop, cancel): RST_STREAM(CANCEL).
    pub(crate) fn cancel(&self, status: Status) {
        if self.state.lock().ending.is_some() {
            return;
        }
        self.complete(status);
        let key = self.key;
        let _ = self.handle.send([Command::Reset {
            key,
            reason: Reason::CANCEL,
        }]);
    }

    pub(crate) fn trailers(&self) -> Metadata {
        self.state.lock().trailers.clone()
    }

    /// Counts the call in `inflight` until it ends (idle timeout).
    pub(crate) fn track(&self, inflight: Arc<std::sync::atomic::AtomicUsize>) {
        inflight.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        *self.inflight.lock() = Some(inflight);
    }

    /// The server never saw this stream.
    pub(crate) fn mark_unsent(&self) {
        self.unsent
            .store(true, std::sync::atomic::Ordering::Release);
    }

    pub(crate) fn was_unsent(&self) -> bool {
        self.unsent.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Response headers arrived: the call is committed (gRFC A6: no retry).
    pub(crate) fn committed(&self) -> bool {
        self.state.lock().headers.is_some()
    }

    /// The unary result given the final `status`, without waiting (for the
    /// completion callback, which runs before the status is published).
    pub(crate) fn take_unary(&self, status: &Status) -> Result<Bytes, Status> {
        if status.code() != Code::Ok {
            return Err(status.clone());
        }
        let mut state = self.state.lock();
        match (state.messages.pop_front(), state.messages.is_empty()) {
            (Some((message, _)), true) => Ok(message),
            (None, _) => Err(Status::internal(
                "the server sent no response message for a unary call",
            )),
            (Some(_), false) => Err(Status::internal(
                "the server sent more than one response message for a unary call",
            )),
        }
    }
}

impl crate::deadline::Expire for ClientCall {
    fn expire(&self) {
        self.cancel(Status::deadline_exceeded("deadline exceeded"));
    }
}

/// Waits on `cond` until notified or `deadline`; true if the deadline passed.
fn wait(
    cond: &Condvar,
    state: &mut parking_lot::MutexGuard<'_, State>,
    deadline: Option<Instant>,
) -> bool {
    match deadline {
        Some(deadline) => {
            cond.wait_until(state, deadline).timed_out() && Instant::now() >= deadline
        }
        None => {
            cond.wait(state);
            false
        }
    }
}

/// A non-200 HTTP status with no grpc-status (gRPC's HTTP mapping).
fn http_status(status: u16) -> Status {
    Status::new(
        Code::from_http_status(status),
        format!("unexpected HTTP status code received from server: {status}"),
    )
}
