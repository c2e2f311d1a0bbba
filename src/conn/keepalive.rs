//! `Keepalive`: a connection's keepalive pings (grpc-go's `keepalive`
//! parameters: a PING after `time` without reading, the connection closed
//! if nothing is read within `timeout` of it) and, on a server, their
//! enforcement (grpc-go's `EnforcementPolicy`: a client that pings more
//! often than `min_time`, or without streams when that is not permitted,
//! collects strikes; past [`MAX_PING_STRIKES`] it gets GOAWAY
//! ENHANCE_YOUR_CALM `too_many_pings`).
//!
//! Invariants: at most one keepalive PING is outstanding; its timeout timer
//! runs exactly while it is; any read answers it (RFC 9113 §6.7 asks only
//! that a PING be answered, grpc-go counts any bytes as life). Sending DATA
//! or HEADERS forgives the strikes (grpc-go: the pings may be BDP samples
//! of our data), and makes the next PING exempt from the PING flood count.

use std::time::{Duration, Instant};

use loopy::Role;

use super::{CloseReason, Connection, Timer};

/// PING payload of keepalive pings.
pub(super) const KEEPALIVE_PING: [u8; 8] = *b"keepaliv";
/// grpc-go's maxPingStrikes.
const MAX_PING_STRIKES: u32 = 2;
/// grpc-go: without streams, a ping is expected no more often than this.
const IDLE_PING_INTERVAL: Duration = Duration::from_secs(2 * 60 * 60);

/// The keepalive and ping-enforcement state of one connection.
#[derive(Debug)]
pub(super) struct Keepalive {
    /// Our keepalive PING is out, unanswered.
    outstanding: bool,
    /// When we last read from the peer.
    last_read: Instant,
    /// Server: the client's pings that came too soon.
    strikes: u32,
    /// Server: when the client's last PING came.
    last_ping_at: Option<Instant>,
    /// DATA or HEADERS sent since the last PING received: the strikes are
    /// forgiven at the next one.
    forgive_strikes: bool,
    /// DATA or HEADERS sent since the last PING received: that PING is a
    /// BDP sample, not counted against `limits.pings`.
    sent_since_ping: bool,
}

impl Keepalive {
    pub(super) fn new(now: Instant) -> Keepalive {
        Keepalive {
            outstanding: false,
            last_read: now,
            strikes: 0,
            last_ping_at: None,
            forgive_strikes: false,
            sent_since_ping: false,
        }
    }

    /// We wrote DATA or HEADERS.
    pub(super) fn stream_frames_sent(&mut self) {
        self.forgive_strikes = true;
        self.sent_since_ping = true;
    }

    /// A PING arrived: true if it follows our DATA or HEADERS (a BDP
    /// sample of ours, exempt from the PING flood count).
    pub(super) fn ping_answers_our_data(&mut self) -> bool {
        std::mem::take(&mut self.sent_since_ping)
    }

    /// Server: the client pinged at `now`, `min` after its last PING being
    /// the least allowed; true when it is out of strikes.
    fn strike(&mut self, now: Instant, min: Duration) -> bool {
        let last = self.last_ping_at.replace(now);
        if std::mem::take(&mut self.forgive_strikes) {
            self.strikes = 0;
            return false;
        }
        if last.is_some_and(|at| now.saturating_duration_since(at) < min) {
            self.strikes += 1;
        }
        self.strikes > MAX_PING_STRIKES
    }
}

impl Connection {
    /// (ping interval, ping timeout) for this role.
    pub(super) fn keepalive_times(&self) -> (Option<Duration>, Duration) {
        match self.role {
            Role::Client => {
                let k = self.config.client_keepalive;
                (k.time.map(|t| t.max(Duration::from_secs(10))), k.timeout)
            }
            Role::Server => {
                let k = self.config.server_keepalive;
                (Some(k.time.max(Duration::from_secs(1))), k.timeout)
            }
        }
    }

    /// Arms the first keepalive PING.
    pub(super) fn start_keepalive(&mut self, now: Instant) {
        if let (Some(time), _) = self.keepalive_times() {
            self.timers.set(Timer::KeepalivePing, now + time);
        }
    }

    fn keepalive_allowed(&self) -> bool {
        match self.role {
            Role::Client => {
                !self.streams.is_empty() || self.config.client_keepalive.permit_without_stream
            }
            Role::Server => true,
        }
    }

    /// [`Timer::KeepalivePing`]: ping if nothing was read for an interval.
    pub(super) fn on_keepalive_timer(&mut self, now: Instant) {
        let (time, timeout) = self.keepalive_times();
        let Some(time) = time else { return };
        let due = self.keepalive.last_read + time;
        if due > now {
            self.timers.set(Timer::KeepalivePing, due);
        } else if self.keepalive_allowed() {
            self.writer.queue_ping(KEEPALIVE_PING);
            self.keepalive.outstanding = true;
            self.timers.set(Timer::KeepaliveTimeout, now + timeout);
        } else {
            // Dormant: no streams and pings without them are off.
            self.timers.set(Timer::KeepalivePing, now + time);
        }
    }

    /// [`Timer::KeepaliveTimeout`]: the PING went unanswered.
    pub(super) fn on_keepalive_timeout(&mut self) {
        if self.keepalive.outstanding {
            self.finish(CloseReason::KeepaliveTimeout);
        }
    }

    /// Our keepalive PING came back.
    pub(super) fn keepalive_answered(&mut self) {
        self.keepalive.outstanding = false;
        self.timers.stop(Timer::KeepaliveTimeout);
    }

    /// Bytes were read at `now`: the peer is alive.
    pub(super) fn read_activity(&mut self, now: Instant) {
        self.keepalive.last_read = now;
        if self.keepalive.outstanding {
            self.keepalive_answered();
        }
        // grpc-go: the next keepalive ping is one interval after the last
        // read (the fired timer re-arms itself; after a ping it is re-armed
        // here, once the peer answers).
        if let (Some(time), _) = self.keepalive_times() {
            if self.timers.get(Timer::KeepalivePing).is_none() {
                self.timers.set(Timer::KeepalivePing, now + time);
            }
        }
    }

    /// Server: the client's PING against the enforcement policy; true when
    /// the client is out of strikes.
    pub(super) fn ping_strike(&mut self, now: Instant) -> bool {
        let policy = self.config.enforcement;
        let min = if self.streams.is_empty() && !policy.permit_without_stream {
            IDLE_PING_INTERVAL
        } else {
            policy.min_time
        };
        self.keepalive.strike(now, min)
    }
}
