//! Channel targets: the gRPC name syntax (grpc/grpc `doc/naming.md`) parsed
//! into a [`Target`], which picks the resolver (by scheme) and gives the
//! `:authority` of every call on the channel.
//!
//! | form | example | variant |
//! |------|---------|---------|
//! | `dns:[//authority/]host[:port]` | `dns:///example.com:50051` | [`Target::Dns`] |
//! | bare `host[:port]` (default scheme `dns`) | `localhost:50051`, `[::1]:8080` | [`Target::Dns`] |
//! | `ipv4:addr[:port][,addr[:port]…]` | `ipv4:10.0.0.1:80,10.0.0.2` | [`Target::Ipv4`] |
//! | `ipv6:addr` or `ipv6:[addr][:port][,…]` | `ipv6:[::1]:80,[::2]` | [`Target::Ipv6`] |
//! | `unix:path`, `unix:///absolute_path` | `unix:/run/app.sock` | [`Target::Unix`] |
//! | `unix-abstract:name` | `unix-abstract:app` | [`Target::UnixAbstract`] |
//! | `passthrough:///address` | `passthrough:///10.0.0.1:80` | [`Target::Passthrough`] |
//! | a registered custom scheme | `etcd://cluster/svc` | [`Target::Custom`] |
//! | `http://host[:port][/]` (as tonic users write it; plaintext) | `http://localhost:50051` | [`Target::Dns`] |
//!
//! Rules, as naming.md and grpc-go:
//!
//! - Schemes are case-insensitive. A string with no scheme, or with a
//!   scheme no resolver is registered for, is parsed as a `dns` endpoint
//!   (`localhost:50051` has "scheme" `localhost`, unknown, so it is
//!   `dns:///localhost:50051`). If that fails too, the error is
//!   [`TargetError::UnknownScheme`] when the string looked like `scheme:/…`
//!   (`etcd:///svc`), else the `dns` parse error (`localhost:http` is a
//!   [`TargetError::BadPort`]).
//! - A missing port is 443 for `dns`, `ipv4` and `ipv6` (naming.md; grpc-go's
//!   default). A port that is present must be a decimal `u16`; a trailing
//!   colon (`host:`) is an error, as in grpc-go. An empty host with a port
//!   (`:50051`) means `localhost`, as grpc-go and `net.Dial`.
//! - IPv6 literals with a port need brackets: `[::1]:80`. A bare IPv6
//!   literal (`::1`) is a host with the default port.
//! - In `dns://x/host:80`, `x` is the DNS *server* ([`Target::Dns`]'s
//!   `authority`), not the host: `dns://host:80` (two slashes) names no
//!   host and is [`TargetError::MissingAddress`], whose message suggests
//!   `dns:///host:80`.
//! - `unix` and `unix-abstract` accept no authority (`unix://host/path` is
//!   [`TargetError::UnexpectedAuthority`]); paths and names may not contain
//!   NUL. No percent-decoding is done.
//! - `http://host[:port]` is the `dns` target `host:port` (port 80 if none),
//!   for plaintext, as tonic's `Endpoint` takes it; a path after the
//!   authority is an error. `https://…` is refused with
//!   [`TargetError::TlsUnsupported`]: this client has no TLS yet. A
//!   resolver registered for `http` or `https` takes precedence.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

use super::resolver::ResolverRegistry;

/// The port used when a `dns`, `ipv4` or `ipv6` target gives none
/// (grpc/grpc `doc/naming.md`).
pub const DEFAULT_PORT: u16 = 443;

/// A parsed channel target.
///
/// ```
/// use mio_grpc::client::target::Target;
///
/// let target = Target::parse("dns:///example.com:50051")?;
/// assert_eq!(
///     target,
///     Target::Dns { authority: None, host: "example.com".into(), port: 50051 }
/// );
/// assert_eq!(target.scheme(), "dns");
/// assert_eq!(target.authority(), "example.com:50051");
///
/// // No scheme: dns. No port: 443.
/// assert_eq!(Target::parse("localhost:8080")?.to_string(), "dns:///localhost:8080");
/// assert_eq!(Target::parse("example.com")?.authority(), "example.com:443");
///
/// let list = Target::parse("ipv4:10.0.0.1:80,10.0.0.2")?;
/// assert_eq!(list, Target::Ipv4(vec!["10.0.0.1:80".parse()?, "10.0.0.2:443".parse()?]));
///
/// let unix = Target::parse("unix:///run/app.sock")?;
/// assert_eq!(unix, Target::Unix("/run/app.sock".into()));
/// assert_eq!(unix.authority(), "localhost");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// `dns:[//authority/]host[:port]`: `host` is looked up (an IP literal is
    /// used as is; IPv6 without brackets here).
    Dns {
        /// The DNS server to ask, if the target names one (`dns://8.8.8.8/…`).
        authority: Option<String>,
        /// The name to resolve, or an IP literal.
        host: String,
        /// The port every resolved address gets.
        port: u16,
    },
    /// `ipv4:` a fixed list of IPv4 socket addresses.
    Ipv4(Vec<SocketAddr>),
    /// `ipv6:` a fixed list of IPv6 socket addresses.
    Ipv6(Vec<SocketAddr>),
    /// `unix:` a Unix domain socket path (absolute or relative).
    Unix(PathBuf),
    /// `unix-abstract:` a name in Linux's abstract socket namespace, without
    /// the leading NUL (the connector prepends it).
    UnixAbstract(Vec<u8>),
    /// `passthrough:` an address handed to the system resolver as is.
    Passthrough(String),
    /// A scheme registered in a [`ResolverRegistry`] (and not built in),
    /// from [`Target::parse_with`].
    Custom {
        /// The scheme, lowercased.
        scheme: String,
        /// What followed `//`, if anything (empty counts as none).
        authority: Option<String>,
        /// The path (without its leading `/`) or the opaque part.
        endpoint: String,
    },
}

/// Why a target string is not a valid target.
///
/// ```
/// use mio_grpc::client::target::{Target, TargetError};
///
/// assert_eq!(Target::parse(""), Err(TargetError::Empty));
/// assert!(matches!(Target::parse("localhost:http"), Err(TargetError::BadPort { .. })));
/// assert!(matches!(Target::parse("etcd:///svc"), Err(TargetError::UnknownScheme { .. })));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TargetError {
    /// The target string is empty.
    Empty,
    /// `scheme:…` with a scheme no resolver is registered for, whose rest is
    /// not a `dns` endpoint either.
    UnknownScheme {
        /// The scheme, lowercased.
        scheme: String,
    },
    /// No host, address or path where the scheme needs one (`dns:///`,
    /// `dns://host:80` — the host there is the DNS server —, `unix:`).
    MissingAddress {
        /// The whole target.
        target: String,
    },
    /// A port that is empty (`host:`), not decimal, or above 65535.
    BadPort {
        /// The port text as given.
        port: String,
    },
    /// A host or address that cannot be one.
    BadAddress {
        /// The offending address text.
        address: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An authority on a scheme that takes none (`unix://host/path`).
    UnexpectedAuthority {
        /// The scheme.
        scheme: String,
        /// The authority given.
        authority: String,
    },
    /// An `https://` target: this client has no TLS yet.
    TlsUnsupported {
        /// The whole target.
        target: String,
    },
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetError::Empty => f.write_str("empty target"),
            TargetError::UnknownScheme { scheme } => write!(
                f,
                "no resolver for scheme `{scheme}` (and the target is not a host:port either)"
            ),
            TargetError::MissingAddress { target } => write!(
                f,
                "target `{target}` names no address (for dns, write `dns:///host:port`: \
                 `dns://x/` names the DNS server x)"
            ),
            TargetError::BadPort { port } => {
                write!(
                    f,
                    "bad port `{port}`: expected a decimal number up to 65535"
                )
            }
            TargetError::BadAddress { address, reason } => {
                write!(f, "bad address `{address}`: {reason}")
            }
            TargetError::UnexpectedAuthority { scheme, authority } => write!(
                f,
                "scheme `{scheme}` takes no authority, got `{authority}` (write `{scheme}:///path`)"
            ),
            TargetError::TlsUnsupported { target } => write!(
                f,
                "`{target}` asks for TLS, which this client does not support yet \
                 (for plaintext, write `http://…` or `host:port`)"
            ),
        }
    }
}

impl std::error::Error for TargetError {}

impl Target {
    /// Parses `target` with the built-in schemes only (`dns`, `ipv4`, `ipv6`,
    /// `unix`, `unix-abstract`, `passthrough`); any other scheme falls back
    /// to `dns` as the module doc says.
    ///
    /// # Errors
    ///
    /// A [`TargetError`] naming what is wrong.
    pub fn parse(target: &str) -> Result<Target, TargetError> {
        parse_inner(target, &|_| false)
    }

    /// Parses `target` knowing the schemes in `registry`: a registered
    /// scheme that is not built in yields [`Target::Custom`]. A registered
    /// built-in scheme (a user's own `dns` resolver) still parses with the
    /// built-in syntax.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use mio_grpc::client::resolver::{ResolverRegistry, StaticResolver};
    /// use mio_grpc::client::target::Target;
    ///
    /// let mut registry = ResolverRegistry::default();
    /// assert!(Target::parse_with("etcd:///svc", &registry).is_err());
    /// registry.register("etcd", Arc::new(StaticResolver));
    /// assert_eq!(
    ///     Target::parse_with("etcd:///svc", &registry)?,
    ///     Target::Custom { scheme: "etcd".into(), authority: None, endpoint: "svc".into() }
    /// );
    /// # Ok::<(), mio_grpc::client::target::TargetError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// A [`TargetError`] naming what is wrong.
    pub fn parse_with(target: &str, registry: &ResolverRegistry) -> Result<Target, TargetError> {
        parse_inner(target, &|scheme| registry.contains(scheme))
    }

    /// The scheme: `dns`, `ipv4`, `ipv6`, `unix`, `unix-abstract`,
    /// `passthrough`, or a custom one. Picks the resolver in a
    /// [`ResolverRegistry`].
    #[must_use]
    pub fn scheme(&self) -> &str {
        match self {
            Target::Dns { .. } => "dns",
            Target::Ipv4(_) => "ipv4",
            Target::Ipv6(_) => "ipv6",
            Target::Unix(_) => "unix",
            Target::UnixAbstract(_) => "unix-abstract",
            Target::Passthrough(_) => "passthrough",
            Target::Custom { scheme, .. } => scheme,
        }
    }

    /// The `:authority` header value for calls on this target: `host:port`
    /// for `dns` (IPv6 hosts bracketed; the port always written, 443 if the
    /// target gave none), the first address for `ipv4`/`ipv6`, `localhost`
    /// for Unix sockets (as grpc-go), the address for `passthrough`, the
    /// endpoint for a custom scheme.
    #[must_use]
    pub fn authority(&self) -> String {
        match self {
            Target::Dns { host, port, .. } => join_host_port(host, *port),
            Target::Ipv4(addrs) | Target::Ipv6(addrs) => addrs
                .first()
                .map_or_else(|| "localhost".to_owned(), ToString::to_string),
            Target::Unix(_) | Target::UnixAbstract(_) => "localhost".to_owned(),
            Target::Passthrough(addr) => addr.clone(),
            Target::Custom { endpoint, .. } => endpoint.clone(),
        }
    }
}

impl std::str::FromStr for Target {
    type Err = TargetError;

    fn from_str(s: &str) -> Result<Target, TargetError> {
        Target::parse(s)
    }
}

/// The canonical form, which parses back to the same target:
/// `dns:///host:port`, `ipv4:a:p,b:p`, `unix:///abs` or `unix:rel`, …
impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Dns {
                authority,
                host,
                port,
            } => write!(
                f,
                "dns://{}/{}",
                authority.as_deref().unwrap_or(""),
                join_host_port(host, *port)
            ),
            Target::Ipv4(addrs) | Target::Ipv6(addrs) => {
                write!(f, "{}:", self.scheme())?;
                for (i, addr) in addrs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{addr}")?;
                }
                Ok(())
            }
            Target::Unix(path) if path.is_absolute() => write!(f, "unix://{}", path.display()),
            Target::Unix(path) => write!(f, "unix:{}", path.display()),
            Target::UnixAbstract(name) => {
                // A name starting with `/` needs the empty authority, or
                // `//x` would read back as authority `x`.
                let slashes = if name.starts_with(b"/") { "//" } else { "" };
                write!(
                    f,
                    "unix-abstract:{slashes}{}",
                    String::from_utf8_lossy(name)
                )
            }
            Target::Passthrough(addr) => write!(f, "passthrough:///{addr}"),
            Target::Custom {
                scheme,
                authority,
                endpoint,
            } => write!(
                f,
                "{scheme}://{}/{endpoint}",
                authority.as_deref().unwrap_or("")
            ),
        }
    }
}

/// `host:port`, bracketing an IPv6 host.
fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn parse_inner(target: &str, is_custom: &dyn Fn(&str) -> bool) -> Result<Target, TargetError> {
    if target.is_empty() {
        return Err(TargetError::Empty);
    }
    let Some((scheme, rest)) = split_scheme(target) else {
        return parse_dns(target, None, target);
    };
    match scheme.as_str() {
        "dns" => {
            let (authority, endpoint) = split_authority(rest);
            parse_dns(target, authority, endpoint)
        }
        "ipv4" => parse_ip_list(target, &scheme, rest, false).map(Target::Ipv4),
        "ipv6" => parse_ip_list(target, &scheme, rest, true).map(Target::Ipv6),
        "unix" => {
            parse_unix_path(target, &scheme, rest).map(|path| Target::Unix(PathBuf::from(path)))
        }
        "unix-abstract" => parse_unix_path(target, &scheme, rest)
            .map(|name| Target::UnixAbstract(name.as_bytes().to_vec())),
        "passthrough" => {
            // grpc-go ignores a passthrough authority; so do we.
            let (_, endpoint) = split_authority(rest);
            if endpoint.is_empty() {
                return Err(missing(target));
            }
            Ok(Target::Passthrough(endpoint.to_owned()))
        }
        _ if is_custom(&scheme) => {
            let (authority, endpoint) = split_authority(rest);
            Ok(Target::Custom {
                authority: authority.map(str::to_owned),
                endpoint: endpoint.to_owned(),
                scheme,
            })
        }
        "http" if rest.starts_with("//") => parse_http(target, rest),
        "https" if rest.starts_with("//") => Err(TargetError::TlsUnsupported {
            target: target.to_owned(),
        }),
        // Unknown scheme: the whole string is a dns endpoint
        // (`localhost:50051`). If it is not, `scheme:/…` meant the scheme;
        // `host:junk` keeps the dns error (a bad port, say).
        _ => parse_dns(target, None, target).map_err(|err| {
            if rest.starts_with('/') {
                TargetError::UnknownScheme { scheme }
            } else {
                err
            }
        }),
    }
}

/// `scheme:rest` if the text before the first `:` is an RFC 3986 scheme
/// (`ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`), the scheme lowercased.
fn split_scheme(target: &str) -> Option<(String, &str)> {
    let (scheme, rest) = target.split_once(':')?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    let valid = first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then(|| (scheme.to_ascii_lowercase(), rest))
}

/// Splits the part after `scheme:` into an authority (what follows `//`,
/// up to the next `/`; `None` if absent or empty) and the endpoint (the
/// path without its leading `/`, or the opaque part).
fn split_authority(rest: &str) -> (Option<&str>, &str) {
    if let Some(after) = rest.strip_prefix("//") {
        let (authority, path) = after.split_once('/').unwrap_or((after, ""));
        let authority = (!authority.is_empty()).then_some(authority);
        (authority, path)
    } else {
        (None, rest.strip_prefix('/').unwrap_or(rest))
    }
}

fn missing(target: &str) -> TargetError {
    TargetError::MissingAddress {
        target: target.to_owned(),
    }
}

fn bad_address(address: &str, reason: &'static str) -> TargetError {
    TargetError::BadAddress {
        address: address.to_owned(),
        reason,
    }
}

fn parse_dns(target: &str, authority: Option<&str>, endpoint: &str) -> Result<Target, TargetError> {
    if endpoint.is_empty() {
        return Err(missing(target));
    }
    let (host, port) = split_host_port(endpoint)?;
    let host = if host.is_empty() { "localhost" } else { host };
    if let Some(bad) = host
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || matches!(c, '/' | '@' | '[' | ']'))
    {
        let reason = if bad == '/' {
            "a host cannot contain `/`"
        } else {
            "a host cannot contain whitespace, control characters, `@` or brackets"
        };
        return Err(bad_address(endpoint, reason));
    }
    Ok(Target::Dns {
        authority: authority.map(str::to_owned),
        host: host.to_owned(),
        port: port.unwrap_or(DEFAULT_PORT),
    })
}

/// `http://host[:port][/]`: the `dns` target `host:port`, port 80 if none.
fn parse_http(target: &str, rest: &str) -> Result<Target, TargetError> {
    let (authority, path) = split_authority(rest);
    let Some(authority) = authority else {
        return Err(missing(target));
    };
    if !path.is_empty() {
        return Err(bad_address(
            target,
            "a channel target takes no path after `http://host:port`",
        ));
    }
    if authority.contains('@') {
        return Err(bad_address(
            target,
            "user information (`user@`) is not supported",
        ));
    }
    let (_, port) = split_host_port(authority)?;
    match parse_dns(target, None, authority)? {
        Target::Dns { host, port: _, .. } => Ok(Target::Dns {
            authority: None,
            host,
            port: port.unwrap_or(80),
        }),
        other => Ok(other),
    }
}

/// Splits `host[:port]`, `[v6][:port]` or a bare IPv6 literal. The host is
/// returned without brackets; `None` for the port means "not given".
fn split_host_port(endpoint: &str) -> Result<(&str, Option<u16>), TargetError> {
    if endpoint.parse::<Ipv6Addr>().is_ok() {
        return Ok((endpoint, None));
    }
    if let Some(bracketed) = endpoint.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| bad_address(endpoint, "missing `]` after an IPv6 address"))?;
        if host.is_empty() {
            return Err(bad_address(endpoint, "empty brackets"));
        }
        if host.parse::<Ipv6Addr>().is_err() {
            return Err(bad_address(endpoint, "not an IPv6 address inside `[]`"));
        }
        return match after.strip_prefix(':') {
            Some(port) => Ok((host, Some(parse_port(port)?))),
            None if after.is_empty() => Ok((host, None)),
            None => Err(bad_address(endpoint, "unexpected text after `]`")),
        };
    }
    match endpoint.rsplit_once(':') {
        None => Ok((endpoint, None)),
        Some((host, _)) if host.contains(':') => Err(bad_address(
            endpoint,
            "too many colons (an IPv6 address with a port needs brackets: `[::1]:80`)",
        )),
        Some((host, port)) => Ok((host, Some(parse_port(port)?))),
    }
}

fn parse_port(port: &str) -> Result<u16, TargetError> {
    let bad = || TargetError::BadPort {
        port: port.to_owned(),
    };
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    port.parse().map_err(|_| bad())
}

/// `ipv4:` / `ipv6:` address lists.
fn parse_ip_list(
    target: &str,
    scheme: &str,
    rest: &str,
    v6: bool,
) -> Result<Vec<SocketAddr>, TargetError> {
    let (authority, list) = split_authority(rest);
    if let Some(authority) = authority {
        return Err(TargetError::UnexpectedAuthority {
            scheme: scheme.to_owned(),
            authority: authority.to_owned(),
        });
    }
    if list.is_empty() {
        return Err(missing(target));
    }
    list.split(',')
        .map(|item| {
            if item.is_empty() {
                return Err(bad_address(list, "empty address in the list"));
            }
            let (host, port) = split_host_port(item)?;
            let ip: IpAddr = if v6 {
                host.parse::<Ipv6Addr>()
                    .map(IpAddr::V6)
                    .map_err(|_| bad_address(item, "not an IPv6 address"))?
            } else {
                host.parse::<Ipv4Addr>()
                    .map(IpAddr::V4)
                    .map_err(|_| bad_address(item, "not an IPv4 address"))?
            };
            Ok(SocketAddr::new(ip, port.unwrap_or(DEFAULT_PORT)))
        })
        .collect()
}

/// `unix:` / `unix-abstract:` paths: `scheme:path` (relative or absolute)
/// or `scheme://` + absolute path with an empty authority.
fn parse_unix_path<'a>(target: &str, scheme: &str, rest: &'a str) -> Result<&'a str, TargetError> {
    let path = match rest.strip_prefix("//") {
        Some(after) => {
            let slash = after.find('/').unwrap_or(after.len());
            let (authority, path) = after.split_at(slash);
            if !authority.is_empty() {
                return Err(TargetError::UnexpectedAuthority {
                    scheme: scheme.to_owned(),
                    authority: authority.to_owned(),
                });
            }
            path
        }
        None => rest,
    };
    if path.is_empty() {
        return Err(missing(target));
    }
    if path.contains('\0') {
        return Err(bad_address(
            path,
            "a socket path or name cannot contain NUL",
        ));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dns(host: &str, port: u16) -> Target {
        Target::Dns {
            authority: None,
            host: host.into(),
            port,
        }
    }

    #[test]
    fn dns_forms() {
        assert_eq!(Target::parse("dns:///a.b:1"), Ok(dns("a.b", 1)));
        assert_eq!(Target::parse("dns:a.b:1"), Ok(dns("a.b", 1)));
        assert_eq!(Target::parse("dns:/a.b:1"), Ok(dns("a.b", 1)));
        assert_eq!(Target::parse("DNS:///a.b"), Ok(dns("a.b", 443)));
        assert_eq!(Target::parse("a.b:1"), Ok(dns("a.b", 1)));
        assert_eq!(Target::parse(":50051"), Ok(dns("localhost", 50051)));
        assert_eq!(Target::parse("::1"), Ok(dns("::1", 443)));
        assert_eq!(Target::parse("[::1]:9"), Ok(dns("::1", 9)));
        assert_eq!(Target::parse("[::1]"), Ok(dns("::1", 443)));
        assert_eq!(
            Target::parse("dns://8.8.8.8:53/a.b:1"),
            Ok(Target::Dns {
                authority: Some("8.8.8.8:53".into()),
                host: "a.b".into(),
                port: 1
            })
        );
    }

    #[test]
    fn split_scheme_rules() {
        assert_eq!(split_scheme("Unix:x"), Some(("unix".into(), "x")));
        assert_eq!(split_scheme("1.2.3.4:80"), None);
        assert_eq!(split_scheme("[::1]:80"), None);
        assert_eq!(split_scheme(":80"), None);
        assert_eq!(split_scheme("noscheme"), None);
    }

    #[test]
    fn port_edges() {
        assert_eq!(Target::parse("h:65535"), Ok(dns("h", 65535)));
        assert!(matches!(
            Target::parse("h:65536"),
            Err(TargetError::BadPort { .. })
        ));
        assert!(matches!(
            Target::parse("h:+1"),
            Err(TargetError::BadPort { .. })
        ));
        assert!(matches!(
            Target::parse("dns:///h:"),
            Err(TargetError::BadPort { .. })
        ));
    }

    #[test]
    fn http_urls_are_plaintext_dns_targets_and_https_is_refused() {
        assert_eq!(
            Target::parse("http://localhost:50051"),
            Ok(dns("localhost", 50051))
        );
        assert_eq!(
            Target::parse("HTTP://127.0.0.1:8080/"),
            Ok(dns("127.0.0.1", 8080))
        );
        assert_eq!(Target::parse("http://[::1]:9"), Ok(dns("::1", 9)));
        assert_eq!(
            Target::parse("http://example.com"),
            Ok(dns("example.com", 80))
        );
        assert_eq!(
            Target::parse("http://localhost:50051").unwrap().authority(),
            "localhost:50051"
        );
        assert!(matches!(
            Target::parse("http://h:1/pkg.Svc"),
            Err(TargetError::BadAddress { .. })
        ));
        assert!(matches!(
            Target::parse("http://"),
            Err(TargetError::MissingAddress { .. })
        ));
        assert!(matches!(
            Target::parse("http://h:x"),
            Err(TargetError::BadPort { .. })
        ));
        let https = Target::parse("https://example.com:443").unwrap_err();
        assert_eq!(
            https,
            TargetError::TlsUnsupported {
                target: "https://example.com:443".into()
            }
        );
        let text = https.to_string();
        assert!(text.contains("TLS") && text.contains("http://"), "{text}");
    }
}
