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
//! Handlers run on a worker pool (default) that grows while every worker
//! is busy (up to `max_workers`): a handler may block on its request stream
//! or on flow control without starving other calls. Running handlers per
//! connection are capped by MAX_CONCURRENT_STREAMS (grpc-go's
//! CVE-2023-44487 fix): a stream over it is refused before any handler
//! runs, and a stream reset before its handler starts never runs it. Past
//! `max_workers` busy threads, new calls wait in the pool's queue (FIFO).
//! With `inline_handlers`, unary and server-streaming handlers run on the
//! event-loop thread once their request is complete (only for handlers
//! that never block); client- and bidi-streaming handlers always use the
//! pool, since they wait for messages.

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

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;

use crate::conn::{ConnConfig, EnforcementPolicy, SendBudget, ServerKeepalive};
use crate::grpc::{Encoding, Status};
use crate::pool::{Job, Pool};
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
    /// Worker threads always running (default 4 × cores).
    pub workers: usize,
    /// The most worker threads for blocking unary and server-streaming
    /// handlers (default 1,024); a call past it is refused with
    /// RESOURCE_EXHAUSTED.
    pub max_workers: usize,
    /// The most worker threads for blocking client- and bidi-streaming
    /// handlers (default 256), apart from `max_workers` so that idle
    /// streams cannot starve unary calls; a call past it is refused with
    /// RESOURCE_EXHAUSTED.
    pub max_stream_workers: usize,
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
        self.config.conn.inbound = loopy::InboundConfig::static_windows(connection, stream);
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

    /// Adds a stream interceptor (they run in the order added).
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
    pool: Arc<Pool>,
    stream_pool: Arc<Pool>,
    /// Calls refused because no worker could take them.
    refused_calls: std::sync::atomic::AtomicU64,
    /// Handlers (and interceptors, and reactor callbacks) that panicked.
    handler_panics: std::sync::atomic::AtomicU64,
    conns: Mutex<Vec<ConnHandle>>,
    /// The server-wide cap on queued response bytes.
    send_budget: SendBudget,
}

impl ServerShared {
    /// Runs a blocking unary or server-streaming handler's job, if a
    /// worker can take it now.
    pub(crate) fn try_submit_unary(&self, job: Job) -> Result<(), Job> {
        self.pool.submit(job)
    }

    /// Runs a blocking streaming handler's job, if a worker can take it.
    pub(crate) fn try_submit_stream(&self, job: Job) -> Result<(), Job> {
        self.stream_pool.submit(job)
    }

    /// Runs a reactor's callbacks (short, non-blocking) on the callback
    /// pool.
    pub(crate) fn submit_callback(&self, job: Job) {
        let _ = self.pool.submit(job);
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
        let mut conns = self.shared.conns.lock();
        conns.retain(|c| !c.is_closed());
        conns.push(handle.clone());
        let link = Arc::new(links::ConnLink::runtime(handle));
        Box::new(GrpcSession::new(self.shared.clone(), link))
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
    fn take_shared(&mut self) -> Arc<ServerShared> {
        self.started = true;
        let pool = Pool::new(self.config.workers, self.config.max_workers);
        Arc::new(ServerShared {
            config: self.config.clone(),
            services: std::mem::take(&mut self.services),
            pool,
            stream_pool: Pool::new(1, self.config.max_stream_workers),
            refused_calls: Default::default(),
            handler_panics: Default::default(),
            conns: Mutex::new(Vec::new()),
            send_budget: SendBudget::new(self.config.max_queued_bytes),
        })
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
    /// use mio_grpc::conn::{ConnConfig, Connection};
    /// use mio_grpc::loopy::{NoWake, Role};
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
            shared: self.take_shared(),
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
        let shared = self.take_shared();
        let acceptor = Arc::new(GrpcAcceptor {
            shared: shared.clone(),
        });
        let listener = listen(&runtime, acceptor)?;
        Ok(ServerHandle {
            inner: Mutex::new(Some(Running {
                runtime,
                listener,
                shared,
            })),
        })
    }

    /// Serves on `addr`, blocking until the server is stopped from another
    /// thread through a [`ServerHandle`]... or forever.
    pub fn serve(&mut self, addr: SocketAddr) -> Result<(), ServerError> {
        let handle = self.start(addr)?;
        handle.wait();
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
    /// goes into `conn`'s control buffer.
    pub fn session(&self, conn: &crate::conn::Connection) -> ServerSession {
        let link = Arc::new(links::ConnLink::detached(conn.buffer().clone()));
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
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle").finish_non_exhaustive()
    }
}

impl ServerHandle {
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
        let conns: Vec<ConnHandle> = running.shared.conns.lock().clone();
        for conn in &conns {
            conn.shutdown();
        }
        let end = timeout.map(|t| Instant::now() + t);
        while !conns.iter().all(ConnHandle::is_closed) && end.is_none_or(|e| Instant::now() < e) {
            std::thread::sleep(Duration::from_millis(5));
        }
        finish(running);
    }

    /// Stops now: connections close (GOAWAY), running calls fail with
    /// UNAVAILABLE on the client side.
    pub fn stop(&self) {
        let Some(running) = self.inner.lock().take() else {
            return;
        };
        running.listener.close();
        for conn in running.shared.conns.lock().iter() {
            conn.close(framer::Reason::NO_ERROR, "server stopping");
        }
        finish(running);
    }

    /// Blocks until the server is stopped.
    pub fn wait(&self) {
        while self.inner.lock().is_some() {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn finish(running: Running) {
    running.runtime.shutdown();
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.stop();
    }
}
