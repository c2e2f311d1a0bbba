//! Blocking handlers (today's API and the generated traits) on top of the
//! call core: a handler runs on a worker of a bounded pool, reads its
//! requests from a [`RawRequests`] fed by the session, and sends through a
//! [`RawSink`] that waits (on the worker, never on a loop) while the
//! stream's write quota is spent.
//!
//! A call no worker can take is refused at once with RESOURCE_EXHAUSTED
//! (counted in [`ServerStats`](super::ServerStats)): unary and
//! server-streaming handlers draw on `max_workers`, client- and
//! bidi-streaming handlers (which may sit in `recv` for the life of a
//! stream) on `max_stream_workers`, so idle streams cannot starve unary
//! calls. A handler that panics ends its call with INTERNAL; the worker
//! carries on.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use crossbeam_channel::{Receiver, Sender};

use super::call::{error_status, CallShared, Context};
use super::links::Cmd;
use super::service::{Codec, Handler};
use super::ServerShared;
use crate::grpc::Status;

/// What the session hands a blocking streaming handler.
pub(crate) enum Incoming {
    /// One message and the wire bytes it took (released when consumed).
    Message(Bytes, usize),
    /// The client half-closed.
    End,
    /// The call failed (reset, deadline, bad message).
    Error(Status),
}

/// The refusal a call gets when no worker can take it.
pub(crate) fn busy_status(pool: &str, max: usize) -> Status {
    Status::resource_exhausted(format!(
        "server busy: all {max} {pool} workers are running handlers"
    ))
}

/// Runs a unary or server-streaming blocking handler for a complete
/// request: on the loop when `inline` (unary only), else on the unary
/// pool. Returns false if no worker could take it (the call is refused).
pub(crate) fn dispatch_unary(
    server: &Arc<ServerShared>,
    handler: Handler,
    ctx: Context,
    message: Bytes,
) -> bool {
    // Held until the handler returns, whoever resets the stream, and
    // freed just before the call's last frame goes out.
    let slot = ctx.call.take_slot();
    let inline = server.config.inline_handlers && matches!(handler, Handler::Unary(_));
    let shared = server.clone();
    let job = move || {
        let mut slot = slot;
        if ctx.is_cancelled() {
            return;
        }
        let call = ctx.call.clone();
        let result = catch_unwind(AssertUnwindSafe(|| match &handler {
            Handler::Unary(f) => {
                let result = shared.intercept_unary(&ctx, message, &**f);
                drop(slot.take());
                match result {
                    Ok(response) => call.finish(Some(&response), Status::ok()),
                    Err(status) => call.finish(None, error_status(status)),
                };
            }
            Handler::ServerStreaming(f) => {
                let result = shared.intercept_stream(&ctx, &mut || {
                    f(&ctx, message.clone(), RawSink::new(call.clone()))
                });
                drop(slot.take());
                finish_stream(&call, result);
            }
            _ => {
                call.finish(None, Status::internal("not a unary handler"));
            }
        }));
        drop(slot);
        if result.is_err() {
            shared.count_panic();
            call.finish(None, Status::internal("handler panicked"));
        }
    };
    if inline {
        job();
        return true;
    }
    server.try_submit_unary(Box::new(job)).is_ok()
}

/// Starts a client- or bidi-streaming blocking handler on the stream pool;
/// returns the sender that feeds its requests, or `None` if no worker
/// could take it (the call is refused).
pub(crate) fn dispatch_stream(
    server: &Arc<ServerShared>,
    handler: Handler,
    ctx: Context,
) -> Option<Sender<Incoming>> {
    let (tx, rx) = crossbeam_channel::unbounded();
    let requests = RawRequests::new(rx, ctx.call.clone());
    let slot = ctx.call.take_slot();
    let shared = server.clone();
    let job = move || {
        // Held until the handler returns, whoever resets the stream.
        let mut slot = slot;
        if ctx.is_cancelled() {
            return;
        }
        let call = ctx.call.clone();
        let mut requests = Some(requests);
        let result = catch_unwind(AssertUnwindSafe(|| {
            shared.intercept_stream(&ctx, &mut || {
                let Some(requests) = requests.take() else {
                    return Err(Status::internal("stream handler called twice"));
                };
                match &handler {
                    Handler::ClientStreaming(f) => {
                        let response = f(&ctx, requests)?;
                        drop(slot.take());
                        call.finish(Some(&response), Status::ok());
                        Ok(())
                    }
                    Handler::Bidi(f) => f(&ctx, requests, RawSink::new(call.clone())),
                    _ => Err(Status::internal("not a streaming handler")),
                }
            })
        }));
        drop(slot);
        match result {
            Ok(result) => finish_stream(&call, result),
            Err(_) => {
                shared.count_panic();
                call.finish(None, Status::internal("handler panicked"));
            }
        }
    };
    match server.try_submit_stream(Box::new(job)) {
        Ok(()) => Some(tx),
        Err(_) => None,
    }
}

/// A streaming handler returned: OK (if it did not finish the call
/// itself) or its error.
fn finish_stream(call: &CallShared, result: Result<(), Status>) {
    match result {
        Ok(()) => call.finish(None, Status::ok()),
        Err(status) => call.finish(None, error_status(status)),
    };
}

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
                    self.call.link.post(Cmd::Release(self.call.key, release));
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

/// Where a blocking streaming handler sends response messages, as bytes.
pub struct RawSink {
    call: Arc<CallShared>,
}

impl std::fmt::Debug for RawSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawSink")
            .field("key", &self.call.key)
            .finish()
    }
}

impl RawSink {
    pub(crate) fn new(call: Arc<CallShared>) -> RawSink {
        RawSink { call }
    }

    /// Sends one message. Blocks (on a worker thread) while the stream's
    /// buffered output is over its quota (the client reads slowly), until
    /// the call's deadline; fails once the call is over. On an event-loop
    /// thread it never waits: a full queue is an error there.
    pub fn send(&self, message: &[u8]) -> Result<(), Status> {
        let framed = self.call.frame_for_send(message)?;
        self.call.acquire_blocking(framed.len())?;
        self.call.queue_framed(framed)
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
