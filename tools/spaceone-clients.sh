#!/usr/bin/env bash
# Drives a running tokengate (dev mode) with SpaceONE 1.10's own Python
# clients: spaceone-core's pygrpc client (services found through reflection
# v1alpha), a stock 1.10 service's token check (Domain.get_public_key +
# JWTAuthenticator) and spacectl. The checks are in tools/spaceone_clients.py;
# the pinned clients live in a virtualenv under the cache folder, made once
# and reused while tools/spaceone-clients-requirements.txt and the Python
# are unchanged.
# Exits non-zero on the first wrong answer.
set -euo pipefail
cd "$(dirname "$0")/.."

REQUIREMENTS=tools/spaceone-clients-requirements.txt
VENV=${SPACEONE_CLIENTS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/tokengate-spaceone-venv}
PYTHON=${PYTHON:-python3}

# The pins were resolved on CPython 3.11: grpcio 1.49 (SpaceONE 1.10's pin)
# has no wheel for a newer one (pip would compile it for many minutes), and
# the frozen numpy/pandas need 3.11 or newer.
"$PYTHON" - <<'EOF' || { echo "the SpaceONE 1.10 clients need CPython 3.11 (set PYTHON=...)" >&2; exit 1; }
import sys
sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)
EOF

# The venv is kept while the pins and the Python that made it are the same.
STAMP="$VENV/.tokengate-requirements"
WANT="$("$PYTHON" -V 2>&1)
$(cat "$REQUIREMENTS")"
if [ "$(cat "$STAMP" 2>/dev/null || true)" != "$WANT" ]; then
  echo "setting up the SpaceONE 1.10 clients in $VENV"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-input -r "$REQUIREMENTS"
  # Written last: a failed install is redone on the next run.
  printf '%s\n' "$WANT" >"$STAMP"
fi

# SPACEONE_CLIENTS_BIN: another build to check (a release build, an old
# one). Not TOKENGATE_*: tokengate reads those as configuration.
BIN=${SPACEONE_CLIENTS_BIN:-target/debug/tokengate}
[ -x "$BIN" ] || cargo build --locked --quiet

# shellcheck source=tools/dev-server.sh
. tools/dev-server.sh
start_dev_server "$BIN"

SPACEONE_CLIENTS_PASSWORD=$PASSWORD "$VENV/bin/python" tools/spaceone_clients.py \
  --endpoint "127.0.0.1:$PORT" --spacectl "$VENV/bin/spacectl"
