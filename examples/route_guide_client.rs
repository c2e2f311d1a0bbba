//! `route_guide_client`: grpc-go's route_guide example client on mio-grpc,
//! through the client generated from `examples/proto/route_guide.proto`. It
//! makes each kind of call once against `route_guide_server`: GetFeature
//! (unary, a point with a feature and one without), ListFeatures (server
//! streaming), RecordRoute (client streaming) and RouteChat (bidi
//! streaming, sending while receiving).
//!
//! `cargo run --release --example route_guide_client -- --target HOST:PORT`
//! On failure it prints the status code name and message and exits
//! non-zero.

use std::time::Duration;

use mio_grpc::client::{CallOptions, Channel, ChannelOptions};
use mio_grpc::grpc::Status;

/// `routeguide`: messages, `RouteGuide`, `route_guide_service`,
/// `RouteGuideClient` (generated; see `examples/gen/README.md`).
#[allow(dead_code)]
#[path = "gen/routeguide.rs"]
mod routeguide;

use routeguide::{Feature, Point, Rectangle, RouteGuideClient, RouteNote, RouteSummary};

fn point(latitude: i32, longitude: i32) -> Point {
    Point {
        latitude,
        longitude,
    }
}

fn options() -> CallOptions {
    CallOptions::default().timeout(Duration::from_secs(10))
}

/// Prints the feature at `p` (unary).
fn print_feature(client: &RouteGuideClient, p: Point) -> Result<(), Status> {
    println!(
        "Getting feature for point ({}, {})",
        p.latitude, p.longitude
    );
    let feature = client.get_feature(&p, options())?;
    print_one(&feature);
    Ok(())
}

fn print_one(feature: &Feature) {
    let at = feature.location.unwrap_or_default();
    if feature.name.is_empty() {
        println!("  no feature at ({}, {})", at.latitude, at.longitude);
    } else {
        println!(
            "  feature {:?} at ({}, {})",
            feature.name, at.latitude, at.longitude
        );
    }
}

/// Lists the features within `rect` (server streaming).
fn print_features(client: &RouteGuideClient, rect: Rectangle) -> Result<(), Status> {
    let (lo, hi) = (rect.lo.unwrap_or_default(), rect.hi.unwrap_or_default());
    println!(
        "Looking for features within ({}, {}) - ({}, {})",
        lo.latitude, lo.longitude, hi.latitude, hi.longitude
    );
    let call = client.list_features(options())?;
    call.send_msg(&rect)?;
    call.close_send()?;
    while let Some(feature) = call.recv_msg::<Feature>()? {
        print_one(&feature);
    }
    Ok(())
}

/// Sends a route of points and prints the server's summary (client
/// streaming).
fn run_record_route(client: &RouteGuideClient) -> Result<(), Status> {
    let route = [
        point(407838351, -746143763),
        point(408122808, -743999179),
        point(400000000, -750000000),
        point(413628156, -749015468),
        point(419999544, -740371136),
    ];
    println!("Traversing {} points.", route.len());
    let call = client.record_route(options())?;
    for p in &route {
        call.send_msg(p)?;
    }
    call.close_send()?;
    let summary = call
        .recv_msg::<RouteSummary>()?
        .ok_or_else(|| Status::internal("RecordRoute ended without a summary"))?;
    println!(
        "Route summary: {} points, {} features, {} m, {} s",
        summary.point_count, summary.feature_count, summary.distance, summary.elapsed_time
    );
    Ok(())
}

/// Sends notes while printing the ones the server sends back (bidi
/// streaming): each note is answered with the earlier notes at its point.
fn run_route_chat(client: &RouteGuideClient) -> Result<(), Status> {
    let notes = [
        ("First message", point(0, 1)),
        ("Second message", point(0, 2)),
        ("Third message", point(0, 3)),
        ("Fourth message", point(0, 1)),
        ("Fifth message", point(0, 2)),
        ("Sixth message", point(0, 3)),
    ];
    let call = client.route_chat(options())?;
    std::thread::scope(|s| {
        let sender = s.spawn(|| -> Result<(), Status> {
            for (message, at) in notes {
                call.send_msg(&RouteNote {
                    location: Some(at),
                    message: message.to_string(),
                })?;
            }
            call.close_send()
        });
        let mut received = Ok(());
        loop {
            match call.recv_msg::<RouteNote>() {
                Ok(Some(note)) => {
                    let at = note.location.unwrap_or_default();
                    println!(
                        "Got message {:?} at point ({}, {})",
                        note.message, at.latitude, at.longitude
                    );
                }
                Ok(None) => break,
                Err(status) => {
                    received = Err(status);
                    break;
                }
            }
        }
        let sent = sender
            .join()
            .unwrap_or_else(|_| Err(Status::internal("the sender panicked")));
        received.and(sent)
    })
}

fn main() {
    let mut target = String::from("localhost:50051");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--target", Some(t)) => target = t,
            _ => {
                eprintln!("usage: route_guide_client --target HOST:PORT");
                std::process::exit(2);
            }
        }
    }
    let channel = Channel::new(&target, ChannelOptions::default()).unwrap_or_else(|e| {
        eprintln!("route_guide_client: {e}");
        std::process::exit(2)
    });
    let client = RouteGuideClient::new(channel);
    let run = || -> Result<(), Status> {
        // A point with a feature, then one without.
        print_feature(&client, point(409146138, -746188906))?;
        print_feature(&client, point(0, 0))?;
        print_features(
            &client,
            Rectangle {
                lo: Some(point(400000000, -750000000)),
                hi: Some(point(420000000, -730000000)),
            },
        )?;
        run_record_route(&client)?;
        run_route_chat(&client)
    };
    if let Err(status) = run() {
        eprintln!("{}: {}", status.code().name(), status.message());
        std::process::exit(1);
    }
}
