//! The connection's timers: an enum indexing an array of deadlines
//! (quinn's `connection/timer.rs`); the next timeout is a `min`.

use std::time::Instant;

/// One kind of deadline a connection keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timer {
    /// Our SETTINGS must be acknowledged by then.
    SettingsAck,
    /// Server: the client preface must have arrived by then.
    Preface,
    /// Send a keepalive PING (nothing read since the last reset).
    KeepalivePing,
    /// The keepalive PING must be answered (or anything read) by then.
    KeepaliveTimeout,
    /// Server: no active streams since; GOAWAY when it fires.
    Idle,
    /// Server: the connection's maximum age.
    MaxAge,
    /// After the graceful GOAWAY: close by then.
    Grace,
}

const COUNT: usize = 7;

impl Timer {
    const ALL: [Timer; COUNT] = [
        Timer::SettingsAck,
        Timer::Preface,
        Timer::KeepalivePing,
        Timer::KeepaliveTimeout,
        Timer::Idle,
        Timer::MaxAge,
        Timer::Grace,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// The deadlines, one slot per [`Timer`].
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TimerTable {
    slots: [Option<Instant>; COUNT],
}

impl TimerTable {
    pub(crate) fn set(&mut self, timer: Timer, at: Instant) {
        if let Some(slot) = self.slots.get_mut(timer.index()) {
            *slot = Some(at);
        }
    }

    pub(crate) fn stop(&mut self, timer: Timer) {
        if let Some(slot) = self.slots.get_mut(timer.index()) {
            *slot = None;
        }
    }

    pub(crate) fn get(&self, timer: Timer) -> Option<Instant> {
        self.slots.get(timer.index()).copied().flatten()
    }

    /// The earliest deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.slots.iter().flatten().min().copied()
    }

    /// Timers due at `now`, cleared as they are returned.
    pub(crate) fn expired(&mut self, now: Instant) -> impl Iterator<Item = Timer> + '_ {
        Timer::ALL.into_iter().filter(move |t| {
            let due = self.get(*t).is_some_and(|at| at <= now);
            if due {
                self.stop(*t);
            }
            due
        })
    }
}
