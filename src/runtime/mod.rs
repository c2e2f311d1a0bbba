//! The runtime: the only code that touches mio and sockets.
//!
//! N event-loop threads (default: the available cores), each a
//! `mio::Poll` with a `Waker` and a timer heap; every connection is pinned
//! to one loop. A connection lives in a [`ConnHandle`]: its sans-IO
//! [`Connection`], its socket and its output batch under one lock. The loop
//! takes the lock to read, run the connection and write; an application
//! thread that sends takes it too when it is free and writes its own
//! output directly (the low-latency path: no hop through the loop thread,
//! no wake-up), and otherwise leaves its commands to the loop.
//!
//! The handle is all the layers above (server, client, http) hold of a
//! connection outside its callbacks: conn's typed
//! [`Command`](crate::conn::Command)s ([`ConnHandle::send`],
//! [`ConnHandle::queue`]) and a few narrow operations
//! ([`ConnHandle::release_capacity`], [`ConnHandle::new_stream_key`],
//! [`ConnHandle::try_stream_capacity`], shutdown and close). It never lends
//! out the [`Connection`] itself; [`Session`] callbacks get it, to use its
//! typed methods.
//!
//! Connections run over TCP ([`Runtime::connect`], [`Runtime::listen`]) or
//! Unix-domain stream sockets: a path ([`Runtime::connect_unix`],
//! [`Runtime::listen_unix`]) or, on Linux, an abstract name
//! ([`Runtime::connect_unix_abstract`], [`Runtime::listen_unix_abstract`]).
//! Past the connect or accept the two are driven alike; [`PeerAddr`] says
//! which a connection's peer is.
//!
//! Reads go until `WouldBlock` or a short read (on Linux a short read means
//! the receive queue was empty, so edge-triggered polling loses nothing and
//! a syscall is saved) — except a connection's first read and every read
//! after the peer hung up, which go on to `WouldBlock` or EOF, since the
//! last bytes and the EOF can come in one event and no edge follows an
//! EOF; writes go until the output is out or `WouldBlock`;
//! interest is derived from the connection's state and re-registered only
//! when it changes.
//!
//! Fairness: reading, delivering events and writing each stop early at the
//! connection's budget for the wake-up ([`RuntimeConfig`]). A connection
//! stopped that way still has work no new event will announce, so its loop
//! lists it and serves it again after the other ready connections of the
//! turn, polling without blocking meanwhile.

mod driver;
mod event_loop;
mod listener;
mod socket;
mod unfinished;

pub use driver::ConnHandle;
pub use listener::{ListenerConfig, ListenerHandle};
pub use socket::PeerAddr;

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::conn::{ConnConfig, ConnEvent, Connection};
use driver::Budget;
use event_loop::{Command, LoopShared};
use listener::UnixBind;
use socket::Socket;

/// Application logic for one connection. Its callbacks run with the
/// connection locked, on the loop thread or on an application thread that
/// is writing directly; they must not block.
pub trait Session: Send {
    /// One event from the connection, in order.
    fn on_event(&mut self, conn: &mut Connection, event: ConnEvent);

    /// The session's own work, on the loop thread only: its timers that
    /// are due at `now`, and work other threads handed it and announced
    /// with [`ConnHandle::wake`]. Called at every service of the
    /// connection by its loop (so it must be cheap when there is nothing
    /// to do).
    fn poll(&mut self, conn: &mut Connection, now: Instant) {
        let _ = (conn, now);
    }

    /// When [`poll`](Session::poll) must run next for a timer of the
    /// session's (the loop merges it with the connection's own timers).
    fn next_timeout(&self) -> Option<Instant> {
        None
    }
}

pub(crate) use event_loop::wake_after_service;

/// True when the calling thread is an event-loop thread (of any runtime):
/// code that may wait checks it, since nothing may block a loop.
pub fn on_loop_thread() -> bool {
    event_loop::current_loop().is_some()
}

/// Makes the session of each accepted connection.
pub trait Acceptor: Send + Sync {
    /// The configuration of accepted connections.
    fn conn_config(&self) -> ConnConfig;
    /// A session for a new connection; `handle` reaches it from any thread.
    fn accept(&self, handle: ConnHandle) -> Box<dyn Session>;
}

/// Runtime options.
///
/// The three budgets make a loop fair to its connections: each wake-up of
/// a connection reads, delivers and writes at most its budget, then the
/// loop serves its other ready connections and comes back to the
/// unfinished one on its next turn (without waiting for a new event). The
/// defaults let a unary call, or a burst of 64 small calls on one
/// connection, complete in one wake-up. A budget of 0 counts as 1.
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// Event-loop threads. Default: the available cores.
    pub event_loops: usize,
    /// Bytes read from one connection's socket per wake-up. Default
    /// 256 KiB (four reads).
    pub read_budget: usize,
    /// Events (request or response heads, messages, resets, ...) one
    /// connection hands its session per wake-up; until the rest are
    /// delivered, nothing more is read from it. Default 1,024.
    pub event_budget: usize,
    /// Bytes written to one connection's socket per wake-up (in batches of
    /// [`write_batch`](Self::write_batch)); a connection whose socket would
    /// take more yields to the others. Default 1 MiB.
    pub write_budget: usize,
    /// Bytes the writer puts into one batch (one vectored write). Default
    /// 256 KiB.
    pub write_batch: usize,
    /// Name prefix of the loop threads.
    pub thread_name: String,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            event_loops: std::thread::available_parallelism().map_or(1, |n| n.get()),
            read_budget: 256 * 1024,
            event_budget: 1024,
            write_budget: 1024 * 1024,
            write_batch: 256 * 1024,
            thread_name: "mio-grpc-loop".into(),
        }
    }
}

impl RuntimeConfig {
    fn budget(&self) -> Budget {
        Budget {
            read: self.read_budget.max(1),
            events: self.event_budget.max(1),
            write: self.write_budget.max(1),
        }
    }
}

/// A set of running event loops.
///
/// ```no_run
/// use mio_grpc::runtime::{Runtime, RuntimeConfig};
/// let runtime = Runtime::new(RuntimeConfig { event_loops: 2, ..Default::default() }).unwrap();
/// runtime.shutdown();
/// ```
pub struct Runtime {
    loops: Vec<Arc<LoopShared>>,
    threads: Vec<JoinHandle<()>>,
    next_loop: AtomicUsize,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("loops", &self.loops.len())
            .finish()
    }
}

impl Runtime {
    /// Starts `config.event_loops` loop threads.
    pub fn new(config: RuntimeConfig) -> io::Result<Runtime> {
        let count = config.event_loops.max(1);
        let mut loops = Vec::with_capacity(count);
        let mut threads = Vec::with_capacity(count);
        for index in 0..count {
            let (shared, event_loop) =
                event_loop::EventLoop::new(index, config.budget(), config.write_batch.max(1))?;
            let name = format!("{}-{index}", config.thread_name);
            threads.push(
                std::thread::Builder::new()
                    .name(name)
                    .spawn(move || event_loop.run())?,
            );
            loops.push(shared);
        }
        let all: Arc<Vec<Arc<LoopShared>>> = Arc::new(loops.clone());
        for shared in &loops {
            shared.set_peers(all.clone());
        }
        Ok(Runtime {
            loops,
            threads,
            next_loop: AtomicUsize::new(0),
        })
    }

    fn pick_loop(&self) -> &Arc<LoopShared> {
        let i = self.next_loop.fetch_add(1, Ordering::Relaxed) % self.loops.len();
        &self.loops[i % self.loops.len()]
    }

    /// Listens on `addr`; accepted connections are spread over the loops
    /// and get their sessions from `acceptor`.
    pub fn listen(
        &self,
        addr: SocketAddr,
        config: ListenerConfig,
        acceptor: Arc<dyn Acceptor>,
    ) -> io::Result<ListenerHandle> {
        listener::listen(&self.loops, addr, config, acceptor)
    }

    /// Connects to `addr` (blocking up to `timeout`) and runs a client
    /// connection on one of the loops with `session`.
    pub fn connect(
        &self,
        addr: SocketAddr,
        timeout: Duration,
        config: ConnConfig,
        session: impl FnOnce(ConnHandle) -> Box<dyn Session>,
    ) -> io::Result<ConnHandle> {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        )?;
        socket.set_tcp_nodelay(true)?;
        socket.connect_timeout(&addr.into(), timeout)?;
        socket.set_nonblocking(true)?;
        let stream = mio::net::TcpStream::from_std(socket.into());
        self.adopt_client(Socket::Tcp(stream), PeerAddr::Tcp(addr), config, session)
    }

    /// Listens on the Unix-domain socket file `path`; accepted connections
    /// are spread over the loops and get their sessions from `acceptor`.
    ///
    /// Binding fails with `AddrInUse` if a file exists at `path`, a stale
    /// socket from an earlier run included: removing it first is the
    /// caller's job, and so is removing the file after
    /// [`ListenerHandle::close`] (the runtime never deletes files).
    pub fn listen_unix(
        &self,
        path: &Path,
        acceptor: Arc<dyn Acceptor>,
    ) -> io::Result<ListenerHandle> {
        listener::listen_unix(&self.loops, UnixBind::Path(path), acceptor)
    }

    /// Listens on the Linux abstract Unix-domain socket `name` (no file;
    /// the name goes when the listener closes); otherwise as
    /// [`listen_unix`](Self::listen_unix).
    #[cfg(target_os = "linux")]
    pub fn listen_unix_abstract(
        &self,
        name: &[u8],
        acceptor: Arc<dyn Acceptor>,
    ) -> io::Result<ListenerHandle> {
        listener::listen_unix(&self.loops, UnixBind::Abstract(name), acceptor)
    }

    /// Connects to the Unix-domain socket file `path` and runs a client
    /// connection on one of the loops with `session`.
    ///
    /// The connect is blocking; a Unix connect waits only while the
    /// listener's backlog is full, and for at most `timeout` (then
    /// `TimedOut`). No listener at `path` is an immediate error (`NotFound`
    /// for no file, `ConnectionRefused` for a socket nobody listens on).
    pub fn connect_unix(
        &self,
        path: &Path,
        timeout: Duration,
        config: ConnConfig,
        session: impl FnOnce(ConnHandle) -> Box<dyn Session>,
    ) -> io::Result<ConnHandle> {
        let stream = socket::connect_unix(&socket2::SockAddr::unix(path)?, timeout)?;
        let peer = PeerAddr::Unix(Some(path.to_path_buf()));
        self.adopt_client(Socket::Unix(stream), peer, config, session)
    }

    /// Connects to the Linux abstract Unix-domain socket `name` (the bytes
    /// after the leading NUL); otherwise as
    /// [`connect_unix`](Self::connect_unix). The connection's
    /// [`PeerAddr`] is `Unix(None)`.
    #[cfg(target_os = "linux")]
    pub fn connect_unix_abstract(
        &self,
        name: &[u8],
        timeout: Duration,
        config: ConnConfig,
        session: impl FnOnce(ConnHandle) -> Box<dyn Session>,
    ) -> io::Result<ConnHandle> {
        let stream = socket::connect_unix(&socket::abstract_sockaddr(name)?, timeout)?;
        self.adopt_client(Socket::Unix(stream), PeerAddr::Unix(None), config, session)
    }

    fn adopt_client(
        &self,
        socket: Socket,
        peer: PeerAddr,
        config: ConnConfig,
        session: impl FnOnce(ConnHandle) -> Box<dyn Session>,
    ) -> io::Result<ConnHandle> {
        let shared = self.pick_loop();
        driver::adopt(shared, socket, peer, loopy::Role::Client, config, session)
    }

    /// Stops every loop (their connections are dropped) and joins the
    /// threads — except on an event-loop thread (of this runtime or any
    /// other), which never waits: there the loops are told to stop and
    /// their threads left to end on their own (a loop that drops its own
    /// runtime, e.g. from a completion callback, finishes the callback and
    /// then returns). Dropping the runtime does the same.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        for shared in &self.loops {
            shared.command(Command::Shutdown);
        }
        let threads = std::mem::take(&mut self.threads);
        if on_loop_thread() {
            // Joining here would join this very thread (a panic: "Resource
            // deadlock avoided"), or wait on a loop from a loop. Detached,
            // each thread exits when its loop sees the Shutdown.
            drop(threads);
            return;
        }
        let me = std::thread::current().id();
        for thread in threads {
            if thread.thread().id() != me {
                let _ = thread.join();
            }
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop();
    }
}
