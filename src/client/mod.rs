//! The gRPC client (grpc-go's ClientConn without an async runtime):
//! [`Channel`]s to targets, blocking calls, completion handles so one
//! thread can keep thousands of calls in flight, and streaming calls.
//!
//! ```no_run
//! use std::time::Duration;
//! use mio_grpc::client::{CallOptions, Channel, ChannelOptions};
//!
//! let channel = Channel::new("localhost:50051", ChannelOptions::default()).unwrap();
//! let options = CallOptions::default().timeout(Duration::from_secs(1));
//! // Many calls in flight from one thread: start them, then wait.
//! let calls: Vec<_> = (0..100)
//!     .map(|_| channel.start_unary_raw("/pkg.Svc/Method", bytes::Bytes::new(), options.clone()))
//!     .collect();
//! for call in calls {
//!     println!("{:?}", call.wait().map(|reply| reply.len()));
//! }
//! ```
//!
//! Module map: `channel` (the `Channel` and its options), `picker`
//! (connecting, picking, connection loss, maintenance tick), `subchannel`
//! (per-address connections and state), `session` (one connection's
//! events routed to calls), `retry` (gRFC A6 unary retries), `call` (the
//! call handles), plus the public `balancer`, `resolver`, `target`,
//! `service_config`, `backoff` and `connectivity` modules.

pub mod backoff;
pub mod balancer;
mod call;
mod channel;
pub mod connectivity;
mod picker;
pub mod resolver;
mod retry;
pub mod service_config;
mod session;
mod subchannel;
pub mod target;

pub use channel::{
    Channel, ChannelError, ChannelOptions, ClientStreamInterceptor, ClientUnaryInterceptor,
};
pub use connectivity::ConnectivityState;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::grpc::{Encoding, Metadata, Status};
use call::ClientCall;

/// A per-call credentials hook: metadata to add for a method (e.g. a
/// bearer token), or a status to fail the call with.
pub type Credentials = Arc<dyn Fn(&str) -> Result<Metadata, Status> + Send + Sync>;

/// Options of one call.
#[derive(Clone, Default)]
pub struct CallOptions {
    /// The deadline (sent as `grpc-timeout`, and enforced here).
    pub deadline: Option<Instant>,
    /// Wait for the channel to be ready instead of failing fast.
    pub wait_for_ready: bool,
    /// Request metadata.
    pub metadata: Metadata,
    /// Compress request messages (gzip).
    pub compression: Option<Encoding>,
    /// The largest request message (default: the channel's).
    pub max_send_message_size: Option<usize>,
    /// The largest response message (default: the channel's, 4 MiB).
    pub max_receive_message_size: Option<usize>,
    /// Per-call credentials.
    pub credentials: Option<Credentials>,
    /// Retries so far (sent as `grpc-previous-rpc-attempts`).
    pub(crate) previous_attempts: u32,
}

impl std::fmt::Debug for CallOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallOptions")
            .field("deadline", &self.deadline)
            .field("wait_for_ready", &self.wait_for_ready)
            .field("compression", &self.compression)
            .finish_non_exhaustive()
    }
}

impl CallOptions {
    /// Fails with DEADLINE_EXCEEDED after `timeout` from now.
    pub fn timeout(mut self, timeout: Duration) -> CallOptions {
        self.deadline = Some(Instant::now() + timeout);
        self
    }

    /// Waits for a ready connection instead of failing fast.
    pub fn wait_for_ready(mut self, wait: bool) -> CallOptions {
        self.wait_for_ready = wait;
        self
    }

    /// Adds request metadata.
    pub fn metadata(mut self, metadata: Metadata) -> CallOptions {
        self.metadata = metadata;
        self
    }

    /// Compresses the request messages.
    pub fn compression(mut self, encoding: Encoding) -> CallOptions {
        self.compression = Some(encoding);
        self
    }

    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.deadline
    }
}

/// A completion callback.
type OnComplete = Box<dyn FnOnce(&Result<Bytes, Status>) + Send>;

/// The outcome of a unary call across its attempts (retries happen
/// behind it).
#[derive(Default)]
pub(crate) struct UnaryShared {
    state: parking_lot::Mutex<UnaryState>,
    cond: parking_lot::Condvar,
}

#[derive(Default)]
struct UnaryState {
    result: Option<Result<Bytes, Status>>,
    callback: Option<OnComplete>,
    current: Option<Arc<ClientCall>>,
    cancelled: bool,
    /// A completion callback was registered: it owns the call, and
    /// dropping the handle no longer cancels it.
    handed_over: bool,
}

impl UnaryShared {
    /// The attempt now in flight; cancelled at once if the call was
    /// cancelled meanwhile (between retries).
    pub(crate) fn set_current(&self, call: Arc<ClientCall>) {
        let mut state = self.state.lock();
        if state.cancelled {
            drop(state);
            call.cancel(Status::cancelled("cancelled by the client"));
            return;
        }
        state.current = Some(call);
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.state.lock().cancelled
    }

    /// The call has its result, or was cancelled: no attempt may start.
    pub(crate) fn is_over(&self) -> bool {
        let state = self.state.lock();
        state.cancelled || state.result.is_some()
    }

    /// The final result: callback first, then waiters.
    pub(crate) fn finish(&self, result: Result<Bytes, Status>) {
        let callback = {
            let mut state = self.state.lock();
            if state.result.is_some() {
                return;
            }
            state.current = None;
            state.callback.take()
        };
        if let Some(callback) = callback {
            callback(&result);
        }
        self.state.lock().result = Some(result);
        self.cond.notify_all();
    }
}

/// A unary call in flight: wait for it, poll it, or get a callback.
///
/// Dropping the handle before the call ends cancels it (RST_STREAM CANCEL;
/// the server's handler sees the cancellation), as dropping a tonic
/// future or cancelling a grpc-go context does — unless a callback was
/// registered with [`on_result`](UnaryCall::on_result) or
/// [`on_complete`](UnaryCall::on_complete): the callback wants the result,
/// so it owns the call from then on, and the handle may go.
///
/// ```no_run
/// use mio_grpc::client::{CallOptions, Channel, ChannelOptions};
/// let channel = Channel::new("localhost:50051", ChannelOptions::default()).unwrap();
/// let call = channel.start_unary_raw("/pkg.Svc/Slow", bytes::Bytes::new(), CallOptions::default());
/// drop(call); // not wanted any more: the server sees a cancellation
///
/// let call = channel.start_unary_raw("/pkg.Svc/Slow", bytes::Bytes::new(), CallOptions::default());
/// call.on_complete(|status| println!("{status}"));
/// drop(call); // runs to its end; the callback gets it
/// ```
pub struct UnaryCall {
    shared: Arc<UnaryShared>,
}

impl std::fmt::Debug for UnaryCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnaryCall").finish_non_exhaustive()
    }
}

impl UnaryCall {
    fn new(shared: Arc<UnaryShared>) -> UnaryCall {
        UnaryCall { shared }
    }

    /// A call that ended before it started (an interceptor answered or
    /// refused it).
    fn finished(result: Result<Bytes, Status>) -> UnaryCall {
        let shared = Arc::new(UnaryShared::default());
        shared.finish(result);
        UnaryCall { shared }
    }

    /// Blocks until the call ends.
    pub fn wait(self) -> Result<Bytes, Status> {
        let mut state = self.shared.state.lock();
        loop {
            if let Some(result) = &state.result {
                return result.clone();
            }
            self.shared.cond.wait(&mut state);
        }
    }

    /// Blocks up to `timeout`; `None` if the call is still running.
    pub fn wait_timeout(&self, timeout: Duration) -> Option<Result<Bytes, Status>> {
        let until = Instant::now() + timeout;
        let mut state = self.shared.state.lock();
        loop {
            if let Some(result) = &state.result {
                return Some(result.clone());
            }
            if self.shared.cond.wait_until(&mut state, until).timed_out() {
                return state.result.clone();
            }
        }
    }

    /// The result if the call has ended, without waiting.
    pub fn try_get(&self) -> Option<Result<Bytes, Status>> {
        self.shared.state.lock().result.clone()
    }

    /// Calls `callback` with the final status when the call ends (at once
    /// if it has), before any waiter returns. It may run on the channel's
    /// event-loop thread: it must not block. Starting another call from it
    /// is fine (a closed loop) as long as the request fits the stream's
    /// write quota (64 KiB); a larger one would wait for the very loop the
    /// callback is holding. Use [`UnaryCall::wait`] or `try_get` for the
    /// message.
    pub fn on_complete(&self, callback: impl FnOnce(&Status) + Send + 'static) {
        self.on_result(move |result| match result {
            Ok(_) => callback(&Status::ok()),
            Err(status) => callback(status),
        });
    }

    /// Like [`UnaryCall::on_complete`], with the response message itself
    /// (or the failure), so a closed-loop caller can check the reply
    /// without a second look-up. The same rules apply: it may run on the
    /// event-loop thread and must not block.
    ///
    /// ```no_run
    /// use mio_grpc::client::{CallOptions, Channel, ChannelOptions};
    /// let channel = Channel::new("localhost:50051", ChannelOptions::default()).unwrap();
    /// let call = channel.start_unary_raw("/pkg.Svc/Method", bytes::Bytes::new(), CallOptions::default());
    /// call.on_result(|result| match result {
    ///     Ok(reply) => println!("{} bytes", reply.len()),
    ///     Err(status) => println!("failed: {status}"),
    /// });
    /// ```
    pub fn on_result(&self, callback: impl FnOnce(&Result<Bytes, Status>) + Send + 'static) {
        let mut state = self.shared.state.lock();
        state.handed_over = true;
        match &state.result {
            Some(result) => {
                let result = result.clone();
                drop(state);
                callback(&result);
            }
            None => state.callback = Some(Box::new(callback)),
        }
    }

    /// Cancels the call (RST_STREAM CANCEL); it ends with CANCELLED (unless
    /// it had ended already).
    pub fn cancel(&self) {
        self.cancel_with(Status::cancelled("cancelled by the client"));
    }

    fn cancel_with(&self, status: Status) {
        let current = {
            let mut state = self.shared.state.lock();
            if state.result.is_some() {
                return;
            }
            state.cancelled = true;
            state.current.clone()
        };
        if let Some(call) = current {
            call.cancel(status.clone());
        }
        // Between retries the attempt above has ended already: the call
        // ends here, and no further attempt starts.
        self.shared.finish(Err(status));
    }
}

impl Drop for UnaryCall {
    /// Cancels the call if it has not ended and no callback owns it.
    fn drop(&mut self) {
        {
            let state = self.shared.state.lock();
            if state.result.is_some() || state.handed_over {
                return;
            }
        }
        self.cancel_with(Status::cancelled("the call was dropped before it ended"));
    }
}

/// Request bytes kept for replay until a streaming call commits (grpc-go's
/// per-RPC retry buffer); past it, the call is committed (no retry).
const RETRY_BUFFER: usize = 256 * 1024;

/// The attempt in progress, and what a retry must replay.
struct StreamAttempt {
    call: Arc<ClientCall>,
    number: u32,
    transparent_left: u32,
    sent: Vec<Bytes>,
    sent_bytes: usize,
    half_closed: bool,
    committed: bool,
}

/// A streaming call (client-, server- or bidi-streaming), with raw bytes.
/// Dropping it before it ends cancels it (RST_STREAM CANCEL).
///
/// Until it commits (response headers, a response message, or more than
/// 256 KiB sent), a failure the server never saw the stream for is retried
/// transparently, and a failure the method's retry policy names is retried
/// with backoff: the requests sent so far are replayed (gRFC A6).
pub struct StreamingCall {
    channel: Arc<channel::Inner>,
    method: String,
    options: CallOptions,
    retry: Option<service_config::RetryPolicy>,
    attempt: parking_lot::Mutex<StreamAttempt>,
}

impl std::fmt::Debug for StreamingCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamingCall")
            .field("method", &self.method)
            .finish_non_exhaustive()
    }
}

impl StreamingCall {
    pub(crate) fn new(
        channel: Arc<channel::Inner>,
        method: &str,
        options: CallOptions,
        retry: Option<service_config::RetryPolicy>,
        call: Arc<ClientCall>,
    ) -> StreamingCall {
        let attempt = StreamAttempt {
            call,
            number: 1,
            transparent_left: 1,
            sent: Vec::new(),
            sent_bytes: 0,
            half_closed: false,
            committed: false,
        };
        StreamingCall {
            channel,
            method: method.to_string(),
            options,
            retry,
            attempt: parking_lot::Mutex::new(attempt),
        }
    }

    fn current(&self) -> Arc<ClientCall> {
        self.attempt.lock().call.clone()
    }

    fn commit(&self) {
        let mut attempt = self.attempt.lock();
        attempt.committed = true;
        attempt.sent = Vec::new();
    }

    /// After a failure: starts a new attempt and replays, if allowed.
    fn retry(&self, status: &Status) -> bool {
        let mut attempt = self.attempt.lock();
        if attempt.committed || attempt.call.committed() {
            return false;
        }
        if self.options.deadline().is_some_and(|d| d <= Instant::now()) {
            return false;
        }
        if attempt.call.was_unsent() && attempt.transparent_left > 0 {
            attempt.transparent_left -= 1;
        } else {
            let Some(policy) = self
                .retry
                .as_ref()
                .filter(|p| p.is_retryable(status.code()))
            else {
                return false;
            };
            if attempt.number >= policy.max_attempts || !self.channel.retry_allowed() {
                return false;
            }
            let mut x = (attempt.number as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
                ^ u64::from(std::process::id());
            let mut rng = move || {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 11) as f64 / (1u64 << 53) as f64
            };
            std::thread::sleep(policy.retry_delay(attempt.number - 1, &mut rng));
            attempt.number += 1;
        }
        let mut options = self.options.clone();
        options.previous_attempts = attempt.number - 1;
        let Ok(call) = self.channel.start_stream_attempt(&self.method, &options) else {
            return false;
        };
        for message in &attempt.sent {
            if call
                .send_message(message, false, self.options.deadline())
                .is_err()
            {
                return false;
            }
        }
        if attempt.half_closed && call.close_send().is_err() {
            return false;
        }
        attempt.call = call;
        true
    }

    /// Sends one request message; blocks while the stream's buffered output
    /// is over its quota (flow control).
    pub fn send(&self, message: &[u8]) -> Result<(), Status> {
        {
            let mut attempt = self.attempt.lock();
            if !attempt.committed {
                attempt.sent_bytes += message.len();
                if attempt.sent_bytes > RETRY_BUFFER {
                    attempt.committed = true;
                    attempt.sent = Vec::new();
                } else {
                    attempt.sent.push(Bytes::copy_from_slice(message));
                }
            }
        }
        match self
            .current()
            .send_message(message, false, self.options.deadline())
        {
            Ok(()) => Ok(()),
            // A retry replays this message too.
            Err(status) if self.retry(&status) => Ok(()),
            Err(status) => Err(status),
        }
    }

    /// Sends a prost message.
    pub fn send_msg<M: prost::Message>(&self, message: &M) -> Result<(), Status> {
        self.send(&message.encode_to_vec())
    }

    /// Half-closes: no more requests.
    pub fn close_send(&self) -> Result<(), Status> {
        self.attempt.lock().half_closed = true;
        match self.current().close_send() {
            Err(status) if self.retry(&status) => Ok(()),
            other => other,
        }
    }

    /// The next response message; `Ok(None)` at a clean end.
    pub fn recv(&self) -> Result<Option<Bytes>, Status> {
        loop {
            match self.current().recv(self.options.deadline()) {
                Ok(Some(message)) => {
                    self.commit();
                    return Ok(Some(message));
                }
                Ok(None) => return Ok(None),
                Err(status) if self.retry(&status) => continue,
                Err(status) => return Err(status),
            }
        }
    }

    /// Hands every response message to `callback` instead of [`recv`]
    /// (messages already received go first, on this thread), then once the
    /// end: `Ok(None)` after a clean end, `Err(status)` after a failure.
    /// With it, one thread can keep many streams going, and a ping-pong
    /// avoids a thread hand-off per message.
    ///
    /// The callback may run on the channel's event-loop thread: it must not
    /// block. Sending from it (`send`, `close_send`) is fine while the
    /// message fits the stream's write quota (64 KiB), as with
    /// [`UnaryCall::on_complete`]. The call is committed (no more retries)
    /// and [`recv`] returns nothing further: messages go to the callback.
    ///
    /// [`recv`]: StreamingCall::recv
    ///
    /// ```no_run
    /// use std::sync::Arc;
    /// use mio_grpc::client::{CallOptions, Channel, ChannelOptions};
    /// let channel = Channel::new("localhost:50051", ChannelOptions::default()).unwrap();
    /// let call = Arc::new(channel.streaming_raw("/pkg.Svc/PingPong", CallOptions::default()).unwrap());
    /// let sender = Arc::clone(&call);
    /// let mut left = 10;
    /// call.on_message(move |result| match result {
    ///     Ok(Some(_reply)) if left > 0 => {
    ///         left -= 1;
    ///         let _ = sender.send(b"ping");
    ///     }
    ///     Ok(Some(_)) => { let _ = sender.close_send(); }
    ///     Ok(None) => println!("done"),
    ///     Err(status) => println!("failed: {status}"),
    /// });
    /// call.send(b"ping").unwrap();
    /// ```
    pub fn on_message(&self, callback: impl FnMut(Result<Option<Bytes>, Status>) + Send + 'static) {
        self.commit();
        self.current().set_on_message(Box::new(callback));
    }

    /// The next response as a prost message.
    pub fn recv_msg<M: prost::Message + Default>(&self) -> Result<Option<M>, Status> {
        match self.recv()? {
            Some(bytes) => M::decode(bytes)
                .map(Some)
                .map_err(|e| Status::internal(format!("failed to decode the response: {e}"))),
            None => Ok(None),
        }
    }

    /// The response headers (waits for them).
    pub fn headers(&self) -> Result<Metadata, Status> {
        loop {
            match self.current().headers(self.options.deadline()) {
                Ok(headers) => {
                    self.commit();
                    return Ok(headers);
                }
                Err(status) if self.retry(&status) => continue,
                Err(status) => return Err(status),
            }
        }
    }

    /// Waits for the end: the status (OK or the error) and the trailers.
    pub fn finish(&self) -> (Status, Metadata) {
        loop {
            let (status, trailers) = self.current().finish(self.options.deadline());
            if status.code() != crate::grpc::Code::Ok && self.retry(&status) {
                continue;
            }
            self.channel.record_outcome(
                status.code() == crate::grpc::Code::Ok,
                self.retry
                    .as_ref()
                    .is_some_and(|p| p.is_retryable(status.code())),
            );
            return (status, trailers);
        }
    }

    /// The trailing metadata (once the call has ended).
    pub fn trailers(&self) -> Metadata {
        self.current().trailers()
    }

    /// Cancels the call.
    pub fn cancel(&self) {
        self.current()
            .cancel(Status::cancelled("cancelled by the client"));
    }
}

impl Drop for StreamingCall {
    fn drop(&mut self) {
        self.current()
            .cancel(Status::cancelled("the call was dropped before it ended"));
    }
}
