#!/usr/bin/env bash
# What confirming rotations costs: refresh throughput of one release binary
# on a Redis master with one replica, `store.replica_acks` 0 (A) vs 1 (B),
# alternating in one run (the order flips each round). EdDSA refresh
# chains (4 x 16) over native gRPC, the server on core 0 at the shipped log
# level, the load generator on core 1, Redis master and replica unpinned.
#   tools/bench/replica-acks.sh [rounds] [seconds]   (default 3, 6)
# Prints one line per run and the B/A ratio per round; see BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${1:-3}
DUR=${2:-6}
# shellcheck source=tools/bench/common.sh
. tools/bench/common.sh
ensure_release_build
WORK=$(mktemp -d)
PORT=$(free_port)
MASTER=$(free_port)
REPLICA=$(free_port)
PIDS=()
trap 'stop_server; kill "${PIDS[@]}" 2>/dev/null || true; rm -rf "$WORK"' EXIT
# --dir: a replica's first sync writes an RDB file even with --save "";
# keep it in the scratch directory, not the checkout.
redis-server --port "$MASTER" --bind 127.0.0.1 --save "" --appendonly no \
  --dir "$WORK" >/dev/null 2>&1 &
PIDS+=($!)
redis-server --port "$REPLICA" --bind 127.0.0.1 --save "" --appendonly no \
  --dir "$WORK" --replicaof 127.0.0.1 "$MASTER" >/dev/null 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do
  redis-cli -p "$REPLICA" info replication 2>/dev/null | grep -q 'master_link_status:up' && break
  sleep 0.1
done
write_users "$WORK/users.toml" bench@example.com bench-password 4

# measure ACKS: refresh calls/s with store.replica_acks = ACKS (0 errors, or exit).
measure() {
  local acks=$1 report rate errors
  write_server_config "$WORK/tokengate.toml" "$PORT" EdDSA <<TOML
[token]
refresh_ttl = 1000000
[store]
redis_url = "redis://127.0.0.1:$MASTER/0"
replica_acks = $acks
TOML
  SERVER_LOG=info start_server "$WORK/tokengate.toml" "$PORT"
  report=$(BENCH_PW=bench-password taskset -c 1 "$BIN"/tokengate-load --target "http://127.0.0.1:$PORT" \
    --protocol grpc --scenario refresh-chain --domain domain-bench --user bench@example.com \
    --password-env BENCH_PW -c 4 -m 16 -d "$DUR" --warmup 1 --json)
  stop_server
  rate=$(jq -r '.calls[] | select(.call == "refresh") | .ok_rps' <<<"$report")
  errors=$(jq -r '[.calls[].errors_total] | add' <<<"$report")
  printf 'replica_acks=%s refresh %10.1f/s  failed %s\n' "$acks" "$rate" "$errors" >&2
  [ "$errors" = 0 ] || { echo "a run saw failed calls: not counted" >&2; exit 1; }
  echo "$rate"
}

for round in $(seq 1 "$ROUNDS"); do
  if ((round % 2)); then
    a=$(measure 0); b=$(measure 1)
  else
    b=$(measure 1); a=$(measure 0)
  fi
  awk -v r="$round" -v a="$a" -v b="$b" \
    'BEGIN { printf "refresh round %d: acks 0 %.1f / acks 1 %.1f  B/A = %.1f %%\n", r, a, b, 100 * b / a }'
done
