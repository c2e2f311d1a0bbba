"""End-to-end tests of the mio-grpc server with the real gRPC C-core client (grpcio).

The server is examples/grpc_test_server.rs serving miotest.Echo and
grpc.health.v1.Health (see protos/). Run with ``bash tests/grpcio/run.sh``.
Every RPC carries a timeout so a misbehaving server fails a test instead of
hanging the suite.
"""

import os
import queue
import threading
import time

import grpc
import pytest

import echo_pb2
import echo_pb2_grpc
import health_pb2
import health_pb2_grpc

Req = echo_pb2.EchoRequest
Resp = echo_pb2.EchoResponse

KiB = 1024
MiB = 1024 * 1024
T = 20  # default per-call timeout, seconds
SERVING = health_pb2.HealthCheckResponse.SERVING

UNICODE_MESSAGE = "ünïcødé ✓ 🚀"
# Everything grpc-message must percent-encode (and a '%' that must survive
# as a literal, including ones that look like escapes), plus spaces and tabs.
TRICKY_MESSAGE = "100% done, %41 is not A, %zz, %, tab\there\nnew line\r\x01\x7f end ~"

ERROR_CODES = [c for c in grpc.StatusCode if c is not grpc.StatusCode.OK]


@pytest.fixture
def stub(channel):
    return echo_pb2_grpc.EchoStub(channel)


@pytest.fixture
def small_stub(small_channel):
    return echo_pb2_grpc.EchoStub(small_channel)


@pytest.fixture
def health(channel):
    return health_pb2_grpc.HealthStub(channel)


def md_values(metadata, key):
    """All values for `key` in a grpcio metadata sequence, in order."""
    return [v for k, v in (metadata or ()) if k == key]


def assert_healthy(stub):
    """The server still answers promptly on this channel."""
    t0 = time.monotonic()
    resp = stub.Unary(Req(message="still alive?"), timeout=5)
    assert resp.message == "still alive?"
    assert time.monotonic() - t0 < 2.0


def rpc_error(fn, *args, **kwargs):
    with pytest.raises(grpc.RpcError) as info:
        fn(*args, **kwargs)
    return info.value


class Feeder:
    """A request iterator fed from the test thread (for interleaved streams)."""

    _END = object()

    def __init__(self):
        self.q = queue.Queue()

    def __iter__(self):
        while True:
            item = self.q.get()
            if item is self._END:
                return
            yield item

    def send(self, req):
        self.q.put(req)

    def close(self):
        self.q.put(self._END)


# --------------------------------------------------------------------------
# The four RPC kinds


def test_unary_echoes_message_and_payload(stub):
    payload = bytes(range(256)) * 3
    resp = stub.Unary(Req(message="hello", payload=payload), timeout=T)
    assert resp.message == "hello"
    assert resp.payload == payload


def test_unary_response_size_returns_zero_bytes(stub):
    resp = stub.Unary(Req(message="sized", payload=b"ignored", response_size=1000), timeout=T)
    assert resp.message == "sized"
    assert resp.payload == b"\0" * 1000


def test_client_stream_concatenates_and_counts(stub):
    reqs = [Req(message="ab", payload=b"x" * 10),
            Req(message="cd", payload=b""),
            Req(message="ef", payload=b"\0\xff" * 50)]
    resp = stub.ClientStream(iter(reqs), timeout=T)
    assert resp.message == "abcdef"
    assert resp.count == 3
    assert resp.total_bytes == 110


def test_server_stream_sends_response_count_indexed_responses(stub):
    call = stub.ServerStream(Req(message="s", payload=b"pp", response_count=7), timeout=T)
    resps = list(call)
    assert [r.index for r in resps] == list(range(7))
    assert all(r.payload == b"pp" for r in resps)
    assert call.code() == grpc.StatusCode.OK


def test_bidi_one_response_per_request(stub):
    reqs = [Req(message="m%d" % i, payload=bytes([i]) * i) for i in range(10)]
    resps = list(stub.Bidi(iter(reqs), timeout=T))
    assert [r.index for r in resps] == list(range(10))
    assert [r.message for r in resps] == ["m%d" % i for i in range(10)]
    assert [r.payload for r in resps] == [bytes([i]) * i for i in range(10)]


def test_bidi_ping_pong_responds_before_half_close(stub):
    """Each response must arrive while the client still holds the stream open."""
    feeder = Feeder()
    call = stub.Bidi(iter(feeder), timeout=T)
    try:
        for i in range(20):
            feeder.send(Req(message="ping%d" % i))
            resp = next(call)
            assert (resp.index, resp.message) == (i, "ping%d" % i)
    finally:
        feeder.close()
    assert list(call) == []
    assert call.code() == grpc.StatusCode.OK


# --------------------------------------------------------------------------
# Empty messages


def test_unary_empty_request_and_response(stub):
    resp = stub.Unary(Req(), timeout=T)
    assert resp == Resp()
    assert resp.ByteSize() == 0


def test_client_stream_with_no_requests(stub):
    resp = stub.ClientStream(iter([]), timeout=T)
    assert resp == Resp()  # message "", count 0, total_bytes 0


def test_client_stream_of_empty_requests(stub):
    resp = stub.ClientStream(iter([Req()] * 5), timeout=T)
    assert (resp.message, resp.count, resp.total_bytes) == ("", 5, 0)


def test_server_stream_with_zero_responses(stub):
    call = stub.ServerStream(Req(response_count=0), timeout=T)
    assert list(call) == []
    assert call.code() == grpc.StatusCode.OK


def test_server_stream_of_empty_responses(stub):
    # index 0 with no payload serialises to a zero-length message.
    resps = list(stub.ServerStream(Req(response_count=3), timeout=T))
    assert resps == [Resp(index=0), Resp(index=1), Resp(index=2)]
    assert resps[0].ByteSize() == 0


def test_bidi_with_no_requests(stub):
    call = stub.Bidi(iter([]), timeout=T)
    assert list(call) == []
    assert call.code() == grpc.StatusCode.OK


# --------------------------------------------------------------------------
# Volume on one channel


def test_1000_sequential_unary_calls_on_one_channel(stub):
    for i in range(1000):
        resp = stub.Unary(Req(message=str(i), payload=i.to_bytes(2, "big")), timeout=T)
        assert resp.message == str(i)
        assert resp.payload == i.to_bytes(2, "big")


def test_1000_concurrent_unary_calls_on_one_channel(stub):
    futs = [stub.Unary.future(Req(message="c%d" % i, payload=os.urandom(i % 64)), timeout=60)
            for i in range(1000)]
    for i, fut in enumerate(futs):
        resp = fut.result()
        assert resp.message == "c%d" % i
        assert len(resp.payload) == i % 64


def test_many_channels_in_parallel(server_addr):
    """Eight connections, each with its own thread of calls."""
    errors = []

    def worker(n):
        try:
            with grpc.insecure_channel(server_addr) as ch:
                s = echo_pb2_grpc.EchoStub(ch)
                for i in range(50):
                    r = s.Unary(Req(message="%d/%d" % (n, i)), timeout=T)
                    assert r.message == "%d/%d" % (n, i)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors


# --------------------------------------------------------------------------
# Large messages (flow-control windows stall both ways)


def test_unary_3mib_request_and_3mib_response(stub):
    payload = os.urandom(3 * MiB)
    resp = stub.Unary(Req(message="big", payload=payload), timeout=T)
    assert len(resp.payload) == len(payload)
    assert resp.payload == payload


def test_unary_small_request_3mib_response(stub):
    resp = stub.Unary(Req(response_size=3 * MiB), timeout=T)
    assert resp.payload == b"\0" * (3 * MiB)


def test_client_stream_20_x_256kib(stub):
    chunks = [os.urandom(256 * KiB) for _ in range(20)]
    resp = stub.ClientStream((Req(message=str(i % 10), payload=c) for i, c in enumerate(chunks)),
                             timeout=T)
    assert resp.count == 20
    assert resp.total_bytes == 20 * 256 * KiB
    assert resp.message == "01234567890123456789"


def test_server_stream_10_x_1mib(stub):
    payload = os.urandom(1 * MiB)
    call = stub.ServerStream(Req(payload=payload, response_count=10), timeout=T)
    n = 0
    for i, resp in enumerate(call):
        assert resp.index == i
        assert resp.payload == payload
        n += 1
    assert n == 10
    assert call.code() == grpc.StatusCode.OK


def test_bidi_8_x_1mib_both_ways(stub):
    payloads = [os.urandom(1 * MiB) for _ in range(8)]
    resps = list(stub.Bidi((Req(payload=p) for p in payloads), timeout=T))
    assert [r.index for r in resps] == list(range(8))
    assert all(r.payload == p for r, p in zip(resps, payloads))


def test_exactly_4mib_request_is_accepted(stub):
    # 1 (tag) + 4 (varint length) + payload = 4 MiB exactly: at the limit, not over it.
    # The echoed response is the same size, also exactly grpcio's default receive limit.
    payload = os.urandom(4 * MiB - 5)
    req = Req(payload=payload)
    assert req.ByteSize() == 4 * MiB
    resp = stub.Unary(req, timeout=T)
    assert resp.payload == payload


# --------------------------------------------------------------------------
# Metadata

BIN_VALUE = b"\x00\x01\x7f\x80\xfe\xff" + bytes(range(256))
SENT_MD = (
    ("x-ascii", "hello, world ~!"),
    ("x-multi", "one"),
    ("x-multi", "two"),
    ("x-multi", "three"),
    ("x-raw-bin", BIN_VALUE),
    ("x-multi-bin", b"\x00"),
    ("x-multi-bin", b"\xff\xff"),
    ("x-empty-bin", b""),
    ("y-not-echoed", "because it does not start with x-"),
)


def assert_echoed(md, where):
    assert md_values(md, "x-ascii") == ["hello, world ~!"], where
    assert md_values(md, "x-multi") == ["one", "two", "three"], where
    assert md_values(md, "x-raw-bin") == [BIN_VALUE], where
    assert md_values(md, "x-multi-bin") == [b"\x00", b"\xff\xff"], where
    assert md_values(md, "x-empty-bin") == [b""], where
    assert md_values(md, "y-not-echoed") == [], where


# Request headers that must never come back as response metadata.
REQUEST_ONLY = ("user-agent", "te", "grpc-timeout", "content-type", "host",
                ":path", ":authority", ":method", ":scheme", "y-not-echoed",
                "grpc-status", "grpc-message")


def test_unary_metadata_echoed_in_headers_and_trailers(stub):
    resp, call = stub.Unary.with_call(Req(message="md", echo_metadata=True),
                                      metadata=SENT_MD, timeout=T)
    assert resp.message == "md"
    assert_echoed(call.initial_metadata(), "initial metadata")
    assert_echoed(call.trailing_metadata(), "trailing metadata")


def test_unary_without_echo_flag_sends_no_x_metadata(stub):
    _, call = stub.Unary.with_call(Req(), metadata=SENT_MD, timeout=T)
    for md in (call.initial_metadata(), call.trailing_metadata()):
        assert [k for k, _ in md if k.startswith("x-")] == []


def test_reserved_and_request_only_headers_not_echoed(stub):
    _, call = stub.Unary.with_call(Req(echo_metadata=True),
                                   metadata=SENT_MD + (("x-extra", "1"),), timeout=T)
    for md in (call.initial_metadata(), call.trailing_metadata()):
        keys = [k for k, _ in md]
        for k in REQUEST_ONLY:
            assert k not in keys, "request header %r came back: %r" % (k, md)
        assert "x-extra" in keys


def test_large_metadata_value_echoed(stub):
    big = "v" * 4000
    _, call = stub.Unary.with_call(Req(echo_metadata=True),
                                   metadata=(("x-big", big), ("x-big-bin", b"\xab" * 2000)),
                                   timeout=T)
    assert md_values(call.initial_metadata(), "x-big") == [big]
    assert md_values(call.initial_metadata(), "x-big-bin") == [b"\xab" * 2000]
    assert md_values(call.trailing_metadata(), "x-big") == [big]


def test_server_stream_metadata_echoed_in_headers_and_trailers(stub):
    call = stub.ServerStream(Req(response_count=3, echo_metadata=True), metadata=SENT_MD,
                             timeout=T)
    assert_echoed(call.initial_metadata(), "initial metadata")
    assert len(list(call)) == 3
    assert_echoed(call.trailing_metadata(), "trailing metadata")


def test_error_response_carries_echoed_metadata_in_trailers(stub):
    err = rpc_error(stub.Unary.with_call,
                    Req(echo_metadata=True, status_code=grpc.StatusCode.ABORTED.value[0],
                        status_message="nope"),
                    metadata=(("x-trace", "t1"), ("x-trace-bin", b"\x00\xff")), timeout=T)
    assert err.code() == grpc.StatusCode.ABORTED
    assert err.details() == "nope"
    # Whether the server sent headers first or a trailers-only response, the
    # echoed values must be in the trailers.
    assert "t1" in md_values(err.trailing_metadata(), "x-trace")
    assert b"\x00\xff" in md_values(err.trailing_metadata(), "x-trace-bin")


# --------------------------------------------------------------------------
# Status codes


@pytest.mark.parametrize("code", ERROR_CODES, ids=lambda c: c.name)
def test_unary_status_code_with_unicode_message(stub, code):
    err = rpc_error(stub.Unary, Req(status_code=code.value[0], status_message=UNICODE_MESSAGE),
                    timeout=T)
    assert err.code() == code
    assert err.details() == UNICODE_MESSAGE


def test_status_message_with_control_characters_and_percent_signs(stub):
    err = rpc_error(stub.Unary, Req(status_code=grpc.StatusCode.INVALID_ARGUMENT.value[0],
                                    status_message=TRICKY_MESSAGE), timeout=T)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details() == TRICKY_MESSAGE


def test_status_with_empty_message(stub):
    err = rpc_error(stub.Unary, Req(status_code=grpc.StatusCode.NOT_FOUND.value[0]), timeout=T)
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert not err.details()


def test_status_details_bin_round_trip(stub):
    # Bytes of a google.rpc.Status-like message; the server must pass them through untouched.
    details = b"\x08\x05\x12\x04oops\x1a\x00\x00\xff\xfe" + os.urandom(100)
    err = rpc_error(stub.Unary.with_call,
                    Req(status_code=grpc.StatusCode.NOT_FOUND.value[0], status_message="gone",
                        status_details=details), timeout=T)
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert err.details() == "gone"
    assert md_values(err.trailing_metadata(), "grpc-status-details-bin") == [details]


def test_client_stream_honours_status_of_last_request(stub):
    reqs = [Req(message="a", status_code=grpc.StatusCode.INTERNAL.value[0]),  # not the last: ignored
            Req(message="b"),
            Req(message="c", status_code=grpc.StatusCode.FAILED_PRECONDITION.value[0],
                status_message=UNICODE_MESSAGE)]
    err = rpc_error(stub.ClientStream, iter(reqs), timeout=T)
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert err.details() == UNICODE_MESSAGE


def test_client_stream_ok_when_only_earlier_request_has_status(stub):
    reqs = [Req(message="a", status_code=grpc.StatusCode.INTERNAL.value[0]), Req(message="b")]
    resp = stub.ClientStream(iter(reqs), timeout=T)
    assert (resp.message, resp.count) == ("ab", 2)


def test_server_stream_fails_after_sending_all_responses(stub):
    call = stub.ServerStream(Req(response_count=4, payload=b"z",
                                 status_code=grpc.StatusCode.DATA_LOSS.value[0],
                                 status_message=UNICODE_MESSAGE), timeout=T)
    got = []
    with pytest.raises(grpc.RpcError):
        for r in call:
            got.append(r.index)
    assert got == [0, 1, 2, 3]
    assert call.code() == grpc.StatusCode.DATA_LOSS
    assert call.details() == UNICODE_MESSAGE


def test_bidi_status_on_a_later_request_fails_the_call(stub):
    reqs = [Req(message="0"), Req(message="1"), Req(message="2"),
            Req(message="3", status_code=grpc.StatusCode.ABORTED.value[0], status_message="stop")]
    call = stub.Bidi(iter(reqs), timeout=T)
    got = []
    with pytest.raises(grpc.RpcError):
        for r in call:
            got.append(r.message)
    assert got == ["0", "1", "2"]
    assert call.code() == grpc.StatusCode.ABORTED
    assert call.details() == "stop"


# --------------------------------------------------------------------------
# Deadlines


def test_short_deadline_on_slow_call_is_deadline_exceeded(stub):
    t0 = time.monotonic()
    err = rpc_error(stub.Unary, Req(sleep_ms=2000), timeout=0.1)
    elapsed = time.monotonic() - t0
    assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert elapsed < 1.0
    assert_healthy(stub)


def test_generous_deadline_succeeds(stub):
    t0 = time.monotonic()
    resp = stub.Unary(Req(message="slow", sleep_ms=200), timeout=10)
    assert resp.message == "slow"
    assert time.monotonic() - t0 >= 0.2


def test_server_stream_deadline_exceeded(stub):
    call = stub.ServerStream(Req(sleep_ms=2000, response_count=3), timeout=0.2)
    with pytest.raises(grpc.RpcError):
        list(call)
    assert call.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert_healthy(stub)


def test_many_expired_deadlines_leave_server_responsive(stub):
    """128 handlers sleeping 5 s whose callers gave up after 200 ms must not hold the server."""
    futs = [stub.Unary.future(Req(sleep_ms=5000), timeout=0.2) for _ in range(128)]
    for f in futs:
        with pytest.raises(grpc.RpcError):
            f.result()
        assert f.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert_healthy(stub)


# --------------------------------------------------------------------------
# Client cancellation


def test_cancel_server_stream_after_first_response(stub):
    # 1,000 x 64 KiB: the server is blocked on flow control when we cancel.
    call = stub.ServerStream(Req(payload=b"\x01" * (64 * KiB), response_count=1000), timeout=T)
    first = next(call)
    assert first.index == 0
    assert call.cancel()
    with pytest.raises(grpc.RpcError):
        for _ in call:
            pass
    assert call.code() == grpc.StatusCode.CANCELLED
    assert_healthy(stub)


def test_cancel_bidi_after_first_response(stub):
    feeder = Feeder()
    call = stub.Bidi(iter(feeder), timeout=T)
    try:
        feeder.send(Req(message="first"))
        assert next(call).message == "first"
        assert call.cancel()
        with pytest.raises(grpc.RpcError):
            next(call)
        assert call.code() == grpc.StatusCode.CANCELLED
    finally:
        feeder.close()
    assert_healthy(stub)


def test_cancel_unary_while_server_sleeps(stub):
    fut = stub.Unary.future(Req(sleep_ms=3000), timeout=T)
    time.sleep(0.1)
    assert fut.cancel()
    assert fut.cancelled()
    assert_healthy(stub)


def test_repeated_cancellations_leave_server_responsive(stub):
    """Fifty streams cancelled while their handlers are blocked on flow control."""
    for _ in range(50):
        call = stub.ServerStream(Req(payload=b"\x02" * (64 * KiB), response_count=1000),
                                 timeout=T)
        next(call)
        call.cancel()
    assert_healthy(stub)
    resps = list(stub.ServerStream(Req(payload=b"ok", response_count=5), timeout=T))
    assert len(resps) == 5


# --------------------------------------------------------------------------
# Unimplemented


@pytest.mark.parametrize("method", ["/miotest.Echo/Nope", "/nope.Service/Method",
                                    "/grpc.health.v1.Health/Nope"])
def test_unknown_method_or_service_is_unimplemented(channel, method):
    err = rpc_error(channel.unary_unary(method), b"", timeout=T)
    assert err.code() == grpc.StatusCode.UNIMPLEMENTED


def test_unknown_streaming_method_is_unimplemented(channel):
    call = channel.stream_stream("/miotest.Echo/NopeStream")(iter([b"", b"\x0a\x01x"]), timeout=T)
    with pytest.raises(grpc.RpcError):
        list(call)
    assert call.code() == grpc.StatusCode.UNIMPLEMENTED


def test_unimplemented_then_channel_still_works(channel):
    rpc_error(channel.unary_unary("/nope.Service/Method"), b"", timeout=T)
    assert_healthy(echo_pb2_grpc.EchoStub(channel))


# --------------------------------------------------------------------------
# Message-size limits


def test_small_server_accepts_request_at_its_limit(small_stub):
    req = Req(payload=b"\x07" * 1021)  # 1 + 2 + 1021 = 1024 bytes
    assert req.ByteSize() == 1024
    resp = small_stub.Unary(req, timeout=T)
    assert resp.payload == req.payload


def test_small_server_rejects_request_one_byte_over(small_stub):
    req = Req(payload=b"\x07" * 1022)
    assert req.ByteSize() == 1025
    err = rpc_error(small_stub.Unary, req, timeout=T)
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_small_server_rejects_2kib_request(small_stub):
    err = rpc_error(small_stub.Unary, Req(payload=os.urandom(2 * KiB)), timeout=T)
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert_healthy(small_stub)


def test_small_server_rejects_large_streamed_request(small_stub):
    reqs = [Req(payload=b"a" * 100), Req(payload=b"b" * (64 * KiB))]
    err = rpc_error(small_stub.ClientStream, iter(reqs), timeout=T)
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert_healthy(small_stub)


def test_small_server_sends_large_responses(small_stub):
    # The receive limit applies to requests only; sending is unlimited.
    resp = small_stub.Unary(Req(response_size=2 * MiB), timeout=T)
    assert len(resp.payload) == 2 * MiB


def test_default_server_rejects_request_over_4mib(stub):
    err = rpc_error(stub.Unary, Req(payload=os.urandom(4 * MiB + 100)), timeout=T)
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert_healthy(stub)


def test_response_over_client_max_receive_is_resource_exhausted(server_addr):
    with grpc.insecure_channel(server_addr,
                               options=[("grpc.max_receive_message_length", 1024)]) as ch:
        s = echo_pb2_grpc.EchoStub(ch)
        err = rpc_error(s.Unary, Req(response_size=4096), timeout=T)
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        # Same connection afterwards: a response under the limit is fine.
        assert len(s.Unary(Req(response_size=512), timeout=T).payload) == 512
        # And the server-side stream did not wedge anything (a big one, cancelled by the client).
        err = rpc_error(s.Unary, Req(response_size=8 * MiB), timeout=T)
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert_healthy(s)


# --------------------------------------------------------------------------
# Compression


def test_gzip_compressed_unary_request(stub):
    payload = b"compress me " * 50000
    resp = stub.Unary(Req(message="gz", payload=payload), timeout=T,
                      compression=grpc.Compression.Gzip)
    assert resp.message == "gz"
    assert resp.payload == payload


def test_gzip_incompressible_request(stub):
    payload = os.urandom(300 * KiB)
    resp = stub.Unary(Req(payload=payload), timeout=T, compression=grpc.Compression.Gzip)
    assert resp.payload == payload


def test_gzip_channel_all_rpc_kinds(server_addr):
    with grpc.insecure_channel(server_addr, compression=grpc.Compression.Gzip) as ch:
        s = echo_pb2_grpc.EchoStub(ch)
        assert s.Unary(Req(message="u", response_size=100 * KiB), timeout=T).payload == \
            b"\0" * (100 * KiB)
        r = s.ClientStream(iter([Req(message="a", payload=b"q" * 70000)] * 4), timeout=T)
        assert (r.message, r.count, r.total_bytes) == ("aaaa", 4, 280000)
        rs = list(s.ServerStream(Req(payload=b"w" * 70000, response_count=4), timeout=T))
        assert [len(x.payload) for x in rs] == [70000] * 4
        rs = list(s.Bidi(iter([Req(message=str(i), payload=b"e" * 1000) for i in range(5)]),
                         timeout=T))
        assert [x.message for x in rs] == ["0", "1", "2", "3", "4"]


def test_gzip_error_status_round_trip(stub):
    err = rpc_error(stub.Unary, Req(status_code=grpc.StatusCode.OUT_OF_RANGE.value[0],
                                    status_message=UNICODE_MESSAGE),
                    timeout=T, compression=grpc.Compression.Gzip)
    assert err.code() == grpc.StatusCode.OUT_OF_RANGE
    assert err.details() == UNICODE_MESSAGE


def test_gzip_limit_applies_to_decompressed_size(small_stub):
    # 2 KiB of zeros compresses to a few dozen bytes; decompressed it is over 1024.
    err = rpc_error(small_stub.Unary, Req(payload=b"\0" * (2 * KiB)), timeout=T,
                    compression=grpc.Compression.Gzip)
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert_healthy(small_stub)


def test_gzip_bomb_rejected_by_default_server(stub):
    # 16 MiB of zeros is ~16 KiB on the wire; the server must not inflate it past 4 MiB.
    err = rpc_error(stub.Unary, Req(payload=b"\0" * (16 * MiB)), timeout=T,
                    compression=grpc.Compression.Gzip)
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert_healthy(stub)


@pytest.fixture
def gzip_stub(gzip_channel):
    """Stub for the instance started with --gzip: its responses are compressed."""
    return echo_pb2_grpc.EchoStub(gzip_channel)


def test_gzip_server_compressed_responses_all_rpc_kinds(gzip_stub):
    s = gzip_stub
    payload = b"squeeze " * 100000
    assert s.Unary(Req(message="u", payload=payload), timeout=T).payload == payload
    assert s.Unary(Req(), timeout=T) == Resp()  # an empty message, compressed
    r = s.ClientStream(iter([Req(message="a", payload=b"q" * 70000)] * 4), timeout=T)
    assert (r.message, r.count, r.total_bytes) == ("aaaa", 4, 280000)
    rs = list(s.ServerStream(Req(payload=os.urandom(1 * MiB), response_count=3), timeout=T))
    assert [x.index for x in rs] == [0, 1, 2]
    rs = list(s.Bidi(iter([Req(message=str(i), response_size=i * 1000) for i in range(5)]),
                     timeout=T))
    assert [(x.message, len(x.payload)) for x in rs] == [(str(i), i * 1000) for i in range(5)]


def test_gzip_both_ways(gzip_stub):
    payload = b"both ways " * 100000
    resp = gzip_stub.Unary(Req(payload=payload), timeout=T, compression=grpc.Compression.Gzip)
    assert resp.payload == payload


def test_gzip_server_errors_and_metadata(gzip_stub):
    err = rpc_error(gzip_stub.Unary.with_call,
                    Req(status_code=grpc.StatusCode.PERMISSION_DENIED.value[0],
                        status_message=TRICKY_MESSAGE, status_details=b"\x00details\xff"),
                    timeout=T)
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert err.details() == TRICKY_MESSAGE
    assert md_values(err.trailing_metadata(), "grpc-status-details-bin") == [b"\x00details\xff"]
    _, call = gzip_stub.Unary.with_call(Req(echo_metadata=True), metadata=SENT_MD, timeout=T)
    assert_echoed(call.initial_metadata(), "initial metadata")
    assert_echoed(call.trailing_metadata(), "trailing metadata")


def test_client_max_receive_applies_to_decompressed_response(gzip_server_addr):
    with grpc.insecure_channel(gzip_server_addr,
                               options=[("grpc.max_receive_message_length", 1024)]) as ch:
        s = echo_pb2_grpc.EchoStub(ch)
        # 64 KiB of zeros is tiny compressed, but over the client's limit once inflated.
        err = rpc_error(s.Unary, Req(response_size=64 * KiB), timeout=T)
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert len(s.Unary(Req(response_size=512), timeout=T).payload) == 512


def test_unsupported_encoding_is_unimplemented_or_works(stub):
    """deflate is outside the contract: the server either supports it or says UNIMPLEMENTED."""
    try:
        resp = stub.Unary(Req(message="d", payload=b"d" * 1000), timeout=T,
                          compression=grpc.Compression.Deflate)
    except grpc.RpcError as err:
        assert err.code() == grpc.StatusCode.UNIMPLEMENTED, (err.code(), err.details())
    else:
        assert (resp.message, resp.payload) == ("d", b"d" * 1000)
    assert_healthy(stub)


# --------------------------------------------------------------------------
# Health


@pytest.mark.parametrize("service", ["", "miotest.Echo"])
def test_health_check_serving(health, service):
    resp = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=T)
    assert resp.status == SERVING


def test_health_check_unknown_service_is_not_found(health):
    err = rpc_error(health.Check, health_pb2.HealthCheckRequest(service="nope"), timeout=T)
    assert err.code() == grpc.StatusCode.NOT_FOUND


def test_health_watch_first_message_is_serving(health):
    call = health.Watch(health_pb2.HealthCheckRequest(service=""), timeout=T)
    first = next(call)
    assert first.status == SERVING
    call.cancel()
    assert call.code() == grpc.StatusCode.CANCELLED


def test_health_watch_stays_open(health):
    """Watch streams updates; it must not end right after the first message."""
    call = health.Watch(health_pb2.HealthCheckRequest(service="miotest.Echo"), timeout=1.0)
    assert next(call).status == SERVING
    with pytest.raises(grpc.RpcError):
        next(call)
    assert call.code() == grpc.StatusCode.DEADLINE_EXCEEDED
