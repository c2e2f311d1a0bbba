//! The transports a connection runs over: a TCP or a Unix-domain stream
//! socket ([`Socket`]) and a listener of either kind ([`ListenSocket`]),
//! each one enum the driver and the accept loop use without caring which;
//! and [`PeerAddr`], the peer's address in either family.
//!
//! Unix-domain connections are made blocking (a Unix `connect` waits only
//! while the listener's backlog is full, bounded by `SO_SNDTIMEO`), then
//! switched to non-blocking and registered like TCP ones.

use std::fmt;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use mio::event::Source;
use mio::{Interest, Registry, Token};

/// The address of a connection's peer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PeerAddr {
    /// A TCP peer.
    Tcp(SocketAddr),
    /// A Unix-domain peer: the socket file's path when the peer's socket
    /// has one (a client connected to a path socket sees the listener's
    /// path); `None` for an unnamed socket (what a server usually sees of
    /// its clients) and for an abstract name.
    Unix(Option<PathBuf>),
}

impl PeerAddr {
    /// The TCP address; for a Unix-domain peer, the unspecified
    /// `0.0.0.0:0`.
    pub fn socket_addr(&self) -> SocketAddr {
        match self {
            PeerAddr::Tcp(addr) => *addr,
            PeerAddr::Unix(_) => unspecified(),
        }
    }

    /// The socket file's path of a Unix-domain peer that has one.
    pub fn unix_path(&self) -> Option<&Path> {
        match self {
            PeerAddr::Tcp(_) => None,
            PeerAddr::Unix(path) => path.as_deref(),
        }
    }

    /// True for a Unix-domain peer.
    pub fn is_unix(&self) -> bool {
        matches!(self, PeerAddr::Unix(_))
    }

    fn from_unix(addr: &std::os::unix::net::SocketAddr) -> PeerAddr {
        PeerAddr::Unix(addr.as_pathname().map(Path::to_path_buf))
    }
}

/// `ipv4:1.2.3.4:5`, `ipv6:[::1]:5`, `unix:/path` or `unix:` (unnamed or
/// abstract): the gRPC target forms.
impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerAddr::Tcp(addr @ SocketAddr::V4(_)) => write!(f, "ipv4:{addr}"),
            PeerAddr::Tcp(addr @ SocketAddr::V6(_)) => write!(f, "ipv6:{addr}"),
            PeerAddr::Unix(Some(path)) => write!(f, "unix:{}", path.display()),
            PeerAddr::Unix(None) => f.write_str("unix:"),
        }
    }
}

/// `0.0.0.0:0`: what the `SocketAddr` accessors report for Unix sockets.
pub(crate) fn unspecified() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 0))
}

/// A connected stream socket of either family.
pub(crate) enum Socket {
    Tcp(mio::net::TcpStream),
    Unix(mio::net::UnixStream),
}

impl Socket {
    /// TCP_NODELAY on a TCP socket; nothing to do for a Unix one.
    pub(crate) fn set_nodelay(&self) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => s.set_nodelay(true),
            Socket::Unix(_) => Ok(()),
        }
    }

    pub(crate) fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => s.shutdown(how),
            Socket::Unix(s) => s.shutdown(how),
        }
    }
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.read(buf),
            Socket::Unix(s) => s.read(buf),
        }
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.read_vectored(bufs),
            Socket::Unix(s) => s.read_vectored(bufs),
        }
    }
}

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.write(buf),
            Socket::Unix(s) => s.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.write_vectored(bufs),
            Socket::Unix(s) => s.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => s.flush(),
            Socket::Unix(s) => s.flush(),
        }
    }
}

impl Source for Socket {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => s.register(registry, token, interests),
            Socket::Unix(s) => s.register(registry, token, interests),
        }
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => s.reregister(registry, token, interests),
            Socket::Unix(s) => s.reregister(registry, token, interests),
        }
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => s.deregister(registry),
            Socket::Unix(s) => s.deregister(registry),
        }
    }
}

/// A listening socket of either family.
pub(crate) enum ListenSocket {
    Tcp(mio::net::TcpListener),
    Unix(mio::net::UnixListener),
}

impl ListenSocket {
    /// Accepts one connection.
    pub(crate) fn accept(&self) -> io::Result<(Socket, PeerAddr)> {
        match self {
            ListenSocket::Tcp(l) => l
                .accept()
                .map(|(stream, peer)| (Socket::Tcp(stream), PeerAddr::Tcp(peer))),
            ListenSocket::Unix(l) => l
                .accept()
                .map(|(stream, peer)| (Socket::Unix(stream), PeerAddr::from_unix(&peer))),
        }
    }
}

impl Source for ListenSocket {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        match self {
            ListenSocket::Tcp(l) => l.register(registry, token, interests),
            ListenSocket::Unix(l) => l.register(registry, token, interests),
        }
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        match self {
            ListenSocket::Tcp(l) => l.reregister(registry, token, interests),
            ListenSocket::Unix(l) => l.reregister(registry, token, interests),
        }
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        match self {
            ListenSocket::Tcp(l) => l.deregister(registry),
            ListenSocket::Unix(l) => l.deregister(registry),
        }
    }
}

/// Connects a Unix-domain stream socket to `addr`, blocking while the
/// listener's backlog is full for at most `timeout` (then `TimedOut`),
/// and returns it non-blocking.
pub(crate) fn connect_unix(
    addr: &socket2::SockAddr,
    timeout: Duration,
) -> io::Result<mio::net::UnixStream> {
    let socket = socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None)?;
    // A blocking Unix connect waits for backlog room for SO_SNDTIMEO; a
    // zero timeval would mean "forever", so at least a millisecond.
    socket.set_write_timeout(Some(timeout.max(Duration::from_millis(1))))?;
    loop {
        match socket.connect(addr) {
            Ok(()) => break,
            // A Unix connect is atomic: interrupted, it did nothing.
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "connect timed out: the listener's backlog stayed full",
                ));
            }
            Err(err) => return Err(err),
        }
    }
    socket.set_write_timeout(None)?;
    socket.set_nonblocking(true)?;
    Ok(mio::net::UnixStream::from_std(socket.into()))
}

/// The `sockaddr_un` of the abstract name `name` (Linux): socket2 takes
/// a path whose first byte is NUL as an abstract name.
#[cfg(target_os = "linux")]
pub(crate) fn abstract_sockaddr(name: &[u8]) -> io::Result<socket2::SockAddr> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::ffi::OsStrExt;
    // Rejects a name too long for `sun_path`, as std does.
    std::os::unix::net::SocketAddr::from_abstract_name(name)?;
    let mut bytes = Vec::with_capacity(name.len() + 1);
    bytes.push(0);
    bytes.extend_from_slice(name);
    socket2::SockAddr::unix(std::ffi::OsStr::from_bytes(&bytes))
}
