//! Connecting and picking: resolving the target into subchannels, starting
//! connections as the balancer wants them (and extra ones for gRFC A105),
//! the picker that hands calls a ready connection (grpc-go's
//! pickerWrapper: block while connecting, fail fast in
//! TRANSIENT_FAILURE, wait for ready up to the deadline), connection loss,
//! and the maintenance tick (reconnects after backoff, idle timeout,
//! re-resolution).
//!
//! Lock rule: no channel or subchannel lock is held across a connection
//! operation or a blocking connect.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::backoff::Backoff;
use super::channel::{jitter_rng, Config, Inner};
use super::connectivity::ConnectivityState;
use super::resolver::ResolvedAddr;
use super::service_config::ServiceConfig;
use super::session::ClientSession;
use super::subchannel::{Calls, Conn, SubState, Subchannel};
use crate::grpc::Status;
use crate::runtime::Session;

impl Inner {
    /// Resolves when asked to (first use, connection loss, refresh) and
    /// the gate allows; keeps subchannels whose address stays.
    pub(super) fn ensure_subchannels(self: &Arc<Self>) -> Result<(), Status> {
        let empty = self.subchannels.lock().is_empty();
        if !empty && !self.needs_resolve.load(Ordering::Acquire) {
            return Ok(());
        }
        if !empty && !self.resolve_gate.lock().try_begin(Instant::now()) {
            return Ok(());
        }
        self.needs_resolve.store(false, Ordering::Release);
        let update = match self.options.resolvers.resolve(&self.target) {
            Ok(update) => update,
            Err(e) => {
                if empty {
                    return Err(Status::unavailable(format!(
                        "name resolution failed: {}",
                        e.message()
                    )));
                }
                return Ok(());
            }
        };
        *self.last_resolve.lock() = Some(Instant::now());
        if let Some(json) = &update.service_config {
            if let Ok(parsed) = ServiceConfig::from_json(json) {
                *self.config.lock() = Arc::new(Config::new(Some(parsed)));
            }
        }
        let addrs: Vec<ResolvedAddr> = update.addresses.iter().map(|a| a.addr.clone()).collect();
        if addrs.is_empty() {
            return Err(Status::unavailable(format!(
                "{} resolved to no addresses",
                self.authority
            )));
        }
        let mut subs = self.subchannels.lock();
        let mut next = Vec::with_capacity(addrs.len());
        for addr in addrs {
            match subs.iter().position(|s| s.addr == addr) {
                Some(i) => next.push(subs.swap_remove(i)),
                None => next.push(Arc::new(Subchannel {
                    addr,
                    inner: Mutex::new(SubState {
                        state: ConnectivityState::Idle,
                        conn: None,
                        extra: Vec::new(),
                        growing: false,
                        backoff: Backoff::new(self.options.backoff),
                        retry_at: None,
                        last_error: None,
                    }),
                })),
            }
        }
        let gone: Vec<Arc<Subchannel>> = subs.drain(..).collect();
        *subs = next;
        drop(subs);
        for sub in gone {
            let conns = sub.inner.lock().take_all();
            for conn in conns {
                conn.handle.shutdown();
            }
        }
        self.notify();
        Ok(())
    }

    /// Starts connecting what the policy wants connected.
    pub(super) fn kick(self: &Arc<Self>) {
        let now = Instant::now();
        let subs = self.subchannels.lock().clone();
        match self.balancer().connects_all() {
            true => {
                for sub in subs.iter().filter(|s| s.connectable(now)) {
                    self.connect_sub(sub.clone());
                }
            }
            false => {
                let busy = subs.iter().any(|s| {
                    matches!(
                        s.state(),
                        ConnectivityState::Ready | ConnectivityState::Connecting
                    )
                });
                if !busy {
                    if let Some(sub) = subs.iter().find(|s| s.connectable(now)) {
                        self.connect_sub(sub.clone());
                    }
                }
            }
        }
    }

    /// gRFC A105: one more connection for a subchannel whose connections
    /// are at the server's MAX_CONCURRENT_STREAMS.
    fn grow(self: &Arc<Self>, sub: Arc<Subchannel>) {
        {
            let mut state = sub.inner.lock();
            if state.growing {
                return;
            }
            state.growing = true;
        }
        let inner = self.clone();
        let _ = std::thread::Builder::new()
            .name("mio-grpc-connect".into())
            .spawn(move || {
                let result = inner.dial(&sub);
                let mut state = sub.inner.lock();
                state.growing = false;
                if let Ok(conn) = result {
                    state.extra.push(conn);
                }
                drop(state);
                inner.notify();
            });
    }

    /// Connects one subchannel on a short-lived thread.
    fn connect_sub(self: &Arc<Self>, sub: Arc<Subchannel>) {
        {
            let mut state = sub.inner.lock();
            if state.state == ConnectivityState::Connecting
                || state.conn.as_ref().is_some_and(Conn::usable)
            {
                return;
            }
            state.state = ConnectivityState::Connecting;
        }
        self.notify();
        let inner = self.clone();
        let _ = std::thread::Builder::new()
            .name("mio-grpc-connect".into())
            .spawn(move || {
                let result = inner.dial(&sub);
                {
                    let mut state = sub.inner.lock();
                    match result {
                        Ok(conn) => {
                            state.conn = Some(conn);
                            state.state = ConnectivityState::Ready;
                            state.retry_at = None;
                            state.last_error = None;
                            state.backoff.reset();
                        }
                        Err(status) => {
                            let mut rng = jitter_rng(0);
                            let delay = state.backoff.next_delay(&mut rng);
                            state.retry_at = Some(Instant::now() + delay);
                            state.last_error = Some(status);
                            state.state = ConnectivityState::TransientFailure;
                        }
                    }
                }
                inner.notify();
                // pick_first moves on to the next address at once.
                inner.kick();
            });
    }

    fn dial(self: &Arc<Self>, sub: &Arc<Subchannel>) -> Result<Conn, Status> {
        let timeout = sub.inner.lock().backoff.connect_timeout(Duration::ZERO);
        let mut config = self.options.conn.clone();
        config.client_keepalive.time = *self.keepalive_time.lock();
        // A clone: a blocking connect must not hold the channel's lock.
        let runtime = self.runtime.lock().clone();
        let Some(runtime) = runtime else {
            return Err(Status::cancelled("grpc: the client connection is closing"));
        };
        let calls: Calls = Arc::default();
        let draining = Arc::new(AtomicBool::new(false));
        let last_stream_id = Arc::new(AtomicU32::new(0));
        let session = ClientSession {
            calls: calls.clone(),
            draining: draining.clone(),
            last_stream_id: last_stream_id.clone(),
            channel: Arc::downgrade(self),
            sub: Arc::downgrade(sub),
        };
        let factory = move |_| Box::new(session) as Box<dyn Session>;
        let connected = match &sub.addr {
            ResolvedAddr::Tcp(addr) => runtime.connect(*addr, timeout, config, factory),
            ResolvedAddr::Unix(path) => runtime.connect_unix(path, timeout, config, factory),
            ResolvedAddr::UnixAbstract(name) => {
                runtime.connect_unix_abstract(name, timeout, config, factory)
            }
        };
        match connected {
            Ok(handle) => Ok(Conn {
                handle,
                calls,
                draining,
                last_stream_id,
                peer_limit: Arc::new(AtomicU32::new(u32::MAX)),
            }),
            Err(e) => Err(Status::unavailable(format!(
                "connection to {} failed: {e}",
                sub.addr
            ))),
        }
    }

    /// A ready connection for a call (grpc-go's pickerWrapper).
    pub(super) fn pick(
        self: &Arc<Self>,
        deadline: Option<Instant>,
        wait_for_ready: bool,
    ) -> Result<Conn, Status> {
        loop {
            if self.shutdown.load(Ordering::Acquire) {
                return Err(Status::cancelled("grpc: the client connection is closing"));
            }
            if let Err(status) = self.ensure_subchannels() {
                if !wait_for_ready {
                    return Err(status);
                }
            }
            let generation = *self.picker.0.lock();
            let subs = self.subchannels.lock().clone();
            let ready: Vec<&Arc<Subchannel>> = subs
                .iter()
                .filter(|s| s.state() == ConnectivityState::Ready)
                .collect();
            if !ready.is_empty() {
                let addrs: Vec<ResolvedAddr> = ready.iter().map(|s| s.addr.clone()).collect();
                let i = self.balancer().pick(&addrs);
                if let Some(sub) = ready.get(i) {
                    let (conn, grow) = sub.pick_conn(self.options.max_connections_per_address);
                    if grow {
                        self.grow(Arc::clone(sub));
                    }
                    if let Some(conn) = conn {
                        return Ok(conn);
                    }
                }
                // The chosen one just went away: look again.
                continue;
            }
            self.kick();
            let failed = !subs.is_empty()
                && subs
                    .iter()
                    .all(|s| s.state() == ConnectivityState::TransientFailure);
            if failed && !wait_for_ready {
                let error = subs.iter().find_map(|s| s.inner.lock().last_error.clone());
                return Err(error.unwrap_or_else(|| Status::unavailable("no subchannel is ready")));
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| d <= now) {
                return Err(Status::deadline_exceeded(
                    "deadline exceeded while waiting for a connection",
                ));
            }
            let until = deadline.map_or(now + Duration::from_millis(100), |d| {
                d.min(now + Duration::from_millis(100))
            });
            let mut current = self.picker.0.lock();
            if *current == generation {
                let _ = self.picker.1.wait_until(&mut current, until);
            }
        }
    }

    /// A subchannel's connection went away.
    pub(super) fn connection_lost(self: &Arc<Self>, sub: &Subchannel) {
        {
            let mut state = sub.inner.lock();
            if state.conn.as_ref().is_some_and(|c| !c.usable()) {
                // An extra connection, if any, takes over as the first.
                state.extra.retain(Conn::usable);
                state.conn = state.extra.pop();
            }
            if state.conn.is_none() && state.state == ConnectivityState::Ready {
                state.state = ConnectivityState::Idle;
            }
        }
        self.needs_resolve.store(true, Ordering::Release);
        self.notify();
    }

    /// The maintenance tick: background reconnects, idle timeout, refresh.
    pub(super) fn tick(self: &Arc<Self>) {
        let now = Instant::now();
        let connects_all = self.balancer().connects_all();
        let subs = self.subchannels.lock().clone();
        // Failed subchannels come back after their backoff; round_robin
        // also reconnects lost ones at once.
        let wanted = |s: &Subchannel| match s.state() {
            ConnectivityState::TransientFailure => s.connectable(now),
            ConnectivityState::Idle => connects_all && self.state.get() != ConnectivityState::Idle,
            _ => false,
        };
        if subs.iter().any(|s| wanted(s)) {
            self.kick();
        }
        if let Some(idle) = self.options.idle_timeout {
            let quiet = self.inflight.load(Ordering::Acquire) == 0
                && now.saturating_duration_since(*self.last_active.lock()) >= idle;
            if quiet && self.state.get() != ConnectivityState::Idle {
                for sub in &subs {
                    let conns = {
                        let mut state = sub.inner.lock();
                        state.state = ConnectivityState::Idle;
                        state.retry_at = None;
                        state.take_all()
                    };
                    for conn in conns {
                        conn.handle.shutdown();
                    }
                }
                self.state.set(ConnectivityState::Idle);
                self.notify();
            }
        }
        let refresh = self
            .options
            .resolvers
            .resolver_for(&self.target)
            .ok()
            .and_then(|r| r.refresh_interval());
        if let (Some(every), Some(last)) = (refresh, *self.last_resolve.lock()) {
            if now.saturating_duration_since(last) >= every {
                self.needs_resolve.store(true, Ordering::Release);
            }
        }
    }
}
