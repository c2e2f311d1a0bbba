//! The gRPC side of one connection, on its event loop: validates each
//! request (PROTOCOL-HTTP2.md), routes `:path` to a method, decodes the
//! length-prefixed messages across DATA frames under the receive limit,
//! and dispatches handlers (worker pool, or inline for unary and
//! server-streaming calls when asked).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use crossbeam_channel::Sender;
use framer::hpack::{HeaderField, HeaderList};
use framer::{Reason, StreamId};
use loopy::{Item, StreamKey};

use super::call::{
    error_status, CallEncodings, CallShared, Context, Incoming, RawRequests, RawSink,
};
use super::service::Handler;
use super::ServerShared;
use crate::conn::validate::RequestHead;
use crate::conn::{ConnEvent, Connection, Slot};
use crate::grpc::{self, Encoding, MessageDecoder, Metadata, Status};
use crate::runtime::{ConnHandle, Session};

/// Where a call's request messages go.
enum Delivery {
    /// Unary and server-streaming: collect the one request message, then
    /// dispatch at END_STREAM.
    Collect {
        handler: Handler,
        ctx: Option<Context>,
        message: Option<Bytes>,
        count: usize,
    },
    /// Client- and bidi-streaming: the handler runs; messages go to it.
    Stream(Sender<Incoming>),
}

pub(crate) struct CallEntry {
    call: Arc<CallShared>,
    /// The call's handler slot until its handler is dispatched (then the
    /// job holds it until the handler returns).
    slot: Option<Slot>,
    decoder: MessageDecoder,
    encoding: Encoding,
    delivery: Delivery,
}

/// One connection's calls.
pub(crate) struct GrpcSession {
    pub(crate) server: Arc<ServerShared>,
    pub(crate) handle: ConnHandle,
    pub(crate) calls: HashMap<StreamKey, CallEntry>,
}

impl Session for GrpcSession {
    fn on_event(&mut self, conn: &mut Connection, event: ConnEvent) {
        match event {
            ConnEvent::Request {
                id,
                head,
                end_stream,
            } => self.on_request(conn, id, head, end_stream),
            ConnEvent::Data {
                key,
                data,
                end_stream,
            } => self.on_data(conn, key, data, end_stream),
            ConnEvent::Trailers { key, .. } => self.on_end(conn, key),
            ConnEvent::Reset { key, .. } | ConnEvent::Dropped { key, .. } => {
                if let Some(entry) = self.calls.remove(&key) {
                    entry.call.cancel();
                }
            }
            ConnEvent::Closed { key } => {
                if let Some(entry) = self.calls.remove(&key) {
                    if !entry.call.is_finished() {
                        entry.call.cancel();
                    }
                }
            }
            ConnEvent::ConnectionClosed { .. } => {
                for (_, entry) in self.calls.drain() {
                    entry.call.cancel();
                }
            }
            _ => {}
        }
    }
}

/// A response with only a status (HEADERS with END_STREAM).
fn trailers_only(key: StreamKey, http_status: u16, status: &Status) -> Item {
    let mut fields: HeaderList = vec![
        HeaderField::new(":status", http_status.to_string()),
        HeaderField::new("content-type", "application/grpc"),
    ];
    status.to_trailers(&mut fields);
    Item::Headers {
        key,
        fields,
        end_stream: true,
    }
}

fn header<'a>(head: &'a RequestHead, name: &str) -> Option<&'a Bytes> {
    head.fields
        .iter()
        .find(|f| f.name == name.as_bytes())
        .map(|f| &f.value)
}

/// `application/grpc`, `application/grpc+proto`, `application/grpc;...`.
fn is_grpc_content_type(value: &[u8]) -> bool {
    match value.strip_prefix(b"application/grpc") {
        Some(rest) => rest.is_empty() || rest.starts_with(b"+") || rest.starts_with(b";"),
        None => false,
    }
}

impl GrpcSession {
    /// Answers a request that never becomes a call.
    fn reject(
        &self,
        conn: &mut Connection,
        key: StreamKey,
        http_status: u16,
        status: Status,
        end_stream: bool,
    ) {
        let _ = conn.buffer().put(trailers_only(key, http_status, &status));
        if !end_stream {
            // The request body is not wanted (RFC 9113 §8.1).
            conn.reset_after_response(key, Reason::NO_ERROR, Instant::now());
        }
    }

    fn on_request(
        &mut self,
        conn: &mut Connection,
        id: StreamId,
        head: RequestHead,
        end_stream: bool,
    ) {
        let key = StreamKey::from(id);
        if &head.method[..] != b"POST" {
            conn.reset(key, Reason::PROTOCOL_ERROR, Instant::now());
            return;
        }
        let content_type = header(&head, "content-type").cloned().unwrap_or_default();
        if !is_grpc_content_type(&content_type) {
            let status = Status::invalid_argument(format!(
                "invalid gRPC request content-type {:?}",
                String::from_utf8_lossy(&content_type)
            ));
            return self.reject(conn, key, 415, status, end_stream);
        }
        let path = head.path.clone().unwrap_or_default();
        let path = String::from_utf8_lossy(&path).into_owned();
        let Some((service, method)) = path.strip_prefix('/').and_then(|p| p.rsplit_once('/'))
        else {
            let status = Status::unimplemented(format!("malformed method name: {path:?}"));
            return self.reject(conn, key, 200, status, end_stream);
        };
        let Some(methods) = self.server.services.get(service) else {
            let status = Status::unimplemented(format!("unknown service {service}"));
            return self.reject(conn, key, 200, status, end_stream);
        };
        let Some(handler) = methods.get(method).cloned() else {
            let status =
                Status::unimplemented(format!("unknown method {method} for service {service}"));
            return self.reject(conn, key, 200, status, end_stream);
        };
        let deadline = match header(&head, "grpc-timeout") {
            Some(value) => match grpc::parse_timeout(value) {
                Ok(timeout) => Some(Instant::now() + timeout),
                Err(e) => {
                    let status = Status::internal(format!("malformed grpc-timeout: {e}"));
                    return self.reject(conn, key, 200, status, end_stream);
                }
            },
            None => None,
        };
        let encoding = match header(&head, "grpc-encoding") {
            None => Encoding::Identity,
            Some(value) => match Encoding::from_header(value) {
                Some(encoding) => encoding,
                None => {
                    let status = Status::unimplemented(format!(
                        "grpc: Decompressor is not installed for grpc-encoding {:?}",
                        String::from_utf8_lossy(value)
                    ));
                    return self.reject(conn, key, 200, status, end_stream);
                }
            },
        };
        // gzip is the only encoding we compress with: one scan of the
        // header per call.
        let accepts_gzip = header(&head, "grpc-accept-encoding").is_some_and(|v| {
            v.split(|b| *b == b',')
                .any(|t| t.trim_ascii() == Encoding::Gzip.as_str().as_bytes())
        });
        let encodings = CallEncodings {
            send: match self.server.config.send_compression {
                Some(Encoding::Gzip) if accepts_gzip => Encoding::Gzip,
                _ => Encoding::Identity,
            },
            accepts_gzip,
            request: encoding,
        };
        // Held until the handler returns (the connection reports no more
        // requests than MAX_CONCURRENT_STREAMS whose slots are held).
        let slot = conn.take_slot(key);
        let metadata = Metadata::from_headers(&head.fields);
        let call = Arc::new(CallShared::new(
            key,
            self.handle.clone(),
            conn.write_quota(key),
            self.server.config.max_send_message_size,
            encodings,
            self.server.config.max_receive_message_size,
        ));
        if let Some(at) = deadline {
            self.server.deadlines.add(at, &call);
        }
        let ctx = Context {
            call: call.clone(),
            peer: self.handle.peer_addr(),
            metadata,
            deadline,
            method: path,
        };
        let mut slot = slot;
        let delivery = match handler {
            Handler::Unary(_) | Handler::ServerStreaming(_) => Delivery::Collect {
                handler,
                ctx: Some(ctx),
                message: None,
                count: 0,
            },
            Handler::ClientStreaming(_) | Handler::Bidi(_) => {
                let (tx, rx) = crossbeam_channel::unbounded();
                call.set_incoming(tx.clone());
                let requests = RawRequests::new(rx, call.clone());
                self.dispatch_stream(handler, ctx, requests, slot.take());
                Delivery::Stream(tx)
            }
        };
        let decoder = MessageDecoder::new(self.server.config.max_receive_message_size);
        self.calls.insert(
            key,
            CallEntry {
                call,
                slot,
                decoder,
                encoding,
                delivery,
            },
        );
        if end_stream {
            self.on_end(conn, key);
        }
    }

    fn on_data(&mut self, conn: &mut Connection, key: StreamKey, data: Bytes, end_stream: bool) {
        let n = data.len();
        let max = self.server.config.max_receive_message_size;
        let Some(entry) = self.calls.get_mut(&key) else {
            return conn.release_capacity(key, n);
        };
        // Flow control: the bytes of a message still being assembled sit in
        // our decoder (bounded by the receive limit), so their window
        // reopens now — a message larger than the window could never
        // complete otherwise. Complete messages queued for a streaming
        // handler hold the window back only while that queue is over its
        // bound; the handler's reads release it (see `Backlog`).
        match entry.call.backlog.on_arrival(n) {
            0 => {}
            release => conn.release_capacity(key, release),
        }
        entry.decoder.push(data);
        loop {
            let message = match entry.decoder.next() {
                Ok(Some(message)) => message,
                Ok(None) => break,
                Err(err) => {
                    let status = match err {
                        grpc::MessageError::TooLarge { len, max } => Status::resource_exhausted(
                            format!("grpc: received message larger than max ({len} vs. {max})"),
                        ),
                        other => Status::internal(format!("grpc: {other}")),
                    };
                    return self.fail_call(conn, key, status);
                }
            };
            let wire = 5 + message.payload.len();
            let payload = if message.compressed {
                if entry.encoding == Encoding::Identity {
                    let status = Status::internal(
                        "grpc: compressed flag set with identity or empty encoding".to_string(),
                    );
                    return self.fail_call(conn, key, status);
                }
                match grpc::decompress(entry.encoding, &message.payload, max) {
                    Ok(payload) => payload,
                    Err(e) => {
                        let status =
                            Status::resource_exhausted(format!("grpc: failed to decompress: {e}"));
                        return self.fail_call(conn, key, status);
                    }
                }
            } else {
                message.payload
            };
            match &mut entry.delivery {
                Delivery::Collect {
                    message: slot,
                    count,
                    ..
                } => {
                    *count += 1;
                    if *count > 1 {
                        let status = Status::internal("grpc: two request messages for a unary RPC");
                        return self.fail_call(conn, key, status);
                    }
                    *slot = Some(payload);
                }
                Delivery::Stream(tx) => {
                    if tx.send(Incoming::Message(payload, wire)).is_ok() {
                        entry.call.backlog.queued(wire);
                    }
                }
            }
        }
        if end_stream {
            self.on_end(conn, key);
        }
    }

    /// The client half-closed.
    fn on_end(&mut self, conn: &mut Connection, key: StreamKey) {
        let Some(entry) = self.calls.get_mut(&key) else {
            return;
        };
        if entry.decoder.finish().is_err() {
            return self.fail_call(
                conn,
                key,
                Status::internal("grpc: truncated request message"),
            );
        }
        match &mut entry.delivery {
            Delivery::Stream(tx) => {
                let _ = tx.send(Incoming::End);
            }
            Delivery::Collect {
                handler,
                ctx,
                message,
                ..
            } => {
                let Some(ctx) = ctx.take() else { return };
                let Some(message) = message.take() else {
                    let status = Status::internal("grpc: no request message for a unary RPC");
                    return self.fail_call(conn, key, status);
                };
                let handler = handler.clone();
                let slot = entry.slot.take();
                self.dispatch_unary(conn, handler, ctx, message, slot);
            }
        }
    }

    /// Ends a call with `status` (where still possible) and resets the
    /// stream: nothing more of its request is buffered.
    fn fail_call(&mut self, conn: &mut Connection, key: StreamKey, status: Status) {
        if let Some(entry) = self.calls.remove(&key) {
            entry.call.finish(None, status);
            entry.call.cancel();
        }
        // NO_ERROR (RFC 9113 §8.1, as grpc-go): the status in the trailers
        // stands; the reset only stops the rest of the request.
        conn.reset_after_response(key, Reason::NO_ERROR, Instant::now());
    }

    fn dispatch_unary(
        &self,
        conn: &mut Connection,
        handler: Handler,
        ctx: Context,
        message: Bytes,
        slot: Option<Slot>,
    ) {
        let server = self.server.clone();
        let job = move || {
            // Held until the handler returns, whoever resets the stream,
            // and freed just before the call's last frame goes out: a
            // client that sees the stream end may open the next one.
            let mut slot = slot;
            if ctx.is_cancelled() {
                return;
            }
            let call = ctx.call.clone();
            match handler {
                Handler::Unary(f) => {
                    let result = server.intercept_unary(&ctx, message, &*f);
                    drop(slot.take());
                    match result {
                        Ok(response) => call.finish(Some(&response), Status::ok()),
                        Err(status) => call.finish(None, error_status(status)),
                    };
                }
                Handler::ServerStreaming(f) => {
                    let sink = RawSink::new(call.clone(), ctx.deadline);
                    let result = server.intercept_stream(&ctx, &mut || {
                        f(
                            &ctx,
                            message.clone(),
                            RawSink::new(call.clone(), ctx.deadline),
                        )
                    });
                    drop(sink);
                    drop(slot.take());
                    finish_stream(&call, result);
                }
                _ => {}
            }
        };
        if self.server.config.inline_handlers {
            let _ = conn;
            job();
        } else {
            self.server.submit(Box::new(job));
        }
    }

    fn dispatch_stream(
        &self,
        handler: Handler,
        ctx: Context,
        requests: RawRequests,
        slot: Option<Slot>,
    ) {
        let server = self.server.clone();
        let requests = parking_lot::Mutex::new(Some(requests));
        let job = move || {
            // Held until the handler returns, whoever resets the stream,
            // and freed just before the call's last frame goes out.
            let mut slot = slot;
            if ctx.is_cancelled() {
                return;
            }
            let call = ctx.call.clone();
            let Some(requests) = requests.lock().take() else {
                return;
            };
            let mut requests = Some(requests);
            let result = server.intercept_stream(&ctx, &mut || {
                let Some(requests) = requests.take() else {
                    return Err(Status::internal("stream handler called twice"));
                };
                match &handler {
                    Handler::ClientStreaming(f) => {
                        let response = f(&ctx, requests)?;
                        drop(slot.take());
                        call.finish(Some(&response), Status::ok());
                        Ok(())
                    }
                    Handler::Bidi(f) => f(&ctx, requests, RawSink::new(call.clone(), ctx.deadline)),
                    _ => Err(Status::internal("not a streaming handler")),
                }
            });
            drop(slot.take());
            finish_stream(&call, result);
        };
        self.server.submit(Box::new(job));
    }
}

/// A streaming handler returned: OK (if it did not finish the call
/// itself) or its error.
fn finish_stream(call: &CallShared, result: Result<(), Status>) {
    match result {
        Ok(()) => call.finish(None, Status::ok()),
        Err(status) => call.finish(None, error_status(status)),
    };
}
