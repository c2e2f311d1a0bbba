//! Starting the processes of a run: pinned to a CPU with `taskset` when the
//! machine has it and two or more CPUs, waiting for a server's port, and
//! running a client to its JSON line.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::report::Report;

/// The CPUs this process may run on.
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Whether runs are pinned: `taskset` runs and there are two CPUs or more.
pub fn can_pin() -> bool {
    cpus() >= 2
        && Command::new("taskset")
            .args(["-c", "0", "true"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

/// A command for `program args…`, under `taskset -c cpu` when `cpu` is set.
///
/// ```
/// use mio_grpc_bench::spawn::{can_pin, command};
/// let cpu = can_pin().then_some(0);
/// let status = command(cpu, "true", &[]).status().unwrap();
/// assert!(status.success());
/// ```
pub fn command(cpu: Option<usize>, program: &str, args: &[String]) -> Command {
    match cpu {
        Some(cpu) => {
            let mut cmd = Command::new("taskset");
            cmd.arg("-c").arg(cpu.to_string()).arg(program).args(args);
            cmd
        }
        None => {
            let mut cmd = Command::new(program);
            cmd.args(args);
            cmd
        }
    }
}

/// A port on 127.0.0.1 free right now (bound and released).
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Waits until `addr` accepts a TCP connection, or `timeout` passes.
pub fn wait_for_port(addr: SocketAddr, timeout: Duration) -> io::Result<()> {
    let until = Instant::now() + timeout;
    loop {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() >= until => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("server on {addr} did not come up: {e}"),
                ))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// A server process that is killed when dropped.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl ServerProcess {
    /// Starts `program args… --port P` on a free port P, pinned to `cpu`
    /// when set, and waits for it to listen on 127.0.0.1:P.
    ///
    /// ```no_run
    /// use mio_grpc_bench::spawn::ServerProcess;
    /// let server = ServerProcess::launch(None, "mio-grpc-bench", &["server", "--inline"]).unwrap();
    /// println!("listening on {}", server.addr);
    /// ```
    pub fn launch(cpu: Option<usize>, program: &str, args: &[&str]) -> io::Result<ServerProcess> {
        let port = free_port()?;
        let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        args.extend(["--port".to_string(), port.to_string()]);
        ServerProcess::start(
            command(cpu, program, &args),
            SocketAddr::from(([127, 0, 0, 1], port)),
        )
    }

    /// The server's process id (`taskset` execs the program, so it is the
    /// server's own).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Starts `cmd` (its stdout and stderr go to /dev/null) and waits for
    /// it to listen on `addr`.
    pub fn start(mut cmd: Command, addr: SocketAddr) -> io::Result<ServerProcess> {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()?;
        let mut server = ServerProcess { child, addr };
        if let Err(e) = wait_for_port(addr, Duration::from_secs(20)) {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(io::Error::other(format!(
                    "the server exited ({status}) before listening on {addr}"
                )));
            }
            return Err(e);
        }
        Ok(server)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a client command to the end and returns its report (the last JSON
/// line on its stdout); a failed run or a missing line is an error carrying
/// what the client printed.
pub fn run_client(mut cmd: Command) -> io::Result<Report> {
    let output = cmd.stdin(Stdio::null()).output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(io::Error::other(format!(
            "client failed ({}): {}{}",
            output.status,
            stdout.trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Report::from_output(&stdout)
        .ok_or_else(|| io::Error::other(format!("client printed no JSON line: {}", stdout.trim())))
}
