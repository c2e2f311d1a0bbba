//! Runs the whole generator (vendored protoc, prost-build, our service
//! generator, rustfmt if present) on the protos in `tests/proto` and checks
//! the text: the trait, the `ServiceDesc` builder, the client and every
//! signature, compared with whitespace removed so formatting does not
//! matter; plus balanced delimiters. It does not compile the output.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::generator::snake_case;
use crate::Builder;

fn proto_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/proto")
}

/// Generates `proto` into a fresh directory and returns `<package>.rs`.
fn generate(proto: &str, package: &str, rustfmt: bool) -> String {
    let out = fresh_dir();
    Builder::new()
        .out_dir(&out)
        .rustfmt(rustfmt)
        .emit_rerun_if_changed(false)
        .compile(&[proto_dir().join(proto)], &[proto_dir()])
        .unwrap();
    let text = std::fs::read_to_string(out.join(format!("{package}.rs"))).unwrap();
    std::fs::remove_dir_all(&out).unwrap();
    text
}

/// Without whitespace or trailing commas: what rustfmt may change.
/// A new, empty directory under the system temp dir.
fn fresh_dir() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("mio-grpc-codegen-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn squash(s: &str) -> String {
    let dense: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    dense.replace(",)", ")").replace(",}", "}")
}

#[track_caller]
fn assert_has(text: &str, needle: &str) {
    assert!(
        squash(text).contains(&squash(needle)),
        "missing:\n{needle}\nin:\n{text}"
    );
}

/// `{}`, `()`, `[]` and `<>` balance outside comments and strings (`->`
/// and `=>` are not brackets).
#[track_caller]
fn assert_balanced(text: &str) {
    let mut stack = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut in_str = false;
        let mut prev = ' ';
        for c in code.chars() {
            if c == '"' && prev != '\\' {
                in_str = !in_str;
            }
            if !in_str {
                match c {
                    '{' | '(' | '[' | '<' => stack.push(c),
                    '>' if prev == '-' || prev == '=' => {}
                    '}' | ')' | ']' | '>' => {
                        let open = stack.pop();
                        let want = match c {
                            '}' => '{',
                            ')' => '(',
                            ']' => '[',
                            _ => '<',
                        };
                        assert_eq!(open, Some(want), "unbalanced at {line:?}");
                    }
                    _ => {}
                }
            }
            prev = c;
        }
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
}

#[test]
fn greeter_server_trait_and_service_desc() {
    let text = generate("helloworld.proto", "helloworld", true);
    assert_balanced(&text);
    assert_has(&text, "pub struct HelloRequest");
    assert_has(
        &text,
        "/// The greeting service definition.
         ///
         /// Server side of `helloworld.Greeter`: implement it, then register it with
         /// [`greeter_service`]. Methods run on the server's worker threads and may block.
         pub trait Greeter: ::core::marker::Send + ::core::marker::Sync + 'static {",
    );
    assert_has(
        &text,
        "/// Sends a greeting.
         ///
         /// Handles `SayHello`.
         fn say_hello(&self, ctx: &::mio_grpc::server::Context, req: HelloRequest)
             -> ::core::result::Result<HelloReply, ::mio_grpc::grpc::Status>;",
    );
    // google.protobuf.Empty is `()` in prost.
    assert_has(
        &text,
        "fn ping(&self, ctx: &::mio_grpc::server::Context, req: ())
             -> ::core::result::Result<(), ::mio_grpc::grpc::Status>;",
    );
    assert_has(
        &text,
        "pub fn greeter_service<T: Greeter>(svc: ::std::sync::Arc<T>)
             -> ::mio_grpc::server::ServiceDesc {
             ::mio_grpc::server::ServiceDesc::new(\"helloworld.Greeter\")",
    );
    assert_has(
        &text,
        "::mio_grpc::server::MethodDesc::unary::<HelloRequest, HelloReply, _>(
             \"SayHello\", move |ctx, req| svc.say_hello(ctx, req),)",
    );
}

#[test]
fn greeter_client() {
    let text = generate("helloworld.proto", "helloworld", true);
    assert_has(
        &text,
        "#[derive(Clone)] pub struct GreeterClient { channel: ::mio_grpc::client::Channel, }",
    );
    assert_has(
        &text,
        "pub fn new(channel: ::mio_grpc::client::Channel) -> Self { Self { channel } }",
    );
    assert_has(
        &text,
        "pub fn say_hello(&self, req: &HelloRequest, opts: ::mio_grpc::client::CallOptions)
             -> ::core::result::Result<HelloReply, ::mio_grpc::grpc::Status> {
             self.channel.unary::<HelloRequest, HelloReply>(\"/helloworld.Greeter/SayHello\", req, opts)
         }",
    );
    assert_has(
        &text,
        "pub fn say_hello_start(&self, req: &HelloRequest, opts: ::mio_grpc::client::CallOptions)
             -> ::mio_grpc::client::UnaryCall {
             self.channel.start_unary_raw(\"/helloworld.Greeter/SayHello\",
                 ::prost::Message::encode_to_vec(req).into(), opts,)
         }",
    );
}

#[test]
fn route_guide_all_four_kinds() {
    let text = generate("route_guide.proto", "routeguide", true);
    assert_balanced(&text);
    assert_has(&text, "pub trait RouteGuide: ::core::marker::Send");
    assert_has(
        &text,
        "fn get_feature(&self, ctx: &::mio_grpc::server::Context, req: Point)
             -> ::core::result::Result<Feature, ::mio_grpc::grpc::Status>;",
    );
    assert_has(
        &text,
        "fn list_features(&self, ctx: &::mio_grpc::server::Context, req: Rectangle,
             sink: ::mio_grpc::server::ResponseSink<Feature>,)
             -> ::core::result::Result<(), ::mio_grpc::grpc::Status>;",
    );
    assert_has(
        &text,
        "fn record_route(&self, ctx: &::mio_grpc::server::Context,
             reqs: ::mio_grpc::server::RequestStream<Point>,)
             -> ::core::result::Result<RouteSummary, ::mio_grpc::grpc::Status>;",
    );
    assert_has(
        &text,
        "fn route_chat(&self, ctx: &::mio_grpc::server::Context,
             reqs: ::mio_grpc::server::RequestStream<RouteNote>,
             sink: ::mio_grpc::server::ResponseSink<RouteNote>,)
             -> ::core::result::Result<(), ::mio_grpc::grpc::Status>;",
    );
    assert_has(&text, "pub fn route_guide_service<T: RouteGuide>");
    assert_has(&text, "ServiceDesc::new(\"routeguide.RouteGuide\")");
    for (constructor, types, name, call) in [
        (
            "unary",
            "Point, Feature",
            "GetFeature",
            "move |ctx, req| svc.get_feature(ctx, req)",
        ),
        (
            "server_streaming",
            "Rectangle, Feature",
            "ListFeatures",
            "move |ctx, req, sink| svc.list_features(ctx, req, sink)",
        ),
        (
            "client_streaming",
            "Point, RouteSummary",
            "RecordRoute",
            "move |ctx, reqs| svc.record_route(ctx, reqs)",
        ),
        (
            "bidi_streaming",
            "RouteNote, RouteNote",
            "RouteChat",
            "move |ctx, reqs, sink| svc.route_chat(ctx, reqs, sink)",
        ),
    ] {
        assert_has(
            &text,
            &format!("MethodDesc::{constructor}::<{types}, _>(\"{name}\", {call},)"),
        );
    }
    assert_has(&text, "pub struct RouteGuideClient");
    for (method, path) in [
        ("list_features", "/routeguide.RouteGuide/ListFeatures"),
        ("record_route", "/routeguide.RouteGuide/RecordRoute"),
        ("route_chat", "/routeguide.RouteGuide/RouteChat"),
    ] {
        assert_has(
            &text,
            &format!(
                "pub fn {method}(&self, opts: ::mio_grpc::client::CallOptions)
                     -> ::core::result::Result<::mio_grpc::client::StreamingCall,
                         ::mio_grpc::grpc::Status> {{
                     self.channel.streaming_raw(\"{path}\", opts)
                 }}"
            ),
        );
    }
    assert_has(&text, "pub fn get_feature_start(");
    assert!(!text.contains("list_features_start"));
}

#[test]
fn unformatted_output_is_the_same_code() {
    let formatted = generate("route_guide.proto", "routeguide", true);
    let raw = generate("route_guide.proto", "routeguide", false);
    assert_balanced(&raw);
    // Only our part: prost's own output is unformatted without its
    // `format` feature and rustfmt may rewrap it.
    let ours = |t: &str| squash(&t[t.find("pub trait RouteGuide").unwrap()..]);
    let (f, r) = (ours(&formatted), ours(&raw));
    assert_eq!(f, r);
}

#[test]
fn server_or_client_only() {
    let out = fresh_dir();
    Builder::new()
        .out_dir(&out)
        .build_client(false)
        .emit_rerun_if_changed(false)
        .compile(&[proto_dir().join("helloworld.proto")], &[proto_dir()])
        .unwrap();
    let text = std::fs::read_to_string(out.join("helloworld.rs")).unwrap();
    std::fs::remove_dir_all(&out).unwrap();
    assert!(text.contains("pub trait Greeter"));
    assert!(!text.contains("GreeterClient"));
}

#[test]
fn snake_case_names() {
    assert_eq!(snake_case("Greeter"), "greeter");
    assert_eq!(snake_case("RouteGuide"), "route_guide");
    assert_eq!(snake_case("HTTPServer"), "http_server");
    assert_eq!(snake_case("V2Api"), "v2_api");
}
