//! How a call reaches its connection from any thread ([`ConnLink`]): its
//! frames go out as conn's typed [`Command`]s through the runtime's handle
//! (the direct-write path) or, with no runtime (a session driven
//! byte-in/byte-out), through the connection's [`Inbox`]; and the work only the loop may do (window
//! releases, readiness after backpressure) is posted to the session's
//! inbox, which the loop drains in `Session::poll`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Weak;

use parking_lot::Mutex;

use crate::conn::{Command, Inbox, SendError, StreamKey, Wake};
use crate::runtime::ConnHandle;

/// Work for the session, done on the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmd {
    /// The handler took request bytes whose window was withheld.
    Release(StreamKey, usize),
    /// A call's write quota has room again (its reactor hears `on_ready`).
    Ready(StreamKey),
}

/// One connection as its calls see it. Shared by the session and every
/// call of the connection.
pub(crate) struct ConnLink {
    handle: Option<ConnHandle>,
    inbox: Inbox,
    /// Set when `cmds` may hold something (checked without the lock at
    /// every poll).
    pending: AtomicBool,
    cmds: Mutex<Vec<Cmd>>,
}

impl ConnLink {
    /// A link through the runtime's handle (sends write directly when the
    /// connection is free; posted work wakes the loop).
    pub(crate) fn runtime(handle: ConnHandle) -> ConnLink {
        let inbox = handle.inbox();
        ConnLink {
            handle: Some(handle),
            inbox,
            pending: AtomicBool::new(false),
            cmds: Mutex::new(Vec::new()),
        }
    }

    /// A link with no runtime: sends go into `inbox`; the owner polls.
    pub(crate) fn detached(inbox: Inbox) -> ConnLink {
        ConnLink {
            handle: None,
            inbox,
            pending: AtomicBool::new(false),
            cmds: Mutex::new(Vec::new()),
        }
    }

    /// Sends `commands` on the connection.
    pub(crate) fn send(
        &self,
        commands: impl IntoIterator<Item = Command>,
    ) -> Result<(), SendError> {
        match &self.handle {
            Some(handle) => handle.send(commands),
            None => {
                for command in commands {
                    self.inbox.send(command)?;
                }
                Ok(())
            }
        }
    }

    /// Posts work for the session and wakes its loop (once per batch).
    pub(crate) fn post(&self, cmd: Cmd) {
        self.cmds.lock().push(cmd);
        if !self.pending.swap(true, Ordering::AcqRel) {
            if let Some(handle) = &self.handle {
                handle.wake();
            }
        }
    }

    /// The work posted since the last call (empty without taking the lock
    /// when there is none).
    pub(crate) fn take(&self) -> Vec<Cmd> {
        if !self.pending.swap(false, Ordering::AcqRel) {
            return Vec::new();
        }
        std::mem::take(&mut *self.cmds.lock())
    }

    /// The runtime's handle, if the connection runs on one.
    pub(crate) fn handle(&self) -> Option<&ConnHandle> {
        self.handle.as_ref()
    }
}

/// Tells the session that an inline reactor's call may send again.
pub(crate) struct ReadyWake {
    pub(crate) link: Weak<ConnLink>,
    pub(crate) key: StreamKey,
}

impl Wake for ReadyWake {
    fn wake(&self) {
        if let Some(link) = self.link.upgrade() {
            link.post(Cmd::Ready(self.key));
        }
    }
}
