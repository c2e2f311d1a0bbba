//! The plain HTTP/2 handler API: request (method, path, headers, body
//! stream) → response (status, headers, body, trailers). The layer the gRPC
//! server sits on, and what `examples/h2_hello.rs` serves for the
//! conformance suite, nghttp and h2load.
//!
//! Handlers run on a worker pool (default) or inline on the event-loop
//! thread (for handlers that never block). A worker writes its response
//! itself when the connection is free (the direct-write path). The pool
//! never queues: a request that arrives while all
//! [`ServerConfig::max_workers`] workers are busy is answered 503 at once
//! (with a body still coming, the stream is then reset with NO_ERROR).

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender};
use framer::hpack::{HeaderField, HeaderList};
use framer::{Reason, StreamId};

use crate::conn::{Command, ConnConfig, ConnEvent, Connection, RequestHead, StreamKey};
use crate::pool::{ElasticPool, Job, DEFAULT_IDLE_TIMEOUT};
use crate::runtime::{
    Acceptor, ConnHandle, ListenerConfig, ListenerHandle, Runtime, RuntimeConfig, Session,
};

/// One chunk of a request body, or its end.
enum BodyChunk {
    Data(Bytes),
    Trailers(HeaderList),
    Reset(Reason),
}

/// A request body: blocking reads of DATA as it arrives. Reading reopens
/// the stream's flow-control window.
pub struct Body {
    rx: Receiver<BodyChunk>,
    handle: ConnHandle,
    key: StreamKey,
    trailers: Option<HeaderList>,
    done: bool,
    /// The body was buffered whole before the handler ran (inline
    /// handlers): its capacity was released as it arrived.
    buffered: bool,
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Body")
            .field("key", &self.key)
            .field("done", &self.done)
            .finish()
    }
}

/// Why reading a body failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyError {
    /// The client reset the stream (or the connection went away).
    Reset(Reason),
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::Reset(reason) => write!(f, "stream reset: {reason}"),
        }
    }
}

impl std::error::Error for BodyError {}

impl Body {
    /// The next chunk; `Ok(None)` at the end of the body.
    pub fn read(&mut self) -> Result<Option<Bytes>, BodyError> {
        if self.done {
            return Ok(None);
        }
        match self.rx.recv() {
            Ok(BodyChunk::Data(data)) => {
                if !self.buffered {
                    let (n, key) = (data.len(), self.key);
                    self.handle.release_capacity(key, n);
                }
                Ok(Some(data))
            }
            Ok(BodyChunk::Trailers(fields)) => {
                self.trailers = Some(fields);
                self.done = true;
                Ok(None)
            }
            Ok(BodyChunk::Reset(reason)) => {
                self.done = true;
                Err(BodyError::Reset(reason))
            }
            Err(_) => {
                self.done = true;
                Ok(None)
            }
        }
    }

    /// Reads the whole body into one buffer.
    pub fn read_all(&mut self) -> Result<Bytes, BodyError> {
        let mut all = bytes::BytesMut::new();
        while let Some(chunk) = self.read()? {
            all.extend_from_slice(&chunk);
        }
        Ok(all.freeze())
    }

    /// The request trailers, once the body has been read to its end.
    pub fn trailers(&self) -> Option<&HeaderList> {
        self.trailers.as_ref()
    }
}

/// An HTTP/2 request.
#[derive(Debug)]
pub struct Request {
    /// The validated head (method, scheme, authority, path, fields).
    pub head: RequestHead,
    /// The body.
    pub body: Body,
    /// The client's address.
    pub peer: SocketAddr,
}

/// An HTTP/2 response.
#[derive(Clone, Debug, Default)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Response header fields (no pseudo-headers).
    pub headers: HeaderList,
    /// The body.
    pub body: Bytes,
    /// Trailer fields, if any.
    pub trailers: Option<HeaderList>,
}

impl Response {
    /// A response with `status` and `body`.
    pub fn new(status: u16, body: impl Into<Bytes>) -> Response {
        Response {
            status,
            body: body.into(),
            ..Default::default()
        }
    }
}

/// Request handlers: any `Fn(Request) -> Response`.
pub trait Handler: Send + Sync + 'static {
    /// Answers one request.
    fn handle(&self, request: Request) -> Response;
}

impl<F: Fn(Request) -> Response + Send + Sync + 'static> Handler for F {
    fn handle(&self, request: Request) -> Response {
        self(request)
    }
}

/// Where handlers run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Execution {
    /// A pool of at least this many worker threads (default: 4 × cores),
    /// growing while all are busy up to [`ServerConfig::max_workers`];
    /// past it, requests are answered 503.
    Workers(usize),
    /// On the event-loop thread: only for handlers that never block. The
    /// request body is buffered whole (up to
    /// [`ServerConfig::max_inline_body`]; larger gets 413) before the
    /// handler runs, so reading it never waits.
    Inline,
}

/// Server options.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Connection settings and limits.
    pub conn: ConnConfig,
    /// Runtime (event loops).
    pub runtime: RuntimeConfig,
    /// Listener options.
    pub listener: ListenerConfig,
    /// Where handlers run.
    pub execution: Execution,
    /// The most worker threads the pool grows to while every worker is
    /// busy (blocking handlers); a request past it gets 503 at once.
    /// Default 1,024.
    pub max_workers: usize,
    /// Inline execution: the largest request body buffered before the
    /// handler runs. Default 4 MiB.
    pub max_inline_body: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        ServerConfig {
            conn: ConnConfig::default(),
            runtime: RuntimeConfig::default(),
            listener: ListenerConfig::default(),
            execution: Execution::Workers(4 * cores),
            max_workers: 1024,
            max_inline_body: 4 << 20,
        }
    }
}

/// A running HTTP/2 server.
///
/// ```no_run
/// use mio_grpc::http::{Response, Server, ServerConfig};
/// let server = Server::bind("127.0.0.1:0".parse().unwrap(), ServerConfig::default(), |_req| {
///     Response::new(200, "hello\n")
/// })
/// .unwrap();
/// println!("listening on {}", server.local_addr());
/// server.shutdown();
/// ```
pub struct Server {
    runtime: Option<Runtime>,
    listener: ListenerHandle,
    pool: Option<Arc<ElasticPool>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.listener.local_addr())
            .finish()
    }
}

struct HttpAcceptor {
    handler: Arc<dyn Handler>,
    pool: Option<Arc<ElasticPool>>,
    conn: ConnConfig,
    max_inline_body: usize,
}

impl Acceptor for HttpAcceptor {
    fn conn_config(&self) -> ConnConfig {
        self.conn.clone()
    }

    fn accept(&self, handle: ConnHandle) -> Box<dyn Session> {
        Box::new(HttpSession {
            handle,
            handler: self.handler.clone(),
            pool: self.pool.clone(),
            requests: HashMap::new(),
            max_inline_body: self.max_inline_body,
        })
    }
}

/// A request in progress: where its body goes, and whether it was
/// cancelled (a handler that has not started yet never starts).
struct InFlight {
    body: Option<Sender<BodyChunk>>,
    cancelled: Arc<AtomicBool>,
    /// Inline: the request waiting for its body to complete, and the
    /// octets buffered so far.
    waiting: Option<(Request, usize)>,
}

/// One connection's request dispatch.
struct HttpSession {
    handle: ConnHandle,
    handler: Arc<dyn Handler>,
    pool: Option<Arc<ElasticPool>>,
    requests: HashMap<StreamKey, InFlight>,
    max_inline_body: usize,
}

impl Session for HttpSession {
    fn on_event(&mut self, conn: &mut Connection, event: ConnEvent) {
        match event {
            ConnEvent::Request {
                id,
                head,
                end_stream,
            } => self.on_request(conn, id, head, end_stream),
            ConnEvent::Data {
                key,
                data,
                end_stream,
            } => self.on_data(conn, key, data, end_stream),
            ConnEvent::Trailers { key, fields } => {
                if let Some(tx) = self.requests.get_mut(&key).and_then(|r| r.body.take()) {
                    let _ = tx.send(BodyChunk::Trailers(fields));
                }
                self.run_waiting(conn, key);
            }
            ConnEvent::Reset { key, reason, .. } => self.cancel(key, reason),
            ConnEvent::Dropped { key, .. } => self.cancel(key, Reason::CANCEL),
            ConnEvent::Closed { key } => {
                self.requests.remove(&key);
            }
            ConnEvent::ConnectionClosed { .. } => {
                let keys: Vec<StreamKey> = self.requests.keys().copied().collect();
                for key in keys {
                    self.cancel(key, Reason::CANCEL);
                }
            }
            _ => {}
        }
    }
}

impl HttpSession {
    fn on_data(&mut self, conn: &mut Connection, key: StreamKey, data: Bytes, end_stream: bool) {
        let n = data.len();
        let max_inline_body = self.max_inline_body;
        let Some(request) = self.requests.get_mut(&key) else {
            // Nobody reads this body: let the bytes go.
            return conn.release_capacity(key, n);
        };
        if let Some((_, buffered)) = request.waiting.as_mut() {
            // Inline: buffer the body whole, reopening the window as it comes.
            *buffered += n;
            conn.release_capacity(key, n);
            if *buffered > max_inline_body {
                // 413, then (once it is out) RST_STREAM(NO_ERROR) to stop
                // the rest of the body (RFC 9113 §8.1).
                self.requests.remove(&key);
                for command in response_items(key, Response::new(413, "request body too large\n")) {
                    let _ = conn.send(command);
                }
                conn.reset_after_response(key, Reason::NO_ERROR, Instant::now());
                return;
            }
        }
        match request.body.as_ref() {
            Some(tx) if tx.send(BodyChunk::Data(data)).is_ok() => {}
            _ => conn.release_capacity(key, n),
        }
        if end_stream {
            self.finish_body(key);
            self.run_waiting(conn, key);
        }
    }

    /// Inline: the body is complete, run the handler now.
    fn run_waiting(&mut self, conn: &mut Connection, key: StreamKey) {
        let Some((request, _)) = self.requests.get_mut(&key).and_then(|r| r.waiting.take()) else {
            return;
        };
        let response = self.handler.handle(request);
        for command in response_items(key, response) {
            let _ = conn.send(command);
        }
    }

    /// The body ended: its sender goes (the reader sees the end).
    fn finish_body(&mut self, key: StreamKey) {
        if let Some(request) = self.requests.get_mut(&key) {
            request.body = None;
        }
    }

    /// The stream ended abnormally: a handler not yet started never
    /// starts, and one reading the body gets the reset.
    fn cancel(&mut self, key: StreamKey, reason: Reason) {
        if let Some(request) = self.requests.remove(&key) {
            request.cancelled.store(true, Ordering::Release);
            if let Some(tx) = request.body {
                let _ = tx.send(BodyChunk::Reset(reason));
            }
        }
    }

    fn on_request(
        &mut self,
        conn: &mut Connection,
        id: StreamId,
        head: RequestHead,
        end_stream: bool,
    ) {
        let key = StreamKey::from(id);
        // Held until the handler returns (the connection reports no more
        // requests than MAX_CONCURRENT_STREAMS whose slots are held).
        let slot = conn.take_slot(key);
        let (tx, rx) = crossbeam_channel::unbounded();
        let cancelled = Arc::new(AtomicBool::new(false));
        let inline = self.pool.is_none();
        let body = Body {
            rx,
            handle: self.handle.clone(),
            key,
            trailers: None,
            done: end_stream,
            buffered: inline,
        };
        let request = Request {
            head,
            body,
            peer: self.handle.peer_addr(),
        };
        let handler = self.handler.clone();
        let Some(pool) = &self.pool else {
            if end_stream {
                let response = handler.handle(request);
                for command in response_items(key, response) {
                    let _ = conn.send(command);
                }
            } else {
                // Inline handlers never wait: run once the body is in.
                let waiting = Some((request, 0));
                self.requests.insert(
                    key,
                    InFlight {
                        body: Some(tx),
                        cancelled,
                        waiting,
                    },
                );
            }
            return;
        };
        let body = (!end_stream).then_some(tx);
        self.requests.insert(
            key,
            InFlight {
                body,
                cancelled: cancelled.clone(),
                waiting: None,
            },
        );
        let handle = self.handle.clone();
        let job: Job = Box::new(move || {
            // Held until the handler returns, whoever resets the stream.
            let slot = slot;
            if cancelled.load(Ordering::Acquire) {
                return; // reset before it started (the cost rapid reset aims at)
            }
            let response = handler.handle(request);
            // Freed before the response goes out: a client that sees the
            // stream end may open the next one at once.
            drop(slot);
            if !cancelled.load(Ordering::Acquire) {
                let _ = handle.send(response_items(key, response));
            }
        });
        if let Err(job) = pool.try_submit(job) {
            // Every worker is busy: refuse now rather than queue. The job
            // goes (and its slot with it) before the answer.
            drop(job);
            self.requests.remove(&key);
            for command in response_items(key, Response::new(503, "server busy\n")) {
                let _ = conn.send(command);
            }
            if !end_stream {
                conn.reset_after_response(key, Reason::NO_ERROR, Instant::now());
            }
        }
    }
}

/// The commands that send `response` on stream `key`.
fn response_items(key: StreamKey, response: Response) -> Vec<Command> {
    let mut fields = Vec::with_capacity(response.headers.len() + 1);
    fields.push(HeaderField::new(":status", response.status.to_string()));
    fields.extend(response.headers);
    let has_body = !response.body.is_empty();
    let has_trailers = response.trailers.is_some();
    let mut items = vec![Command::Headers {
        key,
        fields,
        end_stream: !has_body && !has_trailers,
    }];
    if has_body {
        items.push(Command::Data {
            key,
            data: response.body,
            end_stream: !has_trailers,
        });
    }
    if let Some(trailers) = response.trailers {
        items.push(Command::Headers {
            key,
            fields: trailers,
            end_stream: true,
        });
    }
    items
}

impl Server {
    /// Starts serving `handler` on `addr`.
    pub fn bind(
        addr: SocketAddr,
        config: ServerConfig,
        handler: impl Handler,
    ) -> io::Result<Server> {
        let runtime = Runtime::new(config.runtime.clone())?;
        let pool = match config.execution {
            Execution::Inline => None,
            Execution::Workers(n) => Some(Arc::new(ElasticPool::new(
                n.min(config.max_workers),
                config.max_workers,
                DEFAULT_IDLE_TIMEOUT,
                "mio-grpc-worker",
            ))),
        };
        let acceptor = Arc::new(HttpAcceptor {
            handler: Arc::new(handler),
            pool: pool.clone(),
            conn: config.conn,
            max_inline_body: config.max_inline_body,
        });
        let listener = runtime.listen(addr, config.listener, acceptor)?;
        Ok(Server {
            runtime: Some(runtime),
            listener,
            pool,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr()
    }

    /// Stops accepting, stops the loops (dropping connections) and the
    /// workers.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.listener.close();
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown();
        }
        if let Some(pool) = self.pool.take() {
            // Running handlers finish; every worker is joined.
            pool.shutdown();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}
