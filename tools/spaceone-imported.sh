#!/usr/bin/env bash
# Roll-back check of the SpaceONE migration (deploy/README.md, "Migrate from
# SpaceONE identity"): tokens tokengate signs with keys imported from
# SpaceONE verify in SpaceONE 1.10's own verifier. Makes SpaceONE export
# fixtures (tools/spaceone-fixtures.sh), imports them with `tokengate import
# spaceone`, serves them, logs in an imported user and an imported owner,
# and has tools/spaceone_imported.py verify the tokens with spaceone-core's
# JWTAuthenticator and the domain's pub_jwk from the export (not from
# tokengate), in the pinned venv of tools/spaceone-clients.sh.
# Exits non-zero on the first wrong answer.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${SPACEONE_CLIENTS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/tokengate-spaceone-venv}
if [ ! -x "$VENV/bin/python" ]; then
  echo "no SpaceONE 1.10 clients venv in $VENV: run tools/spaceone-clients.sh first" >&2
  exit 1
fi
BIN=${SPACEONE_CLIENTS_BIN:-target/debug/tokengate}
[ -x "$BIN" ] || cargo build --locked --quiet

WORK=$(mktemp -d)
PID=
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$WORK"' EXIT
# The export holds hashes and private keys: private, like a real one.
chmod 700 "$WORK"
# Cost 4: the check is about keys, not about bcrypt's cost.
BCRYPT_COST=4 bash tools/spaceone-fixtures.sh "$WORK/export" >/dev/null
"$BIN" import spaceone --from "$WORK/export/canonical" --to "$WORK/tg/users.toml" --keys "$WORK/tg/keys" >"$WORK/import.txt"

cat >"$WORK/tg/tokengate.toml" <<CONFIG
listen = "127.0.0.1:0"
directory = "users.toml"
[keys]
dir = "keys"
generate_missing = false
[log]
format = "json"
CONFIG
env -u TOKENGATE_CONFIG "$BIN" serve --config "$WORK/tg/tokengate.toml" >"$WORK/out" 2>"$WORK/err" &
PID=$!
PORT=
for _ in $(seq 1 300); do
  PORT=$(grep -oE '"listen":"127\.0\.0\.1:[0-9]+"' "$WORK/err" 2>/dev/null | head -n 1 | grep -oE '[0-9]+"$' | tr -d '"' || true)
  [ -n "$PORT" ] && break
  kill -0 "$PID" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$PORT" ]; then
  cat "$WORK/err" >&2
  echo "tokengate did not come up on the imported directory" >&2
  exit 1
fi

"$VENV/bin/python" tools/spaceone_imported.py --base "http://127.0.0.1:$PORT" \
  --expected "$WORK/export/expected.json"
