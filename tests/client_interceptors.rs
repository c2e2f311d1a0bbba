//! Client unary interceptors on every unary path: metadata an interceptor
//! adds (an auth header) reaches the server from the blocking
//! `unary_raw`, the non-blocking `start_unary_raw`, and a generated
//! client's blocking and `*_start` methods; an interceptor that answers
//! without calling `next` answers on the start path too, and nothing is
//! sent.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

#[allow(dead_code, missing_docs, clippy::all)]
#[path = "../examples/gen/helloworld.rs"]
mod helloworld;

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use common::wait::PATIENCE;
use helloworld::{Greeter, GreeterClient, HelloReply, HelloRequest};
use mio_grpc::client::{CallOptions, Channel, ChannelOptions, ClientUnaryInterceptor};
use mio_grpc::grpc::{Code, Status};
use mio_grpc::server::{Context, Server, ServerHandle};

/// Records the `authorization` header of every call (`None`: absent).
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<(String, Option<String>)>>,
}

impl Greeter for Recorder {
    fn say_hello(&self, ctx: &Context, req: HelloRequest) -> Result<HelloReply, Status> {
        let auth = ctx.metadata().get("authorization").map(str::to_string);
        self.seen.lock().unwrap().push((req.name.clone(), auth));
        Ok(HelloReply {
            message: format!("hello {}", req.name),
        })
    }
}

fn server(recorder: Arc<Recorder>) -> ServerHandle {
    let mut server = Server::builder().event_loops(1).build();
    server
        .add_service(helloworld::greeter_service(recorder))
        .unwrap();
    server.start("127.0.0.1:0".parse().unwrap()).unwrap()
}

/// Adds the auth header; refuses names starting with "refuse" without
/// calling `next`.
fn auth_interceptor() -> ClientUnaryInterceptor {
    Arc::new(|_method, request, options, next| {
        let name =
            prost::Message::decode(request.clone()).map_or(String::new(), |r: HelloRequest| r.name);
        if name.starts_with("refuse") {
            return Err(Status::unauthenticated("no token for you"));
        }
        let mut options = options.clone();
        options
            .metadata
            .insert("authorization", "Bearer t0ken")
            .unwrap();
        next(request, &options)
    })
}

fn channel(server: &ServerHandle) -> Channel {
    Channel::new(
        &format!("127.0.0.1:{}", server.local_addr().port()),
        ChannelOptions {
            unary_interceptors: vec![auth_interceptor()],
            ..ChannelOptions::default()
        },
    )
    .unwrap()
}

fn request(name: &str) -> HelloRequest {
    HelloRequest {
        name: name.to_string(),
    }
}

fn encoded(name: &str) -> Bytes {
    Bytes::from(prost::Message::encode_to_vec(&request(name)))
}

fn options() -> CallOptions {
    CallOptions::default().timeout(PATIENCE)
}

const METHOD: &str = "/helloworld.Greeter/SayHello";

#[test]
fn an_interceptors_auth_header_reaches_the_server_on_every_unary_path() {
    let recorder = Arc::new(Recorder::default());
    let server = server(recorder.clone());
    let channel = channel(&server);
    let client = GreeterClient::new(channel.clone());

    channel
        .unary_raw(METHOD, encoded("unary_raw"), options())
        .unwrap();
    channel
        .start_unary_raw(METHOD, encoded("start_unary_raw"), options())
        .wait()
        .unwrap();
    client.say_hello(&request("generated"), options()).unwrap();
    assert!(client
        .say_hello_start(&request("generated_start"), options())
        .wait()
        .is_ok());
    // A callback-driven started call too.
    let (tx, rx) = crossbeam_channel::bounded(1);
    channel
        .start_unary_raw(METHOD, encoded("callback"), options())
        .on_complete(move |status| {
            let _ = tx.send(status.code());
        });
    assert_eq!(rx.recv_timeout(PATIENCE).unwrap(), Code::Ok);

    let token = Some("Bearer t0ken".to_string());
    let seen = recorder.seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![
            ("unary_raw".to_string(), token.clone()),
            ("start_unary_raw".to_string(), token.clone()),
            ("generated".to_string(), token.clone()),
            ("generated_start".to_string(), token.clone()),
            ("callback".to_string(), token),
        ]
    );
}

#[test]
fn an_interceptor_that_answers_without_next_answers_the_started_call() {
    let recorder = Arc::new(Recorder::default());
    let server = server(recorder.clone());
    let channel = channel(&server);
    let blocking = channel
        .unary_raw(METHOD, encoded("refuse-blocking"), options())
        .unwrap_err();
    assert_eq!(blocking.code(), Code::Unauthenticated);
    let started = channel.start_unary_raw(METHOD, encoded("refuse-started"), options());
    // Answered at once: nothing was sent.
    let status = started.try_get().expect("answered at once").unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(status.message(), "no token for you");
    // The server saw neither; a call that passes goes through.
    channel
        .start_unary_raw(METHOD, encoded("passes"), options())
        .wait()
        .unwrap();
    let names: Vec<String> = recorder
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|(name, _)| name.clone())
        .collect();
    assert_eq!(names, vec!["passes".to_string()]);
}

#[test]
fn interceptors_run_in_order_once_per_started_call() {
    let recorder = Arc::new(Recorder::default());
    let server = server(recorder.clone());
    let order = Arc::new(Mutex::new(Vec::new()));
    let (o1, o2) = (order.clone(), order.clone());
    let outer: ClientUnaryInterceptor = Arc::new(move |method, request, options, next| {
        o1.lock().unwrap().push(format!("outer {method}"));
        let mut options = options.clone();
        options.metadata.insert("authorization", "outer").unwrap();
        next(request, &options)
    });
    let inner: ClientUnaryInterceptor = Arc::new(move |_method, request, options, next| {
        // The outer interceptor's metadata is here already.
        o2.lock().unwrap().push(format!(
            "inner sees {}",
            options.metadata.get("authorization").unwrap_or("nothing")
        ));
        next(request, options)
    });
    let channel = Channel::new(
        &format!("127.0.0.1:{}", server.local_addr().port()),
        ChannelOptions {
            unary_interceptors: vec![outer, inner],
            ..ChannelOptions::default()
        },
    )
    .unwrap();
    channel
        .start_unary_raw(METHOD, encoded("ordered"), options())
        .wait()
        .unwrap();
    assert_eq!(
        *order.lock().unwrap(),
        vec![format!("outer {METHOD}"), "inner sees outer".to_string()]
    );
    assert_eq!(
        recorder.seen.lock().unwrap()[0],
        ("ordered".to_string(), Some("outer".to_string()))
    );
}
