"""Generate the Python stubs for protos/ into a temporary directory.

Generated code is never committed: every run (the suite, the reference
server) compiles the protos afresh with ``python -m grpc_tools.protoc``.
The health proto is compiled with its own directory as the include root so
that its modules are plain ``health_pb2`` / ``health_pb2_grpc`` and do not
collide with the installed ``grpc`` package; its proto package stays
``grpc.health.v1``, which is all the wire cares about.
"""

import atexit
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
PROTOS = os.path.join(HERE, "protos")
HEALTH_DIR = os.path.join(PROTOS, "grpc", "health", "v1")

_out_dir = None


def _protoc(include, proto, out):
    cmd = [
        sys.executable, "-m", "grpc_tools.protoc",
        "-I", include,
        "--python_out", out,
        "--grpc_python_out", out,
        proto,
    ]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(
            "protoc failed (%s):\n%s\n%s" % (" ".join(cmd), res.stdout, res.stderr))


def generate():
    """Compile the protos once per process; put them on sys.path; return the dir."""
    global _out_dir
    if _out_dir is not None:
        return _out_dir
    out = tempfile.mkdtemp(prefix="miotest-stubs-")
    atexit.register(shutil.rmtree, out, True)
    _protoc(PROTOS, os.path.join(PROTOS, "echo.proto"), out)
    _protoc(HEALTH_DIR, os.path.join(HEALTH_DIR, "health.proto"), out)
    sys.path.insert(0, out)
    _out_dir = out
    return out
