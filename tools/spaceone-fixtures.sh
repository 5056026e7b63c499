#!/usr/bin/env bash
# Makes SpaceONE identity 1.x export fixtures into OUT (tests/import_spaceone.rs
# runs it): tests/fixtures/spaceone/make.py in a virtualenv under the cache
# folder with the pins of tests/fixtures/spaceone/requirements.txt (bcrypt,
# jwcrypto, pymongo), made once and reused while the pins and the Python are
# unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?usage: tools/spaceone-fixtures.sh OUT}

REQUIREMENTS=tests/fixtures/spaceone/requirements.txt
VENV=${SPACEONE_FIXTURES_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/tokengate-spaceone-fixtures-venv}
PYTHON=${PYTHON:-python3}

STAMP="$VENV/.tokengate-requirements"
WANT="$("$PYTHON" -V 2>&1)
$(cat "$REQUIREMENTS")"
if [ "$(cat "$STAMP" 2>/dev/null || true)" != "$WANT" ]; then
  echo "setting up the SpaceONE fixture generator in $VENV" >&2
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-input -r "$REQUIREMENTS"
  # Written last: a failed install is redone on the next run.
  printf '%s\n' "$WANT" >"$STAMP"
fi
"$VENV/bin/python" tests/fixtures/spaceone/make.py "$OUT"
