//! `route_guide_server`: grpc-go's route_guide example server on mio-grpc,
//! through the code generated from `examples/proto/route_guide.proto`:
//! GetFeature (unary), ListFeatures (server streaming), RecordRoute (client
//! streaming) and RouteChat (bidi streaming), over a small built-in feature
//! list instead of grpc-go's JSON database.
//!
//! `cargo run --release --example route_guide_server -- --port P` listens on
//! 127.0.0.1:P (0 picks a port) and prints the port.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use mio_grpc::grpc::Status;
use mio_grpc::server::{Context, RequestStream, ResponseSink, Server};

/// `routeguide`: messages, `RouteGuide`, `route_guide_service`,
/// `RouteGuideClient` (generated; see `examples/gen/README.md`).
#[allow(dead_code)]
#[path = "gen/routeguide.rs"]
mod routeguide;

use routeguide::{
    route_guide_service, Feature, Point, Rectangle, RouteGuide, RouteNote, RouteSummary,
};

/// The built-in features: (latitude, longitude, name), E7 coordinates, a
/// few entries of grpc-go's `route_guide_db.json`.
#[rustfmt::skip]
const FEATURES: &[(i32, i32, &str)] = &[
    (407838351, -746143763, "Patriots Path, Mendham, NJ 07945, USA"),
    (408122808, -743999179, "101 New Jersey 10, Whippany, NJ 07981, USA"),
    (413628156, -749015468, "U.S. 6, Shohola, PA 18458, USA"),
    (419999544, -740371136, "5 Conners Road, Kingston, NY 12401, USA"),
    (414008389, -743951297, "Mid Hudson Psychiatric Center, New Hampton, NY 10958, USA"),
    (419611318, -746524769, "287 Flugertown Road, Livingston Manor, NY 12758, USA"),
    (406109563, -742186778, "4001 Tremley Point Road, Linden, NJ 07036, USA"),
    (416802456, -742370183, "352 South Mountain Road, Wallkill, NY 12589, USA"),
    (412950425, -741077389, "Bailey Turn Road, Harriman, NY 10926, USA"),
    (412144655, -743949739, "193-199 Wawayanda Road, Hewitt, NJ 07421, USA"),
    (409146138, -746188906, "Berkshire Valley Management Area Trail, Jefferson, NJ, USA"),
];

/// The route guide: the features, and the notes left at each point.
struct RouteGuideServer {
    features: Vec<Feature>,
    notes: Mutex<HashMap<Point, Vec<RouteNote>>>,
}

impl RouteGuideServer {
    fn new() -> RouteGuideServer {
        let features = FEATURES
            .iter()
            .map(|&(latitude, longitude, name)| Feature {
                name: name.to_string(),
                location: Some(Point {
                    latitude,
                    longitude,
                }),
            })
            .collect();
        RouteGuideServer {
            features,
            notes: Mutex::new(HashMap::new()),
        }
    }

    /// The feature at `point`, or an unnamed one.
    fn feature_at(&self, point: Point) -> Feature {
        self.features
            .iter()
            .find(|f| f.location == Some(point))
            .cloned()
            .unwrap_or(Feature {
                name: String::new(),
                location: Some(point),
            })
    }
}

impl RouteGuide for RouteGuideServer {
    fn get_feature(&self, _ctx: &Context, req: Point) -> Result<Feature, Status> {
        Ok(self.feature_at(req))
    }

    fn list_features(
        &self,
        _ctx: &Context,
        req: Rectangle,
        sink: ResponseSink<Feature>,
    ) -> Result<(), Status> {
        for feature in &self.features {
            if feature.location.is_some_and(|p| in_range(p, req)) {
                sink.send(feature)?;
            }
        }
        Ok(())
    }

    fn record_route(
        &self,
        _ctx: &Context,
        mut reqs: RequestStream<Point>,
    ) -> Result<RouteSummary, Status> {
        let start = Instant::now();
        let mut summary = RouteSummary::default();
        let mut last: Option<Point> = None;
        while let Some(point) = reqs.recv()? {
            summary.point_count += 1;
            if !self.feature_at(point).name.is_empty() {
                summary.feature_count += 1;
            }
            if let Some(last) = last {
                summary.distance += distance(last, point);
            }
            last = Some(point);
        }
        summary.elapsed_time = i32::try_from(start.elapsed().as_secs()).unwrap_or(i32::MAX);
        Ok(summary)
    }

    fn route_chat(
        &self,
        _ctx: &Context,
        mut reqs: RequestStream<RouteNote>,
        sink: ResponseSink<RouteNote>,
    ) -> Result<(), Status> {
        while let Some(note) = reqs.recv()? {
            let key = note.location.unwrap_or_default();
            // The notes left here before this one, sent back outside the lock.
            let earlier = {
                let mut notes = self.notes.lock().unwrap_or_else(|e| e.into_inner());
                let here = notes.entry(key).or_default();
                let earlier = here.clone();
                here.push(note);
                earlier
            };
            for note in &earlier {
                sink.send(note)?;
            }
        }
        Ok(())
    }
}

/// Whether `point` is inside `rect` (corners in any order, edges included).
fn in_range(point: Point, rect: Rectangle) -> bool {
    let (lo, hi) = (rect.lo.unwrap_or_default(), rect.hi.unwrap_or_default());
    let (left, right) = (
        lo.longitude.min(hi.longitude),
        lo.longitude.max(hi.longitude),
    );
    let (bottom, top) = (lo.latitude.min(hi.latitude), lo.latitude.max(hi.latitude));
    (left..=right).contains(&point.longitude) && (bottom..=top).contains(&point.latitude)
}

/// The great-circle distance between two points in metres (haversine), as
/// grpc-go's `calcDistance`.
fn distance(p1: Point, p2: Point) -> i32 {
    const COORD_FACTOR: f64 = 1e7;
    const EARTH_RADIUS: f64 = 6_371_000.0;
    let lat1 = (f64::from(p1.latitude) / COORD_FACTOR).to_radians();
    let lat2 = (f64::from(p2.latitude) / COORD_FACTOR).to_radians();
    let lng1 = (f64::from(p1.longitude) / COORD_FACTOR).to_radians();
    let lng2 = (f64::from(p2.longitude) / COORD_FACTOR).to_radians();
    let (dlat, dlng) = (lat2 - lat1, lng2 - lng1);
    let a = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlng / 2.0).sin().powi(2);
    let c = 2.0 * a.sqrt().atan2((1.0 - a).sqrt());
    (EARTH_RADIUS * c) as i32
}

fn main() {
    let mut port = 50051u16;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next().and_then(|p| p.parse().ok())) {
            ("--port", Some(p)) => port = p,
            _ => {
                eprintln!("usage: route_guide_server --port P");
                std::process::exit(2);
            }
        }
    }
    let mut server = Server::builder().build();
    server
        .add_service(route_guide_service(Arc::new(RouteGuideServer::new())))
        .unwrap_or_else(|e| {
            eprintln!("route_guide_server: {e}");
            std::process::exit(1)
        });
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let handle = server.start(addr).unwrap_or_else(|e| {
        eprintln!("route_guide_server: cannot listen on {addr}: {e}");
        std::process::exit(1)
    });
    println!("{}", handle.local_addr().port());
    handle.wait();
}
