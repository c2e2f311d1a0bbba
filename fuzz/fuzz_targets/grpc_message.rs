//! Fuzz target `grpc_message`: gRPC message framing (`MessageDecoder`) and
//! bounded gzip inflation (`decompress`). The check lives in
//! `tests/common/grpc_message.rs`, which `tests/fuzz_corpus_replay.rs` also
//! runs over the committed corpus.
#![no_main]

#[path = "../../tests/common/grpc_message.rs"]
mod grpc_message;

libfuzzer_sys::fuzz_target!(|data: &[u8]| grpc_message::run(data));
