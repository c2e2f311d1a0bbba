"""Fixtures for the grpcio end-to-end suite.

The servers under test are found through the environment:

* ``GRPC_TEST_PORT``       - the default instance (4 MiB max receive)
* ``GRPC_TEST_SMALL_PORT`` - the instance started with ``--max-recv 1024``
* ``GRPC_TEST_GZIP_PORT``  - the instance started with ``--gzip`` (it
  compresses its responses)

``run.sh`` starts both and sets these. When they are unset (running pytest by
hand), the fixtures start the servers themselves from ``GRPC_TEST_SERVER``
(default: ``target/release/examples/grpc_test_server``; build it first).
"""

import os
import shlex
import subprocess
import sys
import threading

import grpc
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import protogen  # noqa: E402

protogen.generate()

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


class _Spawned:
    def __init__(self, extra_args):
        cmd = os.environ.get("GRPC_TEST_SERVER")
        if cmd:
            argv = shlex.split(cmd)
        else:
            target = os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target"))
            argv = [os.path.join(target, "release", "examples", "grpc_test_server")]
        argv += ["--port", "0"] + extra_args
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, cwd=REPO)
        box = {}
        t = threading.Thread(target=lambda: box.setdefault("line", self.proc.stdout.readline()))
        t.daemon = True
        t.start()
        t.join(30)
        line = box.get("line", b"").decode().strip()
        if not line:
            self.proc.kill()
            raise RuntimeError("server %r printed no port" % argv)
        self.port = int(line.rsplit(":", 1)[-1])
        # Keep draining stdout so the server never blocks on a full pipe.
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def _server_port(env, extra_args, request):
    if os.environ.get(env):
        return int(os.environ[env])
    spawned = _Spawned(extra_args)
    request.addfinalizer(spawned.stop)
    return spawned.port


@pytest.fixture(scope="session")
def server_addr(request):
    return "127.0.0.1:%d" % _server_port("GRPC_TEST_PORT", [], request)


@pytest.fixture(scope="session")
def small_server_addr(request):
    return "127.0.0.1:%d" % _server_port("GRPC_TEST_SMALL_PORT", ["--max-recv", "1024"], request)


@pytest.fixture(scope="session")
def gzip_server_addr(request):
    return "127.0.0.1:%d" % _server_port("GRPC_TEST_GZIP_PORT", ["--gzip"], request)


@pytest.fixture
def channel(server_addr):
    ch = grpc.insecure_channel(server_addr)
    grpc.channel_ready_future(ch).result(timeout=10)
    yield ch
    ch.close()


@pytest.fixture
def small_channel(small_server_addr):
    ch = grpc.insecure_channel(small_server_addr)
    grpc.channel_ready_future(ch).result(timeout=10)
    yield ch
    ch.close()


@pytest.fixture
def gzip_channel(gzip_server_addr):
    ch = grpc.insecure_channel(gzip_server_addr)
    grpc.channel_ready_future(ch).result(timeout=10)
    yield ch
    ch.close()
