//! The `miotest.Echo` messages (tests/grpcio/protos/echo.proto), shared by
//! `grpc_test_server` and `grpc_test_client` (hand-written prost structs:
//! the grpcio suite owns the .proto and these must match its field tags).

use bytes::Bytes;

/// `miotest.EchoRequest` (tests/grpcio/protos/echo.proto).
#[derive(Clone, PartialEq, prost::Message)]
pub struct EchoRequest {
    #[prost(string, tag = "1")]
    pub message: String,
    #[prost(bytes = "bytes", tag = "2")]
    pub payload: Bytes,
    #[prost(int32, tag = "3")]
    pub response_size: i32,
    #[prost(int32, tag = "4")]
    pub status_code: i32,
    #[prost(string, tag = "5")]
    pub status_message: String,
    #[prost(int32, tag = "6")]
    pub sleep_ms: i32,
    #[prost(int32, tag = "7")]
    pub response_count: i32,
    #[prost(bool, tag = "8")]
    pub echo_metadata: bool,
    #[prost(bytes = "bytes", tag = "9")]
    pub status_details: Bytes,
}

/// `miotest.EchoResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EchoResponse {
    #[prost(string, tag = "1")]
    pub message: String,
    #[prost(bytes = "bytes", tag = "2")]
    pub payload: Bytes,
    #[prost(int32, tag = "3")]
    pub index: i32,
    #[prost(int64, tag = "4")]
    pub total_bytes: i64,
    #[prost(int32, tag = "5")]
    pub count: i32,
}
