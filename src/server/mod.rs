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
//! This file owns [`Server`] (services, start), the state every
//! connection's session shares (pools, counters, the connections map keyed
//! by [`ConnHandle`] id and pruned when a session is dropped, i.e. when its
//! connection closes) and the acceptor; `config` has the options and the
//! builder, `handle` the started server ([`ServerHandle::wait`], the
//! graceful drain on condition variables, [`ServerHandle::stats`]).

mod blocking;
mod call;
mod config;
mod handle;
pub mod health;
mod links;
mod reactor;
mod service;
mod session;

pub use blocking::{RawRequests, RawSink, RequestStream, ResponseSink};
pub use call::{Context, SetCompressionError};
pub use config::{ServerBuilder, ServerConfig, StreamInterceptor, UnaryInterceptor};
pub use handle::{DetachedServer, ServerHandle, ServerSession, ServerStats};
pub use reactor::{ReactorFactory, SendError, SendState, ServerCall, ServerReactor};
pub use service::{BytesCodec, Codec, MethodDesc, MethodKind, ProstCodec, ServiceDesc};

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::{Condvar, Mutex};

use crate::conn::{ConnConfig, SendBudget};
use crate::grpc::Status;
use crate::pool::{ElasticPool, FixedPool, Job};
use crate::runtime::{Acceptor, ConnHandle, ListenerHandle, Runtime, Session};
use handle::{stop_parts, Running};
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
