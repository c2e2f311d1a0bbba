//! The prost-build hook: [`MioGrpcGenerator`] turns each `Service` into
//! Rust text (server part in `server.rs`, client part in `client.rs`), and
//! the small text helpers both share (doc comments, names, `:path`).
//!
//! The generated code sits in the package's module next to the prost
//! messages, so message types are named as prost names them (`HelloRequest`,
//! `super::other::Msg`, `()` for `google.protobuf.Empty`). Everything from
//! other crates is spelled with a leading `::` so user imports cannot
//! shadow it.

use prost_build::{Comments, Method, Service, ServiceGenerator};

/// A `prost_build::ServiceGenerator` that writes mio-grpc server traits and
/// client stubs. [`crate::Builder`] installs it; use it directly to combine
/// it with a hand-made `prost_build::Config`.
#[derive(Clone, Copy, Debug)]
pub struct MioGrpcGenerator {
    server: bool,
    client: bool,
}

impl MioGrpcGenerator {
    /// A generator writing the server part, the client part, or both.
    pub fn new(server: bool, client: bool) -> MioGrpcGenerator {
        MioGrpcGenerator { server, client }
    }
}

impl ServiceGenerator for MioGrpcGenerator {
    fn generate(&mut self, service: Service, buf: &mut String) {
        if self.server {
            crate::server::generate(&service, buf);
        }
        if self.client {
            crate::client::generate(&service, buf);
        }
    }
}

/// The RPC kinds, from the two `stream` flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Unary,
    ClientStreaming,
    ServerStreaming,
    Bidi,
}

impl Kind {
    pub(crate) fn of(method: &Method) -> Kind {
        match (method.client_streaming, method.server_streaming) {
            (false, false) => Kind::Unary,
            (true, false) => Kind::ClientStreaming,
            (false, true) => Kind::ServerStreaming,
            (true, true) => Kind::Bidi,
        }
    }
}

/// The service's full name, `package.Service` (as routed by the server).
pub(crate) fn full_name(service: &Service) -> String {
    if service.package.is_empty() {
        service.proto_name.clone()
    } else {
        format!("{}.{}", service.package, service.proto_name)
    }
}

/// The method's `:path`, `/package.Service/Method`.
pub(crate) fn path(service: &Service, method: &Method) -> String {
    format!("/{}/{}", full_name(service), method.proto_name)
}

/// A method's Rust name without a raw-identifier prefix, for suffixing
/// (`r#type` + `_start` must become `type_start`).
pub(crate) fn bare_name(method: &Method) -> &str {
    method.name.strip_prefix("r#").unwrap_or(&method.name)
}

/// `RouteGuide` → `route_guide`, `HTTPServer` → `http_server`.
pub(crate) fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() {
            let prev = i.checked_sub(1).and_then(|j| chars.get(j));
            let next = chars.get(i + 1);
            let boundary = match prev {
                None => false,
                Some(p) if *p == '_' => false,
                Some(p) if p.is_lowercase() || p.is_ascii_digit() => true,
                Some(_) => next.is_some_and(|n| n.is_lowercase()),
            };
            if boundary {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Writes `///` doc lines: the proto's own comments first (they make the
/// better one-line summary), then `note` after a blank doc line; only
/// `note` when the proto has none. Detached comments are left out: they are
/// not about the item.
pub(crate) fn doc(buf: &mut String, indent: u8, note: &str, comments: &Comments) {
    let pad = "    ".repeat(usize::from(indent));
    if !comments.leading.is_empty() || !comments.trailing.is_empty() {
        let attached = Comments {
            leading_detached: Vec::new(),
            leading: comments.leading.clone(),
            trailing: comments.trailing.clone(),
        };
        attached.append_with_indent(indent, buf);
        buf.push_str(&format!("{pad}///\n"));
    }
    for line in note.lines() {
        if line.is_empty() {
            buf.push_str(&format!("{pad}///\n"));
        } else {
            buf.push_str(&format!("{pad}/// {line}\n"));
        }
    }
}
