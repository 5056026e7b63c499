#!/usr/bin/env bash
# Refresh throughput with the file directory vs the PostgreSQL and LDAP
# directories, A/B in one run (rounds interleaved), release binary, server pinned to
# core 0 and the load generator to core 1; EdDSA keys and the in-memory
# store, the setting where any per-refresh directory cost would show most:
#   tools/bench/directory.sh [seconds] [rounds]     (defaults 8, 3)
# PostgreSQL is a private server (Debian's binaries, initdb in a temporary
# folder, run as the postgres user under root) on a free port, LDAP a
# private slapd (a generated slapd.conf; the measured user and 10,000
# others, so the LDAP snapshot is the size of a real directory's). See
# BENCHMARKS.md, "Directories".
set -euo pipefail
cd "$(dirname "$0")/../.."
DUR=${1:-8}
ROUNDS=${2:-3}
# shellcheck source=tools/bench/common.sh
. tools/bench/common.sh
ensure_release_build
WORK=$(mktemp -d)
PORT=$(free_port)
PG_PORT=$(free_port)
PG_BIN=$(dirname "$(compgen -G '/usr/lib/postgresql/*/bin/postgres' | sort -V | tail -n 1)")
as_pg=()
if [ "$(id -u)" = 0 ]; then
  chown postgres "$WORK"
  as_pg=(runuser -u postgres --)
fi
"${as_pg[@]}" "$PG_BIN/initdb" -D "$WORK/pg" -U tokengate --auth=trust --no-sync >/dev/null
"${as_pg[@]}" "$PG_BIN/postgres" -D "$WORK/pg" -p "$PG_PORT" -k "$WORK" \
  -c listen_addresses=127.0.0.1 -c fsync=off >"$WORK/pg.log" 2>&1 &
PG_PID=$!
trap 'stop_server; stop_slapd; kill $PG_PID 2>/dev/null || true; wait $PG_PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
LDAP_PORT=$(free_port)
write_slapd_config "$WORK"
start_slapd "$WORK" "$LDAP_PORT"
for _ in $(seq 1 100); do
  "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" && break
  sleep 0.1
done
URL="postgres://tokengate@127.0.0.1:$PG_PORT/postgres?sslmode=disable"
write_users "$WORK/users.toml" bench@example.com bench-password 4
printf 'directory = "%s"\n[keys]\ndir = "keys"\n' "$URL" >"$WORK/cli.toml"
$BIN/tokengate directory migrate --config "$WORK/cli.toml" >/dev/null
$BIN/tokengate domain add --config "$WORK/cli.toml" --domain domain-bench >/dev/null
printf 'bench-password' | $BIN/tokengate user add --config "$WORK/cli.toml" \
  --domain domain-bench --user bench@example.com --bcrypt --cost 4 >/dev/null
add_ldap_users "$LDAP_PORT" 10000
ldapadd -x -H "ldap://127.0.0.1:$LDAP_PORT" -D "cn=admin,dc=bench" -w admin-password >/dev/null <<LDIF
dn: uid=bench@example.com,dc=bench
objectClass: inetOrgPerson
uid: bench@example.com
cn: bench
sn: bench
userPassword: bench-password
LDIF
LDAP_HEAD="[ldap]
bind_dn = \"cn=admin,dc=bench\"
bind_password = \"admin-password\""
LDAP_DOMAINS="[[ldap.domain]]
domain_id = \"domain-bench\"
base_dn = \"dc=bench\""
run() { # directory
  local directory=$1
  rm -rf "$WORK/keys"
  local extra=""
  case $directory in
  # ldap: the defaults (refreshes read the snapshot, changes read every
  # second); ldap-search: sync_interval_ms = 0 (every refresh searches)
  ldap) extra="$LDAP_HEAD
$LDAP_DOMAINS" ;;
  ldap-search) extra="$LDAP_HEAD
sync_interval_ms = 0
$LDAP_DOMAINS" ;;
  esac
  write_server_config "$WORK/tokengate.toml" "$PORT" EdDSA <<TOML
[token]
refresh_ttl = 1000000
$extra
TOML
  case $directory in
  postgres) sed -i "s|^directory = .*|directory = \"$URL\"|" "$WORK/tokengate.toml" ;;
  ldap*) sed -i "s|^directory = .*|directory = \"ldap://127.0.0.1:$LDAP_PORT\"|" "$WORK/tokengate.toml" ;;
  esac
  start_server "$WORK/tokengate.toml" "$PORT"
  printf '%-9s ' "$directory"
  BENCH_PW=bench-password taskset -c 1 $BIN/tokengate-load --target "http://127.0.0.1:$PORT" \
    --protocol grpc --scenario refresh-chain --domain domain-bench --user bench@example.com \
    --password-env BENCH_PW -c 4 -m 16 -d "$DUR" --warmup 1 | grep -A1 -E "^refresh " | tr -s ' ' | tr '\n' ' '
  echo
  stop_server
}
for round in $(seq 1 "$ROUNDS"); do
  echo "round $round"
  run file
  run postgres
  run ldap
  run ldap-search
done
