//! Generates the two test services into OUT_DIR.

fn main() -> std::io::Result<()> {
    mio_grpc_codegen::compile_protos(
        &["../proto/helloworld.proto", "../proto/route_guide.proto"],
        &["../proto"],
    )
}
