//! Services and methods: `ServiceDesc` (a name and its methods, as
//! grpc-go's), `MethodDesc` with the four blocking handler kinds and the
//! callback (reactor) handlers, and the `Codec` that turns messages into
//! bytes (prost messages, or raw `Bytes` for proxies and benches).

use std::marker::PhantomData;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::blocking::{RawRequests, RawSink, RequestStream, ResponseSink};
use super::call::Context;
use super::reactor::{ReactorFactory, ServerCall, ServerReactor};
use crate::grpc::Status;

/// Serialises one message type and parses another.
pub trait Codec: Send + Sync + 'static {
    /// The type written.
    type Encode: Send + 'static;
    /// The type read.
    type Decode: Send + 'static;
    /// Appends `item`'s encoding to `dst`.
    fn encode(&self, item: &Self::Encode, dst: &mut BytesMut) -> Result<(), Status>;
    /// Parses one message.
    fn decode(&self, src: Bytes) -> Result<Self::Decode, Status>;
}

/// prost messages: encodes `E`, decodes `D`.
pub struct ProstCodec<E, D>(PhantomData<fn(E) -> D>);

impl<E, D> Default for ProstCodec<E, D> {
    fn default() -> Self {
        ProstCodec(PhantomData)
    }
}

impl<E, D> Codec for ProstCodec<E, D>
where
    E: prost::Message + Send + 'static,
    D: prost::Message + Default + Send + 'static,
{
    type Encode = E;
    type Decode = D;

    fn encode(&self, item: &E, dst: &mut BytesMut) -> Result<(), Status> {
        item.encode(dst)
            .map_err(|e| Status::internal(format!("failed to encode the message: {e}")))
    }

    fn decode(&self, src: Bytes) -> Result<D, Status> {
        D::decode(src).map_err(|e| Status::internal(format!("failed to decode the message: {e}")))
    }
}

/// Raw bytes both ways (proxies, benches).
#[derive(Clone, Copy, Debug, Default)]
pub struct BytesCodec;

impl Codec for BytesCodec {
    type Encode = Bytes;
    type Decode = Bytes;

    fn encode(&self, item: &Bytes, dst: &mut BytesMut) -> Result<(), Status> {
        dst.extend_from_slice(item);
        Ok(())
    }

    fn decode(&self, src: Bytes) -> Result<Bytes, Status> {
        Ok(src)
    }
}

/// The four kinds of RPC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MethodKind {
    /// One request, one response.
    Unary,
    /// A stream of requests, one response.
    ClientStreaming,
    /// One request, a stream of responses.
    ServerStreaming,
    /// Streams both ways.
    BidiStreaming,
}

type UnaryCallbackFn = dyn Fn(&ServerCall, Bytes) + Send + Sync;

/// The reactor behind [`MethodDesc::callback_unary`].
struct UnaryCallback {
    f: Arc<UnaryCallbackFn>,
    request: Option<Bytes>,
}

impl ServerReactor for UnaryCallback {
    fn on_message(&mut self, _call: &ServerCall, message: Bytes) {
        self.request = Some(message);
    }

    fn on_half_close(&mut self, call: &ServerCall) {
        if let Some(request) = self.request.take() {
            (self.f)(call, request);
        }
    }
}

type UnaryFn = dyn Fn(&Context, Bytes) -> Result<Bytes, Status> + Send + Sync;
type ClientStreamingFn = dyn Fn(&Context, RawRequests) -> Result<Bytes, Status> + Send + Sync;
type ServerStreamingFn = dyn Fn(&Context, Bytes, RawSink) -> Result<(), Status> + Send + Sync;
type BidiFn = dyn Fn(&Context, RawRequests, RawSink) -> Result<(), Status> + Send + Sync;

/// A method's handler, at the bytes level (the typed constructors of
/// [`MethodDesc`] wrap a codec around the user's function).
#[derive(Clone)]
pub(crate) enum Handler {
    Unary(Arc<UnaryFn>),
    ClientStreaming(Arc<ClientStreamingFn>),
    ServerStreaming(Arc<ServerStreamingFn>),
    Bidi(Arc<BidiFn>),
    /// A callback handler: a reactor per call, whose callbacks run on the
    /// loop (`on_pool: false`) or on the callback pool.
    Reactor {
        kind: MethodKind,
        factory: Arc<ReactorFactory>,
        on_pool: bool,
    },
}

impl Handler {
    /// The kind of RPC this handler serves.
    pub(crate) fn kind(&self) -> MethodKind {
        match self {
            Handler::Unary(_) => MethodKind::Unary,
            Handler::ClientStreaming(_) => MethodKind::ClientStreaming,
            Handler::ServerStreaming(_) => MethodKind::ServerStreaming,
            Handler::Bidi(_) => MethodKind::BidiStreaming,
            Handler::Reactor { kind, .. } => *kind,
        }
    }
}

/// One method of a service.
#[derive(Clone)]
pub struct MethodDesc {
    pub(crate) name: String,
    pub(crate) handler: Handler,
}

impl std::fmt::Debug for MethodDesc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MethodDesc")
            .field("name", &self.name)
            .field("kind", &self.kind())
            .finish()
    }
}

impl MethodDesc {
    /// The method's name (the part of `:path` after the service).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its kind.
    pub fn kind(&self) -> MethodKind {
        self.handler.kind()
    }

    /// A callback method: `factory` makes a [`ServerReactor`] for each
    /// call, whose callbacks run on the connection's event loop (the
    /// default; they must not block) or, after
    /// [`on_pool`](Self::on_pool), on the server's callback pool. `kind`
    /// says how many request messages the call has: unary and
    /// server-streaming reactors get exactly one (a second, or none, ends
    /// the call with INTERNAL before the reactor sees it).
    ///
    /// ```
    /// use bytes::Bytes;
    /// use mio_grpc::grpc::Status;
    /// use mio_grpc::server::{MethodDesc, MethodKind, ServerCall, ServerReactor, ServiceDesc};
    ///
    /// /// Counts the client's messages and answers with the count.
    /// #[derive(Default)]
    /// struct Count(u32);
    ///
    /// impl ServerReactor for Count {
    ///     fn on_message(&mut self, _call: &ServerCall, _message: Bytes) {
    ///         self.0 += 1;
    ///     }
    ///     fn on_half_close(&mut self, call: &ServerCall) {
    ///         call.finish_with_message(&self.0.to_be_bytes());
    ///     }
    /// }
    ///
    /// let method = MethodDesc::reactor("Count", MethodKind::ClientStreaming, |_call| {
    ///     Box::new(Count::default()) as Box<dyn ServerReactor>
    /// });
    /// let service = ServiceDesc::new("demo.Counter").method(method);
    /// assert_eq!(service.methods()[0].kind(), MethodKind::ClientStreaming);
    /// ```
    pub fn reactor<F>(name: &str, kind: MethodKind, factory: F) -> MethodDesc
    where
        F: Fn(&ServerCall) -> Box<dyn ServerReactor> + Send + Sync + 'static,
    {
        MethodDesc {
            name: name.to_string(),
            handler: Handler::Reactor {
                kind,
                factory: Arc::new(factory),
                on_pool: false,
            },
        }
    }

    /// A unary callback method: `f` gets the call and its request and
    /// answers through the call (at once, with
    /// [`ServerCall::finish_with_message`], or later from any thread).
    /// It runs on the event loop unless [`on_pool`](Self::on_pool) is
    /// set, so it must not block.
    ///
    /// ```
    /// use mio_grpc::server::{MethodDesc, ServiceDesc};
    ///
    /// let echo = MethodDesc::callback_unary("Echo", |call, request| {
    ///     call.finish_with_message(&request);
    /// });
    /// let service = ServiceDesc::new("demo.Echo").method(echo);
    /// assert_eq!(service.methods()[0].name(), "Echo");
    /// ```
    pub fn callback_unary<F>(name: &str, f: F) -> MethodDesc
    where
        F: Fn(&ServerCall, Bytes) + Send + Sync + 'static,
    {
        let f: Arc<UnaryCallbackFn> = Arc::new(f);
        MethodDesc::reactor(name, MethodKind::Unary, move |_call| {
            Box::new(UnaryCallback {
                f: f.clone(),
                request: None,
            })
        })
    }

    /// Runs this callback method's callbacks on the server's callback
    /// pool instead of the event loop (for callbacks that do more than a
    /// few microseconds of work). No effect on blocking handlers, which
    /// always run on a worker pool.
    pub fn on_pool(mut self) -> MethodDesc {
        if let Handler::Reactor { on_pool, .. } = &mut self.handler {
            *on_pool = true;
        }
        self
    }

    /// A unary method with prost messages: `fn(&Context, Req) -> Result<Resp, Status>`.
    pub fn unary<Req, Resp, F>(name: &str, f: F) -> MethodDesc
    where
        Req: prost::Message + Default + Send + 'static,
        Resp: prost::Message + Send + 'static,
        F: Fn(&Context, Req) -> Result<Resp, Status> + Send + Sync + 'static,
    {
        MethodDesc::unary_with(name, ProstCodec::<Resp, Req>::default(), f)
    }

    /// A unary method with any codec.
    pub fn unary_with<C, F>(name: &str, codec: C, f: F) -> MethodDesc
    where
        C: Codec,
        F: Fn(&Context, C::Decode) -> Result<C::Encode, Status> + Send + Sync + 'static,
    {
        let handler = move |ctx: &Context, raw: Bytes| {
            let request = codec.decode(raw)?;
            let response = f(ctx, request)?;
            let mut out = BytesMut::new();
            codec.encode(&response, &mut out)?;
            Ok(out.freeze())
        };
        MethodDesc {
            name: name.to_string(),
            handler: Handler::Unary(Arc::new(handler)),
        }
    }

    /// A client-streaming method with prost messages.
    pub fn client_streaming<Req, Resp, F>(name: &str, f: F) -> MethodDesc
    where
        Req: prost::Message + Default + Send + 'static,
        Resp: prost::Message + Send + 'static,
        F: Fn(&Context, RequestStream<Req>) -> Result<Resp, Status> + Send + Sync + 'static,
    {
        let codec = Arc::new(ProstCodec::<Resp, Req>::default());
        let handler = move |ctx: &Context, raw: RawRequests| {
            let response = f(ctx, RequestStream::new(raw, codec.clone()))?;
            let mut out = BytesMut::new();
            codec.encode(&response, &mut out)?;
            Ok(out.freeze())
        };
        MethodDesc {
            name: name.to_string(),
            handler: Handler::ClientStreaming(Arc::new(handler)),
        }
    }

    /// A server-streaming method with prost messages.
    pub fn server_streaming<Req, Resp, F>(name: &str, f: F) -> MethodDesc
    where
        Req: prost::Message + Default + Send + 'static,
        Resp: prost::Message + Send + 'static,
        F: Fn(&Context, Req, ResponseSink<Resp>) -> Result<(), Status> + Send + Sync + 'static,
    {
        let codec = Arc::new(ProstCodec::<Resp, Req>::default());
        let handler = move |ctx: &Context, raw: Bytes, sink: RawSink| {
            let request = codec.decode(raw)?;
            f(ctx, request, ResponseSink::new(sink, codec.clone()))
        };
        MethodDesc {
            name: name.to_string(),
            handler: Handler::ServerStreaming(Arc::new(handler)),
        }
    }

    /// A bidirectional-streaming method with prost messages.
    pub fn bidi_streaming<Req, Resp, F>(name: &str, f: F) -> MethodDesc
    where
        Req: prost::Message + Default + Send + 'static,
        Resp: prost::Message + Send + 'static,
        F: Fn(&Context, RequestStream<Req>, ResponseSink<Resp>) -> Result<(), Status>
            + Send
            + Sync
            + 'static,
    {
        let codec = Arc::new(ProstCodec::<Resp, Req>::default());
        let handler = move |ctx: &Context, raw: RawRequests, sink: RawSink| {
            f(
                ctx,
                RequestStream::new(raw, codec.clone()),
                ResponseSink::new(sink, codec.clone()),
            )
        };
        MethodDesc {
            name: name.to_string(),
            handler: Handler::Bidi(Arc::new(handler)),
        }
    }

    /// A raw unary method (`Bytes` in and out).
    pub fn raw_unary<F>(name: &str, f: F) -> MethodDesc
    where
        F: Fn(&Context, Bytes) -> Result<Bytes, Status> + Send + Sync + 'static,
    {
        MethodDesc {
            name: name.to_string(),
            handler: Handler::Unary(Arc::new(f)),
        }
    }

    /// A raw bidirectional-streaming method (`Bytes` messages).
    pub fn raw_bidi<F>(name: &str, f: F) -> MethodDesc
    where
        F: Fn(&Context, RawRequests, RawSink) -> Result<(), Status> + Send + Sync + 'static,
    {
        MethodDesc {
            name: name.to_string(),
            handler: Handler::Bidi(Arc::new(f)),
        }
    }
}

/// A service: its full name (`package.Service`) and its methods.
///
/// ```
/// use mio_grpc::server::{MethodDesc, ServiceDesc};
/// use mio_grpc::grpc::Status;
///
/// let echo = MethodDesc::raw_unary("Echo", |_ctx, request| Ok::<_, Status>(request));
/// let service = ServiceDesc::new("demo.Echo").method(echo);
/// assert_eq!(service.name(), "demo.Echo");
/// ```
#[derive(Clone, Debug)]
pub struct ServiceDesc {
    pub(crate) name: String,
    pub(crate) methods: Vec<MethodDesc>,
}

impl ServiceDesc {
    /// A service named `name` with no methods yet.
    pub fn new(name: &str) -> ServiceDesc {
        ServiceDesc {
            name: name.to_string(),
            methods: Vec::new(),
        }
    }

    /// Runs the callbacks of every callback method added so far on the
    /// server's callback pool (see [`MethodDesc::on_pool`]).
    pub fn callbacks_on_pool(mut self) -> ServiceDesc {
        self.methods = self.methods.into_iter().map(MethodDesc::on_pool).collect();
        self
    }

    /// Adds a method.
    pub fn method(mut self, method: MethodDesc) -> ServiceDesc {
        self.methods.push(method);
        self
    }

    /// The service's full name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its methods.
    pub fn methods(&self) -> &[MethodDesc] {
        &self.methods
    }
}
