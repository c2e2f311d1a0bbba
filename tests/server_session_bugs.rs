//! A fixed bug of the server session, pinned: an
//! inline reactor hears `on_ready` for a stream its client reset, before
//! `on_cancel`, when the session is polled between the read of the
//! RST_STREAM and the delivery of its Reset event (the runtime driver
//! does this when a wake-up's event budget runs out). Cause: a client
//! reset closes the stream's write quota, which wakes the ready waiter
//! (Cmd::Ready), and `GrpcSession::on_ready` treats a closed quota as
//! ready (`CallShared::poll_ready`: `quota.poll_ready(..).unwrap_or(true)`).

#[path = "common/grpc_pair.rs"]
mod grpc_pair;
#[path = "common/pair.rs"]
mod pair;

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use grpc_pair::GrpcPair;
use mio_grpc::framer::Reason;
use mio_grpc::grpc::Status;
use mio_grpc::server::{
    MethodDesc, MethodKind, SendState, Server, ServerCall, ServerReactor, ServiceDesc,
};

struct Flooder {
    log: Arc<Mutex<Vec<String>>>,
}

impl Flooder {
    fn flood(&mut self, call: &ServerCall) {
        let chunk = vec![7u8; 16 * 1024];
        loop {
            match call.send(&chunk) {
                Ok(SendState::Ready) => {}
                Ok(SendState::Full) => {
                    self.log.lock().unwrap().push("full".into());
                    return;
                }
                Err(e) => {
                    self.log.lock().unwrap().push(format!("send error {e}"));
                    return;
                }
            }
        }
    }
}

impl ServerReactor for Flooder {
    fn on_message(&mut self, call: &ServerCall, _message: Bytes) {
        self.flood(call);
    }
    fn on_ready(&mut self, call: &ServerCall) {
        self.log.lock().unwrap().push("ready".into());
        self.flood(call);
    }
    fn on_cancel(&mut self, _call: &ServerCall, status: &Status) {
        self.log
            .lock()
            .unwrap()
            .push(format!("cancel {:?}", status.code()));
    }
}

/// A client reset closes the stream's write quota, which wakes the
/// reactor's ready waiter (Cmd::Ready). If the session is polled before
/// the Reset event is delivered (the driver holds events past its budget
/// and polls first at the next wake-up), the reactor hears `on_ready` for
/// a call that is already gone, and its send fails with CANCELLED, before
/// `on_cancel`. A closed quota is not "may send again".
#[test]
fn no_on_ready_for_a_quota_closed_by_a_reset() {
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let l = log.clone();
    let method = MethodDesc::reactor("Flood", MethodKind::BidiStreaming, move |_call| {
        Box::new(Flooder { log: l.clone() }) as Box<dyn ServerReactor>
    });
    let mut server = Server::builder().build();
    server
        .add_service(ServiceDesc::new("test.Svc").method(method))
        .unwrap();
    let mut grpc = GrpcPair::with_server(server);
    grpc.manual_release();

    let key = grpc.open("/test.Svc/Flood");
    grpc.send(key, b"go", false);
    grpc.drive();
    let before = log.lock().unwrap().clone();
    assert_eq!(
        before.last().map(String::as_str),
        Some("full"),
        "{before:?}"
    );

    grpc.reset(key, Reason::CANCEL);
    for _ in 0..10 {
        grpc.step_delivering_late();
    }
    let after = log.lock().unwrap().clone();
    assert_eq!(after[before.len()..], ["cancel Cancelled"]);
}
