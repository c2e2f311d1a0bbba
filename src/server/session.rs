//! The gRPC side of one connection, on its event loop: validates each
//! request (PROTOCOL-HTTP2.md), routes `:path` to a method, decodes the
//! length-prefixed messages across DATA frames under the receive limit,
//! and drives each call's handler: a reactor's callbacks (inline, or
//! posted to the callback pool), or a blocking handler on a bounded pool.
//!
//! Time is the loop's: call deadlines sit in the session's timer heap
//! (`Session::next_timeout`), and what other threads hand the session
//! (window releases, readiness) arrives through its [`ConnLink`] inbox,
//! drained in `Session::poll`. Nothing here waits.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use crossbeam_channel::Sender;
use framer::hpack::{HeaderField, HeaderList};
use framer::{Reason, StreamId};

use super::blocking::{self, Incoming};
use super::call::{CallEncodings, CallShared, Context, RequestFacts};
use super::links::{Cmd, ConnLink, ReadyWake};
use super::reactor::{self, Mailbox, MailboxWake, Reaction, ServerCall, ServerReactor, Signal};
use super::service::{Handler, MethodKind};
use super::ServerShared;
use crate::conn::{Command, ConnEvent, Connection, RequestHead, StreamKey, Wake};
use crate::grpc::{self, Encoding, MessageDecoder, Metadata, Status};
use crate::runtime::Session;

/// Who handles a call's events.
enum Runner {
    /// A reactor whose callbacks run here, on the loop.
    Inline(Box<dyn ServerReactor>),
    /// A reactor whose callbacks run on the callback pool, in order.
    Pooled(Arc<Mailbox>),
    /// A blocking unary or server-streaming handler, dispatched once the
    /// request is complete.
    Blocking(Handler),
    /// A blocking client- or bidi-streaming handler, running; its
    /// requests go through this channel.
    BlockingStream(Sender<Incoming>),
    /// Nothing more to deliver (finished, refused, panicked, cancelled).
    Done,
}

struct CallEntry {
    call: ServerCall,
    kind: MethodKind,
    decoder: MessageDecoder,
    encoding: Encoding,
    /// Unary and server-streaming: the request message, delivered at the
    /// half-close once it is known to be the only one.
    single: Option<Bytes>,
    runner: Runner,
}

impl CallEntry {
    fn collects(&self) -> bool {
        matches!(self.kind, MethodKind::Unary | MethodKind::ServerStreaming)
    }
}

/// One connection's calls.
pub(crate) struct GrpcSession {
    pub(crate) server: Arc<ServerShared>,
    pub(crate) link: Arc<ConnLink>,
    calls: HashMap<StreamKey, CallEntry>,
    /// Call deadlines (the loop's timer heap merges the earliest).
    deadlines: BinaryHeap<Reverse<(Instant, StreamKey)>>,
    /// The time of the last `poll` (the loop polls at the start of every
    /// service, before events are delivered): deadlines count from it.
    now: Instant,
}

impl Session for GrpcSession {
    fn on_event(&mut self, conn: &mut Connection, event: ConnEvent) {
        match event {
            ConnEvent::Request {
                id,
                head,
                end_stream,
            } => self.on_request(conn, id, head, end_stream),
            ConnEvent::Data {
                key,
                data,
                end_stream,
            } => self.on_data(conn, key, data, end_stream),
            ConnEvent::Trailers { key, .. } => self.on_end(conn, key),
            ConnEvent::Reset { key, .. } | ConnEvent::Dropped { key, .. } => {
                if let Some(mut entry) = self.calls.remove(&key) {
                    entry.call.call.mark_finished();
                    self.cancel(
                        &mut entry,
                        Status::cancelled("the call was cancelled by the client"),
                    );
                }
            }
            ConnEvent::Closed { key } => {
                if let Some(mut entry) = self.calls.remove(&key) {
                    if !entry.call.call.is_finished() {
                        entry.call.call.mark_finished();
                        self.cancel(&mut entry, Status::cancelled("the stream closed"));
                    }
                }
            }
            ConnEvent::ConnectionClosed { .. } => {
                let calls: Vec<_> = self.calls.drain().map(|(_, e)| e).collect();
                for mut entry in calls {
                    entry.call.call.mark_finished();
                    self.cancel(&mut entry, Status::cancelled("the connection closed"));
                }
                self.deadlines.clear();
            }
            _ => {}
        }
    }

    fn poll(&mut self, conn: &mut Connection, now: Instant) {
        self.now = self.now.max(now);
        for cmd in self.link.take() {
            match cmd {
                Cmd::Release(key, n) => conn.release_capacity(key, n),
                Cmd::Ready(key) => self.on_ready(key),
            }
        }
        while let Some(Reverse((at, key))) = self.deadlines.peek().copied() {
            if at > now {
                break;
            }
            self.deadlines.pop();
            self.expire(conn, key, now);
        }
    }

    fn next_timeout(&self) -> Option<Instant> {
        self.deadlines.peek().map(|Reverse((at, _))| *at)
    }
}

/// A response with only a status (HEADERS with END_STREAM).
fn trailers_only(key: StreamKey, http_status: u16, status: &Status) -> Command {
    let mut fields: HeaderList = vec![
        HeaderField::new(":status", http_status.to_string()),
        HeaderField::new("content-type", "application/grpc"),
    ];
    status.to_trailers(&mut fields);
    Command::Headers {
        key,
        fields,
        end_stream: true,
    }
}

fn header<'a>(head: &'a RequestHead, name: &str) -> Option<&'a Bytes> {
    head.fields
        .iter()
        .find(|f| f.name == name.as_bytes())
        .map(|f| &f.value)
}

/// `application/grpc`, `application/grpc+proto`, `application/grpc;...`.
fn is_grpc_content_type(value: &[u8]) -> bool {
    match value.strip_prefix(b"application/grpc") {
        Some(rest) => rest.is_empty() || rest.starts_with(b"+") || rest.starts_with(b";"),
        None => false,
    }
}

impl GrpcSession {
    pub(crate) fn new(server: Arc<ServerShared>, link: Arc<ConnLink>) -> GrpcSession {
        GrpcSession {
            server,
            link,
            calls: HashMap::new(),
            deadlines: BinaryHeap::new(),
            now: Instant::now(),
        }
    }

    /// Answers a request that never becomes a call.
    fn reject(
        &self,
        conn: &mut Connection,
        key: StreamKey,
        http_status: u16,
        status: Status,
        end_stream: bool,
    ) {
        let _ = conn.send(trailers_only(key, http_status, &status));
        if !end_stream {
            // The request body is not wanted (RFC 9113 §8.1).
            conn.reset_after_response(key, Reason::NO_ERROR, self.now);
        }
    }

    fn on_request(
        &mut self,
        conn: &mut Connection,
        id: StreamId,
        head: RequestHead,
        end_stream: bool,
    ) {
        let key = StreamKey::from(id);
        if &head.method[..] != b"POST" {
            conn.reset(key, Reason::PROTOCOL_ERROR, self.now);
            return;
        }
        let content_type = header(&head, "content-type").cloned().unwrap_or_default();
        if !is_grpc_content_type(&content_type) {
            let status = Status::invalid_argument(format!(
                "invalid gRPC request content-type {:?}",
                String::from_utf8_lossy(&content_type)
            ));
            return self.reject(conn, key, 415, status, end_stream);
        }
        let path = head.path.clone().unwrap_or_default();
        let path = String::from_utf8_lossy(&path).into_owned();
        let Some((service, method)) = path.strip_prefix('/').and_then(|p| p.rsplit_once('/'))
        else {
            let status = Status::unimplemented(format!("malformed method name: {path:?}"));
            return self.reject(conn, key, 200, status, end_stream);
        };
        let Some(methods) = self.server.services.get(service) else {
            let status = Status::unimplemented(format!("unknown service {service}"));
            return self.reject(conn, key, 200, status, end_stream);
        };
        let Some(handler) = methods.get(method).cloned() else {
            let status =
                Status::unimplemented(format!("unknown method {method} for service {service}"));
            return self.reject(conn, key, 200, status, end_stream);
        };
        let now = self.now;
        let deadline = match header(&head, "grpc-timeout") {
            Some(value) => match grpc::parse_timeout(value) {
                Ok(timeout) => Some(now + timeout),
                Err(e) => {
                    let status = Status::internal(format!("malformed grpc-timeout: {e}"));
                    return self.reject(conn, key, 200, status, end_stream);
                }
            },
            None => None,
        };
        let encoding = match header(&head, "grpc-encoding") {
            None => Encoding::Identity,
            Some(value) => match Encoding::from_header(value) {
                Some(encoding) => encoding,
                None => {
                    let status = Status::unimplemented(format!(
                        "grpc: Decompressor is not installed for grpc-encoding {:?}",
                        String::from_utf8_lossy(value)
                    ));
                    return self.reject(conn, key, 200, status, end_stream);
                }
            },
        };
        // gzip is the only encoding we compress with: one scan of the
        // header per call.
        let accepts_gzip = header(&head, "grpc-accept-encoding").is_some_and(|v| {
            v.split(|b| *b == b',')
                .any(|t| t.trim_ascii() == Encoding::Gzip.as_str().as_bytes())
        });
        let encodings = CallEncodings {
            send: match self.server.config.send_compression {
                Some(Encoding::Gzip) if accepts_gzip => Encoding::Gzip,
                _ => Encoding::Identity,
            },
            accepts_gzip,
            request: encoding,
        };
        // Held until the call is over (or its blocking handler returns):
        // the connection reports no more requests than
        // MAX_CONCURRENT_STREAMS whose slots are held.
        let slot = conn.take_slot(key);
        let peer = self.link.handle().map_or_else(
            || std::net::SocketAddr::from(([0, 0, 0, 0], 0)),
            |h| h.peer_addr(),
        );
        let call = Arc::new(CallShared::new(
            key,
            self.link.clone(),
            conn.write_quota(key),
            self.server.config.max_send_message_size,
            self.server.config.max_receive_message_size,
            slot,
            RequestFacts {
                peer,
                metadata: Metadata::from_headers(&head.fields),
                deadline,
                method: path,
                encodings,
            },
        ));
        if let Some(at) = deadline {
            self.deadlines.push(Reverse((at, key)));
        }
        let call = ServerCall::new(Context { call });
        let kind = handler.kind();
        let runner = match handler {
            Handler::Reactor {
                factory, on_pool, ..
            } => {
                if on_pool {
                    let mailbox = Mailbox::new(call.clone(), factory, &self.server);
                    let waiter: Arc<dyn Wake> = Arc::new(MailboxWake(Arc::downgrade(&mailbox)));
                    let _ = call.call.ready_waiter.set(waiter);
                    mailbox.post(Signal::Start);
                    Runner::Pooled(mailbox)
                } else {
                    let waiter: Arc<dyn Wake> = Arc::new(ReadyWake {
                        link: Arc::downgrade(&self.link),
                        key,
                    });
                    let _ = call.call.ready_waiter.set(waiter);
                    match reactor::make(&*factory, &call, &self.server) {
                        Some(reactor) => Runner::Inline(reactor),
                        None => Runner::Done,
                    }
                }
            }
            handler @ (Handler::Unary(_) | Handler::ServerStreaming(_)) => {
                Runner::Blocking(handler)
            }
            handler @ (Handler::ClientStreaming(_) | Handler::Bidi(_)) => {
                let max = self.server.config.max_stream_workers;
                match blocking::dispatch_stream(&self.server, handler, call.context().clone()) {
                    Some(tx) => Runner::BlockingStream(tx),
                    None => {
                        self.refuse(&call, "stream", max);
                        Runner::Done
                    }
                }
            }
        };
        let decoder = MessageDecoder::new(self.server.config.max_receive_message_size);
        self.calls.insert(
            key,
            CallEntry {
                call,
                kind,
                decoder,
                encoding,
                single: None,
                runner,
            },
        );
        if end_stream {
            self.on_end(conn, key);
        }
    }

    /// No worker can take the call: RESOURCE_EXHAUSTED at once, counted.
    fn refuse(&self, call: &ServerCall, pool: &str, max: usize) {
        self.server.count_refused();
        call.call.finish(None, blocking::busy_status(pool, max));
    }

    fn on_data(&mut self, conn: &mut Connection, key: StreamKey, data: Bytes, end_stream: bool) {
        let n = data.len();
        let max = self.server.config.max_receive_message_size;
        let Some(entry) = self.calls.get_mut(&key) else {
            return conn.release_capacity(key, n);
        };
        // Flow control: the bytes of a message still being assembled sit in
        // our decoder (bounded by the receive limit), so their window
        // reopens now — a message larger than the window could never
        // complete otherwise. Complete messages handed to a handler that
        // has not taken them yet (a pooled reactor, a blocking handler)
        // hold the window back while they are over their bound; taking
        // them releases it (see `Backlog`).
        match entry.call.call.backlog.on_arrival(n) {
            0 => {}
            release => conn.release_capacity(key, release),
        }
        entry.decoder.push(data);
        loop {
            let Some(entry) = self.calls.get_mut(&key) else {
                return;
            };
            let message = match entry.decoder.next() {
                Ok(Some(message)) => message,
                Ok(None) => break,
                Err(err) => {
                    let status = match err {
                        grpc::MessageError::TooLarge { len, max } => Status::resource_exhausted(
                            format!("grpc: received message larger than max ({len} vs. {max})"),
                        ),
                        other => Status::internal(format!("grpc: {other}")),
                    };
                    return self.fail_call(conn, key, status);
                }
            };
            let wire = 5 + message.payload.len();
            let payload = if message.compressed {
                if entry.encoding == Encoding::Identity {
                    let status = Status::internal(
                        "grpc: compressed flag set with identity or empty encoding".to_string(),
                    );
                    return self.fail_call(conn, key, status);
                }
                match grpc::decompress(entry.encoding, &message.payload, max) {
                    Ok(payload) => payload,
                    Err(e) => {
                        let status =
                            Status::resource_exhausted(format!("grpc: failed to decompress: {e}"));
                        return self.fail_call(conn, key, status);
                    }
                }
            } else {
                message.payload
            };
            if entry.collects() {
                if entry.single.is_some() {
                    let status = Status::internal("grpc: two request messages for a unary RPC");
                    return self.fail_call(conn, key, status);
                }
                entry.single = Some(payload);
                continue;
            }
            self.deliver(key, payload, wire);
        }
        if end_stream {
            self.on_end(conn, key);
        }
    }

    /// Hands one request message to the call's handler.
    fn deliver(&mut self, key: StreamKey, payload: Bytes, wire: usize) {
        let Some(entry) = self.calls.get_mut(&key) else {
            return;
        };
        if entry.call.call.is_finished() {
            return;
        }
        let backlog = &entry.call.call.backlog;
        match &mut entry.runner {
            Runner::Inline(reactor) => {
                // Taken when the callback returns: its window was released
                // on arrival already (nothing queued).
                if !reactor::react(
                    reactor,
                    &entry.call,
                    &self.server,
                    Reaction::Message(payload),
                ) {
                    entry.runner = Runner::Done;
                }
            }
            Runner::Pooled(mailbox) => {
                backlog.queued(wire);
                mailbox.post(Signal::Message(payload, wire));
            }
            Runner::BlockingStream(tx) => {
                if tx.send(Incoming::Message(payload, wire)).is_ok() {
                    backlog.queued(wire);
                }
            }
            Runner::Blocking(_) | Runner::Done => {}
        }
    }

    /// The client half-closed.
    fn on_end(&mut self, conn: &mut Connection, key: StreamKey) {
        let Some(entry) = self.calls.get_mut(&key) else {
            return;
        };
        if entry.decoder.finish().is_err() {
            return self.fail_call(
                conn,
                key,
                Status::internal("grpc: truncated request message"),
            );
        }
        if entry.collects() {
            let Some(message) = entry.single.take() else {
                if entry.call.call.is_finished() {
                    return;
                }
                let status = Status::internal("grpc: no request message for a unary RPC");
                return self.fail_call(conn, key, status);
            };
            if let Runner::Blocking(handler) = &entry.runner {
                let handler = handler.clone();
                let ctx = entry.call.context().clone();
                entry.runner = Runner::Done;
                let max = self.server.config.max_workers;
                let call = entry.call.clone();
                if !blocking::dispatch_unary(&self.server, handler, ctx, message) {
                    self.refuse(&call, "unary", max);
                }
                return;
            }
            self.deliver(key, message, 0);
        }
        let Some(entry) = self.calls.get_mut(&key) else {
            return;
        };
        if entry.call.call.is_finished() && !matches!(entry.runner, Runner::BlockingStream(_)) {
            // A reactor that already answered hears nothing more.
            return;
        }
        match &mut entry.runner {
            Runner::Inline(reactor) => {
                if !reactor::react(reactor, &entry.call, &self.server, Reaction::HalfClose) {
                    entry.runner = Runner::Done;
                }
            }
            Runner::Pooled(mailbox) => mailbox.post(Signal::HalfClose),
            Runner::BlockingStream(tx) => {
                let _ = tx.send(Incoming::End);
            }
            Runner::Blocking(_) | Runner::Done => {}
        }
    }

    /// An inline reactor's call may send again (spurious wake-ups are
    /// filtered: the quota is asked again, re-arming the waiter if not).
    fn on_ready(&mut self, key: StreamKey) {
        let Some(entry) = self.calls.get_mut(&key) else {
            return;
        };
        let Runner::Inline(reactor) = &mut entry.runner else {
            return;
        };
        let call = &entry.call.call;
        if call.is_finished() {
            return;
        }
        let ready = match call.ready_waiter.get() {
            Some(waiter) => call.poll_ready(waiter),
            None => true,
        };
        if ready && !reactor::react(reactor, &entry.call, &self.server, Reaction::Ready) {
            entry.runner = Runner::Done;
        }
    }

    /// The handler hears the call is over (nothing more will be sent).
    fn cancel(&self, entry: &mut CallEntry, status: Status) {
        entry.call.call.cancel();
        match std::mem::replace(&mut entry.runner, Runner::Done) {
            Runner::Inline(mut reactor) => {
                reactor::react(
                    &mut reactor,
                    &entry.call,
                    &self.server,
                    Reaction::Cancel(&status),
                );
            }
            Runner::Pooled(mailbox) => mailbox.post(Signal::Cancel(status)),
            Runner::BlockingStream(tx) => {
                let _ = tx.send(Incoming::Error(status));
            }
            Runner::Blocking(_) | Runner::Done => {}
        }
    }

    /// The call's deadline passed: the handler sees cancellation, the
    /// client gets DEADLINE_EXCEEDED in the trailers, and if it is still
    /// sending, the trailers are followed by RST_STREAM(NO_ERROR) (RFC
    /// 9113 §8.1: the response is complete, stop sending the request).
    ///
    /// NO_ERROR, not CANCEL, as grpc-go's and C-core's servers do: a
    /// C-core client that gets RST_STREAM(CANCEL) before its application
    /// has read the trailers reports CANCELLED instead of the
    /// DEADLINE_EXCEEDED the trailers carry (seen in the interop suite's
    /// timeout_on_sleeping_server, about half the runs). A call already
    /// finished is left alone.
    fn expire(&mut self, conn: &mut Connection, key: StreamKey, now: Instant) {
        let Some(mut entry) = self.calls.remove(&key) else {
            return;
        };
        if entry.call.call.is_finished() {
            self.calls.insert(key, entry);
            return;
        }
        let status = Status::deadline_exceeded("deadline exceeded");
        if entry.call.call.finish(None, status.clone()) {
            conn.reset_after_response(key, Reason::NO_ERROR, now);
        }
        self.cancel(&mut entry, status);
        self.calls.insert(key, entry);
    }

    /// Ends a call with `status` (where still possible) and resets the
    /// stream: nothing more of its request is buffered.
    fn fail_call(&mut self, conn: &mut Connection, key: StreamKey, status: Status) {
        if let Some(mut entry) = self.calls.remove(&key) {
            entry.call.call.finish(None, status.clone());
            self.cancel(&mut entry, status);
        }
        // NO_ERROR (RFC 9113 §8.1, as grpc-go): the status in the trailers
        // stands; the reset only stops the rest of the request.
        conn.reset_after_response(key, Reason::NO_ERROR, self.now);
    }
}
