#!/usr/bin/env bash
# The container image, built and served here (CI runs it; no Docker daemon,
# no registry, no cluster needed):
#
#   1. deploy/image.sh: the release binary on the host-assembled base, the
#      Dockerfile's runtime stage (buildah), written as an OCI layout too
#   2. the image itself: user 65532, entrypoint and port, OCI labels from
#      Cargo.toml, no shell or package manager (every executable file is
#      tokengate, the loader or a shared library), size under 30 MB
#   3. the overlays name this build: dev `tokengate:<version>`, production
#      by digest
#   4. `tokengate serve` from the image, as the rendered dev Deployment runs
#      it: the image's entrypoint and the pod's args and env, the ConfigMap,
#      the directory and the key Secrets mounted read-only at the pod's
#      paths, a read-only root filesystem, all capabilities dropped; Redis
#      is a private redis-server here (the pod's Secret tokengate-redis)
#   5. the running process: uid/gid 65532, no capabilities, / read-only
#   6. tools/outside-clients.sh and the browser test against it
#   7. SIGTERM: it drains and exits 0; nothing secret in its log
#
# Needs root (mounts; CI runs as root), buildah, redis-server, curl, and what
# the two client checks need (npm ci done, Chromium). The rendered overlays
# come from deploy/check.sh (run first in CI; --render-only here otherwise).
#
#   bash tools/image-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
B=(buildah --storage-driver vfs)
export BUILDAH_ISOLATION=chroot
RENDERED=${IMAGE_CHECK_RENDERED:-$ROOT/target/deploy-rendered} # deploy/check.sh writes it
MAX_IMAGE_BYTES=30000000 # the goal: under 30 MB unpacked

started=$SECONDS
log() { printf '\n==> image [%3ss] %s\n' "$((SECONDS - started))" "$*"; }
fail() {
  echo "image check FAILED: $*" >&2
  exit 1
}
((EUID == 0)) || fail "run as root (the read-only root filesystem is a bind mount)"
for tool in buildah redis-server redis-cli curl python3; do
  command -v "$tool" >/dev/null || fail "$tool is missing (.ci/run installs it)"
done

W=$(mktemp -d /tmp/tokengate-image.XXXXXX)
chmod 0755 "$W"
container="" rootfs="" redis_pid="" server_pid="" tg_pid="" inspect_container=""
cleanup() {
  local status=$?
  # tokengate inside the container first (buildah run then exits with it).
  [[ -z $tg_pid ]] || kill "$tg_pid" 2>/dev/null || true
  if [[ -n $server_pid ]]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  [[ -z $redis_pid ]] || kill "$redis_pid" 2>/dev/null || true
  if [[ -n $rootfs ]]; then
    umount "$rootfs/run" 2>/dev/null || umount -l "$rootfs/run" 2>/dev/null || true
    umount "$rootfs" 2>/dev/null || umount -l "$rootfs" 2>/dev/null || true
  fi
  for c in "$container" "$inspect_container"; do
    [[ -z $c ]] || "${B[@]}" rm "$c" >/dev/null 2>&1 || true
  done
  if ((status != 0)) && [[ -f $W/server.log ]]; then
    echo "--- tokengate's log (from the image) ---" >&2
    tail -n 40 "$W/server.log" >&2
  fi
  rm -rf "$W"
  exit "$status"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# 1. Build ------------------------------------------------------------------------
log "deploy/image.sh (release binary, host base, Dockerfile runtime stage)"
version=$(python3 -c 'import tomllib; print(tomllib.load(open("Cargo.toml", "rb"))["workspace"]["package"]["version"])')
rm -rf target/image/oci
bash deploy/image.sh --push "oci:$ROOT/target/image/oci:$version"
# shellcheck source=/dev/null # written by deploy/image.sh
. target/image/image.env

# 2. The image itself ---------------------------------------------------------------
log "the image: user, entrypoint, port, labels, contents, size"
"${B[@]}" inspect --type image "$IMAGE" >"$W/inspect.json"
python3 - "$W/inspect.json" "$(git rev-parse HEAD)" <<'EOF'
import json, sys, tomllib
config = json.load(open(sys.argv[1]))["OCIv1"]["config"]
package = tomllib.load(open("Cargo.toml", "rb"))["workspace"]["package"]
labels = config.get("Labels", {})
want = {
    "User": ("User", "65532:65532"),
    "Entrypoint": ("Entrypoint", ["/usr/local/bin/tokengate"]),
    "Cmd": ("Cmd", ["serve"]),
    "ExposedPorts": ("ExposedPorts", {"50051/tcp": {}}),
    "label source": (None, ("org.opencontainers.image.source", package["repository"])),
    "label version": (None, ("org.opencontainers.image.version", package["version"])),
    "label licenses": (None, ("org.opencontainers.image.licenses", package["license"])),
}
bad = []
for name, (key, value) in want.items():
    got = config.get(key) if key else labels.get(value[0])
    expected = value if key else value[1]
    print(f"    {name:<15} {got}")
    if got != expected:
        bad.append(f"{name}: {got!r}, expected {expected!r}")
revision = labels.get("org.opencontainers.image.revision", "")
print(f"    label revision  {revision}")
if not revision.startswith(sys.argv[2]):
    bad.append(f"label revision {revision!r} is not HEAD {sys.argv[2]}")
if bad:
    sys.exit("image config: " + "; ".join(bad))
EOF
inspect_container=$("${B[@]}" from --quiet --pull=never "$IMAGE")
image_root=$("${B[@]}" mount "$inspect_container")
for path in bin/sh usr/bin/sh bin/bash bin/busybox usr/bin/apt usr/bin/apt-get usr/bin/dpkg sbin/apk usr/bin/yum usr/bin/dnf usr/bin/microdnf; do
  [[ ! -e $image_root/$path && ! -L $image_root/$path ]] || fail "the image has /$path"
done
# Every executable regular file: tokengate, the dynamic loader, shared
# libraries. Anything else (a shell, a package manager, a tool) fails.
executables=$(cd "$image_root" && find . -type f -perm /111 | sed 's|^\.||' | sort)
unexpected=$(grep -vE '^/usr/local/bin/tokengate$|^/usr/lib(64)?/.*/?ld-linux[^/]*\.so\.[0-9]+$|\.so(\.[0-9]+)*$' <<<"$executables" || true)
[[ -z $unexpected ]] || fail "executables other than tokengate and libraries: $unexpected"
echo "    executables     $(tr '\n' ' ' <<<"$executables")"
"${B[@]}" umount "$inspect_container" >/dev/null
"${B[@]}" rm "$inspect_container" >/dev/null
inspect_container=""
echo "    size            $IMAGE_SIZE bytes unpacked, $IMAGE_COMPRESSED compressed"
((IMAGE_SIZE < MAX_IMAGE_BYTES)) || fail "the image is $IMAGE_SIZE bytes, over the $MAX_IMAGE_BYTES goal"

# 3. The overlays name this build ---------------------------------------------------
log "the overlays: dev runs tokengate:$version, production a digest"
[[ -f $RENDERED/dev.json && -f $RENDERED/production.json ]] || bash deploy/check.sh --render-only
python3 - "$RENDERED" "${IMAGE#localhost/}" "$IMAGE_DIGEST" <<'EOF'
import json, re, sys
rendered, image, digest = sys.argv[1:]
def image_of(overlay):
    objects = json.load(open(f"{rendered}/{overlay}.json"))
    (deploy,) = [o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "tokengate"]
    return deploy["spec"]["template"]["spec"]["containers"][0]["image"]
dev, production = image_of("dev"), image_of("production")
print(f"    dev             {dev}")
print(f"    production      {production}")
if dev != image:
    sys.exit(f"the dev overlay runs {dev}, but the build is {image}")
if not re.fullmatch(r"[^@]+/tokengate@sha256:[0-9a-f]{64}", production):
    sys.exit(f"the production overlay does not pin a digest: {production}")
if production.endswith(digest):
    print("    this build's digest is the one production pins")
else:
    print(f"    this build is {digest}: to ship it, push it and pin its pushed digest (deploy/README.md, Production, step 1)")
EOF

# 4. Serve from the image, as the dev Deployment runs it ------------------------------
log "the pod's files: ConfigMap, directory and key Secrets (secrets.sh init), Redis"
# The users and keys, as an operator makes them; the host's copy of the
# shipped binary is the CLI. Nothing of it is printed.
TOKENGATE=$ROOT/target/release/tokengate deploy/kubernetes/secrets.sh init "$W/secrets" --domain domain-dev >/dev/null
password=$(awk -F'\t' '$1 == "domain-dev" {print $3}' "$W/secrets/passwords.txt")
[[ -n $password ]] || fail "secrets.sh init made no password"
redis_port=$(free_port)
redis-server --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no \
  --maxmemory-policy noeviction --logfile "$W/redis.log" &
redis_pid=$!
port=$(free_port)
page_port=$(free_port)
# The Deployment's volumes and mounts, env and args, from the rendered dev
# overlay: what kubelet would mount where, and the files the kubelet would
# write (the ConfigMap's data; the Secrets from the workspace).
python3 - "$RENDERED/dev.json" "$W" >"$W/plan" <<'EOF'
import json, os, shlex, sys
objects = json.load(open(sys.argv[1]))
work = sys.argv[2]
(deploy,) = [o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "tokengate"]
pod = deploy["spec"]["template"]["spec"]
(container,) = pod["containers"]
volumes = {v["name"]: v for v in pod["volumes"]}
configmaps = {o["metadata"]["name"]: o for o in objects if o["kind"] == "ConfigMap"}
out = []
def emit(*words):
    out.append(" ".join(shlex.quote(str(w)) for w in words))
assert pod["securityContext"]["runAsUser"] == 65532, "pod uid"
assert container["securityContext"]["readOnlyRootFilesystem"] is True, "read-only root"
assert container["securityContext"]["capabilities"]["drop"] == ["ALL"], "capabilities"
for mount in container["volumeMounts"]:
    volume = volumes[mount["name"]]
    assert mount.get("readOnly") is True, f"{mount['name']} is not read-only"
    assert "subPath" not in mount, f"{mount['name']} uses subPath"
    source = os.path.join(work, "mounts", mount["name"])
    os.makedirs(source)
    if "configMap" in volume:
        for name, text in configmaps[volume["configMap"]["name"]]["data"].items():
            emit("file", os.path.join(source, name), format(volume["configMap"].get("defaultMode", 0o644), "04o"), "-")
            open(os.path.join(source, name), "w").write(text)
    elif "secret" in volume:
        secret = volume["secret"]["secretName"]
        mode = format(volume["secret"].get("defaultMode", 0o644), "04o")
        if secret == "tokengate-directory":
            emit("file", os.path.join(source, "users.toml"), mode, os.path.join(work, "secrets", "users.toml"))
        elif secret.startswith("tokengate-keys-"):
            # tokengate-keys-<domain>-<purpose>, mounted at <keys>/<domain>/<purpose>
            domain, purpose = mount["mountPath"].split("/")[-2:]
            assert secret == f"tokengate-keys-{domain}-{purpose}", secret
            folder = os.path.join(work, "secrets", "keys", domain, purpose)
            for pem in sorted(os.listdir(folder)):
                emit("file", os.path.join(source, pem), mode, os.path.join(folder, pem))
        else:
            sys.exit(f"unknown Secret volume {secret}")
    else:
        sys.exit(f"unknown volume {volume}")
    emit("mount", source, mount["mountPath"])
for env in container.get("env", []):
    if "value" in env:
        emit("env", env["name"], env["value"])
    elif env["valueFrom"].get("secretKeyRef", {}).get("name", "").startswith("tokengate-redis"):
        emit("env", env["name"], "@redis")
    else:
        sys.exit(f"unknown env source {env}")
emit("args", *container.get("args", []))
print("\n".join(out))
EOF
# The container: its env and mounts as planned; files owned by root, group
# 65532 (the pod's fsGroup), with the volumes' modes.
container=$("${B[@]}" from --quiet --pull=never --name "tokengate-image-check-$$" "$IMAGE")
rootfs=$("${B[@]}" mount "$container")
envs=() mounts=() args=()
while read -r line; do
  eval "set -- $line"
  case $1 in
  file)
    if [[ $4 == - ]]; then :; else cp "$4" "$2"; fi
    chown 0:65532 "$2" && chmod "$3" "$2"
    ;;
  mount)
    mkdir -p "$rootfs$3"
    mounts+=(--mount "type=bind,src=$2,dst=$3,ro")
    ;;
  env)
    case $2 in
    TOKENGATE_STORE_REDIS_URL) envs+=("$2=redis://127.0.0.1:$redis_port/0") ;;
    # The one browser origin allowed here: the test's page.
    TOKENGATE_CORS_ALLOWED_ORIGINS) envs+=("$2=[\"http://127.0.0.1:$page_port\"]") ;;
    *) envs+=("$2=$3") ;;
    esac
    ;;
  args) shift && args=("$@") ;;
  esac
done <"$W/plan"
# What differs from the pod, for this machine and the browser test: the
# loopback address on a free port (the network is the host's), and 6 s
# access tokens (the browser test watches one expire).
envs+=("TOKENGATE_LISTEN=127.0.0.1:$port" "TOKENGATE_TOKEN_ACCESS_TIMEOUT=6")
config_args=()
for e in "${envs[@]}"; do config_args+=(--env "$e"); done
"${B[@]}" config "${config_args[@]}" "$container"
# The read-only root filesystem: the container's root bind-mounted read-only
# onto itself (buildah run has no --read-only; its chroot runs inside this
# mount). The mount points are made first, as a runtime does. /run stays a
# writable empty folder: buildah itself puts /run/.containerenv there and
# removes it at exit (the check below finds it empty afterwards).
for dir in proc dev sys run etc; do mkdir -p "$rootfs/$dir"; done
for file in etc/hosts etc/resolv.conf etc/hostname; do touch "$rootfs/$file"; done
mount --bind "$rootfs" "$rootfs"
mount -o remount,bind,ro "$rootfs"
mkdir -p "$W/run"
mount --bind "$W/run" "$rootfs/run"
if touch "$rootfs/usr/write-test" 2>/dev/null; then fail "the root filesystem is writable"; fi

log "tokengate ${args[*]} from the image (buildah run), on 127.0.0.1:$port"
# The image's entrypoint with the pod's args (buildah run runs a command).
mapfile -t entrypoint < <(python3 -c 'import json,sys; print("\n".join(json.load(open(sys.argv[1]))["OCIv1"]["config"]["Entrypoint"]))' "$W/inspect.json")
"${B[@]}" run --isolation chroot --cap-drop all "${mounts[@]}" "$container" -- \
  "${entrypoint[@]}" "${args[@]}" >"$W/server.log" 2>&1 &
server_pid=$!
serve_started=$(date +%s%N)
for _ in $(seq 1 300); do
  curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  kill -0 "$server_pid" 2>/dev/null || fail "tokengate exited at start"
  sleep 0.1
done
curl -fs "http://127.0.0.1:$port/readyz" || fail "not ready after 30 s"
echo
echo "    ready $((($(date +%s%N) - serve_started) / 1000000)) ms after buildah run"

# 5. The running process -------------------------------------------------------------
log "the process: uid/gid 65532, no capabilities, read-only root, read-only mounts"
tg_pid=$(python3 - "$server_pid" <<'EOF'
import os, sys
parent = {}
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except OSError:
        continue
    comm = stat[stat.index("(") + 1 : stat.rindex(")")]
    parent[pid] = (stat[stat.rindex(")") + 2 :].split()[1], comm)
def under(pid, root):
    while pid in parent and pid != "1":
        if pid == root:
            return True
        pid = parent[pid][0]
    return False
found = [p for p, (_, comm) in parent.items() if comm == "tokengate" and under(p, sys.argv[1])]
print(found[0] if len(found) == 1 else "")
EOF
)
[[ -n $tg_pid ]] || fail "no tokengate process under buildah run"
python3 - "$tg_pid" <<'EOF'
import sys
pid = sys.argv[1]
status = dict(l.split(":\t", 1) for l in open(f"/proc/{pid}/status").read().splitlines() if ":\t" in l)
uids, gids = status["Uid"].split(), status["Gid"].split()
print(f"    uid {' '.join(uids)}; gid {' '.join(gids)}; groups {status['Groups'].strip() or '-'}")
print(f"    CapEff {status['CapEff']}, CapPrm {status['CapPrm']}, CapBnd {status['CapBnd']}")
bad = []
if set(uids) != {"65532"} or set(gids) != {"65532"}:
    bad.append("not running as 65532:65532")
if int(status["CapEff"], 16) or int(status["CapPrm"], 16):
    bad.append("has capabilities")
writable = []
for line in open(f"/proc/{pid}/mountinfo"):
    fields = line.split()
    point, options = fields[4], fields[5].split(",")
    if point == "/" and "ro" not in options:
        bad.append("the root filesystem is writable")
    if point.startswith("/etc/tokengate") and "ro" not in options:
        bad.append(f"{point} is writable")
    if "rw" in options and point != "/":
        writable.append(point)
# What a runtime mounts writable (kubelet too: /dev/shm, /etc/hosts, ...),
# and buildah's own /run/.containerenv; nothing of the image.
runtime = ("/run", "/run/.containerenv", "/etc/hosts", "/etc/resolv.conf", "/etc/hostname", "/proc", "/sys", "/dev")
writable = sorted(set(writable))
shown = sorted({p if not p.startswith(("/proc/", "/sys/", "/dev/")) else p.rsplit("/", 1)[0] + "/*" for p in writable})
print(f"    /: read-only; writable: {' '.join(shown)}")
print(f"    NoNewPrivs {status.get('NoNewPrivs', '?').strip()}; VmRSS {status['VmRSS'].strip()}")
unexpected = [p for p in writable if not (p in runtime or p.startswith(("/dev/", "/proc/", "/sys/")))]
if unexpected:
    bad.append(f"unexpected writable mounts: {unexpected}")
if bad:
    sys.exit("the process: " + "; ".join(bad))
EOF

# 6. Outside clients and the browser ------------------------------------------------
log "tools/outside-clients.sh against the image"
OUTSIDE_BASE="http://127.0.0.1:$port" OUTSIDE_PASSWORD=$password bash tools/outside-clients.sh

log "the browser test against the image"
WEB_TEST_SERVER="http://127.0.0.1:$port" WEB_TEST_PAGE_PORT=$page_port \
  WEB_TEST_DOMAIN=domain-dev WEB_TEST_USER=admin@example.com WEB_TEST_PASSWORD=$password \
  bash examples/web/run-browser-test.sh

# 7. SIGTERM ---------------------------------------------------------------------------
log "SIGTERM: drain and exit 0"
kill -TERM "$tg_pid"
stop_started=$SECONDS
status=0
wait "$server_pid" || status=$?
server_pid="" tg_pid=""
echo "    exit $status after $((SECONDS - stop_started)) s"
((status == 0)) || fail "tokengate (or buildah run) exited $status"
[[ -z $(ls -A "$W/run") ]] || fail "something was left in /run: $(ls -A "$W/run")"
if grep -qF -- "$password" "$W/server.log"; then fail "the server's log holds the password"; fi
grep -q "serving" "$W/server.log" || fail "no 'serving' line in the server's log"
echo "    log: $(wc -l <"$W/server.log") lines, no password"

log "image check passed: $IMAGE ($IMAGE_SIZE bytes unpacked, $IMAGE_COMPRESSED compressed)"
