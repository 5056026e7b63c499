#!/usr/bin/env bash
# get_public_key over native gRPC, gRPC-Web (h2, h1) and REST against one release
# server pinned to core 0, load on core 1: DUR=6 tools/bench/get-public-key.sh
set -e
cd "$(dirname "$0")/../.."
BIN=target/release
[ -x $BIN/tokengate ] && [ -x $BIN/tokengate-load ] || cargo build --release --locked -p tokengate -p tokengate-load
pkill -f "listen 127.0.0.1:50800" 2>/dev/null || true; sleep 0.3
DATA=$(mktemp -d)
RUST_LOG=${SERVER_LOG:-warn} taskset -c 0 $BIN/tokengate serve --data-dir "$DATA" --listen 127.0.0.1:50800 >/dev/null 2>&1 &
sleep 2
for p in "grpc" "grpc-web --http 2" "grpc-web --http 1" "rest"; do
  taskset -c 1 $BIN/tokengate-load --target http://127.0.0.1:50800 --protocol $p --scenario get-public-key -c 4 -m 16 -d ${DUR:-5} --warmup 1 2>&1 | grep -E "calls|latency"
done
pkill -f "listen 127.0.0.1:50800"
rm -rf "$DATA"
