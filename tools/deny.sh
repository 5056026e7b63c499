#!/usr/bin/env bash
# cargo deny with deny.toml: licenses, bans (duplicate majors, wildcards, a
# second TLS stack) and sources (crates.io only) always; the RustSec
# advisories only where their database can be had.
#
#   tools/deny.sh                      CI: licenses, bans, sources; advisories
#                                      too if the database is reachable or
#                                      already on disk, else skipped (one line)
#   DENY_ADVISORIES=1 tools/deny.sh    advisories required: fetch the database
#                                      and fail if that is impossible
#   DENY_ADVISORIES=0 tools/deny.sh    never check advisories
#
# The database is a git repository on GitHub, which this project's build
# machines cannot reach (see SECURITY.md, "Dependencies").
set -euo pipefail
cd "$(dirname "$0")/.."

# deny.toml is written for this series' config format.
DENY_VERSION_REQ='^0.20'
ADVISORY_DB_URL=https://github.com/rustsec/advisory-db

log() { printf '==> %s\n' "$*"; }

if ! cargo deny --version 2>/dev/null | grep -q '^cargo-deny 0\.20\.'; then
  log "installing cargo-deny $DENY_VERSION_REQ (cargo install --locked; a few minutes)"
  cargo install --locked cargo-deny --version "$DENY_VERSION_REQ"
fi
log "$(cargo deny --version)"

# --locked: the graph is exactly Cargo.lock's (cargo metadata must not
# re-resolve). --workspace: every member is a root, not just tokengate.
# No --all-features: the workspace has no optional features.
deny=(cargo deny --locked --workspace)

log "cargo deny check licenses bans sources"
"${deny[@]}" check --show-stats licenses bans sources

# Advisories: a local copy of the database is any clone under
# $CARGO_HOME/advisory-dbs (a failed fetch leaves only a lock file there).
db_root="${CARGO_HOME:-$HOME/.cargo}/advisory-dbs"
local_db() {
  local d
  for d in "$db_root"/advisory-db-*; do
    [[ -d "$d/crates" ]] && { printf '%s\n' "$d"; return 0; }
  done
  return 1
}
db_reachable() {
  command -v git >/dev/null 2>&1 &&
    timeout 20 git ls-remote --exit-code "$ADVISORY_DB_URL" HEAD >/dev/null 2>&1
}

case "${DENY_ADVISORIES:-}" in
  1)
    log "cargo deny check advisories (DENY_ADVISORIES=1: fetching the database)"
    "${deny[@]}" check --show-stats advisories
    ;;
  0)
    log "advisories: skipped (DENY_ADVISORIES=0)"
    ;;
  *)
    if db_reachable; then
      log "cargo deny check advisories (database reachable: fetching it)"
      "${deny[@]}" check --show-stats advisories
    elif db=$(local_db); then
      log "cargo deny check advisories (offline, local copy $db, last updated $(git -C "$db" log -1 --format=%cs 2>/dev/null || echo '?'))"
      "${deny[@]}" --offline check --show-stats advisories
    else
      echo "advisories: SKIPPED: the RustSec advisory database ($ADVISORY_DB_URL) cannot be fetched from this machine; run 'DENY_ADVISORIES=1 tools/deny.sh' (or 'cargo deny check advisories') where GitHub is reachable"
    fi
    ;;
esac
