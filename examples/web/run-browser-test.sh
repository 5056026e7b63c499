#!/usr/bin/env bash
# The browser test of the login page (examples/web), as CI runs it:
#   Debian's chromium (apt, when /usr/bin/chromium is missing; no browser is
#   downloaded by npm), `npm ci` from the committed lock, a check that the
#   committed src/gen matches proto/, `vite build`, then test/browser.test.mjs
#   (node:test + playwright-core) against a tokengate binary it starts itself.
# Screenshots and logs: examples/web/test-output/. Exits non-zero on failure.
# TOKENGATE_BIN overrides the binary (default: target/debug/tokengate, built
# with cargo when missing). With WEB_TEST_SERVER (and WEB_TEST_PAGE_PORT,
# WEB_TEST_DOMAIN, WEB_TEST_USER, WEB_TEST_PASSWORD: test/browser.test.mjs)
# the test uses that running server instead (tools/image-check.sh: the image).
set -euo pipefail
cd "$(dirname "$0")"
WEB=$PWD
REPO=$(cd ../.. && pwd)
log() { printf '\n==> web: %s\n' "$*"; }

if [ ! -x /usr/bin/chromium ]; then
  log "apt-get install chromium"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

export TOKENGATE_BIN=${TOKENGATE_BIN:-$REPO/target/debug/tokengate}
if [ -z "${WEB_TEST_SERVER:-}" ] && [ ! -x "$TOKENGATE_BIN" ]; then
  log "cargo build --bin tokengate"
  (cd "$REPO" && cargo build --locked --bin tokengate)
fi

log "npm ci (examples/web)"
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
npm ci --no-audit --no-fund --loglevel=error

start=$SECONDS

log "generated code up to date with proto/ (npm run generate)"
gen=$(mktemp -d)
trap 'rm -rf "$gen"' EXIT
npx --no-install buf generate -o "$gen"
if ! diff -r src/gen "$gen/src/gen"; then
  echo "src/gen differs from what proto/ generates: run 'npm run generate' in examples/web and commit" >&2
  exit 1
fi

log "build the page (tsc + vite build)"
npm run --silent build

log "browser test (headless $(/usr/bin/chromium --version 2>/dev/null | head -1))"
rm -rf test-output
mkdir -p test-output
set +e
node --test-reporter=spec test/browser.test.mjs 2>&1 | tee test-output/test.log
status=${PIPESTATUS[0]}
set -e

passed=$(sed -nE 's/^ℹ pass ([0-9]+)$/\1/p' test-output/test.log | tail -1)
failed=$(sed -nE 's/^ℹ fail ([0-9]+)$/\1/p' test-output/test.log | tail -1)
cancelled=$(sed -nE 's/^ℹ cancelled ([0-9]+)$/\1/p' test-output/test.log | tail -1)
passed=${passed:-0}
failed=$((${failed:-0} + ${cancelled:-0}))
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
echo
echo "screenshots: $(cd "$WEB" && ls test-output/*.png 2>/dev/null | tr '\n' ' ')"
echo "browser test took $((SECONDS - start)) s after installs"
echo "browser: $passed passed, $failed failed"
exit "$status"
