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

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use framer::hpack::HeaderField;
use framer::Reason;
use parking_lot::{Condvar, Mutex};

use super::backoff::BackoffConfig;
use super::balancer::{self, Balancer};
use super::call::ClientCall;
use super::connectivity::{ConnectivityState, StateWatch};
use super::resolver::{ResolveGate, ResolvedAddr, ResolverRegistry};
use super::retry::attempt;
use super::service_config::{LbPolicy, RetryThrottle, ServiceConfig};
use super::subchannel::{Calls, Subchannel};
use super::target::Target;
use super::{CallOptions, StreamingCall, UnaryCall, UnaryShared};
use crate::conn::{Command, ConnConfig};
use crate::deadline::Deadlines;
use crate::grpc::{self, Encoding, Status};
use crate::runtime::{Runtime, RuntimeConfig};

/// A client unary interceptor: the method, the raw request, the call's
/// options, and `next` to invoke (or not). It runs on every unary call:
/// [`Channel::unary_raw`] (and `unary`, and generated blocking methods)
/// and [`Channel::start_unary_raw`] (and generated `*_start` methods).
///
/// What it gives `next` — the request, and options with metadata added
/// (an auth header), a deadline or compression — is what is sent, on both
/// paths. On the blocking path `next` returns the call's result. On the
/// non-blocking start path the call must not be waited for: `next`
/// starts it and returns at once with an empty placeholder (`Ok` of no
/// bytes), and the handle gets the real result; so an interceptor that
/// looks at results (logging a status, mapping errors, retrying) sees
/// them only on the blocking path. An interceptor that does not call
/// `next` answers the call itself on either path: its `Ok` or `Err` is
/// the call's result and nothing is sent (a cache hit, a refusal).
///
/// ```
/// use std::sync::Arc;
/// use mio_grpc::client::{ChannelOptions, ClientUnaryInterceptor};
///
/// let auth: ClientUnaryInterceptor = Arc::new(|_method, request, options, next| {
///     let mut options = options.clone();
///     options.metadata.insert("authorization", "Bearer t0ken").unwrap();
///     next(request, &options)
/// });
/// let options = ChannelOptions { unary_interceptors: vec![auth], ..ChannelOptions::default() };
/// # drop(options);
/// ```
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
    /// Unary interceptors, outermost first (blocking and started unary
    /// calls: see [`ClientUnaryInterceptor`]).
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

/// The parsed service config in force, its throttle and its balancer.
pub(super) struct Config {
    pub(super) parsed: Option<ServiceConfig>,
    pub(super) throttle: Option<Arc<RetryThrottle>>,
    balancer: Arc<dyn Balancer>,
}

pub(crate) struct Inner {
    pub(super) target: Target,
    pub(super) authority: String,
    /// `:authority` and `user-agent` as header values, made once: each
    /// call's HEADERS takes a reference, not a copy.
    authority_value: Bytes,
    user_agent_value: Bytes,
    pub(super) options: ChannelOptions,
    pub(super) runtime: Mutex<Option<Arc<Runtime>>>,
    pub(super) deadlines: Arc<Deadlines>,
    pub(super) state: StateWatch,
    pub(super) subchannels: Mutex<Vec<Arc<Subchannel>>>,
    pub(super) config: Mutex<Arc<Config>>,
    pub(super) resolve_gate: Mutex<ResolveGate>,
    pub(super) needs_resolve: AtomicBool,
    pub(super) last_resolve: Mutex<Option<Instant>>,
    /// Bumped and notified on every subchannel change (the picker waits).
    pub(super) picker: (Mutex<u64>, Condvar),
    pub(super) inflight: Arc<AtomicUsize>,
    pub(super) last_active: Mutex<Instant>,
    pub(super) keepalive_time: Mutex<Option<Duration>>,
    pub(super) shutdown: AtomicBool,
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
        let authority_value = Bytes::copy_from_slice(target.authority().as_bytes());
        let user_agent_value = Bytes::copy_from_slice(options.user_agent.as_bytes());
        let inner = Arc::new(Inner {
            authority: target.authority(),
            authority_value,
            user_agent_value,
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
                    .start_unary_direct(method, request, options.clone())
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
    /// the method's retry policy happen behind the handle. The unary
    /// interceptors run first, with a `next` that starts the call without
    /// waiting for it (see [`ClientUnaryInterceptor`]).
    pub fn start_unary_raw(&self, method: &str, request: Bytes, options: CallOptions) -> UnaryCall {
        let interceptors = &self.inner.options.unary_interceptors;
        if interceptors.is_empty() {
            return self.start_unary_direct(method, request, options);
        }
        /// The chain with a `next` that starts the call (once) into
        /// `started` and returns a placeholder.
        fn chain(
            channel: &Channel,
            interceptors: &[ClientUnaryInterceptor],
            method: &str,
            request: Bytes,
            options: &CallOptions,
            started: &std::cell::RefCell<Option<UnaryCall>>,
        ) -> Result<Bytes, Status> {
            match interceptors.split_first() {
                None => {
                    if started.borrow().is_some() {
                        return Err(Status::internal(
                            "a unary interceptor called `next` twice on a started call \
                             (retries belong to the method's retry policy)",
                        ));
                    }
                    let call = channel.start_unary_direct(method, request, options.clone());
                    *started.borrow_mut() = Some(call);
                    Ok(Bytes::new())
                }
                Some((first, rest)) => first(method, request, options, &|request, options| {
                    chain(channel, rest, method, request, options, started)
                }),
            }
        }
        let started = std::cell::RefCell::new(None);
        let answer = chain(self, interceptors, method, request, &options, &started);
        match started.into_inner() {
            Some(call) => call,
            // No `next`: the interceptor's answer is the call's.
            None => UnaryCall::finished(answer),
        }
    }

    /// Starts a unary call past the interceptors.
    fn start_unary_direct(&self, method: &str, request: Bytes, options: CallOptions) -> UnaryCall {
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

    /// The transport counters (frames, bytes, syscalls, loop wake-ups, …)
    /// summed over the channel's live connections; a benchmark takes two
    /// snapshots and divides the difference by the calls made between them.
    /// Connections that have closed no longer count.
    ///
    /// ```no_run
    /// use mio_grpc::client::{Channel, ChannelOptions};
    /// let channel = Channel::new("localhost:50051", ChannelOptions::default()).unwrap();
    /// let before = channel.transport_stats();
    /// // ... calls ...
    /// let after = channel.transport_stats();
    /// println!("{} writes", after.write_syscalls - before.write_syscalls);
    /// ```
    pub fn transport_stats(&self) -> crate::conn::ConnStats {
        // Collect the handles first: a connection's lock is never taken
        // while a subchannel's is held.
        let mut handles = Vec::new();
        for sub in self.inner.subchannels.lock().iter() {
            let state = sub.inner.lock();
            for conn in state.conn.iter().chain(state.extra.iter()) {
                handles.push(conn.handle.clone());
            }
        }
        let mut total = crate::conn::ConnStats::default();
        for handle in handles {
            total.add(&handle.stats());
        }
        total
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

impl Config {
    pub(super) fn new(parsed: Option<ServiceConfig>) -> Config {
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
    pub(super) fn balancer(&self) -> Arc<dyn Balancer> {
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

    pub(super) fn notify(&self) {
        *self.picker.0.lock() += 1;
        self.picker.1.notify_all();
        self.update_state();
    }

    /// The channel's state from its subchannels'.
    pub(super) fn update_state(&self) {
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
    pub(super) fn start(
        self: &Arc<Self>,
        method: &str,
        options: &CallOptions,
        unary: Option<Bytes>,
    ) -> Result<Arc<ClientCall>, Status> {
        let deadline = options.deadline();
        let conn = self.pick(deadline, options.wait_for_ready)?;
        let handle = conn.handle.clone();
        let key = handle.new_stream_key();
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
            HeaderField::new(":authority", self.authority_value.clone()),
            HeaderField::new("content-type", "application/grpc"),
            HeaderField::new("te", "trailers"),
            HeaderField::new("user-agent", self.user_agent_value.clone()),
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
        let open = Command::Open {
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
}

impl Drop for Inner {
    /// The last holder (a `Channel` clone, or a call that outlived them)
    /// may be anywhere, a loop thread inside a callback included: nothing
    /// here joins the calling thread. The loops are told to stop (joined
    /// only from a thread that is not a loop; see [`Runtime::shutdown`]);
    /// the deadline thread, detached, ends at `stop`; the maintenance
    /// thread, detached, ends at its next tick when the channel is gone.
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

pub(super) fn fail_all(calls: &Calls, status: &Status) {
    for (_, call) in calls.lock().drain() {
        call.complete(status.clone());
    }
}

pub(super) fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// A small xorshift generator of uniform `[0, 1)` values for jitter.
pub(super) fn jitter_rng(seed: u64) -> impl FnMut() -> f64 {
    let mut x = (seed ^ now_nanos()) | 1;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}
