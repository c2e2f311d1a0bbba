//! The client side of one connection: routes its events to the calls
//! (responses, messages, trailers, resets, GOAWAY, loss) and tells the
//! channel when the connection goes away.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Weak};

use framer::Reason;

use super::call::ClientCall;
use super::channel::Inner;
use super::subchannel::{Calls, Subchannel};
use crate::conn::{CloseReason, ConnEvent, ConnViolation, Connection, DropCause, StreamKey};
use crate::grpc::{Code, Status};
use crate::runtime::Session;
use framer::Violation;

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
                let peer = self.sub.upgrade().map(|sub| sub.addr.to_string());
                let status = closed_status(&reason, peer.as_deref());
                fail_all(&self.calls, &status);
                self.lost();
            }
            _ => {}
        }
    }
}

/// The status of the calls on a connection that closed, in words:
/// UNAVAILABLE, naming the server (`peer`, its address) and what
/// happened. A server whose first bytes are not HTTP/2 at all (an HTTP/1
/// server, a web page) is named as one that does not speak HTTP/2.
pub(crate) fn closed_status(reason: &CloseReason, peer: Option<&str>) -> Status {
    let server = match peer {
        Some(peer) => format!("the server at {peer}"),
        None => "the server".to_string(),
    };
    let message = match reason {
        CloseReason::LocalError(violation) => match not_http2(violation) {
            Some(what) => format!("{server} does not speak HTTP/2 ({what})"),
            None => format!(
                "{server} broke the HTTP/2 protocol, so the connection was closed \
                 with {}: {violation}",
                violation.reason()
            ),
        },
        CloseReason::PeerError { reason, debug } if debug.is_empty() => {
            format!("{server} closed the connection with error {reason}")
        }
        CloseReason::PeerError { reason, debug } => {
            format!("{server} closed the connection with error {reason}: {debug}")
        }
        CloseReason::Aborted { detail, .. } => {
            format!("the connection to {server} was closed: {detail}")
        }
        CloseReason::Done => format!("{server} closed the connection after GOAWAY"),
        CloseReason::KeepaliveTimeout => {
            format!("{server} stopped answering keepalive pings")
        }
        CloseReason::SettingsTimeout => {
            format!("{server} never acknowledged the HTTP/2 SETTINGS (is it an HTTP/2 server?)")
        }
        CloseReason::Transport(detail) => {
            format!("the connection to {server} was lost: {detail}")
        }
    };
    Status::unavailable(message)
}

/// When the server's first bytes were no HTTP/2 frame header: what they
/// were. The framer reads the first 4 octets of such an answer as a frame
/// length (3 octets) and type (1 octet) far over any frame size: text,
/// and `HTTP` for an HTTP/1 status line.
fn not_http2(violation: &ConnViolation) -> Option<String> {
    let ConnViolation::Frame {
        violation: Violation::FrameTooLarge { kind, length, .. },
        ..
    } = violation
    else {
        return None;
    };
    let [_, a, b, c] = length.to_be_bytes();
    let first = [a, b, c, kind.to_u8()];
    if &first == b"HTTP" {
        return Some("it answered with HTTP/1".to_string());
    }
    if first.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        let text = String::from_utf8_lossy(&first);
        return Some(format!("it answered with text starting \"{text}\""));
    }
    None
}

/// The status of a call whose stream the connection dropped ([`DropCause`]).
pub(crate) fn dropped_status(cause: DropCause) -> Status {
    match cause {
        DropCause::PeerGoAway => Status::unavailable(
            "the server is going away (GOAWAY) and did not take the stream; \
             it is safe to retry",
        ),
        DropCause::GoingAway => {
            Status::unavailable("the connection is closing; the stream was not sent")
        }
        DropCause::StreamIdsExhausted => Status::unavailable(
            "the connection has used up its stream ids; the stream was not sent",
        ),
        DropCause::Closed => {
            Status::unavailable("the connection closed before the stream was sent")
        }
        DropCause::Reset(reason) => Status::new(
            Code::from_h2_reason(reason),
            format!("stream reset: {reason}"),
        ),
        DropCause::FlowControl => {
            Status::internal("the server overflowed the stream's flow-control window")
        }
        DropCause::Cleanup => Status::internal("the stream was cleaned up before it ended"),
        DropCause::Invalid => {
            Status::internal("the stream's output was out of order (a client bug)")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::AbuseLimit;
    use framer::{Kind, Reason};

    fn assert_plain(message: &str) {
        for debug in [
            "{",
            "}",
            "(\"",
            "Unknown(",
            "Some(",
            "LocalError",
            "PeerGoAway",
        ] {
            assert!(!message.contains(debug), "Debug text in: {message}");
        }
    }

    #[test]
    fn close_statuses_are_plain_words() {
        let frame = |kind, length| {
            CloseReason::LocalError(ConnViolation::Frame {
                violation: Violation::FrameTooLarge {
                    kind,
                    length,
                    max: 16_384,
                },
                reason: Reason::FRAME_SIZE_ERROR,
            })
        };
        let http1 = closed_status(
            &frame(
                Kind::Unknown(b'P'),
                u32::from_be_bytes([0, b'H', b'T', b'T']),
            ),
            Some("127.0.0.1:8080"),
        );
        assert_eq!(http1.code(), Code::Unavailable);
        assert_eq!(
            http1.message(),
            "the server at 127.0.0.1:8080 does not speak HTTP/2 (it answered with HTTP/1)"
        );
        let html = closed_status(
            &frame(
                Kind::Unknown(b'O'),
                u32::from_be_bytes([0, b'<', b'!', b'D']),
            ),
            None,
        );
        assert_eq!(
            html.message(),
            "the server does not speak HTTP/2 (it answered with text starting \"<!DO\")"
        );
        let reasons = [
            frame(Kind::Data, 1 << 20),
            CloseReason::LocalError(ConnViolation::Limit(AbuseLimit::Pings)),
            CloseReason::Aborted {
                reason: Reason::NO_ERROR,
                detail: "channel closed".into(),
            },
            CloseReason::PeerError {
                reason: Reason::ENHANCE_YOUR_CALM,
                debug: "too_many_pings".into(),
            },
            CloseReason::PeerError {
                reason: Reason::INTERNAL_ERROR,
                debug: String::new(),
            },
            CloseReason::Done,
            CloseReason::KeepaliveTimeout,
            CloseReason::SettingsTimeout,
            CloseReason::Transport("connection reset by peer".into()),
        ];
        for reason in &reasons {
            let status = closed_status(reason, Some("10.0.0.1:443"));
            assert_eq!(status.code(), Code::Unavailable);
            assert!(
                status.message().contains("10.0.0.1:443"),
                "{}",
                status.message()
            );
            assert_plain(status.message());
        }
    }

    #[test]
    fn dropped_statuses_are_plain_words() {
        for cause in [
            DropCause::PeerGoAway,
            DropCause::GoingAway,
            DropCause::StreamIdsExhausted,
            DropCause::Closed,
            DropCause::Reset(Reason::CANCEL),
            DropCause::FlowControl,
            DropCause::Cleanup,
            DropCause::Invalid,
        ] {
            assert_plain(dropped_status(cause).message());
        }
    }
}
