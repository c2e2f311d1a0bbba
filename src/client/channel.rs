//! `Channel`: a lazy client connection to a target (grpc-go's ClientConn).
//!
//! - The target resolves (through the resolver registry) to addresses; each
//!   gets a [`Subchannel`] owning at most one HTTP/2 connection, with its
//!   own connectivity state and reconnect backoff.
//! - Balancing: `pick_first` (default) connects to the addresses in order
//!   and sends every call to the first that is ready; `round_robin`
//!   connects to all of them and rotates calls over the ready ones. The
//!   policy comes from the service config (`loadBalancingConfig` /
//!   `loadBalancingPolicy`).
//! - Picking blocks while something is connecting (or, with
//!   wait-for-ready, until a subchannel is ready), up to the call's
//!   deadline; without wait-for-ready a call fails fast with UNAVAILABLE
//!   when every subchannel is in TRANSIENT_FAILURE (grpc-go's
//!   pickerWrapper).
//! - A maintenance thread reconnects failed subchannels after their
//!   backoff (round_robin also reconnects lost ones at once; pick_first
//!   waits for the next call, as grpc-go), re-resolves on connection loss
//!   (at most every `min_interval`) and on the resolver's slow timer, and
//!   closes connections after `idle_timeout` without calls (the channel
//!   goes IDLE and the next call reconnects).
//! - A connection is left (drained) and a new one made when the server
//!   sends GOAWAY or its stream ids pass 75 % of 2^31. A GOAWAY
//!   `too_many_pings` doubles the keepalive time of later connections
//!   (gRFC A8).
//! - Unary calls follow the method's retry policy (gRFC A6: retryable
//!   codes, exponential backoff with jitter, not once response headers
//!   arrived, `grpc-previous-rpc-attempts`, retry throttling), and are
//!   retried transparently once when the server never saw the stream
//!   (REFUSED_STREAM, dropped under GOAWAY).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use framer::hpack::HeaderField;
use framer::Reason;
use loopy::{DropCause, Item, StreamKey};
use parking_lot::{Condvar, Mutex};

use super::backoff::{Backoff, BackoffConfig};
use super::balancer::{self, Balancer};
use super::call::ClientCall;
use super::connectivity::{ConnectivityState, StateWatch};
use super::resolver::{ResolveGate, ResolvedAddr, ResolverRegistry};
use super::service_config::{LbPolicy, RetryPolicy, RetryThrottle, ServiceConfig};
use super::target::Target;
use super::{CallOptions, StreamingCall, UnaryCall, UnaryShared};
use crate::conn::{CloseReason, ConnConfig, ConnEvent, Connection};
use crate::deadline::Deadlines;
use crate::grpc::{self, Code, Encoding, Status};
use crate::runtime::{ConnHandle, Runtime, RuntimeConfig, Session};

/// Client stream ids past this many make the channel move to a new
/// connection (75 % of 2^31).
const STREAM_ID_ROLLOVER: u32 = 0x6000_0000;

/// A client unary interceptor: the method, the raw request, the call's
/// options, and `next` to invoke (or not).
pub type ClientUnaryInterceptor = Arc<
    dyn Fn(
            &str,
            Bytes,
            &CallOptions,
            &dyn Fn(Bytes, &CallOptions) -> Result<Bytes, Status>,
        ) -> Result<Bytes, Status>
        + Send
        + Sync,
>;

/// A client stream interceptor: the method, the call's options, and `next`
/// that starts the call.
pub type ClientStreamInterceptor = Arc<
    dyn Fn(
            &str,
            &CallOptions,
            &dyn Fn(&CallOptions) -> Result<StreamingCall, Status>,
        ) -> Result<StreamingCall, Status>
        + Send
        + Sync,
>;

/// Channel options (grpc-go's defaults).
#[derive(Clone)]
pub struct ChannelOptions {
    /// Connection settings: windows, client keepalive, limits.
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
    /// The default service config (JSON), used unless the resolver gives
    /// one.
    pub service_config: Option<String>,
    /// Close connections after this long without calls (default 30 min).
    pub idle_timeout: Option<Duration>,
    /// gRFC A105: when every connection to an address is at the server's
    /// MAX_CONCURRENT_STREAMS, open another, up to this many (default 1:
    /// calls queue on the one connection and never fail for it).
    pub max_connections_per_address: usize,
    /// A balancer of your own; overrides the service config's policy.
    pub balancer: Option<Arc<dyn Balancer>>,
    /// Unary interceptors, outermost first (blocking unary calls).
    pub unary_interceptors: Vec<ClientUnaryInterceptor>,
    /// Stream interceptors, outermost first.
    pub stream_interceptors: Vec<ClientStreamInterceptor>,
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
            service_config: None,
            idle_timeout: Some(Duration::from_secs(30 * 60)),
            balancer: None,
            max_connections_per_address: 1,
            unary_interceptors: Vec::new(),
            stream_interceptors: Vec::new(),
        }
    }
}

impl std::fmt::Debug for ChannelOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelOptions")
            .field("event_loops", &self.event_loops)
            .field("idle_timeout", &self.idle_timeout)
            .field("service_config", &self.service_config)
            .finish_non_exhaustive()
    }
}

type Calls = Arc<Mutex<HashMap<StreamKey, Arc<ClientCall>>>>;

/// A live connection of a subchannel.
#[derive(Clone)]
struct Conn {
    handle: ConnHandle,
    calls: Calls,
    /// GOAWAY received or stream ids nearly used up: no new calls here.
    draining: Arc<AtomicBool>,
    last_stream_id: Arc<AtomicU32>,
    /// The server's MAX_CONCURRENT_STREAMS as last seen (A105).
    peer_limit: Arc<AtomicU32>,
}

impl Conn {
    fn usable(&self) -> bool {
        !self.handle.is_closed()
            && !self.draining.load(Ordering::Acquire)
            && self.last_stream_id.load(Ordering::Relaxed) < STREAM_ID_ROLLOVER
    }
}

struct SubState {
    state: ConnectivityState,
    conn: Option<Conn>,
    /// gRFC A105: more connections when the first is at the server's
    /// MAX_CONCURRENT_STREAMS (only with `max_connections_per_address` > 1).
    extra: Vec<Conn>,
    /// An extra connection is being made.
    growing: bool,
    backoff: Backoff,
    retry_at: Option<Instant>,
    last_error: Option<Status>,
}

/// One address and its connection.
pub(crate) struct Subchannel {
    addr: ResolvedAddr,
    inner: Mutex<SubState>,
}

impl SubState {
    /// Every connection, taken out (to close them outside the lock).
    fn take_all(&mut self) -> Vec<Conn> {
        let mut all: Vec<Conn> = self.conn.take().into_iter().collect();
        all.append(&mut self.extra);
        all
    }
}

impl Subchannel {
    /// A usable connection with room for another stream; with A105 on and
    /// every connection full, the least loaded one (the call queues there
    /// while another connection is made: `grow` says so).
    fn pick_conn(&self, max_connections: usize) -> (Option<Conn>, bool) {
        let Some(first) = self.ready_conn() else {
            return (None, false);
        };
        if max_connections <= 1 {
            return (Some(first), false);
        }
        let (mut conns, growing) = {
            let mut sub = self.inner.lock();
            sub.extra.retain(Conn::usable);
            (sub.extra.clone(), sub.growing)
        };
        conns.insert(0, first);
        let mut best: Option<(Conn, usize)> = None;
        for conn in conns.iter() {
            // Never block here: a call may be started from a completion
            // callback running on this connection's loop, holding its lock.
            // When it is locked, estimate from the calls in flight there and
            // the peer's limit as last seen.
            let (open, limit, waiting) = match conn.handle.try_with(|c| c.stream_capacity()) {
                Some((open, limit, waiting)) => {
                    conn.peer_limit.store(limit, Ordering::Relaxed);
                    (open, limit, waiting)
                }
                None => {
                    let in_flight = u32::try_from(conn.calls.lock().len()).unwrap_or(u32::MAX);
                    (in_flight, conn.peer_limit.load(Ordering::Relaxed), 0)
                }
            };
            if open < limit && waiting == 0 {
                return (Some(conn.clone()), false);
            }
            let load = open as usize + waiting;
            if best.as_ref().is_none_or(|(_, l)| load < *l) {
                best = Some((conn.clone(), load));
            }
        }
        let grow = !growing && conns.len() < max_connections;
        (best.map(|(c, _)| c), grow)
    }

    fn ready_conn(&self) -> Option<Conn> {
        let left = {
            let mut sub = self.inner.lock();
            match &sub.conn {
                Some(conn) if conn.usable() => return Some(conn.clone()),
                Some(_) => {
                    sub.state = ConnectivityState::Idle;
                    sub.conn.take()
                }
                None => return None,
            }
        };
        // Left behind: its calls finish, new ones go elsewhere. (Never
        // touch a connection while holding a channel lock: its session
        // calls back into the channel with the connection locked.)
        if let Some(conn) = left {
            if !conn.handle.is_closed() {
                conn.handle.shutdown();
            }
        }
        None
    }

    fn state(&self) -> ConnectivityState {
        self.inner.lock().state
    }

    /// Idle, or failed and past its backoff.
    fn connectable(&self, now: Instant) -> bool {
        let sub = self.inner.lock();
        match sub.state {
            ConnectivityState::Idle => true,
            ConnectivityState::TransientFailure => sub.retry_at.is_none_or(|at| at <= now),
            _ => false,
        }
    }
}

/// The parsed service config in force, its throttle and its balancer.
struct Config {
    parsed: Option<ServiceConfig>,
    throttle: Option<Arc<RetryThrottle>>,
    balancer: Arc<dyn Balancer>,
}

pub(crate) struct Inner {
    target: Target,
    authority: String,
    options: ChannelOptions,
    runtime: Mutex<Option<Arc<Runtime>>>,
    deadlines: Arc<Deadlines>,
    state: StateWatch,
    subchannels: Mutex<Vec<Arc<Subchannel>>>,
    config: Mutex<Arc<Config>>,
    resolve_gate: Mutex<ResolveGate>,
    needs_resolve: AtomicBool,
    last_resolve: Mutex<Option<Instant>>,
    /// Bumped and notified on every subchannel change (the picker waits).
    picker: (Mutex<u64>, Condvar),
    inflight: Arc<AtomicUsize>,
    last_active: Mutex<Instant>,
    keepalive_time: Mutex<Option<Duration>>,
    shutdown: AtomicBool,
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
    /// The default service config is invalid.
    ServiceConfig(super::service_config::ServiceConfigError),
    /// The runtime could not start.
    Io(std::io::Error),
}

impl std::fmt::Display for ChannelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChannelError::Target(e) => write!(f, "bad target: {e}"),
            ChannelError::ServiceConfig(e) => write!(f, "bad service config: {e}"),
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
        let parsed = match &options.service_config {
            Some(json) => {
                Some(ServiceConfig::from_json(json).map_err(ChannelError::ServiceConfig)?)
            }
            None => None,
        };
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
        let min_interval = options
            .resolvers
            .resolver_for(&target)
            .map_or(Duration::from_secs(30), |r| r.min_interval());
        let inner = Arc::new(Inner {
            authority: target.authority(),
            target,
            config: Mutex::new(Arc::new(Config::new(parsed))),
            keepalive_time: Mutex::new(options.conn.client_keepalive.time),
            options,
            runtime: Mutex::new(Some(Arc::new(runtime))),
            deadlines,
            state: StateWatch::new(ConnectivityState::Idle),
            subchannels: Mutex::new(Vec::new()),
            resolve_gate: Mutex::new(ResolveGate::new(min_interval)),
            needs_resolve: AtomicBool::new(true),
            last_resolve: Mutex::new(None),
            picker: (Mutex::new(0), Condvar::new()),
            inflight: Arc::new(AtomicUsize::new(0)),
            last_active: Mutex::new(Instant::now()),
            shutdown: AtomicBool::new(false),
        });
        let weak = Arc::downgrade(&inner);
        std::thread::Builder::new()
            .name("mio-grpc-channel".into())
            .spawn(move || maintain(weak))
            .map_err(ChannelError::Io)?;
        Ok(Channel { inner })
    }

    /// The connectivity state; with `try_connect`, an IDLE channel starts
    /// connecting.
    pub fn state(&self, try_connect: bool) -> ConnectivityState {
        self.inner.update_state();
        if try_connect && self.inner.state.get() == ConnectivityState::Idle {
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
        let _ = self.inner.ensure_subchannels();
        self.inner.kick();
    }

    /// Closes the channel: calls in flight fail, new calls fail, the state
    /// is SHUTDOWN.
    pub fn close(&self) {
        self.inner.close();
    }

    /// A unary call with raw bytes, blocking (through the unary interceptors).
    pub fn unary_raw(
        &self,
        method: &str,
        request: Bytes,
        options: CallOptions,
    ) -> Result<Bytes, Status> {
        fn chain(
            channel: &Channel,
            interceptors: &[ClientUnaryInterceptor],
            method: &str,
            request: Bytes,
            options: &CallOptions,
        ) -> Result<Bytes, Status> {
            match interceptors.split_first() {
                None => channel
                    .start_unary_raw(method, request, options.clone())
                    .wait(),
                Some((first, rest)) => first(method, request, options, &|request, options| {
                    chain(channel, rest, method, request, options)
                }),
            }
        }
        chain(
            self,
            &self.inner.options.unary_interceptors,
            method,
            request,
            &options,
        )
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
    /// the result, so one thread can keep many calls in flight. Retries per
    /// the method's retry policy happen behind the handle.
    pub fn start_unary_raw(&self, method: &str, request: Bytes, options: CallOptions) -> UnaryCall {
        let options = self.inner.apply_method_config(method, options);
        let shared = Arc::new(UnaryShared::default());
        let retry = self
            .inner
            .config
            .lock()
            .parsed
            .as_ref()
            .and_then(|c| c.method_config(method))
            .and_then(|m| m.retry_policy.clone());
        attempt(
            self.inner.clone(),
            shared.clone(),
            method.to_string(),
            request,
            options,
            retry,
            1,
            1,
        );
        UnaryCall::new(shared)
    }

    /// Starts a streaming call (client-, server- or bidi-streaming: send,
    /// close_send, recv), through the stream interceptors.
    pub fn streaming_raw(
        &self,
        method: &str,
        options: CallOptions,
    ) -> Result<StreamingCall, Status> {
        let options = self.inner.apply_method_config(method, options);
        fn chain(
            inner: &Arc<Inner>,
            interceptors: &[ClientStreamInterceptor],
            method: &str,
            options: &CallOptions,
        ) -> Result<StreamingCall, Status> {
            match interceptors.split_first() {
                None => {
                    let call = inner.start(method, options, None)?;
                    let retry = inner
                        .config
                        .lock()
                        .parsed
                        .as_ref()
                        .and_then(|c| c.method_config(method))
                        .and_then(|m| m.retry_policy.clone());
                    Ok(StreamingCall::new(
                        inner.clone(),
                        method,
                        options.clone(),
                        retry,
                        call,
                    ))
                }
                Some((first, rest)) => first(method, options, &|options| {
                    chain(inner, rest, method, options)
                }),
            }
        }
        chain(
            &self.inner,
            &self.inner.options.stream_interceptors,
            method,
            &options,
        )
    }

    /// Subchannel states in address order (for tests and dashboards).
    pub fn subchannel_states(&self) -> Vec<(ResolvedAddr, ConnectivityState)> {
        self.inner
            .subchannels
            .lock()
            .iter()
            .map(|s| (s.addr.clone(), s.state()))
            .collect()
    }
}

/// Runs one attempt of a unary call and, when it ends, retries or
/// finishes the handle.
#[allow(clippy::too_many_arguments)]
fn attempt(
    inner: Arc<Inner>,
    shared: Arc<UnaryShared>,
    method: String,
    request: Bytes,
    mut options: CallOptions,
    retry: Option<RetryPolicy>,
    number: u32,
    transparent_left: u32,
) {
    options.previous_attempts = number - 1;
    let call = match inner.start(&method, &options, Some(request.clone())) {
        Ok(call) => call,
        Err(status) => return shared.finish(Err(status)),
    };
    shared.set_current(call.clone());
    let attempt_call = call.clone();
    call.on_complete(Box::new(move |status: &Status| {
        let throttle = inner.config.lock().throttle.clone();
        if status.code() == Code::Ok {
            if let Some(t) = &throttle {
                t.record_success();
            }
            return shared.finish(attempt_call.take_unary(status));
        }
        if shared.is_cancelled() {
            return shared.finish(Err(status.clone()));
        }
        let deadline_left = options.deadline().is_none_or(|d| d > Instant::now());
        // Transparent retry: the server never saw the stream.
        if attempt_call.was_unsent() && transparent_left > 0 && deadline_left {
            let again = (
                inner.clone(),
                shared.clone(),
                method.clone(),
                request.clone(),
                options.clone(),
            );
            spawn_retry(Duration::ZERO, move || {
                attempt(
                    again.0,
                    again.1,
                    again.2,
                    again.3,
                    again.4,
                    retry,
                    number,
                    transparent_left - 1,
                )
            });
            return;
        }
        let retryable = retry
            .as_ref()
            .is_some_and(|p| p.is_retryable(status.code()));
        if retryable {
            let throttled = throttle.as_ref().is_some_and(|t| !t.record_failure());
            let policy = retry.clone();
            if let Some(policy) = policy.filter(|p| {
                number < p.max_attempts && !attempt_call.committed() && !throttled && deadline_left
            }) {
                let mut rng = jitter_rng(u64::from(number) ^ now_nanos());
                let delay = policy.retry_delay(number - 1, &mut rng);
                let again = (
                    inner.clone(),
                    shared.clone(),
                    method.clone(),
                    request.clone(),
                    options.clone(),
                );
                spawn_retry(delay, move || {
                    attempt(
                        again.0,
                        again.1,
                        again.2,
                        again.3,
                        again.4,
                        Some(policy),
                        number + 1,
                        transparent_left,
                    )
                });
                return;
            }
        }
        shared.finish(Err(status.clone()));
    }));
}

fn spawn_retry(delay: Duration, f: impl FnOnce() + Send + 'static) {
    let _ = std::thread::Builder::new()
        .name("mio-grpc-retry".into())
        .spawn(move || {
            std::thread::sleep(delay);
            f();
        });
}

impl Config {
    fn new(parsed: Option<ServiceConfig>) -> Config {
        let throttle = parsed
            .as_ref()
            .and_then(ServiceConfig::retry_throttling)
            .map(|p| Arc::new(RetryThrottle::new(p)));
        let policy = parsed
            .as_ref()
            .and_then(ServiceConfig::lb_policy)
            .unwrap_or(LbPolicy::PickFirst);
        Config {
            parsed,
            throttle,
            balancer: balancer::for_policy(policy),
        }
    }
}

impl Inner {
    /// The balancer in force: the channel's own, or the service config's
    /// policy (one instance per config, so round_robin keeps its place).
    fn balancer(&self) -> Arc<dyn Balancer> {
        if let Some(balancer) = &self.options.balancer {
            return balancer.clone();
        }
        self.config.lock().balancer.clone()
    }
}

impl Inner {
    fn close(&self) {
        self.shutdown.store(true, Ordering::Release);
        self.state.set(ConnectivityState::Shutdown);
        // Never touch a connection while holding a channel lock: its
        // session calls back into the channel with the connection locked.
        let subs: Vec<Arc<Subchannel>> = std::mem::take(&mut *self.subchannels.lock());
        for sub in subs {
            let conns = sub.inner.lock().take_all();
            for conn in conns {
                // Calls fail with CANCELLED first: closing the connection
                // would otherwise end them as UNAVAILABLE (first status wins).
                fail_all(
                    &conn.calls,
                    &Status::cancelled("grpc: the client connection is closing"),
                );
                conn.handle.close(Reason::NO_ERROR, "channel closed");
            }
        }
        // The loops stop when the last holder (a connect in progress) lets go.
        drop(self.runtime.lock().take());
        self.deadlines.stop();
        self.notify();
    }

    fn notify(&self) {
        *self.picker.0.lock() += 1;
        self.picker.1.notify_all();
        self.update_state();
    }

    /// The channel's state from its subchannels'.
    fn update_state(&self) {
        if self.shutdown.load(Ordering::Acquire) {
            return;
        }
        let subs = self.subchannels.lock();
        let states: Vec<ConnectivityState> = subs.iter().map(|s| s.state()).collect();
        let state = if states.contains(&ConnectivityState::Ready) {
            ConnectivityState::Ready
        } else if states.contains(&ConnectivityState::Connecting) {
            ConnectivityState::Connecting
        } else if !states.is_empty()
            && states
                .iter()
                .all(|s| *s == ConnectivityState::TransientFailure)
        {
            ConnectivityState::TransientFailure
        } else {
            ConnectivityState::Idle
        };
        drop(subs);
        self.state.set(state);
    }

    /// Resolves when asked to (first use, connection loss, refresh) and
    /// the gate allows; keeps subchannels whose address stays.
    fn ensure_subchannels(self: &Arc<Self>) -> Result<(), Status> {
        let empty = self.subchannels.lock().is_empty();
        if !empty && !self.needs_resolve.load(Ordering::Acquire) {
            return Ok(());
        }
        if !empty && !self.resolve_gate.lock().try_begin(Instant::now()) {
            return Ok(());
        }
        self.needs_resolve.store(false, Ordering::Release);
        let update = match self.options.resolvers.resolve(&self.target) {
            Ok(update) => update,
            Err(e) => {
                if empty {
                    return Err(Status::unavailable(format!(
                        "name resolution failed: {}",
                        e.message()
                    )));
                }
                return Ok(());
            }
        };
        *self.last_resolve.lock() = Some(Instant::now());
        if let Some(json) = &update.service_config {
            if let Ok(parsed) = ServiceConfig::from_json(json) {
                *self.config.lock() = Arc::new(Config::new(Some(parsed)));
            }
        }
        let addrs: Vec<ResolvedAddr> = update.addresses.iter().map(|a| a.addr.clone()).collect();
        if addrs.is_empty() {
            return Err(Status::unavailable(format!(
                "{} resolved to no addresses",
                self.authority
            )));
        }
        let mut subs = self.subchannels.lock();
        let mut next = Vec::with_capacity(addrs.len());
        for addr in addrs {
            match subs.iter().position(|s| s.addr == addr) {
                Some(i) => next.push(subs.swap_remove(i)),
                None => next.push(Arc::new(Subchannel {
                    addr,
                    inner: Mutex::new(SubState {
                        state: ConnectivityState::Idle,
                        conn: None,
                        extra: Vec::new(),
                        growing: false,
                        backoff: Backoff::new(self.options.backoff),
                        retry_at: None,
                        last_error: None,
                    }),
                })),
            }
        }
        let gone: Vec<Arc<Subchannel>> = subs.drain(..).collect();
        *subs = next;
        drop(subs);
        for sub in gone {
            let conns = sub.inner.lock().take_all();
            for conn in conns {
                conn.handle.shutdown();
            }
        }
        self.notify();
        Ok(())
    }

    /// Starts connecting what the policy wants connected.
    fn kick(self: &Arc<Self>) {
        let now = Instant::now();
        let subs = self.subchannels.lock().clone();
        match self.balancer().connects_all() {
            true => {
                for sub in subs.iter().filter(|s| s.connectable(now)) {
                    self.connect_sub(sub.clone());
                }
            }
            false => {
                let busy = subs.iter().any(|s| {
                    matches!(
                        s.state(),
                        ConnectivityState::Ready | ConnectivityState::Connecting
                    )
                });
                if !busy {
                    if let Some(sub) = subs.iter().find(|s| s.connectable(now)) {
                        self.connect_sub(sub.clone());
                    }
                }
            }
        }
    }

    /// gRFC A105: one more connection for a subchannel whose connections
    /// are at the server's MAX_CONCURRENT_STREAMS.
    fn grow(self: &Arc<Self>, sub: Arc<Subchannel>) {
        {
            let mut state = sub.inner.lock();
            if state.growing {
                return;
            }
            state.growing = true;
        }
        let inner = self.clone();
        let _ = std::thread::Builder::new()
            .name("mio-grpc-connect".into())
            .spawn(move || {
                let result = inner.dial(&sub);
                let mut state = sub.inner.lock();
                state.growing = false;
                if let Ok(conn) = result {
                    state.extra.push(conn);
                }
                drop(state);
                inner.notify();
            });
    }

    /// Connects one subchannel on a short-lived thread.
    fn connect_sub(self: &Arc<Self>, sub: Arc<Subchannel>) {
        {
            let mut state = sub.inner.lock();
            if state.state == ConnectivityState::Connecting
                || state.conn.as_ref().is_some_and(Conn::usable)
            {
                return;
            }
            state.state = ConnectivityState::Connecting;
        }
        self.notify();
        let inner = self.clone();
        let _ = std::thread::Builder::new()
            .name("mio-grpc-connect".into())
            .spawn(move || {
                let result = inner.dial(&sub);
                {
                    let mut state = sub.inner.lock();
                    match result {
                        Ok(conn) => {
                            state.conn = Some(conn);
                            state.state = ConnectivityState::Ready;
                            state.retry_at = None;
                            state.last_error = None;
                            state.backoff.reset();
                        }
                        Err(status) => {
                            let mut rng = jitter_rng(0);
                            let delay = state.backoff.next_delay(&mut rng);
                            state.retry_at = Some(Instant::now() + delay);
                            state.last_error = Some(status);
                            state.state = ConnectivityState::TransientFailure;
                        }
                    }
                }
                inner.notify();
                // pick_first moves on to the next address at once.
                inner.kick();
            });
    }

    fn dial(self: &Arc<Self>, sub: &Arc<Subchannel>) -> Result<Conn, Status> {
        let timeout = sub.inner.lock().backoff.connect_timeout(Duration::ZERO);
        let mut config = self.options.conn.clone();
        config.client_keepalive.time = *self.keepalive_time.lock();
        // A clone: a blocking connect must not hold the channel's lock.
        let runtime = self.runtime.lock().clone();
        let Some(runtime) = runtime else {
            return Err(Status::cancelled("grpc: the client connection is closing"));
        };
        let calls: Calls = Arc::default();
        let draining = Arc::new(AtomicBool::new(false));
        let last_stream_id = Arc::new(AtomicU32::new(0));
        let session = ClientSession {
            calls: calls.clone(),
            draining: draining.clone(),
            last_stream_id: last_stream_id.clone(),
            channel: Arc::downgrade(self),
            sub: Arc::downgrade(sub),
        };
        let factory = move |_| Box::new(session) as Box<dyn Session>;
        let connected = match &sub.addr {
            ResolvedAddr::Tcp(addr) => runtime.connect(*addr, timeout, config, factory),
            ResolvedAddr::Unix(path) => runtime.connect_unix(path, timeout, config, factory),
            ResolvedAddr::UnixAbstract(name) => {
                runtime.connect_unix_abstract(name, timeout, config, factory)
            }
        };
        match connected {
            Ok(handle) => Ok(Conn {
                handle,
                calls,
                draining,
                last_stream_id,
                peer_limit: Arc::new(AtomicU32::new(u32::MAX)),
            }),
            Err(e) => Err(Status::unavailable(format!(
                "connection to {} failed: {e}",
                sub.addr
            ))),
        }
    }

    /// A ready connection for a call (grpc-go's pickerWrapper).
    fn pick(
        self: &Arc<Self>,
        deadline: Option<Instant>,
        wait_for_ready: bool,
    ) -> Result<Conn, Status> {
        loop {
            if self.shutdown.load(Ordering::Acquire) {
                return Err(Status::cancelled("grpc: the client connection is closing"));
            }
            if let Err(status) = self.ensure_subchannels() {
                if !wait_for_ready {
                    return Err(status);
                }
            }
            let generation = *self.picker.0.lock();
            let subs = self.subchannels.lock().clone();
            let ready: Vec<&Arc<Subchannel>> = subs
                .iter()
                .filter(|s| s.state() == ConnectivityState::Ready)
                .collect();
            if !ready.is_empty() {
                let addrs: Vec<ResolvedAddr> = ready.iter().map(|s| s.addr.clone()).collect();
                let i = self.balancer().pick(&addrs);
                if let Some(sub) = ready.get(i) {
                    let (conn, grow) = sub.pick_conn(self.options.max_connections_per_address);
                    if grow {
                        self.grow(Arc::clone(sub));
                    }
                    if let Some(conn) = conn {
                        return Ok(conn);
                    }
                }
                // The chosen one just went away: look again.
                continue;
            }
            self.kick();
            let failed = !subs.is_empty()
                && subs
                    .iter()
                    .all(|s| s.state() == ConnectivityState::TransientFailure);
            if failed && !wait_for_ready {
                let error = subs.iter().find_map(|s| s.inner.lock().last_error.clone());
                return Err(error.unwrap_or_else(|| Status::unavailable("no subchannel is ready")));
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| d <= now) {
                return Err(Status::deadline_exceeded(
                    "deadline exceeded while waiting for a connection",
                ));
            }
            let until = deadline.map_or(now + Duration::from_millis(100), |d| {
                d.min(now + Duration::from_millis(100))
            });
            let mut current = self.picker.0.lock();
            if *current == generation {
                let _ = self.picker.1.wait_until(&mut current, until);
            }
        }
    }

    /// Method config defaults for a call (timeout, wait-for-ready, sizes).
    fn apply_method_config(&self, method: &str, mut options: CallOptions) -> CallOptions {
        let config = self.config.lock().clone();
        if let Some(mc) = config.parsed.as_ref().and_then(|c| c.method_config(method)) {
            if let Some(timeout) = mc.timeout {
                let configured = Instant::now() + timeout;
                options.deadline = Some(options.deadline.map_or(configured, |d| d.min(configured)));
            }
            if let Some(wfr) = mc.wait_for_ready {
                options.wait_for_ready |= wfr;
            }
            if let Some(n) = mc.max_request_message_bytes {
                options.max_send_message_size =
                    Some(options.max_send_message_size.map_or(n, |m| m.min(n)));
            }
            if let Some(n) = mc.max_response_message_bytes {
                options.max_receive_message_size =
                    Some(options.max_receive_message_size.map_or(n, |m| m.min(n)));
            }
        }
        options
    }

    /// Starts a call: picks a connection, registers the call, opens the
    /// stream (with the whole request, for unary calls).
    fn start(
        self: &Arc<Self>,
        method: &str,
        options: &CallOptions,
        unary: Option<Bytes>,
    ) -> Result<Arc<ClientCall>, Status> {
        let deadline = options.deadline();
        let conn = self.pick(deadline, options.wait_for_ready)?;
        let handle = conn.handle.clone();
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
        call.track(self.inflight.clone());
        *self.last_active.lock() = Instant::now();
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
        if options.previous_attempts > 0 {
            fields.push(HeaderField::new(
                "grpc-previous-rpc-attempts",
                options.previous_attempts.to_string(),
            ));
        }
        let mut metadata = options.metadata.clone();
        if let Some(credentials) = &options.credentials {
            metadata.extend_from(&credentials(method)?);
        }
        metadata.to_headers(&mut fields);
        conn.calls.lock().insert(key, call.clone());
        if let Some(deadline) = deadline {
            self.deadlines.add(deadline, &call);
        }
        let open = Item::Open {
            key,
            fields,
            end_stream: false,
            quota: Some(call.quota.clone()),
        };
        if handle.send([open]).is_err() {
            conn.calls.lock().remove(&key);
            call.mark_unsent();
            call.complete(Status::unavailable("the connection closed"));
            return Ok(call);
        }
        if let Some(request) = unary {
            if let Err(status) = call.send_message(&request, true, deadline) {
                call.cancel(status);
            }
        }
        Ok(call)
    }

    /// A new attempt of a streaming call (retries).
    pub(crate) fn start_stream_attempt(
        self: &Arc<Self>,
        method: &str,
        options: &CallOptions,
    ) -> Result<Arc<ClientCall>, Status> {
        self.start(method, options, None)
    }

    /// Retry throttling: may another retry go now?
    pub(crate) fn retry_allowed(&self) -> bool {
        let throttle = self.config.lock().throttle.clone();
        throttle.is_none_or(|t| t.retry_allowed())
    }

    /// Retry throttling: a call ended (success, or a retryable failure).
    pub(crate) fn record_outcome(&self, ok: bool, retryable_failure: bool) {
        if let Some(throttle) = self.config.lock().throttle.clone() {
            if ok {
                throttle.record_success();
            } else if retryable_failure {
                throttle.record_failure();
            }
        }
    }

    /// A subchannel's connection went away.
    fn connection_lost(self: &Arc<Self>, sub: &Subchannel) {
        {
            let mut state = sub.inner.lock();
            if state.conn.as_ref().is_some_and(|c| !c.usable()) {
                // An extra connection, if any, takes over as the first.
                state.extra.retain(Conn::usable);
                state.conn = state.extra.pop();
            }
            if state.conn.is_none() && state.state == ConnectivityState::Ready {
                state.state = ConnectivityState::Idle;
            }
        }
        self.needs_resolve.store(true, Ordering::Release);
        self.notify();
    }

    /// The maintenance tick: background reconnects, idle timeout, refresh.
    fn tick(self: &Arc<Self>) {
        let now = Instant::now();
        let connects_all = self.balancer().connects_all();
        let subs = self.subchannels.lock().clone();
        // Failed subchannels come back after their backoff; round_robin
        // also reconnects lost ones at once.
        let wanted = |s: &Subchannel| match s.state() {
            ConnectivityState::TransientFailure => s.connectable(now),
            ConnectivityState::Idle => connects_all && self.state.get() != ConnectivityState::Idle,
            _ => false,
        };
        if subs.iter().any(|s| wanted(s)) {
            self.kick();
        }
        if let Some(idle) = self.options.idle_timeout {
            let quiet = self.inflight.load(Ordering::Acquire) == 0
                && now.saturating_duration_since(*self.last_active.lock()) >= idle;
            if quiet && self.state.get() != ConnectivityState::Idle {
                for sub in &subs {
                    let conns = {
                        let mut state = sub.inner.lock();
                        state.state = ConnectivityState::Idle;
                        state.retry_at = None;
                        state.take_all()
                    };
                    for conn in conns {
                        conn.handle.shutdown();
                    }
                }
                self.state.set(ConnectivityState::Idle);
                self.notify();
            }
        }
        let refresh = self
            .options
            .resolvers
            .resolver_for(&self.target)
            .ok()
            .and_then(|r| r.refresh_interval());
        if let (Some(every), Some(last)) = (refresh, *self.last_resolve.lock()) {
            if now.saturating_duration_since(last) >= every {
                self.needs_resolve.store(true, Ordering::Release);
            }
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.deadlines.stop();
        drop(self.runtime.lock().take());
    }
}

/// The channel's maintenance thread: ends when the channel is dropped or
/// closed.
fn maintain(inner: Weak<Inner>) {
    loop {
        std::thread::sleep(Duration::from_millis(25));
        let Some(inner) = inner.upgrade() else { return };
        if inner.shutdown.load(Ordering::Acquire) {
            return;
        }
        inner.tick();
    }
}

fn fail_all(calls: &Calls, status: &Status) {
    for (_, call) in calls.lock().drain() {
        call.complete(status.clone());
    }
}

/// The client side of one connection: routes its events to calls.
struct ClientSession {
    calls: Calls,
    draining: Arc<AtomicBool>,
    last_stream_id: Arc<AtomicU32>,
    channel: Weak<Inner>,
    sub: Weak<Subchannel>,
}

impl ClientSession {
    fn call(&self, key: StreamKey) -> Option<Arc<ClientCall>> {
        self.calls.lock().get(&key).cloned()
    }

    fn lost(&self) {
        if let (Some(channel), Some(sub)) = (self.channel.upgrade(), self.sub.upgrade()) {
            channel.connection_lost(&sub);
        }
    }
}

impl Session for ClientSession {
    fn on_event(&mut self, conn: &mut Connection, event: ConnEvent) {
        match event {
            ConnEvent::Opened { id, .. } => {
                self.last_stream_id.store(id.value(), Ordering::Relaxed);
            }
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
                let release = self.call(key).map_or(n, |call| call.on_data(data));
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
                    if reason == Reason::REFUSED_STREAM {
                        call.mark_unsent();
                    }
                    call.on_reset(reason);
                }
            }
            ConnEvent::Dropped { key, cause, opened } => {
                if let Some(call) = self.calls.lock().remove(&key) {
                    if !opened || cause == DropCause::PeerGoAway {
                        call.mark_unsent();
                    }
                    call.complete(dropped_status(cause));
                }
            }
            ConnEvent::Closed { key } => {
                if let Some(call) = self.calls.lock().remove(&key) {
                    call.complete(Status::internal("the stream closed without a status"));
                }
            }
            ConnEvent::GoAway {
                reason, debug_data, ..
            } => {
                self.draining.store(true, Ordering::Release);
                if reason == Reason::ENHANCE_YOUR_CALM && &debug_data[..] == b"too_many_pings" {
                    // gRFC A8: ping half as often from now on.
                    if let Some(channel) = self.channel.upgrade() {
                        let mut time = channel.keepalive_time.lock();
                        if let Some(t) = time.as_mut() {
                            *t = t.saturating_mul(2);
                        }
                    }
                }
                self.lost();
            }
            ConnEvent::ConnectionClosed { reason } => {
                self.draining.store(true, Ordering::Release);
                let status = match &reason {
                    CloseReason::PeerError { reason, debug } => Status::unavailable(format!(
                        "the server closed the connection: {reason} {debug}"
                    )),
                    other => Status::unavailable(format!("the connection closed: {other:?}")),
                };
                fail_all(&self.calls, &status);
                self.lost();
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

/// A small xorshift generator of uniform `[0, 1)` values for jitter.
fn jitter_rng(seed: u64) -> impl FnMut() -> f64 {
    let mut x = (seed ^ now_nanos()) | 1;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}
