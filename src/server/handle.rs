//! A server once started or detached: [`ServerHandle`] (stats, queued
//! bytes, graceful and hard stops, `wait`), its [`ServerStats`], and
//! [`DetachedServer`] / [`ServerSession`] for connections the caller
//! drives itself. Stops wait on condition variables, never by polling.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::links;
use super::session::GrpcSession;
use super::ServerShared;
use crate::runtime::{ConnHandle, ListenerHandle, Runtime, Session};

pub(super) struct Running {
    pub(super) runtime: Runtime,
    pub(super) listener: ListenerHandle,
    pub(super) shared: Arc<ServerShared>,
}

/// A server whose connections the caller drives (see
/// [`Server::detached`](super::Server::detached)).
pub struct DetachedServer {
    pub(super) shared: Arc<ServerShared>,
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
    pub(super) inner: Mutex<Option<Running>>,
    /// Kept past the stop, for [`stats`](ServerHandle::stats).
    pub(super) shared: Arc<ServerShared>,
    /// True once stopped; [`wait`](ServerHandle::wait) waits on it.
    pub(super) stopped: Mutex<bool>,
    pub(super) stopped_changed: Condvar,
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
    /// [`ServerConfig::max_queued_bytes`](super::ServerConfig::max_queued_bytes).
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
pub(super) fn stop_parts(runtime: Runtime, shared: &ServerShared) {
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
