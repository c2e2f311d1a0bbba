//! Serves `Greeter` and `RouteGuide` through the generated traits and
//! calls them through the generated clients: unary (blocking and
//! completion handle), server-, client- and bidi-streaming.
#![deny(warnings)]

/// `helloworld`: messages, `Greeter`, `greeter_service`, `GreeterClient`.
/// (prost leaves messages without docs when the proto has none.)
#[allow(missing_docs)]
pub mod helloworld {
    include!(concat!(env!("OUT_DIR"), "/helloworld.rs"));
}
/// `routeguide`: messages, `RouteGuide`, `route_guide_service`,
/// `RouteGuideClient`.
#[allow(missing_docs)]
pub mod routeguide {
    include!(concat!(env!("OUT_DIR"), "/routeguide.rs"));
}
use helloworld::*;
use mio_grpc::client::{CallOptions, Channel, ChannelOptions};
use mio_grpc::grpc::Status;
use mio_grpc::server::{Context, RequestStream, ResponseSink, Server};
use routeguide::*;
use std::sync::Arc;

/// The greeter.
struct G;
impl Greeter for G {
    fn say_hello(&self, _ctx: &Context, req: HelloRequest) -> Result<HelloReply, Status> {
        Ok(HelloReply {
            message: format!("Hello {}", req.name),
        })
    }
    fn ping(&self, _ctx: &Context, _req: ()) -> Result<(), Status> {
        Ok(())
    }
}
/// The route guide.
struct R;
impl RouteGuide for R {
    fn get_feature(&self, _: &Context, req: Point) -> Result<Feature, Status> {
        Ok(Feature {
            name: "f".into(),
            location: Some(req),
        })
    }
    fn list_features(
        &self,
        _: &Context,
        req: Rectangle,
        sink: ResponseSink<Feature>,
    ) -> Result<(), Status> {
        for i in 0..3 {
            sink.send(&Feature {
                name: format!("f{i}"),
                location: req.lo,
            })?;
        }
        Ok(())
    }
    fn record_route(
        &self,
        _: &Context,
        mut reqs: RequestStream<Point>,
    ) -> Result<RouteSummary, Status> {
        let mut n = 0;
        while reqs.recv()?.is_some() {
            n += 1;
        }
        Ok(RouteSummary {
            point_count: n,
            ..Default::default()
        })
    }
    fn route_chat(
        &self,
        _: &Context,
        mut reqs: RequestStream<RouteNote>,
        sink: ResponseSink<RouteNote>,
    ) -> Result<(), Status> {
        while let Some(note) = reqs.recv()? {
            sink.send(&note)?;
        }
        Ok(())
    }
}

fn main() {
    let mut server = Server::builder().build();
    server.add_service(greeter_service(Arc::new(G))).unwrap();
    server
        .add_service(route_guide_service(Arc::new(R)))
        .unwrap();
    let handle = server.start("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = handle.local_addr();
    let channel = Channel::new(&format!("{addr}"), ChannelOptions::default()).unwrap();
    let greeter = GreeterClient::new(channel.clone());
    let reply = greeter
        .say_hello(&HelloRequest { name: "e2e".into() }, CallOptions::default())
        .unwrap();
    assert_eq!(reply.message, "Hello e2e");
    greeter.ping(&(), CallOptions::default()).unwrap();
    let bytes = greeter
        .say_hello_start(
            &HelloRequest {
                name: "start".into(),
            },
            CallOptions::default(),
        )
        .wait()
        .unwrap();
    let reply = <HelloReply as prost::Message>::decode(bytes).unwrap();
    assert_eq!(reply.message, "Hello start");

    let rg = RouteGuideClient::new(channel);
    assert_eq!(
        rg.get_feature(
            &Point {
                latitude: 1,
                longitude: 2
            },
            CallOptions::default()
        )
        .unwrap()
        .name,
        "f"
    );
    let call = rg.list_features(CallOptions::default()).unwrap();
    call.send_msg(&Rectangle::default()).unwrap();
    call.close_send().unwrap();
    let mut n = 0;
    while let Some(_f) = call.recv_msg::<Feature>().unwrap() {
        n += 1;
    }
    assert_eq!(n, 3);
    let call = rg.record_route(CallOptions::default()).unwrap();
    for _ in 0..5 {
        call.send_msg(&Point::default()).unwrap();
    }
    call.close_send().unwrap();
    assert_eq!(
        call.recv_msg::<RouteSummary>()
            .unwrap()
            .unwrap()
            .point_count,
        5
    );
    let call = rg.route_chat(CallOptions::default()).unwrap();
    call.send_msg(&RouteNote {
        message: "hi".into(),
        location: None,
    })
    .unwrap();
    assert_eq!(call.recv_msg::<RouteNote>().unwrap().unwrap().message, "hi");
    call.close_send().unwrap();
    assert!(call.recv_msg::<RouteNote>().unwrap().is_none());
    handle.stop();
    println!("e2e ok");
}
