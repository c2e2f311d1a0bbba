//! Subchannels: one per resolved address, each owning its connection(s)
//! (more than one only with gRFC A105), its connectivity state and its
//! reconnect backoff; and the live connection record the picker hands out.
//!
//! Lock rule of the whole client: never touch a connection (its lock)
//! while holding a subchannel's or the channel's lock — a connection's
//! session calls back into the channel with the connection locked.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

use super::backoff::Backoff;
use super::call::ClientCall;
use super::connectivity::ConnectivityState;
use super::resolver::ResolvedAddr;
use crate::conn::StreamKey;
use crate::grpc::Status;
use crate::runtime::ConnHandle;

/// Client stream ids past this many make the channel move to a new
/// connection (75 % of 2^31).
const STREAM_ID_ROLLOVER: u32 = 0x6000_0000;

/// The calls on one connection, by stream key.
pub(crate) type Calls = Arc<Mutex<HashMap<StreamKey, Arc<ClientCall>>>>;

/// A live connection of a subchannel.
#[derive(Clone)]
pub(crate) struct Conn {
    pub(crate) handle: ConnHandle,
    pub(crate) calls: Calls,
    /// GOAWAY received or stream ids nearly used up: no new calls here.
    pub(crate) draining: Arc<AtomicBool>,
    pub(crate) last_stream_id: Arc<AtomicU32>,
    /// The server's MAX_CONCURRENT_STREAMS as last seen (A105).
    pub(crate) peer_limit: Arc<AtomicU32>,
}

impl Conn {
    pub(crate) fn usable(&self) -> bool {
        !self.handle.is_closed()
            && !self.draining.load(Ordering::Acquire)
            && self.last_stream_id.load(Ordering::Relaxed) < STREAM_ID_ROLLOVER
    }
}

pub(crate) struct SubState {
    pub(crate) state: ConnectivityState,
    pub(crate) conn: Option<Conn>,
    /// gRFC A105: more connections when the first is at the server's
    /// MAX_CONCURRENT_STREAMS (only with `max_connections_per_address` > 1).
    pub(crate) extra: Vec<Conn>,
    /// An extra connection is being made.
    pub(crate) growing: bool,
    pub(crate) backoff: Backoff,
    pub(crate) retry_at: Option<Instant>,
    pub(crate) last_error: Option<Status>,
}

/// One address and its connection.
pub(crate) struct Subchannel {
    pub(crate) addr: ResolvedAddr,
    pub(crate) inner: Mutex<SubState>,
}

impl SubState {
    /// Every connection, taken out (to close them outside the lock).
    pub(crate) fn take_all(&mut self) -> Vec<Conn> {
        let mut all: Vec<Conn> = self.conn.take().into_iter().collect();
        all.append(&mut self.extra);
        all
    }
}

impl Subchannel {
    /// A usable connection with room for another stream; with A105 on and
    /// every connection full, the least loaded one (the call queues there
    /// while another connection is made: `grow` says so).
    pub(crate) fn pick_conn(&self, max_connections: usize) -> (Option<Conn>, bool) {
        let Some(first) = self.ready_conn() else {
            return (None, false);
        };
        if max_connections <= 1 {
            return (Some(first), false);
        }
        let (mut conns, growing) = {
            let mut sub = self.inner.lock();
            sub.extra.retain(Conn::usable);
            (sub.extra.clone(), sub.growing)
        };
        conns.insert(0, first);
        let mut best: Option<(Conn, usize)> = None;
        for conn in conns.iter() {
            // Never block here: a call may be started from a completion
            // callback running on this connection's loop, holding its lock.
            // When it is locked, estimate from the calls in flight there and
            // the peer's limit as last seen.
            let (open, limit, waiting) = match conn.handle.try_stream_capacity() {
                Some((open, limit, waiting)) => {
                    conn.peer_limit.store(limit, Ordering::Relaxed);
                    (open, limit, waiting)
                }
                None => {
                    let in_flight = u32::try_from(conn.calls.lock().len()).unwrap_or(u32::MAX);
                    (in_flight, conn.peer_limit.load(Ordering::Relaxed), 0)
                }
            };
            if open < limit && waiting == 0 {
                return (Some(conn.clone()), false);
            }
            let load = open as usize + waiting;
            if best.as_ref().is_none_or(|(_, l)| load < *l) {
                best = Some((conn.clone(), load));
            }
        }
        let grow = !growing && conns.len() < max_connections;
        (best.map(|(c, _)| c), grow)
    }

    pub(crate) fn ready_conn(&self) -> Option<Conn> {
        let left = {
            let mut sub = self.inner.lock();
            match &sub.conn {
                Some(conn) if conn.usable() => return Some(conn.clone()),
                Some(_) => {
                    sub.state = ConnectivityState::Idle;
                    sub.conn.take()
                }
                None => return None,
            }
        };
        // Left behind: its calls finish, new ones go elsewhere. (Never
        // touch a connection while holding a channel lock: its session
        // calls back into the channel with the connection locked.)
        if let Some(conn) = left {
            if !conn.handle.is_closed() {
                conn.handle.shutdown();
            }
        }
        None
    }

    pub(crate) fn state(&self) -> ConnectivityState {
        self.inner.lock().state
    }

    /// Idle, or failed and past its backoff.
    pub(crate) fn connectable(&self, now: Instant) -> bool {
        let sub = self.inner.lock();
        match sub.state {
            ConnectivityState::Idle => true,
            ConnectivityState::TransientFailure => sub.retry_at.is_none_or(|at| at <= now),
            _ => false,
        }
    }
}
