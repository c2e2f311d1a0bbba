//! Listening sockets and accepting with backoff on temporary errors
//! (5 ms doubling to 1 s). TCP listeners are made with socket2 (backlog,
//! SO_REUSEADDR, optional SO_REUSEPORT with one listener per loop,
//! TCP_NODELAY on accepted sockets); Unix-domain listeners (a path or, on
//! Linux, an abstract name) are one listener with the system's backlog.
//! Both kinds share the accept loop: a [`ListenSocket`] either way.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use mio::{Interest, Token};

use super::event_loop::{next_backoff, next_token, Command, LoopShared};
use super::socket::{unspecified, ListenSocket};
use super::{driver, Acceptor};

/// Listener options.
#[derive(Clone, Debug)]
pub struct ListenerConfig {
    /// The listen backlog. Default 1024.
    pub backlog: i32,
    /// SO_REUSEADDR. Default true.
    pub reuse_address: bool,
    /// One SO_REUSEPORT listener per loop, so the kernel spreads
    /// connections. Default false (one listener, round-robin hand-off).
    pub reuse_port: bool,
}

impl Default for ListenerConfig {
    fn default() -> Self {
        ListenerConfig {
            backlog: 1024,
            reuse_address: true,
            reuse_port: false,
        }
    }
}

/// A listener accepting on one loop.
pub(crate) struct ListenerState {
    pub(crate) token: Token,
    socket: ListenSocket,
    acceptor: Arc<dyn Acceptor>,
    backoff: Option<Duration>,
    paused: bool,
}

impl ListenerState {
    /// Accepts until `WouldBlock`. Returns a pause if a temporary error
    /// (out of file descriptors, memory) stopped it.
    pub(crate) fn accept_all(&mut self, shared: &Arc<LoopShared>) -> Option<Duration> {
        if self.paused {
            return None;
        }
        loop {
            match self.socket.accept() {
                Ok((socket, peer)) => {
                    self.backoff = None;
                    let target = shared.next_peer();
                    let config = self.acceptor.conn_config();
                    let acceptor = self.acceptor.clone();
                    let _ = driver::adopt(
                        &target,
                        socket,
                        peer,
                        loopy::Role::Server,
                        config,
                        move |handle| acceptor.accept(handle),
                    );
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return None,
                Err(err) if is_connection_error(&err) => continue,
                Err(_) => {
                    let pause = next_backoff(self.backoff);
                    self.backoff = Some(pause);
                    self.paused = true;
                    return Some(pause);
                }
            }
        }
    }

    pub(crate) fn resume(&mut self, _registry: &mio::Registry) {
        self.paused = false;
    }

    pub(crate) fn deregister(&mut self, registry: &mio::Registry) {
        let _ = registry.deregister(&mut self.socket);
    }
}

/// Errors about one incoming connection, not the listener.
fn is_connection_error(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}

/// A running listener.
#[derive(Debug)]
pub struct ListenerHandle {
    addr: SocketAddr,
    unix_path: Option<PathBuf>,
    tokens: Vec<(Token, Arc<LoopShared>)>,
}

impl std::fmt::Debug for LoopShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoopShared")
            .field("index", &self.index)
            .finish()
    }
}

impl ListenerHandle {
    /// The bound address (with the port the OS chose for port 0). For a
    /// Unix-domain listener, the unspecified address `0.0.0.0:0`.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The socket file of a listener on a Unix-domain path; `None` for TCP
    /// and for an abstract name. Closing the listener leaves the file in
    /// place: removing it is the caller's job.
    pub fn unix_path(&self) -> Option<&Path> {
        self.unix_path.as_deref()
    }

    /// Stops accepting (connections already accepted go on).
    pub fn close(&self) {
        for (token, shared) in &self.tokens {
            shared.command(Command::Unlisten(*token));
        }
    }
}

fn bind(addr: SocketAddr, config: &ListenerConfig) -> io::Result<std::net::TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    socket.set_reuse_address(config.reuse_address)?;
    if config.reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(config.backlog)?;
    Ok(socket.into())
}

pub(crate) fn listen(
    loops: &[Arc<LoopShared>],
    addr: SocketAddr,
    config: ListenerConfig,
    acceptor: Arc<dyn Acceptor>,
) -> io::Result<ListenerHandle> {
    let first = bind(addr, &config)?;
    let local = first.local_addr()?;
    let mut sockets = vec![first];
    if config.reuse_port {
        for _ in 1..loops.len() {
            sockets.push(bind(local, &config)?);
        }
    }
    let mut tokens = Vec::new();
    for (socket, shared) in sockets.into_iter().zip(loops.iter()) {
        let socket = ListenSocket::Tcp(mio::net::TcpListener::from_std(socket));
        tokens.push(start(shared, socket, &acceptor)?);
    }
    Ok(ListenerHandle {
        addr: local,
        unix_path: None,
        tokens,
    })
}

/// Where a Unix-domain listener binds.
pub(crate) enum UnixBind<'a> {
    /// A socket file.
    Path(&'a Path),
    /// A Linux abstract name (no file).
    #[cfg(target_os = "linux")]
    Abstract(&'a [u8]),
}

/// Listens on a Unix-domain socket with one listener on the first loop;
/// accepted connections are spread over the loops. A file already at the
/// path makes this fail with `AddrInUse`: it is not removed here.
pub(crate) fn listen_unix(
    loops: &[Arc<LoopShared>],
    bind: UnixBind<'_>,
    acceptor: Arc<dyn Acceptor>,
) -> io::Result<ListenerHandle> {
    let shared = loops
        .first()
        .ok_or_else(|| io::Error::other("the runtime has no event loop"))?;
    let (listener, unix_path) = match bind {
        UnixBind::Path(path) => (mio::net::UnixListener::bind(path)?, Some(path.into())),
        #[cfg(target_os = "linux")]
        UnixBind::Abstract(name) => {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            (mio::net::UnixListener::bind_addr(&addr)?, None)
        }
    };
    let token = start(shared, ListenSocket::Unix(listener), &acceptor)?;
    Ok(ListenerHandle {
        addr: unspecified(),
        unix_path,
        tokens: vec![token],
    })
}

/// Registers `socket` with `shared`'s loop and hands it over.
fn start(
    shared: &Arc<LoopShared>,
    mut socket: ListenSocket,
    acceptor: &Arc<dyn Acceptor>,
) -> io::Result<(Token, Arc<LoopShared>)> {
    let token = next_token();
    shared
        .registry
        .register(&mut socket, token, Interest::READABLE)?;
    let state = ListenerState {
        token,
        socket,
        acceptor: acceptor.clone(),
        backoff: None,
        paused: false,
    };
    shared.command(Command::Listen(Box::new(state)));
    Ok((token, shared.clone()))
}
