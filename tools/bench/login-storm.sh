#!/usr/bin/env bash
# Login storm isolation: does a saturated password pool leave the rest of the
# server responsive? Server pinned to core 0, load to core 1:
#   tools/bench/login-storm.sh [seconds]        (default 10)
# 1. quiet: get_public_key (gRPC) and /healthz (HTTP/1.1), each paced at
#    PROBE_RATE calls/s (default 200), alone;
# 2. storm: the same two probes while `issue` with a bcrypt-10 password runs
#    with 2 x 16 calls in flight (the pool has one worker on one core);
# 3. the same storm with the password threads put back to nice 0, to show
#    what their lower priority buys (needs root for renice; skipped otherwise).
# Prints rps and latency per probe; see BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
DUR=${1:-10}
PROBE_RATE=${PROBE_RATE:-200}
# shellcheck source=tools/bench/common.sh
. tools/bench/common.sh
ensure_release_build
WORK=$(mktemp -d)
PORT=$(free_port)
trap 'stop_server; rm -rf "$WORK"' EXIT
write_users "$WORK/users.toml" storm@example.com storm-password 10
write_server_config "$WORK/tokengate.toml" "$PORT" EdDSA <<TOML
[token]
password_queue = 64
TOML
start_server "$WORK/tokengate.toml" "$PORT"

LOAD=(taskset -c 1 "$BIN/tokengate-load" --target "http://127.0.0.1:$PORT" --domain domain-bench)
# The probes are paced (what health checks and key fetches look like), so
# they measure the server's latency without taking its CPU themselves.
probes() { # label
  "${LOAD[@]}" --protocol grpc --scenario get-public-key -c 1 -m 2 --rate "$PROBE_RATE" \
    -d "$DUR" --warmup 0 >"$WORK/gpk.txt" &
  local gpk=$!
  "${LOAD[@]}" --protocol rest --scenario healthz -c 1 -m 2 --rate "$PROBE_RATE" \
    -d "$DUR" --warmup 0 >"$WORK/healthz.txt"
  wait $gpk
  echo "== $1"
  echo "get_public_key (gRPC, $PROBE_RATE/s):"
  grep -E "^get_public_key|latency|error" "$WORK/gpk.txt" | sed 's/^/  /'
  echo "/healthz (HTTP/1.1, $PROBE_RATE/s):"
  grep -E "^healthz|latency|error" "$WORK/healthz.txt" | sed 's/^/  /'
}
issued() { # the server's own count of successful logins
  curl -s "http://127.0.0.1:$PORT/metrics" | awk '/^tokengate_tokens_issued_total/ {print $2}'
}
storm() { # label
  # 8 logins in flight against one password worker: the pool is always
  # saturated (7 waiting), and calls stay short enough to finish inside the
  # window. The rate comes from the server's counter over the probe window.
  STORM_PW=storm-password "${LOAD[@]}" --protocol grpc --scenario issue --user storm@example.com \
    --password-env STORM_PW -c 2 -m 4 -d "$((DUR + 1))" --warmup 2 >"$WORK/storm.txt" &
  local storm_pid=$!
  sleep 2
  local before after
  before=$(issued)
  probes "$1"
  after=$(issued)
  wait $storm_pid
  echo "issue storm (gRPC, 2 x 4 in flight, bcrypt cost 10):"
  grep -E "^issue|latency|error" "$WORK/storm.txt" | sed 's/^/  /'
  echo "  logins per second by the server's counter over the probe window: $(python3 -c "print(round(($after - ${before:-0}) / $DUR, 2))")"
}

probes "quiet"
storm "storm, password threads at nice +10 (as shipped)"
if [ "$(id -u)" = 0 ]; then
  for task in "/proc/$SERVER_PID/task/"*; do
    if grep -q '^tokengate-passw' "$task/comm"; then renice -n 0 -p "$(basename "$task")" >/dev/null; fi
  done
  storm "storm, password threads put back to nice 0 (for comparison)"
fi
