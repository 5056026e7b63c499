#!/usr/bin/env bash
# Honest get_public_key p99 (gRPC, 4 x 16, paced at 2,000 calls/s) with no
# attack, then with each tokengate-hostile attack kind alone (the attacker at
# SCHED_IDLE on the honest load's core, from ATTACKER_SOURCE; see
# hostile-mix.sh for it and SOURCE_FAULTS); fresh release server on core 0
# for each:   DUR=6 tools/bench/hostile-each.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=tools/bench/common.sh
. tools/bench/common.sh
ensure_release_build
WORK=$(mktemp -d)
PORT=$(free_port)
URL="http://127.0.0.1:$PORT"
trap 'stop_server; rm -rf "$WORK"' EXIT
export TOKENGATE_LIMITS_SOURCE_FAULTS=${SOURCE_FAULTS:-20}
ATTACKER_SOURCE=${ATTACKER_SOURCE-127.0.0.2}
echo "attacker from ${ATTACKER_SOURCE:-127.0.0.1}, limits.source_faults = $TOKENGATE_LIMITS_SOURCE_FAULTS"
write_users "$WORK/users.toml" bench@example.com bench-password 4
write_server_config "$WORK/tokengate.toml" "$PORT" RS256 <<TOML
[token]
refresh_ttl = 1000000
TOML
DUR=${DUR:-8}
run() { # label hostile-args
  local label=$1; shift
  start_server "$WORK/tokengate.toml" "$PORT"
  local hpid=""
  if [ "$#" -gt 0 ]; then
    chrt --idle 0 taskset -c 1 $BIN/tokengate-hostile --target "$URL" --domain domain-bench -d $((DUR+2)) --drain 1 \
      ${ATTACKER_SOURCE:+--source "$ATTACKER_SOURCE"} "$@" >"$WORK/h.txt" 2>&1 &
    hpid=$!
    sleep 0.5
  fi
  taskset -c 1 $BIN/tokengate-load --target "$URL" --protocol grpc --scenario get-public-key --domain domain-bench -c 4 -m 16 --rate 2000 -d "$DUR" --warmup 1 --json > "$WORK/g.json"
  if [ -n "$hpid" ]; then wait "$hpid"; fi
  stop_server
  python3 -c "import json,sys; c=[c for c in json.load(open('$WORK/g.json'))['calls'] if c['call']=='get_public_key'][0]; l=c['latency_ms']; print(f\"{'$label':<40} p50 {l['p50']:7.3f} p99 {l['p99']:7.3f} errors {c['errors_total']}\")"
}
only() { # kind count [args] -> every other kind 0
  local kind=$1 count=$2; shift 2
  local a=("$@") k
  for k in garbage half-open oversized streams connections; do
    if [ "$k" = "$kind" ]; then a+=("--$k" "$count"); else a+=("--$k" 0); fi
  done
  printf '%s\n' "${a[@]}"
}
run quiet
mapfile -t A < <(only garbage 4); run garbage4 "${A[@]}"
for k in silent partial-headers big-partial-headers h2-preface partial-body partial-body-long-deadline; do
  mapfile -t A < <(only half-open 33 --half-open-kinds $k); run "half-open 33 $k" "${A[@]}"
done
mapfile -t A < <(only oversized 4); run oversized4 "${A[@]}"
mapfile -t A < <(only streams 1 --stream-kinds rapid-reset); run "streams rapid-reset" "${A[@]}"
mapfile -t A < <(only streams 1 --stream-kinds raw-over-limit); run "streams raw-over-limit" "${A[@]}"
mapfile -t A < <(only connections 2000); run "connections 2000" "${A[@]}"
