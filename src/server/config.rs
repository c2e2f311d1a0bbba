//! The server's options: [`ServerConfig`] (grpc-go's defaults), the
//! [`ServerBuilder`] that sets them, and the interceptor types.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::{Context, Server};
use crate::conn::{ConnConfig, EnforcementPolicy, InboundConfig, ServerKeepalive};
use crate::grpc::{Encoding, Status};
use crate::pool::DEFAULT_IDLE_TIMEOUT;
use crate::runtime::{ListenerConfig, RuntimeConfig};

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
    pub(super) unary_interceptors: Vec<UnaryInterceptor>,
    pub(super) stream_interceptors: Vec<StreamInterceptor>,
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
