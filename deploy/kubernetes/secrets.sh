#!/usr/bin/env bash
# Makes and manages tokengate's Secrets: the directory (users.toml), the
# signing keys and the Redis URL. deploy/README.md shows each step; run
# `secrets.sh help` for the commands.
#
# The keys layout is <keys>/<domain>/<access|refresh>/<kid>.pem, and a
# Secret's keys cannot contain '/'. So every <domain>/<purpose> folder is its
# own Secret (tokengate-keys-<domain>-<purpose>, one entry per <kid>.pem),
# mounted whole at /etc/tokengate/keys/<domain>/<purpose>: the pod sees the
# layout tokengate reads, and a changed Secret (a rotation) reaches the
# running pods in place, with no restart. `secrets.sh volumes` prints the
# Deployment patch that mounts them.
#
# Needs: bash, kubectl (for apply, export, rotate, redis-url; --dry-run
# needs no cluster), and the tokengate CLI for init, rotate and the check
# before apply: $TOKENGATE, by default `tokengate` on PATH. From the image:
#   TOKENGATE="docker run --rm -i -u $(id -u):$(id -g) -v $HOME:$HOME tokengate:0.1.0"
# (the workspace folder must then be under $HOME).
set -euo pipefail
# Everything this script writes (keys, password hashes, passwords) is private.
umask 077

KUBECTL=${KUBECTL:-kubectl}
TOKENGATE=${TOKENGATE:-tokengate}
# Labels and annotations that `export` finds the Secrets by.
PART_OF="app.kubernetes.io/part-of=tokengate"
KIND_LABEL="tokengate.spaceone.dev/secret"
DOMAIN_ANNOTATION="tokengate.spaceone.dev/domain"
PURPOSE_ANNOTATION="tokengate.spaceone.dev/purpose"
MOUNT_ROOT=/etc/tokengate/keys
PURPOSES=(access refresh)

# Temporary files and folders (keys!) removed on exit, whatever happens.
CLEANUP=()
cleanup() {
  if ((${#CLEANUP[@]})); then rm -rf "${CLEANUP[@]}"; fi
}
trap cleanup EXIT

usage() {
  cat <<'EOF'
usage: secrets.sh COMMAND ...

  init DIR [--domain ID]... [--user ID] [--algorithm RS256|ES256|EdDSA]
      A new local workspace DIR (created, mode 0700): users.toml with each
      domain (default: domain-dev) and one user (default admin@example.com)
      whose random password is printed once and kept in DIR/passwords.txt,
      signing keys for every domain (tokengate keys generate), and
      tokengate.toml, a local config for the tokengate CLI.

  apply DIR --namespace NS [--dry-run]
      Checks DIR (tokengate check-config), then creates or updates the
      Secrets tokengate-directory and tokengate-keys-<domain>-<purpose> from
      it (kubectl apply). --dry-run prints them (YAML) instead and needs no
      cluster. Running pods pick the new files up in place.

  volumes DIR
      Prints the kustomize patch that mounts the key Secrets of DIR's
      domains into the Deployment: save it as your overlay's keys-volumes.yaml.

  export DIR --namespace NS
      The reverse of apply: writes the cluster's Secrets into a new DIR
      (users.toml, keys/, tokengate.toml). For edits, rotations and backups.

  rotate --namespace NS (--domain ID | --all) [--retire-keep N]
      export to a private temporary folder, tokengate keys rotate, apply,
      delete the folder. Old keys keep verifying until retired.

  redis-url --namespace NS
      Reads the Redis URL (redis://, rediss://, rediss+cluster://...) from
      standard input and stores it as the Secret tokengate-redis (key url),
      without putting it on a command line.
EOF
}

die() {
  echo "secrets.sh: $*" >&2
  exit 1
}

# The tokengate CLI, as a command word list ($TOKENGATE may be "docker run ...").
tg() {
  # shellcheck disable=SC2086 # word splitting of $TOKENGATE is intended
  $TOKENGATE "$@"
}

need_tokengate() {
  local first=${TOKENGATE%% *}
  command -v "$first" >/dev/null 2>&1 ||
    die "the tokengate CLI is needed: put it on PATH or set TOKENGATE (see the top of this file)"
}

need_kubectl() {
  command -v "$KUBECTL" >/dev/null 2>&1 || die "kubectl is needed (or set KUBECTL)"
}

# A DNS-1123 name part for a domain id (Secret and volume names): lower case,
# anything but [a-z0-9-] becomes '-'. Domain ids themselves are kept as they
# are in folder names and annotations.
name_part() {
  local s
  s=$(printf '%s' "$1" | tr '[:upper:]' '[:lower:]' | tr -c 'a-z0-9-' '-')
  s=${s#-}
  s=${s%-}
  printf '%s' "$s"
}

secret_name() { # domain purpose
  printf 'tokengate-keys-%s-%s' "$(name_part "$1")" "$2"
}

volume_name() { # domain purpose; volume names are at most 63 characters
  local name
  name="keys-$(name_part "$1")-$2"
  if ((${#name} > 63)); then
    name="keys-$(printf '%s' "$1" | { sha256sum 2>/dev/null || shasum -a 256; } | cut -c1-16)-$2"
  fi
  printf '%s' "$name"
}

absolute() {
  case $1 in
  /*) printf '%s' "$1" ;;
  *) printf '%s/%s' "$PWD" "$1" ;;
  esac
}

# The local CLI config: the same layout as in the pod, relative to DIR.
write_local_config() { # dir algorithm
  cat >"$1/tokengate.toml" <<EOF
# Local config for the tokengate CLI (keys generate|rotate, check-config) on
# this workspace. Not the server's config: that is the ConfigMap.
directory = "users.toml"

[keys]
dir = "keys"
generate_missing = false
algorithm = "$2"
EOF
}

# The domains that have key folders in DIR/keys, sorted.
key_domains() {
  local dir=$1
  local d
  for d in "$dir"/keys/*/; do
    [[ -d $d ]] || continue
    d=${d%/}
    printf '%s\n' "${d##*/}"
  done | LC_ALL=C sort
}

cmd_init() {
  local dir="" user="admin@example.com" algorithm="RS256"
  local domains=()
  while (($#)); do
    case $1 in
    --domain) domains+=("${2:?--domain needs a value}") && shift 2 ;;
    --user) user=${2:?--user needs a value} && shift 2 ;;
    --algorithm) algorithm=${2:?--algorithm needs a value} && shift 2 ;;
    -*) die "init: unknown option $1" ;;
    *) [[ -z $dir ]] || die "init: one DIR only" && dir=$1 && shift ;;
    esac
  done
  [[ -n $dir ]] || die "init: give the workspace folder"
  ((${#domains[@]})) || domains=(domain-dev)
  need_tokengate
  dir=$(absolute "$dir")
  if [[ -e $dir ]] && [[ -n $(ls -A "$dir") ]]; then
    die "init: $dir exists and is not empty (init never overwrites keys or users)"
  fi
  mkdir -p "$dir"
  : >"$dir/passwords.txt"
  chmod 600 "$dir/passwords.txt"
  {
    echo "# The directory (SPEC §4). Add users with password hashes from"
    echo "# \`tokengate hash-password\`; apply again to update the cluster."
  } >"$dir/users.toml"
  local domain password hash
  for domain in "${domains[@]}"; do
    password=$(LC_ALL=C tr -dc 'A-HJ-NP-Za-km-z2-9' </dev/urandom | head -c 20 || true)
    ((${#password} == 20)) || die "init: could not read /dev/urandom"
    hash=$(printf '%s' "$password" | tg hash-password)
    cat >>"$dir/users.toml" <<EOF

[[domain]]
domain_id = "$domain"
state = "ENABLED"

[[domain.user]]
user_id = "$user"
password_hash = "$hash"
state = "ENABLED"
user_type = "USER"
EOF
    printf '%s\t%s\t%s\n' "$domain" "$user" "$password" >>"$dir/passwords.txt"
  done
  write_local_config "$dir" "$algorithm"
  tg keys generate --config "$dir/tokengate.toml"
  echo
  echo "workspace: $dir (keep it private: it holds the signing keys)"
  echo "logins (also in $dir/passwords.txt, shown only here):"
  sed 's/^/  /' "$dir/passwords.txt"
}

# One Secret as YAML on stdout: name, then kubectl create arguments.
secret_yaml() { # namespace name kind domain purpose -- create args...
  local namespace=$1 name=$2 kind=$3 domain=$4 purpose=$5
  shift 6
  local annotations=()
  [[ -z $domain ]] || annotations+=("$DOMAIN_ANNOTATION=$domain" "$PURPOSE_ANNOTATION=$purpose")
  "$KUBECTL" create secret generic "$name" --namespace "$namespace" "$@" \
    --dry-run=client -o yaml |
    "$KUBECTL" label --local -f - "$PART_OF" "$KIND_LABEL=$kind" -o yaml |
    if ((${#annotations[@]})); then
      "$KUBECTL" annotate --local -f - "${annotations[@]}" -o yaml
    else
      cat
    fi
}

cmd_apply() {
  local dir="" namespace="" dry_run=0
  while (($#)); do
    case $1 in
    --namespace | -n) namespace=${2:?--namespace needs a value} && shift 2 ;;
    --dry-run) dry_run=1 && shift ;;
    -*) die "apply: unknown option $1" ;;
    *) [[ -z $dir ]] || die "apply: one DIR only" && dir=$1 && shift ;;
    esac
  done
  [[ -n $dir ]] || die "apply: give the workspace folder"
  [[ -n $namespace ]] || die "apply: give --namespace"
  [[ -f $dir/users.toml ]] || die "apply: $dir/users.toml is missing"
  need_kubectl
  if command -v "${TOKENGATE%% *}" >/dev/null 2>&1; then
    # Every domain of the directory must have keys: a pod whose directory
    # names a domain without keys is not ready (readiness says which).
    tg check-config "$dir/tokengate.toml" >&2 || die "apply: $dir does not check out; nothing applied"
  else
    echo "secrets.sh: tokengate CLI not found: applying without check-config" >&2
  fi

  local out
  out=$(mktemp)
  CLEANUP+=("$out")
  secret_yaml "$namespace" tokengate-directory directory "" "" -- \
    --from-file="users.toml=$dir/users.toml" >>"$out"
  local domain purpose folder files name
  while IFS= read -r domain; do
    for purpose in "${PURPOSES[@]}"; do
      folder=$dir/keys/$domain/$purpose
      files=()
      if [[ -d $folder ]]; then
        while IFS= read -r f; do files+=(--from-file="$f"); done < <(find "$folder" -maxdepth 1 -type f -name '*.pem' | LC_ALL=C sort)
      fi
      ((${#files[@]})) || die "apply: no $purpose key for $domain in $folder"
      name=$(secret_name "$domain" "$purpose")
      printf -- '---\n' >>"$out"
      secret_yaml "$namespace" "$name" keys "$domain" "$purpose" -- "${files[@]}" >>"$out"
    done
  done < <(key_domains "$dir")

  if ((dry_run)); then
    cat "$out"
  else
    "$KUBECTL" apply -f "$out"
    # Secret volumes follow their Secret at the kubelet's next sync of the
    # pod (about a minute); touching the pods makes that sync happen now.
    "$KUBECTL" annotate pods --namespace "$namespace" -l app.kubernetes.io/name=tokengate \
      "tokengate.spaceone.dev/secrets-applied=$(date +%s)" --overwrite >/dev/null 2>&1 || true
    echo "applied; running pods reload the files within seconds of the kubelet updating them"
    echo "(new domain? mount its keys first: secrets.sh volumes $dir > <overlay>/keys-volumes.yaml)"
  fi
}

cmd_volumes() {
  local dir=${1:?volumes: give the workspace folder}
  local domains
  domains=$(key_domains "$dir")
  [[ -n $domains ]] || die "volumes: no key folders in $dir/keys"
  cat <<'EOF'
# Mounts the key Secrets, one per domain and purpose, at
# /etc/tokengate/keys/<domain>/<purpose> (keys.dir in config.toml).
# Generated by: deploy/kubernetes/secrets.sh volumes <workspace>
# Whole Secrets (no subPath, no items), so that a changed Secret (a key
# rotation) reaches the running pods in place.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: tokengate
spec:
  template:
    spec:
      containers:
        - name: tokengate
          volumeMounts:
EOF
  local domain purpose
  while IFS= read -r domain; do
    for purpose in "${PURPOSES[@]}"; do
      printf '            - name: %s\n              mountPath: %s/%s/%s\n              readOnly: true\n' \
        "$(volume_name "$domain" "$purpose")" "$MOUNT_ROOT" "$domain" "$purpose"
    done
  done <<<"$domains"
  echo "      volumes:"
  while IFS= read -r domain; do
    for purpose in "${PURPOSES[@]}"; do
      printf '        - name: %s\n          secret:\n            secretName: %s\n            defaultMode: 0440\n' \
        "$(volume_name "$domain" "$purpose")" "$(secret_name "$domain" "$purpose")"
    done
  done <<<"$domains"
}

# Writes every entry of a Secret into a folder.
write_secret_files() { # namespace name folder
  local key value
  # shellcheck disable=SC2016 # a Go template, not shell
  local template='{{range $k, $v := .data}}{{$k}} {{$v}}{{"\n"}}{{end}}'
  mkdir -p "$3"
  while IFS=' ' read -r key value; do
    [[ -n $key ]] || continue
    [[ $key != */* && $key != .* ]] || die "export: unexpected entry $key in Secret $2"
    printf '%s' "$value" | base64 -d >"$3/$key"
  done < <("$KUBECTL" get secret "$2" --namespace "$1" -o go-template="$template")
}

cmd_export() {
  local dir="" namespace=""
  while (($#)); do
    case $1 in
    --namespace | -n) namespace=${2:?--namespace needs a value} && shift 2 ;;
    -*) die "export: unknown option $1" ;;
    *) [[ -z $dir ]] || die "export: one DIR only" && dir=$1 && shift ;;
    esac
  done
  [[ -n $dir && -n $namespace ]] || die "export: give DIR and --namespace"
  need_kubectl
  if [[ -e $dir ]] && [[ -n $(ls -A "$dir") ]]; then
    die "export: $dir exists and is not empty"
  fi
  mkdir -p "$dir"
  (
    write_secret_files "$namespace" tokengate-directory "$dir"
    local object name domain purpose
    while IFS= read -r object; do
      [[ -n $object ]] || continue
      name=${object#secret/}
      read -r domain purpose < <("$KUBECTL" get secret "$name" --namespace "$namespace" \
        -o go-template="{{index .metadata.annotations \"$DOMAIN_ANNOTATION\"}} {{index .metadata.annotations \"$PURPOSE_ANNOTATION\"}}{{\"\\n\"}}")
      [[ -n $domain && -n $purpose && $domain != */* && $domain != .* && $domain != "<no value>" ]] ||
        die "export: Secret $name lacks its domain/purpose annotations"
      write_secret_files "$namespace" "$name" "$dir/keys/$domain/$purpose"
    done < <("$KUBECTL" get secrets --namespace "$namespace" -l "$KIND_LABEL=keys" -o name)
  )
  local algorithm=RS256
  write_local_config "$dir" "$algorithm"
  echo "exported to $dir (keep it private: it holds the signing keys)"
}

cmd_rotate() {
  local namespace="" rotate_args=()
  while (($#)); do
    case $1 in
    --namespace | -n) namespace=${2:?--namespace needs a value} && shift 2 ;;
    --domain | --retire-keep | --algorithm) rotate_args+=("$1" "${2:?$1 needs a value}") && shift 2 ;;
    --all) rotate_args+=(--all) && shift ;;
    *) die "rotate: unknown argument $1" ;;
    esac
  done
  [[ -n $namespace ]] || die "rotate: give --namespace"
  need_kubectl
  need_tokengate
  local work
  work=$(mktemp -d)
  CLEANUP+=("$work")
  cmd_export "$work/ws" --namespace "$namespace"
  tg keys rotate --config "$work/ws/tokengate.toml" "${rotate_args[@]}"
  cmd_apply "$work/ws" --namespace "$namespace"
}

cmd_redis_url() {
  local namespace=""
  while (($#)); do
    case $1 in
    --namespace | -n) namespace=${2:?--namespace needs a value} && shift 2 ;;
    *) die "redis-url: unknown argument $1" ;;
    esac
  done
  [[ -n $namespace ]] || die "redis-url: give --namespace"
  need_kubectl
  local url
  if [[ -t 0 ]]; then
    read -r -s -p "Redis URL: " url
    echo >&2
  else
    IFS= read -r url || true
  fi
  case $url in
  redis://* | rediss://* | redis+cluster://* | rediss+cluster://*) ;;
  *) die "redis-url: expected redis://, rediss://, redis+cluster:// or rediss+cluster://" ;;
  esac
  local file
  file=$(mktemp)
  CLEANUP+=("$file")
  # No trailing newline: the value is used as it is.
  printf '%s' "$url" >"$file"
  secret_yaml "$namespace" tokengate-redis redis "" "" -- --from-file="url=$file" |
    "$KUBECTL" apply -f -
  echo "pods read the URL at start: kubectl rollout restart deployment/tokengate -n $namespace"
}

command=${1:-help}
shift || true
case $command in
init) cmd_init "$@" ;;
apply) cmd_apply "$@" ;;
volumes) cmd_volumes "$@" ;;
export) cmd_export "$@" ;;
rotate) cmd_rotate "$@" ;;
redis-url) cmd_redis_url "$@" ;;
help | -h | --help) usage ;;
*) usage >&2 && exit 2 ;;
esac
