//! The gRPC server (grpc-go's `Server` as the model: NewServer /
//! RegisterService / Serve / handleStream / GracefulStop), blocking, on the
//! mio runtime.
//!
//! ```no_run
//! use mio_grpc::grpc::Status;
//! use mio_grpc::server::{MethodDesc, Server, ServiceDesc};
//!
//! let echo = ServiceDesc::new("demo.Echo")
//!     .method(MethodDesc::raw_unary("Echo", |_ctx, request| Ok::<_, Status>(request)));
//! let mut server = Server::builder().max_concurrent_streams(1000).build();
//! server.add_service(echo).unwrap();
//! let handle = server.start("127.0.0.1:0".parse().unwrap()).unwrap();
//! println!("listening on {}", handle.local_addr());
//! handle.graceful_stop();
//! ```
//!
//! Every call runs on one core (see `session` and [`ServerReactor`]): the
//! session on the connection's event loop validates, routes, decodes and
//! times the call (deadlines on the loop's timer heap), and the handler
//! reacts. Two handler styles sit on it:
//!
//! - **Callback handlers** ([`MethodDesc::reactor`],
//!   [`MethodDesc::callback_unary`]): a [`ServerReactor`] per call reacts
//!   to a message, the half-close, "ready to send more" and cancellation;
//!   [`ServerCall::send`] never blocks (it reports [`SendState::Full`] and
//!   the reactor hears `on_ready` later). Callbacks run on the loop
//!   (default) or, per method or service, on a small fixed callback pool
//!   ([`ServerConfig::callback_threads`]). No thread per call: a server
//!   holds as many open streams as memory allows.
//! - **Blocking handlers** (the generated traits, `raw_unary`, ...) run on
//!   bounded elastic pools: unary and server-streaming handlers on one (up
//!   to [`ServerConfig::max_workers`]; with `inline_handlers`, blocking
//!   *unary* handlers run on the loop instead, for handlers that never
//!   block), client- and bidi-streaming handlers on another (up to
//!   [`ServerConfig::max_stream_workers`]), so long-lived streams cannot
//!   take every thread from short calls. A call no worker can take is
//!   refused at once with RESOURCE_EXHAUSTED and counted
//!   ([`ServerStats::refused_calls`]), never queued.
//!
//! A handler, interceptor or callback that panics ends its call with
//! INTERNAL ("handler panicked", counted in
//! [`ServerStats::handler_panics`]); the loop or worker carries on.
//! Running calls per connection are capped by MAX_CONCURRENT_STREAMS
//! (grpc-go's CVE-2023-44487 fix): a request past the cap waits while the
//! connection stops reading, and a blocking handler keeps its slot until it
//! returns, even after its stream was reset.
//!
//! This module also owns the server's lifecycle: the connections map
//! (keyed by [`ConnHandle`] id, pruned when a session is dropped, i.e. when
//! its connection closes), [`ServerHandle::wait`] and the graceful drain
//! (Condvar waits, no polling), and [`ServerHandle::stats`].

mod blocking;
mod call;
pub mod health;
mod links;
mod reactor;
mod service;
mod session;

pub use blocking::{RawRequests, RawSink, RequestStream, ResponseSink};
pub use call::{Context, SetCompressionError};
pub use reactor::{ReactorFactory, SendError, SendState, ServerCall, ServerReactor};
pub use service::{BytesCodec, Codec, MethodDesc, MethodKind, ProstCodec, ServiceDesc};

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::{Condvar, Mutex};

use crate::conn::{ConnConfig, EnforcementPolicy, InboundConfig, SendBudget, ServerKeepalive};
use crate::grpc::{Encoding, Status};
use crate::pool::{ElasticPool, FixedPool, Job, DEFAULT_IDLE_TIMEOUT};
use crate::runtime::{
    Acceptor, ConnHandle, ListenerConfig, ListenerHandle, Runtime, RuntimeConfig, Session,
};
use service::Handler;
use session::GrpcSession;

/// What went wrong setting a server up.
#[derive(Debug)]
pub enum ServerError {
    /// A service with this name is registered already.
    DuplicateService(String),
    /// Services must be added before the server starts.
    AlreadyStarted,
    /// Binding or starting the event loops failed.
    Io(io::Error),
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServerError::DuplicateService(name) => write!(f, "service {name} is registered twice"),
            ServerError::AlreadyStarted => {
                f.write_str("services must be added before the server starts")
            }
            ServerError::Io(e) => write!(f, "server I/O error: {e}"),
        }
    }
}

impl std::error::Error for ServerError {}

impl From<io::Error> for ServerError {
    fn from(e: io::Error) -> ServerError {
        ServerError::Io(e)
    }
}

/// A unary interceptor: sees the call and its raw request, and calls
/// `next` (or answers itself).
pub type UnaryInterceptor = Arc<
    dyn Fn(
            &Context,
            Bytes,
            &dyn Fn(&Context, Bytes) -> Result<Bytes, Status>,
        ) -> Result<Bytes, Status>
        + Send
        + Sync,
>;

/// A stream interceptor: sees the call and runs `next` (the handler) or not.
pub type StreamInterceptor = Arc<
    dyn Fn(&Context, &mut dyn FnMut() -> Result<(), Status>) -> Result<(), Status> + Send + Sync,
>;

/// Server options (grpc-go's defaults).
#[derive(Clone)]
pub struct ServerConfig {
    /// Connection settings: MAX_CONCURRENT_STREAMS (default 100), windows,
    /// keepalive, enforcement, header list size, abuse limits.
    pub conn: ConnConfig,
    /// The largest request message accepted (default 4 MiB); larger →
    /// RESOURCE_EXHAUSTED.
    pub max_receive_message_size: usize,
    /// The largest response message sent (default unlimited).
    pub max_send_message_size: usize,
    /// Compress responses with this encoding when the client accepts it.
    pub send_compression: Option<Encoding>,
    /// Event loops and listener.
    pub runtime: RuntimeConfig,
    /// Listener options.
    pub listener: ListenerConfig,
    /// Worker threads always running for unary and server-streaming
    /// handlers (default 4 × cores).
    pub workers: usize,
    /// The most worker threads for blocking unary and server-streaming
    /// handlers (default 1,024); a call past it is refused.
    pub max_workers: usize,
    /// The most worker threads for blocking client- and bidi-streaming
    /// handlers (default 256); a call past it is refused. A separate pool,
    /// so long-lived streams cannot take every thread from short calls.
    pub max_stream_workers: usize,
    /// How long a worker thread past the pools' minimum waits for work
    /// before it exits (default 60 s).
    pub worker_idle_timeout: Duration,
    /// Threads of the fixed pool that runs callback handlers (short,
    /// never blocking; default: the cores).
    pub callback_threads: usize,
    /// Run unary and server-streaming handlers on the event-loop thread.
    pub inline_handlers: bool,
    /// Response bytes queued across every connection beyond what the
    /// peers' windows took (default 256 MiB). With the per-connection cap
    /// ([`ConnConfig::max_queued_bytes`], 16 MiB) and the per-stream quota
    /// (64 KiB), the server's queued response bytes stay under this cap
    /// plus one message, however many clients stop reading: a send past
    /// it waits until the writers drain. A handler blocked in `send` still
    /// holds the message it is sending.
    pub max_queued_bytes: usize,
    unary_interceptors: Vec<UnaryInterceptor>,
    stream_interceptors: Vec<StreamInterceptor>,
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("max_receive_message_size", &self.max_receive_message_size)
            .field("max_send_message_size", &self.max_send_message_size)
            .field("workers", &self.workers)
            .field("max_workers", &self.max_workers)
            .field("max_stream_workers", &self.max_stream_workers)
            .field("worker_idle_timeout", &self.worker_idle_timeout)
            .field("callback_threads", &self.callback_threads)
            .field("inline_handlers", &self.inline_handlers)
            .finish_non_exhaustive()
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        ServerConfig {
            conn: ConnConfig::default(),
            max_receive_message_size: 4 << 20,
            max_send_message_size: usize::MAX,
            send_compression: None,
            runtime: RuntimeConfig::default(),
            listener: ListenerConfig::default(),
            workers: 4 * cores,
            max_workers: 1024,
            max_stream_workers: 256,
            worker_idle_timeout: DEFAULT_IDLE_TIMEOUT,
            callback_threads: cores,
            inline_handlers: false,
            max_queued_bytes: 256 << 20,
            unary_interceptors: Vec::new(),
            stream_interceptors: Vec::new(),
        }
    }
}

/// Builds a [`Server`].
#[derive(Debug, Default)]
pub struct ServerBuilder {
    config: ServerConfig,
}

impl ServerBuilder {
    /// SETTINGS_MAX_CONCURRENT_STREAMS, and so the running handlers per
    /// connection (default 100).
    pub fn max_concurrent_streams(mut self, n: u32) -> Self {
        self.config.conn.max_concurrent_streams = n;
        self
    }

    /// The largest request message (default 4 MiB).
    pub fn max_receive_message_size(mut self, n: usize) -> Self {
        self.config.max_receive_message_size = n;
        self
    }

    /// The largest response message (default unlimited).
    pub fn max_send_message_size(mut self, n: usize) -> Self {
        self.config.max_send_message_size = n;
        self
    }

    /// Static receive windows (turns BDP-driven growth off), as grpc-go's
    /// InitialWindowSize / InitialConnWindowSize.
    pub fn initial_windows(mut self, stream: u32, connection: u32) -> Self {
        self.config.conn.inbound = InboundConfig::static_windows(connection, stream);
        self
    }

    /// Server keepalive parameters.
    pub fn keepalive(mut self, params: ServerKeepalive) -> Self {
        self.config.conn.server_keepalive = params;
        self
    }

    /// Keepalive enforcement policy.
    pub fn enforcement(mut self, policy: EnforcementPolicy) -> Self {
        self.config.conn.enforcement = policy;
        self
    }

    /// How long a new connection has to send its preface (default 120 s).
    pub fn connection_timeout(mut self, d: Duration) -> Self {
        self.config.conn.preface_timeout = d;
        self
    }

    /// SETTINGS_MAX_HEADER_LIST_SIZE (default 64 KiB).
    pub fn max_header_list_size(mut self, n: u32) -> Self {
        self.config.conn.max_header_list_size = n;
        self
    }

    /// Event-loop threads (default: the cores).
    pub fn event_loops(mut self, n: usize) -> Self {
        self.config.runtime.event_loops = n;
        self
    }

    /// Worker threads always running (the pool grows past it while busy).
    pub fn workers(mut self, n: usize) -> Self {
        self.config.workers = n;
        self
    }

    /// The most threads running blocking unary and server-streaming
    /// handlers at once (default 1,024); a call past it is refused.
    ///
    /// ```
    /// let server = mio_grpc::server::Server::builder().max_workers(64).build();
    /// # drop(server);
    /// ```
    pub fn max_workers(mut self, n: usize) -> Self {
        self.config.max_workers = n;
        self
    }

    /// The most threads running blocking client- and bidi-streaming
    /// handlers at once (default 256); a call past it is refused.
    ///
    /// ```
    /// let server = mio_grpc::server::Server::builder().max_stream_workers(32).build();
    /// # drop(server);
    /// ```
    pub fn max_stream_workers(mut self, n: usize) -> Self {
        self.config.max_stream_workers = n;
        self
    }

    /// How long a worker thread past the minimum stays without work
    /// before it exits (default 60 s).
    ///
    /// ```
    /// use std::time::Duration;
    /// let server = mio_grpc::server::Server::builder()
    ///     .worker_idle_timeout(Duration::from_secs(10))
    ///     .build();
    /// # drop(server);
    /// ```
    pub fn worker_idle_timeout(mut self, d: Duration) -> Self {
        self.config.worker_idle_timeout = d;
        self
    }

    /// Threads of the fixed pool running callback handlers (default: the
    /// cores).
    ///
    /// ```
    /// let server = mio_grpc::server::Server::builder().callback_threads(2).build();
    /// # drop(server);
    /// ```
    pub fn callback_threads(mut self, n: usize) -> Self {
        self.config.callback_threads = n;
        self
    }

    /// Run unary and server-streaming handlers on the event-loop thread.
    pub fn inline_handlers(mut self, inline: bool) -> Self {
        self.config.inline_handlers = inline;
        self
    }

    /// Compress responses with `encoding` when the client accepts it.
    pub fn send_compression(mut self, encoding: Encoding) -> Self {
        self.config.send_compression = Some(encoding);
        self
    }

    /// Adds a unary interceptor (they run in the order added).
    pub fn unary_interceptor<F>(mut self, f: F) -> Self
    where
        F: Fn(
                &Context,
                Bytes,
                &dyn Fn(&Context, Bytes) -> Result<Bytes, Status>,
            ) -> Result<Bytes, Status>
            + Send
            + Sync
            + 'static,
    {
        self.config.unary_interceptors.push(Arc::new(f));
        self
    }

    /// Adds a stream interceptor (they run in the order added). It runs
    /// around a blocking streaming handler, and around the making of a
    /// callback method's reactor (of any kind): returning an error without
    /// calling `next` refuses the call with that status.
    pub fn stream_interceptor<F>(mut self, f: F) -> Self
    where
        F: Fn(&Context, &mut dyn FnMut() -> Result<(), Status>) -> Result<(), Status>
            + Send
            + Sync
            + 'static,
    {
        self.config.stream_interceptors.push(Arc::new(f));
        self
    }

    /// Any other option.
    pub fn config(mut self, f: impl FnOnce(&mut ServerConfig)) -> Self {
        f(&mut self.config);
        self
    }

    /// The server (not started).
    pub fn build(self) -> Server {
        Server {
            config: self.config,
            services: HashMap::new(),
            started: false,
        }
    }
}

/// What every connection's session shares.
pub(crate) struct ServerShared {
    pub(crate) config: ServerConfig,
    pub(crate) services: HashMap<String, HashMap<String, Handler>>,
    /// Blocking unary and server-streaming handlers.
    pub(crate) unary_pool: ElasticPool,
    /// Blocking client- and bidi-streaming handlers.
    pub(crate) stream_pool: ElasticPool,
    /// Callback handlers (short, never blocking).
    pub(crate) callback_pool: FixedPool,
    /// Calls refused because no worker could take them: the session
    /// increments it when it refuses a call (`try_submit_*` do not count).
    pub(crate) refused_calls: AtomicU64,
    /// Handlers that panicked, as the session counts them (the pools
    /// count the panics that reach them on their own).
    pub(crate) handler_panics: AtomicU64,
    /// The open connections, by [`ConnHandle::id`]; a session removes its
    /// own when it is dropped (its connection closed).
    conns: Mutex<HashMap<u64, ConnHandle>>,
    /// Notified when the map empties or gains a connection.
    conns_changed: Condvar,
    /// The server-wide cap on queued response bytes.
    send_budget: SendBudget,
}

impl ServerShared {
    /// Runs a blocking unary or server-streaming handler's `job` on a
    /// worker, or hands it back at once if none can take it (the caller
    /// refuses the call with RESOURCE_EXHAUSTED).
    pub(crate) fn try_submit_unary(&self, job: Job) -> Result<(), Job> {
        self.unary_pool.try_submit(job)
    }

    /// Runs a blocking client- or bidi-streaming handler's `job` on a
    /// worker, or hands it back at once if none can take it.
    pub(crate) fn try_submit_stream(&self, job: Job) -> Result<(), Job> {
        self.stream_pool.try_submit(job)
    }

    /// Queues a callback `job` (short, never blocking) on the fixed pool;
    /// handed back only once the server is stopped.
    pub(crate) fn submit_callback(&self, job: Job) -> Result<(), Job> {
        self.callback_pool.submit(job)
    }

    /// The session of connection `id` is gone (its connection closed):
    /// drop it from the map, waking a graceful stop when none is left.
    pub(crate) fn forget_conn(&self, id: u64) {
        let removed = {
            let mut conns = self.conns.lock();
            let removed = conns.remove(&id);
            if conns.is_empty() {
                self.conns_changed.notify_all();
            }
            removed
        };
        // Dropped outside the lock.
        drop(removed);
    }

    /// The counters now.
    fn stats(&self) -> ServerStats {
        let (unary, stream, callback) = (
            self.unary_pool.stats(),
            self.stream_pool.stats(),
            self.callback_pool.stats(),
        );
        ServerStats {
            connections: self.conns.lock().len(),
            refused_calls: self.refused_calls.load(Ordering::Relaxed),
            handler_panics: self.handler_panics.load(Ordering::Relaxed)
                + unary.panics
                + stream.panics
                + callback.panics,
            workers_busy: unary.busy + stream.busy,
            worker_threads: unary.threads + stream.threads,
        }
    }

    pub(crate) fn count_refused(&self) {
        self.refused_calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn count_panic(&self) {
        self.handler_panics
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Runs the unary interceptors, in order, around `handler`.
    pub(crate) fn intercept_unary(
        &self,
        ctx: &Context,
        request: Bytes,
        handler: &(dyn Fn(&Context, Bytes) -> Result<Bytes, Status> + Send + Sync),
    ) -> Result<Bytes, Status> {
        fn chain(
            interceptors: &[UnaryInterceptor],
            ctx: &Context,
            request: Bytes,
            handler: &(dyn Fn(&Context, Bytes) -> Result<Bytes, Status> + Send + Sync),
        ) -> Result<Bytes, Status> {
            match interceptors.split_first() {
                None => handler(ctx, request),
                Some((first, rest)) => first(ctx, request, &|ctx, request| {
                    chain(rest, ctx, request, handler)
                }),
            }
        }
        chain(&self.config.unary_interceptors, ctx, request, handler)
    }

    /// Runs the stream interceptors, in order, around `handler`.
    pub(crate) fn intercept_stream(
        &self,
        ctx: &Context,
        handler: &mut dyn FnMut() -> Result<(), Status>,
    ) -> Result<(), Status> {
        fn chain(
            interceptors: &[StreamInterceptor],
            ctx: &Context,
            handler: &mut dyn FnMut() -> Result<(), Status>,
        ) -> Result<(), Status> {
            match interceptors.split_first() {
                None => handler(),
                Some((first, rest)) => first(ctx, &mut || chain(rest, ctx, handler)),
            }
        }
        chain(&self.config.stream_interceptors, ctx, handler)
    }
}

struct GrpcAcceptor {
    shared: Arc<ServerShared>,
}

impl Acceptor for GrpcAcceptor {
    fn conn_config(&self) -> ConnConfig {
        let mut config = self.shared.config.conn.clone();
        config.shared_send_budget = Some(self.shared.send_budget.clone());
        config
    }

    fn accept(&self, handle: ConnHandle) -> Box<dyn Session> {
        self.shared.conns.lock().insert(handle.id(), handle.clone());
        // A graceful stop under way tells the newcomer to drain too.
        self.shared.conns_changed.notify_all();
        let link = Arc::new(links::ConnLink::runtime(handle));
        Box::new(GrpcSession::new(self.shared.clone(), link))
    }
}

/// A session is dropped when its connection closes (or the runtime
/// stops): the connection leaves the server's map then, not at some later
/// accept.
impl Drop for GrpcSession {
    fn drop(&mut self) {
        if let Some(handle) = self.link.handle() {
            self.server.forget_conn(handle.id());
        }
    }
}

/// A gRPC server: add services, then [`serve`](Server::serve) or
/// [`start`](Server::start).
pub struct Server {
    config: ServerConfig,
    services: HashMap<String, HashMap<String, Handler>>,
    started: bool,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("services", &self.services.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Server {
    /// A builder with grpc-go's defaults.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// Registers a service. Twice, or after start, is an error.
    pub fn add_service(&mut self, service: ServiceDesc) -> Result<(), ServerError> {
        if self.started {
            return Err(ServerError::AlreadyStarted);
        }
        if self.services.contains_key(&service.name) {
            return Err(ServerError::DuplicateService(service.name));
        }
        let methods = service
            .methods
            .into_iter()
            .map(|m| (m.name, m.handler))
            .collect();
        self.services.insert(service.name, methods);
        Ok(())
    }

    /// Starts serving on `addr`; returns at once with a handle.
    pub fn start(&mut self, addr: SocketAddr) -> Result<ServerHandle, ServerError> {
        let listener = self.config.listener.clone();
        self.start_with(move |runtime, acceptor| runtime.listen(addr, listener, acceptor))
    }

    /// Starts serving on a Unix domain socket at `path` (a stale socket
    /// file must be removed first).
    pub fn start_unix(&mut self, path: &std::path::Path) -> Result<ServerHandle, ServerError> {
        let path = path.to_path_buf();
        self.start_with(move |runtime, acceptor| runtime.listen_unix(&path, acceptor))
    }

    /// Starts serving on a Linux abstract Unix socket named `name`.
    pub fn start_unix_abstract(&mut self, name: &[u8]) -> Result<ServerHandle, ServerError> {
        let name = name.to_vec();
        self.start_with(move |runtime, acceptor| runtime.listen_unix_abstract(&name, acceptor))
    }

    /// The state every connection's session shares (the server starts).
    fn take_shared(&mut self) -> io::Result<Arc<ServerShared>> {
        self.started = true;
        let config = &self.config;
        let idle = config.worker_idle_timeout;
        Ok(Arc::new(ServerShared {
            config: config.clone(),
            services: std::mem::take(&mut self.services),
            unary_pool: ElasticPool::new(
                config.workers.min(config.max_workers),
                config.max_workers,
                idle,
                "mio-grpc-worker",
            ),
            // Streams are long-lived: one thread kept, the rest on demand.
            stream_pool: ElasticPool::new(1, config.max_stream_workers, idle, "mio-grpc-stream"),
            callback_pool: FixedPool::new(config.callback_threads, "mio-grpc-callback")?,
            refused_calls: AtomicU64::new(0),
            handler_panics: AtomicU64::new(0),
            conns: Mutex::new(HashMap::new()),
            conns_changed: Condvar::new(),
            send_budget: SendBudget::new(config.max_queued_bytes),
        }))
    }

    /// The server's call logic without a runtime: a
    /// [`DetachedServer`] makes a [`ServerSession`] for each connection
    /// the caller drives itself, byte-in/byte-out (tests on a virtual
    /// clock, custom transports). Handlers, pools and limits are the
    /// started server's.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Instant;
    /// use mio_grpc::conn::{ConnConfig, Connection, NoWake, Role};
    /// use mio_grpc::server::Server;
    ///
    /// let mut server = Server::builder().build();
    /// let detached = server.detached().unwrap();
    /// let conn = Connection::new(Role::Server, ConnConfig::default(), Arc::new(NoWake), Instant::now(), 1);
    /// let _session = detached.session(&conn);
    /// ```
    pub fn detached(&mut self) -> Result<DetachedServer, ServerError> {
        if self.started {
            return Err(ServerError::AlreadyStarted);
        }
        Ok(DetachedServer {
            shared: self.take_shared()?,
        })
    }

    fn start_with(
        &mut self,
        listen: impl FnOnce(&Runtime, Arc<dyn Acceptor>) -> io::Result<ListenerHandle>,
    ) -> Result<ServerHandle, ServerError> {
        if self.started {
            return Err(ServerError::AlreadyStarted);
        }
        let runtime = Runtime::new(self.config.runtime.clone())?;
        let shared = self.take_shared()?;
        let acceptor = Arc::new(GrpcAcceptor {
            shared: shared.clone(),
        });
        let listener = match listen(&runtime, acceptor) {
            Ok(listener) => listener,
            Err(e) => {
                stop_parts(runtime, &shared);
                return Err(e.into());
            }
        };
        Ok(ServerHandle {
            inner: Mutex::new(Some(Running {
                runtime,
                listener,
                shared: shared.clone(),
            })),
            shared,
            stopped: Mutex::new(false),
            stopped_changed: Condvar::new(),
        })
    }

    /// Serves on `addr`, blocking forever (nothing else holds the
    /// handle): use [`start`](Server::start) or
    /// [`serve_with_shutdown`](Server::serve_with_shutdown) to stop.
    pub fn serve(&mut self, addr: SocketAddr) -> Result<(), ServerError> {
        let handle = self.start(addr)?;
        handle.wait();
        Ok(())
    }

    /// Serves on `addr` while `signal` runs on the calling thread (it
    /// blocks until it is time to stop: a channel, a signal handler's
    /// flag), then stops gracefully ([`ServerHandle::graceful_stop`]) and
    /// returns.
    ///
    /// ```
    /// use mio_grpc::server::Server;
    ///
    /// let (stop, stopped) = std::sync::mpsc::channel::<()>();
    /// // Whoever decides to stop (here: at once) sends on `stop`.
    /// stop.send(()).unwrap();
    /// Server::builder()
    ///     .build()
    ///     .serve_with_shutdown("127.0.0.1:0".parse().unwrap(), || {
    ///         let _ = stopped.recv();
    ///     })
    ///     .unwrap();
    /// ```
    pub fn serve_with_shutdown(
        &mut self,
        addr: SocketAddr,
        signal: impl FnOnce(),
    ) -> Result<(), ServerError> {
        let handle = self.start(addr)?;
        signal();
        handle.graceful_stop();
        Ok(())
    }
}

struct Running {
    runtime: Runtime,
    listener: ListenerHandle,
    shared: Arc<ServerShared>,
}

/// A server whose connections the caller drives (see
/// [`Server::detached`]).
pub struct DetachedServer {
    shared: Arc<ServerShared>,
}

impl std::fmt::Debug for DetachedServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DetachedServer").finish_non_exhaustive()
    }
}

impl DetachedServer {
    /// The gRPC session for `conn` (a server-role connection). Feed it
    /// every event `conn` reports, and call its
    /// [`poll`](Session::poll) at each step and when its
    /// [`next_timeout`](Session::next_timeout) is due; handler output
    /// goes into `conn`'s [`Inbox`](crate::conn::Inbox).
    pub fn session(&self, conn: &crate::conn::Connection) -> ServerSession {
        let link = Arc::new(links::ConnLink::detached(conn.inbox()));
        ServerSession(GrpcSession::new(self.shared.clone(), link))
    }

    /// Calls refused because no worker could take them, and handlers
    /// that panicked, so far.
    pub fn counts(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (
            self.shared.refused_calls.load(Relaxed),
            self.shared.handler_panics.load(Relaxed),
        )
    }
}

/// The gRPC call logic of one connection driven by its owner (see
/// [`DetachedServer::session`]).
pub struct ServerSession(GrpcSession);

impl std::fmt::Debug for ServerSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerSession").finish_non_exhaustive()
    }
}

impl Session for ServerSession {
    fn on_event(&mut self, conn: &mut crate::conn::Connection, event: crate::conn::ConnEvent) {
        self.0.on_event(conn, event);
    }

    fn poll(&mut self, conn: &mut crate::conn::Connection, now: Instant) {
        self.0.poll(conn, now);
    }

    fn next_timeout(&self) -> Option<Instant> {
        self.0.next_timeout()
    }
}

/// A started server.
pub struct ServerHandle {
    inner: Mutex<Option<Running>>,
    /// Kept past the stop, for [`stats`](ServerHandle::stats).
    shared: Arc<ServerShared>,
    /// True once stopped; [`wait`](ServerHandle::wait) waits on it.
    stopped: Mutex<bool>,
    stopped_changed: Condvar,
}

/// A server's counters, from [`ServerHandle::stats`].
///
/// ```
/// use mio_grpc::server::Server;
/// let handle = Server::builder().build().start("127.0.0.1:0".parse().unwrap()).unwrap();
/// let stats = handle.stats();
/// assert_eq!((stats.connections, stats.refused_calls), (0, 0));
/// handle.stop();
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// Connections open now (a closed one leaves at once).
    pub connections: usize,
    /// Calls refused because no worker could take them.
    pub refused_calls: u64,
    /// Handlers that panicked (each such call ended with INTERNAL).
    pub handler_panics: u64,
    /// Worker threads running a blocking handler now.
    pub workers_busy: usize,
    /// Worker threads alive for blocking handlers (idle ones included;
    /// the callback pool not counted).
    pub worker_threads: usize,
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle").finish_non_exhaustive()
    }
}

impl ServerHandle {
    /// The server's counters now (after a stop: connections and threads
    /// are 0, the totals stay).
    ///
    /// ```
    /// use mio_grpc::server::Server;
    /// let handle = Server::builder().build().start("127.0.0.1:0".parse().unwrap()).unwrap();
    /// assert_eq!(handle.stats().connections, 0);
    /// handle.stop();
    /// ```
    pub fn stats(&self) -> ServerStats {
        self.shared.stats()
    }

    /// Response bytes queued across the server now (beyond what the
    /// peers' windows took), and the most ever queued at once: see
    /// [`ServerConfig::max_queued_bytes`].
    ///
    /// ```
    /// use mio_grpc::server::Server;
    /// let handle = Server::builder().build().start("127.0.0.1:0".parse().unwrap()).unwrap();
    /// assert_eq!(handle.queued_bytes(), (0, 0));
    /// handle.stop();
    /// ```
    pub fn queued_bytes(&self) -> (usize, usize) {
        self.inner.lock().as_ref().map_or((0, 0), |r| {
            (r.shared.send_budget.used(), r.shared.send_budget.peak())
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.lock().as_ref().map_or_else(
            || SocketAddr::from(([0, 0, 0, 0], 0)),
            |r| r.listener.local_addr(),
        )
    }

    /// Stops accepting, sends every connection GOAWAY and lets running
    /// calls finish (grpc-go's GracefulStop), then stops.
    pub fn graceful_stop(&self) {
        self.graceful_stop_timeout(None);
    }

    /// [`graceful_stop`](ServerHandle::graceful_stop), but stops hard
    /// after `timeout` if calls are still running.
    pub fn graceful_stop_timeout(&self, timeout: Option<Duration>) {
        let Some(running) = self.inner.lock().take() else {
            return;
        };
        running.listener.close();
        drain(&running.shared, timeout.map(|t| Instant::now() + t));
        self.finish(running);
    }

    /// Stops now: connections close (GOAWAY), running calls fail with
    /// UNAVAILABLE on the client side.
    pub fn stop(&self) {
        let Some(running) = self.inner.lock().take() else {
            return;
        };
        running.listener.close();
        // Outside the map's lock: a closing session takes it from under
        // its connection's lock.
        let conns: Vec<ConnHandle> = running.shared.conns.lock().values().cloned().collect();
        for conn in conns {
            conn.close(framer::Reason::NO_ERROR, "server stopping");
        }
        self.finish(running);
    }

    /// Blocks until the server is stopped (by another thread through this
    /// handle).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use mio_grpc::server::Server;
    /// let handle = Arc::new(Server::builder().build().start("127.0.0.1:0".parse().unwrap()).unwrap());
    /// let stopper = { let handle = handle.clone(); std::thread::spawn(move || handle.stop()) };
    /// handle.wait();
    /// stopper.join().unwrap();
    /// ```
    pub fn wait(&self) {
        let mut stopped = self.stopped.lock();
        while !*stopped {
            self.stopped_changed.wait(&mut stopped);
        }
    }

    /// Stops the loops (dropping what connections are left), the deadline
    /// timer and the pools (joining their threads), then wakes
    /// [`wait`](Self::wait).
    fn finish(&self, running: Running) {
        stop_parts(running.runtime, &running.shared);
        *self.stopped.lock() = true;
        self.stopped_changed.notify_all();
    }
}

/// Waits until every connection has closed (each told to drain once, the
/// ones accepted meanwhile included) or `end` passes.
fn drain(shared: &ServerShared, end: Option<Instant>) {
    let mut told: HashSet<u64> = HashSet::new();
    loop {
        let fresh: Vec<ConnHandle> = {
            let mut conns = shared.conns.lock();
            if conns.is_empty() {
                return;
            }
            let fresh: Vec<ConnHandle> = conns
                .iter()
                .filter(|(id, _)| !told.contains(id))
                .map(|(_, conn)| conn.clone())
                .collect();
            if fresh.is_empty() {
                match end {
                    None => shared.conns_changed.wait(&mut conns),
                    Some(end) => {
                        if shared.conns_changed.wait_until(&mut conns, end).timed_out() {
                            return;
                        }
                    }
                }
                continue;
            }
            fresh
        };
        // Outside the map's lock (see `stop`).
        for conn in fresh {
            told.insert(conn.id());
            conn.shutdown();
        }
    }
}

/// Stops what a server runs besides its listener.
fn stop_parts(runtime: Runtime, shared: &ServerShared) {
    runtime.shutdown();
    shared.unary_pool.shutdown();
    shared.stream_pool.shutdown();
    shared.callback_pool.shutdown();
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.stop();
    }
}
