# Starts `tokengate serve` in dev mode for the outside-client scripts; source
# it after `cd` to the repository root, then call
#   start_dev_server BINARY [ENV=VALUE ...]
# The server binds port 0 (no port is picked before it binds) and its dev
# banner names the address. Sets WORK (a temp folder, removed at exit), PID,
# PORT, BASE (http://127.0.0.1:PORT) and PASSWORD (the demo user's, from the
# banner); the server is stopped at exit. Exits with the server's output if
# it does not come up.
# shellcheck shell=bash

start_dev_server() {
  local binary=$1 _
  shift
  WORK=$(mktemp -d)
  env "$@" "$binary" serve --data-dir "$WORK/data" --listen 127.0.0.1:0 >"$WORK/out" 2>"$WORK/err" &
  PID=$!
  trap 'kill $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
  for _ in $(seq 1 300); do
    grep -q "password:" "$WORK/out" 2>/dev/null && grep -q "http://127.0.0.1:" "$WORK/out" && break
    sleep 0.1
  done
  PASSWORD=$(sed -nE 's/^  password: +([A-Za-z0-9]+).*/\1/p' "$WORK/out")
  PORT=$(grep -oE 'http://127\.0\.0\.1:[0-9]+' "$WORK/out" | head -n 1 | sed 's/.*://')
  if [ -z "$PASSWORD" ] || [ -z "$PORT" ]; then
    cat "$WORK/out" "$WORK/err"
    echo "the dev server did not print its password and address" >&2
    exit 1
  fi
  # shellcheck disable=SC2034 # read by the scripts that source this file
  BASE="http://127.0.0.1:$PORT"
}
