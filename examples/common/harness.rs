//! The case-runner pieces shared by the test clients (`grpc_test_client`,
//! `interop_client`): running one case on its own thread under a time
//! limit (a panic or a hang becomes a failure, not a stuck client), and a
//! byte-counting TCP proxy that shows whether messages were really
//! compressed on the wire (the client API does not expose a received
//! message's compressed flag).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

/// Runs `case(ctx)` on a thread named `name`; a panic, or no answer in
/// `limit` seconds, is an `Err` saying so.
pub fn run_case<C, T>(
    name: &str,
    case: fn(&C) -> Result<T, String>,
    limit: u64,
    ctx: &Arc<C>,
) -> Result<T, String>
where
    C: Send + Sync + 'static,
    T: Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    let ctx = Arc::clone(ctx);
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| case(&ctx)))
                .unwrap_or_else(|p| {
                    Err(format!(
                        "panicked: {}",
                        p.downcast_ref::<String>()
                            .cloned()
                            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_default()
                    ))
                });
            let _ = tx.send(result);
        })
        .map_err(|e| format!("cannot spawn the case's thread: {e}"))?;
    rx.recv_timeout(Duration::from_secs(limit))
        .unwrap_or_else(|_| Err(format!("timed out after {limit} s (hung)")))
}

/// A TCP proxy in front of a server that counts the bytes each way.
pub struct Proxy {
    /// The proxy's local port (127.0.0.1).
    pub port: u16,
    /// Bytes from the client to the server so far (not every client
    /// that includes this module reads it).
    #[allow(dead_code)]
    pub up: Arc<AtomicU64>,
    /// Bytes from the server to the client so far.
    pub down: Arc<AtomicU64>,
}

/// Starts a [`Proxy`] to `host:port`; it serves connections until the
/// process exits.
pub fn proxy(host: &str, port: u16) -> Result<Proxy, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("proxy: bind: {e}"))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("proxy: {e}"))?
        .port();
    let up = Arc::new(AtomicU64::new(0));
    let down = Arc::new(AtomicU64::new(0));
    let (up2, down2) = (Arc::clone(&up), Arc::clone(&down));
    let host = host.to_string();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let Ok(server) = TcpStream::connect((host.as_str(), port)) else {
                return;
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
                return;
            };
            pump(client, server, Arc::clone(&up2));
            pump(s2, c2, Arc::clone(&down2));
        }
    });
    Ok(Proxy {
        port: local,
        up,
        down,
    })
}

/// Copies `from` to `to` on a thread, counting the bytes.
fn pump(mut from: TcpStream, mut to: TcpStream, counter: Arc<AtomicU64>) {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    counter.fetch_add(n as u64, Ordering::SeqCst);
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}
