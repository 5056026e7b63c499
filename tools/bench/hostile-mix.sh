#!/usr/bin/env bash
# Honest load, quiet and then mixed with hostile traffic, against one release
# server pinned to core 0 (default config); the load generator and the
# attacker share core 1:
#   tools/bench/hostile-mix.sh [seconds]        (default 10)
# Prints the honest rps / p50 / p99 (get_public_key over gRPC -c 4 -m 16, and
# a gRPC refresh-chain -c 1 -m 4) quiet vs hostile, with the ratio of the
# p99s, for three mixes:
#   mix        every attack, including the stream attacker's hyper-concurrent
#              flavour (1,000 *valid* get_public_key calls at a time: extra
#              load more than an attack);
#   malformed  the same without hyper-concurrent (garbage, half-open,
#              oversized, streams past the limit, rapid reset, flood);
#   bodies     garbage, half-open connections and oversized bodies only
#              (no stream attacks, no connection flood);
# then the attacker's reports with the server's RSS, and the server's RSS
# under each attack kind alone (fresh server each, no honest load; the
# flood of 12,000 is past the default max_connections of 10,000).
# Environment: ALONE_DUR (default 6) seconds per attack kind alone,
# SKIP_ALONE=1 to skip that part; HONEST=paced (default) or saturating;
# ATTACKER_SOURCE (default 127.0.0.2; empty: the honest clients' 127.0.0.1)
# and SOURCE_FAULTS (limits.source_faults, default 20; 0 turns the
# per-source throttle off).
#
# The attacker connects from its own address, as it would from its own
# machine, so the server's per-source throttle (src/server/source_guard.rs)
# can tell it from the honest clients.
#
# The honest load is paced by default (get_public_key 2,000 calls/s, the
# refresh chain 200/s: about a tenth of what the server does quiet), so its
# p99 shows what the attacks do to an honest call's latency. HONEST=saturating
# runs it as fast as answers come instead: then the p99 mostly measures how
# the two cores are shared between the honest load, the attacker and the
# server (the attacker runs on the honest load's core), and the rps what is
# left to honest clients.
#
# The attacker runs at SCHED_IDLE priority (chrt --idle): on this 2-core
# machine it shares the honest load's core, and at normal priority an
# attacker that burns its core (a reconnect loop of 10,000 connections/s)
# delays the honest *client's* own calls by whole scheduler slices — p99s of
# 29 ms where the server added ~2 ms. An attacker on its own machine costs
# the honest clients nothing; SCHED_IDLE is the closest a shared core gets.
set -euo pipefail
cd "$(dirname "$0")/../.."
DUR=${1:-10}
ALONE_DUR=${ALONE_DUR:-6}
# shellcheck source=tools/bench/common.sh
. tools/bench/common.sh
ensure_release_build
WORK=$(mktemp -d)
PORT=$(free_port)
URL="http://127.0.0.1:$PORT"
HOSTILE_PID=""
cleanup() {
  if [ -n "$HOSTILE_PID" ]; then kill "$HOSTILE_PID" 2>/dev/null || true; fi
  stop_server
  rm -rf "$WORK"
}
trap cleanup EXIT

# bcrypt cost 4: logins are cheap, the refresh chain measures refreshes.
write_users "$WORK/users.toml" bench@example.com bench-password 4
write_server_config "$WORK/tokengate.toml" "$PORT" RS256 <<TOML
[token]
refresh_ttl = 1000000
TOML

export TOKENGATE_LIMITS_SOURCE_FAULTS=${SOURCE_FAULTS:-20}
ATTACKER_SOURCE=${ATTACKER_SOURCE-127.0.0.2}
echo "attacker from ${ATTACKER_SOURCE:-127.0.0.1}, limits.source_faults = $TOKENGATE_LIMITS_SOURCE_FAULTS"

# The two honest loads at once, JSON reports in $WORK/<tag>-{gpk,chain}.json.
case "${HONEST:-paced}" in
  paced) GPK_PACE=(--rate 2000) CHAIN_PACE=(--rate 200) ;;
  saturating) GPK_PACE=() CHAIN_PACE=() ;;
  *) echo "HONEST must be paced or saturating" >&2; exit 2 ;;
esac
echo "honest load: ${HONEST:-paced}"

honest() { # tag
  taskset -c 1 $BIN/tokengate-load --target "$URL" --protocol grpc --scenario get-public-key \
    --domain domain-bench -c 4 -m 16 "${GPK_PACE[@]}" -d "$DUR" --warmup 1 --json >"$WORK/$1-gpk.json" &
  local gpk=$!
  BENCH_PW=bench-password taskset -c 1 $BIN/tokengate-load --target "$URL" --protocol grpc \
    --scenario refresh-chain --domain domain-bench --user bench@example.com --password-env BENCH_PW \
    -c 1 -m 4 "${CHAIN_PACE[@]}" -d "$DUR" --warmup 1 --json >"$WORK/$1-chain.json"
  wait "$gpk"
}

hostile() { # seconds [extra args...]
  local secs=$1
  shift
  chrt --idle 0 taskset -c 1 $BIN/tokengate-hostile --target "$URL" --domain domain-bench -d "$secs" --drain 2 \
    --server-pid "$SERVER_PID" ${ATTACKER_SOURCE:+--source "$ATTACKER_SOURCE"} "$@"
}

under_attack() { # tag [hostile args...]
  local tag=$1
  shift
  hostile $((DUR + 2)) "$@" >"$WORK/$tag.txt" &
  HOSTILE_PID=$!
  sleep 0.5
  honest "$tag"
  wait "$HOSTILE_PID"
  HOSTILE_PID=""
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
start_server "$WORK/tokengate.toml" "$PORT"
honest quiet
under_attack mix --connections 2000
stop_server
# A fresh server: the mix's 2,200 held connections would still be open.
start_server "$WORK/tokengate.toml" "$PORT"
under_attack malformed --connections 2000 --stream-kinds raw-over-limit,rapid-reset
stop_server
start_server "$WORK/tokengate.toml" "$PORT"
under_attack bodies --connections 0 --streams 0
stop_server
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$WORK" <<'PY'
import json, sys
work = sys.argv[1]
def calls(tag):
    out = {}
    for part in ("gpk", "chain"):
        with open(f"{work}/{tag}-{part}.json") as f:
            for c in json.load(f)["calls"]:
                out[c["call"]] = c
    return out
runs = {tag: calls(tag) for tag in ("quiet", "mix", "malformed", "bodies")}
print(f"\n{'honest call':<15} {'run':>9} {'calls':>8} {'errors':>7} {'rps':>9} {'p50 ms':>8} {'p99 ms':>8} {'p99/quiet':>9}")
for name in ("get_public_key", "issue", "refresh"):
    if runs["quiet"][name]["calls"] == 0:
        continue  # refresh-chain issues only during the warm-up
    q = runs["quiet"][name]["latency_ms"]["p99"]
    for tag, run in runs.items():
        c = run[name]
        p99 = c["latency_ms"]["p99"]
        print(f"{name:<15} {tag:>9} {c['calls']:>8} {c['errors_total']:>7} {c['rps']:>9.1f} "
              f"{c['latency_ms']['p50']:>8.3f} {p99:>8.3f} {p99 / q:>9.2f}")
PY
for tag in mix malformed bodies; do
  echo
  echo "== attacker report: $tag"
  cat "$WORK/$tag.txt"
done

if [ "${SKIP_ALONE:-0}" != 1 ]; then
  echo
  echo "server RSS under each attack kind alone (fresh server, ${ALONE_DUR} s, no honest load):"
  for kind in "garbage 4" "half-open 200" "half-open 1000 --half-open-kinds big-partial-headers" \
    "oversized 4" "streams 2" "connections 2000" "connections 12000"; do
    read -r -a spec <<<"$kind"
    name=${spec[0]}
    count=${spec[1]}
    args=("${spec[@]:2}")
    for k in garbage half-open oversized streams connections; do
      if [ "$k" = "$name" ]; then args+=("--$k" "$count"); else args+=("--$k" 0); fi
    done
    start_server "$WORK/tokengate.toml" "$PORT"
    hostile "$ALONE_DUR" "${args[@]}" >"$WORK/alone.txt"
    echo "  $kind: $(grep -E '^server memory' "$WORK/alone.txt")"
    if [ "$name" = connections ]; then grep -E '^ +[0-9]+  ' "$WORK/alone.txt" | sed 's/^/    /'; fi
    stop_server
  done
fi
