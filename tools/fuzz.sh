#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo-fuzz / libFuzzer) of the targets in fuzz/:
# builds them all with one `cargo fuzz build`, runs each for FUZZ_SECONDS on
# a scratch copy of its committed seeds (fuzz/seeds/<target>/ stays clean),
# and fails when a target finds a crash, printing the input and the command
# that reproduces it. See fuzz/README.md.
#
#   FUZZ_SECONDS=20        time per target (seconds)
#   FUZZ_TARGETS="a b"     targets to run (default: all of fuzz/fuzz_targets)
#   FUZZ_SANITIZER=none    none | address (see fuzz/README.md for the trade-off)
#   FUZZ_TARGET_DIR=...    build folder, kept between runs and clones
#                          (default ~/.cache/tokengate/fuzz-target)
#
# The build folder lives outside the checkout, like a CI cache: CI runs on a
# fresh clone each time, and rebuilding every dependency with coverage
# instrumentation takes ~10 minutes on a 2-core machine; with the cache only
# the project's own crates are rebuilt.
#
# The one toolchain is stable: RUSTC_BOOTSTRAP=1 lets it take the nightly
# flags cargo-fuzz passes.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS="${FUZZ_SECONDS:-20}"
FUZZ_SANITIZER="${FUZZ_SANITIZER:-none}"
export RUSTC_BOOTSTRAP=1

log() { printf '\n==> %s\n' "$*"; }

if ! command -v cargo-fuzz >/dev/null 2>&1; then
  log "cargo install --locked cargo-fuzz"
  cargo install --locked cargo-fuzz
fi

if [[ -n "${FUZZ_TARGETS:-}" ]]; then
  read -r -a targets <<<"$FUZZ_TARGETS"
else
  targets=()
  for file in fuzz/fuzz_targets/*.rs; do
    name="${file##*/}"
    targets+=("${name%.rs}")
  done
fi

# The same flags for build and run, so `run` does not rebuild. 16 codegen
# units (cargo-fuzz's default is 1) shorten the build for slightly slower
# executions.
FUZZ_TARGET_DIR="${FUZZ_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tokengate/fuzz-target}"
mkdir -p "$FUZZ_TARGET_DIR"
flags=(--sanitizer "$FUZZ_SANITIZER" --codegen-units 16 --target-dir "$FUZZ_TARGET_DIR")

log "cargo fuzz build (${targets[*]})"
start=$SECONDS
cargo fuzz build "${flags[@]}"
printf 'built in %ss\n' "$((SECONDS - start))"

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
stamp="$scratch/.start"
touch "$stamp"

failed=()
summary=()
for target in "${targets[@]}"; do
  log "fuzz $target for ${FUZZ_SECONDS}s"
  corpus="$scratch/corpus/$target"
  mkdir -p "$corpus" "fuzz/artifacts/$target"
  cp fuzz/seeds/"$target"/* "$corpus"/
  output="$scratch/$target.log"
  status=0
  cargo fuzz run "${flags[@]}" "$target" "$corpus" -- \
    -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 -timeout=30 \
    -print_final_stats=1 >"$output" 2>&1 || status=$?
  runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$output" | tail -n 1)"
  rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$output" | tail -n 1)"
  cov="$(grep -o 'cov: [0-9]* ft: [0-9]*' "$output" | tail -n 1 || true)"
  summary+=("$(printf '%-18s %10s runs %8s exec/s  %s' "$target" "${runs:-?}" "${rate:-?}" "${cov:-}")")
  if ((status != 0)); then
    failed+=("$target")
    # The panic (or libFuzzer's reason: timeout, out of memory, leak).
    grep -A 3 -e 'panicked at' -e 'ERROR: libFuzzer' "$output" | head -n 20 || true
    found=0
    while IFS= read -r artifact; do
      found=1
      printf '\nCRASH in %s: %s\nreproduce: RUSTC_BOOTSTRAP=1 cargo fuzz run %s %s %s\n' \
        "$target" "$artifact" "${flags[*]}" "$target" "$artifact"
    done < <(find "fuzz/artifacts/$target" -type f -newer "$stamp")
    if ((found == 0)); then
      printf '\n%s failed (exit %s) without an artifact; log above\n' "$target" "$status"
    fi
  fi
done

log "summary (${FUZZ_SECONDS}s per target, sanitizer $FUZZ_SANITIZER, total ${SECONDS}s)"
printf '%s\n' "${summary[@]}"
if ((${#failed[@]})); then
  printf '\nFAILED: %s (turn each crash into a regression: fuzz/README.md)\n' "${failed[*]}"
  exit 1
fi
