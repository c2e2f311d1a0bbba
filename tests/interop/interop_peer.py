"""A grpcio (gRPC C-core) peer for the interop suite: the
``grpc.testing.TestService`` server and the interop client cases of
grpc/grpc doc/interop-test-descriptions.md, on grpcio from PyPI.

    python3 interop_peer.py server --port 0
        serves on 127.0.0.1, prints the port as the first stdout line
    python3 interop_peer.py client --server_host 127.0.0.1 --server_port P --test_case all
        prints PASS/FAIL per case, exits non-zero if any failed

The stubs are generated afresh from examples/proto/interop_test.proto
(a wire-compatible trim of grpc/grpc's test protos) into a temporary
directory on every run.
"""

import argparse
import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent import futures

import grpc

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_DIR = os.path.join(HERE, "..", "..", "examples", "proto")


def _generate():
    out = tempfile.mkdtemp(prefix="interop-stubs-")
    atexit.register(shutil.rmtree, out, True)
    cmd = [sys.executable, "-m", "grpc_tools.protoc", "-I", PROTO_DIR,
           "--python_out", out, "--grpc_python_out", out,
           os.path.join(PROTO_DIR, "interop_test.proto")]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError("protoc failed:\n%s\n%s" % (res.stdout, res.stderr))
    sys.path.insert(0, out)


_generate()
import interop_test_pb2 as pb  # noqa: E402
import interop_test_pb2_grpc as pb_grpc  # noqa: E402

CODES = {c.value[0]: c for c in grpc.StatusCode}
ECHO_INITIAL = "x-grpc-test-echo-initial"
ECHO_TRAILING = "x-grpc-test-echo-trailing-bin"


# ---------------------------------------------------------------- server

def _echo_metadata(context):
    md = dict(context.invocation_metadata())
    if ECHO_INITIAL in md:
        context.send_initial_metadata(((ECHO_INITIAL, md[ECHO_INITIAL]),))
    if ECHO_TRAILING in md:
        context.set_trailing_metadata(((ECHO_TRAILING, md[ECHO_TRAILING]),))


def _fail_with(context, status):
    context.abort(CODES[status.code], status.message)


def _payload(size):
    return pb.Payload(type=pb.COMPRESSABLE, body=b"\0" * size)


class TestService(pb_grpc.TestServiceServicer):
    """The interop server's behaviour, as the doc's Server section says."""

    def EmptyCall(self, request, context):
        _echo_metadata(context)
        return pb.Empty()

    def UnaryCall(self, request, context):
        _echo_metadata(context)
        # expect_compressed is not checked: grpcio's server does not tell a
        # handler whether a request arrived compressed (grpc/grpc's own
        # interop matrix skips the client_compressed_* cases against Python
        # servers for the same reason; run.sh does too).
        if request.HasField("response_status") and request.response_status.code != 0:
            _fail_with(context, request.response_status)
        if request.response_compressed.value:
            context.set_compression(grpc.Compression.Gzip)
        return pb.SimpleResponse(payload=_payload(request.response_size))

    CacheableUnaryCall = UnaryCall

    def StreamingInputCall(self, request_iterator, context):
        total = 0
        for req in request_iterator:  # expect_compressed: see UnaryCall
            total += len(req.payload.body)
        return pb.StreamingInputCallResponse(aggregated_payload_size=total)

    def _respond(self, req, context):
        for params in req.response_parameters:
            if params.interval_us > 0:
                time.sleep(params.interval_us / 1e6)
            context.set_compression(grpc.Compression.Gzip)
            if not params.compressed.value:
                context.disable_next_message_compression()
            yield pb.StreamingOutputCallResponse(payload=_payload(params.size))
        if req.HasField("response_status") and req.response_status.code != 0:
            _fail_with(context, req.response_status)

    def StreamingOutputCall(self, request, context):
        _echo_metadata(context)
        yield from self._respond(request, context)

    def FullDuplexCall(self, request_iterator, context):
        _echo_metadata(context)
        for req in request_iterator:
            yield from self._respond(req, context)

    def HalfDuplexCall(self, request_iterator, context):
        _echo_metadata(context)
        reqs = list(request_iterator)
        for req in reqs:
            yield from self._respond(req, context)


def serve(args):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=32))
    pb_grpc.add_TestServiceServicer_to_server(TestService(), server)
    port = server.add_insecure_port("127.0.0.1:%d" % args.port)
    server.start()
    print(port, flush=True)
    server.wait_for_termination()


# ---------------------------------------------------------------- client

class CaseFailed(Exception):
    pass


def check(cond, what):
    if not cond:
        raise CaseFailed(what)


def expect_code(fn, code, what):
    try:
        fn()
    except grpc.RpcError as err:
        check(err.code() == code, "%s: want %s, got %s (%s)" % (what, code, err.code(), err.details()))
        return err
    raise CaseFailed("%s: want %s, got OK" % (what, code))


def large_unary(stub, **kw):
    resp = stub.UnaryCall(pb.SimpleRequest(response_type=pb.COMPRESSABLE, response_size=314159,
                                           payload=_payload(271828)), timeout=30, **kw)
    check(len(resp.payload.body) == 314159, "large_unary: response size %d" % len(resp.payload.body))
    check(resp.payload.body == b"\0" * 314159, "large_unary: response body not zeros")


def case_empty_unary(stub, chan, args):
    resp = stub.EmptyCall(pb.Empty(), timeout=10)
    check(resp == pb.Empty(), "empty_unary: non-empty response")


def case_large_unary(stub, chan, args):
    large_unary(stub)


def case_client_compressed_unary(stub, chan, args):
    probe = pb.SimpleRequest(response_size=314159, payload=_payload(271828),
                             expect_compressed=pb.BoolValue(value=True))
    expect_code(lambda: stub.UnaryCall(probe, timeout=10), grpc.StatusCode.INVALID_ARGUMENT,
                "client_compressed_unary probe")
    for compressed in (True, False):
        req = pb.SimpleRequest(response_size=314159, payload=_payload(271828),
                               expect_compressed=pb.BoolValue(value=compressed))
        kw = {"compression": grpc.Compression.Gzip} if compressed else {}
        resp = stub.UnaryCall(req, timeout=10, **kw)
        check(len(resp.payload.body) == 314159, "client_compressed_unary: size")


def case_server_compressed_unary(stub, chan, args):
    for compressed in (True, False):
        req = pb.SimpleRequest(response_size=314159, payload=_payload(271828),
                               response_compressed=pb.BoolValue(value=compressed))
        resp = stub.UnaryCall(req, timeout=10)
        check(len(resp.payload.body) == 314159, "server_compressed_unary: size")


def case_client_streaming(stub, chan, args):
    sizes = [27182, 8, 1828, 45904]
    resp = stub.StreamingInputCall(iter([pb.StreamingInputCallRequest(payload=_payload(s)) for s in sizes]),
                                   timeout=10)
    check(resp.aggregated_payload_size == 74922, "client_streaming: %d" % resp.aggregated_payload_size)


def case_client_compressed_streaming(stub, chan, args):
    probe = pb.StreamingInputCallRequest(payload=_payload(27182), expect_compressed=pb.BoolValue(value=True))
    expect_code(lambda: stub.StreamingInputCall(iter([probe]), timeout=10),
                grpc.StatusCode.INVALID_ARGUMENT, "client_compressed_streaming probe")
    reqs = [pb.StreamingInputCallRequest(payload=_payload(27182), expect_compressed=pb.BoolValue(value=True)),
            pb.StreamingInputCallRequest(payload=_payload(45904), expect_compressed=pb.BoolValue(value=False))]
    resp = stub.StreamingInputCall(iter(reqs), timeout=10, compression=grpc.Compression.Gzip)
    check(resp.aggregated_payload_size == 73086, "client_compressed_streaming: %d" % resp.aggregated_payload_size)


def case_server_streaming(stub, chan, args):
    sizes = [31415, 9, 2653, 58979]
    req = pb.StreamingOutputCallRequest(response_parameters=[pb.ResponseParameters(size=s) for s in sizes])
    got = [len(r.payload.body) for r in stub.StreamingOutputCall(req, timeout=10)]
    check(got == sizes, "server_streaming: got sizes %s" % got)


def case_server_compressed_streaming(stub, chan, args):
    req = pb.StreamingOutputCallRequest(response_parameters=[
        pb.ResponseParameters(size=31415, compressed=pb.BoolValue(value=True)),
        pb.ResponseParameters(size=92653, compressed=pb.BoolValue(value=False))])
    got = [len(r.payload.body) for r in stub.StreamingOutputCall(req, timeout=10)]
    check(got == [31415, 92653], "server_compressed_streaming: got sizes %s" % got)


class _Feed:
    """A request iterator the test pushes into one message at a time."""

    def __init__(self):
        self._cv = threading.Condition()
        self._items = []
        self._closed = False

    def push(self, item):
        with self._cv:
            self._items.append(item)
            self._cv.notify()

    def close(self):
        with self._cv:
            self._closed = True
            self._cv.notify()

    def __iter__(self):
        return self

    def __next__(self):
        with self._cv:
            while not self._items and not self._closed:
                self._cv.wait()
            if self._items:
                return self._items.pop(0)
            raise StopIteration


def case_ping_pong(stub, chan, args):
    feed = _Feed()
    call = stub.FullDuplexCall(feed, timeout=10)
    for resp_size, req_size in ((31415, 27182), (9, 8), (2653, 1828), (58979, 45904)):
        feed.push(pb.StreamingOutputCallRequest(response_parameters=[pb.ResponseParameters(size=resp_size)],
                                                payload=_payload(req_size)))
        resp = next(call)
        check(len(resp.payload.body) == resp_size, "ping_pong: size %d" % len(resp.payload.body))
    feed.close()
    check(list(call) == [], "ping_pong: extra responses")
    check(call.code() == grpc.StatusCode.OK, "ping_pong: status %s" % call.code())


def case_empty_stream(stub, chan, args):
    got = list(stub.FullDuplexCall(iter([]), timeout=10))
    check(got == [], "empty_stream: got %d responses" % len(got))


def case_custom_metadata(stub, chan, args):
    md = ((ECHO_INITIAL, "test_initial_metadata_value"), (ECHO_TRAILING, b"\xab\xab\xab"))
    resp, call = stub.UnaryCall.with_call(pb.SimpleRequest(response_size=314159, payload=_payload(271828)),
                                          metadata=md, timeout=10)
    check(len(resp.payload.body) == 314159, "custom_metadata: size")
    _check_echo(call)
    feed = _Feed()
    call = stub.FullDuplexCall(feed, metadata=md, timeout=10)
    feed.push(pb.StreamingOutputCallRequest(response_parameters=[pb.ResponseParameters(size=314159)],
                                            payload=_payload(271828)))
    feed.close()
    got = [len(r.payload.body) for r in call]
    check(got == [314159], "custom_metadata: stream sizes %s" % got)
    _check_echo(call)


def _check_echo(call):
    initial = dict(call.initial_metadata())
    trailing = dict(call.trailing_metadata())
    check(initial.get(ECHO_INITIAL) == "test_initial_metadata_value",
          "custom_metadata: initial %r" % initial.get(ECHO_INITIAL))
    check(trailing.get(ECHO_TRAILING) == b"\xab\xab\xab",
          "custom_metadata: trailing %r" % trailing.get(ECHO_TRAILING))


def _status_case(stub, message, name):
    status = pb.EchoStatus(code=2, message=message)
    err = expect_code(lambda: stub.UnaryCall(pb.SimpleRequest(response_status=status), timeout=10),
                      grpc.StatusCode.UNKNOWN, name + " unary")
    check(err.details() == message, "%s unary: message %r" % (name, err.details()))
    call = stub.FullDuplexCall(iter([pb.StreamingOutputCallRequest(response_status=status)]), timeout=10)
    err = expect_code(lambda: list(call), grpc.StatusCode.UNKNOWN, name + " full duplex")
    check(err.details() == message, "%s full duplex: message %r" % (name, err.details()))


def case_status_code_and_message(stub, chan, args):
    _status_case(stub, "test status message", "status_code_and_message")


def case_special_status_message(stub, chan, args):
    msg = "\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \U0001f608\t\n"
    err = expect_code(lambda: stub.UnaryCall(pb.SimpleRequest(response_status=pb.EchoStatus(code=2, message=msg)),
                                             timeout=10), grpc.StatusCode.UNKNOWN, "special_status_message")
    check(err.details() == msg, "special_status_message: message %r" % err.details())


def case_unimplemented_method(stub, chan, args):
    expect_code(lambda: stub.UnimplementedCall(pb.Empty(), timeout=10),
                grpc.StatusCode.UNIMPLEMENTED, "unimplemented_method")


def case_unimplemented_service(stub, chan, args):
    other = pb_grpc.UnimplementedServiceStub(chan)
    expect_code(lambda: other.UnimplementedCall(pb.Empty(), timeout=10),
                grpc.StatusCode.UNIMPLEMENTED, "unimplemented_service")


def case_cancel_after_begin(stub, chan, args):
    future = stub.StreamingInputCall.future(_Feed(), timeout=10)
    future.cancel()
    check(future.cancelled(), "cancel_after_begin: not cancelled")


def case_cancel_after_first_response(stub, chan, args):
    feed = _Feed()
    call = stub.FullDuplexCall(feed, timeout=10)
    feed.push(pb.StreamingOutputCallRequest(response_parameters=[pb.ResponseParameters(size=31415)],
                                            payload=_payload(27182)))
    resp = next(call)
    check(len(resp.payload.body) == 31415, "cancel_after_first_response: size")
    call.cancel()
    check(call.code() == grpc.StatusCode.CANCELLED, "cancel_after_first_response: %s" % call.code())


def case_timeout_on_sleeping_server(stub, chan, args):
    feed = _Feed()
    call = stub.FullDuplexCall(feed, timeout=0.001)
    feed.push(pb.StreamingOutputCallRequest(payload=_payload(27182)))
    expect_code(lambda: list(call), grpc.StatusCode.DEADLINE_EXCEEDED, "timeout_on_sleeping_server")


def case_rpc_soak(stub, chan, args):
    for _ in range(args.soak_iterations):
        large_unary(stub)


def case_channel_soak(stub, chan, args):
    for _ in range(args.soak_iterations):
        with grpc.insecure_channel(args.target) as fresh:
            large_unary(pb_grpc.TestServiceStub(fresh))


CASES = [name[len("case_"):] for name in list(globals()) if name.startswith("case_")]


def run_client(args):
    names = CASES if args.test_case == "all" else args.test_case.split(",")
    skip = set(args.skip.split(",")) if args.skip else set()
    names = [n for n in names if n not in skip]
    unknown = [n for n in names if n not in CASES]
    if unknown:
        print("unknown test case(s): %s; known: %s" % (", ".join(unknown), ", ".join(CASES)), file=sys.stderr)
        return 2
    args.target = "%s:%d" % (args.server_host, args.server_port)
    failed = 0
    with grpc.insecure_channel(args.target) as chan:
        stub = pb_grpc.TestServiceStub(chan)
        for name in names:
            try:
                globals()["case_" + name](stub, chan, args)
                print("PASS %s" % name, flush=True)
            except (CaseFailed, grpc.RpcError) as err:
                failed += 1
                print("FAIL %s: %s" % (name, err), flush=True)
    print("%d passed, %d failed" % (len(names) - failed, failed), flush=True)
    return 1 if failed else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="role", required=True)
    srv = sub.add_parser("server")
    srv.add_argument("--port", type=int, default=0)
    srv.add_argument("--use_tls", default="false")
    cli = sub.add_parser("client")
    cli.add_argument("--server_host", default="127.0.0.1")
    cli.add_argument("--server_port", type=int, required=True)
    cli.add_argument("--test_case", default="all")
    cli.add_argument("--soak_iterations", type=int, default=10)
    cli.add_argument("--skip", default="", help="comma-separated cases to leave out")
    cli.add_argument("--use_tls", default="false")
    args = parser.parse_args()
    if args.use_tls not in ("false", "False", "0"):
        parser.error("TLS is not supported by this peer")
    if args.role == "server":
        serve(args)
        return 0
    return run_client(args)


if __name__ == "__main__":
    sys.exit(main())
