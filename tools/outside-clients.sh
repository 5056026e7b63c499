#!/usr/bin/env bash
# Drives a running tokengate (dev mode) with real outside clients: buf curl
# over native gRPC and gRPC-Web (methods found through reflection), and curl
# for REST. Exits non-zero on the first wrong answer.
#
# By default it starts its own dev server (tools/dev-server.sh). With
# OUTSIDE_BASE=http://127.0.0.1:PORT it drives that running server instead
# (tools/image-check.sh: the container image), logging in as
# admin@example.com in domain-dev with OUTSIDE_PASSWORD.
set -euo pipefail
cd "$(dirname "$0")/.."

BUF=./node_modules/.bin/buf
[ -x "$BUF" ] || { echo "buf missing: run 'npm ci' first" >&2; exit 1; }
if [ -n "${OUTSIDE_BASE:-}" ]; then
  BASE=${OUTSIDE_BASE%/}
  PASSWORD=${OUTSIDE_PASSWORD:?OUTSIDE_BASE is set: OUTSIDE_PASSWORD is needed too}
else
  BIN=target/debug/tokengate
  [ -x "$BIN" ] || cargo build --locked --quiet
  # shellcheck source=tools/dev-server.sh
  . tools/dev-server.sh
  start_dev_server "$BIN"
fi
LOGIN="{\"domain_id\":\"domain-dev\",\"user_id\":\"admin@example.com\",\"credentials\":{\"password\":\"$PASSWORD\"}}"
pass=0
check() { # name, expected substring, command...
  local name=$1 want=$2; shift 2
  local got
  got=$("$@" 2>&1 || true)
  if grep -qF -- "$want" <<<"$got"; then
    echo "ok   $name"; pass=$((pass + 1))
  else
    echo "FAIL $name: expected '$want' in:"; echo "$got"; exit 1
  fi
}

check "buf grpc: reflection v1alpha lists Token" "spaceone.api.identity.v1.Token/issue" \
  "$BUF" curl --protocol grpc --http2-prior-knowledge --reflect-protocol grpc-v1alpha --list-methods "$BASE"
check "buf grpc: reflection v1 lists Domain" "spaceone.api.identity.v1.Domain/get_public_key" \
  "$BUF" curl --protocol grpc --http2-prior-knowledge --reflect-protocol grpc-v1 --list-methods "$BASE"
check "buf grpc: issue" '"accessToken"' \
  "$BUF" curl --protocol grpc --http2-prior-knowledge -d "$LOGIN" "$BASE/spaceone.api.identity.v1.Token/issue"
check "buf grpcweb (HTTP/1.1): issue" '"refreshToken"' \
  "$BUF" curl --protocol grpcweb -d "$LOGIN" "$BASE/spaceone.api.identity.v1.Token/issue"
check "buf grpcweb (HTTP/2): get_public_key" '"publicKey"' \
  "$BUF" curl --protocol grpcweb --http2-prior-knowledge -d '{"domain_id":"domain-dev"}' "$BASE/spaceone.api.identity.v1.Domain/get_public_key"
check "buf grpc: wrong password" "ERROR_AUTHENTICATION_FAILURE" \
  "$BUF" curl --protocol grpc --http2-prior-knowledge -d '{"domain_id":"domain-dev","user_id":"admin@example.com","credentials":{"password":"nope"}}' "$BASE/spaceone.api.identity.v1.Token/issue"
check "buf grpcweb: unknown domain" "ERROR_NOT_FOUND: Value not found. (domain_id = nope)" \
  "$BUF" curl --protocol grpcweb -d '{"domain_id":"nope"}' "$BASE/spaceone.api.identity.v1.Domain/get_public_key"
check "buf grpc: health" '"status": "SERVING"' \
  "$BUF" curl --protocol grpc --http2-prior-knowledge -d '{}' "$BASE/grpc.health.v1.Health/Check"

RT=$(curl -s -X POST "$BASE/identity/v1/token/issue" -d "$LOGIN" | sed -E 's/.*"refresh_token":"([^"]+)".*/\1/')
check "curl REST: refresh with Bearer" '"access_token"' \
  curl -s -X POST "$BASE/identity/v1/token/refresh" -H "Authorization: Bearer $RT"
check "curl REST: replay refused" "ERROR_INVALID_REFRESH_TOKEN" \
  curl -s -X POST "$BASE/identity/v1/token/refresh" -H "Authorization: Bearer $RT"
check "curl REST: 401 has WWW-Authenticate" "www-authenticate: Bearer" \
  curl -s -i -X POST "$BASE/identity/v1/token/refresh"
# Sessions (README "Sessions"): two logins, list, end the other, log out.
pair() { curl -s -X POST "$BASE/identity/v1/token/issue" -d "$LOGIN"; }
field() { sed -E "s/.*\"$1\":\"([^\"]+)\".*/\1/"; }
OTHER=$(pair)
OTHER_RT=$(field refresh_token <<<"$OTHER")
HERE=$(pair)
AT=$(field access_token <<<"$HERE")
RT=$(field refresh_token <<<"$HERE")
OTHER_SID=$(python3 -c 'import base64, json, sys
p = sys.argv[1].split(".")[1]
print(json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))["sid"])' "$(field access_token <<<"$OTHER")")
check "buf grpc: reflection lists Session" "tokengate.session.v1.Session/end_others" \
  "$BUF" curl --protocol grpc --http2-prior-knowledge --list-methods "$BASE"
check "buf grpc: Session/list" '"current": true' \
  "$BUF" curl --protocol grpc --http2-prior-knowledge -H "Authorization: Bearer $AT" \
  "$BASE/tokengate.session.v1.Session/list"
check "buf grpcweb: Session/end of the other session" '"ended": 1' \
  "$BUF" curl --protocol grpcweb -H "Authorization: Bearer $AT" -d "{\"session_id\":\"$OTHER_SID\"}" \
  "$BASE/tokengate.session.v1.Session/end"
check "curl REST: the ended session's refresh token is refused" "ERROR_INVALID_REFRESH_TOKEN" \
  curl -s -X POST "$BASE/identity/v1/token/refresh" -H "Authorization: Bearer $OTHER_RT"
check "curl REST: end-others" '"ended":' \
  curl -s -X POST "$BASE/tokengate/session/v1/end-others" -H "Authorization: Bearer $AT"
check "curl REST: logout" '{}' \
  curl -s -X POST "$BASE/tokengate/session/v1/revoke" -H "Authorization: Bearer $RT"
check "curl REST: refresh after logout refused" "ERROR_INVALID_REFRESH_TOKEN" \
  curl -s -X POST "$BASE/identity/v1/token/refresh" -H "Authorization: Bearer $RT"
check "curl REST: list after logout refused" "Session has ended." \
  curl -s -X POST "$BASE/tokengate/session/v1/list" -H "Authorization: Bearer $AT"

check "curl: healthz" '"ok"' curl -s "$BASE/healthz"
check "curl: readyz" '"ready"' curl -s "$BASE/readyz"
check "curl: openapi" '"/identity/v1/token/issue"' curl -s "$BASE/openapi.json"
check "curl: metrics" "tokengate_requests_total" curl -s "$BASE/metrics"

echo "$pass passed, 0 failed"
