//! `Channel`: a lazy client connection to a target (grpc-go's ClientConn):
//! resolves the target, connects on the first call (or `connect()`), keeps
//! the connectivity state, reconnects with backoff, and starts calls on the
//! ready connection.
//!
//! Balancing today is pick_first: the resolved addresses are tried in
//! order and the first that connects carries every call; when it is lost
//! the channel goes IDLE and the next call reconnects (re-resolving).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use framer::hpack::HeaderField;
use loopy::{DropCause, Item, StreamKey};
use parking_lot::Mutex;

use super::backoff::{Backoff, BackoffConfig};
use super::call::ClientCall;
use super::connectivity::{ConnectivityState, StateWatch};
use super::resolver::ResolverRegistry;
use super::target::Target;
use super::{CallOptions, StreamingCall, UnaryCall};
use crate::conn::{CloseReason, ConnConfig, ConnEvent, Connection};
use crate::deadline::Deadlines;
use crate::grpc::{self, Code, Encoding, Status};
use crate::runtime::{ConnHandle, Runtime, RuntimeConfig, Session};

/// Channel options (grpc-go's defaults).
#[derive(Clone)]
pub struct ChannelOptions {
    /// Connection settings: windows, keepalive (client), limits.
    pub conn: ConnConfig,
    /// Event-loop threads of the channel's runtime (default 1).
    pub event_loops: usize,
    /// Reconnect backoff (1 s, ×1.6, ±20 %, 120 s cap, 20 s min connect).
    pub backoff: BackoffConfig,
    /// The largest response message (default 4 MiB).
    pub max_receive_message_size: usize,
    /// The largest request message (default unlimited).
    pub max_send_message_size: usize,
    /// The `user-agent` sent.
    pub user_agent: String,
    /// Resolvers by scheme (dns, ipv4, ipv6, unix, passthrough, and yours).
    pub resolvers: ResolverRegistry,
}

impl Default for ChannelOptions {
    fn default() -> Self {
        ChannelOptions {
            conn: ConnConfig::default(),
            event_loops: 1,
            backoff: BackoffConfig::default(),
            max_receive_message_size: 4 << 20,
            max_send_message_size: usize::MAX,
            user_agent: format!("grpc-rust-mio/{}", env!("CARGO_PKG_VERSION")),
            resolvers: ResolverRegistry::default(),
        }
    }
}

impl std::fmt::Debug for ChannelOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelOptions")
            .field("event_loops", &self.event_loops)
            .field("max_receive_message_size", &self.max_receive_message_size)
            .finish_non_exhaustive()
    }
}

type Calls = Arc<Mutex<HashMap<StreamKey, Arc<ClientCall>>>>;

/// The connection a channel is using now.
struct Current {
    handle: ConnHandle,
    calls: Calls,
    /// The server sent GOAWAY: no new calls here.
    draining: Arc<AtomicBool>,
}

struct Slot {
    current: Option<Current>,
    backoff: Backoff,
    /// In TransientFailure: no new attempt before this.
    retry_at: Option<Instant>,
    last_error: Option<Status>,
}

pub(crate) struct Inner {
    target: Target,
    authority: String,
    options: ChannelOptions,
    runtime: Mutex<Option<Runtime>>,
    deadlines: Arc<Deadlines>,
    state: StateWatch,
    slot: Mutex<Slot>,
}

/// A client channel to one target. Cheap to clone; calls from many threads
/// share it.
///
/// ```no_run
/// use mio_grpc::client::{CallOptions, Channel, ChannelOptions};
/// let channel = Channel::new("dns:///localhost:50051", ChannelOptions::default()).unwrap();
/// let reply = channel.unary_raw("/helloworld.Greeter/SayHello", bytes::Bytes::new(), CallOptions::default());
/// println!("{reply:?}");
/// ```
#[derive(Clone)]
pub struct Channel {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("target", &self.inner.authority)
            .field("state", &self.inner.state.get())
            .finish()
    }
}

/// Why a channel could not be made.
#[derive(Debug)]
pub enum ChannelError {
    /// The target does not parse.
    Target(super::target::TargetError),
    /// The runtime could not start.
    Io(std::io::Error),
}

impl std::fmt::Display for ChannelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChannelError::Target(e) => write!(f, "bad target: {e}"),
            ChannelError::Io(e) => write!(f, "cannot start the channel: {e}"),
        }
    }
}

impl std::error::Error for ChannelError {}

impl Channel {
    /// A channel to `target` (`dns:///host:port`, `host:port`, `ipv4:…`,
    /// `ipv6:…`, `passthrough:///…`, or a scheme you registered). Lazy:
    /// nothing connects until the first call or [`Channel::connect`].
    pub fn new(target: &str, options: ChannelOptions) -> Result<Channel, ChannelError> {
        let target =
            Target::parse_with(target, &options.resolvers).map_err(ChannelError::Target)?;
        let runtime = Runtime::new(RuntimeConfig {
            event_loops: options.event_loops,
            thread_name: "mio-grpc-client".into(),
            ..RuntimeConfig::default()
        })
        .map_err(ChannelError::Io)?;
        let deadlines = Arc::new(Deadlines::default());
        let timer = deadlines.clone();
        std::thread::Builder::new()
            .name("mio-grpc-client-deadlines".into())
            .spawn(move || timer.run())
            .map_err(ChannelError::Io)?;
        let inner = Arc::new(Inner {
            authority: target.authority(),
            target,
            slot: Mutex::new(Slot {
                current: None,
                backoff: Backoff::new(options.backoff),
                retry_at: None,
                last_error: None,
            }),
            options,
            runtime: Mutex::new(Some(runtime)),
            deadlines,
            state: StateWatch::new(ConnectivityState::Idle),
        });
        Ok(Channel { inner })
    }

    /// The connectivity state; with `try_connect`, an IDLE channel starts
    /// connecting (in the background).
    pub fn state(&self, try_connect: bool) -> ConnectivityState {
        let state = self.inner.state.get();
        if try_connect && state == ConnectivityState::Idle {
            self.connect();
        }
        self.inner.state.get()
    }

    /// Waits until the state is no longer `from`, or `deadline`; true if it
    /// changed.
    pub fn wait_for_state_change(
        &self,
        from: ConnectivityState,
        deadline: Option<Instant>,
    ) -> bool {
        self.inner.state.wait_for_change(from, deadline)
    }

    /// Starts connecting now (in the background) if idle.
    pub fn connect(&self) {
        let inner = self.inner.clone();
        let _ = std::thread::Builder::new()
            .name("mio-grpc-connect".into())
            .spawn(move || {
                let _ = inner.ready(None, false);
            });
    }

    /// Closes the channel: calls in flight fail, new calls fail, the state
    /// is SHUTDOWN.
    pub fn close(&self) {
        self.inner.state.set(ConnectivityState::Shutdown);
        let current = self.inner.slot.lock().current.take();
        if let Some(current) = current {
            current
                .handle
                .close(framer::Reason::NO_ERROR, "channel closed");
        }
        if let Some(runtime) = self.inner.runtime.lock().take() {
            runtime.shutdown();
        }
        self.inner.deadlines.stop();
    }

    /// A unary call with raw bytes, blocking.
    pub fn unary_raw(
        &self,
        method: &str,
        request: Bytes,
        options: CallOptions,
    ) -> Result<Bytes, Status> {
        self.start_unary_raw(method, request, options).wait()
    }

    /// A unary call with prost messages, blocking.
    pub fn unary<Req: prost::Message, Resp: prost::Message + Default>(
        &self,
        method: &str,
        request: &Req,
        options: CallOptions,
    ) -> Result<Resp, Status> {
        let bytes = self.unary_raw(method, Bytes::from(request.encode_to_vec()), options)?;
        Resp::decode(bytes)
            .map_err(|e| Status::internal(format!("failed to decode the response: {e}")))
    }

    /// Starts a unary call; the handle waits for, polls, or calls back with
    /// the result, so one thread can keep many calls in flight.
    pub fn start_unary_raw(&self, method: &str, request: Bytes, options: CallOptions) -> UnaryCall {
        match self.inner.start(method, &options, Some(request)) {
            Ok(call) => UnaryCall::new(Ok(call)),
            Err(status) => UnaryCall::new(Err(status)),
        }
    }

    /// Starts a streaming call (client-, server- or bidi-streaming: send,
    /// close_send, recv).
    pub fn streaming_raw(
        &self,
        method: &str,
        options: CallOptions,
    ) -> Result<StreamingCall, Status> {
        let deadline = options.deadline();
        let call = self.inner.start(method, &options, None)?;
        Ok(StreamingCall::new(call, deadline))
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.deadlines.stop();
        if let Some(runtime) = self.runtime.lock().take() {
            runtime.shutdown();
        }
    }
}

impl Inner {
    /// A connection to put a call on: the current one, or a new one.
    fn ready(
        self: &Arc<Self>,
        deadline: Option<Instant>,
        wait_for_ready: bool,
    ) -> Result<(ConnHandle, Calls), Status> {
        loop {
            if self.state.get() == ConnectivityState::Shutdown {
                return Err(Status::cancelled("grpc: the client connection is closing"));
            }
            let mut slot = self.slot.lock();
            if let Some(current) = &slot.current {
                if !current.handle.is_closed() && !current.draining.load(Ordering::Acquire) {
                    return Ok((current.handle.clone(), current.calls.clone()));
                }
                slot.current = None;
                self.state.set(ConnectivityState::Idle);
            }
            if let Some(retry_at) = slot.retry_at {
                let now = Instant::now();
                if now < retry_at {
                    let error = slot
                        .last_error
                        .clone()
                        .unwrap_or_else(|| Status::unavailable("connection failed"));
                    if !wait_for_ready {
                        return Err(error);
                    }
                    if deadline.is_some_and(|d| d <= now) {
                        return Err(Status::deadline_exceeded(format!(
                            "deadline exceeded while waiting for the connection: {}",
                            error.message()
                        )));
                    }
                    drop(slot);
                    let until = deadline.map_or(retry_at, |d| d.min(retry_at));
                    std::thread::sleep(
                        until
                            .saturating_duration_since(Instant::now())
                            .min(Duration::from_millis(50)),
                    );
                    continue;
                }
            }
            self.state.set(ConnectivityState::Connecting);
            match self.dial(&mut slot) {
                Ok(current) => {
                    let out = (current.handle.clone(), current.calls.clone());
                    slot.current = Some(current);
                    slot.retry_at = None;
                    slot.last_error = None;
                    slot.backoff.reset();
                    self.state.set(ConnectivityState::Ready);
                    return Ok(out);
                }
                Err(status) => {
                    let mut rng = fastrand_f64(self.authority.len() as u64 ^ now_nanos());
                    let delay = slot.backoff.next_delay(&mut rng);
                    slot.retry_at = Some(Instant::now() + delay);
                    slot.last_error = Some(status.clone());
                    self.state.set(ConnectivityState::TransientFailure);
                    if !wait_for_ready {
                        return Err(status);
                    }
                }
            }
        }
    }

    /// Resolves and connects to the first address that answers.
    fn dial(self: &Arc<Self>, slot: &mut Slot) -> Result<Current, Status> {
        let addresses = self.resolve()?;
        // gRFC connection-backoff: at least MIN_CONNECT_TIMEOUT (20 s).
        let timeout = slot.backoff.connect_timeout(Duration::ZERO);
        let runtime = self.runtime.lock();
        let Some(runtime) = runtime.as_ref() else {
            return Err(Status::cancelled("grpc: the client connection is closing"));
        };
        let mut last = None;
        for addr in addresses {
            let calls: Calls = Arc::default();
            let draining = Arc::new(AtomicBool::new(false));
            let session = ClientSession {
                calls: calls.clone(),
                draining: draining.clone(),
                channel: Arc::downgrade(self),
            };
            match runtime.connect(addr, timeout, self.options.conn.clone(), move |_| {
                Box::new(session)
            }) {
                Ok(handle) => {
                    return Ok(Current {
                        handle,
                        calls,
                        draining,
                    })
                }
                Err(e) => {
                    last = Some(Status::unavailable(format!(
                        "connection to {addr} failed: {e}"
                    )))
                }
            }
        }
        Err(last.unwrap_or_else(|| Status::unavailable("the target resolved to no addresses")))
    }

    fn resolve(&self) -> Result<Vec<SocketAddr>, Status> {
        let update = self
            .options
            .resolvers
            .resolve(&self.target)
            .map_err(|e| Status::unavailable(format!("name resolution failed: {e}")))?;
        let addrs: Vec<SocketAddr> = update
            .addresses
            .iter()
            .filter_map(|a| match &a.addr {
                super::resolver::ResolvedAddr::Tcp(addr) => Some(*addr),
                // Unix sockets are not on the runtime yet.
                _ => None,
            })
            .collect();
        if addrs.is_empty() {
            return Err(Status::unavailable(format!(
                "no TCP addresses for {}",
                self.authority
            )));
        }
        Ok(addrs)
    }

    /// Starts a call: picks the connection, registers the call, opens the
    /// stream (with the whole request, for unary calls).
    fn start(
        self: &Arc<Self>,
        method: &str,
        options: &CallOptions,
        unary: Option<Bytes>,
    ) -> Result<Arc<ClientCall>, Status> {
        let deadline = options.deadline();
        let (handle, calls) = self.ready(deadline, options.wait_for_ready)?;
        let key = handle.buffer().new_stream_key();
        let encoding = options.compression.unwrap_or(Encoding::Identity);
        let max_recv = options
            .max_receive_message_size
            .unwrap_or(self.options.max_receive_message_size);
        let max_send = options
            .max_send_message_size
            .unwrap_or(self.options.max_send_message_size);
        let call = Arc::new(ClientCall::new(
            key,
            handle.clone(),
            max_recv,
            max_send,
            encoding,
        ));
        let mut fields = vec![
            HeaderField::new(":method", "POST"),
            HeaderField::new(":scheme", "http"),
            HeaderField::new(":path", method.to_string()),
            HeaderField::new(":authority", self.authority.clone()),
            HeaderField::new("content-type", "application/grpc"),
            HeaderField::new("te", "trailers"),
            HeaderField::new("user-agent", self.options.user_agent.clone()),
            HeaderField::new("grpc-accept-encoding", grpc::accept_encoding_header()),
        ];
        if let Some(deadline) = deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            fields.push(HeaderField::new("grpc-timeout", grpc::format_timeout(left)));
        }
        if encoding != Encoding::Identity {
            fields.push(HeaderField::new("grpc-encoding", encoding.as_str()));
        }
        let mut metadata = options.metadata.clone();
        if let Some(credentials) = &options.credentials {
            metadata.extend_from(&credentials(method)?);
        }
        metadata.to_headers(&mut fields);
        calls.lock().insert(key, call.clone());
        if let Some(deadline) = deadline {
            self.deadlines.add(deadline, &call);
        }
        let open = Item::Open {
            key,
            fields,
            end_stream: false,
            quota: Some(call.quota.clone()),
        };
        if let Err(e) = handle.send([open]) {
            calls.lock().remove(&key);
            let _ = e;
            return Err(Status::unavailable("the connection closed"));
        }
        if let Some(request) = unary {
            call.send_message(&request, true, deadline)?;
        }
        Ok(call)
    }

    fn connection_lost(&self) {
        if self.state.get() != ConnectivityState::Shutdown {
            self.state.set(ConnectivityState::Idle);
        }
    }
}

/// The client side of one connection: routes its events to calls.
struct ClientSession {
    calls: Calls,
    draining: Arc<AtomicBool>,
    channel: std::sync::Weak<Inner>,
}

impl ClientSession {
    fn call(&self, key: StreamKey) -> Option<Arc<ClientCall>> {
        self.calls.lock().get(&key).cloned()
    }
}

impl Session for ClientSession {
    fn on_event(&mut self, conn: &mut Connection, event: ConnEvent) {
        match event {
            ConnEvent::Response {
                key,
                head,
                end_stream,
            } => {
                if let Some(call) = self.call(key) {
                    call.on_response(head, end_stream);
                }
            }
            ConnEvent::Data { key, data, .. } => {
                let n = data.len();
                let release = match self.call(key) {
                    Some(call) => call.on_data(data),
                    None => n,
                };
                if release > 0 {
                    conn.release_capacity(key, release);
                }
            }
            ConnEvent::Trailers { key, fields } => {
                if let Some(call) = self.call(key) {
                    call.on_trailers(&fields);
                }
            }
            ConnEvent::Reset { key, reason, .. } => {
                if let Some(call) = self.calls.lock().remove(&key) {
                    call.on_reset(reason);
                }
            }
            ConnEvent::Dropped { key, cause, .. } => {
                if let Some(call) = self.calls.lock().remove(&key) {
                    call.complete(dropped_status(cause));
                }
            }
            ConnEvent::Closed { key } => {
                if let Some(call) = self.calls.lock().remove(&key) {
                    call.complete(Status::internal("the stream closed without a status"));
                }
            }
            ConnEvent::GoAway { .. } => self.draining.store(true, Ordering::Release),
            ConnEvent::ConnectionClosed { reason } => {
                self.draining.store(true, Ordering::Release);
                let status = match &reason {
                    CloseReason::PeerError { reason, debug } => Status::unavailable(format!(
                        "the server closed the connection: {reason} {debug}"
                    )),
                    other => Status::unavailable(format!("the connection closed: {other:?}")),
                };
                for (_, call) in self.calls.lock().drain() {
                    call.complete(status.clone());
                }
                if let Some(channel) = self.channel.upgrade() {
                    channel.connection_lost();
                }
            }
            _ => {}
        }
    }
}

/// The status of a call whose stream loopy dropped.
fn dropped_status(cause: DropCause) -> Status {
    match cause {
        DropCause::PeerGoAway
        | DropCause::GoingAway
        | DropCause::StreamIdsExhausted
        | DropCause::Closed => {
            Status::unavailable(format!("the stream could not be sent ({cause:?})"))
        }
        DropCause::Reset(reason) => Status::new(
            Code::from_h2_reason(reason),
            format!("stream reset: {reason}"),
        ),
        DropCause::FlowControl => {
            Status::internal("the server overflowed the stream's flow-control window")
        }
        DropCause::Cleanup | DropCause::Invalid => {
            Status::internal(format!("the stream was dropped ({cause:?})"))
        }
    }
}

fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// A small xorshift generator of uniform `[0, 1)` values for backoff jitter.
fn fastrand_f64(seed: u64) -> impl FnMut() -> f64 {
    let mut x = seed | 1;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}
