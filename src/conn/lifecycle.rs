//! `Lifecycle`: where a connection is in its life — the opening handshake
//! (RFC 9113 §3.4), the GOAWAYs either way (§6.8, with grpc-go's
//! two-GOAWAY graceful drain), and the end. Its transitions are the only
//! place those facts change.
//!
//! ```text
//!                               Live { handshake, drain, peer_goaway }
//!
//!  handshake (§3.4):
//!    server:  Preface ──client magic──▶ FirstSettings ──SETTINGS──▶ Open
//!    client:                            FirstSettings ──SETTINGS──▶ Open
//!
//!  drain, our GOAWAYs (§6.8), at any point of the handshake:
//!    server:  None ──shutdown: GOAWAY(2^31−1) + PING──▶ Announced
//!                  ──the PING's ack: GOAWAY(last)──▶ Final { last }
//!    client:  None ──shutdown: GOAWAY(0)──────────────▶ Final { last: 0 }
//!
//!  peer_goaway, the peer's GOAWAYs (once the handshake is Open, since the
//!  peer's first frame must be SETTINGS):
//!             None ──GOAWAY(last)──▶ Some(the smallest last so far)
//!
//!  Live ──a connection error (GOAWAY sent), the peer's GOAWAY with an
//!         error, a timeout, the transport closing, or the last stream
//!         done after a GOAWAY either way──▶ Closed(reason)
//! ```
//!
//! The three parts of `Live` are independent: the drain may start before
//! the client preface arrives, and the peer may send GOAWAY before or after
//! ours. `Closed` is final; a connection error's GOAWAY is sent just before
//! it, so it needs no drain state of its own.
//!
//! The `impl Connection` part: the graceful shutdown, the hard close, a
//! connection error (GOAWAY with its code, §5.4.1), and the end once a
//! GOAWAY either way has left no stream.

use std::time::Instant;

use bytes::Bytes;
use framer::{GoAway, Reason, StreamId};
use loopy::Role;

use super::{CloseReason, ConnEvent, ConnViolation, Connection, Timer};

/// PING payload of the graceful-shutdown ping (grpc-go's goAwayPing).
pub(super) const DRAIN_PING: [u8; 8] = [1, 6, 1, 8, 0, 3, 3, 9];

/// The opening handshake (RFC 9113 §3.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Handshake {
    /// Server: waiting for the client preface (the magic octets).
    Preface,
    /// Waiting for the peer's first frame, which must be SETTINGS.
    FirstSettings,
    /// Both prefaces done.
    Open,
}

/// Our side of the graceful shutdown (grpc-go's two-GOAWAY drain).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Drain {
    /// No GOAWAY sent.
    None,
    /// Server: GOAWAY(2^31−1) and a PING sent; the final GOAWAY waits for
    /// the PING's ack (by then the client has seen the first one).
    Announced,
    /// Our final GOAWAY is out, naming `last`: peer streams above it are
    /// ignored, and the connection ends once its streams are done.
    Final {
        /// The last stream id it named.
        last: StreamId,
    },
}

/// Where a connection is in its life. See the module documentation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Lifecycle {
    /// Running.
    Live {
        /// The opening handshake.
        handshake: Handshake,
        /// Our GOAWAYs.
        drain: Drain,
        /// The smallest last stream id of the peer's GOAWAYs, if any came.
        peer_goaway: Option<StreamId>,
    },
    /// Over: write out the last batch, then close the socket.
    Closed(CloseReason),
}

impl Lifecycle {
    /// A new connection in `role`: a server first waits for the preface.
    pub(super) fn new(role: Role) -> Lifecycle {
        Lifecycle::Live {
            handshake: match role {
                Role::Server => Handshake::Preface,
                Role::Client => Handshake::FirstSettings,
            },
            drain: Drain::None,
            peer_goaway: None,
        }
    }

    /// The handshake's progress (`None` once closed).
    pub(super) fn handshake(&self) -> Option<Handshake> {
        match self {
            Lifecycle::Live { handshake, .. } => Some(*handshake),
            Lifecycle::Closed(_) => None,
        }
    }

    /// Server: the client preface arrived (`Preface` → `FirstSettings`).
    pub(super) fn preface_received(&mut self) {
        if let Lifecycle::Live { handshake, .. } = self {
            if *handshake == Handshake::Preface {
                *handshake = Handshake::FirstSettings;
            }
        }
    }

    /// The peer's first SETTINGS arrived (`FirstSettings` → `Open`).
    pub(super) fn first_settings_received(&mut self) {
        if let Lifecycle::Live { handshake, .. } = self {
            if *handshake == Handshake::FirstSettings {
                *handshake = Handshake::Open;
            }
        }
    }

    /// True once the connection is over.
    pub(super) fn is_closed(&self) -> bool {
        matches!(self, Lifecycle::Closed(_))
    }

    /// Ends the connection; false if it had ended already (the first
    /// reason stands).
    pub(super) fn close(&mut self, reason: CloseReason) -> bool {
        if self.is_closed() {
            return false;
        }
        *self = Lifecycle::Closed(reason);
        true
    }

    /// True while a graceful shutdown may start: live, no GOAWAY of ours.
    pub(super) fn may_start_drain(&self) -> bool {
        matches!(
            self,
            Lifecycle::Live {
                drain: Drain::None,
                ..
            }
        )
    }

    /// Server: the first GOAWAY(2^31−1) and its PING are sent
    /// (`None` → `Announced`).
    pub(super) fn drain_announced(&mut self) {
        if let Lifecycle::Live { drain, .. } = self {
            if *drain == Drain::None {
                *drain = Drain::Announced;
            }
        }
    }

    /// True while the drain waits for its PING's ack.
    pub(super) fn awaiting_drain_ack(&self) -> bool {
        matches!(
            self,
            Lifecycle::Live {
                drain: Drain::Announced,
                ..
            }
        )
    }

    /// Our final GOAWAY naming `last` is sent (`None` or `Announced` →
    /// `Final`).
    pub(super) fn final_goaway_sent(&mut self, last: StreamId) {
        if let Lifecycle::Live { drain, .. } = self {
            if matches!(drain, Drain::None | Drain::Announced) {
                *drain = Drain::Final { last };
            }
        }
    }

    /// The peer's GOAWAY naming `last` arrived; the smallest last stream id
    /// stands (RFC 9113 §6.8: it must not grow).
    pub(super) fn peer_goaway(&mut self, last: StreamId) {
        if let Lifecycle::Live { peer_goaway, .. } = self {
            *peer_goaway = Some(peer_goaway.map_or(last, |prev| prev.min(last)));
        }
    }

    /// True if a peer stream `id` opened now is past our final GOAWAY's
    /// last stream (§6.8: ignored).
    pub(super) fn is_past_our_goaway(&self, id: StreamId) -> bool {
        matches!(self, Lifecycle::Live { drain: Drain::Final { last }, .. } if id > *last)
    }

    /// True once either side's final GOAWAY is out: the connection ends
    /// when its last stream does.
    pub(super) fn going_away(&self) -> bool {
        matches!(
            self,
            Lifecycle::Live {
                drain: Drain::Final { .. },
                ..
            } | Lifecycle::Live {
                peer_goaway: Some(_),
                ..
            }
        )
    }
}

impl Connection {
    /// Starts a graceful shutdown. Server: GOAWAY(2^31−1) and a PING, then
    /// the final GOAWAY once the PING returns, then close when the streams
    /// finish or after the drain grace period. Client: GOAWAY and close
    /// when its streams finish.
    pub fn shutdown(&mut self, now: Instant) {
        if !self.lifecycle.may_start_drain() {
            return;
        }
        match self.role {
            Role::Server => {
                self.send_goaway(StreamId::MAX, Reason::NO_ERROR, b"");
                self.writer.queue_ping(DRAIN_PING);
                self.lifecycle.drain_announced();
            }
            Role::Client => {
                self.send_goaway(StreamId::ZERO, Reason::NO_ERROR, b"");
                self.lifecycle.final_goaway_sent(StreamId::ZERO);
            }
        }
        self.timers.set(Timer::Grace, now + self.config.drain_grace);
        self.maybe_done();
    }

    /// Ends the connection now with GOAWAY `reason` (e.g. the server is
    /// stopping hard).
    pub fn close(&mut self, reason: Reason, detail: &str) {
        if self.lifecycle.is_closed() {
            return;
        }
        let last = self.last_stream_for_goaway();
        self.send_goaway(last, reason, detail.as_bytes());
        self.finish(CloseReason::Aborted {
            reason,
            detail: detail.to_string(),
        });
    }

    /// The drain PING came back: the client has seen the first GOAWAY, so
    /// the final one names the real last stream.
    pub(super) fn drain_ping_answered(&mut self) {
        if !self.lifecycle.awaiting_drain_ack() {
            return;
        }
        let last = self.streams.max_peer();
        self.send_goaway(last, Reason::NO_ERROR, b"");
        self.lifecycle.final_goaway_sent(last);
        self.maybe_done();
    }

    /// Queues our GOAWAY (the caller records what it means in the
    /// lifecycle: a drain step, or the close that follows).
    pub(super) fn send_goaway(&mut self, last: StreamId, reason: Reason, debug: &[u8]) {
        self.stats.goaways_out += 1;
        let goaway = GoAway {
            last_stream_id: last,
            reason,
            debug_data: Bytes::copy_from_slice(debug),
        };
        self.writer.queue_goaway(goaway);
    }

    /// A connection error: GOAWAY with the violation's code and text, then
    /// close.
    pub(super) fn fail(&mut self, violation: ConnViolation) {
        if self.lifecycle.is_closed() {
            return;
        }
        let last = self.last_stream_for_goaway();
        let debug = violation.to_string();
        self.send_goaway(last, violation.reason(), debug.as_bytes());
        self.finish(CloseReason::LocalError(violation));
    }

    /// The last stream id our GOAWAY names: the highest the peer opened
    /// (a client is opened nothing: push is off).
    pub(super) fn last_stream_for_goaway(&self) -> StreamId {
        match self.role {
            Role::Server => self.streams.max_peer(),
            Role::Client => StreamId::ZERO,
        }
    }

    /// Ends the connection (the first reason stands) and reports it.
    pub(super) fn finish(&mut self, reason: CloseReason) {
        if self.lifecycle.close(reason.clone()) {
            self.events
                .push_back(ConnEvent::ConnectionClosed { reason });
        }
    }

    /// After GOAWAY (either way) the connection ends when no stream is left.
    pub(super) fn maybe_done(&mut self) {
        if self.lifecycle.going_away() && self.streams.is_empty() {
            self.finish(CloseReason::Done);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_handshake_goes_preface_first_settings_open() {
        let mut life = Lifecycle::new(Role::Server);
        assert_eq!(life.handshake(), Some(Handshake::Preface));
        life.first_settings_received(); // out of order: no change
        assert_eq!(life.handshake(), Some(Handshake::Preface));
        life.preface_received();
        assert_eq!(life.handshake(), Some(Handshake::FirstSettings));
        life.first_settings_received();
        assert_eq!(life.handshake(), Some(Handshake::Open));
    }

    #[test]
    fn the_drain_may_start_before_the_handshake_ends() {
        let mut life = Lifecycle::new(Role::Server);
        assert!(life.may_start_drain());
        life.drain_announced();
        assert!(!life.may_start_drain());
        assert!(life.awaiting_drain_ack());
        assert!(!life.going_away());
        assert!(!life.is_past_our_goaway(StreamId::new(99)));
        life.preface_received();
        life.final_goaway_sent(StreamId::new(3));
        assert!(life.going_away());
        assert!(life.is_past_our_goaway(StreamId::new(5)));
        assert!(!life.is_past_our_goaway(StreamId::new(3)));
        assert_eq!(life.handshake(), Some(Handshake::FirstSettings));
    }

    #[test]
    fn the_peer_goaway_keeps_the_smallest_last_stream() {
        let mut life = Lifecycle::new(Role::Client);
        life.peer_goaway(StreamId::new(7));
        life.peer_goaway(StreamId::new(9));
        assert!(life.going_away());
        assert!(matches!(
            life,
            Lifecycle::Live { peer_goaway: Some(last), .. } if last == StreamId::new(7)
        ));
    }

    #[test]
    fn the_first_close_reason_stands() {
        let mut life = Lifecycle::new(Role::Client);
        assert!(life.close(CloseReason::Done));
        assert!(!life.close(CloseReason::KeepaliveTimeout));
        assert_eq!(life, Lifecycle::Closed(CloseReason::Done));
        assert!(!life.may_start_drain());
        assert!(!life.going_away());
        assert_eq!(life.handshake(), None);
    }
}
