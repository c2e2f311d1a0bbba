//! The client half of a service: `struct <Service>Client` around a
//! `mio_grpc::client::Channel`, with per RPC: a blocking unary call and its
//! completion-handle twin `<method>_start`, or for the streaming kinds a
//! method opening a `StreamingCall` (the caller then uses `send_msg`,
//! `close_send` and `recv_msg`).

use prost_build::{Method, Service};

use crate::generator::{bare_name, doc, full_name, path, Kind};

const CALL_OPTIONS: &str = "::mio_grpc::client::CallOptions";
const STATUS: &str = "::mio_grpc::grpc::Status";

/// Appends the client struct and its methods for `service` to `buf`.
pub(crate) fn generate(service: &Service, buf: &mut String) {
    let client = format!("{}Client", service.name);
    let full = full_name(service);
    buf.push('\n');
    doc(
        buf,
        0,
        &format!(
            "Client of `{full}` over a `mio_grpc::client::Channel`. Cheap to clone;\n\
             calls from many threads share the channel."
        ),
        &service.comments,
    );
    buf.push_str("#[derive(Clone)]\n");
    buf.push_str(&format!("pub struct {client} {{\n"));
    buf.push_str("    channel: ::mio_grpc::client::Channel,\n");
    buf.push_str("}\n\n");
    buf.push_str(&format!("impl {client} {{\n"));
    buf.push_str("    /// A client making its calls on `channel`.\n");
    buf.push_str("    pub fn new(channel: ::mio_grpc::client::Channel) -> Self {\n");
    buf.push_str("        Self { channel }\n");
    buf.push_str("    }\n\n");
    buf.push_str("    /// The channel underneath.\n");
    buf.push_str("    pub fn channel(&self) -> &::mio_grpc::client::Channel {\n");
    buf.push_str("        &self.channel\n");
    buf.push_str("    }\n");
    for method in &service.methods {
        buf.push('\n');
        match Kind::of(method) {
            Kind::Unary => unary(service, method, buf),
            kind => streaming(service, method, kind, buf),
        }
    }
    buf.push_str("}\n");
}

fn unary(service: &Service, method: &Method, buf: &mut String) {
    let path = path(service, method);
    let (input, output) = (&method.input_type, &method.output_type);
    doc(
        buf,
        1,
        &format!("Calls `{}` and waits for the reply.", method.proto_name),
        &method.comments,
    );
    buf.push_str(&format!("    pub fn {}(\n", method.name));
    buf.push_str("        &self,\n");
    buf.push_str(&format!("        req: &{input},\n"));
    buf.push_str(&format!("        opts: {CALL_OPTIONS},\n"));
    buf.push_str(&format!(
        "    ) -> ::core::result::Result<{output}, {STATUS}> {{\n"
    ));
    buf.push_str(&format!(
        "        self.channel.unary::<{input}, {output}>(\"{path}\", req, opts)\n"
    ));
    buf.push_str("    }\n\n");

    doc(
        buf,
        1,
        &format!(
            "Starts `{}` and returns at once: wait on, poll or call back from the\n\
             handle, then decode its bytes with `<{output} as ::prost::Message>::decode`.",
            method.proto_name
        ),
        &Default::default(),
    );
    buf.push_str(&format!("    pub fn {}_start(\n", bare_name(method)));
    buf.push_str("        &self,\n");
    buf.push_str(&format!("        req: &{input},\n"));
    buf.push_str(&format!("        opts: {CALL_OPTIONS},\n"));
    buf.push_str("    ) -> ::mio_grpc::client::UnaryCall {\n");
    buf.push_str("        self.channel.start_unary_raw(\n");
    buf.push_str(&format!("            \"{path}\",\n"));
    buf.push_str("            ::prost::Message::encode_to_vec(req).into(),\n");
    buf.push_str("            opts,\n");
    buf.push_str("        )\n");
    buf.push_str("    }\n");
}

fn streaming(service: &Service, method: &Method, kind: Kind, buf: &mut String) {
    let (input, output) = (&method.input_type, &method.output_type);
    let usage = match kind {
        Kind::ClientStreaming => format!(
            "send `{input}`s with `send_msg`, then `close_send`,\n\
             and read the one `{output}` with `recv_msg`."
        ),
        Kind::ServerStreaming => format!(
            "send the one `{input}` with `send_msg`, then\n\
             `close_send`, and read `{output}`s with `recv_msg` until `None`."
        ),
        Kind::Unary | Kind::Bidi => format!(
            "send `{input}`s with `send_msg` (then `close_send`)\n\
             and read `{output}`s with `recv_msg` until `None`, in any order."
        ),
    };
    doc(
        buf,
        1,
        &format!("Opens a `{}` call: {usage}", method.proto_name),
        &method.comments,
    );
    buf.push_str(&format!("    pub fn {}(\n", method.name));
    buf.push_str("        &self,\n");
    buf.push_str(&format!("        opts: {CALL_OPTIONS},\n"));
    buf.push_str(&format!(
        "    ) -> ::core::result::Result<::mio_grpc::client::StreamingCall, {STATUS}> {{\n"
    ));
    buf.push_str(&format!(
        "        self.channel.streaming_raw(\"{}\", opts)\n",
        path(service, method)
    ));
    buf.push_str("    }\n");
}
