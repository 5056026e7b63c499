#!/usr/bin/env bash
# Refresh throughput of the release binary, server pinned to core 0 and the
# load generator to core 1, for each key algorithm and store:
#   tools/bench/refresh.sh [seconds]        (default 8)
# Prints one summary line per run; see BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
DUR=${1:-8}
# shellcheck source=tools/bench/common.sh
. tools/bench/common.sh
ensure_release_build
WORK=$(mktemp -d)
REDIS_PORT=$(free_port)
PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize no >/dev/null 2>&1 &
REDIS_PID=$!
trap 'stop_server; kill $REDIS_PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
# bcrypt cost 4: logins are cheap, so the run measures refreshes.
write_users "$WORK/users.toml" bench@example.com bench-password 4
run() { # algorithm store protocol
  local alg=$1 store=$2 proto=$3 extra=""
  [ "$store" = redis ] && extra="[store]
redis_url = \"redis://127.0.0.1:$REDIS_PORT/0\"
key_prefix = \"bench-$alg:\""
  rm -rf "$WORK/keys"
  write_server_config "$WORK/tokengate.toml" "$PORT" "$alg" <<TOML
[token]
refresh_ttl = 1000000
$extra
TOML
  start_server "$WORK/tokengate.toml" "$PORT"
  printf '%-6s %-7s %-9s ' "$alg" "$store" "$proto"
  BENCH_PW=bench-password taskset -c 1 $BIN/tokengate-load --target "http://127.0.0.1:$PORT" \
    --protocol "$proto" --scenario refresh-chain --domain domain-bench --user bench@example.com \
    --password-env BENCH_PW -c 4 -m 16 -d "$DUR" --warmup 1 | grep -A1 -E "^refresh " | tr -s ' ' | tr '\n' ' '
  echo
  stop_server
}
for alg in RS256 ES256 EdDSA; do
  for store in memory redis; do
    run "$alg" "$store" grpc
  done
done
