# Shared pieces of the tools/bench scripts; source it after `cd` to the
# repository root:  . tools/bench/common.sh
# shellcheck shell=bash

BIN=target/release

# Builds the release binaries the benchmarks run (a no-op when they are up
# to date: a benchmark of a stale binary measures the wrong code).
ensure_release_build() {
  cargo build --release --locked -p tokengate -p tokengate-load
}

# A free TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# write_users FILE USER PASSWORD BCRYPT_COST: a directory with one user in
# domain-bench (a low cost keeps re-logins cheap where logins are not what
# is measured).
write_users() {
  local file=$1 user=$2 password=$3 cost=$4 hash
  hash=$(printf '%s' "$password" | $BIN/tokengate hash-password --bcrypt --cost "$cost")
  cat >"$file" <<TOML
[[domain]]
domain_id = "domain-bench"
[[domain.user]]
user_id = "$user"
password_hash = "$hash"
TOML
}

# write_server_config FILE PORT ALGORITHM: a server config listening on
# 127.0.0.1:PORT with the users of write_users in users.toml and keys in
# keys/ (both beside FILE), signing with ALGORITHM, and the login lockouts
# off (a benchmark logs the same user in thousands of times). More TOML
# tables ([token], [store], ...) are read from standard input.
write_server_config() {
  local file=$1 port=$2 algorithm=$3
  {
    cat <<TOML
listen = "127.0.0.1:$port"
directory = "users.toml"
[keys]
dir = "keys"
algorithm = "$algorithm"
[limits]
login_failures_per_user = 0
login_failures_per_ip = 0
TOML
    cat
  } >"$file"
}

# start_server CONFIG PORT: the release server with CONFIG, pinned to core 0,
# its log appended to server.log beside CONFIG (level SERVER_LOG, default
# warn); sets SERVER_PID and returns once /healthz answers, or prints the
# log and exits.
SERVER_PID=""
start_server() {
  local config=$1 port=$2 log
  log="$(dirname "$config")/server.log"
  RUST_LOG=${SERVER_LOG:-warn} taskset -c 0 $BIN/tokengate serve --config "$config" 2>>"$log" &
  SERVER_PID=$!
  wait_healthy "$port" && return 0
  echo "the server did not start:" >&2
  cat "$log" >&2
  exit 1
}

# stop_server: stops the server start_server started, if it runs.
stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}

# wait_healthy PORT: up to 10 s for /healthz to answer.
wait_healthy() {
  local _
  for _ in $(seq 1 100); do
    curl -s "http://127.0.0.1:$1/healthz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "the server on port $1 did not come up" >&2
  return 1
}

# The benches' slapd: an mdb database under dc=bench in DIR/ldap, the
# administrator cn=admin,dc=bench with password admin-password, indexed on
# objectClass and uid (and modifyTimestamp unless MTS_INDEX=no).
# write_slapd_config DIR: writes DIR/slapd.conf.
write_slapd_config() {
  local dir=$1
  mkdir -p "$dir/ldap"
  cat >"$dir/slapd.conf" <<CONF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile $dir/slapd.pid
database mdb
maxsize 1073741824
suffix "dc=bench"
rootdn "cn=admin,dc=bench"
rootpw admin-password
directory $dir/ldap
index objectClass eq
index uid eq
access to attrs=userPassword by self write by anonymous auth by * none
access to * by * read
CONF
  if [ "${MTS_INDEX:-yes}" != no ]; then
    echo "index modifyTimestamp eq" >>"$dir/slapd.conf"
  fi
}

# start_slapd DIR PORT: slapd with DIR/slapd.conf on 127.0.0.1:PORT; sets
# SLAPD_PID and returns once it answers.
start_slapd() {
  local dir=$1 port=$2 _
  /usr/sbin/slapd -f "$dir/slapd.conf" -h "ldap://127.0.0.1:$port/" -d 0 2>"$dir/slapd.log" &
  SLAPD_PID=$!
  for _ in $(seq 1 100); do
    ldapsearch -x -H "ldap://127.0.0.1:$port" -b "" -s base >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "slapd did not start:" >&2
  cat "$dir/slapd.log" >&2
  exit 1
}

# stop_slapd: stops the slapd start_slapd started, if it runs.
stop_slapd() {
  if [ -n "${SLAPD_PID:-}" ]; then
    kill "$SLAPD_PID" 2>/dev/null || true
    wait "$SLAPD_PID" 2>/dev/null || true
  fi
  SLAPD_PID=""
}

# add_ldap_users PORT COUNT: the base entry dc=bench and COUNT users
# uid=user-NNNNNN@example.com,dc=bench (password not-used), as the
# administrator.
add_ldap_users() {
  local port=$1 count=$2 n
  {
    printf 'dn: dc=bench\nobjectClass: dcObject\nobjectClass: organization\no: bench\ndc: bench\n\n'
    for n in $(seq 1 "$count"); do
      printf 'dn: uid=user-%06d@example.com,dc=bench\nobjectClass: inetOrgPerson\nuid: user-%06d@example.com\ncn: user\nsn: %06d\nuserPassword: not-used\n\n' "$n" "$n" "$n"
    done
  } | ldapadd -x -H "ldap://127.0.0.1:$port" -D "cn=admin,dc=bench" -w admin-password >/dev/null
}
