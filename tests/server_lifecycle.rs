//! The gRPC server's lifecycle over real sockets: connections leave the
//! server's map when they close (not at the next accept), `wait` and the
//! graceful stop return as soon as the last connection is gone (Condvar
//! waits, no polling), `serve_with_shutdown`, a panicking handler is
//! counted and its worker lives on, and accepting recovers from running
//! out of file descriptors (EMFILE) once clients let go. Also the plain
//! HTTP/2 server's answer when every worker is busy: 503 at once, no
//! queue.
//!
//! Every wait is on an observable condition (`common::wait`), bounded by
//! its patience; nothing sleeps to order events.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::wait::{wait_until, PATIENCE};
use mio_grpc::client::{CallOptions, Channel, ChannelOptions};
use mio_grpc::grpc::Status;
use mio_grpc::server::{
    Context, MethodDesc, RawRequests, RawSink, Server, ServerBuilder, ServerHandle, ServiceDesc,
};

fn service() -> ServiceDesc {
    ServiceDesc::new("t.Life")
        .method(MethodDesc::raw_unary(
            "Echo",
            |_ctx: &Context, req: Bytes| Ok::<_, Status>(req),
        ))
        .method(MethodDesc::raw_unary(
            "Panic",
            |_ctx: &Context, _req: Bytes| {
                if true {
                    panic!("a handler panicked (expected by the test)");
                }
                Ok::<_, Status>(Bytes::new())
            },
        ))
        .method(MethodDesc::raw_bidi(
            "Bidi",
            |_ctx: &Context, mut reqs: RawRequests, sink: RawSink| {
                while let Some(m) = reqs.recv()? {
                    sink.send(&m)?;
                }
                Ok(())
            },
        ))
}

fn start(builder: ServerBuilder) -> ServerHandle {
    let mut server = builder.event_loops(1).build();
    server.add_service(service()).unwrap();
    server.start("127.0.0.1:0".parse().unwrap()).unwrap()
}

fn channel(addr: SocketAddr) -> Channel {
    Channel::new(&addr.to_string(), ChannelOptions::default()).unwrap()
}

fn echo(channel: &Channel) -> Result<Bytes, Status> {
    channel.unary_raw(
        "/t.Life/Echo",
        Bytes::from_static(b"ping"),
        CallOptions::default().timeout(PATIENCE),
    )
}

#[test]
fn closed_connections_leave_the_map_when_they_close() {
    let server = start(Server::builder());
    let addr = server.local_addr();
    // Raw sockets that never send a preface: only their closing prunes
    // them (no accept follows).
    let raw: Vec<TcpStream> = (0..4).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let channels: Vec<Channel> = (0..3).map(|_| channel(addr)).collect();
    for channel in &channels {
        assert_eq!(&echo(channel).unwrap()[..], b"ping");
    }
    assert!(wait_until(|| server.stats().connections == 7, PATIENCE));
    drop(raw);
    assert!(
        wait_until(|| server.stats().connections == 3, PATIENCE),
        "closed raw connections pruned: {:?}",
        server.stats()
    );
    for channel in &channels {
        channel.close();
    }
    assert!(
        wait_until(|| server.stats().connections == 0, PATIENCE),
        "closed channels pruned: {:?}",
        server.stats()
    );
    server.stop();
}

#[test]
fn graceful_stop_returns_once_the_last_call_and_connection_end() {
    let server = Arc::new(start(Server::builder()));
    let channel = channel(server.local_addr());
    let call = channel
        .streaming_raw("/t.Life/Bidi", CallOptions::default().timeout(PATIENCE))
        .unwrap();
    call.send(b"one").unwrap();
    assert_eq!(&call.recv().unwrap().unwrap()[..], b"one");
    let stopper = {
        let server = server.clone();
        std::thread::spawn(move || server.graceful_stop())
    };
    // The running call goes on through the drain.
    call.send(b"two").unwrap();
    assert_eq!(&call.recv().unwrap().unwrap()[..], b"two");
    call.close_send().unwrap();
    assert_eq!(call.recv().unwrap(), None);
    assert!(call.finish().0.is_ok());
    // Its end closes the drained connection, and that wakes the stop.
    let ended = Instant::now();
    assert!(wait_until(|| stopper.is_finished(), PATIENCE));
    stopper.join().unwrap();
    assert!(ended.elapsed() < PATIENCE);
    let stats = server.stats();
    assert_eq!((stats.connections, stats.worker_threads), (0, 0));
    assert!(
        TcpStream::connect(server.local_addr()).is_err(),
        "not listening"
    );
}

#[test]
fn graceful_stop_timeout_stops_hard_when_a_call_outlives_it() {
    let server = start(Server::builder());
    let channel = channel(server.local_addr());
    let call = channel
        .streaming_raw("/t.Life/Bidi", CallOptions::default().timeout(PATIENCE))
        .unwrap();
    call.send(b"one").unwrap();
    assert_eq!(&call.recv().unwrap().unwrap()[..], b"one");
    // The call never ends on its own: the stop ends it at its timeout.
    server.graceful_stop_timeout(Some(Duration::from_millis(100)));
    assert!(call.finish().0.code() != mio_grpc::grpc::Code::Ok);
    assert_eq!(server.stats().connections, 0);
}

#[test]
fn wait_returns_when_another_thread_stops_the_server() {
    let server = Arc::new(start(Server::builder()));
    assert_eq!(&echo(&channel(server.local_addr())).unwrap()[..], b"ping");
    let waiter = {
        let server = server.clone();
        std::thread::spawn(move || server.wait())
    };
    server.stop();
    assert!(wait_until(|| waiter.is_finished(), PATIENCE));
    waiter.join().unwrap();
    // Waiting on a stopped server returns at once.
    server.wait();
}

#[test]
fn serve_with_shutdown_serves_until_the_signal_then_stops_gracefully() {
    // A free port for `serve_with_shutdown`, which takes an address.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (stop, stopped) = crossbeam_channel::bounded::<()>(1);
    let serving = std::thread::spawn(move || {
        let mut server = Server::builder().event_loops(1).build();
        server.add_service(service()).unwrap();
        server.serve_with_shutdown(addr, || {
            let _ = stopped.recv();
        })
    });
    let channel = channel(addr);
    let reply = channel.unary_raw(
        "/t.Life/Echo",
        Bytes::from_static(b"ping"),
        CallOptions::default()
            .timeout(PATIENCE)
            .wait_for_ready(true),
    );
    assert_eq!(&reply.unwrap()[..], b"ping");
    assert!(!serving.is_finished(), "serving until the signal");
    stop.send(()).unwrap();
    assert!(wait_until(|| serving.is_finished(), PATIENCE));
    serving.join().unwrap().unwrap();
    assert!(TcpStream::connect(addr).is_err(), "not listening");
}

#[test]
fn a_panicking_handler_is_counted_and_its_worker_serves_the_next_call() {
    // One worker: if the panic killed it, the next call would never run.
    let server = start(Server::builder().workers(1).max_workers(1));
    let threads = server.stats().worker_threads;
    let channel = channel(server.local_addr());
    let panicking = channel.start_unary_raw(
        "/t.Life/Panic",
        Bytes::new(),
        CallOptions::default().timeout(Duration::from_secs(1)),
    );
    assert!(wait_until(|| server.stats().handler_panics == 1, PATIENCE));
    assert_eq!(&echo(&channel).unwrap()[..], b"ping");
    assert_eq!(server.stats().worker_threads, threads, "no worker lost");
    drop(panicking);
    server.stop();
}

#[test]
fn http_server_answers_503_when_every_worker_is_busy() {
    use common::peer::Peer;
    use mio_grpc::http::{Execution, Response, ServerConfig};
    use mio_grpc::runtime::RuntimeConfig;

    let (open, gate) = crossbeam_channel::unbounded::<()>();
    let (started_tx, started) = crossbeam_channel::unbounded::<()>();
    let config = ServerConfig {
        runtime: RuntimeConfig {
            event_loops: 1,
            ..RuntimeConfig::default()
        },
        execution: Execution::Workers(1),
        max_workers: 1,
        ..ServerConfig::default()
    };
    let server = mio_grpc::http::Server::bind(
        "127.0.0.1:0".parse().unwrap(),
        config,
        move |request: mio_grpc::http::Request| {
            if request.head.path.as_deref() == Some(&b"/block"[..]) {
                let _ = started_tx.send(());
                let _ = gate.recv();
            }
            Response::new(200, "done\n")
        },
    )
    .unwrap();
    let mut peer = Peer::connect(server.local_addr());
    peer.handshake();
    peer.send_get(1, "/block");
    started.recv_timeout(PATIENCE).unwrap();
    // The only worker is busy: refused now, not queued behind it.
    peer.send_get(3, "/");
    assert_eq!(peer.expect_response(3), (503, b"server busy\n".to_vec()));
    drop(open);
    assert_eq!(peer.expect_response(1), (200, b"done\n".to_vec()));
    server.shutdown();
}

/// Kills and reaps the child it holds when dropped (a failing test
/// leaves no server behind).
struct ChildServer(Child);

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `examples/grpc_test_server`, built for this test's profile.
fn test_server_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<this test> → target/<profile>
    let profile_dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .args(["build", "--quiet", "--example", "grpc_test_server"])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        build.arg("--release");
    }
    assert!(
        build.status().unwrap().success(),
        "building grpc_test_server"
    );
    profile_dir.join("examples").join("grpc_test_server")
}

/// File descriptors the process `pid` has open.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

#[test]
#[cfg(target_os = "linux")]
fn accepting_recovers_from_emfile_once_clients_close() {
    const FD_LIMIT: usize = 256;
    const CLIENTS: usize = 300;
    let binary = test_server_binary();
    let child = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -n {FD_LIMIT} && exec \"$0\" --port 0"))
        .arg(&binary)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut child = ChildServer(child);
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line.trim().parse().expect("the server prints its port");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let pid = child.0.id();

    // More connections than the server has descriptors: the kernel's
    // backlog takes them, the server accepts until EMFILE and backs off.
    let clients: Vec<TcpStream> = (0..CLIENTS)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    assert!(
        wait_until(|| open_fds(pid) >= FD_LIMIT - 2, PATIENCE),
        "the server ran out of descriptors: {} open",
        open_fds(pid)
    );
    drop(clients);

    // Once the closed connections give their descriptors back, accepting
    // resumes (backoff at most 1 s) and a new call goes through.
    let started = Instant::now();
    let channel = channel(addr);
    let reply = channel.unary_raw(
        "/grpc.health.v1.Health/Check",
        Bytes::new(),
        CallOptions::default()
            .timeout(PATIENCE)
            .wait_for_ready(true),
    );
    assert!(reply.is_ok(), "a call after EMFILE: {reply:?}");
    assert!(started.elapsed() < PATIENCE);
    assert!(
        wait_until(|| open_fds(pid) < 64, PATIENCE),
        "descriptors given back: {} open",
        open_fds(pid)
    );
    drop(child);
}
