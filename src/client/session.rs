//! The client side of one connection: routes its events to the calls
//! (responses, messages, trailers, resets, GOAWAY, loss) and tells the
//! channel when the connection goes away.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Weak};

use framer::Reason;

use super::call::ClientCall;
use super::channel::Inner;
use super::subchannel::{Calls, Subchannel};
use crate::conn::{CloseReason, ConnEvent, Connection, DropCause, StreamKey};
use crate::grpc::{Code, Status};
use crate::runtime::Session;

use super::channel::fail_all;

/// The client side of one connection: routes its events to calls.
pub(crate) struct ClientSession {
    pub(crate) calls: Calls,
    pub(crate) draining: Arc<AtomicBool>,
    pub(crate) last_stream_id: Arc<AtomicU32>,
    pub(crate) channel: Weak<Inner>,
    pub(crate) sub: Weak<Subchannel>,
}

impl ClientSession {
    fn call(&self, key: StreamKey) -> Option<Arc<ClientCall>> {
        self.calls.lock().get(&key).cloned()
    }

    fn lost(&self) {
        if let (Some(channel), Some(sub)) = (self.channel.upgrade(), self.sub.upgrade()) {
            channel.connection_lost(&sub);
        }
    }
}

impl Session for ClientSession {
    fn on_event(&mut self, conn: &mut Connection, event: ConnEvent) {
        match event {
            ConnEvent::Opened { id, .. } => {
                self.last_stream_id.store(id.value(), Ordering::Relaxed);
            }
            ConnEvent::Response {
                key,
                head,
                end_stream,
            } => {
                if let Some(call) = self.call(key) {
                    call.on_response(head, end_stream);
                }
            }
            ConnEvent::Data { key, data, .. } => {
                let n = data.len();
                let release = self.call(key).map_or(n, |call| call.on_data(data));
                if release > 0 {
                    conn.release_capacity(key, release);
                }
            }
            ConnEvent::Trailers { key, fields } => {
                if let Some(call) = self.call(key) {
                    call.on_trailers(&fields);
                }
            }
            ConnEvent::Reset { key, reason, .. } => {
                if let Some(call) = self.calls.lock().remove(&key) {
                    if reason == Reason::REFUSED_STREAM {
                        call.mark_unsent();
                    }
                    call.on_reset(reason);
                }
            }
            ConnEvent::Dropped { key, cause, opened } => {
                if let Some(call) = self.calls.lock().remove(&key) {
                    if !opened || cause == DropCause::PeerGoAway {
                        call.mark_unsent();
                    }
                    call.complete(dropped_status(cause));
                }
            }
            ConnEvent::Closed { key } => {
                if let Some(call) = self.calls.lock().remove(&key) {
                    call.complete(Status::internal("the stream closed without a status"));
                }
            }
            ConnEvent::GoAway {
                reason, debug_data, ..
            } => {
                self.draining.store(true, Ordering::Release);
                if reason == Reason::ENHANCE_YOUR_CALM && &debug_data[..] == b"too_many_pings" {
                    // gRFC A8: ping half as often from now on.
                    if let Some(channel) = self.channel.upgrade() {
                        let mut time = channel.keepalive_time.lock();
                        if let Some(t) = time.as_mut() {
                            *t = t.saturating_mul(2);
                        }
                    }
                }
                self.lost();
            }
            ConnEvent::ConnectionClosed { reason } => {
                self.draining.store(true, Ordering::Release);
                let status = match &reason {
                    CloseReason::PeerError { reason, debug } => Status::unavailable(format!(
                        "the server closed the connection: {reason} {debug}"
                    )),
                    other => Status::unavailable(format!("the connection closed: {other}")),
                };
                fail_all(&self.calls, &status);
                self.lost();
            }
            _ => {}
        }
    }
}

/// The status of a call whose stream the connection dropped ([`DropCause`]).
pub(crate) fn dropped_status(cause: DropCause) -> Status {
    match cause {
        DropCause::PeerGoAway
        | DropCause::GoingAway
        | DropCause::StreamIdsExhausted
        | DropCause::Closed => {
            Status::unavailable(format!("the stream could not be sent ({cause:?})"))
        }
        DropCause::Reset(reason) => Status::new(
            Code::from_h2_reason(reason),
            format!("stream reset: {reason}"),
        ),
        DropCause::FlowControl => {
            Status::internal("the server overflowed the stream's flow-control window")
        }
        DropCause::Cleanup | DropCause::Invalid => {
            Status::internal(format!("the stream was dropped ({cause:?})"))
        }
    }
}
