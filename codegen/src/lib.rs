//! Code generation for mio-grpc, run from a `build.rs`: `.proto` files become
//! prost messages (through `prost-build`) plus, for every service, a server
//! trait with a `ServiceDesc` builder and a blocking client stub, both written
//! against the `mio_grpc` API.
//!
//! `protoc` comes from the `protoc-bin-vendored` crate (the `PROTOC`
//! environment variable overrides it), so nothing has to be installed. Its
//! bundled well-known types (`google/protobuf/*.proto`) are on the include
//! path. The output is run through `rustfmt` when one is found; without it
//! the generated code is still laid out by hand and readable.
//!
//! ```no_run
//! // build.rs
//! fn main() -> std::io::Result<()> {
//!     mio_grpc_codegen::compile_protos(&["proto/helloworld.proto"], &["proto"])
//! }
//! ```
//!
//! ```text
//! // src/lib.rs: the package `helloworld` is written to `$OUT_DIR/helloworld.rs`.
//! pub mod helloworld {
//!     include!(concat!(env!("OUT_DIR"), "/helloworld.rs"));
//! }
//! ```
//!
//! For a service `helloworld.Greeter` the file holds, next to the messages:
//! `trait Greeter` (one method per RPC, implemented by the server),
//! `fn greeter_service(Arc<impl Greeter>) -> ServiceDesc` (to pass to
//! `Server::add_service`) and `struct GreeterClient` (a `Channel` wrapper with
//! one method per RPC, plus `<method>_start` for a unary call's completion
//! handle). The crate using the output needs `mio-grpc` and `prost` as
//! dependencies.

mod client;
mod generator;
mod server;

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

pub use generator::MioGrpcGenerator;

/// Compiles `protos` (searched for in `includes`) into `OUT_DIR`, with the
/// server and client code of every service. The usual `build.rs` entry
/// point; [`Builder`] has the options.
///
/// # Errors
///
/// When `protoc` cannot be found or run, a `.proto` does not parse, or the
/// output cannot be written.
pub fn compile_protos(
    protos: &[impl AsRef<Path>],
    includes: &[impl AsRef<Path>],
) -> io::Result<()> {
    Builder::new().compile(protos, includes)
}

/// Options of one code generation run.
///
/// ```no_run
/// mio_grpc_codegen::Builder::new()
///     .build_client(false)
///     .compile(&["proto/helloworld.proto"], &["proto"])
///     .unwrap();
/// ```
#[derive(Debug)]
pub struct Builder {
    out_dir: Option<PathBuf>,
    build_server: bool,
    build_client: bool,
    rustfmt: bool,
    emit_rerun_if_changed: bool,
    bytes: Vec<String>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Builder {
    /// Server and client code, written to `OUT_DIR`, formatted with
    /// `rustfmt` if there is one, with `cargo:rerun-if-changed` lines for the
    /// `.proto` files.
    pub fn new() -> Builder {
        Builder {
            out_dir: None,
            build_server: true,
            build_client: true,
            rustfmt: true,
            emit_rerun_if_changed: true,
            bytes: Vec::new(),
        }
    }

    /// Writes into `dir` instead of `OUT_DIR`.
    pub fn out_dir(mut self, dir: impl Into<PathBuf>) -> Builder {
        self.out_dir = Some(dir.into());
        self
    }

    /// Generates the server trait and `ServiceDesc` builder (default: yes).
    pub fn build_server(mut self, enabled: bool) -> Builder {
        self.build_server = enabled;
        self
    }

    /// Generates the client stub (default: yes).
    pub fn build_client(mut self, enabled: bool) -> Builder {
        self.build_client = enabled;
        self
    }

    /// Runs `rustfmt` (or `$RUSTFMT`) on the output when available
    /// (default: yes). A missing or failing `rustfmt` is not an error.
    pub fn rustfmt(mut self, enabled: bool) -> Builder {
        self.rustfmt = enabled;
        self
    }

    /// Generates `bytes::Bytes` instead of `Vec<u8>` for the `bytes` fields
    /// under these paths (prost-build's `Config::bytes`: `"."` for every
    /// field, `".pkg.Message.field"` for one). A message decoded from a
    /// received buffer then points into it instead of copying.
    pub fn bytes<I, S>(mut self, paths: I) -> Builder
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.bytes
            .extend(paths.into_iter().map(|p| p.as_ref().to_string()));
        self
    }

    /// Prints `cargo:rerun-if-changed=<proto>` for every input (default: yes).
    pub fn emit_rerun_if_changed(mut self, enabled: bool) -> Builder {
        self.emit_rerun_if_changed = enabled;
        self
    }

    /// Runs `protoc`, prost-build and the service generator.
    ///
    /// # Errors
    ///
    /// As [`compile_protos`].
    pub fn compile(
        self,
        protos: &[impl AsRef<Path>],
        includes: &[impl AsRef<Path>],
    ) -> io::Result<()> {
        let out_dir = match self.out_dir {
            Some(dir) => dir,
            None => std::env::var_os("OUT_DIR")
                .map(PathBuf::from)
                .ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::NotFound,
                        "OUT_DIR is not set: call from a build script, or set Builder::out_dir",
                    )
                })?,
        };
        let mut includes: Vec<PathBuf> =
            includes.iter().map(|p| p.as_ref().to_path_buf()).collect();
        if let Ok(well_known) = protoc_bin_vendored::include_path() {
            includes.push(well_known);
        }

        let mut config = prost_build::Config::new();
        config.protoc_executable(protoc_path()?);
        config.out_dir(&out_dir);
        if !self.bytes.is_empty() {
            config.bytes(&self.bytes);
        }
        config.service_generator(Box::new(MioGrpcGenerator::new(
            self.build_server,
            self.build_client,
        )));
        let descriptors = config.load_fds(protos, &includes)?;
        let mut written: Vec<PathBuf> = descriptors
            .file
            .iter()
            .map(|file| out_dir.join(format!("{}.rs", package_file_stem(file.package()))))
            .collect();
        written.sort();
        written.dedup();
        config.compile_fds(descriptors)?;

        if self.emit_rerun_if_changed {
            for proto in protos {
                println!("cargo:rerun-if-changed={}", proto.as_ref().display());
            }
        }
        if self.rustfmt {
            run_rustfmt(written.iter().filter(|path| path.exists()));
        }
        Ok(())
    }
}

/// prost-build's file name for a package: the package itself, or `_` for
/// the unnamed one.
fn package_file_stem(package: &str) -> &str {
    if package.is_empty() {
        "_"
    } else {
        package
    }
}

/// `$PROTOC` if set, else the vendored binary.
fn protoc_path() -> io::Result<PathBuf> {
    if let Some(path) = std::env::var_os("PROTOC") {
        return Ok(PathBuf::from(path));
    }
    protoc_bin_vendored::protoc_bin_path()
        .map_err(|e| io::Error::new(io::ErrorKind::NotFound, format!("no vendored protoc: {e}")))
}

/// Formats `files` in place; best effort (the output compiles either way).
fn run_rustfmt<'a>(files: impl Iterator<Item = &'a PathBuf>) {
    let files: Vec<&PathBuf> = files.collect();
    if files.is_empty() {
        return;
    }
    let rustfmt = std::env::var_os("RUSTFMT").unwrap_or_else(|| "rustfmt".into());
    let status = Command::new(rustfmt)
        .args(["--edition", "2021"])
        .args(&files)
        .status();
    match status {
        Ok(s) if s.success() => {}
        // No rustfmt installed: the hand-laid-out output stands.
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        _ => println!("cargo:warning=mio-grpc-codegen: rustfmt failed; output left unformatted"),
    }
}

#[cfg(test)]
mod tests;
