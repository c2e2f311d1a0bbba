//! The raw TCP ping-pong floor: std sockets with TCP_NODELAY, one
//! connection, a blocking echo server and a client that writes `size` bytes
//! and reads them back. No HTTP/2, no gRPC: what the kernel and the
//! scheduler cost for one round trip across cores, against which every
//! gRPC figure is quoted as a ratio.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use crate::report::{new_histogram, record, Report, RunSpec};

/// Serves echo on 127.0.0.1:`port`, one thread per connection, until the
/// process is killed.
pub fn serve(port: u16) -> Result<(), String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = TcpListener::bind(addr).map_err(|e| format!("binding {addr}: {e}"))?;
    println!("mio-grpc-bench tcp echo server on {addr}");
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        std::thread::spawn(move || {
            let _ = stream.set_nodelay(true);
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if stream.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                }
            }
        });
    }
    Ok(())
}

/// Ping-pongs `size`-byte messages (at least 1) with the echo server at
/// `target` for `warmup` then `duration`, and reports the round trips
/// completed in the measured window.
///
/// ```no_run
/// use std::time::Duration;
/// let floor = mio_grpc_bench::floor::run_client(
///     "127.0.0.1:50052", 1, Duration::from_secs(1), Duration::from_secs(5)).unwrap();
/// println!("TCP floor p50 {} µs", floor.p50_us);
/// ```
pub fn run_client(
    target: &str,
    size: u32,
    warmup: Duration,
    duration: Duration,
) -> Result<Report, String> {
    let mut stream = TcpStream::connect(target).map_err(|e| format!("connecting {target}: {e}"))?;
    stream
        .set_nodelay(true)
        .map_err(|e| format!("TCP_NODELAY: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| format!("read timeout: {e}"))?;
    let size = size.max(1) as usize;
    let message = vec![0x5au8; size];
    let mut reply = vec![0u8; size];
    let mut histogram = new_histogram();
    let begin = Instant::now();
    let (start, end) = (begin + warmup, begin + warmup + duration);
    loop {
        let t0 = Instant::now();
        if t0 >= end {
            break;
        }
        stream
            .write_all(&message)
            .and_then(|()| stream.read_exact(&mut reply))
            .map_err(|e| format!("ping-pong with {target}: {e}"))?;
        let t1 = Instant::now();
        if t1 >= start && t1 < end {
            record(&mut histogram, t1 - t0);
        }
    }
    let spec = RunSpec {
        client: "tcp".into(),
        target: target.to_string(),
        rpc: "ping-pong".into(),
        concurrency: 1,
        connections: 1,
        req_size: size as u32,
        resp_size: size as u32,
    };
    Ok(Report::from_histogram(&spec, &histogram, 0, duration))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_client_measures_round_trips_against_an_echo_server() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 4096];
            while let Ok(n) = s.read(&mut buf) {
                if n == 0 || s.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        });
        let r = run_client(
            &addr.to_string(),
            1024,
            Duration::from_millis(20),
            Duration::from_millis(100),
        )
        .unwrap();
        assert!(r.count > 0);
        assert_eq!(r.req_size, 1024);
        assert!(r.p50_us > 0.0 && r.p50_us <= r.p99_us && r.p99_us <= r.max_us);
    }

    #[test]
    fn a_dead_target_is_an_error() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let err = run_client(
            &format!("127.0.0.1:{port}"),
            1,
            Duration::ZERO,
            Duration::from_millis(10),
        )
        .unwrap_err();
        assert!(err.contains("connecting"), "{err}");
    }
}
