//! The bench tool's contract (BENCH.md), run for real: the `server` and
//! `client` subcommands as processes, the JSON line parsed back, our
//! transport stats present, the TCP floor pair, and bad flags refused.

use std::net::SocketAddr;
use std::process::Command;

use mio_grpc_bench::report::Report;
use mio_grpc_bench::spawn::{free_port, run_client, ServerProcess};

const EXE: &str = env!("CARGO_BIN_EXE_mio-grpc-bench");

fn server(args: &[&str]) -> ServerProcess {
    ServerProcess::launch(None, EXE, args).unwrap()
}

fn client(addr: SocketAddr, rpc: &str, concurrency: u32, size: u32) -> Report {
    let mut cmd = Command::new(EXE);
    cmd.args(["client", "--target", &addr.to_string(), "--rpc", rpc])
        .args([
            "--concurrency",
            &concurrency.to_string(),
            "--connections",
            "2",
        ])
        .args(["--duration", "0.4", "--warmup", "0.1"])
        .args([
            "--req-size",
            &size.to_string(),
            "--resp-size",
            &size.to_string(),
        ]);
    run_client(cmd).unwrap()
}

fn check(r: &Report, rpc: &str, concurrency: u32, size: u32) {
    assert_eq!(r.client, "mio-grpc");
    assert_eq!(r.rpc, rpc);
    assert_eq!((r.concurrency, r.connections), (concurrency, 2));
    assert_eq!((r.req_size, r.resp_size), (size, size));
    assert!(r.count > 0, "{r:?}");
    assert_eq!(r.errors, 0, "{r:?}");
    assert!(r.p50_us > 0.0 && r.p50_us <= r.p99_us && r.p99_us <= r.max_us);
    let pc = r
        .per_call
        .as_ref()
        .expect("our client reports transport stats");
    // Every call reads and writes something, and allocates.
    assert!(
        pc.bytes_out > size as f64 && pc.bytes_in > size as f64,
        "{pc:?}"
    );
    assert!(
        pc.allocs > 0.0,
        "the counting allocator is installed: {pc:?}"
    );
    assert!(
        pc.server_allocs.is_some_and(|a| a > 0.0),
        "our server answers the stats call: {pc:?}"
    );
}

#[test]
fn unary_and_streaming_runs_print_the_contract_json_line() {
    let s = server(&["server", "--inline"]);
    let r = client(s.addr, "unary", 8, 1024);
    check(&r, "unary", 8, 1024);
    let r = client(s.addr, "streaming", 2, 0);
    check(&r, "streaming", 2, 0);
}

#[test]
fn a_server_with_worker_threads_serves_too() {
    let s = server(&["server", "--threads", "2"]);
    check(&client(s.addr, "unary", 3, 0), "unary", 3, 0);
}

#[test]
fn the_tcp_floor_pair_reports_round_trips() {
    let s = server(&["tcp-server"]);
    let mut cmd = Command::new(EXE);
    cmd.args(["tcp-client", "--target", &s.addr.to_string()])
        .args(["--size", "1024", "--duration", "0.3", "--warmup", "0.1"]);
    let r = run_client(cmd).unwrap();
    assert_eq!((r.client.as_str(), r.rpc.as_str()), ("tcp", "ping-pong"));
    assert!(r.count > 0 && r.per_call.is_none());
}

#[test]
fn bad_flags_exit_2_with_a_message() {
    for args in [
        &["client", "--rpc", "unary"][..],
        &["client", "--target", "127.0.0.1:1", "--rpc", "bidi"],
        &["server"],
        &["server", "--port", "http"],
        &["nonsense"],
    ] {
        let out = Command::new(EXE).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("mio-grpc-bench:"),
            "{args:?}"
        );
    }
}

#[test]
fn a_dead_target_fails_clearly_instead_of_hanging() {
    let port = free_port().unwrap();
    let out = Command::new(EXE)
        .args(["client", "--target", &format!("127.0.0.1:{port}")])
        .args(["--duration", "0.2", "--warmup", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("could not connect"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
