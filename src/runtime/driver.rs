//! One connection on the runtime: its socket (TCP or Unix-domain, one
//! [`Socket`] either way), its sans-IO [`Connection`], its read buffer and
//! output batch under one lock, and the [`ConnHandle`] through which any
//! thread reaches it: conn's typed commands and a few narrow operations,
//! never the [`Connection`] itself (nor loopy's items or control buffer).
//!
//! A wake-up on the loop ([`ConnShared::service`]) spends at most one
//! [`Budget`]: bytes read, events delivered, bytes written. Where one runs
//! out, the work left is recorded in the connection (bytes maybe still in
//! the socket, an event taken but not delivered, output not written) and
//! [`Outcome::unfinished`] tells the loop to come back; nothing is lost
//! to edge-triggered polling. The direct-write path of application threads
//! has no budget (it spends the caller's time, not the loop's).

use std::io::{self, IoSlice, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Instant;

use bytes::BytesMut;
use loopy::{Batch, Role, Wake};
use mio::{Interest, Token};
use parking_lot::Mutex;

use super::event_loop::{next_token, Command, LoopShared};
use super::socket::{PeerAddr, Socket};
use super::Session;
use crate::conn::{
    Command as ConnCommand, ConnConfig, ConnEvent, ConnStats, Connection, Inbox, SendError,
    StreamKey,
};

/// Bytes read per `read` call (the size of each loop's read scratch).
pub(crate) const READ_CHUNK: usize = 64 * 1024;

/// Events delivered between two flushes while one read's worth of frames is
/// handled (see `Core::deliver_flushing`).
const DELIVER_FLUSH_EVERY: usize = 64;
/// iovecs per `writev`.
const MAX_IOVECS: usize = 64;

/// Wakes a connection's loop when an application thread puts work for it.
struct LoopWake {
    token: Token,
    shared: Weak<LoopShared>,
}

impl Wake for LoopWake {
    fn wake(&self) {
        if let Some(shared) = self.shared.upgrade() {
            shared.schedule(self.token);
        }
    }
}

/// A connection's allowance for one wake-up on its loop (the budgets of
/// [`RuntimeConfig`](super::RuntimeConfig)), spent as it goes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Budget {
    /// Bytes to read from the socket.
    pub(crate) read: usize,
    /// Events to deliver to the session.
    pub(crate) events: usize,
    /// Bytes to write to the socket.
    pub(crate) write: usize,
}

/// What the loop needs to know after servicing a connection.
pub(crate) struct Outcome {
    pub(crate) finished: bool,
    pub(crate) deadline: Option<Instant>,
    /// The budget ran out with work left (bytes to read, events to
    /// deliver, output the socket would take): serve it again soon, with
    /// or without a new event.
    pub(crate) unfinished: bool,
}

/// Everything of one connection that the lock protects.
struct Core {
    conn: Connection,
    socket: Socket,
    session: Option<Box<dyn Session>>,
    read_buf: BytesMut,
    out: Batch,
    interest: Interest,
    /// Reading stopped before the socket was drained (flow or flood limit).
    read_pending: bool,
    /// The socket may hold bytes that no new edge will announce: an event
    /// said readable and no read has reached `WouldBlock`, a short read or
    /// EOF since (the read budget ran out, or events were held back).
    unread: bool,
    /// An event taken from the connection but not delivered: the event
    /// budget ran out. It goes first next time; nothing is read until it
    /// is delivered (this bounds the events queued in the connection).
    held_event: Option<ConnEvent>,
    /// Writing stopped at the write budget with output left and a socket
    /// that had not said `WouldBlock`.
    write_pending: bool,
    /// The peer closed its side (a hang-up or error was reported). No
    /// edge follows it, and it may have come in the same event as the
    /// last data: reads then go on to the EOF past a short read.
    hung_up: bool,
    /// Read to `WouldBlock` even past a short read: set until the first
    /// read gets there, since the loop drops the events of a socket it
    /// has not adopted yet (one of them may have been the EOF).
    drain: bool,
    /// The deadline the loop's timer heap holds.
    deadline: Option<Instant>,
    closed: bool,
}

/// The shared record of one connection.
pub(crate) struct ConnShared {
    pub(crate) token: Token,
    core: Mutex<Core>,
    /// The connection's inbox, for commands sent while its lock is taken.
    inbox: Inbox,
    shared: Arc<LoopShared>,
    peer: PeerAddr,
    closed: AtomicBool,
}

impl ConnShared {
    /// The loop services the connection: reads if `readable`, runs it,
    /// writes, and reports whether it is finished and when to call back.
    /// `hung_up`: the event reported the peer's side closed (or an error).
    /// `scratch` is the loop's read buffer (only loop threads read).
    pub(crate) fn service(
        &self,
        registry: &mio::Registry,
        scratch: &mut [u8],
        readable: bool,
        hung_up: bool,
    ) -> Outcome {
        let mut core = self.core.lock();
        core.conn.count_wakeup();
        core.hung_up |= hung_up;
        let budget = self.shared.budget;
        core.drive(
            registry,
            scratch,
            self.token,
            readable,
            self.shared.write_batch,
            budget,
        );
        self.outcome(&mut core, registry)
    }

    fn outcome(&self, core: &mut Core, registry: &mio::Registry) -> Outcome {
        if core.closed || (core.conn.is_finished() && core.out.is_empty()) {
            core.close(registry);
            self.closed.store(true, Ordering::Release);
            return Outcome {
                finished: true,
                deadline: None,
                unfinished: false,
            };
        }
        let next = core.next_timeout();
        let push = match (next, core.deadline) {
            (Some(n), Some(d)) => n < d,
            (Some(_), None) => true,
            _ => false,
        };
        core.deadline = next;
        Outcome {
            finished: false,
            deadline: if push { next } else { None },
            unfinished: core.unfinished(),
        }
    }

    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.core.lock().deadline
    }

    pub(crate) fn timeout(&self, now: Instant) {
        let mut core = self.core.lock();
        core.deadline = None;
        if core.conn.next_timeout().is_some_and(|at| at <= now) {
            core.conn.handle_timeout(now);
        }
        // The session's timers run in the service that follows.
    }

    /// The loop is stopping: drop the connection now.
    pub(crate) fn abort(&self, registry: &mio::Registry) {
        let mut core = self.core.lock();
        core.conn
            .handle_transport_closed("runtime shut down".into());
        core.deliver();
        core.close(registry);
        self.closed.store(true, Ordering::Release);
    }
}

impl Core {
    /// One wake-up: read, deliver, write, each within `budget`.
    fn drive(
        &mut self,
        registry: &mio::Registry,
        scratch: &mut [u8],
        token: Token,
        readable: bool,
        batch: usize,
        mut budget: Budget,
    ) {
        let now = Instant::now();
        // Whatever the connection or the callbacks put from here on is
        // written by the flushes below: no wake-up of this loop for it.
        self.conn.buffer().consumer_busy();
        // The session's timers and the work other threads handed it.
        if let Some(session) = self.session.as_mut() {
            session.poll(&mut self.conn, now);
        }
        self.unread |= readable;
        if self.unread || self.read_pending {
            self.read(scratch, now, &mut budget.read);
        }
        // Events, then output (each delivery ends with a flush); the
        // output's own events; output may lift a read throttle, so go
        // again. Every round ends with a flush, so nothing put while busy
        // is left behind.
        for round in 0..4 {
            self.deliver_flushing(now, batch, &mut budget);
            self.deliver_flushing(now, batch, &mut budget);
            if round < 3 && self.read_pending && self.conn.wants_read() && !self.closed {
                self.read(scratch, now, &mut budget.read);
            } else {
                break;
            }
        }
        self.update_interest(registry, token);
    }

    /// The earliest of the connection's and the session's timers.
    fn next_timeout(&self) -> Option<Instant> {
        let session = self.session.as_ref().and_then(|s| s.next_timeout());
        match (self.conn.next_timeout(), session) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// True when the last wake-up's budget ran out with work left that
    /// no event will bring the loop back for.
    fn unfinished(&self) -> bool {
        !self.closed
            && (self.held_event.is_some()
                || self.write_pending
                || ((self.unread || self.read_pending) && self.conn.wants_read()))
    }

    /// Reads and handles up to `budget` bytes (spending it).
    fn read(&mut self, scratch: &mut [u8], now: Instant, budget: &mut usize) {
        if self.held_event.is_some() {
            // Deliver the backlog first; `unread` stays set.
            return;
        }
        self.read_pending = false;
        // Bytes left by an earlier throttle go first.
        if !self.read_buf.is_empty() {
            self.conn.handle_read(&mut self.read_buf, now);
        }
        loop {
            if !self.conn.wants_read() {
                self.read_pending = true;
                return;
            }
            // At most the budget per read, so that one `handle_read` never
            // gets more than the budget's frames either.
            let want = scratch.len().min(*budget);
            if want == 0 {
                // Spent: `unread` stays set and brings the loop back.
                return;
            }
            match self
                .socket
                .read(scratch.get_mut(..want).unwrap_or_default())
            {
                Ok(0) => {
                    self.conn.count_read_syscall();
                    self.unread = false;
                    self.conn
                        .handle_transport_closed("connection closed by peer".into());
                    return;
                }
                Ok(n) => {
                    self.conn.count_read_syscall();
                    *budget = budget.saturating_sub(n);
                    self.read_buf
                        .extend_from_slice(scratch.get(..n).unwrap_or_default());
                    self.conn.handle_read(&mut self.read_buf, now);
                    if self.read_buf.is_empty() && self.read_buf.capacity() > READ_CHUNK {
                        // Don't hold a large buffer for an idle connection.
                        self.read_buf = BytesMut::new();
                    }
                    if n < want && !self.hung_up && !self.drain {
                        // A short read: the receive queue is empty (Linux),
                        // and a later byte or EOF brings a new edge. But if
                        // the connection stopped reading part-way (a
                        // throttle, a request held for a handler slot), the
                        // bytes it left wait for it to want more: no edge
                        // brings those back.
                        self.unread = false;
                        self.read_pending = !self.conn.wants_read();
                        return;
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    self.conn.count_read_syscall();
                    self.unread = false;
                    self.drain = false;
                    return;
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => {
                    self.conn.count_read_syscall();
                    self.unread = false;
                    self.conn.handle_transport_closed(err.to_string());
                    return;
                }
            }
        }
    }

    /// Writes until everything is out, the socket is full, or `budget`
    /// bytes are written (spending it); batches are of `batch` bytes.
    /// Returns true if the socket is full.
    fn flush(&mut self, now: Instant, batch: usize, budget: &mut usize) -> bool {
        self.write_pending = false;
        loop {
            if self.out.is_empty() {
                // Even with the budget spent: this drains the control
                // buffer, so an idle connection's next put wakes the loop.
                self.conn.poll_transmit(&mut self.out, batch, now);
                if self.out.is_empty() {
                    return false;
                }
            }
            if *budget == 0 {
                // More output for a socket that may take it: yield to the
                // loop's other connections and come back.
                self.write_pending = true;
                return false;
            }
            let mut iov = [IoSlice::new(&[]); MAX_IOVECS];
            let count = self.out.fill_io_slices(&mut iov);
            let result = self
                .socket
                .write_vectored(iov.get(..count).unwrap_or_default());
            self.conn.count_write_syscall();
            match result {
                Ok(0) => {
                    self.conn.handle_transport_closed("write returned 0".into());
                    self.out.clear();
                    return false;
                }
                Ok(n) => {
                    self.out.advance(n);
                    *budget = budget.saturating_sub(n);
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return true,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => {
                    self.conn.handle_transport_closed(err.to_string());
                    self.out.clear();
                    return false;
                }
            }
        }
    }

    /// Delivers events, flushing every [`DELIVER_FLUSH_EVERY`] of them so the
    /// peer starts on the first answers of a burst while the rest are made
    /// (without it, a burst of small calls read in one go leaves in one
    /// write and both ends take turns instead of working at once).
    ///
    /// The buffer is marked busy first: what the callbacks put is written
    /// by the flush that ends this call, so their puts need not wake this
    /// very loop again.
    ///
    /// Delivers at most `budget.events`; when they are spent, the next
    /// event (if any) is held for the next wake-up.
    fn deliver_flushing(&mut self, now: Instant, batch: usize, budget: &mut Budget) {
        let mut delivered = 0usize;
        let mut socket_full = false;
        self.conn.buffer().consumer_busy();
        while budget.events > 0 {
            let Some(event) = self.next_event() else {
                break;
            };
            if let Some(session) = self.session.as_mut() {
                session.on_event(&mut self.conn, event);
            }
            budget.events -= 1;
            delivered += 1;
            if !socket_full && delivered % DELIVER_FLUSH_EVERY == 0 {
                socket_full = self.flush(now, batch, &mut budget.write);
            }
        }
        if budget.events == 0 && self.held_event.is_none() {
            self.held_event = self.conn.poll_event();
        }
        // Always drain after being busy, so no put is left without a wake.
        self.flush(now, batch, &mut budget.write);
    }

    /// The held event, else the connection's next.
    fn next_event(&mut self) -> Option<ConnEvent> {
        self.held_event.take().or_else(|| self.conn.poll_event())
    }

    /// Delivers every event, with no budget.
    fn deliver(&mut self) {
        while let Some(event) = self.next_event() {
            if let Some(session) = self.session.as_mut() {
                session.on_event(&mut self.conn, event);
            }
        }
    }

    fn update_interest(&mut self, registry: &mio::Registry, token: Token) {
        if self.closed {
            return;
        }
        let interest = if self.out.is_empty() {
            Interest::READABLE
        } else {
            Interest::READABLE | Interest::WRITABLE
        };
        if interest != self.interest {
            self.interest = interest;
            let _ = registry.reregister(&mut self.socket, token, interest);
        }
    }

    fn close(&mut self, registry: &mio::Registry) {
        if self.closed {
            return;
        }
        self.closed = true;
        let _ = registry.deregister(&mut self.socket);
        let _ = self.socket.shutdown(std::net::Shutdown::Both);
        self.conn.handle_transport_closed("closed".into());
        self.conn.abandon(Instant::now());
        self.deliver();
        self.session = None;
    }
}

/// Registers a connected socket with `shared`'s loop and hands it over
/// (TCP_NODELAY set first on a TCP one).
pub(crate) fn adopt(
    shared: &Arc<LoopShared>,
    mut socket: Socket,
    peer: PeerAddr,
    role: Role,
    config: ConnConfig,
    session: impl FnOnce(ConnHandle) -> Box<dyn Session>,
) -> io::Result<ConnHandle> {
    let _ = socket.set_nodelay();
    let token = next_token();
    let now = Instant::now();
    let waker = Arc::new(LoopWake {
        token,
        shared: Arc::downgrade(shared),
    });
    let seed =
        (token.0 as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(peer.socket_addr().port());
    let conn = Connection::new(role, config, waker, now, seed);
    let inbox = conn.inbox();
    shared
        .registry
        .register(&mut socket, token, Interest::READABLE)?;
    let core = Core {
        conn,
        socket,
        session: None,
        read_buf: BytesMut::new(),
        out: Batch::new(),
        interest: Interest::READABLE,
        read_pending: false,
        unread: false,
        held_event: None,
        write_pending: false,
        hung_up: false,
        drain: true,
        deadline: None,
        closed: false,
    };
    let conn_shared = Arc::new(ConnShared {
        token,
        core: Mutex::new(core),
        inbox,
        shared: shared.clone(),
        peer,
        closed: AtomicBool::new(false),
    });
    let handle = ConnHandle(conn_shared.clone());
    let session = session(handle.clone());
    conn_shared.core.lock().session = Some(session);
    shared.command(Command::Adopt(conn_shared));
    Ok(handle)
}

/// A connection on the runtime, reachable from any thread. Cheap to clone.
#[derive(Clone)]
pub struct ConnHandle(Arc<ConnShared>);

impl std::fmt::Debug for ConnHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnHandle")
            .field("peer", &self.0.peer)
            .field("loop", &self.0.shared.index)
            .finish()
    }
}

impl ConnHandle {
    /// The peer's TCP address. For a Unix-domain connection this is the
    /// unspecified address `0.0.0.0:0`; [`peer`](Self::peer) tells the
    /// two apart.
    pub fn peer_addr(&self) -> SocketAddr {
        self.0.peer.socket_addr()
    }

    /// The peer's address, TCP or Unix-domain.
    pub fn peer(&self) -> PeerAddr {
        self.0.peer.clone()
    }

    /// A fresh key for a stream this client opens ([`ConnCommand::Open`]).
    pub fn new_stream_key(&self) -> StreamKey {
        self.0.inbox.new_stream_key()
    }

    /// The connection's inbox (sends never write directly through it).
    pub(crate) fn inbox(&self) -> Inbox {
        self.0.inbox.clone()
    }

    /// The connection's id, unique in the process (its mio token).
    pub(crate) fn id(&self) -> u64 {
        self.0.token.0 as u64
    }

    /// True once the connection is closed.
    pub fn is_closed(&self) -> bool {
        self.0.closed.load(Ordering::Acquire)
    }

    /// Sends `commands`, in order. When the connection's lock is free,
    /// this thread runs the writer and writes to the socket itself (no loop
    /// wake-up); otherwise the commands are queued for whoever holds it.
    ///
    /// # Errors
    /// The first command refused ([`SendError`]); those before it are
    /// queued, those after it are not.
    pub fn send(&self, commands: impl IntoIterator<Item = ConnCommand>) -> Result<(), SendError> {
        let shared = &self.0;
        let Some(mut core) = shared.core.try_lock() else {
            for command in commands {
                shared.inbox.send(command)?;
            }
            return Ok(());
        };
        for command in commands {
            shared.inbox.send_quiet(command)?;
        }
        self.direct(&mut core);
        Ok(())
    }

    /// Queues `command` for whoever holds the connection, never writing
    /// itself: for code that runs with the connection locked (a session's
    /// callbacks) and has only the handle.
    pub fn queue(&self, command: ConnCommand) -> Result<(), SendError> {
        self.0.inbox.send(command)
    }

    /// The application consumed `n` bytes of a stream's DATA: reopens its
    /// receive window (see [`Connection::release_capacity`]), then writes
    /// what that produced. Takes the connection's lock: not from a session
    /// callback.
    pub fn release_capacity(&self, key: StreamKey, n: usize) {
        self.with(|conn| conn.release_capacity(key, n));
    }

    /// [`Connection::stream_capacity`], or `None` at once if the
    /// connection is locked (by the loop, or by a callback running on it):
    /// never blocks, so it is safe from session callbacks.
    pub fn try_stream_capacity(&self) -> Option<(u32, u32, usize)> {
        self.try_with(|conn| conn.stream_capacity())
    }

    /// Runs `f` on the locked connection, then writes what it produced.
    fn with<R>(&self, f: impl FnOnce(&mut Connection) -> R) -> R {
        let mut core = self.0.core.lock();
        let result = f(&mut core.conn);
        self.direct(&mut core);
        result
    }

    /// Like [`ConnHandle::with`], but `None` at once if the connection is
    /// locked.
    fn try_with<R>(&self, f: impl FnOnce(&mut Connection) -> R) -> Option<R> {
        let mut core = self.0.core.try_lock()?;
        let result = f(&mut core.conn);
        self.direct(&mut core);
        Some(result)
    }

    fn direct(&self, core: &mut Core) {
        if core.closed {
            return;
        }
        let before = core.next_timeout();
        let mut unlimited = usize::MAX;
        let blocked = core.flush(Instant::now(), self.0.shared.write_batch, &mut unlimited);
        core.deliver();
        let after = core.next_timeout();
        let timer_moved = match (after, before) {
            (Some(a), Some(b)) => a < b,
            (Some(_), None) => true,
            _ => false,
        };
        if blocked || timer_moved || core.conn.is_finished() || core.read_pending {
            // The loop must register interest in writability, re-arm its
            // timer, close the socket or resume reading.
            self.0.shared.schedule(self.0.token);
        }
    }

    /// Asks the connection's loop to service it soon, on the loop thread:
    /// its session's [`poll`](super::Session::poll) runs then. For work a
    /// session's other threads hand it (never blocks; coalesced).
    pub fn wake(&self) {
        self.0.shared.schedule(self.0.token);
    }

    /// True when the calling thread is this connection's loop thread.
    pub fn on_loop_thread(&self) -> bool {
        super::event_loop::current_loop() == Some(self.0.shared.id())
    }

    /// The connection's counters.
    pub fn stats(&self) -> ConnStats {
        self.0.core.lock().conn.stats()
    }

    /// Graceful shutdown (GOAWAY, drain).
    pub fn shutdown(&self) {
        self.with(|conn| conn.shutdown(Instant::now()));
        self.0.shared.schedule(self.0.token);
    }

    /// Closes the connection now (GOAWAY with `reason`).
    pub fn close(&self, reason: framer::Reason, detail: &str) {
        self.with(|conn| conn.close(reason, detail));
        self.0.shared.schedule(self.0.token);
    }
}
