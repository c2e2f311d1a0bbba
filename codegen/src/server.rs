//! The server half of a service: `trait <Service>` with one method per RPC
//! (the handler signatures of `mio_grpc::server::MethodDesc`), and
//! `fn <service>_service(Arc<impl Trait>) -> ServiceDesc` that registers
//! each method under its proto name.

use prost_build::{Method, Service};

use crate::generator::{doc, full_name, snake_case, Kind};

const CONTEXT: &str = "::mio_grpc::server::Context";
const STATUS: &str = "::mio_grpc::grpc::Status";

/// Appends the trait and the `ServiceDesc` builder of `service` to `buf`.
pub(crate) fn generate(service: &Service, buf: &mut String) {
    trait_decl(service, buf);
    buf.push('\n');
    desc_builder(service, buf);
}

fn trait_decl(service: &Service, buf: &mut String) {
    let full = full_name(service);
    let builder = format!("{}_service", snake_case(&service.name));
    doc(
        buf,
        0,
        &format!(
            "Server side of `{full}`: implement it, then register it with\n\
             [`{builder}`]. Methods run on the server's worker threads and may block."
        ),
        &service.comments,
    );
    buf.push_str(&format!(
        "pub trait {}: ::core::marker::Send + ::core::marker::Sync + 'static {{\n",
        service.name
    ));
    for (i, method) in service.methods.iter().enumerate() {
        if i > 0 {
            buf.push('\n');
        }
        doc(
            buf,
            1,
            &format!("Handles `{}`.", method.proto_name),
            &method.comments,
        );
        buf.push_str(&format!("    fn {}(\n", method.name));
        buf.push_str("        &self,\n");
        buf.push_str(&format!("        ctx: &{CONTEXT},\n"));
        for param in params(method) {
            buf.push_str(&format!("        {param},\n"));
        }
        buf.push_str(&format!(
            "    ) -> ::core::result::Result<{}, {STATUS}>;\n",
            returned(method)
        ));
    }
    buf.push_str("}\n");
}

/// The parameters after `ctx`.
fn params(method: &Method) -> Vec<String> {
    let input = &method.input_type;
    let output = &method.output_type;
    let reqs = format!("reqs: ::mio_grpc::server::RequestStream<{input}>");
    let sink = format!("sink: ::mio_grpc::server::ResponseSink<{output}>");
    match Kind::of(method) {
        Kind::Unary => vec![format!("req: {input}")],
        Kind::ClientStreaming => vec![reqs],
        Kind::ServerStreaming => vec![format!("req: {input}"), sink],
        Kind::Bidi => vec![reqs, sink],
    }
}

/// The `Ok` type: the response, or `()` when responses go to the sink.
fn returned(method: &Method) -> String {
    match Kind::of(method) {
        Kind::Unary | Kind::ClientStreaming => method.output_type.clone(),
        Kind::ServerStreaming | Kind::Bidi => "()".to_string(),
    }
}

fn desc_builder(service: &Service, buf: &mut String) {
    let full = full_name(service);
    let name = &service.name;
    doc(
        buf,
        0,
        &format!(
            "The `ServiceDesc` of `{full}`, serving `svc`; pass it to\n\
             `mio_grpc::server::Server::add_service`."
        ),
        &Default::default(),
    );
    buf.push_str(&format!(
        "pub fn {}_service<T: {name}>(svc: ::std::sync::Arc<T>) -> ::mio_grpc::server::ServiceDesc {{\n",
        snake_case(name)
    ));
    if service.methods.is_empty() {
        buf.push_str("    let _ = svc;\n");
    }
    buf.push_str(&format!(
        "    ::mio_grpc::server::ServiceDesc::new(\"{full}\")"
    ));
    for method in &service.methods {
        let (constructor, args) = match Kind::of(method) {
            Kind::Unary => ("unary", "ctx, req"),
            Kind::ClientStreaming => ("client_streaming", "ctx, reqs"),
            Kind::ServerStreaming => ("server_streaming", "ctx, req, sink"),
            Kind::Bidi => ("bidi_streaming", "ctx, reqs, sink"),
        };
        buf.push_str("\n        .method({\n");
        buf.push_str("            let svc = ::std::sync::Arc::clone(&svc);\n");
        buf.push_str(&format!(
            "            ::mio_grpc::server::MethodDesc::{constructor}::<{}, {}, _>(\n",
            method.input_type, method.output_type
        ));
        buf.push_str(&format!("                \"{}\",\n", method.proto_name));
        buf.push_str(&format!(
            "                move |{args}| svc.{}({args}),\n",
            method.name
        ));
        buf.push_str("            )\n");
        buf.push_str("        })");
    }
    buf.push_str("\n}\n");
}
