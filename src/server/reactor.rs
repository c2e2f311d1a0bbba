//! The callback (reactor) core, in the spirit of gRPC C++'s callback API:
//! a call is a small object ([`ServerReactor`]) that reacts to a request
//! message, the client's half-close, "ready to send more" and
//! cancellation, and answers through a [`ServerCall`] whose sends never
//! block. Callbacks of one call never overlap and come in order; they run
//! on the connection's event loop (inline, the default) or on the server's
//! callback pool ([`MethodDesc::on_pool`](super::MethodDesc::on_pool)).
//!
//! Backpressure both ways without a thread:
//! - **out**: [`ServerCall::send`] queues the message and says
//!   [`SendState::Full`] once the stream's write quota (64 KiB queued
//!   beyond the peer's window) is spent; the reactor stops sending and
//!   hears [`ServerReactor::on_ready`] when it may go on. A send while not
//!   ready is refused ([`SendError::NotReady`]), so a reactor cannot queue
//!   without bound.
//! - **in**: a request message's flow-control window reopens when its
//!   `on_message` has returned (on the pool: when the callback has run),
//!   so a slow reactor slows its client down.
//!
//! A panic in a callback ends the call with INTERNAL ("handler
//! panicked"); the loop or the pool thread carries on.
//!
//! The server's stream interceptors run around the making of each call's
//! reactor (the factory): one may refuse the call (its status ends it) or
//! shape the response metadata; the code after its `next` runs once the
//! reactor is made, not when the call ends. Unary interceptors, whose
//! `next` returns the response, apply to blocking unary handlers only.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Weak};

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;

use super::call::{Context, SendRefused};
use super::links::Cmd;
use super::ServerShared;
use crate::conn::{NoWake, Wake};
use crate::grpc::Status;

/// One call's reactions. Each method is called on one thread at a time,
/// in order; none may block (no sleeping, no waiting on locks held long,
/// no blocking I/O): they run on an event loop or a small shared pool.
///
/// ```
/// use bytes::Bytes;
/// use mio_grpc::grpc::Status;
/// use mio_grpc::server::{ServerCall, ServerReactor};
///
/// /// Echoes every message back, then ends the call when the client does.
/// struct Echo;
///
/// impl ServerReactor for Echo {
///     fn on_message(&mut self, call: &ServerCall, message: Bytes) {
///         // A real reactor keeps messages while `send` says not ready
///         // and sends them from `on_ready`.
///         let _ = call.send(&message);
///     }
///     fn on_half_close(&mut self, call: &ServerCall) {
///         call.finish(Status::ok());
///     }
/// }
/// ```
pub trait ServerReactor: Send + 'static {
    /// A request message (decompressed). Unary and server-streaming calls
    /// get exactly one, just before [`on_half_close`](Self::on_half_close).
    fn on_message(&mut self, call: &ServerCall, message: Bytes);

    /// The client half-closed: no more messages will come.
    fn on_half_close(&mut self, call: &ServerCall) {
        let _ = call;
    }

    /// After a send said [`SendState::Full`] (or was refused with
    /// [`SendError::NotReady`]): the call may send again.
    fn on_ready(&mut self, call: &ServerCall) {
        let _ = call;
    }

    /// The call ended without the reactor finishing it: the client reset
    /// it, its deadline passed (`status` says which) or the connection
    /// went away. Nothing more can be sent; this is the last callback.
    fn on_cancel(&mut self, call: &ServerCall, status: &Status) {
        let _ = (call, status);
    }
}

/// Makes a call's reactor from its first look at the call (metadata,
/// deadline, peer). It may also answer at once (`call.finish(..)`).
pub type ReactorFactory = dyn Fn(&ServerCall) -> Box<dyn ServerReactor> + Send + Sync;

/// What a send did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendState {
    /// Queued; more may be sent now.
    Ready,
    /// Queued, and the stream's queue is now full: send nothing more until
    /// [`ServerReactor::on_ready`].
    Full,
}

/// Why a send was refused.
#[derive(Clone, Debug, PartialEq)]
pub enum SendError {
    /// The stream's queue is full (the last send said
    /// [`SendState::Full`]); the message was not queued.
    /// [`ServerReactor::on_ready`] comes when it may be sent.
    NotReady,
    /// The call is over (finished, cancelled, or the connection closed),
    /// or the message cannot be sent (too large): this status says why.
    Closed(Status),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::NotReady => {
                f.write_str("the stream's send queue is full; wait for on_ready")
            }
            SendError::Closed(status) => write!(f, "the call cannot send: {status}"),
        }
    }
}

impl std::error::Error for SendError {}

/// A reactor's handle on its call: the [`Context`] (metadata, deadline,
/// response metadata) plus sending and finishing. Cheap to clone and
/// `Send`: a reactor may hand it to another thread and answer from there.
#[derive(Clone, Debug)]
pub struct ServerCall {
    ctx: Context,
}

impl std::ops::Deref for ServerCall {
    type Target = Context;

    fn deref(&self) -> &Context {
        &self.ctx
    }
}

impl ServerCall {
    pub(crate) fn new(ctx: Context) -> ServerCall {
        ServerCall { ctx }
    }

    /// The call's context.
    pub fn context(&self) -> &Context {
        &self.ctx
    }

    fn waiter(&self) -> Arc<dyn Wake> {
        match self.ctx.call.ready_waiter.get() {
            Some(waiter) => waiter.clone(),
            None => Arc::new(NoWake),
        }
    }

    /// Queues one response message (response headers first if not sent).
    /// Never blocks; see [`SendState`] and [`SendError`].
    pub fn send(&self, message: &[u8]) -> Result<SendState, SendError> {
        let call = &self.ctx.call;
        let waiter = self.waiter();
        let framed = call.prepare(message, &waiter).map_err(|e| match e {
            SendRefused::Full => SendError::NotReady,
            SendRefused::Failed(status) => SendError::Closed(status),
        })?;
        call.queue_framed(framed).map_err(SendError::Closed)?;
        Ok(if call.poll_ready(&waiter) {
            SendState::Ready
        } else {
            SendState::Full
        })
    }

    /// Encodes a prost message and [`send`](Self::send)s it.
    pub fn send_message<M: prost::Message>(&self, message: &M) -> Result<SendState, SendError> {
        let mut buf = BytesMut::with_capacity(message.encoded_len());
        message
            .encode(&mut buf)
            .map_err(|e| SendError::Closed(Status::internal(format!("encode: {e}"))))?;
        self.send(&buf)
    }

    /// Ends the call with `status` (in the trailers; a trailers-only
    /// response if nothing was sent). Messages queued before it go first.
    /// Returns false if the call had already ended.
    pub fn finish(&self, status: Status) -> bool {
        self.ctx.call.finish(None, status)
    }

    /// Ends the call with a last message and OK (a unary answer: headers,
    /// message and trailers leave together). Not limited by the write
    /// quota: one message.
    pub fn finish_with_message(&self, message: &[u8]) -> bool {
        self.ctx.call.finish(Some(message), Status::ok())
    }
}

/// A callback for a pooled reactor.
pub(crate) enum Signal {
    /// Make the reactor (the factory runs on the pool too).
    Start,
    /// A request message and the wire bytes it took.
    Message(Bytes, usize),
    HalfClose,
    Ready,
    Cancel(Status),
}

struct MailState {
    queue: VecDeque<Signal>,
    /// A pool job is draining the queue.
    running: bool,
    reactor: Option<Box<dyn ServerReactor>>,
    /// The reactor ended (cancelled or panicked): signals are dropped.
    done: bool,
}

/// A pooled reactor's callbacks, in order, one job at a time.
pub(crate) struct Mailbox {
    state: Mutex<MailState>,
    call: ServerCall,
    factory: Arc<ReactorFactory>,
    server: Weak<ServerShared>,
}

impl Mailbox {
    pub(crate) fn new(
        call: ServerCall,
        factory: Arc<ReactorFactory>,
        server: &Arc<ServerShared>,
    ) -> Arc<Mailbox> {
        Arc::new(Mailbox {
            state: Mutex::new(MailState {
                queue: VecDeque::new(),
                running: false,
                reactor: None,
                done: false,
            }),
            call,
            factory,
            server: Arc::downgrade(server),
        })
    }

    /// Queues a callback; starts a pool job if none is draining.
    pub(crate) fn post(self: &Arc<Self>, signal: Signal) {
        {
            let mut state = self.state.lock();
            if state.done {
                return;
            }
            state.queue.push_back(signal);
            if state.running {
                return;
            }
            state.running = true;
        }
        let Some(server) = self.server.upgrade() else {
            return;
        };
        let mailbox = self.clone();
        // Handed back only once the server is stopping: the call goes
        // with it.
        let _ = server.submit_callback(Box::new(move || mailbox.drain()));
    }

    fn drain(&self) {
        let Some(server) = self.server.upgrade() else {
            return;
        };
        loop {
            let (signal, mut reactor) = {
                let mut state = self.state.lock();
                match state.queue.pop_front() {
                    Some(signal) if !state.done => (signal, state.reactor.take()),
                    _ => {
                        state.running = false;
                        state.queue.clear();
                        return;
                    }
                }
            };
            let keep = match signal {
                Signal::Start => match make(&*self.factory, &self.call, &server) {
                    Some(made) => {
                        reactor = Some(made);
                        true
                    }
                    None => false,
                },
                Signal::Message(message, wire) => {
                    let keep = reactor
                        .as_mut()
                        .is_none_or(|r| react(r, &self.call, &server, Reaction::Message(message)));
                    let release = self.call.call.backlog.consumed(wire);
                    if release > 0 {
                        let key = self.call.call.key;
                        self.call.call.link.post(Cmd::Release(key, release));
                    }
                    keep
                }
                Signal::HalfClose => reactor
                    .as_mut()
                    .is_none_or(|r| react(r, &self.call, &server, Reaction::HalfClose)),
                Signal::Ready => reactor
                    .as_mut()
                    .is_none_or(|r| react(r, &self.call, &server, Reaction::Ready)),
                Signal::Cancel(status) => {
                    if let Some(r) = reactor.as_mut() {
                        react(r, &self.call, &server, Reaction::Cancel(&status));
                    }
                    false
                }
            };
            let mut state = self.state.lock();
            if keep {
                state.reactor = reactor;
            } else {
                state.done = true;
            }
        }
    }
}

/// Wakes a pooled reactor when its call may send again.
pub(crate) struct MailboxWake(pub(crate) Weak<Mailbox>);

impl Wake for MailboxWake {
    fn wake(&self) {
        if let Some(mailbox) = self.0.upgrade() {
            mailbox.post(Signal::Ready);
        }
    }
}

/// One callback.
pub(crate) enum Reaction<'a> {
    Message(Bytes),
    HalfClose,
    Ready,
    Cancel(&'a Status),
}

/// Makes a reactor inside the server's stream interceptors, catching a
/// panic (the call then ends with INTERNAL). An interceptor that refuses
/// (returns an error without calling `next`) ends the call with its
/// status, and one that returns OK without calling `next` ends it OK: no
/// reactor is made either way.
pub(crate) fn make(
    factory: &ReactorFactory,
    call: &ServerCall,
    server: &ServerShared,
) -> Option<Box<dyn ServerReactor>> {
    let mut made = None;
    let result = catch_unwind(AssertUnwindSafe(|| {
        server.intercept_stream(call.context(), &mut || {
            made = Some(factory(call));
            Ok(())
        })
    }));
    match result {
        Ok(Ok(())) => {
            if made.is_none() {
                call.call.finish(None, Status::ok());
            }
            made
        }
        Ok(Err(status)) => {
            call.call.finish(None, super::call::error_status(status));
            None
        }
        Err(_) => {
            panicked(call, server);
            None
        }
    }
}

/// Runs one callback; false if the reactor is done with (it panicked, or
/// this was its cancellation).
pub(crate) fn react(
    reactor: &mut Box<dyn ServerReactor>,
    call: &ServerCall,
    server: &ServerShared,
    reaction: Reaction<'_>,
) -> bool {
    let cancel = matches!(reaction, Reaction::Cancel(_));
    let result = catch_unwind(AssertUnwindSafe(|| match reaction {
        Reaction::Message(message) => reactor.on_message(call, message),
        Reaction::HalfClose => reactor.on_half_close(call),
        Reaction::Ready => reactor.on_ready(call),
        Reaction::Cancel(status) => reactor.on_cancel(call, status),
    }));
    match result {
        Ok(()) => !cancel,
        Err(_) => {
            panicked(call, server);
            false
        }
    }
}

/// A handler panicked: the call ends with INTERNAL, the count goes up.
pub(crate) fn panicked(call: &ServerCall, server: &ServerShared) {
    server.count_panic();
    call.call.finish(None, Status::internal("handler panicked"));
}
