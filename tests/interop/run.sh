#!/usr/bin/env bash
# The gRPC interop suite (grpc/grpc doc/interop-test-descriptions.md) in
# four pairings: our client against our server, our client against
# grpcio's server, grpcio's client against our server, and grpcio against
# grpcio (which checks the Python peer itself).
#
#   bash tests/interop/run.sh            # all four pairings
#   GRPCIO_SKIP_PIP=1 bash tests/interop/run.sh   # grpcio already installed
#
# Ours: examples/interop_server and examples/interop_client. grpcio's:
# tests/interop/interop_peer.py. Exits non-zero if any case fails in any
# pairing. Against a grpcio server the client_compressed_* cases are left
# out: grpcio's server cannot tell a handler whether a request arrived
# compressed (grpc/grpc's own interop matrix skips them for Python servers).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
cd "$REPO"
PYTHON="${PYTHON:-python3}"
export PYTHONDONTWRITEBYTECODE=1

if [ -z "${GRPCIO_SKIP_PIP:-}" ]; then
    "$PYTHON" -m pip install -q --disable-pip-version-check "grpcio==1.85.1" "grpcio-tools==1.85.1"
fi
cargo build --release --example interop_server --example interop_client
TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
OUR_SERVER=("$TARGET_DIR/release/examples/interop_server")
OUR_CLIENT=("$TARGET_DIR/release/examples/interop_client")
PY_SERVER=("$PYTHON" "$HERE/interop_peer.py" server)
PY_CLIENT=("$PYTHON" "$HERE/interop_peer.py" client)
PY_SERVER_SKIP="client_compressed_unary,client_compressed_streaming"

WORK="$(mktemp -d)"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

# start_server NAME CMD... : starts a server with --port 0, sets PORT.
start_server() {
    local name="$1"; shift
    "$@" --port 0 >"$WORK/$name.out" 2>"$WORK/$name.err" &
    local pid=$!
    PIDS+=("$pid")
    for _ in $(seq 1 300); do
        if [ "$(wc -l <"$WORK/$name.out")" -ge 1 ]; then
            PORT="$(head -n 1 "$WORK/$name.out" | tr -dc '0-9')"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "server '$name' exited before printing its port:" >&2
            cat "$WORK/$name.err" >&2
            exit 1
        fi
        sleep 0.1
    done
    echo "server '$name' printed no port in 30 s" >&2
    exit 1
}

start_server ours "${OUR_SERVER[@]}"
OURS_PORT="$PORT"
start_server grpcio "${PY_SERVER[@]}"
PY_PORT="$PORT"

FAILED=()
# pairing NAME PORT SKIP CLIENT... : runs every case (but SKIP) and records a failure.
pairing() {
    local name="$1" port="$2" skip="$3"; shift 3
    echo "== $name"
    local args=(--server_host 127.0.0.1 --server_port "$port" --test_case all)
    if [ -n "$skip" ]; then
        args+=(--skip "$skip")
    fi
    if ! timeout 300 "$@" "${args[@]}"; then
        FAILED+=("$name")
    fi
}

pairing "mio-grpc client -> mio-grpc server" "$OURS_PORT" "" "${OUR_CLIENT[@]}"
pairing "mio-grpc client -> grpcio server" "$PY_PORT" "$PY_SERVER_SKIP" "${OUR_CLIENT[@]}"
pairing "grpcio client -> mio-grpc server" "$OURS_PORT" "" "${PY_CLIENT[@]}"
pairing "grpcio client -> grpcio server" "$PY_PORT" "$PY_SERVER_SKIP" "${PY_CLIENT[@]}"

if [ "${#FAILED[@]}" -gt 0 ]; then
    echo "interop: failed pairings: ${FAILED[*]}" >&2
    exit 1
fi
echo "interop: all four pairings passed"
