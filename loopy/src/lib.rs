//! `loopy`: the outbound half of an HTTP/2 connection — control buffer,
//! loopy writer, send and receive flow control, stream quota — rebuilt
//! sans-IO from grpc-go's `internal/transport/controlbuf.go`. No sockets,
//! no threads, no clock reads: tests drive it by hand.
//!
//! - [`ControlBuffer`]: the inbox for commands from other threads: any
//!   thread [`put`](ControlBuffer::put)s an [`Item`] (open, headers, data,
//!   reset); the connection's owner drains it. Wakes the owner only when it
//!   waits; refuses puts after close and hands undelivered items back.
//! - [`Writer`]: takes the connection's own commands as direct method
//!   calls (the peer's settings and window updates applied, control frames
//!   queued, streams registered and cleaned up; each after what the buffer
//!   already holds), counts peer-caused responses to stop reading on a
//!   flood, drains the buffer and fills one [`Batch`] per
//!   [`write`](Writer::write): urgent control, other control,
//!   stream-opening HEADERS under the peer's MAX_CONCURRENT_STREAMS, then
//!   stream output round-robin, DATA cut to min(peer MAX_FRAME_SIZE, stream
//!   window, connection window). HPACK-encodes at write time. Returns
//!   [`Written`] and [`Event`]s.
//! - [`WriteQuota`]: per-stream buffered-bytes budget (64 KiB default),
//!   optionally drawing on [`SendBudget`]s shared by many streams; the
//!   writer replenishes it. Backpressure is a signal, never a blocked
//!   thread: [`WriteQuota::poll_acquire`] registers a [`Wake`] that is
//!   called when to try again.
//! - Inbound flow control and the BDP estimator: receive windows with
//!   WINDOW_UPDATE at a quarter consumed, window growth from BDP samples.
//!
//! # Scheduling invariant
//!
//! A stream is in the writer's active list exactly when it has something
//! it may write now: its front chunk needs no window (HEADERS, trailers, an
//! empty DATA with END_STREAM), or it has queued DATA bytes and a positive
//! stream send window. Each active stream appears once. Streams whose own
//! window is spent wait in `WaitingOnWindow` until a WINDOW_UPDATE or a
//! SETTINGS delta makes it positive; streams with window but no
//! connection window wait in `WaitingOnConnection` until the connection
//! window is positive. Debug builds assert this after every `write`.
//!
//! # Windows
//!
//! Send windows are `i64`: a SETTINGS_INITIAL_WINDOW_SIZE decrease may take
//! them below zero (RFC 9113 §6.9.2); any increase past 2^31 − 1 is a
//! FLOW_CONTROL_ERROR (a connection error for the connection window or a
//! SETTINGS change, a stream error for a stream's WINDOW_UPDATE).
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

mod batch;
mod bdp;
mod buffer;
mod event;
mod hash;
mod inbound;
mod item;
mod quota;
mod stream;
mod writer;

pub use batch::Batch;
pub use bdp::*;
pub use buffer::{ControlBuffer, NoWake, PutError, Wake};
pub use event::{ConnectionError, DropCause, Event, WriterStats, Written};
pub use inbound::*;
pub use item::{Item, StreamKey};
pub use quota::{QuotaError, SendBudget, WriteQuota, DEFAULT_WRITE_QUOTA};
pub use stream::SendState;
pub use writer::{Role, Writer, DEFAULT_MAX_TRANSPORT_RESPONSES};
