//! Refusal of blocking calls no worker can take, on a detached session
//! (issue 13; depends on the bounded pool that refuses instead of
//! queueing): with one unary worker busy, the next blocking unary call is
//! answered RESOURCE_EXHAUSTED at once (trailers-only) and counted.

#[path = "common/grpc_pair.rs"]
mod grpc_pair;
#[path = "common/pair.rs"]
mod pair;
#[path = "common/wait.rs"]
mod wait;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use grpc_pair::GrpcPair;
use mio_grpc::grpc::{Code, Status};
use mio_grpc::server::{MethodDesc, Server, ServiceDesc};
use wait::PATIENCE;

#[test]
fn blocking_unary_past_the_last_worker_is_refused_at_once() {
    let (release, gate) = std::sync::mpsc::channel::<()>();
    let gate = Arc::new(Mutex::new(gate));
    let entered = Arc::new(AtomicUsize::new(0));
    let e = entered.clone();
    let method = MethodDesc::raw_unary("Hold", move |_ctx, request| {
        e.fetch_add(1, Ordering::SeqCst);
        // Held until the test says so (or drops the sender).
        let _ = gate.lock().unwrap().recv();
        Ok::<_, Status>(request)
    });
    let mut server = Server::builder()
        .config(|c| {
            c.max_workers = 1;
            c.workers = 1;
        })
        .build();
    server
        .add_service(ServiceDesc::new("test.Svc").method(method))
        .unwrap();
    let mut grpc = GrpcPair::with_server(server);

    let first = grpc.unary("/test.Svc/Hold", b"first");
    assert!(
        grpc.drive_until(PATIENCE, |_| entered.load(Ordering::SeqCst) == 1),
        "the first handler never started"
    );
    assert!(!grpc.call(first).ended());

    // The only worker is busy: the next call is refused now, not queued.
    let second = grpc.unary("/test.Svc/Hold", b"second");
    let call = grpc.call(second);
    assert!(call.trailers_only, "refused before any response headers");
    let status = grpc.status(second);
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(grpc.server.counts(), (1, 0));
    assert_eq!(
        entered.load(Ordering::SeqCst),
        1,
        "the refused handler never runs"
    );

    // The first call goes on and ends normally.
    release.send(()).unwrap();
    assert!(
        grpc.drive_until(PATIENCE, |g| g.call(first).ended()),
        "the first call never ended"
    );
    assert_eq!(grpc.status(first).code(), Code::Ok);
    assert_eq!(grpc.call(first).messages, [Bytes::from_static(b"first")]);
    assert_eq!(grpc.server.counts(), (1, 0));
}
