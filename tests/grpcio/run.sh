#!/usr/bin/env bash
# End-to-end tests of the gRPC server with the real gRPC C-core client (grpcio).
#
#   bash tests/grpcio/run.sh              # build examples/grpc_test_server, test it
#   bash tests/grpcio/run.sh --reference  # test grpcio's own server instead (checks the suite)
#   bash tests/grpcio/run.sh -- -k gzip   # anything after -- goes to pytest
#   bash tests/grpcio/run.sh --client     # our client (examples/grpc_test_client) against grpcio's server
#   bash tests/grpcio/run.sh --client -- --case metadata_echo   # args after -- go to grpc_test_client
#
# Needs python3 (>= 3.9) with pip, and cargo. Installs pinned grpcio,
# grpcio-tools and pytest with pip (set GRPCIO_SKIP_PIP=1 to skip). Starts
# three server instances on ephemeral ports (the default one, one with
# --max-recv 1024, one with --gzip that compresses its responses), runs
# pytest, stops the servers, exits with pytest's status.
#
# --client turns it around: builds examples/grpc_test_client, starts
# reference_server.py twice (default, and --gzip), runs the client's cases
# against them (`--case all` unless given after --), exits with its status.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
cd "$REPO"

PYTHON="${PYTHON:-python3}"
MODE=rust
PYTEST_ARGS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --reference) MODE=reference; shift ;;
        --client) MODE=client; shift ;;
        --) shift; PYTEST_ARGS=("$@"); break ;;
        *) echo "usage: $0 [--reference | --client] [-- pytest (or grpc_test_client) args...]" >&2; exit 2 ;;
    esac
done

export PYTHONDONTWRITEBYTECODE=1

if [ -z "${GRPCIO_SKIP_PIP:-}" ]; then
    "$PYTHON" -m pip install -q --disable-pip-version-check \
        "grpcio==1.85.1" "grpcio-tools==1.85.1" "pytest==8.4.2"
fi

TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
if [ "$MODE" = rust ]; then
    cargo build --release --example grpc_test_server
    SERVER=("$TARGET_DIR/release/examples/grpc_test_server")
else
    if [ "$MODE" = client ]; then
        cargo build --release --example grpc_test_client
    fi
    SERVER=("$PYTHON" "$HERE/reference_server.py")
fi

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

# start_server NAME ARGS... : starts one instance, sets PORT to the port it printed.
start_server() {
    local name="$1"; shift
    : >"$WORK/$name.out"
    "${SERVER[@]}" --port 0 "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
    local pid=$!
    PIDS+=("$pid")
    eval "${name}_PID=$pid"
    # Up to 30 s for the first stdout line (a complete line: ends in a newline).
    for _ in $(seq 1 300); do
        if [ "$(wc -l <"$WORK/$name.out")" -ge 1 ]; then
            break
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "server '$name' exited before printing its port:" >&2
            cat "$WORK/$name.err" >&2
            exit 1
        fi
        sleep 0.1
    done
    local line
    line="$(head -n 1 "$WORK/$name.out")"
    PORT="$(printf '%s' "$line" | grep -oE '[0-9]+$' || true)"
    if [ -z "$PORT" ]; then
        echo "server '$name' did not print a port as its first stdout line (got: '$line')" >&2
        cat "$WORK/$name.err" >&2
        exit 1
    fi
}

start_server default
export GRPC_TEST_PORT="$PORT"

if [ "$MODE" = client ]; then
    DEFAULT_PORT="$PORT"
    start_server gzip --gzip
    GZIP_PORT="$PORT"
    echo "grpcio reference servers: default on $DEFAULT_PORT, --gzip on $GZIP_PORT"
    CLIENT_ARGS=("${PYTEST_ARGS[@]+"${PYTEST_ARGS[@]}"}")
    if [ "${#CLIENT_ARGS[@]}" -eq 0 ]; then
        CLIENT_ARGS=(--case all)
    fi
    status=0
    timeout --kill-after=10 600 "$TARGET_DIR/release/examples/grpc_test_client" \
        --port "$DEFAULT_PORT" --gzip-port "$GZIP_PORT" "${CLIENT_ARGS[@]}" || status=$?
    for name in default gzip; do
        pid_var="${name}_PID"
        if ! kill -0 "${!pid_var}" 2>/dev/null; then
            echo "FAIL: reference server '$name' died during the run; its stderr:" >&2
            cat "$WORK/$name.err" >&2
            [ "$status" -eq 0 ] && status=1
        elif [ "$status" -ne 0 ] && [ -s "$WORK/$name.err" ]; then
            echo "--- reference server '$name' stderr (last 50 lines) ---" >&2
            tail -n 50 "$WORK/$name.err" >&2
        fi
    done
    exit "$status"
fi

start_server small --max-recv 1024
export GRPC_TEST_SMALL_PORT="$PORT"
start_server gzip --gzip
export GRPC_TEST_GZIP_PORT="$PORT"
echo "servers ($MODE): default on $GRPC_TEST_PORT, --max-recv 1024 on $GRPC_TEST_SMALL_PORT," \
    "--gzip on $GRPC_TEST_GZIP_PORT"

status=0
timeout --kill-after=10 300 "$PYTHON" -m pytest "$HERE" -p no:cacheprovider -q -rfE \
    "${PYTEST_ARGS[@]+"${PYTEST_ARGS[@]}"}" || status=$?

for name in default small gzip; do
    pid_var="${name}_PID"
    if ! kill -0 "${!pid_var}" 2>/dev/null; then
        echo "FAIL: server '$name' died during the tests; its stderr:" >&2
        cat "$WORK/$name.err" >&2
        [ "$status" -eq 0 ] && status=1
    fi
done
if [ "$status" -ne 0 ]; then
    for name in default small gzip; do
        if [ -s "$WORK/$name.err" ]; then
            echo "--- server '$name' stderr (last 50 lines) ---" >&2
            tail -n 50 "$WORK/$name.err" >&2
        fi
    done
fi
exit "$status"
