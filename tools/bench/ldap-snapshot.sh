#!/usr/bin/env bash
# What the LDAP directory's principal snapshot costs an idle server: the
# release binary's resident memory, and its and slapd's CPU over 20 idle
# seconds, with the snapshot on (the default sync_interval_ms = 1000) and
# off (0), alternating, against a private slapd holding ENTRIES users;
# then the same with `index modifyTimestamp eq` added to slapd. Also
# prints how long the first whole read took (the server's log).
#   tools/bench/ldap-snapshot.sh [entries] [rounds]   (default 100000, 2)
# See BENCHMARKS.md, "LDAP snapshot".
set -euo pipefail
cd "$(dirname "$0")/../.."
ENTRIES=${1:-100000}
ROUNDS=${2:-2}
# shellcheck source=tools/bench/common.sh
. tools/bench/common.sh
ensure_release_build
WORK=$(mktemp -d)
LDAP_PORT=$(free_port)
PORT=$(free_port)
trap 'stop_server; stop_slapd; rm -rf "$WORK"' EXIT
MTS_INDEX=no write_slapd_config "$WORK"
start_slapd "$WORK" "$LDAP_PORT"
echo "adding $ENTRIES entries ..."
add_ldap_users "$LDAP_PORT" "$ENTRIES"

cpu_ms() { awk '{print ($14 + $15) * 10}' "/proc/$1/stat"; }

measure() { # sync_interval_ms
  rm -rf "$WORK/keys"
  cat >"$WORK/tokengate.toml" <<TOML
listen = "127.0.0.1:$PORT"
directory = "ldap://127.0.0.1:$LDAP_PORT"
[keys]
dir = "keys"
[ldap]
bind_dn = "cn=admin,dc=bench"
bind_password = "admin-password"
sync_interval_ms = $1
[[ldap.domain]]
domain_id = "domain-bench"
base_dn = "dc=bench"
TOML
  SERVER_LOG=info start_server "$WORK/tokengate.toml" "$PORT"
  sleep 2
  local rss slapd0 server0 slapd1 server1 read
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$SERVER_PID/status")
  slapd0=$(cpu_ms "$SLAPD_PID")
  server0=$(cpu_ms "$SERVER_PID")
  sleep 20
  slapd1=$(cpu_ms "$SLAPD_PID")
  server1=$(cpu_ms "$SERVER_PID")
  read=$(awk 'function t(s) { return substr(s, 12, 2) * 3600 + substr(s, 15, 2) * 60 + substr(s, 18, 9) }
    /ldap directory reachable/ {a = t($1)} /ldap principals read/ {b = t($1)}
    END {if (b) printf "%.2f s", b - a; else print "-"}' "$WORK/server.log")
  printf 'sync_interval_ms=%-5s rss %6d KiB  idle 20 s: slapd cpu %5d ms, tokengate cpu %4d ms  first whole read %s\n' \
    "$1" "$rss" $((slapd1 - slapd0)) $((server1 - server0)) "$read"
  : >"$WORK/server.log"
  stop_server
}

for index in without with; do
  if [ "$index" = with ]; then
    stop_slapd
    echo "index modifyTimestamp eq" >>"$WORK/slapd.conf"
    slapindex -f "$WORK/slapd.conf" 2>/dev/null
    start_slapd "$WORK" "$LDAP_PORT"
  fi
  echo "== $index index modifyTimestamp eq"
  for round in $(seq 1 "$ROUNDS"); do
    measure 1000
    measure 0
  done
done
