#!/usr/bin/env bash
# The cost of logging at the shipped default level against logging off, A/B
# in one run, alternating: RS256 refresh over native gRPC, 8 chains, the
# server pinned to core 0 with its stderr in a file (as under Kubernetes),
# the load generator on core 1.
#   tools/bench/logging.sh [rounds] [seconds]      (default 3 rounds of 8 s)
# Prints one line per run and the on/off ratio per round; see BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${1:-3}
DUR=${2:-8}
# shellcheck source=tools/bench/common.sh
. tools/bench/common.sh
ensure_release_build
WORK=$(mktemp -d)
PORT=$(free_port)
trap 'stop_server; rm -rf "$WORK"' EXIT
write_users "$WORK/users.toml" bench@example.com bench-password 4
write_server_config "$WORK/tokengate.toml" "$PORT" RS256 <<TOML
[token]
refresh_ttl = 1000000
TOML

# run LEVEL: refreshes per second with RUST_LOG=LEVEL; prints the run's
# line to stderr and the rate to stdout. A run with any failed call counts
# for nothing (the script stops).
run() {
  local level=$1 report rate errors
  SERVER_LOG=$level start_server "$WORK/tokengate.toml" "$PORT"
  report=$(BENCH_PW=bench-password taskset -c 1 "$BIN"/tokengate-load --target "http://127.0.0.1:$PORT" \
    --protocol grpc --scenario refresh-chain --domain domain-bench --user bench@example.com \
    --password-env BENCH_PW -c 1 -m 8 -d "$DUR" --warmup 1 --json)
  stop_server
  rate=$(jq -r '.calls[] | select(.call == "refresh") | .ok_rps' <<<"$report")
  errors=$(jq -r '[.calls[].errors_total] | add' <<<"$report")
  printf '%-5s refresh/s %8.1f  failed %s  log lines %s\n' "$level" "$rate" "$errors" \
    "$(wc -l <"$WORK/server.log")" >&2
  : >"$WORK/server.log"
  [ "$errors" = 0 ] || { echo "a run saw failed calls: not counted" >&2; exit 1; }
  echo "$rate"
}

for round in $(seq 1 "$ROUNDS"); do
  # Alternate which goes first, so drift in the machine favours neither.
  if ((round % 2)); then
    on=$(run info); off=$(run off)
  else
    off=$(run off); on=$(run info)
  fi
  awk -v r="$round" -v on="$on" -v off="$off" \
    'BEGIN { printf "round %d: info %.1f / off %.1f = %.1f %%\n", r, on, off, 100 * on / off }'
done
