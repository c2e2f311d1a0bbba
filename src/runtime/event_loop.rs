//! One event-loop thread: a `mio::Poll`, a `Waker`, a timer heap, the
//! connections pinned to it and the listeners it accepts on.
//!
//! A turn of the loop: poll (without blocking while a connection is left
//! unfinished), serve the connections with events, run the commands and
//! the connections other threads scheduled, run the timers, then serve
//! the connections whose budget ran out on the turn before (see
//! [`Unfinished`]).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use loopy::Wake;
use mio::{Events, Poll, Token, Waker};
use parking_lot::Mutex;

use super::driver::{Budget, ConnShared};
use super::listener::ListenerState;
use super::unfinished::Unfinished;

/// The waker's token; connections and listeners get the others.
pub(crate) const WAKER: Token = Token(usize::MAX);

/// Tokens are unique across all loops.
static NEXT_TOKEN: AtomicUsize = AtomicUsize::new(1);

pub(crate) fn next_token() -> Token {
    Token(NEXT_TOKEN.fetch_add(1, Ordering::Relaxed))
}

thread_local! {
    /// The identity (address of its shared part) of the loop this thread
    /// runs, if it is a loop thread.
    static CURRENT_LOOP: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

thread_local! {
    /// Threads a callback on this loop thread asked to wake once the
    /// connection it is serving is unlocked (see [`wake_after_service`]).
    static AFTER_SERVICE: std::cell::RefCell<Vec<Arc<dyn Wake>>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Wakes `waker` once the loop has finished serving the current
/// connection (its lock released), or now when the calling thread is not a
/// loop thread. For waking another thread that will want that connection:
/// a woken thread that preempts the loop (on a shared core it does) then
/// finds it free instead of queueing behind it.
pub(crate) fn wake_after_service(waker: Arc<dyn Wake>) {
    if current_loop().is_some() {
        AFTER_SERVICE.with(|q| q.borrow_mut().push(waker));
    } else {
        waker.wake();
    }
}

/// Wakes what [`wake_after_service`] deferred.
fn run_after_service() {
    let wakers = AFTER_SERVICE.with(|q| {
        let mut q = q.borrow_mut();
        if q.is_empty() {
            Vec::new()
        } else {
            std::mem::take(&mut *q)
        }
    });
    for waker in wakers {
        waker.wake();
    }
}

/// The identity of the loop the calling thread runs (`None`: not a loop
/// thread). Blocking waits check it: a loop thread must never wait.
pub(crate) fn current_loop() -> Option<usize> {
    CURRENT_LOOP.with(|c| c.get())
}

/// Work handed to a loop by other threads.
pub(crate) enum Command {
    /// Take over a connection (its socket is registered already).
    Adopt(Arc<ConnShared>),
    /// Accept on a listener.
    Listen(Box<ListenerState>),
    /// Stop accepting on a listener.
    Unlisten(Token),
    /// Stop the loop.
    Shutdown,
}

/// The part of a loop other threads reach.
pub(crate) struct LoopShared {
    pub(crate) index: usize,
    waker: Waker,
    pub(crate) registry: mio::Registry,
    commands: Mutex<Vec<Command>>,
    /// Connections that have work put by other threads.
    ready: Mutex<Vec<Token>>,
    peers: OnceLock<Arc<Vec<Arc<LoopShared>>>>,
    next_peer: AtomicUsize,
    /// Each connection's allowance per wake-up.
    pub(crate) budget: Budget,
    /// Bytes per write batch.
    pub(crate) write_batch: usize,
}

impl LoopShared {
    /// This loop's identity (see [`current_loop`]).
    pub(crate) fn id(&self) -> usize {
        std::ptr::from_ref(self) as usize
    }

    pub(crate) fn command(&self, command: Command) {
        self.commands.lock().push(command);
        let _ = self.waker.wake();
    }

    /// Marks a connection as needing service and wakes the loop.
    pub(crate) fn schedule(&self, token: Token) {
        let first = {
            let mut ready = self.ready.lock();
            ready.push(token);
            ready.len() == 1
        };
        if first {
            let _ = self.waker.wake();
        }
    }

    pub(crate) fn set_peers(&self, peers: Arc<Vec<Arc<LoopShared>>>) {
        let _ = self.peers.set(peers);
    }

    /// The loop the next accepted connection goes to (round robin).
    pub(crate) fn next_peer(self: &Arc<Self>) -> Arc<LoopShared> {
        match self.peers.get() {
            Some(peers) if !peers.is_empty() => {
                let i = self.next_peer.fetch_add(1, Ordering::Relaxed) % peers.len();
                peers.get(i).cloned().unwrap_or_else(|| self.clone())
            }
            _ => self.clone(),
        }
    }
}

/// The loop's own state, owned by its thread.
pub(crate) struct EventLoop {
    shared: Arc<LoopShared>,
    poll: Poll,
    conns: HashMap<Token, Arc<ConnShared>>,
    listeners: HashMap<Token, Box<ListenerState>>,
    timers: BinaryHeap<Reverse<(Instant, Token)>>,
    /// Connections whose budget ran out with work left.
    unfinished: Unfinished,
    /// The read buffer shared by this loop's connections.
    scratch: Box<[u8]>,
}

impl EventLoop {
    pub(crate) fn new(
        index: usize,
        budget: Budget,
        write_batch: usize,
    ) -> io::Result<(Arc<LoopShared>, EventLoop)> {
        let poll = Poll::new()?;
        let waker = Waker::new(poll.registry(), WAKER)?;
        let shared = Arc::new(LoopShared {
            index,
            waker,
            registry: poll.registry().try_clone()?,
            commands: Mutex::new(Vec::new()),
            ready: Mutex::new(Vec::new()),
            peers: OnceLock::new(),
            next_peer: AtomicUsize::new(index),
            budget,
            write_batch,
        });
        let event_loop = EventLoop {
            shared: shared.clone(),
            poll,
            conns: HashMap::new(),
            listeners: HashMap::new(),
            timers: BinaryHeap::new(),
            unfinished: Unfinished::default(),
            scratch: vec![0u8; super::driver::READ_CHUNK].into_boxed_slice(),
        };
        Ok((shared, event_loop))
    }

    pub(crate) fn run(mut self) {
        CURRENT_LOOP.with(|c| c.set(Some(self.shared.id())));
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = if self.unfinished.is_empty() {
                self.timers
                    .peek()
                    .map(|Reverse((at, _))| at.saturating_duration_since(Instant::now()))
            } else {
                // Work is left over: look for new events, don't wait.
                Some(Duration::ZERO)
            };
            // Nothing deferred may wait past the turn (a safety net: each
            // service runs its own).
            run_after_service();
            if let Err(err) = self.poll.poll(&mut events, timeout) {
                if err.kind() != io::ErrorKind::Interrupted {
                    return;
                }
            }
            self.unfinished.begin_turn();
            for event in events.iter() {
                match event.token() {
                    WAKER => {}
                    token if self.listeners.contains_key(&token) => self.accept(token),
                    token => {
                        if let Some(conn) = self.conns.get(&token).cloned() {
                            let hung_up = event.is_read_closed() || event.is_error();
                            self.service(&conn, event.is_readable() || hung_up, hung_up);
                        }
                    }
                }
            }
            if !self.run_commands() {
                return;
            }
            let ready = std::mem::take(&mut *self.shared.ready.lock());
            for token in ready {
                if let Some(conn) = self.conns.get(&token).cloned() {
                    self.service(&conn, false, false);
                }
            }
            self.run_timers();
            // Last, the connections left unfinished on the turn before
            // that nothing above has served.
            for token in self.unfinished.take_carried() {
                if let Some(conn) = self.conns.get(&token).cloned() {
                    self.service(&conn, false, false);
                }
            }
        }
    }

    /// Returns false on shutdown.
    fn run_commands(&mut self) -> bool {
        let commands = std::mem::take(&mut *self.shared.commands.lock());
        for command in commands {
            match command {
                Command::Adopt(conn) => {
                    self.conns.insert(conn.token, conn.clone());
                    self.service(&conn, true, false);
                }
                Command::Listen(listener) => {
                    let token = listener.token;
                    self.listeners.insert(token, listener);
                    // Connections may be waiting already: no edge for them.
                    self.accept(token);
                }
                Command::Unlisten(token) => {
                    if let Some(mut listener) = self.listeners.remove(&token) {
                        listener.deregister(&self.shared.registry);
                    }
                }
                Command::Shutdown => {
                    for conn in self.conns.values() {
                        conn.abort(&self.shared.registry);
                    }
                    return false;
                }
            }
        }
        true
    }

    /// `hung_up`: the event said the peer closed its side (or an error).
    fn service(&mut self, conn: &Arc<ConnShared>, readable: bool, hung_up: bool) {
        let outcome = conn.service(&self.shared.registry, &mut self.scratch, readable, hung_up);
        run_after_service();
        self.unfinished.served(conn.token, outcome.unfinished);
        if outcome.finished {
            self.conns.remove(&conn.token);
        } else if let Some(at) = outcome.deadline {
            self.timers.push(Reverse((at, conn.token)));
        }
    }

    fn run_timers(&mut self) {
        let now = Instant::now();
        while let Some(Reverse((at, token))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            if let Some(conn) = self.conns.get(&token).cloned() {
                match conn.deadline() {
                    Some(deadline) if deadline <= now => {
                        conn.timeout(now);
                        self.service(&conn, false, false);
                    }
                    // The deadline moved later since this entry was pushed.
                    Some(deadline) => self.timers.push(Reverse((deadline, token))),
                    None => {}
                }
            } else if let Some(listener) = self.listeners.get_mut(&token) {
                listener.resume(&self.shared.registry);
                self.accept(token);
            }
        }
    }

    fn accept(&mut self, token: Token) {
        let Some(listener) = self.listeners.get_mut(&token) else {
            return;
        };
        let pause = listener.accept_all(&self.shared);
        if let Some(pause) = pause {
            self.timers.push(Reverse((Instant::now() + pause, token)));
        }
    }
}

/// Accept backoff: 5 ms doubling to 1 s (grpc-go's).
pub(crate) fn next_backoff(previous: Option<Duration>) -> Duration {
    match previous {
        None => Duration::from_millis(5),
        Some(d) => (d * 2).min(Duration::from_secs(1)),
    }
}
