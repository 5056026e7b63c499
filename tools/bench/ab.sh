#!/usr/bin/env bash
# A/B of two server binaries in one run, alternating (the order flips each
# round, so drift in the machine favours neither): refresh (EdDSA, memory
# store, native gRPC, 4 x 16 chains) and get_public_key (native gRPC,
# 4 x 16), the server pinned to core 0 at the shipped log level, the load
# generator (this checkout's) on core 1.
#   tools/bench/ab.sh A_BINARY B_BINARY [rounds] [seconds]   (default 3, 6)
# LEVEL=warn measures with less logging (default: info, the shipped level);
# STORE=redis keeps refresh state in a private redis-server (default memory).
# Prints one line per run and the B/A ratio per round; see BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
A=$(realpath "$1")
B=$(realpath "$2")
ROUNDS=${3:-3}
DUR=${4:-6}
# shellcheck source=tools/bench/common.sh
. tools/bench/common.sh
ensure_release_build
WORK=$(mktemp -d)
PORT=$(free_port)
PID=""
stop() { [ -z "$PID" ] || { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; PID=""; }; }
trap 'stop; rm -rf "$WORK"' EXIT
write_users "$WORK/users.toml" bench@example.com bench-password 4
STORE_TOML=""
if [ "${STORE:-memory}" = redis ]; then
  REDIS_PORT=$(free_port)
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no >/dev/null 2>&1 &
  REDIS_PID=$!
  trap 'stop; kill $REDIS_PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
  STORE_TOML="[store]
redis_url = \"redis://127.0.0.1:$REDIS_PORT/0\""
fi
write_server_config "$WORK/tokengate.toml" "$PORT" EdDSA <<TOML
[token]
refresh_ttl = 1000000
$STORE_TOML
TOML

# measure BINARY SCENARIO: calls/s of SCENARIO's main call (0 errors, or exit).
measure() {
  local binary=$1 scenario=$2 call report rate errors
  RUST_LOG=${LEVEL:-info} taskset -c 0 "$binary" serve --config "$WORK/tokengate.toml" 2>>"$WORK/server.log" &
  PID=$!
  wait_healthy "$PORT"
  case $scenario in
    refresh-chain) call=refresh ;;
    *) call=get_public_key ;;
  esac
  report=$(BENCH_PW=bench-password taskset -c 1 "$BIN"/tokengate-load --target "http://127.0.0.1:$PORT" \
    --protocol grpc --scenario "$scenario" --domain domain-bench --user bench@example.com \
    --password-env BENCH_PW -c 4 -m 16 -d "$DUR" --warmup 1 --json)
  stop
  rate=$(jq -r --arg c "$call" '.calls[] | select(.call == $c) | .ok_rps' <<<"$report")
  errors=$(jq -r '[.calls[].errors_total] | add' <<<"$report")
  printf '%s %-14s %10.1f/s  failed %s\n' "$(basename "$(dirname "$(dirname "$(dirname "$binary")")")")" \
    "$scenario" "$rate" "$errors" >&2
  [ "$errors" = 0 ] || { echo "a run saw failed calls: not counted" >&2; exit 1; }
  echo "$rate"
}

for scenario in refresh-chain get-public-key; do
  for round in $(seq 1 "$ROUNDS"); do
    if ((round % 2)); then
      a=$(measure "$A" "$scenario"); b=$(measure "$B" "$scenario")
    else
      b=$(measure "$B" "$scenario"); a=$(measure "$A" "$scenario")
    fi
    awk -v s="$scenario" -v r="$round" -v a="$a" -v b="$b" \
      'BEGIN { printf "%s round %d: A %.1f / B %.1f  B/A = %.1f %%\n", s, r, a, b, 100 * b / a }'
  done
done
