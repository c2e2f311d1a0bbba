"""Reference implementation of the test-server contract on grpcio's own server.

Not what the suite is for (that is examples/grpc_test_server.rs); this exists
so the suite itself can be checked against C-core on both ends:

    bash tests/grpcio/run.sh --reference

Same command line as the Rust example: ``--port 0`` (prints the port as the
first stdout line), ``--max-recv N`` and ``--gzip`` (compress responses).
"""

import argparse
import sys
import threading
import time
from concurrent import futures

import grpc

import protogen

protogen.generate()
import echo_pb2  # noqa: E402
import echo_pb2_grpc  # noqa: E402
import health_pb2  # noqa: E402
import health_pb2_grpc  # noqa: E402

CODES = {c.value[0]: c for c in grpc.StatusCode}


def _sleep(context, ms):
    if ms <= 0:
        return
    done = threading.Event()
    context.add_callback(done.set)
    done.wait(ms / 1000.0)


def _echo_md(request, context):
    if not request.echo_metadata:
        return None
    md = tuple((k, v) for k, v in context.invocation_metadata() if k.startswith("x-"))
    context.send_initial_metadata(md)
    return md


def _finish_error(request, context, md):
    if request.status_code == 0:
        return False
    trailing = list(md or ())
    if request.status_details:
        trailing.append(("grpc-status-details-bin", request.status_details))
    if trailing:
        context.set_trailing_metadata(tuple(trailing))
    context.set_code(CODES[request.status_code])
    context.set_details(request.status_message)
    return True


def _response(request, index=0):
    payload = b"\0" * request.response_size if request.response_size > 0 else request.payload
    return echo_pb2.EchoResponse(message=request.message, payload=payload, index=index)


class Echo(echo_pb2_grpc.EchoServicer):
    def Unary(self, request, context):
        md = _echo_md(request, context)
        _sleep(context, request.sleep_ms)
        if _finish_error(request, context, md):
            return echo_pb2.EchoResponse()
        if md is not None:
            context.set_trailing_metadata(md)
        return _response(request)

    def ClientStream(self, request_iterator, context):
        msgs, total, count, last = [], 0, 0, None
        for req in request_iterator:
            msgs.append(req.message)
            total += len(req.payload)
            count += 1
            last = req
        if last is not None:
            _sleep(context, last.sleep_ms)
            if _finish_error(last, context, None):
                return echo_pb2.EchoResponse()
        return echo_pb2.EchoResponse(message="".join(msgs), total_bytes=total, count=count)

    def ServerStream(self, request, context):
        md = _echo_md(request, context)
        _sleep(context, request.sleep_ms)
        for i in range(request.response_count):
            if not context.is_active():
                return
            yield _response(request, i)
        if _finish_error(request, context, md):
            return
        if md is not None:
            context.set_trailing_metadata(md)

    def Bidi(self, request_iterator, context):
        for i, req in enumerate(request_iterator):
            _sleep(context, req.sleep_ms)
            if _finish_error(req, context, None):
                return
            yield _response(req, i)


class Health(health_pb2_grpc.HealthServicer):
    KNOWN = {"", "miotest.Echo"}

    def Check(self, request, context):
        if request.service not in self.KNOWN:
            context.abort(grpc.StatusCode.NOT_FOUND, "unknown service")
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)

    def Watch(self, request, context):
        st = (health_pb2.HealthCheckResponse.SERVING if request.service in self.KNOWN
              else health_pb2.HealthCheckResponse.SERVICE_UNKNOWN)
        yield health_pb2.HealthCheckResponse(status=st)
        done = threading.Event()
        context.add_callback(done.set)
        done.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--max-recv", type=int, default=4 * 1024 * 1024)
    ap.add_argument("--gzip", action="store_true", help="compress responses")
    args = ap.parse_args()
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=256),
        options=[("grpc.max_receive_message_length", args.max_recv),
                 ("grpc.max_send_message_length", -1)],
        compression=grpc.Compression.Gzip if args.gzip else None,
    )
    echo_pb2_grpc.add_EchoServicer_to_server(Echo(), server)
    health_pb2_grpc.add_HealthServicer_to_server(Health(), server)
    port = server.add_insecure_port("127.0.0.1:%d" % args.port)
    server.start()
    print(port, flush=True)
    try:
        server.wait_for_termination()
    except KeyboardInterrupt:
        server.stop(0)


if __name__ == "__main__":
    sys.exit(main())
