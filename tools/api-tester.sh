#!/usr/bin/env bash
# Property-based API testing driven by the service's own /openapi.json:
# schemathesis (pinned in tools/api-tester/requirements.txt, installed into a
# venv under the user's cache) runs every one of its checks against tokengate
# in dev mode, the refresh operation authenticated with a fresh refresh token
# per case (tools/api-tester/hooks.py). Exits non-zero on any finding, and
# when the run never reached a 200 of some operation (a run of refusals
# only would prove nothing about the success paths).
#
# Environment: API_TESTER_SECONDS (the time budget, default 100: the
# fuzzing phase repeats until it is spent; each dev-mode login costs an
# argon2id check, ~0.5 s in a debug build), API_TESTER_MAX_EXAMPLES (cases
# per operation per round, default 30), API_TESTER_SEED (replay a run),
# API_TESTER_BIN (test another binary; default: target/debug/tokengate, built
# or refreshed by cargo). None is named TOKENGATE_*: the server reads those
# as configuration overrides.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

VENV=${XDG_CACHE_HOME:-$HOME/.cache}/tokengate-schemathesis-venv
REQUIREMENTS=tools/api-tester/requirements.txt
# The venv is reused while it holds exactly the pinned set and still runs
# (a Python upgraded under it breaks it).
if ! cmp -s "$REQUIREMENTS" "$VENV/tokengate-requirements.txt" ||
  ! "$VENV/bin/schemathesis" --version >/dev/null 2>&1; then
  echo "installing schemathesis into $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQUIREMENTS"
  cp "$REQUIREMENTS" "$VENV/tokengate-requirements.txt"
fi

if [ -n "${API_TESTER_BIN:-}" ]; then
  BIN=$API_TESTER_BIN
else
  # Always ask cargo: a stale binary would be tested silently otherwise.
  cargo build --locked --quiet --bin tokengate
  BIN=target/debug/tokengate
fi

# The shipped dev defaults, but for the failed-login limits: the tester mixes
# right and wrong passwords for the one demo user from one address, and at
# 10 failures per user (100 per address) every later login, the right ones
# included, would be a 429 for five minutes: the run would test the lock
# (tests/redis_state.rs and tests/http_surface.rs do) instead of the API.
# shellcheck source=tools/dev-server.sh
. tools/dev-server.sh
# An introspection client for Session.introspect (hooks.py sends its secret).
INTROSPECTION_SECRET=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
INTROSPECTION_DIGEST=$(printf %s "$INTROSPECTION_SECRET" | sha256sum | cut -d' ' -f1)
start_dev_server "$BIN" TOKENGATE_LIMITS_LOGIN_FAILURES_PER_USER=1000000 \
  TOKENGATE_LIMITS_LOGIN_FAILURES_PER_IP=1000000 \
  "TOKENGATE_INTROSPECTION_CLIENTS=[\"api-tester:$INTROSPECTION_DIGEST\"]"

# Known values the generators draw from now and then (a random domain, user
# or password is never right): with them issue and get_public_key also
# succeed, not only refuse. Positive cases only take values the document
# allows, negative ones only values it forbids (schemathesis' rule).
cat >"$WORK/schemathesis.toml" <<EOF
hooks = "$ROOT/tools/api-tester/hooks.py"

[dictionaries.domain]
values = ["domain-dev"]
[dictionaries.user]
values = ["admin@example.com"]
[dictionaries.password]
values = ["$PASSWORD"]

[parameters]
"body.domain_id" = { dictionary = "domain", probability = 0.8 }
"body.user_id" = { dictionary = "user", probability = 0.5 }
"body.credentials.password" = { dictionary = "password", probability = 0.5 }
EOF

seed=()
[ -z "${API_TESTER_SEED:-}" ] || seed=(--seed "$API_TESTER_SEED")
status=0
# In $WORK: schemathesis keeps its example database in the working folder.
(
  cd "$WORK"
  API_TESTER_URL=$BASE \
    API_TESTER_DOMAIN=domain-dev \
    API_TESTER_USER=admin@example.com \
    API_TESTER_OWNER=owner \
    API_TESTER_PASSWORD=$PASSWORD \
    API_TESTER_INTROSPECTION_BASIC="Basic $(printf %s "api-tester:$INTROSPECTION_SECRET" | base64 -w0)" \
    timeout 600 "$VENV/bin/schemathesis" --no-color --config-file "$WORK/schemathesis.toml" \
    run "$BASE/openapi.json" \
    --checks all \
    --max-examples "${API_TESTER_MAX_EXAMPLES:-30}" \
    --max-time "${API_TESTER_SECONDS:-100}" \
    --report har --report-har-path "$WORK/run.har" \
    "${seed[@]}"
) || status=$?

# Every operation must have succeeded at least once (the auth hook's own
# logins are not in the HAR file: only the cases schemathesis sent are).
"$VENV/bin/python" - "$WORK/run.har" "$BASE/openapi.json" <<'EOF' || status=1
import json, sys, urllib.parse, urllib.request
entries = json.load(open(sys.argv[1]))["log"]["entries"]
paths = json.load(urllib.request.urlopen(sys.argv[2]))["paths"]
missing = []
for path in sorted(paths):
    answers = [e["response"]["status"] for e in entries
               if urllib.parse.urlsplit(e["request"]["url"]).path == path]
    ok = answers.count(200)
    print(f"{path}: {len(answers)} calls, {ok} answered 200")
    if ok == 0:
        missing.append(path)
if missing:
    print("never answered 200 (the run did not reach the success path): "
          + ", ".join(missing), file=sys.stderr)
    sys.exit(1)
EOF

if [ "$status" -ne 0 ]; then
  echo "api-tester: FAILED (schemathesis findings above; server log: last lines)" >&2
  tail -n 20 "$WORK/err" >&2
  exit "$status"
fi
echo "api-tester: no findings"
