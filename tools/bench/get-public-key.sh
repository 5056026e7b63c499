#!/usr/bin/env bash
# get_public_key over native gRPC, gRPC-Web (h2, h1) and REST against one release
# server pinned to core 0, load on core 1: DUR=6 tools/bench/get-public-key.sh
set -e
cd "$(dirname "$0")/../.."
# shellcheck source=tools/bench/common.sh
. tools/bench/common.sh
ensure_release_build
pkill -f "listen 127.0.0.1:50800" 2>/dev/null || true; sleep 0.3
DATA=$(mktemp -d)
RUST_LOG=${SERVER_LOG:-warn} taskset -c 0 $BIN/tokengate serve --data-dir "$DATA" --listen 127.0.0.1:50800 >/dev/null 2>&1 &
sleep 2
# $p is split on purpose: "grpc-web --http 2" is a protocol and its option.
for p in "grpc" "grpc-web --http 2" "grpc-web --http 1" "rest"; do
  # shellcheck disable=SC2086
  taskset -c 1 $BIN/tokengate-load --target http://127.0.0.1:50800 --protocol $p --scenario get-public-key -c 4 -m 16 -d "${DUR:-5}" --warmup 1 2>&1 | grep -E "calls|latency"
done
pkill -f "listen 127.0.0.1:50800"
rm -rf "$DATA"
